"""Task ``errors``: which test images the models get wrong, which mistakes they share, which labels look wrong.

Reads classify's per-model test predictions (``predictions.npz``) and answers four questions:

* what each model gets wrong (the full list goes to ``misclassified.csv``), drawn on a 2-D map of
  the test images coloured by how many models miss each image;
* how much the models' error sets overlap (Jaccard matrix, UpSet plot of the largest exclusive
  intersections);
* what the images most models miss are like: a gallery with the models' votes and a table of their
  traits against correctly classified images of the same class;
* which labels are probably wrong: out-of-sample probabilities (k-fold cross-validation of a fast
  model on the training images; the classify models' probabilities on the test images) ranked by
  confident learning (cleanlab), with a planted-flip check of how well the ranking finds known errors.

The computations live in :mod:`digitlab.errors_analysis`; this module picks the data and writes prose.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitlab import embed as E
from digitlab import errors_analysis as A
from digitlab.exceptions import ConfigError
from digitlab.models.zoo import check_models
from digitlab.names import model_name
from digitlab.plots import fit_width
from digitlab.study.common import add_figure, split, status, subset_indices
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "errors"
TITLE = "Hard samples, shared mistakes and suspicious labels"
REQUIRES = ("classify", "embed")

# probabilistic classify models whose mean probabilities score the test labels, best-calibrated kinds
# first; models a run lacks are skipped (a single decision tree's 0/1 probabilities and naive Bayes'
# overconfident ones are left out on purpose)
DEFAULT_TEST_MODELS = ["cnn", "numpy_mlp", "random_forest", "extra_trees", "hgb", "knn", "logreg"]

@dataclass
class Config:
    """Settings of the errors task; defaults are the standard profile."""

    map_method: str = "umap"  # 2-D map of the test images: pca, tsne or umap
    map_points: int = 5000  # test images on the map (0 = all): the hard images (up to 10 %), then a stratified sample of the rest
    pca_dims: int = 50  # principal components of pixels/255 (fitted on the training images) for the map, class centres and k-NN
    hard_fraction: float = 0.5  # an image is hard when at least this share of the models gets it wrong (0 < value <= 1)
    gallery_size: int = 24  # images in each gallery
    top_intersections: int = 15  # bars of the UpSet plot
    list_per_model: int = 5  # most confident mistakes listed per model in the report (every mistake is in misclassified.csv)
    n_train: int = 20000  # training images scanned for label issues (stratified subset; 0 = all)
    # k-NN is the default: with 1 % planted flips in 3,000 / 10,000 MNIST training images it put 57 % / 66 % planted
    # flips among its first candidates against 50 % / 63 % for logistic regression, in 3 s against 68-96 s (busy 2 cores)
    cv_model: str = "knn"  # fast model for out-of-fold probabilities: knn or logreg, both on the PCA components
    cv_folds: int = 5  # folds of the cross-validation
    cv_k: int = 10  # neighbours of the k-NN model (distance-weighted)
    # classify models whose probabilities are averaged for the test set; [] = the cv_model fitted on the training images
    test_models: list[str] = field(default_factory=lambda: list(DEFAULT_TEST_MODELS))  # names of classify models
    planted_fraction: float = 0.01  # share of training labels flipped on purpose to measure the detector (0 = skip)
    top_candidates: int = 20  # label candidates shown (flagged first, then the lowest self-confidence)
    reference_per_class: int = 500  # correctly classified test images per class measured for the trait comparison (0 = all)

    def validate(self) -> None:
        def bad(key: str, fix: str) -> ConfigError:
            return ConfigError(f"config key errors.{key}: {getattr(self, key)!r} is out of range; {fix}")

        if self.map_method not in E.METHODS:
            raise ConfigError(f"config key errors.map_method: {self.map_method!r} unknown; choose from {', '.join(E.METHODS)}")
        if self.cv_model not in A.CV_MODELS:
            raise ConfigError(f"config key errors.cv_model: {self.cv_model!r} unknown; choose from {', '.join(A.CV_MODELS)}")
        if self.test_models:
            check_models(self.test_models, "errors.test_models")
        for key in ("map_points", "n_train", "reference_per_class"):
            if getattr(self, key) < 0:
                raise bad(key, "use 0 (all) or a positive count")
        if 0 < self.map_points < 50:
            raise bad("map_points", "use 0 (all) or at least 50")
        if self.pca_dims < 2:
            raise bad("pca_dims", "use at least 2 components, e.g. 50")
        for key in ("gallery_size", "top_intersections", "list_per_model", "cv_k", "top_candidates"):
            if getattr(self, key) < 1:
                raise bad(key, "use a count of at least 1")
        if self.cv_folds < 2:
            raise bad("cv_folds", "use at least 2 folds, e.g. 5")
        if not 0.0 < self.hard_fraction <= 1.0:
            raise bad("hard_fraction", "use a share in (0, 1], e.g. 0.5")
        if not 0.0 <= self.planted_fraction < 0.5:
            raise bad("planted_fraction", "use a share in [0, 0.5), e.g. 0.01")


# quick: ~20 s on MNIST on 2 cores (UMAP of 1,500 points after embed compiled numba; k-NN label scan of
# 5,000 training images twice, once with planted flips); see the closing note of issue 8.
PROFILES = {
    "quick": {"map_points": 1500, "n_train": 5000, "gallery_size": 16, "top_intersections": 12, "reference_per_class": 200},
    "full": {"map_points": 0, "n_train": 0, "map_method": "tsne"},
}


def words(name: str) -> str:
    """A model's name in words for prose and tables (the project's one mapping)."""
    return model_name(name)


# =============================================================================================
# Compute
# =============================================================================================


def _label_issues(ctx: TaskContext, cfg: Config, preds: dict, x_test: np.ndarray) -> dict[str, Any]:
    """Out-of-fold probabilities on the training subset, test probabilities, both ranked; planted-flip check."""
    k, seed = ctx.dataset.n_classes, ctx.seed
    part = split(ctx, cfg.n_train, 0)
    z_train, z_test = A.pca_space(part.x_train, cfg.pca_dims, seed, x_test)
    oof = A.out_of_fold_proba(z_train, part.y_train, k, cfg.cv_model, cfg.cv_folds, seed, cfg.cv_k)
    train_issues = A.rank_label_issues(part.y_train, oof, part.train_index)
    used = [m for m in cfg.test_models if m in preds["proba"] and preds["proba"][m] is not None]
    if used:
        p_test = np.mean([preds["proba"][m] for m in used], axis=0)
        test_source = "mean probabilities of the classify models " + ", ".join(words(m) for m in used)
    else:
        est = A.make_cv_model(cfg.cv_model, cfg.cv_k).fit(z_train, part.y_train)
        p_test = np.zeros((len(x_test), k))
        p_test[:, est.classes_] = est.predict_proba(z_test)
        test_source = f"the {_cv_words(cfg)} fitted on the {part.n_train:,} training images"
    test_issues = A.rank_label_issues(preds["y_true"], A.smooth(p_test), preds["test_index"])
    top = {"test": _top(test_issues, A.self_confidence_ranking(preds["y_true"], p_test, preds["test_index"]), cfg.top_candidates),
           "train": _top(train_issues, A.self_confidence_ranking(part.y_train, oof, part.train_index), cfg.top_candidates)}
    planted = None
    if cfg.planted_fraction > 0:
        n_flip = max(1, int(round(cfg.planted_fraction * part.n_train)))
        y_flip, where = A.plant_flips(part.y_train, n_flip, k, seed + 1)
        oof_flip = A.out_of_fold_proba(z_train, y_flip, k, cfg.cv_model, cfg.cv_folds, seed, cfg.cv_k)
        ranked = [r["index"] for r in A.rank_label_issues(y_flip, oof_flip)]
        planted = {"n": len(where), **A.detection_scores(ranked, where)}
    return {"part": part, "z_train": z_train, "z_test": z_test, "oof": oof, "train": train_issues, "test": test_issues,
            "top": top, "p_test": p_test, "test_source": test_source, "test_models": used, "planted": planted,
            "oof_accuracy": float(np.mean(oof.argmax(1) == part.y_train))}


def _top(flagged: list[dict], ranking: list[dict], n: int) -> list[dict]:
    """The first ``n`` candidates: the flagged ones, then (if fewer) the unflagged images of lowest self-confidence."""
    seen = {r["index"] for r in flagged}
    rows = [dict(r, flagged=True) for r in flagged[:n]]
    return rows + [dict(r, flagged=False) for r in ranking if r["index"] not in seen][: n - len(rows)]


def _cv_words(cfg: Config) -> str:
    return (f"{cfg.cv_k}-nearest-neighbour classifier (distance-weighted) on PCA-{cfg.pca_dims}" if cfg.cv_model == "knn"
            else f"logistic regression on PCA-{cfg.pca_dims}")


MAP_HARD_SHARE = 0.1  # at most this share of a subsampled map is taken by the hard images (more would bridge the clusters)


def _map_points(wrong: np.ndarray, y: np.ndarray, n: int, hard_min: int, seed: int) -> np.ndarray:
    """Positions (into the classify test images) drawn on the map: all when ``n`` is 0 or covers them;
    otherwise the hard images first (most-missed first, up to MAP_HARD_SHARE of ``n``), then a
    stratified sample of the rest."""
    if n <= 0 or n >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    missed = np.flatnonzero(wrong >= hard_min)
    missed = missed[np.lexsort((rng.random(len(missed)), -wrong[missed]))][: int(MAP_HARD_SHARE * n)]
    rest = np.setdiff1d(np.arange(len(y)), missed)
    fill = rest[subset_indices(y[rest], n - len(missed), seed)]
    return np.sort(np.concatenate([missed, fill]))


def _map(ctx: TaskContext, cfg: Config, images: np.ndarray, z_test: np.ndarray, wrong: np.ndarray, y: np.ndarray,
         hard_min: int):
    pos = _map_points(wrong, y, cfg.map_points, hard_min, ctx.seed)
    source = images[pos] if cfg.map_method == "pca" else z_test[pos]  # t-SNE / UMAP on the training-fitted PCA
    with status(ctx.progress, f"errors: {cfg.map_method} map of {len(pos):,} test images"):
        t0 = time.perf_counter()
        emb = E.embed(source, cfg.map_method, seed=ctx.seed, n_jobs=ctx.n_jobs, pca_dims=0)
    return pos, emb, time.perf_counter() - t0


def _trait_positions(cfg: Config, y: np.ndarray, wrong: np.ndarray, hard: np.ndarray, seed: int) -> np.ndarray:
    """The hard images and up to ``reference_per_class`` images per class that every model gets right."""
    ref = np.flatnonzero(wrong == 0)
    if cfg.reference_per_class:
        n_classes = int(y.max()) + 1
        ref = ref[subset_indices(y[ref], min(len(ref), cfg.reference_per_class * n_classes), seed)]
    return np.union1d(hard, ref)


def _traits(ctx: TaskContext, cfg: Config, images: np.ndarray, y: np.ndarray, z_test: np.ndarray, lab: dict,
            p_given: np.ndarray, at: np.ndarray) -> dict[str, np.ndarray]:
    """Traits of the images at positions ``at`` (NaN elsewhere)."""
    strokes = bool(ctx.dataset.meta.get("ink_on_blank", False)) and ctx.dataset.channels == 1
    traits = {}
    for name, v in A.image_traits(images[at], strokes=strokes).items():
        traits[name] = np.full(len(y), np.nan)
        traits[name][at] = v
    centres = A.class_centres(lab["z_train"], lab["part"].y_train, ctx.dataset.n_classes)
    traits["centre_distance"] = A.centre_distance(z_test, y, centres)
    traits["given_label_probability"] = p_given
    return traits


TRAIT_COLUMNS = {"stroke_width": "stroke width (px)", "ink_ratio": "ink ratio", "slant_deg": "slant (deg, + = right)",
                 "abs_slant_deg": "absolute slant (deg)", "mean_intensity": "mean intensity",
                 "centre_distance": "distance to class centre (PCA)", "given_label_probability": "probability of the given label"}
TRAIT_WORDS = {"stroke_width": "stroke width", "ink_ratio": "ink ratio", "slant_deg": "slant", "abs_slant_deg": "absolute slant",
               "mean_intensity": "mean intensity", "centre_distance": "distance to the class centre",
               "given_label_probability": "probability of the given label"}


# =============================================================================================
# Run
# =============================================================================================


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    """Study the classify models' test errors and rank suspicious labels."""
    cfg.validate()
    ds, classes = ctx.dataset, list(ctx.dataset.classes)
    preds = A.load_predictions(ctx.upstream("classify").file("predictions.npz"))
    y, test_index = preds["y_true"], preds["test_index"]
    images = ds.x_test[test_index]
    names, errors = A.error_matrix(y, preds["pred"])
    wrong = errors.sum(0)
    m = len(names)
    hard_min = max(1, int(np.ceil(cfg.hard_fraction * m)))
    hard = np.flatnonzero(wrong >= hard_min)
    hard = hard[np.argsort(-wrong[hard], kind="stable")]
    conf = {n: A.confidence(preds["proba"][n], len(y)) for n in names}

    clock = {"start": time.perf_counter()}
    with status(ctx.progress, "errors: label issues (cross-validation, confident learning)"):
        lab = _label_issues(ctx, cfg, preds, images)
    clock["label_issues"] = time.perf_counter()
    p_given = lab["p_test"][np.arange(len(y)), y]
    at = _trait_positions(cfg, y, wrong, hard, ctx.seed)
    traits = _traits(ctx, cfg, images, y, lab["z_test"], lab, p_given, at)
    comparison = A.trait_comparison(traits, y, hard, np.isin(np.arange(len(y)), at) & (wrong == 0))
    clock["traits"] = time.perf_counter()
    pos, emb, map_s = _map(ctx, cfg, images, lab["z_test"], wrong, y, hard_min)
    # The map for the report's explorer: rows of classify's test order, 2-D positions, the images themselves.
    np.savez_compressed(ctx.out_dir / "error_map.npz", pos=pos, xy=np.asarray(emb, np.float32),
                        images=np.asarray(images[pos], np.uint8))
    clock["map"] = time.perf_counter()
    jac = A.jaccard_matrix(errors)
    inter = A.intersections(errors, names)
    _write_csvs(ctx, names, preds, conf, lab, classes)

    d = {"names": names, "errors": errors, "wrong": wrong, "hard": hard, "hard_min": hard_min, "conf": conf, "jac": jac,
         "inter": inter, "lab": lab, "traits": traits, "comparison": comparison, "pos": pos, "emb": emb, "y": y,
         "test_index": test_index, "images": images, "preds": preds, "classes": classes, "map_s": map_s}
    figures = _figures(ctx, cfg, d)
    clock["figures"] = time.perf_counter()
    steps = list(clock)
    d["seconds"] = {b: round(clock[b] - clock[a], 2) for a, b in zip(steps, steps[1:])}
    found = _findings(cfg, d)
    return TaskResult(
        title=TITLE,
        summary=(f"We study the test-set mistakes of the {m} classify models on {len(y):,} test images of {ds.name}: where "
                 "they lie on a 2-D map of the test images, how much the models' error sets overlap, what the images most "
                 f"models miss look like, and which given labels are probably wrong (confident learning on out-of-sample "
                 f"probabilities for {lab['part'].n_train:,} training and {len(y):,} test images)."),
        headline=found[0],
        findings=found,
        tables=_tables(cfg, d),
        figures=figures,
        notes=lab["part"].notes + _notes(cfg, d),
        metrics=_metrics(cfg, d),
    )


def _write_csvs(ctx: TaskContext, names, preds, conf, lab, classes) -> None:
    """misclassified.csv (every model's mistakes) and label_issues_{test,train}.csv (ranked candidates)."""
    with open(ctx.out_dir / "misclassified.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "index", "true", "predicted", "confidence"])
        for n in names:
            for r in A.misclassified(preds["y_true"], preds["pred"][n], conf[n], preds["test_index"]):
                w.writerow([n, r["index"], classes[r["true"]], classes[r["predicted"]],
                            "" if r["confidence"] is None else f"{r['confidence']:.4f}"])
    for part in ("test", "train"):
        with open(ctx.out_dir / f"label_issues_{part}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["index", "given", "suggested", "score"])
            for r in lab[part]:
                w.writerow([r["index"], classes[r["given"]], classes[r["suggested"]], f"{r['score']:.6f}"])


# =============================================================================================
# Tables
# =============================================================================================


def _r(x: Any, nd: int = 3) -> Any:
    return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else round(float(x), nd)


def _vote_text(preds: dict, i: int, classes: list[str], top: int = 3) -> str:
    v = A.votes(preds["pred"], i, len(classes))
    order = [c for c in np.argsort(-v, kind="stable") if v[c] > 0][:top]
    return ", ".join(f"{classes[c]}×{v[c]}" for c in order)


def _model_rows(d: dict) -> list[dict]:
    names, errors, y = d["names"], d["errors"], d["y"]
    others = {n: errors[[j for j in range(len(names)) if j != i]].any(0) if len(names) > 1 else np.zeros_like(errors[i])
              for i, n in enumerate(names)}
    rows = []
    for i, n in enumerate(names):
        e, c = errors[i], d["conf"][n]
        rows.append({"model": words(n), "errors": int(e.sum()), "error %": _r(100 * e.mean(), 2),
                     "only this model": int((e & ~others[n]).sum()),
                     "hard images among them": int((e & (d["wrong"] >= d["hard_min"])).sum()),
                     "confidence on mistakes": _r(np.nanmean(c[e])) if e.any() and np.isfinite(c).any() else None,
                     "confidence when right": _r(np.nanmean(c[~e])) if (~e).any() and np.isfinite(c).any() else None})
    return sorted(rows, key=lambda r: r["errors"])


def _tables(cfg: Config, d: dict) -> list[Table]:
    names, classes, preds, lab = d["names"], d["classes"], d["preds"], d["lab"]
    mistakes = [{"model": words(n), "index": r["index"], "true": classes[r["true"]], "predicted": classes[r["predicted"]],
                 "confidence": _r(r["confidence"])}
                for n in names for r in A.misclassified(d["y"], preds["pred"][n], d["conf"][n], d["test_index"])[:cfg.list_per_model]]
    jac_rows = [{"model": words(a), **{words(b): _r(d["jac"][i, j], 2) for j, b in enumerate(names)}} for i, a in enumerate(names)]
    inter_rows = [{"models": ", ".join(words(n) for n in r["models"]), "number of models": r["degree"], "images": r["size"]}
                  for r in d["inter"][:cfg.top_intersections]]
    hard_rows = [{"index": int(d["test_index"][i]), "given": classes[d["y"][i]], "models wrong": int(d["wrong"][i]),
                  "votes": _vote_text(preds, i, classes),
                  **{TRAIT_COLUMNS[t]: _r(v[i]) for t, v in d["traits"].items()}} for i in d["hard"][:cfg.gallery_size]]
    trait_rows = [{"trait": TRAIT_COLUMNS[r["trait"]], "hard images": r["n_hard"], "hard mean": _r(r["hard_mean"]),
                   "same-class correct mean": _r(r["reference_mean"]), "mean z": _r(r["mean_z"], 2),
                   "mean |z|": _r(r["mean_abs_z"], 2), "mean |z| of the correct": _r(r["reference_abs_z"], 2),
                   "mean percentile": _r(r["mean_percentile"], 1)} for r in d["comparison"]]
    m = len(names)
    return [
        Table("models", _model_rows(d), "Mistakes per model on the test set: how many only this model makes, how many are "
              f"images at least {d['hard_min']} of the {m} models miss, and its mean probability for the predicted class on "
              "mistakes and on correct predictions (empty for models with decision scores only)."),
        Table("confident_mistakes", mistakes, f"Each model's {cfg.list_per_model} most confident mistakes (index in the official "
              "test order); misclassified.csv lists every mistake of every model."),
        Table("jaccard", jac_rows, "Jaccard index of the models' error sets: images both get wrong / images either gets wrong."),
        Table("intersections", inter_rows, "The largest exclusive intersections of the error sets: images that exactly these "
              "models, and no other, get wrong."),
        Table("hard_images", hard_rows, f"The images most models miss (at least {d['hard_min']} of {m}), with the models' votes "
              "and their traits."),
        Table("traits", trait_rows, f"Traits of the {len(d['hard']):,} hard images against the images of the same class that "
              "every model classifies correctly: z = distance from the same-class mean in same-class standard deviations; "
              "percentile 50 = typical of the class."),
        Table("label_issues_test", _candidate_rows(d, "test", cfg.top_candidates),
              f"Top {cfg.top_candidates} test images whose given label is most probably wrong: those confident learning flags, "
              "by self-confidence, then (flagged = no) the unflagged images of lowest self-confidence; label_issues_test.csv "
              "holds every flagged image."),
        Table("label_issues_train", _candidate_rows(d, "train", cfg.top_candidates),
              f"Top {cfg.top_candidates} training-image candidates, ordered as for the test "
              "set (index in the official training order); label_issues_train.csv holds every flagged image."),
    ]


def _candidate_rows(d: dict, part: str, top: int) -> list[dict]:
    """The first ``top`` label-issue candidates of ``part``; test rows also count the models predicting the suggestion."""
    classes, preds, names = d["classes"], d["preds"], d["names"]
    rows = []
    for k, r in enumerate(d["lab"]["top"][part][:top]):
        row = {"rank": k + 1, "index": r["index"], "given": classes[r["given"]], "suggested": classes[r["suggested"]],
               "self-confidence": _r(r["score"], 4), "flagged": "yes" if r["flagged"] else "no"}
        if part == "test":
            i = _pos(d, r["index"])
            row["models predicting the suggestion"] = int(sum(preds["pred"][n][i] == r["suggested"] for n in names))
        rows.append(row)
    return rows


def _pos(d: dict, index: int) -> int:
    """Position in the classify test arrays of official test image ``index``."""
    return int(np.searchsorted(d["test_index"], index)) if np.all(np.diff(d["test_index"]) > 0) else \
        int(np.flatnonzero(d["test_index"] == index)[0])


# =============================================================================================
# Figures
# =============================================================================================


def _figures(ctx: TaskContext, cfg: Config, d: dict) -> list:
    import matplotlib.pyplot as plt

    out, figs = ctx.out_dir, []
    names, classes, m, pos = d["names"], d["classes"], len(d["names"]), d["pos"]
    labels = {n: words(n) for n in names}
    method = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[cfg.map_method]
    errors_on_map = d["errors"][:, pos]
    n_hard = int(np.isin(pos, d["hard"]).sum())
    share, natural = n_hard / len(pos), len(d["hard"]) / len(d["y"])
    add_figure(figs, A.plot_error_maps(d["emb"], d["y"][pos], classes, errors_on_map, names, labels), out, "error_map",
               f"{method} map of {len(pos):,} of the {len(d['y']):,} test images"
               + (f" ({n_hard:,} of the {len(d['hard']):,} hard images, {100 * share:.0f} % of the map against "
                  f"{100 * natural:.0f} % of the test set, and a stratified sample of the rest)" if len(pos) < len(d["y"]) else "")
               + ". Left: how many models got each image wrong (grey: none). Right: each model's mistakes in red.")
    cell = fit_width(0.55, m, extra=2.5)  # within the report's printable width
    fig, ax = plt.subplots(figsize=(cell * m + 2.5, 0.9 * cell * m + 1.5))
    im = ax.imshow(d["jac"], cmap="viridis", vmin=0, vmax=1)
    for i, j in np.ndindex(d["jac"].shape):
        ax.text(j, i, f"{d['jac'][i, j]:.2f}", ha="center", va="center", fontsize=6.5,
                color="black" if d["jac"][i, j] > 0.6 else "white")
    ax.set(xticks=range(m), yticks=range(m), xticklabels=[labels[n] for n in names], yticklabels=[labels[n] for n in names],
           title="Jaccard index of the error sets")
    plt.setp(ax.get_xticklabels(), rotation=60, ha="right", rotation_mode="anchor")
    fig.colorbar(im, ax=ax, fraction=0.04)
    add_figure(figs, fig, out, "jaccard", "Overlap of every pair of models' error sets (Jaccard index: shared mistakes / "
               "images either model gets wrong).")
    rows = d["inter"][:cfg.top_intersections]
    if rows:
        add_figure(figs, A.plot_upset(rows, names, d["errors"].sum(1), "largest exclusive intersections", labels), out, "upset",
                   f"UpSet plot: the {len(rows)} largest groups of test images that exactly the dotted models (and no other) "
                   "get wrong; left, each model's number of mistakes.")
    hard = d["hard"][:cfg.gallery_size]
    if len(hard):
        titles = [f"given {classes[d['y'][i]]}\n{_vote_text(d['preds'], i, classes)}" for i in hard]
        add_figure(figs, A.plot_gallery(d["images"][hard], titles, cols=8), out, "hard_gallery",
                   f"The test images most models miss ({len(hard)} of {len(d['hard']):,} missed by at least {d['hard_min']} of "
                   f"{m} models): given label, then the models' votes (class×models).")
    for part, source in (("test", d["images"]), ("train", ctx.dataset.x_train)):
        top = d["lab"]["top"][part]
        if not top:
            continue
        at = [_pos(d, r["index"]) for r in top] if part == "test" else [r["index"] for r in top]
        titles = [f"#{k + 1}{'' if r['flagged'] else ' (not flagged)'}\ngiven {classes[r['given']]}\n"
                  f"suggest {classes[r['suggested']]}\nself-conf. {r['score']:.3f}" for k, r in enumerate(top)]
        cols = 8 if max(len(c) for c in classes) <= 6 else 6  # four title lines per image need ~0.9 inch
        add_figure(figs, A.plot_gallery(source[at], titles, cols=cols), out,
                   f"label_issues_{part}",
                   f"The {len(top)} {part} images whose given label is most probably wrong: the candidates confident learning "
                   "flags, ranked by self-confidence (the probability of the given label), then, if there are fewer than "
                   f"{cfg.top_candidates}, the unflagged images of lowest self-confidence; each with its given label and the "
                   "suggested (most probable) label.")
    return figs


# =============================================================================================
# Findings: sentences filled in from the measurements
# =============================================================================================


def _findings(cfg: Config, d: dict) -> list[str]:
    out = [_headline(cfg, d), _count_sentence(d), _overlap_sentence(d)]
    out += [s for s in (_intersection_sentence(d), _confidence_sentence(d), _hard_sentence(d)) if s]
    out += _label_sentences(cfg, d)
    return out


def _headline(cfg: Config, d: dict) -> str:
    names, jac, errs, m, n = d["names"], d["jac"], d["errors"].sum(1), len(d["names"]), len(d["y"])
    n_all = int((d["wrong"] == m).sum())
    flagged = len(d["lab"]["test"])
    tail = (f"{n_all:,} test image{'s' if n_all != 1 else ''} fool{'s' if n_all == 1 else ''} all {m} models, and confident "
            f"learning flags {flagged:,} of {n:,} test labels ({100 * flagged / n:.2f} %) as probably wrong.")
    if m < 2:
        return tail[0].upper() + tail[1:]
    iu = np.triu_indices(m, 1)
    ratio = _chance_ratio(jac, errs, n)
    return (f"Models miss the same images {ratio:.1f}x as often as independent mistakes would (median Jaccard index of two "
            f"error sets {np.median(jac[iu]):.2f}); " + tail)


def _chance_ratio(jac: np.ndarray, errs: np.ndarray, n: int) -> float:
    """Median over model pairs of observed Jaccard / the Jaccard independent mistakes would give."""
    iu = np.triu_indices(len(errs), 1)
    ind = np.array([_independent_jaccard(errs[i], errs[j], n) for i, j in zip(*iu)])
    return float(np.median(jac[iu] / np.maximum(ind, 1e-12)))


def _count_sentence(d: dict) -> str:
    n, errs = len(d["y"]), d["errors"].sum(1)
    best, worst = int(errs.argmin()), int(errs.argmax())
    w = d["wrong"]
    return (f"On {n:,} test images the models make between {errs[best]:,} ({words(d['names'][best])}) and {errs[worst]:,} "
            f"({words(d['names'][worst])}) mistakes; {int((w > 0).sum()):,} images ({100 * (w > 0).mean():.1f} %) are missed by "
            f"at least one model, {len(d['hard']):,} by at least {d['hard_min']} of {len(d['names'])} and "
            f"{int((w == len(d['names'])).sum()):,} by all.")


def _independent_jaccard(a: float, b: float, n: int) -> float:
    """Expected Jaccard index of two error sets of sizes a and b among n images if mistakes were independent."""
    both = a * b / max(n, 1)
    return both / max(a + b - both, 1e-12)


def _overlap_sentence(d: dict) -> str:
    names, jac, errs, n = d["names"], d["jac"], d["errors"].sum(1), len(d["y"])
    m = len(names)
    if m < 2:
        return f"Only one model ({words(names[0])}) was run, so there is no overlap to measure."
    iu = np.triu_indices(m, 1)
    vals = jac[iu]
    hi, lo = int(vals.argmax()), int(vals.argmin())
    ind = np.array([_independent_jaccard(errs[i], errs[j], n) for i, j in zip(*iu)])
    ratio = _chance_ratio(jac, errs, n)
    pair = lambda k: f"{words(names[iu[0][k]])} and {words(names[iu[1][k]])} ({vals[k]:.2f})"  # noqa: E731
    return (f"Pairwise Jaccard indices of the error sets range from {vals.min():.2f} to {vals.max():.2f} (median "
            f"{np.median(vals):.2f}); the most similar mistakes are those of {pair(hi)}, the least similar {pair(lo)}. "
            f"The median pair shares {ratio:.1f}x the overlap that independent mistakes at the same error rates would give "
            f"(median {np.median(ind):.3f})"
            + (": models stumble over the same images far more often than chance." if ratio >= 2 else
               ": somewhat more shared mistakes than chance." if ratio > 1.1 else ": about what chance gives."))


def _intersection_sentence(d: dict) -> str | None:
    rows = d["inter"]
    if not rows:
        return None
    top = rows[0]
    singles = sum(r["size"] for r in rows if r["degree"] == 1)
    total = sum(r["size"] for r in rows)
    who = (f"only {words(top['models'][0])} misses" if top["degree"] == 1 else
           f"exactly {', '.join(words(n) for n in top['models'])} miss")
    return (f"The largest exclusive intersection is the {top['size']:,} images {who}; mistakes no other model makes account "
            f"for {singles:,} of the {total:,} images some model gets wrong ({100 * singles / max(total, 1):.0f} %), spread over "
            f"{len(rows):,} distinct combinations of models.")


def _confidence_sentence(d: dict) -> str | None:
    parts = []
    for i, n in enumerate(d["names"]):
        e, c = d["errors"][i], d["conf"][n]
        if np.isfinite(c).any() and e.any() and (~e).any():
            parts.append((n, float(np.nanmean(c[e])), float(np.nanmean(c[~e]))))
    if not parts:
        return None
    lo = min(parts, key=lambda t: t[2] - t[1])
    hi = max(parts, key=lambda t: t[2] - t[1])
    return (f"Mistakes come with lower confidence: the gap between mean confidence when right and when wrong ranges from "
            f"{hi[2] - hi[1]:.2f} ({words(hi[0])}: {hi[2]:.2f} against {hi[1]:.2f}) to {lo[2] - lo[1]:.2f} ({words(lo[0])}: "
            f"{lo[2]:.2f} against {lo[1]:.2f}); a small gap means the model is as sure of its mistakes as of its right answers.")


def _hard_sentence(d: dict) -> str | None:
    hard, classes, y = d["hard"], d["classes"], d["y"]
    if not len(hard):
        return (f"No test image is missed by {d['hard_min']} or more of the {len(d['names'])} models, so there is no group of "
                "hard images to describe.")
    counts = np.bincount(y[hard], minlength=len(classes))
    share = counts / np.maximum(np.bincount(y, minlength=len(classes)), 1)
    c = int(share.argmax())
    pairs: dict[tuple[int, int], int] = {}
    for i in hard:
        v = A.votes(d["preds"]["pred"], i, len(classes))
        v[y[i]] = -1
        key = (int(y[i]), int(v.argmax()))
        pairs[key] = pairs.get(key, 0) + 1
    (a, b), k = max(pairs.items(), key=lambda t: t[1])
    rows = [r for r in d["comparison"] if r["mean_abs_z"] is not None and r["reference_abs_z"]
            and r["trait"] != "given_label_probability"]
    text = (f"Of the {len(hard):,} hard images, class {classes[c]} loses the largest share of its test images "
            f"({counts[c]} of {int(np.sum(y == c))}, {100 * share[c]:.1f} %); the most common wrong vote is {classes[a]} taken "
            f"for {classes[b]} ({k} image{'s' if k != 1 else ''}).")
    if rows:
        ranked = sorted(rows, key=lambda r: -r["mean_abs_z"] / r["reference_abs_z"])
        top = ranked[0]
        side = (f"on average {abs(top['mean_z']):.1f} standard deviations {'above' if top['mean_z'] > 0 else 'below'} "
                f"their class's mean" if abs(top["mean_z"]) >= 0.5 else "in both directions")
        text += (f" Against correctly classified images of their own class they stand out most in "
                 f"{TRAIT_WORDS[top['trait']]}: mean |z| {top['mean_abs_z']:.1f} against {top['reference_abs_z']:.1f} for the "
                 f"correctly classified images themselves, {side} (mean {top['hard_mean']:.3g} against {top['reference_mean']:.3g})"
                 + ("; next come " + ", ".join(f"{TRAIT_WORDS[r['trait']]} ({r['mean_abs_z']:.1f} against "
                                                f"{r['reference_abs_z']:.1f})" for r in ranked[1:3]) if len(ranked) > 1 else "")
                 + ".")
    return text


def _label_sentences(cfg: Config, d: dict) -> list[str]:
    lab, names, preds, n_test = d["lab"], d["names"], d["preds"], len(d["y"])
    part = lab["part"]
    top = lab["top"]["test"]
    unanimous = sum(all(preds["pred"][n][_pos(d, r["index"])] == r["suggested"] for n in names) for r in top)
    extra = sum(not r["flagged"] for r in top)
    out = [f"Confident learning flags {len(lab['test']):,} of {n_test:,} test labels ({100 * len(lab['test']) / n_test:.2f} %) "
           f"and {len(lab['train']):,} of {part.n_train:,} training labels ({100 * len(lab['train']) / max(part.n_train, 1):.2f} %) "
           "as probably wrong."
           + (f" The test gallery adds the {extra} unflagged images of lowest self-confidence to make {len(top)}." if extra else "")
           + (f" All {len(names)} classify models predict the suggested label for {unanimous} of these {len(top)} test "
              "candidates; agreement shows that an image looks like the other class, not that its label is wrong: whether an "
              "image is mislabelled or merely ambiguous is a judgement the gallery lets the reader make." if top else "")]
    if lab["planted"]:
        p = lab["planted"]
        out.append(f"As a check, {p['n']:,} training labels ({100 * cfg.planted_fraction:g} %) were flipped to a random other "
                   f"class: the same procedure flags {100 * p['recall']:.0f} % of them, and {100 * p['precision_at_k']:.0f} % of its "
                   f"first {min(p['n'], p['flagged']):,} candidates are planted flips (the others are unplanted candidates) — "
                   f"out-of-fold accuracy of the {_cv_words(cfg)} is {100 * lab['oof_accuracy']:.1f} %.")
    return out


# =============================================================================================
# Notes and metrics
# =============================================================================================


def _notes(cfg: Config, d: dict) -> list[str]:
    lab = d["lab"]
    method = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[cfg.map_method]
    return [
        "Error set of a model: the test images it classifies wrongly. Jaccard index of two sets: the size of their "
        "intersection divided by the size of their union (1 = the same mistakes, 0 = no mistake in common).",
        "An UpSet plot shows how sets intersect when a Venn diagram would be unreadable: each bar counts the images that "
        "exactly the models dotted below it get wrong (an exclusive intersection).",
        f"The map is a {method} embedding of the test images themselves"
        + (f" on {cfg.pca_dims} principal components fitted on the training images" if cfg.map_method != "pca" else "")
        + f" (computed in {d['map_s']:.1f} s); the embed section maps training images instead.",
        f"Traits: ink ratio = share of pixels above the image's Otsu threshold; stroke width = ink area / skeleton length; "
        f"slant = horizontal drift of the ink per row, as an angle; distance to class centre = Euclidean distance in the "
        f"{cfg.pca_dims}-component PCA space of the training images from the mean of the given class's training images; "
        "probability of the given label = the test probabilities used for label issues (below). Stroke and slant traits are "
        "only computed for greyscale strokes on a blank background.",
        "Confident learning (Northcutt et al., 2021; the cleanlab library's find_label_issues): from out-of-sample "
        "predicted probabilities it counts, per given class, the images whose probability for another class exceeds that "
        "class's average self-confidence (the confident joint), estimates how many images of each class carry a wrong label, "
        "and flags that many; candidates are ranked by self-confidence, the probability of the given label (low = "
        "suspicious).",
        f"Training probabilities: {cfg.cv_folds}-fold stratified cross-validation of a {_cv_words(cfg)} on "
        f"{lab['part'].n_train:,} training images (each image scored by a model that never saw its label). Test "
        "probabilities: " + lab["test_source"] + " (trained on training images only, so out of sample for every test "
        "image).",
    ]


def _metrics(cfg: Config, d: dict) -> dict[str, Any]:
    names, m = d["names"], len(d["names"])
    iu = np.triu_indices(m, 1)
    lab = d["lab"]
    return {"n_test": int(len(d["y"])), "n_train": int(lab["part"].n_train), "models": names,
            "errors": {n: int(e) for n, e in zip(names, d["errors"].sum(1))},
            "missed_by_any": int((d["wrong"] > 0).sum()), "missed_by_all": int((d["wrong"] == m).sum()),
            "n_hard": int(len(d["hard"])), "hard_min_models": d["hard_min"],
            "jaccard_median": round(float(np.median(d["jac"][iu])), 4) if m > 1 else None,
            "jaccard": {f"{a}|{b}": round(float(d["jac"][i, j]), 4) for i, j in zip(*iu) for a, b in [(names[i], names[j])]},
            "label_issues_test": len(lab["test"]), "label_issues_train": len(lab["train"]),
            "label_issues_test_top": [r["index"] for r in lab["top"]["test"]],
            "test_proba_models": lab["test_models"], "cv_oof_accuracy": round(lab["oof_accuracy"], 4),
            "planted": lab["planted"], "map_points": int(len(d["pos"])), "map_seconds": round(d["map_s"], 2),
            "step_seconds": d["seconds"],
            "files": {"label_issues_test": "label_issues_test.csv", "label_issues_train": "label_issues_train.csv",
                      "misclassified": "misclassified.csv"}}
