"""Every model on the same images: the metrics suite with intervals, McNemar tests, error sets."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

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
from digitlab.plots import plot_confusion_matrix, plot_images

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
    ``all_wrong`` (test positions every model gets wrong). ``metrics`` holds the full
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
        return plot_confusion_matrix(self.metrics[model]["confusion_matrix"], classes=self.data.classes, normalize=normalize,
                                     ax=ax, title=f"{model}: {kind}")

    def plot_all_wrong(self, n: int = 32, cols: int = 8, ax=None):
        """The test images every model gets wrong (up to ``n``), titled with their label and the models' votes."""
        pos = self.all_wrong[:n]
        titles = [f"true {self.data.classes[self.data.y_test[i]]}\n{vote_text(self.predictions, i, self.data.classes)}" for i in pos]
        return plot_images(self.data.x_test[pos], titles, cols=cols, ax=ax)

    def error_analysis(self, **kwargs: Any) -> "ErrorAnalysis":
        """:func:`error_analysis` of these predictions (with the test images, for the hard images' traits)."""
        return error_analysis(self, **kwargs)


def compare_models(data: Any, models: Sequence[str] | Mapping[str, Any], *, n_train: int = 0, n_test: int = 0, seed: int = 0,
                   settings: Any = None, n_jobs: int = 1, device: str = "auto", n_boot: int = 2000, alpha: float = 0.05,
                   ece_bins: int = 15, progress: bool = False, log: Any = None) -> ModelComparison:
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
            runs[label] = run_model(name, d.x_train, d.y_train, d.x_test, zoo, seed=seed, n_jobs=n_jobs, device=device, **params)
            if log is not None:
                log.info("compare models: %s fitted in %.1f s", label, runs[label].fit_s)
            step()
    y = d.y_test
    mets = {m: M.classification_metrics(y, r.y_pred, r.proba, k, scores=r.scores, n_bins=ece_bins) for m, r in runs.items()}
    cis = {m: M.accuracy_ci(y, r.y_pred, n_boot=n_boot, seed=seed) for m, r in runs.items()}
    preds = {m: r.y_pred for m, r in runs.items()}
    errors = pd.DataFrame({m: p != y for m, p in preds.items()})
    errors.index.name = "test_position"
    all_wrong = np.flatnonzero(errors.to_numpy().all(axis=1)) if len(runs) else np.zeros(0, np.int64)
    return ModelComparison(_score_frame(runs, mets, cis), _per_class_frame(mets, d.classes), _mcnemar_frame(preds, y, alpha),
                           errors, all_wrong, preds, {m: r.proba for m, r in runs.items()},
                           {m: r.scores for m, r in runs.items()}, mets, cis, runs, d, alpha)


def _score_frame(runs: dict, mets: dict, cis: dict) -> pd.DataFrame:
    rows = []
    for m, r in runs.items():
        x, ci = mets[m], cis[m]
        rows.append({"model": m, "accuracy": x["accuracy"], "acc_ci_low": ci["low"], "acc_ci_high": ci["high"],
                     "balanced_accuracy": x["balanced_accuracy"], "precision_macro": x["precision_macro"],
                     "recall_macro": x["recall_macro"], "f1_macro": x["f1_macro"], "f1_micro": x["f1_micro"],
                     "f1_weighted": x["f1_weighted"], "kappa": x["cohen_kappa"], "mcc": x["mcc"], "roc_auc_ovr": x["roc_auc_ovr"],
                     "pr_auc": x["pr_auc"], "top2_accuracy": x["top2_accuracy"], "log_loss": x["log_loss"], "brier": x["brier"],
                     "ece": x["ece"], "fit_s": r.fit_s, "predict_s": r.predict_s, "n_train": r.n_train,
                     "parameters": r.size["parameters"], "size_kb": r.size["bytes"] / 1024})
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
        rows.append({"model_a": a, "model_b": b, "acc_a": float(np.mean(preds[a] == y)), "acc_b": float(np.mean(preds[b] == y)),
                     "a_only_right": t["b"], "b_only_right": t["c"], "method": t["method"], "p_value": t["p_value"]})
    frame = pd.DataFrame(rows, columns=["model_a", "model_b", "acc_a", "acc_b", "a_only_right", "b_only_right", "method",
                                        "p_value", "p_holm", "significant"])
    if rows:
        frame["p_holm"] = M.holm_adjust(frame["p_value"].to_numpy())
        frame["significant"] = frame["p_holm"] < alpha
    return frame
