"""Task ``features``: hand-crafted image statistics and which of them tell the classes apart.

Steps: extract the features (of every image, timed, or of the subsets only), score each feature
against the label (ANOVA F, mutual information), find the class pair each one separates best
(pairwise ROC-AUC), and train classifiers on the features, the top-k features and raw pixels with
the same train/test images.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from digitlab.data.subsets import subset_indices  # noqa: F401  (the one subset rule; tests check it is shared)
from digitlab.exceptions import ConfigError
from digitlab.experiments.feature_study import feature_study
from digitlab.features import CLASSIFIERS, describe_feature
from digitlab.study.common import add_figure
from digitlab.study.prose import features as P
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "features"
TITLE = "What is in an image: statistical features and which ones tell the classes apart"


@dataclass
class Config:
    # training images (stratified subset) for scores, plots and classifier fitting; 0 = all
    n_train: int = 20000
    n_test: int = 10000  # test images (stratified subset) for classifier accuracy; 0 = all
    # extract (and time) features of every train and test image, not only the subsets
    extract_all: bool = True
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
            raise bad("rank_by", f"{self.rank_by!r} unknown", 'use "F" or "MI"')
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
# Run: the experiment's result -> tables, figures, findings
# ---------------------------------------------------------------------------------------------


def _records(df) -> list[dict]:
    """Rows of a DataFrame as plain-Python dicts (JSON-ready)."""
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in df.to_dict("records")]


def not_applicable(ds) -> str | None:
    """Why these features do not apply to ``ds`` (None when they do): they measure ink on a blank
    background of greyscale images (binarised strokes, holes, stroke width)."""
    return P.not_applicable(ds.name, ds.channels) if ds.channels > 1 else None


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    ds = ctx.dataset
    reason = not_applicable(ds)
    if reason:
        return TaskResult(
            title=TITLE,
            summary=reason,
            headline=P.SKIPPED_HEADLINE,
            findings=[reason],
            metrics={"skipped": True, "reason": reason},
        )
    if cfg.zoning > min(ds.image_shape):
        raise ConfigError(
            f"config key features.zoning: {cfg.zoning} exceeds the {ds.image_shape} image size; use at most {min(ds.image_shape)}"
        )
    fs = feature_study(
        ds,
        n_train=cfg.n_train,
        n_test=cfg.n_test,
        extract_all=cfg.extract_all,
        threshold=cfg.threshold,
        zoning=cfg.zoning,
        top_k=cfg.top_k,
        rank_by=cfg.rank_by,
        n_plot=cfg.n_plot,
        classifiers=cfg.classifiers,
        rf_trees=cfg.rf_trees,
        max_iter=cfg.logreg_max_iter,
        seed=ctx.seed,
        n_jobs=ctx.n_jobs,
        progress=ctx.progress,
    )
    for step, secs in fs.step_seconds.items():
        ctx.log.info("features: %s done in %.1f s", step, secs)
    t0 = time.perf_counter()
    figures: list = []
    add_figure(figures, fs.plot_class_means(), ctx.out_dir, "class_means", P.CLASS_MEANS)
    add_figure(figures, fs.plot_scores(), ctx.out_dir, "feature_scores", P.FEATURE_SCORES)
    add_figure(figures, fs.plot_distributions(), ctx.out_dir, "distributions", P.DISTRIBUTIONS)
    add_figure(figures, fs.plot_pair_separation(), ctx.out_dir, "pair_separation", P.PAIR_SEPARATION)
    steps = {**fs.step_seconds, "figures": round(time.perf_counter() - t0, 2)}
    ctx.log.info("features: figures done in %.1f s", steps["figures"])

    scores, acc = _records(fs.scores), _records(fs.accuracy)
    n_train, n_test = len(fs.y_train), fs.n_test
    score_rows = [
        {
            "feature": r["feature"],
            "description": r["description"],
            "F": round(r["F"], 1),
            "p_value": r["p_value"],
            "MI": round(r["MI"], 4),
            "rank_F": r["rank_F"],
            "rank_MI": r["rank_MI"],
            "best_pair": r["best_pair"],
            "pair_auc": round(r["pair_auc"], 3),
            "higher": r["higher"],
            "mean_pair_auc": round(r["mean_pair_auc"], 3),
        }
        for r in sorted(scores, key=lambda r: r["rank_F"])
    ]
    acc_rows = [r | {"accuracy": round(r["accuracy"], 4)} for r in acc]
    tables = [
        Table("feature_scores", score_rows, P.SCORES_TABLE.format(n=n_train), list(score_rows[0])),
        Table("class_means", _records(fs.class_means), P.CLASS_MEANS_TABLE, ["feature"] + list(ds.classes)),
        Table(
            "accuracy",
            acc_rows,
            P.ACCURACY_TABLE.format(n_test=n_test, n_train=n_train, rank_by=cfg.rank_by),
            ["classifier", "input", "n_inputs", "accuracy", "fit_seconds"],
        ),
    ]
    accuracy = P.accuracy_findings(acc)
    holes = fs.class_mean("holes") if "holes" in fs.names else {}
    findings = P.rank_findings(scores) + P.holes_finding(holes) + accuracy
    findings.append(P.timing_finding(len(fs.names), fs.timing))
    by_f, by_mi = (min(scores, key=lambda r: r[k]) for k in ("rank_F", "rank_MI"))
    metrics = {
        "n_features": len(fs.names),
        "extraction_seconds": round(fs.timing["seconds"], 3),
        "images_per_second": round(fs.timing["images_per_second"], 1),
        "n_train": int(n_train),
        "n_test": int(n_test),
        "top_F_feature": by_f["feature"],
        "top_MI_feature": by_mi["feature"],
        "step_seconds": steps,
    }
    metrics |= {f"accuracy_{r['classifier']}_{P.input_key(r['input'])}": round(r["accuracy"], 4) for r in acc}
    return TaskResult(
        title=TITLE,
        summary=P.SUMMARY,
        headline=P.headline(by_f, describe_feature(by_f["feature"]), accuracy),
        findings=findings,
        tables=tables,
        figures=figures,
        notes=P.notes(cfg, n_train, n_test),
        metrics=metrics,
    )
