"""Model comparison on the official train/test split: the classic zoo against a CNN.

Every model is trained on the same (optionally stratified-subsampled) training images and scored
on the official test set with the whole metrics suite: accuracy with a bootstrap confidence
interval, balanced accuracy, macro/micro/weighted precision, recall and F1, Cohen's kappa,
Matthews correlation, one-vs-rest ROC-AUC and PR-AUC, top-2 accuracy, log loss, Brier score and
expected calibration error, plus fit/predict time and model size. Pairwise McNemar tests say which
accuracy differences are real. Per-model test predictions are stored in ``predictions.npz`` so
other tasks can study the images every model gets wrong.
"""

from __future__ import annotations

import math

from digitlab.experiments import Data, ModelComparison, compare_models
from digitlab.models.zoo import model_names, model_spec, recipe
from digitlab.names import model_name
from digitlab.study.common import add_figure, split
from digitlab.study.prose import classify as T
from digitlab.study.settings.classify import DATASET_PROFILES, PROFILES, Config, settings  # noqa: F401  (the task's settings: the runner reads them here)
from digitlab.study.task import Figure, Table, TaskContext, TaskResult, save_png

NAME = "classify"
TITLE = "Model comparison: classic models and a CNN"

DEFAULT_MODELS = model_names(
    "classify"
)  # the zoo registry's models of this study (digitlab.models.zoo.ModelSpec.studies)


# Per-dataset settings on top of a profile's (study.config applies them before the TOML file's and
# --set values). Fashion-MNIST (standard and full): the wide CNN recipe with mirror images (a mirrored
# garment keeps its class), 93.59 % against the strong recipe's 92.27 % (seed 0, see
# digitlab.train.WIDE_RECIPE); the RBF SVM with the Fashion-MNIST benchmark's C = 10 and gamma =
# "scale" (1 / (features x variance) = 0.016 on PCA-100 of pixels/255), on PCA-100: 89.93 % against
# 89.17 % on PCA-50 with the same C and gamma (the published raw-pixel figure is 89.7 %).


# ---------------------------------------------------------------------------------------------
# Tables: the comparison's DataFrames as rounded report rows
# ---------------------------------------------------------------------------------------------


def _r(x, nd: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def score_rows(cmp: ModelComparison) -> list[dict]:
    """The label-based scores per model, best accuracy first."""
    rows = [
        {
            "model": m,
            "accuracy": _r(x["accuracy"]),
            "acc_ci_low": _r(x["acc_ci_low"]),
            "acc_ci_high": _r(x["acc_ci_high"]),
            "balanced_acc": _r(x["balanced_accuracy"]),
            "precision_macro": _r(x["precision_macro"]),
            "recall_macro": _r(x["recall_macro"]),
            "f1_macro": _r(x["f1_macro"]),
            "f1_micro": _r(x["f1_micro"]),
            "f1_weighted": _r(x["f1_weighted"]),
            "kappa": _r(x["kappa"]),
            "mcc": _r(x["mcc"]),
        }
        for m, x in _records(cmp.scores, cmp)
    ]
    return sorted(rows, key=lambda row: -row["accuracy"])


def _records(frame, cmp: ModelComparison) -> list[tuple[str, dict]]:
    """``(model, row)`` of a per-model frame, in the order the models were trained."""
    rows = frame.to_dict("index")
    return [(m, rows[m]) for m in cmp.runs]


def probability_rows(cmp: ModelComparison) -> list[dict]:
    """Ranking and probability scores per model (None where the model gives no probabilities)."""
    return [
        {
            "model": m,
            "outputs": "probabilities" if cmp.proba[m] is not None else "decision scores",
            "roc_auc_ovr": _r(x["roc_auc_ovr"], 5),
            "pr_auc": _r(x["pr_auc"], 5),
            "top2_accuracy": _r(x["top2_accuracy"]),
            "log_loss": _r(x["log_loss"]),
            "brier": _r(x["brier"]),
            "ece": _r(x["ece"]),
        }
        for m, x in _records(cmp.scores, cmp)
    ]


def per_class_rows(cmp: ModelComparison) -> list[dict]:
    """Per-class F1 of every model (one row per model, one column per class)."""
    return [{"model": m, **{f"F1 {c}": _r(v) for c, v in x.items()}} for m, x in _records(cmp.per_class, cmp)]


def cost_rows(cmp: ModelComparison) -> list[dict]:
    """Training size, input, fit and predict time, training GFLOP (networks only), and model size per model."""
    return [
        {
            "model": m,
            "setup": x["setup"],
            "n_train": int(x["n_train"]),
            "fit_s": _r(x["fit_s"], 2),
            "train_gflop": _r(x["train_gflop"], 3),
            "predict_s": _r(x["predict_s"], 2),
            "parameters": int(x["parameters"]),
            "size_kb": _r(x["size_kb"], 1),
            "chosen": x["chosen"],
        }
        for m, x in _records(cmp.cost, cmp)
    ]


def mcnemar_rows(frame) -> list[dict]:
    """McNemar's test for every pair of models, with Holm-adjusted p-values (compare_models' ``mcnemar``), rounded."""
    return [
        {
            "model_a": r["model_a"],
            "model_b": r["model_b"],
            "acc_a": _r(r["acc_a"]),
            "acc_b": _r(r["acc_b"]),
            "a_only_right": int(r["a_only_right"]),
            "b_only_right": int(r["b_only_right"]),
            "method": r["method"],
            "p_value": float(f"{r['p_value']:.3g}"),
            "p_holm": float(f"{r['p_holm']:.3g}"),
            "significant": bool(r["significant"]),
        }
        for r in frame.to_dict("records")
    ]


def cnn_curve_rows(history: list[dict]) -> list[dict]:
    """The CNN's per-epoch training history (``CNNClassifier.history_``) as table rows, accuracies in %."""
    return [
        {
            "epoch": h["epoch"],
            "train_loss": _r(h["train_loss"]),
            "train_acc": _r(100 * h["train_acc"], 2),
            "val_loss": _r(h["val_loss"]),
            "val_acc": _r(100 * h["val_acc"], 2),
            "lr": float(f"{h['lr']:.3g}"),
        }
        for h in history
    ]


# ---------------------------------------------------------------------------------------------
# Findings and notes: the comparison's numbers handed to the sentences of study.prose.classify
# ---------------------------------------------------------------------------------------------


def findings(cmp: ModelComparison, mc_rows: list[dict], alpha: float) -> list[str]:
    """Sentences computed from the measured numbers."""
    acc = {m: cmp.metrics[m]["accuracy"] for m in cmp.runs}
    family = {m: model_spec(r.name).family for m, r in cmp.runs.items()}
    params = {m: r.size["parameters"] for m, r in cmp.runs.items()}
    classes = cmp.data.classes
    best = max(acc, key=lambda m: round(float(acc[m]), 4))  # the scores table's first row
    t, p, n = cmp.top_confusion(best)
    return (
        T.best_worst(acc, cmp.ci)
        + T.family_findings(acc, family)
        + T.pair_findings(acc, params, {m: r.fit_s for m, r in cmp.runs.items()}, cmp.pareto)
        + T.calibration_findings(cmp.calibration.to_dict("index"))
        + T.significance_findings(mc_rows, alpha)
        + T.class_findings(cmp.class_f1["mean_f1"].to_dict(), (classes[t], classes[p], n))
        + [T.all_wrong_finding(len(cmp.all_wrong), len(cmp.data.y_test), len(cmp.runs))]
    )


def method_notes(cmp: ModelComparison, cfg: Config, ds) -> list[str]:
    """How the comparison was run: data, model set-up, searches, what the timings mean."""
    notes = [
        T.data_note(len(cmp.data.y_train), len(ds.y_train), len(cmp.data.y_test), len(ds.y_test), ds.name)
    ]
    notes += [
        T.search_note(m, cmp.search_results(m), cmp.cost.loc[m, "chosen"])
        for m in cmp.runs
        if cmp.search_results(m)
    ]
    if "cnn" in cmp.runs:
        budget = cmp.cnn_budget(cfg.cnn_epochs)
        notes.append(
            T.cnn_note(cfg.cnn_recipe, budget, cfg.cnn_max_seconds, recipe(settings(cfg))[2].val_fraction)
        )
    return notes + [T.SCORES_NOTE]


# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    """Train every configured model on the official split and compare them."""
    cfg.validate()
    data = split(ctx, cfg.n_train, cfg.n_test)
    ds = ctx.dataset
    images = Data(
        data.x_train,
        data.y_train,
        data.x_test,
        data.y_test,
        list(ds.classes),
        data.train_index,
        data.test_index,
        ds.name,
        ds.meta,
    )
    cmp = compare_models(
        images,
        cfg.models,
        seed=ctx.seed,
        settings=settings(cfg),
        n_jobs=ctx.n_jobs,
        device=ctx.device,
        n_boot=cfg.n_boot,
        alpha=cfg.alpha,
        ece_bins=cfg.ece_bins,
        progress=ctx.progress,
        log=ctx.log,
    )
    scores, mc = score_rows(cmp), mcnemar_rows(cmp.mcnemar)
    best, out, figures = scores[0]["model"], ctx.out_dir, []
    add_figure(figures, cmp.plot(), out, "accuracy", T.CAPTIONS["accuracy"])
    figures.append(
        Figure(
            "confusion_best",
            save_png(cmp.plot_confusion_pair(best), out, f"confusion_{best}"),
            T.CAPTIONS["confusion_best"].format(best=best),
        )
    )
    add_figure(figures, cmp.plot_per_class_f1(), out, "per_class_f1", T.CAPTIONS["per_class_f1"])
    rel = cmp.plot_reliability()
    if rel is not None:
        add_figure(figures, rel, out, "reliability", T.CAPTIONS["reliability"].format(bins=cfg.ece_bins))
    mcf = cmp.plot_mcnemar()
    if mcf is not None:
        add_figure(figures, mcf, out, "mcnemar", T.CAPTIONS["mcnemar"])
    add_figure(figures, cmp.plot_cost(), out, "cost", T.CAPTIONS["cost"])
    history = cmp.history("cnn").to_dict("records")
    val = 100 * recipe(settings(cfg))[2].val_fraction
    if history:
        add_figure(
            figures, cmp.plot_history("cnn"), out, "cnn_curves", T.CAPTIONS["cnn_curves"].format(val=val)
        )
    cmp.save_predictions(out / "predictions.npz")
    saved = cmp.save_models(out, cfg.save_max_mb) if cfg.save_models else {}
    tables = [
        Table("scores", scores, T.TABLES["scores"].format(n_boot=cfg.n_boot)),
        Table("probabilistic", probability_rows(cmp), T.TABLES["probabilistic"]),
        Table("per_class_f1", per_class_rows(cmp), T.TABLES["per_class_f1"]),
        Table("cost", cost_rows(cmp), T.TABLES["cost"]),
        Table("mcnemar", mc, T.TABLES["mcnemar"]),
    ]
    if history:
        tables.append(
            Table(
                "cnn_curves",
                cnn_curve_rows(history),
                T.TABLES["cnn_curves"].format(n=len(history)),
                ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"],
            )
        )
    acc = {m: round(float(cmp.metrics[m]["accuracy"]), 5) for m in cmp.runs}
    n_train, n_test = len(data.y_train), len(data.y_test)
    return TaskResult(
        title=TITLE,
        summary=T.summary(len(cmp.runs), n_train, ds.name, n_test),
        findings=findings(cmp, mc, cfg.alpha),
        tables=tables,
        figures=figures,
        notes=data.notes + method_notes(cmp, cfg, ds) + cmp.metric_notes(),
        headline=T.headline(best, model_name(best), acc[best], cmp.ci[best], n_test),
        metrics={
            "best_model": best,
            "best_accuracy": acc[best],
            "accuracy": acc,
            "models": list(cmp.runs),
            "n_train": int(n_train),
            "n_test": int(n_test),
            "predictions_file": "predictions.npz",
            "saved_models": saved,
            "all_models_wrong": len(cmp.all_wrong),
            "all_models_wrong_index": data.test_index[cmp.all_wrong].tolist(),
            "f1_macro": {m: round(float(cmp.metrics[m]["f1_macro"]), 5) for m in acc},
            "fit_seconds": {m: round(r.fit_s, 2) for m, r in cmp.runs.items()},
        },
    )
