"""Task ``features``: hand-crafted image statistics and which of them tell the classes apart.

Steps: extract the features (of every image, timed, or of the subsets only), score each feature
against the label (ANOVA F, mutual information), find the class pair each one separates best
(pairwise ROC-AUC), and train classifiers on the features, the top-k features and raw pixels with
the same train/test images.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from digitlab.names import model_name
from digitlab.data.subsets import subset_indices
from digitlab.exceptions import ConfigError
from digitlab.features import (
    CLASSIFIERS,
    class_mean_images,
    describe_feature,
    extract_features,
    feature_scores,
    feature_vs_pixel_accuracy,
    pairwise_auc,
    pairwise_separation,
    plot_class_mean_images,
    plot_feature_distributions,
    plot_feature_scores,
    plot_pairwise_auc,
)
from digitlab.study.task import Figure, Table, TaskContext, TaskResult, save_png

NAME = "features"
TITLE = "What is in an image: statistical features and which ones tell the classes apart"


@dataclass
class Config:
    n_train: int = 20000  # training images (stratified subset) for scores, plots and classifier fitting; 0 = all
    n_test: int = 10000  # test images (stratified subset) for classifier accuracy; 0 = all
    extract_all: bool = True  # extract (and time) features of every train and test image, not only the subsets
    threshold: int = 128  # fixed binarisation threshold: a pixel is ink when >= threshold (0-255)
    zoning: int = 4  # zoning grid: zoning x zoning cells of mean intensity
    top_k: int = 8  # features given to the "top-k" classifiers
    rank_by: str = "F"  # ranking that picks the top-k: "F" (ANOVA) or "MI" (mutual information)
    n_plot: int = 6  # features shown in the distribution and pair-separation plots
    classifiers: list[str] = field(default_factory=lambda: ["logreg", "rf"])  # from: logreg, rf, knn
    rf_trees: int = 100  # trees in the random forest
    logreg_max_iter: int = 300  # lbfgs iterations of the logistic regression

    def validate(self) -> None:
        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key features.{key}: {problem}; {fix}")

        if self.n_train < 0 or self.n_test < 0:
            raise bad("n_train/n_test", "negative", "use 0 for all images or a positive size")
        if not 1 <= self.threshold <= 255:
            raise bad("threshold", f"{self.threshold} out of range", "use 1 to 255")
        if not 1 <= self.zoning <= 14:
            raise bad("zoning", f"{self.zoning} out of range", "use 1 to 14")
        if self.top_k < 1:
            raise bad("top_k", f"{self.top_k} < 1", "use at least 1")
        if self.rank_by not in ("F", "MI"):
            raise bad("rank_by", f"{self.rank_by!r} unknown", "use \"F\" or \"MI\"")
        if not 1 <= self.n_plot <= 12:
            raise bad("n_plot", f"{self.n_plot} out of range", "use 1 to 12")
        unknown = [c for c in self.classifiers if c not in CLASSIFIERS]
        if unknown or not self.classifiers:
            raise bad("classifiers", f"{unknown or 'empty list'}", f"choose from {', '.join(CLASSIFIERS)}")
        if self.rf_trees < 1 or self.logreg_max_iter < 1:
            raise bad("rf_trees/logreg_max_iter", "must be positive", "use e.g. 100 and 300")


PROFILES: dict[str, dict] = {
    "quick": {"n_train": 3000, "n_test": 1000, "extract_all": False, "rf_trees": 60},
    "full": {"n_train": 0, "n_test": 0},
}


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------

def _extract(ctx: TaskContext, cfg: Config, tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """Features of the train/test subsets; with ``extract_all`` of every image first (timed)."""
    ds = ctx.dataset
    t0 = time.perf_counter()
    if cfg.extract_all:
        Xa, names = extract_features(ds.x_train, cfg.threshold, cfg.zoning)
        Xb, _ = extract_features(ds.x_test, cfg.threshold, cfg.zoning)
        Xtr, Xte, n = Xa[tr], Xb[te], len(Xa) + len(Xb)
    else:
        Xtr, names = extract_features(ds.x_train[tr], cfg.threshold, cfg.zoning)
        Xte, _ = extract_features(ds.x_test[te], cfg.threshold, cfg.zoning)
        n = len(Xtr) + len(Xte)
    secs = time.perf_counter() - t0
    return Xtr, Xte, names, {"n_images": n, "seconds": secs, "images_per_second": n / max(secs, 1e-9)}


def _plot_features(scores: list[dict], n: int) -> list[str]:
    """The top features by F and by MI, interleaved (F1, MI1, F2, MI2, ...) without repeats."""
    by_f = [r["feature"] for r in sorted(scores, key=lambda r: r["rank_F"])]
    by_mi = [r["feature"] for r in sorted(scores, key=lambda r: r["rank_MI"])]
    out: list[str] = []
    for pair in zip(by_f, by_mi):
        for name in pair:
            if name not in out and len(out) < n:
                out.append(name)
    return out


def _class_means_rows(X: np.ndarray, y: np.ndarray, names: list[str], features: list[str], classes: list[str]) -> list[dict]:
    rows = []
    for feat in features:
        col = X[:, names.index(feat)]
        rows.append({"feature": feat} | {c: round(float(col[y == i].mean()), 3) if np.any(y == i) else None
                                          for i, c in enumerate(classes)})
    return rows


# ---------------------------------------------------------------------------------------------
# Findings (sentences filled in from the numbers)
# ---------------------------------------------------------------------------------------------

def _rank_findings(scores: list[dict], sep: dict[str, dict]) -> list[str]:
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
        + (f" F only compares class means with the within-class spread, so MI's higher rating of "
           f"{', '.join(mi_favoured)} points to class differences in shape or modes rather than in the mean alone."
           if mi_favoured else ""),
    ]
    pairs = "; ".join(f"{r['feature']} separates {sep[r['feature']]['best_pair']} best (AUC {sep[r['feature']]['auc']:.3f}, "
                      f"higher for {sep[r['feature']]['higher']})" for r in by_f[:3])
    out.append(f"Best-separated class pairs of the top features by F: {pairs}.")
    weakest = by_f[-2:]
    out.append("The least informative features are " + " and ".join(
        f"{r['feature']} (F = {r['F']:.1f}, MI = {r['MI']:.3f})" for r in weakest) + ".")
    return out


def _holes_finding(X: np.ndarray, y: np.ndarray, names: list[str], classes: list[str]) -> list[str]:
    if "holes" not in names:
        return []
    col = X[:, names.index("holes")]
    means = {c: float(col[y == i].mean()) for i, c in enumerate(classes) if np.any(y == i)}
    many = [f"{c} ({m:.2f})" for c, m in sorted(means.items(), key=lambda kv: -kv[1]) if m >= 0.5]
    few = [f"{c} ({m:.2f})" for c, m in sorted(means.items(), key=lambda kv: kv[1]) if m < 0.2]
    if not many or not few:
        return [f"Mean number of holes per class: " + ", ".join(f"{c} {m:.2f}" for c, m in means.items()) + "."]
    return [f"Topology splits the classes: images of {', '.join(many)} average at least half a hole, "
            f"those of {', '.join(few)} fewer than 0.2 (mean holes per image in brackets)."]


def _input_key(label: str) -> str:
    """Short key of an input label: "all features" -> features, "top-8 features" -> top8, "raw pixels" -> pixels."""
    return {"all features": "features", "raw pixels": "pixels"}.get(label, label.split(" ")[0].replace("-", ""))


def _accuracy_findings(acc: list[dict]) -> list[str]:
    out = []
    for clf in dict.fromkeys(r["classifier"] for r in acc):
        rows = {_input_key(r["input"]): r for r in acc if r["classifier"] == clf}
        feats, pix = rows.pop("features"), rows.pop("pixels")
        (top,) = rows.values()
        gap = 100 * (pix["accuracy"] - feats["accuracy"])
        out.append(f"{model_name({'rf': 'random_forest'}.get(clf, clf))}: the {feats['n_inputs']} hand-crafted features reach {100 * feats['accuracy']:.1f} % test accuracy, "
                   f"the {top['input']} {100 * top['accuracy']:.1f} %, and the {pix['n_inputs']} raw pixels "
                   f"{100 * pix['accuracy']:.1f} % ({abs(gap):.1f} points {'above' if gap >= 0 else 'below'} all features, "
                   f"from {pix['n_inputs'] / feats['n_inputs']:.0f}x as many inputs).")
    return out


# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------

def not_applicable(ds) -> str | None:
    """Why these features do not apply to ``ds`` (None when they do): they measure ink on a blank
    background of greyscale images (binarised strokes, holes, stroke width)."""
    if ds.channels > 1:
        return (f"{ds.name} holds colour photographs ({ds.channels} channels): the statistical features of this section "
                "measure ink strokes on a blank background of greyscale images (binarised ink share, holes, stroke width, "
                "slant), which have no meaning for them, so the section is left out for this dataset.")
    return None


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    ds, C = ctx.dataset, ctx.dataset.n_classes
    reason = not_applicable(ds)
    if reason:
        return TaskResult(title=TITLE, summary=reason, headline="Not applicable to colour photographs.", findings=[reason],
                          metrics={"skipped": True, "reason": reason})
    if cfg.zoning > min(ds.image_shape):
        raise ConfigError(f"config key features.zoning: {cfg.zoning} exceeds the {ds.image_shape} image size; use at most {min(ds.image_shape)}")
    tr, te = subset_indices(ds.y_train, cfg.n_train, ctx.seed), subset_indices(ds.y_test, cfg.n_test, ctx.seed)
    ytr, yte = ds.y_train[tr], ds.y_test[te]
    steps: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        steps[step] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()
        ctx.log.info("features: %s done in %.1f s", step, steps[step])

    Xtr, Xte, names, timing = _extract(ctx, cfg, tr, te)
    lap("extract")
    scores = feature_scores(Xtr, ytr, names, seed=ctx.seed, n_jobs=ctx.n_jobs)
    auc = pairwise_auc(Xtr, ytr, C)
    sep = {r["feature"]: r for r in pairwise_separation(Xtr, ytr, names, ds.classes, auc=auc)}
    rank_key = "rank_F" if cfg.rank_by == "F" else "rank_MI"
    top_idx = [names.index(r["feature"]) for r in sorted(scores, key=lambda r: r[rank_key])[: cfg.top_k]]
    lap("scores")
    acc = feature_vs_pixel_accuracy(Xtr, ytr, Xte, yte, ds.x_train[tr], ds.x_test[te], top_idx, cfg.classifiers,
                                    seed=ctx.seed, n_jobs=ctx.n_jobs, rf_trees=cfg.rf_trees, max_iter=cfg.logreg_max_iter,
                                    progress=ctx.progress)
    lap("classifiers")
    shown = _plot_features(scores, cfg.n_plot)
    means, variances = class_mean_images(ds.x_train, ds.y_train, C)
    figures = _figures(ctx, Xtr, ytr, names, scores, auc, shown, means, variances)
    lap("figures")

    score_rows = [{"feature": r["feature"], "description": describe_feature(r["feature"]), "F": round(r["F"], 1),
                   "p_value": r["p_value"], "MI": round(r["MI"], 4), "rank_F": r["rank_F"], "rank_MI": r["rank_MI"],
                   "best_pair": sep[r["feature"]]["best_pair"], "pair_auc": round(sep[r["feature"]]["auc"], 3),
                   "higher": sep[r["feature"]]["higher"], "mean_pair_auc": round(sep[r["feature"]]["mean_pair_auc"], 3)}
                  for r in sorted(scores, key=lambda r: r["rank_F"])]
    acc_rows = [r | {"accuracy": round(r["accuracy"], 4)} for r in acc]
    tables = [
        Table("feature_scores", score_rows, f"Every feature scored on {len(ytr):,} training images, sorted by ANOVA F; "
              "best_pair is the class pair it separates best (ROC-AUC, 0.5 = chance), higher the class with larger values.",
              list(score_rows[0])),
        Table("class_means", _class_means_rows(Xtr, ytr, names, shown, ds.classes), "Per-class mean of the plotted features.",
              ["feature"] + list(ds.classes)),
        Table("accuracy", acc_rows, f"Test accuracy on {len(yte):,} test images after fitting on {len(ytr):,} training images "
              f"(top-k ranked by {cfg.rank_by}).", ["classifier", "input", "n_inputs", "accuracy", "fit_seconds"]),
    ]
    accuracy = _accuracy_findings(acc)
    findings = _rank_findings(scores, sep) + _holes_finding(Xtr, ytr, names, ds.classes) + accuracy
    findings.append(f"Extracting {len(names)} features from {timing['n_images']:,} images took {timing['seconds']:.1f} s "
                    f"({timing['images_per_second']:,.0f} images per second, vectorised NumPy/SciPy on the CPU).")
    by_f, by_mi = (min(scores, key=lambda r: r[k]) for k in ("rank_F", "rank_MI"))
    headline = (f"The most discriminative feature is {by_f['feature']} ({describe_feature(by_f['feature'])}; ANOVA F "
                f"{by_f['F']:,.0f}); " + (accuracy[0][0].lower() + accuracy[0][1:] if accuracy else ""))
    metrics = {"n_features": len(names), "extraction_seconds": round(timing["seconds"], 3),
               "images_per_second": round(timing["images_per_second"], 1), "n_train": int(len(ytr)), "n_test": int(len(yte)),
               "top_F_feature": by_f["feature"], "top_MI_feature": by_mi["feature"], "step_seconds": steps}
    metrics |= {f"accuracy_{r['classifier']}_{_input_key(r['input'])}": round(r["accuracy"], 4) for r in acc}
    return TaskResult(title=TITLE, summary=_SUMMARY, headline=headline, findings=findings, tables=tables, figures=figures,
                      notes=_notes(cfg, len(ytr), len(yte)), metrics=metrics)


def _figures(ctx: TaskContext, X: np.ndarray, y: np.ndarray, names: list[str], scores: list[dict], auc: np.ndarray,
             shown: list[str], means: np.ndarray, variances: np.ndarray) -> list[Figure]:
    classes, out = ctx.dataset.classes, ctx.out_dir
    return [
        Figure("class_means", save_png(plot_class_mean_images(means, variances, classes), out, "class_means"),
               "Per-class mean image (top) and pixel variance (bottom) over all training images."),
        Figure("feature_scores", save_png(plot_feature_scores(scores), out, "feature_scores"),
               "ANOVA F (log scale) and mutual information with the label for every feature, sorted by F."),
        Figure("distributions", save_png(plot_feature_distributions(X, y, names, shown, classes), out, "distributions"),
               "Per-class distributions of the top features by F and by MI: violins for continuous features, "
               "shares of each value for counts."),
        Figure("pair_separation", save_png(plot_pairwise_auc(auc, names, shown[:4], classes), out, "pair_separation"),
               "How well each feature separates every pair of classes: max(AUC, 1 - AUC), 0.5 = not at all, 1 = perfectly."),
    ]


_SUMMARY = ("Before learning features we measure hand-crafted ones: intensity and ink statistics, bounding box, "
            "centroid and second-order moments, symmetry, projection profiles, topology (holes from the Euler number), "
            "stroke width and a coarse zoning grid. Each feature is scored against the label, its best-separated class "
            "pairs are found, and classifiers on the features are compared with the same classifiers on raw pixels.")


def _notes(cfg: Config, n_train: int, n_test: int) -> list[str]:
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
