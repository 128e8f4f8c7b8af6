"""Sentences of the errors task: an :class:`~digitlab.experiments.error_analysis.ErrorAnalysis` in, strings out."""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab.names import model_name as words

METHOD_WORDS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
TRAIT_COLUMNS = {
    "stroke_width": "stroke width (px)",
    "ink_ratio": "ink ratio",
    "slant_deg": "slant (deg, + = right)",
    "abs_slant_deg": "absolute slant (deg)",
    "mean_intensity": "mean intensity",
    "centre_distance": "distance to class centre (PCA)",
    "given_label_probability": "probability of the given label",
}
TRAIT_WORDS = {
    "stroke_width": "stroke width",
    "ink_ratio": "ink ratio",
    "slant_deg": "slant",
    "abs_slant_deg": "absolute slant",
    "mean_intensity": "mean intensity",
    "centre_distance": "distance to the class centre",
    "given_label_probability": "probability of the given label",
}


def cv_words(cv_model: str, cv_k: int, pca_dims: int) -> str:
    return (
        f"{cv_k}-nearest-neighbour classifier (distance-weighted) on PCA-{pca_dims}"
        if cv_model == "knn"
        else f"logistic regression on PCA-{pca_dims}"
    )


def test_source(ea: Any, cv: str) -> str:
    lab = ea.label
    if lab.test_models:
        return "mean probabilities of the classify models " + ", ".join(words(m) for m in lab.test_models)
    return f"the {cv} fitted on the {lab.n_train:,} training images"


def summary(ea: Any, dataset: str) -> str:
    m, n = len(ea.models), len(ea.y)
    return (
        f"We study the test-set mistakes of the {m} classify models on {n:,} test images of {dataset}: where "
        "they lie on a 2-D map of the test images, how much the models' error sets overlap, what the images most "
        f"models miss look like, and which given labels are probably wrong (confident learning on out-of-sample "
        f"probabilities for {ea.label.n_train:,} training and {n:,} test images)."
    )


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------


def map_caption(ea: Any, method: str) -> str:
    pos, n = ea.map_pos, len(ea.y)
    n_hard = int(np.isin(pos, ea.hard_positions).sum())
    share, natural = n_hard / len(pos), len(ea.hard_positions) / n
    return (
        f"{METHOD_WORDS[method]} map of {len(pos):,} of the {n:,} test images"
        + (
            f" ({n_hard:,} of the {len(ea.hard_positions):,} hard images, {100 * share:.0f} % of the map against "
            f"{100 * natural:.0f} % of the test set, and a stratified sample of the rest)"
            if len(pos) < n
            else ""
        )
        + ". Left: how many models got each image wrong (grey: none). Right: each model's mistakes in red."
    )


JACCARD_CAPTION = (
    "Overlap of every pair of models' error sets (Jaccard index: shared mistakes / "
    "images either model gets wrong)."
)


def upset_caption(k: int) -> str:
    return (
        f"UpSet plot: the {k} largest groups of test images that exactly the dotted models (and no other) "
        "get wrong; left, each model's number of mistakes."
    )


def hard_caption(ea: Any, k: int) -> str:
    return (
        f"The test images most models miss ({k} of {len(ea.hard_positions):,} missed by at least {ea.hard_min} of "
        f"{len(ea.models)} models): given label, then the models' votes (class×models)."
    )


def label_caption(part: str, k: int, top_candidates: int) -> str:
    return (
        f"The {k} {part} images whose given label is most probably wrong: the candidates confident learning "
        "flags, ranked by self-confidence (the probability of the given label), then, if there are fewer than "
        f"{top_candidates}, the unflagged images of lowest self-confidence; each with its given label and the "
        "suggested (most probable) label."
    )


def table_captions(ea: Any, list_per_model: int, top_candidates: int) -> dict[str, str]:
    m, hm = len(ea.models), ea.hard_min
    return {
        "models": "Mistakes per model on the test set: how many only this model makes, how many are "
        f"images at least {hm} of the {m} models miss, and its mean probability for the predicted class on "
        "mistakes and on correct predictions (empty for models with decision scores only).",
        "confident_mistakes": f"Each model's {list_per_model} most confident mistakes (index in the official "
        "test order); misclassified.csv lists every mistake of every model.",
        "jaccard": "Jaccard index of the models' error sets: images both get wrong / images either gets wrong.",
        "intersections": "The largest exclusive intersections of the error sets: images that exactly these "
        "models, and no other, get wrong.",
        "hard_images": f"The images most models miss (at least {hm} of {m}), with the models' votes and their traits.",
        "traits": f"Traits of the {len(ea.hard_positions):,} hard images against the images of the same class that "
        "every model classifies correctly: z = distance from the same-class mean in same-class standard deviations; "
        "percentile 50 = typical of the class.",
        "label_issues_test": f"Top {top_candidates} test images whose given label is most probably wrong: those confident "
        "learning flags, by self-confidence, then (flagged = no) the unflagged images of lowest "
        "self-confidence; label_issues_test.csv holds every flagged image.",
        "label_issues_train": f"Top {top_candidates} training-image candidates, ordered as for the test "
        "set (index in the official training order); label_issues_train.csv holds every flagged image.",
    }


# ---------------------------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------------------------


def findings(ea: Any, cv: str, planted_fraction: float) -> list[str]:
    out = [headline(ea), count_sentence(ea), overlap_sentence(ea)]
    out += [s for s in (intersection_sentence(ea), confidence_sentence(ea), hard_sentence(ea)) if s]
    return out + label_sentences(ea, cv, planted_fraction)


def headline(ea: Any) -> str:
    jac, m, n = ea.jaccard.to_numpy(), len(ea.models), len(ea.y)
    n_all = int((ea.wrong == m).sum())
    flagged = len(ea.label.flagged["test"])
    tail = (
        f"{n_all:,} test image{'s' if n_all != 1 else ''} fool{'s' if n_all == 1 else ''} all {m} models, and confident "
        f"learning flags {flagged:,} of {n:,} test labels ({100 * flagged / n:.2f} %) as probably wrong."
    )
    if m < 2:
        return tail[0].upper() + tail[1:]
    iu = np.triu_indices(m, 1)
    return (
        f"Models miss the same images {ea.chance_ratio:.1f}x as often as independent mistakes would (median Jaccard "
        f"index of two error sets {np.median(jac[iu]):.2f}); " + tail
    )


def count_sentence(ea: Any) -> str:
    n, errs, w, names = len(ea.y), ea.errors.sum(1), ea.wrong, ea.models
    best, worst = int(errs.argmin()), int(errs.argmax())
    return (
        f"On {n:,} test images the models make between {errs[best]:,} ({words(names[best])}) and {errs[worst]:,} "
        f"({words(names[worst])}) mistakes; {int((w > 0).sum()):,} images ({100 * (w > 0).mean():.1f} %) are missed by "
        f"at least one model, {len(ea.hard_positions):,} by at least {ea.hard_min} of {len(names)} and "
        f"{int((w == len(names)).sum()):,} by all."
    )


def overlap_sentence(ea: Any) -> str:
    names, jac = ea.models, ea.jaccard.to_numpy()
    m = len(names)
    if m < 2:
        return f"Only one model ({words(names[0])}) was run, so there is no overlap to measure."
    iu = np.triu_indices(m, 1)
    vals = jac[iu]
    hi, lo = int(vals.argmax()), int(vals.argmin())
    ratio = ea.chance_ratio
    pair = lambda k: f"{words(names[iu[0][k]])} and {words(names[iu[1][k]])} ({vals[k]:.2f})"  # noqa: E731
    return (
        f"Pairwise Jaccard indices of the error sets range from {vals.min():.2f} to {vals.max():.2f} (median "
        f"{np.median(vals):.2f}); the most similar mistakes are those of {pair(hi)}, the least similar {pair(lo)}. "
        f"The median pair shares {ratio:.1f}x the overlap that independent mistakes at the same error rates would give "
        f"(median {np.median(ea.independent):.3f})"
        + (
            ": models stumble over the same images far more often than chance."
            if ratio >= 2
            else ": somewhat more shared mistakes than chance."
            if ratio > 1.1
            else ": about what chance gives."
        )
    )


def intersection_sentence(ea: Any) -> str | None:
    rows = ea.inter
    if not rows:
        return None
    top = rows[0]
    singles = sum(r["size"] for r in rows if r["degree"] == 1)
    total = sum(r["size"] for r in rows)
    who = (
        f"only {words(top['models'][0])} misses"
        if top["degree"] == 1
        else f"exactly {', '.join(words(n) for n in top['models'])} miss"
    )
    return (
        f"The largest exclusive intersection is the {top['size']:,} images {who}; mistakes no other model makes account "
        f"for {singles:,} of the {total:,} images some model gets wrong ({100 * singles / max(total, 1):.0f} %), spread over "
        f"{len(rows):,} distinct combinations of models."
    )


def confidence_sentence(ea: Any) -> str | None:
    parts = []
    for n, r in ea.per_model.iterrows():
        if np.isfinite(r["confidence_on_mistakes"]) and np.isfinite(r["confidence_when_right"]):
            parts.append((n, float(r["confidence_on_mistakes"]), float(r["confidence_when_right"])))
    if not parts:
        return None
    lo = min(parts, key=lambda t: t[2] - t[1])
    hi = max(parts, key=lambda t: t[2] - t[1])
    return (
        f"Mistakes come with lower confidence: the gap between mean confidence when right and when wrong ranges from "
        f"{hi[2] - hi[1]:.2f} ({words(hi[0])}: {hi[2]:.2f} against {hi[1]:.2f}) to {lo[2] - lo[1]:.2f} ({words(lo[0])}: "
        f"{lo[2]:.2f} against {lo[1]:.2f}); a small gap means the model is as sure of its mistakes as of its right answers."
    )


def hard_sentence(ea: Any) -> str | None:
    hard, classes, y = ea.hard_positions, ea.classes, ea.y
    if not len(hard):
        return (
            f"No test image is missed by {ea.hard_min} or more of the {len(ea.models)} models, so there is no group of "
            "hard images to describe."
        )
    counts = np.bincount(y[hard], minlength=len(classes))
    share = counts / np.maximum(np.bincount(y, minlength=len(classes)), 1)
    c = int(share.argmax())
    (a, b), k = max(ea.hard_confusions.items(), key=lambda t: t[1])
    rows = [
        r
        for r in ea.comparison
        if r["mean_abs_z"] is not None and r["reference_abs_z"] and r["trait"] != "given_label_probability"
    ]
    text = (
        f"Of the {len(hard):,} hard images, class {classes[c]} loses the largest share of its test images "
        f"({counts[c]} of {int(np.sum(y == c))}, {100 * share[c]:.1f} %); the most common wrong vote is {classes[a]} taken "
        f"for {classes[b]} ({k} image{'s' if k != 1 else ''})."
    )
    if rows:
        ranked = sorted(rows, key=lambda r: -r["mean_abs_z"] / r["reference_abs_z"])
        top = ranked[0]
        side = (
            f"on average {abs(top['mean_z']):.1f} standard deviations {'above' if top['mean_z'] > 0 else 'below'} "
            f"their class's mean"
            if abs(top["mean_z"]) >= 0.5
            else "in both directions"
        )
        text += (
            f" Against correctly classified images of their own class they stand out most in "
            f"{TRAIT_WORDS[top['trait']]}: mean |z| {top['mean_abs_z']:.1f} against {top['reference_abs_z']:.1f} for the "
            f"correctly classified images themselves, {side} (mean {top['hard_mean']:.3g} against {top['reference_mean']:.3g})"
            + (
                "; next come "
                + ", ".join(
                    f"{TRAIT_WORDS[r['trait']]} ({r['mean_abs_z']:.1f} against {r['reference_abs_z']:.1f})"
                    for r in ranked[1:3]
                )
                if len(ranked) > 1
                else ""
            )
            + "."
        )
    return text


def label_sentences(ea: Any, cv: str, planted_fraction: float) -> list[str]:
    lab, names, n_test = ea.label, ea.models, len(ea.y)
    top = lab.top["test"]
    unanimous = sum(r["models_suggesting"] == len(names) for r in top)
    extra = sum(not r["flagged"] for r in top)
    n_tr, n_flag_te, n_flag_tr = lab.n_train, len(lab.flagged["test"]), len(lab.flagged["train"])
    out = [
        f"Confident learning flags {n_flag_te:,} of {n_test:,} test labels ({100 * n_flag_te / n_test:.2f} %) "
        f"and {n_flag_tr:,} of {n_tr:,} training labels ({100 * n_flag_tr / max(n_tr, 1):.2f} %) as probably wrong."
        + (
            f" The test gallery adds the {extra} unflagged images of lowest self-confidence to make {len(top)}."
            if extra
            else ""
        )
        + (
            f" All {len(names)} classify models predict the suggested label for {unanimous} of these {len(top)} test "
            "candidates; agreement shows that an image looks like the other class, not that its label is wrong: whether an "
            "image is mislabelled or merely ambiguous is a judgement the gallery lets the reader make."
            if top
            else ""
        )
    ]
    if lab.planted:
        p = lab.planted
        out.append(
            f"As a check, {p['n']:,} training labels ({100 * planted_fraction:g} %) were flipped to a random other "
            f"class: the same procedure flags {100 * p['recall']:.0f} % of them, and {100 * p['precision_at_k']:.0f} % of its "
            f"first {min(p['n'], p['flagged']):,} candidates are planted flips (the others are unplanted candidates) — "
            f"out-of-fold accuracy of the {cv} is {100 * lab.oof_accuracy:.1f} %."
        )
    return out


def notes(ea: Any, map_method: str, pca_dims: int, cv_folds: int, cv: str) -> list[str]:
    return [
        "Error set of a model: the test images it classifies wrongly. Jaccard index of two sets: the size of their "
        "intersection divided by the size of their union (1 = the same mistakes, 0 = no mistake in common).",
        "An UpSet plot shows how sets intersect when a Venn diagram would be unreadable: each bar counts the images that "
        "exactly the models dotted below it get wrong (an exclusive intersection).",
        f"The map is a {METHOD_WORDS[map_method]} embedding of the test images themselves"
        + (
            f" on {pca_dims} principal components fitted on the training images"
            if map_method != "pca"
            else ""
        )
        + f" (computed in {ea.map_seconds:.1f} s); the embed section maps training images instead.",
        f"Traits: ink ratio = share of pixels above the image's Otsu threshold; stroke width = ink area / skeleton length; "
        f"slant = horizontal drift of the ink per row, as an angle; distance to class centre = Euclidean distance in the "
        f"{pca_dims}-component PCA space of the training images from the mean of the given class's training images; "
        "probability of the given label = the test probabilities used for label issues (below). Stroke and slant traits are "
        "only computed for greyscale strokes on a blank background.",
        "Confident learning (Northcutt et al., 2021; the cleanlab library's find_label_issues): from out-of-sample "
        "predicted probabilities it counts, per given class, the images whose probability for another class exceeds that "
        "class's average self-confidence (the confident joint), estimates how many images of each class carry a wrong label, "
        "and flags that many; candidates are ranked by self-confidence, the probability of the given label (low = "
        "suspicious).",
        f"Training probabilities: {cv_folds}-fold stratified cross-validation of a {cv} on "
        f"{ea.label.n_train:,} training images (each image scored by a model that never saw its label). Test "
        "probabilities: "
        + test_source(ea, cv)
        + " (trained on training images only, so out of sample for every test "
        "image).",
    ]
