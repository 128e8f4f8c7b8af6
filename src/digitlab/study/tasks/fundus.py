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

import numpy as np

from digitlab.exceptions import ConfigError
from digitlab.experiments.fundus import (
    FundusGrading,
    augment_accuracy_changes,
    fundus_grading,
    oversample,
    records,
)
from digitlab.study.common import add_figure, clamp_note
from digitlab.study.prose import fundus as P
from digitlab.study.prose.fundus import HOW_TO
from digitlab.study.settings.fundus import EXPERIMENT_KEYS, PROFILES, Config, compare_file
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "fundus"
TITLE = "Diabetic-retinopathy grading on fundus photographs"
REQUIRES = ("classify", "augment")


# =============================================================================================
# Inputs from other results: the augment task's deltas, another run's, the classify task's predictions
# =============================================================================================


def read_compare(compare_run: str) -> tuple[dict[str, float], dict, str]:
    """(accuracy deltas, dataset metadata, dataset name) of another run's augment task."""
    from digitlab.data.registry import MNIST_META

    path = compare_file(compare_run)
    if path is None:
        raise ConfigError(
            f"config key fundus.compare_run: no results/augment/result.json under {compare_run!r}; "
            "name a run folder of a study that ran the augment task"
        )
    deltas = augment_accuracy_changes(json.loads(path.read_text()))
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
        fundus_acc = augment_accuracy_changes(ctx.upstream("augment").result)
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
    "oversample",
]
