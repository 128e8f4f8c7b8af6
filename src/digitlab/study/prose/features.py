"""Sentences of the ``features`` task: findings, notes and captions, filled in from the numbers."""

from __future__ import annotations

import numpy as np

from digitlab.names import model_name


def rank_findings(scores: list[dict]) -> list[str]:
    """``scores``: per feature (extraction order) F, MI, their ranks and the best-separated pair."""
    by_f = sorted(scores, key=lambda r: r["rank_F"])
    by_mi = sorted(scores, key=lambda r: r["rank_MI"])
    top_f = ", ".join(f"{r['feature']} (F = {r['F']:,.0f})" for r in by_f[:3])
    top_mi = ", ".join(f"{r['feature']} ({r['MI']:.3f} nats)" for r in by_mi[:3])
    rf = np.array([r["rank_F"] for r in scores], dtype=float)
    rm = np.array([r["rank_MI"] for r in scores], dtype=float)
    rho = float(np.corrcoef(rf, rm)[0, 1]) if len(scores) > 2 else float("nan")
    gaps = sorted(scores, key=lambda r: -abs(r["rank_F"] - r["rank_MI"]))[:3]
    gap_text = "; ".join(f"{r['feature']} is #{r['rank_MI']} by MI but #{r['rank_F']} by F" for r in gaps)
    mi_favoured = [r["feature"] for r in gaps if r["rank_MI"] < r["rank_F"]]
    out = [
        f"By ANOVA F the most discriminative features are {top_f}.",
        f"By mutual information with the label they are {top_mi}.",
        f"The two rankings agree with Spearman rank correlation {rho:.2f} over {len(scores)} features; they disagree most "
        f"where {gap_text}."
        + (
            f" F only compares class means with the within-class spread, so MI's higher rating of "
            f"{', '.join(mi_favoured)} points to class differences in shape or modes rather than in the mean alone."
            if mi_favoured
            else ""
        ),
    ]
    pairs = "; ".join(
        f"{r['feature']} separates {r['best_pair']} best (AUC {r['pair_auc']:.3f}, higher for {r['higher']})"
        for r in by_f[:3]
    )
    out.append(f"Best-separated class pairs of the top features by F: {pairs}.")
    weakest = by_f[-2:]
    out.append(
        "The least informative features are "
        + " and ".join(f"{r['feature']} (F = {r['F']:.1f}, MI = {r['MI']:.3f})" for r in weakest)
        + "."
    )
    return out


def holes_finding(means: dict[str, float]) -> list[str]:
    """``means``: mean number of holes per image, by class (empty: no holes feature)."""
    if not means:
        return []
    many = [f"{c} ({m:.2f})" for c, m in sorted(means.items(), key=lambda kv: -kv[1]) if m >= 0.5]
    few = [f"{c} ({m:.2f})" for c, m in sorted(means.items(), key=lambda kv: kv[1]) if m < 0.2]
    if not many or not few:
        return [
            "Mean number of holes per class: " + ", ".join(f"{c} {m:.2f}" for c, m in means.items()) + "."
        ]
    return [
        f"Topology splits the classes: images of {', '.join(many)} average at least half a hole, "
        f"those of {', '.join(few)} fewer than 0.2 (mean holes per image in brackets)."
    ]


def input_key(label: str) -> str:
    """Short key of an input label: "all features" -> features, "top-8 features" -> top8, "raw pixels" -> pixels."""
    return {"all features": "features", "raw pixels": "pixels"}.get(
        label, label.split(" ")[0].replace("-", "")
    )


def accuracy_findings(acc: list[dict]) -> list[str]:
    out = []
    for clf in dict.fromkeys(r["classifier"] for r in acc):
        rows = {input_key(r["input"]): r for r in acc if r["classifier"] == clf}
        feats, pix = rows.pop("features"), rows.pop("pixels")
        (top,) = rows.values()
        gap = 100 * (pix["accuracy"] - feats["accuracy"])
        out.append(
            f"{model_name({'rf': 'random_forest'}.get(clf, clf))}: the {feats['n_inputs']} hand-crafted features reach {100 * feats['accuracy']:.1f} % test accuracy, "
            f"the {top['input']} {100 * top['accuracy']:.1f} %, and the {pix['n_inputs']} raw pixels "
            f"{100 * pix['accuracy']:.1f} % ({abs(gap):.1f} points {'above' if gap >= 0 else 'below'} all features, "
            f"from {pix['n_inputs'] / feats['n_inputs']:.0f}x as many inputs)."
        )
    return out


def timing_finding(n_features: int, timing: dict) -> str:
    return (
        f"Extracting {n_features} features from {timing['n_images']:,} images took {timing['seconds']:.1f} s "
        f"({timing['images_per_second']:,.0f} images per second, vectorised NumPy/SciPy on the CPU)."
    )


def headline(top: dict, description: str, accuracy: list[str]) -> str:
    return (
        f"The most discriminative feature is {top['feature']} ({description}; ANOVA F "
        f"{top['F']:,.0f}); " + (accuracy[0][0].lower() + accuracy[0][1:] if accuracy else "")
    )


def not_applicable(name: str, channels: int) -> str:
    return (
        f"{name} holds colour photographs ({channels} channels): the statistical features of this section "
        "measure ink strokes on a blank background of greyscale images (binarised ink share, holes, stroke width, "
        "slant), which have no meaning for them, so the section is left out for this dataset."
    )


SKIPPED_HEADLINE = "Not applicable to colour photographs."

SUMMARY = (
    "Before learning features we measure hand-crafted ones: intensity and ink statistics, bounding box, "
    "centroid and second-order moments, symmetry, projection profiles, topology (holes from the Euler number), "
    "stroke width and a coarse zoning grid. Each feature is scored against the label, its best-separated class "
    "pairs are found, and classifiers on the features are compared with the same classifiers on raw pixels."
)

SCORES_TABLE = (
    "Every feature scored on {n:,} training images, sorted by ANOVA F; best_pair is the class pair it separates "
    "best (ROC-AUC, 0.5 = chance), higher the class with larger values."
)
CLASS_MEANS_TABLE = "Per-class mean of the plotted features."
ACCURACY_TABLE = "Test accuracy on {n_test:,} test images after fitting on {n_train:,} training images (top-k ranked by {rank_by})."
CLASS_MEANS = "Per-class mean image (top) and pixel variance (bottom) over all training images."
FEATURE_SCORES = "ANOVA F (log scale) and mutual information with the label for every feature, sorted by F."
DISTRIBUTIONS = (
    "Per-class distributions of the top features by F and by MI: violins for continuous features, "
    "shares of each value for counts."
)
PAIR_SEPARATION = "How well each feature separates every pair of classes: max(AUC, 1 - AUC), 0.5 = not at all, 1 = perfectly."


def notes(cfg, n_train: int, n_test: int) -> list[str]:
    return [
        f"Binarisation: a pixel is ink when its value is at least {cfg.threshold} (fixed) or above the image's own Otsu "
        "threshold (computed from per-image histograms, identical to scikit-image's threshold_otsu).",
        "Holes = connected components - Euler number, with 8-connected ink; Euler numbers come from Gray's 2x2 "
        "bit-quad counts over all images at once. Stroke width = ink area / skeleton length (scikit-image skeletonize).",
        "ANOVA F is the ratio of between-class to within-class variance of a feature (scikit-learn f_classif); "
        "mutual information (nats) is scikit-learn's k-NN estimate for continuous features and the exact plug-in "
        "estimate for integer features with few values.",
        "Pair separation is the ROC-AUC of the feature as a score for one class against another; max(AUC, 1 - AUC) "
        "is reported so that 0.5 means no separation and 1 perfect separation.",
        f"Scores use {n_train:,} stratified training images; classifiers are fitted on the same images and tested on "
        f"{n_test:,} stratified test images. logreg = standardised inputs + logistic regression (lbfgs, "
        f"{cfg.logreg_max_iter} iterations), rf = random forest ({cfg.rf_trees} trees), knn = 5 nearest neighbours "
        "on standardised inputs.",
    ]
