"""Every model on the same images: the metrics suite with intervals, McNemar tests, error sets."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from digitlab import metrics as M
from digitlab.experiments.base import (
    Data,
    StudyResult,
    as_data,
    model_specs,
    plot_accuracy,
    zoo_settings,
)
from digitlab.experiments.error_analysis import ErrorAnalysis, error_analysis, vote_text
from digitlab.names import model_name
from digitlab.plots import (
    panels,
    plain_log_ticks,
    plot_confusion_matrix,
    plot_images,
    plot_reliability_diagrams,
    single,
)

# =============================================================================================
# compare_models
# =============================================================================================


@dataclass
class ModelComparison(StudyResult):
    """Every model trained on the same images and scored on the same test images.

    Tables (index: the model's label): ``scores`` (best first: accuracy with its bootstrap interval,
    balanced accuracy, macro precision/recall/F1, micro and weighted F1, Cohen's kappa, MCC, ROC-AUC,
    PR-AUC, top-2 accuracy, log loss, Brier score, ECE, fit and predict seconds, parameters, size),
    ``per_class`` (F1 per class), ``mcnemar`` (every pair: discordant counts, p-value, Holm-adjusted
    p-value, significant at ``alpha``), ``errors`` (test image x model, True where the model is wrong).
    Arrays: ``predictions``, ``proba`` (None for models with decision scores only), ``decision_scores``,
    ``all_wrong`` (test positions every model gets wrong). ``cost`` (per model: setup, training images,
    fit/predict seconds, training GFLOP of a network, parameters, size, the hyper-parameters a validation
    search chose), ``calibration`` (models with probabilities: log loss, ECE, accuracy, mean confidence
    minus accuracy, share of predictions above 0.99 confidence), ``class_f1`` (per class: F1 averaged over
    the models), ``pareto`` (the models no other model beats on both fit time and error, fastest first).
    ``metrics`` holds the full
    :func:`digitlab.metrics.classification_metrics` per model (confusion matrices included), ``ci``
    the bootstrap intervals and ``runs`` the fitted :class:`~digitlab.models.zoo.ModelRun` (``.model``).
    """

    scores: pd.DataFrame
    per_class: pd.DataFrame
    mcnemar: pd.DataFrame
    errors: pd.DataFrame
    all_wrong: np.ndarray
    predictions: dict[str, np.ndarray]
    proba: dict[str, np.ndarray | None]
    decision_scores: dict[str, np.ndarray | None]
    metrics: dict[str, dict]
    ci: dict[str, dict]
    runs: dict[str, Any]
    data: Data
    alpha: float = 0.05
    cost: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    calibration: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    class_f1: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    pareto: list[str] = dataclasses.field(default_factory=list)
    ece_bins: int = 15
    _main = "scores"

    @property
    def best(self) -> str:
        """The label of the most accurate model."""
        return str(self.scores.index[0])

    def plot(self, ax=None):
        """Test error of every model with its 95 % bootstrap interval (log scale). Returns the Figure."""
        s = self.scores.iloc[::-1]
        return plot_accuracy(list(s.index), s["accuracy"], s["acc_ci_low"], s["acc_ci_high"], ax=ax)

    def plot_confusion(self, model: str | None = None, normalize: bool = False, ax=None):
        """Confusion matrix of ``model`` (default: the best), counts or % of the true class."""
        model = model or self.best
        kind = "% of the true class (recall on the diagonal)" if normalize else "counts"
        return plot_confusion_matrix(
            self.metrics[model]["confusion_matrix"],
            classes=self.data.classes,
            normalize=normalize,
            ax=ax,
            title=f"{model}: {kind}",
        )

    def plot_confusion_pair(self, model: str | None = None, ax=None):
        """Counts (left) and row-normalised (right) confusion matrix of ``model`` (default: the best)."""
        model = model or self.best
        fig, axes = panels(ax, 1, 2, (12, 5), **({"layout": "constrained"} if ax is None else {}))
        cm = self.metrics[model]["confusion_matrix"]
        plot_confusion_matrix(cm, classes=self.data.classes, ax=axes[0, 0], title=f"{model}: counts")
        plot_confusion_matrix(
            cm,
            classes=self.data.classes,
            normalize=True,
            ax=axes[0, 1],
            title=f"{model}: % of the true class (recall on the diagonal)",
        )
        return fig

    def plot_per_class_f1(self, ax=None):
        """Heatmap of per-class F1: one row per model, one column per class."""
        names, classes = list(self.runs), self.data.classes
        f1 = np.array([self.metrics[n]["f1"] for n in names])
        fig, ax = single(ax, (0.6 * len(classes) + 2.5, 0.4 * len(names) + 1.5))
        im = ax.imshow(f1, cmap="viridis", aspect="auto", vmin=max(0.0, f1.min()), vmax=1.0)
        for i, j in np.ndindex(f1.shape):
            ax.text(
                j,
                i,
                f"{f1[i, j]:.3f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if f1[i, j] < f1.mean() else "black",
            )
        ax.set(
            xticks=range(len(classes)),
            xticklabels=classes,
            yticks=range(len(names)),
            yticklabels=names,
            xlabel="class",
            title="per-class F1",
        )
        fig.colorbar(im, ax=ax, fraction=0.03)
        return fig

    def plot_reliability(self, labels: Mapping[str, str] | None = None, ax=None):
        """Reliability diagrams of the models that output probabilities, titled with ``labels`` (default:
        the models' names in words); None when no model gives probabilities."""
        probas = {m: p for m, p in self.proba.items() if p is not None}
        if not probas:
            return None
        labels = labels or {m: model_name(m) for m in probas}
        return plot_reliability_diagrams(self.data.y_test, probas, self.ece_bins, ax=ax, labels=labels)

    def plot_mcnemar(self, ax=None):
        """Matrix of the Holm-adjusted McNemar p-values of every pair (colour: log10); None below two models."""
        names = list(self.runs)
        if len(names) < 2:
            return None
        pos = {n: i for i, n in enumerate(names)}
        mat = np.full((len(names), len(names)), np.nan)
        for row in self.mcnemar.to_dict("records"):
            i, j = pos[row["model_a"]], pos[row["model_b"]]
            mat[i, j] = mat[j, i] = float(f"{row['p_holm']:.3g}")
        fig, ax = single(ax, (0.6 * len(names) + 2.5, 0.55 * len(names) + 1.5))
        im = ax.imshow(np.log10(np.clip(mat, 1e-10, 1)), cmap="magma", vmin=-10, vmax=0)
        for i, j in np.ndindex(mat.shape):
            if i != j:
                ax.text(
                    j,
                    i,
                    f"{mat[i, j]:.2g}" if mat[i, j] >= 1e-10 else "<1e-10",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if mat[i, j] < 1e-5 else "black",
                )
        ax.set(
            xticks=range(len(names)),
            xticklabels=names,
            yticks=range(len(names)),
            yticklabels=names,
            title="McNemar: Holm-adjusted p-values (colour: log10)",
        )
        ax.tick_params(axis="x", rotation=60)
        fig.colorbar(im, ax=ax, fraction=0.04)
        return fig

    def plot_cost(self, ax=None):
        """Fit time against test error, both log scale, one labelled point per model."""
        fig, ax = single(ax, (6, 4))
        for m in self.runs:
            fit_s = max(round(float(self.runs[m].fit_s), 2), 1e-2)
            err = 100 * (1 - round(float(self.metrics[m]["accuracy"]), 4))
            ax.scatter(fit_s, err, s=30)
            ax.annotate(m, (fit_s, err), fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="fit time (s, log)",
            ylabel="test error % (log)",
            title="cost against error",
        )
        plain_log_ticks(ax.xaxis)
        plain_log_ticks(ax.yaxis)
        return fig

    def history(self, model: str = "cnn") -> pd.DataFrame:
        """A network's per-epoch training history (``history_``: epoch, losses, accuracies, lr); empty if none."""
        run = self.runs.get(model)
        return pd.DataFrame(list(getattr(run.model, "history_", None) or []) if run is not None else [])

    def plot_history(self, model: str = "cnn", ax=None):
        """Training and validation loss (left, log) and accuracy (right) per epoch, the best epoch marked."""
        history = self.history(model).to_dict("records")
        ep = [h["epoch"] for h in history]
        best = (
            ep[int(np.nanargmax([h["val_acc"] for h in history]))]
            if any(np.isfinite(h["val_acc"]) for h in history)
            else None
        )
        fig, axes = panels(ax, 1, 2, (10, 3.4))
        for a, m, label, scale in (
            (axes[0, 0], "loss", "cross-entropy", 1),
            (axes[0, 1], "acc", "accuracy (%)", 100),
        ):
            a.plot(
                ep,
                [scale * h[f"train_{m}"] for h in history],
                "o-",
                ms=3,
                label="training (running mean over the epoch)",
            )
            a.plot(ep, [scale * h[f"val_{m}"] for h in history], "o-", ms=3, label="validation")
            if best is not None:
                a.axvline(best, color="0.5", ls="--", lw=1, label=f"best validation epoch ({best}, kept)")
            a.set(xlabel="epoch", ylabel=label)
            a.xaxis.get_major_locator().set_params(integer=True)
            a.legend(fontsize=7)
        axes[0, 0].set_yscale("log")
        fig.tight_layout()
        return fig

    def cnn_budget(self, configured_epochs: int = 0) -> dict | None:
        """The CNN's training budget as run: epochs, optimiser steps, batch size, and whether a
        minimum of steps stretched the configured epochs (None without a trained CNN)."""
        model = getattr(self.runs.get("cnn"), "model", None)
        tr = getattr(model, "train_result_", None)
        if tr is None or not getattr(tr, "steps", None):
            return None
        min_steps = getattr(model, "min_steps", 0)
        return {
            "epochs_run": tr.epochs_run,
            "steps": tr.steps,
            "batch_size": model.batch_size,
            "min_steps": min_steps,
            "configured_epochs": configured_epochs or tr.epochs_planned,
            "stretched": bool(min_steps and tr.epochs_run > (configured_epochs or 0) > 0),
        }

    def search_results(self, model: str) -> list[dict]:
        """The validation search's settings and accuracies of ``model`` (empty when it ran none)."""
        return list(getattr(self.runs[model].model, "search_results_", None) or [])

    def top_confusion(self, model: str | None = None) -> tuple[int, int, int]:
        """``(true class, predicted class, images)`` of the most frequent confusion of ``model`` (default: the best)."""
        cm = self.metrics[model or self.best]["confusion_matrix"].copy()
        np.fill_diagonal(cm, 0)
        i, j = np.unravel_index(cm.argmax(), cm.shape)
        return int(i), int(j), int(cm[i, j])

    def save_predictions(self, path: str | Path) -> Path:
        """Write ``predictions.npz``-style arrays: y_true, test_index, models, and per model ``y_pred__<m>``
        plus ``proba__<m>`` (or ``scores__<m>`` for models without probabilities)."""
        arrays: dict[str, np.ndarray] = {
            "y_true": self.data.y_test,
            "test_index": self.data.test_index,
            "models": np.array(list(self.runs)),
        }
        for m, r in self.runs.items():
            arrays[f"y_pred__{m}"] = r.y_pred
            if r.proba is not None:
                arrays[f"proba__{m}"] = r.proba.astype(np.float32)
            elif r.scores is not None:
                arrays[f"scores__{m}"] = r.scores.astype(np.float32)
        np.savez_compressed(path, **arrays)
        return Path(path)

    def save_models(self, out_dir: str | Path, max_mb: float = 100.0) -> dict[str, str]:
        """Save each fitted model under ``out_dir/models/<model>/`` (:func:`digitlab.models.zoo.save_model`);
        returns model -> folder (relative), or why it was not saved (serialised size above ``max_mb``)."""
        from digitlab.models.zoo import save_model

        saved = {}
        for m, r in self.runs.items():
            mb = r.size["bytes"] / 2**20
            if mb > max_mb:
                saved[m] = f"not saved: {mb:,.0f} MB exceeds classify.save_max_mb = {max_mb:g}"
                continue
            save_model(Path(out_dir) / "models" / m, m, r.model)
            saved[m] = f"models/{m}"
        return saved

    @staticmethod
    def metric_notes() -> list[str]:
        """What each metric of the suite means (:func:`digitlab.metrics.metric_notes`)."""
        return M.metric_notes()

    def plot_all_wrong(self, n: int = 32, cols: int = 8, ax=None):
        """The test images every model gets wrong (up to ``n``), titled with their label and the models' votes."""
        pos = self.all_wrong[:n]
        titles = [
            f"true {self.data.classes[self.data.y_test[i]]}\n{vote_text(self.predictions, i, self.data.classes)}"
            for i in pos
        ]
        return plot_images(self.data.x_test[pos], titles, cols=cols, ax=ax)

    def error_analysis(self, **kwargs: Any) -> ErrorAnalysis:
        """:func:`error_analysis` of these predictions (with the test images, for the hard images' traits)."""
        return error_analysis(self, **kwargs)


def compare_models(
    data: Any,
    models: Sequence[str] | Mapping[str, Any],
    *,
    n_train: int = 0,
    n_test: int = 0,
    seed: int = 0,
    settings: Any = None,
    n_jobs: int = 1,
    device: str = "auto",
    n_boot: int = 2000,
    alpha: float = 0.05,
    ece_bins: int = 15,
    progress: bool = False,
    log: Any = None,
) -> ModelComparison:
    """Train every model of ``models`` on the same training images and compare them on the same test images.

    Parameters
    ----------
    data : a Dataset or ``(x_train, y_train, x_test, y_test)``.
    models : zoo names (:func:`digitlab.models.zoo.model_names`: the classic models and ``"cnn"``), or
        ``{label: name}`` / ``{label: (name, params)}`` to set a model's parameters
        (e.g. ``{"lasso": ("logreg", {"penalty": "l1", "C": 0.1})}``).
    n_train, n_test : images used (0 = all; else a stratified subset drawn with ``seed``).
    seed : seeds the subsets, the models and the bootstrap.
    settings : :class:`~digitlab.models.zoo.ZooSettings` or a dict of its fields (trees, SVM grid,
        ``cnn_recipe="fast"``, ``cnn_epochs``, ...).
    n_jobs, device : cores for the models that use them; torch device of the CNN ("auto" picks one).
    n_boot, alpha, ece_bins : bootstrap resamples, significance level (Holm-corrected McNemar),
        calibration bins.
    progress : a progress bar over the models. log : a :class:`logging.Logger` for one line per fit.

    Returns
    -------
    :class:`ModelComparison`
    """
    from digitlab.models.zoo import run_model
    from digitlab.runtime import progress_bar

    specs = model_specs(models)
    d = as_data(data, n_train, n_test, seed)
    zoo = zoo_settings(settings)
    k = d.n_classes
    runs: dict[str, Any] = {}
    with progress_bar(progress, "compare models", len(specs)) as step:
        for label, name, params in specs:
            step(0, description=f"compare models: {label}")
            if log is not None:
                log.info("compare models: fitting %s on %d images", label, len(d.y_train))
            runs[label] = run_model(
                name, d.x_train, d.y_train, d.x_test, zoo, seed=seed, n_jobs=n_jobs, device=device, **params
            )
            if log is not None:
                log.info("compare models: %s fitted in %.1f s", label, runs[label].fit_s)
            step()
    y = d.y_test
    mets = {
        m: M.classification_metrics(y, r.y_pred, r.proba, k, scores=r.scores, n_bins=ece_bins)
        for m, r in runs.items()
    }
    cis = {m: M.accuracy_ci(y, r.y_pred, n_boot=n_boot, seed=seed) for m, r in runs.items()}
    preds = {m: r.y_pred for m, r in runs.items()}
    errors = pd.DataFrame({m: p != y for m, p in preds.items()})
    errors.index.name = "test_position"
    all_wrong = np.flatnonzero(errors.to_numpy().all(axis=1)) if len(runs) else np.zeros(0, np.int64)
    return ModelComparison(
        _score_frame(runs, mets, cis),
        _per_class_frame(mets, d.classes),
        _mcnemar_frame(preds, y, alpha),
        errors,
        all_wrong,
        preds,
        {m: r.proba for m, r in runs.items()},
        {m: r.scores for m, r in runs.items()},
        mets,
        cis,
        runs,
        d,
        alpha,
        _cost_frame(runs, zoo, d.x_train),
        _calibration_frame(runs, mets),
        _class_f1_frame(mets, d.classes),
        _pareto(runs, mets),
        ece_bins,
    )


def _score_frame(runs: dict, mets: dict, cis: dict) -> pd.DataFrame:
    rows = []
    for m, r in runs.items():
        x, ci = mets[m], cis[m]
        rows.append(
            {
                "model": m,
                "accuracy": x["accuracy"],
                "acc_ci_low": ci["low"],
                "acc_ci_high": ci["high"],
                "balanced_accuracy": x["balanced_accuracy"],
                "precision_macro": x["precision_macro"],
                "recall_macro": x["recall_macro"],
                "f1_macro": x["f1_macro"],
                "f1_micro": x["f1_micro"],
                "f1_weighted": x["f1_weighted"],
                "kappa": x["cohen_kappa"],
                "mcc": x["mcc"],
                "roc_auc_ovr": x["roc_auc_ovr"],
                "pr_auc": x["pr_auc"],
                "top2_accuracy": x["top2_accuracy"],
                "log_loss": x["log_loss"],
                "brier": x["brier"],
                "ece": x["ece"],
                "fit_s": r.fit_s,
                "predict_s": r.predict_s,
                "n_train": r.n_train,
                "parameters": r.size["parameters"],
                "size_kb": r.size["bytes"] / 1024,
            }
        )
    frame = pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()
    return frame.sort_values("accuracy", ascending=False, kind="stable") if rows else frame


def _per_class_frame(mets: dict, classes: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({m: x["f1"] for m, x in mets.items()}, index=[str(c) for c in classes]).T
    frame.index.name, frame.columns.name = "model", "F1 of class"
    return frame


def _mcnemar_frame(preds: dict[str, np.ndarray], y: np.ndarray, alpha: float) -> pd.DataFrame:
    rows = []
    for a, b in itertools.combinations(preds, 2):
        t = M.mcnemar(y, preds[a], preds[b])
        rows.append(
            {
                "model_a": a,
                "model_b": b,
                "acc_a": float(np.mean(preds[a] == y)),
                "acc_b": float(np.mean(preds[b] == y)),
                "a_only_right": t["b"],
                "b_only_right": t["c"],
                "method": t["method"],
                "p_value": t["p_value"],
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "model_a",
            "model_b",
            "acc_a",
            "acc_b",
            "a_only_right",
            "b_only_right",
            "method",
            "p_value",
            "p_holm",
            "significant",
        ],
    )
    if rows:
        frame["p_holm"] = M.holm_adjust(frame["p_value"].to_numpy())
        frame["significant"] = frame["p_holm"] < alpha
    return frame


def _cost_frame(runs: dict, settings: Any, x_train: np.ndarray) -> pd.DataFrame:
    from digitlab.models.zoo import describe_model

    rows = [
        {
            "model": m,
            "setup": describe_model(r.name, settings),
            "n_train": r.n_train,
            "fit_s": r.fit_s,
            "train_gflop": _train_gflop(r.model, x_train),
            "predict_s": r.predict_s,
            "parameters": r.size["parameters"],
            "size_kb": r.size["bytes"] / 1024,
            "chosen": chosen_params(r.model),
        }
        for m, r in runs.items()
    ]
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()


def _train_gflop(model: Any, x_train: np.ndarray | None) -> float | None:
    """Training GFLOP of a fitted network (FLOPs per training image x images seen); None for classic models."""
    res = getattr(model, "train_result_", None)
    if res is None or x_train is None:
        return None
    from digitlab.flops import train_flops
    from digitlab.grid import input_shape

    per_image = train_flops(
        model.model_, input_shape(x_train[:1]), min(model.batch_size, max(2, len(x_train)))
    )  # (C, H, W)
    return round(float(per_image * res.n_train_images_seen / 1e9), 3)


def chosen_params(model: Any) -> str:
    """The hyper-parameters a validation search chose, as ``C=5, gamma=0.02`` ("" without a search)."""
    best = getattr(model, "best_params_", None)
    return ", ".join(f"{k.split('__')[-1]}={v:g}" for k, v in best.items()) if best else ""


def _calibration_frame(runs: dict, mets: dict) -> pd.DataFrame:
    rows = [
        {
            "model": m,
            "log_loss": mets[m]["log_loss"],
            "ece": mets[m]["ece"],
            "accuracy": mets[m]["accuracy"],
            "confidence_gap": float(r.proba.max(1).mean() - mets[m]["accuracy"]),
            "confident_share": float((r.proba.max(1) > 0.99).mean()),
        }
        for m, r in runs.items()
        if mets[m]["log_loss"] is not None
    ]
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()


def _class_f1_frame(mets: dict, classes: list[str]) -> pd.DataFrame:
    f1 = np.array([x["f1"] for x in mets.values()]).reshape(len(mets), len(classes))
    frame = pd.DataFrame(
        {"class": [str(c) for c in classes], "mean_f1": f1.mean(axis=0) if len(mets) else np.nan}
    )
    return frame.set_index("class")


def _pareto(runs: dict, mets: dict) -> list[str]:
    """Each model faster than all more accurate ones (fit time against error), fastest first."""
    front, best_err = [], np.inf
    for m in sorted(runs, key=lambda m: runs[m].fit_s):
        err = 1 - mets[m]["accuracy"]
        if err < best_err:
            front.append(m)
            best_err = err
    return front
