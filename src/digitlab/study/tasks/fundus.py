"""Task ``fundus``: diabetic-retinopathy grading on colour fundus photographs (the DDR dataset).

Runs on a dataset whose metadata says ``kind = "fundus"`` (``digitlab run --dataset ddr --data-dir
DIR``); on any other dataset it returns at once a short section saying how to run it.

1. **Grading models.** The classic zoo on downsampled pixels and on hand-crafted colour/texture
   features (:mod:`digitlab.fundus_features`), and the CNN family (the configurable CNN, ResNet,
   ConvMixer) trained through :func:`digitlab.grid.fit_and_score`. Class imbalance (DDR has
   ~26x more "no DR" than "severe NPDR" images) is handled by random oversampling of the training
   indices (every grade drawn up to the largest grade's count), configurable.
2. **Metrics that fit grading.** Quadratic weighted kappa (QWK, a miss by two grades costs four
   times a miss by one) with a bootstrap interval, per-grade recall, the confusion matrix, the
   referable-DR decision (grade >= 2), plus the usual suite (:func:`digitlab.metrics.classification_metrics`).
   The classify task's models, trained on full-resolution pixels without balancing, are scored the same way.
3. **Augmentations across domains.** The base CNN trained with each of a few augmentations,
   compared by QWK; beside it the augment task's accuracy changes on these photographs and, with
   ``compare_run``, the augment task's accuracy changes on MNIST from another run folder. Which
   transformations keep the label comes from each dataset's metadata (a flip or a rotation keeps a
   fundus grade; it turns a 6 into a 9).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitlab.exceptions import ConfigError
from digitlab.experiments.fundus import (
    BALANCE,
    INPUTS,
    NET_FAMILIES,
    FundusGrading,
    fundus_grading,
    oversample,
    records,
)
from digitlab.study.common import add_figure, clamp_note
from digitlab.study.prose import fundus as P
from digitlab.study.prose.fundus import HOW_TO
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "fundus"
TITLE = "Diabetic-retinopathy grading on fundus photographs"
REQUIRES = ("classify", "augment")


# =============================================================================================
# Configuration
# =============================================================================================


@dataclass
class Config:
    """Settings of the grading study; defaults are the standard profile."""

    n_train: int = 0  # training images (stratified subset; 0 = all)
    n_test: int = 0  # test images scored (stratified subset; 0 = all)
    balance: str = "oversample"  # "oversample": every grade drawn (with replacement) up to the largest grade's count; "none"
    models: list[str] = field(
        default_factory=lambda: ["logreg", "random_forest", "hgb", "knn"]
    )  # classic zoo models
    inputs: list[str] = field(
        default_factory=lambda: list(INPUTS)
    )  # classic-model inputs: "pixels" (downsampled), "features"
    # side in pixels of the downsampled images the classic models see (x3 colour channels)
    pixel_size: int = 32
    n_estimators: int = 200  # trees of the random forest / extra trees
    hgb_max_iter: int = 200  # boosting rounds cap (early stopping)
    nets: list[str] = field(
        default_factory=lambda: list(NET_FAMILIES)
    )  # network families trained (cnn, resnet, convmixer)
    # side in pixels the networks see (0 = as loaded: the dataset's image_size, 128 by default)
    net_size: int = 0
    width: int = 16  # channels of the first block of the CNN; ResNet gets half, ConvMixer's width is 4x this
    steps: int = 400  # optimiser steps per network (the budget: epochs follow from the training-set size)
    batch_size: int = 32  # images per step
    lr: float = 0.003  # peak learning rate (AdamW, one-cycle: the engine's defaults)
    net_augment: list[str] = field(
        default_factory=lambda: ["hflip", "rotate_large"]
    )  # augmentations of every family net ([] = none)
    train_p: float = 0.5  # probability that a training image gets each augmentation
    augmentations: list[str] = field(
        default_factory=lambda: ["none", "hflip", "rotate_large", "colour_jitter", "elastic"]
    )  # compared on the base CNN ("none" first)
    n_seeds: int = 1  # seeds per network (mean over seeds in the tables)
    # torch/BLAS threads while the networks train (0 = leave torch's setting); see the note below
    threads: int = 1
    compare_run: str = ""  # run folder of an MNIST study whose results/augment/result.json goes beside the fundus results ("" = explain from metadata)
    gallery_n: int = 6  # test images in the augmentation gallery

    def validate(self) -> None:
        from digitlab.augment import AUGMENTATIONS
        from digitlab.models.classic import CLASSIC_MODELS

        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key fundus.{key}: {problem}; {fix}")

        for key in ("n_train", "n_test"):
            if getattr(self, key) < 0:
                raise bad(key, f"{getattr(self, key)} is negative", "use 0 (= all) or a number of images")
        if self.balance not in BALANCE:
            raise bad("balance", f"{self.balance!r} unknown", f"use one of {', '.join(BALANCE)}")
        unknown = [m for m in self.models if m not in CLASSIC_MODELS]
        if unknown:
            raise bad("models", f"{unknown} unknown", f"choose from {', '.join(CLASSIC_MODELS)}")
        if [i for i in self.inputs if i not in INPUTS]:
            raise bad("inputs", f"{self.inputs} not valid", f"use any of {', '.join(INPUTS)}")
        if [n for n in self.nets if n not in NET_FAMILIES]:
            raise bad("nets", f"{self.nets} not valid", f"use any of {', '.join(NET_FAMILIES)}")
        if not self.nets and not (self.models and self.inputs):
            raise bad(
                "nets",
                "no grader to train (no nets, and no classic models or inputs)",
                "name at least one network or model",
            )
        aug_unknown = [
            a
            for a in list(self.net_augment) + list(self.augmentations)
            if a != "none" and a not in AUGMENTATIONS
        ]
        if aug_unknown:
            raise bad(
                "augmentations",
                f"{aug_unknown} unknown",
                f"use 'none' or names of {', '.join(AUGMENTATIONS)}",
            )
        if self.augmentations and self.augmentations[0] != "none":
            raise bad(
                "augmentations", "the first entry must be 'none'", "start the list with 'none' (the baseline)"
            )
        if not 8 <= self.pixel_size <= 128:
            raise bad("pixel_size", f"{self.pixel_size} out of range", "use 8 to 128 pixels")
        if self.net_size and not 16 <= self.net_size <= 1024:
            raise bad("net_size", f"{self.net_size} out of range", "use 0 (as loaded) or 16 to 1024 pixels")
        if self.threads < 0:
            raise bad(
                "threads",
                f"{self.threads} is negative",
                "use 0 (torch's default) or a number of threads, e.g. 1",
            )
        for key in ("width", "steps", "batch_size", "n_seeds", "n_estimators", "hgb_max_iter", "gallery_n"):
            if getattr(self, key) < 1:
                raise bad(key, f"{getattr(self, key)} must be at least 1", "use a positive number")
        if not self.lr > 0:
            raise bad("lr", f"{self.lr} must be positive", "e.g. 0.003")
        if not 0.0 < self.train_p <= 1.0:
            raise bad("train_p", f"{self.train_p} must be in (0, 1]", "e.g. 0.5")
        if self.compare_run and compare_file(self.compare_run) is None:
            raise bad(
                "compare_run",
                f"no results/augment/result.json under {self.compare_run!r}",
                "name the run folder of a study that ran the augment task (e.g. runs/<stamp>-mnist-quick) or leave it empty",
            )


# quick: for a synthetic set of a few hundred images at 64 px: the classic zoo on 16-px pixels and on
# the features, three small nets at 48 px and the CNN with two augmentations, 100 steps each (six
# trainings). Measured on 256 training / 109 test images at 64 px: 12 s with torch's 2 threads on
# near-idle cores; while another process kept the 2 cores busy, 168 s with 2 threads and 16 s with
# 1 (hence ``threads = 1``).
# On a non-fundus dataset the task returns at once.
PROFILES: dict[str, dict] = {
    "quick": {
        "models": ["logreg", "random_forest", "hgb"],
        "pixel_size": 16,
        "n_estimators": 100,
        "hgb_max_iter": 100,
        "net_size": 48,
        "width": 8,
        "steps": 100,
        "augmentations": ["none", "hflip", "colour_jitter"],
        "gallery_n": 4,
    },
    "full": {
        "models": ["logreg", "random_forest", "extra_trees", "hgb", "knn", "rbf_svm"],
        "n_estimators": 300,
        "steps": 1200,
        "n_seeds": 3,
        "augmentations": [
            "none",
            "hflip",
            "vflip",
            "rotate_large",
            "colour_jitter",
            "elastic",
            "gaussian_blur",
            "brightness_contrast",
        ],
    },
}


def compare_file(compare_run: str) -> Path | None:
    """The augment result of a run folder (or of ``results/augment`` or the file itself), None if absent."""
    p = Path(compare_run).expanduser()
    for cand in (p / "results" / "augment" / "result.json", p / "result.json", p):
        if cand.is_file() and cand.name == "result.json":
            return cand
    return None


# =============================================================================================
# Inputs from other results: the augment task's deltas, another run's, the classify task's predictions
# =============================================================================================


def augment_deltas(result) -> dict[str, float]:
    """Per training augmentation, its clean-accuracy change against 'none' from an augment task result."""
    tables = {
        t["name"] if isinstance(t, dict) else t.name: (t["rows"] if isinstance(t, dict) else t.rows)
        for t in (result["tables"] if isinstance(result, dict) else result.tables)
    }
    return {r["train_augmentation"]: float(r["delta_clean_vs_none"]) for r in tables.get("effectiveness", [])}


def read_compare(compare_run: str) -> tuple[dict[str, float], dict, str]:
    """(accuracy deltas, dataset metadata, dataset name) of another run's augment task."""
    from digitlab.data.registry import MNIST_META

    path = compare_file(compare_run)
    if path is None:
        raise ConfigError(
            f"config key fundus.compare_run: no results/augment/result.json under {compare_run!r}; "
            "name a run folder of a study that ran the augment task"
        )
    deltas = augment_deltas(json.loads(path.read_text()))
    summary = path.parent.parent.parent / "summary.json"
    meta, name = dict(MNIST_META), "mnist"
    if summary.is_file():
        ds = json.loads(summary.read_text()).get("dataset", {})
        meta, name = ds.get("meta") or meta, ds.get("name", name)
    return deltas, meta, name


def how_to(ctx: TaskContext) -> TaskResult:
    reason = P.not_fundus(ctx.dataset.name, ctx.dataset.meta)
    return TaskResult(
        title=TITLE,
        summary=reason,
        headline="Not applicable: this section grades fundus photographs.",
        findings=[reason],
        metrics={"skipped": True, "reason": reason},
    )


def _upstream_predictions(ctx: TaskContext) -> dict[str, dict]:
    """The classify task's test predictions (predictions.npz): ``{model: {y_true, y_pred, proba, scores}}``."""
    try:
        up = ctx.upstream("classify")
    except ConfigError:
        return {}
    f = up.file("predictions.npz")
    if not f.is_file():
        return {}
    d = np.load(f, allow_pickle=False)
    return {
        m: {
            "y_true": d["y_true"],
            "y_pred": d[f"y_pred__{m}"],
            "proba": d[f"proba__{m}"] if f"proba__{m}" in d.files else None,
            "scores": d[f"scores__{m}"] if f"scores__{m}" in d.files else None,
        }
        for m in [str(x) for x in d["models"]]
    }


# =============================================================================================
# run: the experiment's result -> tables, figures, sentences
# =============================================================================================

EXPERIMENT_KEYS = (
    "n_train",
    "n_test",
    "balance",
    "models",
    "inputs",
    "pixel_size",
    "n_estimators",
    "hgb_max_iter",
    "nets",
    "net_size",
    "width",
    "steps",
    "batch_size",
    "lr",
    "net_augment",
    "train_p",
    "augmentations",
    "n_seeds",
    "threads",
    "gallery_n",
)


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    ds = ctx.dataset
    if ds.meta.get("kind") != "fundus":
        return how_to(ctx)
    import time

    from digitlab.data.registry import MNIST_META

    t_start = time.perf_counter()
    fundus_acc: dict[str, float] = {}
    try:
        fundus_acc = augment_deltas(ctx.upstream("augment").result)
    except ConfigError:
        pass
    other, other_meta, other_name = None, None, None
    if cfg.compare_run:
        other, other_meta, other_name = read_compare(cfg.compare_run)
    other_meta = other_meta or dict(MNIST_META)
    res: FundusGrading = fundus_grading(
        ds,
        **{k: getattr(cfg, k) for k in EXPERIMENT_KEYS},
        seed=ctx.seed,
        classify_predictions=_upstream_predictions(ctx),
        augment_deltas=fundus_acc,
        other_deltas=other,
        other_meta=other_meta,
        other_name=other_name or "MNIST",
        n_jobs=ctx.n_jobs,
        backend=ctx.backend,
        device=ctx.device,
        progress=ctx.progress,
        cache_dir=ctx.points_dir,
    )
    rows, up_rows, aug_rows, comp = (
        records(t) for t in (res.grading, res.classify, res.augmentation_runs, res.comparison)
    )
    y_tr, y_te, classes, size = res.y_train, res.y_test, res.classes, res.net_size
    figures, tables = [], []
    notes = [
        n
        for n in (
            clamp_note("training images", cfg.n_train, len(ds.y_train)),
            clamp_note("test images", cfg.n_test, len(ds.y_test)),
        )
        if n
    ]

    # --- tables ---
    cols = [
        "model",
        "input",
        "qwk",
        "qwk_low",
        "qwk_high",
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "mae_grades",
        "within_one",
        "referable_sensitivity",
        "referable_specificity",
        "roc_auc_ovr",
        "fit_s",
    ]
    public = lambda r: {k: v for k, v in r.items() if not k.startswith("_")}  # noqa: E731
    all_rows = rows + up_rows
    tables.append(
        Table(
            "grading",
            [public(r) for r in rows],
            P.grading_caption(len(y_te), res.n_train_balanced, len(y_tr), cfg.balance),
            cols,
        )
    )
    tables.append(
        Table(
            "per_grade_recall",
            [public(r) for r in all_rows],
            P.CAPTIONS["per_grade_recall"],
            ["model", "input"] + [f"recall {c}" for c in classes],
        )
    )
    best = res.best()
    cm = np.asarray(best["_cm"])
    tables.append(
        Table(
            "confusion_best",
            [
                {"true grade": classes[i], **{classes[j]: int(cm[i, j]) for j in range(len(classes))}}
                for i in range(len(classes))
            ],
            P.confusion_caption(best),
        )
    )
    if up_rows:
        tables.append(
            Table(
                "classify_as_graders",
                [public(r) for r in up_rows],
                P.CAPTIONS["classify_as_graders"],
                [
                    "model",
                    "qwk",
                    "qwk_low",
                    "qwk_high",
                    "accuracy",
                    "balanced_accuracy",
                    "f1_macro",
                    "referable_sensitivity",
                    "referable_specificity",
                ],
            )
        )
    if res.n_features:
        tables.append(
            Table(
                "features_vs_grade", res.features_vs_grade.to_dict("records"), P.CAPTIONS["features_vs_grade"]
            )
        )
    if comp:
        tables.append(Table("augmentation_domains", comp, P.domains_caption(other_name, cfg.compare_run)))
        tables.append(
            Table(
                "augmentation_runs",
                [public(r) for r in aug_rows],
                P.CAPTIONS["augmentation_runs"],
                ["augmentation", "qwk", "qwk_low", "qwk_high", "accuracy", "balanced_accuracy", "fit_s"],
            )
        )

    # --- figures ---
    if res.gallery_augmentations:
        add_figure(figures, res.plot_gallery(), ctx.out_dir, "fundus_gallery", P.CAPTIONS["fundus_gallery"])
    add_figure(figures, res.plot_qwk(), ctx.out_dir, "qwk", P.CAPTIONS["qwk"])
    add_figure(figures, res.plot_confusion(), ctx.out_dir, "confusion_best", P.CAPTIONS["confusion_best"])
    add_figure(figures, res.plot_recall(), ctx.out_dir, "recall_per_grade", P.CAPTIONS["recall_per_grade"])
    if comp:
        add_figure(
            figures,
            res.plot_augment_comparison(),
            ctx.out_dir,
            "augmentation_domains",
            P.CAPTIONS["augmentation_domains"],
        )

    findings = P.model_findings(all_rows, y_te, y_tr, classes, cfg.balance)
    if aug_rows:
        findings += P.augment_findings(aug_rows, comp, other_name, ds.meta, other_meta)
    notes += P.method_notes(cfg, size, res.n_features, res.prep_seconds)
    if not cfg.compare_run:
        notes.append(P.NO_COMPARE)
    if ds.meta.get("synthetic"):
        notes.append(P.SYNTHETIC)
    return TaskResult(
        title=TITLE,
        summary=P.summary(len(y_tr), len(y_te), cfg, res.n_features, size),
        headline=findings[0],
        findings=findings,
        tables=tables,
        figures=figures,
        notes=notes,
        metrics={
            "best_model": best["model"],
            "best_input": best["input"],
            "best_qwk": best["qwk"],
            "best_accuracy": best["accuracy"],
            "n_train": len(y_tr),
            "n_test": len(y_te),
            "n_train_balanced": res.n_train_balanced,
            "n_seeds": cfg.n_seeds,
            "net_size": size,
            "seconds_total": round(time.perf_counter() - t_start, 2),
            "qwk": {f"{r['model']} ({r['input']})": r["qwk"] for r in all_rows},
        },
    )


__all__ = [
    "Config",
    "PROFILES",
    "NAME",
    "TITLE",
    "REQUIRES",
    "HOW_TO",
    "run",
    "compare_file",
    "read_compare",
    "augment_deltas",
    "oversample",
]
