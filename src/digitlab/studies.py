"""The study's experiments as plain functions: one call per item of the course project.

Each function takes a :class:`~digitlab.data.registry.Dataset` (or the arrays ``(x_train, y_train,
x_test, y_test)``) and plain arguments, trains through :mod:`digitlab.models.zoo` and
:mod:`digitlab.experiment`, scores with :mod:`digitlab.metrics`, and returns a result object whose
tables are pandas DataFrames and whose ``plot(ax=None)`` returns a matplotlib Figure::

    from digitlab.data import load_dataset
    from digitlab.studies import compare_models, learning_curve, cnn_sweep, augmentation_effect

    ds = load_dataset("mnist")
    cmp = compare_models(ds, ["logreg", "random_forest", "cnn"], n_train=5000)
    cmp.scores                       # accuracy with its 95 % bootstrap interval, F1, kappa, ECE, ... per model
    cmp.plot()                       # test error with intervals
    cmp.error_analysis().hard        # the images most models get wrong, with the models' votes

* :func:`compare_models` -- every model on the same images: the metrics suite with bootstrap
  intervals, pairwise McNemar tests with Holm's correction, error sets and the images every model
  gets wrong (:class:`ModelComparison`);
* :func:`error_analysis` -- overlap of the error sets (Jaccard, exclusive intersections), the hard
  images with the models' votes, their traits against correct images of their class
  (:class:`ErrorAnalysis`); :func:`label_issues` -- training labels that look wrong (confident
  learning on out-of-fold probabilities, :class:`LabelIssues`);
* :func:`learning_curve` -- models x training-set sizes x seeds, with a saturating power law per
  model and the size beyond which more data stops paying (:class:`LearningCurve`);
* :func:`cnn_sweep` -- one or two settings of a CNN recipe x seeds (:class:`CNNSweep`);
* :func:`augmentation_effect` -- a CNN trained with each augmentation, scored on clean and on
  corrupted test images (:class:`AugmentationEffect`).

Subsets follow the study's one rule (:func:`digitlab.study.common.subset_indices`): a size of 0, or
one at least the data's, means every image; any other an exact stratified subset drawn with the seed.
The study's tasks call these functions too, so a notebook and the report compute the same numbers.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from digitlab import metrics as M
from digitlab.exceptions import ConfigError
from digitlab.plots import plain_log_ticks, plot_confusion_matrix, plot_images, single

__all__ = ["Data", "as_data", "StudyResult", "compare_models", "ModelComparison", "error_analysis", "ErrorAnalysis",
           "label_issues", "LabelIssues", "learning_curve", "LearningCurve", "cnn_sweep", "CNNSweep",
           "augmentation_effect", "AugmentationEffect", "plot_accuracy", "plain_log_ticks"]


# =============================================================================================
# Data in, results out
# =============================================================================================


@dataclass
class Data:
    """The images a study uses: training and test arrays, class names, indices into the given split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    train_index: np.ndarray
    test_index: np.ndarray
    name: str = "data"
    meta: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def as_data(data: Any, n_train: int = 0, n_test: int = 0, seed: int = 0) -> Data:
    """A :class:`Data` from a Dataset (anything with ``x_train``, ``y_train``, ``x_test``, ``y_test``),
    a :class:`Data`, or a tuple ``(x_train, y_train, x_test, y_test)``, cut to ``n_train`` / ``n_test``
    images by the study's subset rule (0 = all; otherwise an exact stratified subset drawn with ``seed``)."""
    from digitlab.study.common import subset_indices

    if hasattr(data, "x_train"):
        parts = (data.x_train, data.y_train, data.x_test, data.y_test)
        classes, name, meta = getattr(data, "classes", None), getattr(data, "name", "data"), dict(getattr(data, "meta", {}) or {})
    elif isinstance(data, (tuple, list)) and len(data) == 4:
        parts, classes, name, meta = tuple(data), None, "data", {}
    else:
        raise ConfigError(f"data: got {type(data).__name__}; pass a Dataset (digitlab.data.load_dataset) or a tuple "
                          "(x_train, y_train, x_test, y_test)")
    x_tr, y_tr, x_te, y_te = parts
    y_tr, y_te = np.asarray(y_tr, dtype=np.int64), np.asarray(y_te, dtype=np.int64)
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise ConfigError(f"data: {len(x_tr)} training images with {len(y_tr)} labels, {len(x_te)} test images with "
                          f"{len(y_te)} labels; pass one label per image")
    if classes is None:
        classes = [str(c) for c in range(int(max(y_tr.max(initial=0), y_te.max(initial=0))) + 1)]
    base_tr = np.asarray(getattr(data, "train_index", np.arange(len(y_tr))))
    base_te = np.asarray(getattr(data, "test_index", np.arange(len(y_te))))
    tr, te = subset_indices(y_tr, n_train, seed), subset_indices(y_te, n_test, seed)
    return Data(np.asarray(x_tr)[tr], y_tr[tr], np.asarray(x_te)[te], y_te[te], list(classes), base_tr[tr], base_te[te],
                name, meta)


class StudyResult:
    """What every study function returns: DataFrames as attributes, ``plot(ax=None) -> Figure``.

    :meth:`tables` lists the DataFrames by name; in Jupyter the result shows its main table.
    """

    _main = "summary"

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every DataFrame of the result, by attribute name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if isinstance(getattr(self, f.name), pd.DataFrame)}

    def _repr_html_(self) -> str:
        return getattr(self, self._main)._repr_html_()

    def plot(self, ax=None):  # pragma: no cover - every result overrides it
        raise NotImplementedError


# =============================================================================================
# Shared plot pieces
# =============================================================================================


def plot_accuracy(models: Sequence[str], accuracy: Sequence[float], low: Sequence[float], high: Sequence[float], ax=None):
    """Test error (%, log scale) per model with its confidence interval as error bars and the
    accuracy written beside each bar; models drawn bottom to top in the order given. Returns the Figure."""
    fig, ax = single(ax, (7, 0.35 * len(models) + 1.2))
    acc, lo, hi = (np.asarray(v, dtype=float) for v in (accuracy, low, high))
    err = np.vstack([acc - lo, hi - acc])
    ax.barh(list(models), 100 * (1 - acc), xerr=100 * err[::-1], color="tab:blue", alpha=0.8, capsize=3)
    ax.set_xscale("log")
    ax.set_xlabel("test error % (log scale), bars: bootstrap 95 % CI")
    for i, (a, hi_err) in enumerate(zip(acc, 100 * (1 - acc + err[0]))):
        ax.text(hi_err * 1.04, i, f"{100 * a:.2f} %", va="center", fontsize=8)
    ax.set_xlim(right=ax.get_xlim()[1] * 1.35)  # room for the labels
    plain_log_ticks(ax.xaxis)
    return fig


# =============================================================================================
# compare_models
# =============================================================================================


def _model_specs(models: Sequence[str] | Mapping[str, Any]) -> list[tuple[str, str, dict]]:
    """``(label, zoo name, extra parameters)`` per entry: a name, ``(name, params)``, or ``{label: name |
    (name, params)}`` (a mapping lets one model appear twice, e.g. two penalties of logistic regression)."""
    from digitlab.models.zoo import check_models

    items = list(models.items()) if isinstance(models, Mapping) else [(None, m) for m in ([models] if isinstance(models, str) else models)]
    specs = []
    for label, spec in items:
        name, params = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
        specs.append((label or name, name, params))
    check_models([s[1] for s in specs], "models")
    labels = [s[0] for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"models: {labels} has repeated names; pass a mapping {{label: (model, params)}} to compare "
                          "one model under several settings")
    return specs


def _zoo_settings(settings: Any):
    from digitlab.models.zoo import ZooSettings

    if settings is None or isinstance(settings, ZooSettings):
        return settings or ZooSettings()
    if isinstance(settings, Mapping):
        known = {f.name for f in dataclasses.fields(ZooSettings)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"settings: unknown key(s) {unknown}; use some of {sorted(known)}")
        return ZooSettings(**settings)
    return ZooSettings.from_config(settings)


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
        titles = [f"true {self.data.classes[self.data.y_test[i]]}\n{_vote_text(self.predictions, i, self.data.classes)}" for i in pos]
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
    from digitlab.runtime import progress_bar
    from digitlab.models.zoo import run_model

    specs = _model_specs(models)
    d = as_data(data, n_train, n_test, seed)
    zoo = _zoo_settings(settings)
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


def _vote_text(preds: Mapping[str, np.ndarray], i: int, classes: Sequence[str], top: int = 3) -> str:
    """``"8×5, 3×2"``: the classes the models answered for image ``i``, most votes first."""
    from digitlab.errors_analysis import votes

    v = votes(preds, int(i), len(classes))
    order = [c for c in np.argsort(-v, kind="stable") if v[c] > 0][:top]
    return ", ".join(f"{classes[c]}×{v[c]}" for c in order)


# =============================================================================================
# Error analysis and label issues
# =============================================================================================


@dataclass
class ErrorAnalysis(StudyResult):
    """Which test images the models get wrong, and which mistakes they share.

    ``per_model`` (errors, error %, errors no other model makes, hard images among them, mean
    confidence on mistakes and when right), ``jaccard`` (|A ∩ B| / |A ∪ B| of the error sets),
    ``intersections`` (images wrong for exactly these models, largest first), ``hard`` (images at
    least ``hard_min`` models get wrong, most-missed first, with the models' votes), ``mistakes``
    (every model's misclassified images, most confident first) and, with images, ``traits`` (the hard
    images' traits against correctly classified images of their class, as z-scores).
    """

    per_model: pd.DataFrame
    jaccard: pd.DataFrame
    intersections: pd.DataFrame
    hard: pd.DataFrame
    mistakes: pd.DataFrame
    traits: pd.DataFrame | None
    hard_min: int
    errors: np.ndarray  # (models, images) boolean
    models: list[str]
    images: np.ndarray | None
    classes: list[str]
    _main = "per_model"

    def plot(self, ax=None):
        """Jaccard similarity of the models' error sets as an annotated heatmap. Returns the Figure."""
        fig, ax = single(ax, (0.55 * len(self.models) + 2.8, 0.5 * len(self.models) + 1.8))
        j = self.jaccard.to_numpy()
        im = ax.imshow(j, vmin=0, vmax=1, cmap="viridis")
        for a, b in np.ndindex(j.shape):
            ax.text(b, a, f"{j[a, b]:.2f}", ha="center", va="center", fontsize=7, color="white" if j[a, b] < 0.5 else "black")
        ax.set(xticks=range(len(self.models)), xticklabels=self.models, yticks=range(len(self.models)), yticklabels=self.models,
               title="overlap of the error sets (Jaccard)")
        ax.tick_params(axis="x", rotation=60)
        fig.colorbar(im, ax=ax, fraction=0.04)
        return fig

    def plot_upset(self, top: int = 15):
        """UpSet plot of the largest exclusive intersections of the error sets (a new Figure)."""
        from digitlab.errors_analysis import intersections, plot_upset

        return plot_upset(intersections(self.errors, self.models, top), self.models, self.errors.sum(1).tolist(),
                          "images wrong for exactly these models")

    def plot_hard(self, n: int = 24, cols: int = 8, ax=None):
        """The hardest images (most models wrong first), titled with their label and the models' votes."""
        if self.images is None:
            raise ConfigError("plot_hard: this analysis has no images; pass images= to error_analysis")
        rows = self.hard.head(n)
        titles = [f"true {r.true} ({r.models_wrong} wrong)\n{r.votes}" for r in rows.itertuples()]
        return plot_images(self.images[rows["position"].to_numpy()], titles, cols=cols, ax=ax)


def error_analysis(comparison_or_y: Any, predictions: Mapping[str, np.ndarray] | None = None,
                   proba: Mapping[str, np.ndarray | None] | None = None, *, images: np.ndarray | None = None,
                   classes: Sequence[str] | None = None, index: np.ndarray | None = None, hard_fraction: float = 0.5,
                   strokes: bool | None = None) -> ErrorAnalysis:
    """The error sets of several models on the same test images, their overlap and the hard images.

    Pass a :class:`ModelComparison` (its labels, predictions, probabilities, test images and classes
    are used), or the true labels with ``predictions`` (and optionally ``proba``, ``images``,
    ``classes``) as dicts by model. ``index`` numbers the images in the tables (default: the
    comparison's test indices, else positions). An image is hard when at least ``hard_fraction`` of
    the models get it wrong. ``strokes``: measure stroke width and slant in the traits (default: the
    dataset's ``ink_on_blank``, or True for greyscale arrays).
    """
    from digitlab import errors_analysis as A

    if isinstance(comparison_or_y, ModelComparison):
        c = comparison_or_y
        y, predictions, proba = c.data.y_test, c.predictions, c.proba
        images = c.data.x_test if images is None else images
        classes = c.data.classes if classes is None else classes
        index = c.data.test_index if index is None else index
        if strokes is None:
            strokes = bool(c.data.meta.get("ink_on_blank", c.data.x_test.ndim == 3))
    else:
        y = np.asarray(comparison_or_y, dtype=np.int64)
        if predictions is None:
            raise ConfigError("error_analysis: pass a ModelComparison, or the true labels and predictions={model: y_pred}")
    if not 0 < hard_fraction <= 1:
        raise ConfigError(f"hard_fraction = {hard_fraction}: use a share in (0, 1], e.g. 0.5")
    proba = proba or {}
    classes = [str(v) for v in (classes if classes is not None else range(int(y.max()) + 1))]
    index = np.arange(len(y)) if index is None else np.asarray(index)
    names, errors = A.error_matrix(y, predictions)
    wrong = errors.sum(0)
    hard_min = max(1, int(np.ceil(hard_fraction * len(names))))
    hard = np.flatnonzero(wrong >= hard_min)
    hard = hard[np.argsort(-wrong[hard], kind="stable")]
    conf = {n: A.confidence(proba.get(n), len(y)) for n in names}
    per_model = []
    for i, n in enumerate(names):
        e, cf = errors[i], conf[n]
        others = errors[np.arange(len(names)) != i].any(0) if len(names) > 1 else np.zeros_like(e)
        per_model.append({"model": n, "errors": int(e.sum()), "error_pct": 100 * float(e.mean()), "only_this_model": int((e & ~others).sum()),
                          "hard_among_them": int((e & (wrong >= hard_min)).sum()),
                          "confidence_on_mistakes": float(np.nanmean(cf[e])) if e.any() and np.isfinite(cf).any() else math.nan,
                          "confidence_when_right": float(np.nanmean(cf[~e])) if (~e).any() and np.isfinite(cf).any() else math.nan})
    inter = pd.DataFrame([{"models": ", ".join(r["models"]), "n_models": r["degree"], "images": r["size"]}
                          for r in A.intersections(errors, names)], columns=["models", "n_models", "images"])
    hard_rows = pd.DataFrame([{"position": int(i), "index": int(index[i]), "true": classes[y[i]], "models_wrong": int(wrong[i]),
                               "votes": _vote_text(predictions, i, classes)} for i in hard],
                             columns=["position", "index", "true", "models_wrong", "votes"])
    mistakes = pd.DataFrame([{"model": n, **r, "true": classes[r["true"]], "predicted": classes[r["predicted"]]}
                             for n in names for r in A.misclassified(y, predictions[n], conf[n], index)],
                            columns=["model", "index", "true", "predicted", "confidence"])
    traits = None
    if images is not None and len(hard):
        reference = wrong == 0
        t = A.image_traits(np.asarray(images), strokes=True if strokes is None else strokes)
        traits = pd.DataFrame(A.trait_comparison(t, y, hard, reference)).set_index("trait")
    return ErrorAnalysis(pd.DataFrame(per_model).set_index("model"),
                         pd.DataFrame(A.jaccard_matrix(errors), index=names, columns=names), inter, hard_rows, mistakes, traits,
                         hard_min, errors, names, None if images is None else np.asarray(images), classes)


@dataclass
class LabelIssues(StudyResult):
    """Training images whose given label is probably wrong, most suspicious first.

    ``candidates``: the images confident learning flags (``index`` into the given images, ``given``,
    ``suggested`` = the most probable class, ``score`` = probability of the given label; low is
    suspicious). ``ranking``: every image by that score (the order without confident learning's cut).
    ``planted``: with ``plant > 0``, how well the same procedure finds labels flipped on purpose
    (``n``, ``recall``, ``precision_at_k``, ``flagged``). ``oof_accuracy``: accuracy of the
    out-of-fold probabilities.
    """

    candidates: pd.DataFrame
    ranking: pd.DataFrame
    planted: dict[str, float] | None
    oof_accuracy: float
    images: np.ndarray
    classes: list[str]
    _main = "candidates"

    def plot(self, n: int = 24, cols: int = 8, ax=None):
        """The first ``n`` candidates (flagged first, then the lowest self-confidence), titled given -> suggested."""
        flagged = set(self.candidates["index"])
        rows = pd.concat([self.candidates, self.ranking[~self.ranking["index"].isin(flagged)]]).head(n)
        titles = [f"{r.given} → {r.suggested}\np = {r.score:.2f}" for r in rows.itertuples()]
        return plot_images(self.images[rows["index"].to_numpy()], titles, cols=cols, ax=ax)


def label_issues(data: Any, *, n_train: int = 0, model: str = "knn", pca_dims: int = 50, folds: int = 5, k: int = 10,
                 seed: int = 0, plant: float = 0.0, n_jobs: int = 1) -> LabelIssues:
    """Rank training labels that look wrong: out-of-fold probabilities of a fast model (``"knn"`` or
    ``"logreg"`` on a PCA of the pixels, ``folds`` stratified folds) ranked by confident learning
    (cleanlab). ``data``: a Dataset (its training images, ``n_train`` of them; 0 = all) or
    ``(x, y)``. ``plant``: also flip this share of the labels on purpose and report how many of them
    the procedure finds. ``index`` in the tables counts the images given (after the subset)."""
    from digitlab import errors_analysis as A
    from digitlab.study.common import subset_indices

    if hasattr(data, "x_train"):
        x, y, classes = data.x_train, np.asarray(data.y_train), list(data.classes)
    else:
        x, y = data
        y = np.asarray(y, dtype=np.int64)
        classes = [str(c) for c in range(int(y.max()) + 1)]
    at = subset_indices(y, n_train, seed)
    x, y = np.asarray(x)[at], y[at]
    kk = len(classes)
    (z,) = A.pca_space(x, pca_dims, seed)
    oof = A.out_of_fold_proba(z, y, kk, model, folds, seed, k, n_jobs)
    frame = lambda rows: pd.DataFrame([{**r, "given": classes[r["given"]], "suggested": classes[r["suggested"]]} for r in rows],  # noqa: E731
                                      columns=["index", "given", "suggested", "score"])
    planted = None
    if plant > 0:
        y_flip, where = A.plant_flips(y, max(1, int(round(plant * len(y)))), kk, seed + 1)
        ranked = [r["index"] for r in A.rank_label_issues(y_flip, A.out_of_fold_proba(z, y_flip, kk, model, folds, seed, k, n_jobs))]
        planted = {"n": len(where), **A.detection_scores(ranked, where)}
    return LabelIssues(frame(A.rank_label_issues(y, oof)), frame(A.self_confidence_ranking(y, oof)), planted,
                       float(np.mean(oof.argmax(1) == y)), x, classes)


# =============================================================================================
# Learning curve
# =============================================================================================


def _lc_point(point: dict, seed: int, threads: int, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
              zoo: Any, device: str, params: dict) -> dict[str, Any]:
    """One job: ``point["model"]`` on ``point["n_train"]`` training images drawn with ``seed``."""
    from sklearn.exceptions import ConvergenceWarning

    from digitlab.models.zoo import run_model
    from digitlab.study.common import subset_indices

    idx = subset_indices(y_train, point["n_train"], seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        run = run_model(point["name"], x_train[idx], y_train[idx], x_test, zoo, seed=seed, n_jobs=threads, device=device,
                        threads=threads, **params.get(point["model"], {}))
    tr = getattr(run.model, "train_result_", None)
    return {"y_pred": run.y_pred, "fit_s": run.fit_s, "n_fit": run.n_train,
            "epochs": getattr(tr, "epochs_run", None) if tr else None, "steps": getattr(tr, "steps", None) if tr else None}


@dataclass
class LearningCurve(StudyResult):
    """Accuracy against training-set size.

    ``runs`` (one row per model x size x seed: accuracy, fit seconds, the CNN's epochs and optimiser
    steps), ``summary`` (mean, SD, min, max over seeds per model and size), ``fits`` (the saturating
    power law ``error = a (n/1000)^-b + c`` per model: parameters with SDs, the error floor as an
    accuracy ceiling, and the size beyond which ``per`` more images gain less than ``gain``, with its
    95 % interval). ``power_laws`` holds the :class:`~digitlab.learning_curve.PowerLawFit` objects.
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    fits: pd.DataFrame
    power_laws: dict[str, Any]
    gain: float
    per: float

    def plot(self, ax=None):
        """Accuracy against training images (log x) per model: seed spread, fitted curve and its band,
        the adequate size dotted. Returns the Figure."""
        from digitlab.learning_curve import plot_learning_curve

        fig, ax = single(ax, (6, 4))
        for i, (m, g) in enumerate(self.runs.groupby("model", sort=False)):
            plot_learning_curve(g["n_train"], g["accuracy"], self.power_laws.get(m), ax=ax, label=m, color=f"C{i}",
                                gain=self.gain, per=self.per)
        ax.legend(fontsize=8)
        return fig


def learning_curve(data: Any, models: Sequence[str] | Mapping[str, Any], sizes: Sequence[int], *, seeds: int | Sequence[int] = 3,
                   n_test: int = 0, seed: int = 0, settings: Any = None, n_jobs: int = 1, device: str = "auto",
                   fit: bool = True, gain: float = 0.001, per: float = 1000.0, progress: bool = False,
                   backend: str = "loky") -> LearningCurve:
    """Every model at every training-set size with several seeds, scored on the same test images.

    ``seeds``: a count (``seed``, ``seed + 1``, ...) or a list; each seed draws its own stratified
    training subset (and the model's randomness). ``models`` as in :func:`compare_models`. The CNN
    trains with its recipe's step budget (``min_steps``), so small sets get enough optimiser steps;
    ``runs`` says how many each had. Sizes at least as large as the training set use all of it.
    Jobs run through :func:`digitlab.experiment.run_grid` (``n_jobs`` in parallel, largest first).
    ``fit``: fit the power law (needs three sizes or more), read with ``gain`` and ``per``.
    """
    from digitlab.experiment import run_grid
    from digitlab.learning_curve import adequate_size, adequate_size_interval, fit_power_law

    specs = _model_specs(models)
    seeds = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    d = as_data(data, 0, n_test, seed)
    zoo = _zoo_settings(settings)
    sizes = sorted({min(int(n), len(d.y_train)) if n > 0 else len(d.y_train) for n in sizes}, reverse=True)
    points = [{"model": label, "name": name, "n_train": n} for n in sizes for label, name, _ in specs]
    params = {label: p for label, _, p in specs}
    rows = run_grid(_lc_point, points, seeds, args=(d.x_train, d.y_train, d.x_test, zoo, device, params), n_jobs=n_jobs,
                    backend=backend, device=device, progress=progress, description="learning curve")
    runs = pd.DataFrame([{"model": r["model"], "n_train": r["n_fit"], "seed": r["seed"], "accuracy": float(np.mean(r["y_pred"] == d.y_test)),
                          "fit_s": r["fit_s"], "epochs": r["epochs"], "steps": r["steps"]} for r in rows])
    order = {label: i for i, (label, _, _) in enumerate(specs)}
    runs = runs.sort_values(["model", "n_train", "seed"], key=lambda c: c.map(order) if c.name == "model" else c).reset_index(drop=True)
    summary = (runs.groupby(["model", "n_train"], sort=False)
               .agg(accuracy_mean=("accuracy", "mean"), accuracy_sd=("accuracy", "std"), accuracy_min=("accuracy", "min"),
                    accuracy_max=("accuracy", "max"), n_seeds=("accuracy", "size"), fit_s_mean=("fit_s", "mean"))
               .reset_index())
    summary["accuracy_sd"] = summary["accuracy_sd"].fillna(0.0)
    laws, fit_rows = {}, []
    for m, g in runs.groupby("model", sort=False):
        law = fit_power_law(g["n_train"], 1 - g["accuracy"]) if fit else None
        if law is None:
            continue
        laws[m] = law
        lo, hi = adequate_size_interval(law, gain, per, seed=seed)
        fit_rows.append({"model": m, "a": law.a, "b": law.b, "c": law.c, "a_sd": law.a_sd, "b_sd": law.b_sd, "c_sd": law.c_sd,
                         "ceiling_accuracy": 1 - law.c, "adequate_size": adequate_size(law, gain, per), "adequate_low": lo,
                         "adequate_high": hi, "rmse": law.rmse, "at_bound": ", ".join(law.at_bound)})
    fits = pd.DataFrame(fit_rows, columns=["model", "a", "b", "c", "a_sd", "b_sd", "c_sd", "ceiling_accuracy", "adequate_size",
                                           "adequate_low", "adequate_high", "rmse", "at_bound"]).set_index("model")
    return LearningCurve(runs, summary, fits, laws, gain, per)


# =============================================================================================
# CNN sweep
# =============================================================================================


def _split_setting(key: str, train_fields: set[str]) -> str:
    """Where a swept setting goes: "train" (a TrainConfig field), "net" (the network family) or "net_params"."""
    return "train" if key in train_fields else "net" if key == "net" else "net_params"


def _sweep_point(point: dict, seed: int, threads: int, x_tr, y_tr, x_te, y_te, recipe: tuple, base: dict, device: str,
                 n_classes: int) -> dict[str, Any]:
    """One job of :func:`cnn_sweep`: the recipe with ``base`` and ``point`` applied, trained with ``seed``."""
    from digitlab.experiment import fit_and_score
    from digitlab.train import TrainConfig

    net, net_params, tc = recipe
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    settings = {**base, **point}
    train = {k: v for k, v in settings.items() if _split_setting(k, train_fields) == "train"}
    net = settings.get("net", net)
    extra = {k: v for k, v in settings.items() if _split_setting(k, train_fields) == "net_params"}
    params = {**(net_params if net == recipe[0] else {}), **extra}
    cfg = dataclasses.replace(tc, **{**train, "device": device})
    res = fit_and_score(net, params, x_tr, y_tr, {"test": (x_te, y_te)}, cfg, seed=seed, n_classes=n_classes)
    return {"test_acc": res["test_acc"], "test_loss": res["test_loss"], "params": res["params"],
            "train_seconds": res["train_seconds"], "epochs_run": res["epochs_run"], "steps": res["steps"],
            "best_epoch": res["best_epoch"], "val_curve": [h["val_acc"] for h in res["history"]]}


@dataclass
class CNNSweep(StudyResult):
    """A CNN recipe with one or two settings varied, every point trained with several seeds.

    ``runs``: one row per point and seed (the settings, ``seed``, test accuracy and loss, parameters,
    training seconds, epochs and optimiser steps run, best epoch); ``summary``: per point the mean,
    SD, min and max over seeds (:func:`digitlab.experiment.summarise`). ``settings``: the swept names.
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    settings: list[str]
    curves: dict[tuple, list[list[float]]]

    def plot(self, ax=None):
        """Test accuracy (%) against the first setting (mean +- seed SD, single seeds as dots), one line
        per value of the second setting if there is one. Returns the Figure."""
        fig, ax = single(ax, (6, 4))
        first, second = self.settings[0], (self.settings[1] if len(self.settings) > 1 else None)
        values = list(dict.fromkeys(self.summary[first]))
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        xs = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
        groups = [(None, self.summary)] if second is None else list(self.summary.groupby(second, sort=False))
        for i, (g, sub) in enumerate(groups):
            x = [xs[v] for v in sub[first]]
            ax.errorbar(x, 100 * sub["test_acc_mean"], yerr=100 * sub["test_acc_sd"], fmt="o-" if numeric else "o", capsize=3,
                        color=f"C{i}", label=None if second is None else f"{second} = {g}")
            runs = self.runs if second is None else self.runs[self.runs[second] == g]
            ax.scatter([xs[v] for v in runs[first]], 100 * runs["test_acc"], s=9, color=f"C{i}", alpha=0.5, zorder=3)
        if numeric and min(values) > 0 and max(values) / min(values) >= 10:
            ax.set_xscale("log")
        ax.set_xticks(list(xs.values()), [str(v) for v in values])
        ax.minorticks_off()
        ax.set(xlabel=first, ylabel="test accuracy (%)")
        if second is not None:
            ax.legend(fontsize=8)
        return fig

    def plot_curves(self, ax=None):
        """Validation accuracy per epoch, mean over seeds, one line per point. Returns the Figure."""
        fig, ax = single(ax, (6, 4))
        for i, (key, curves) in enumerate(self.curves.items()):
            n = min(len(c) for c in curves)
            mean = np.nanmean([c[:n] for c in curves], axis=0)
            ax.plot(np.arange(1, n + 1), 100 * mean, "o-", ms=3, color=f"C{i % 10}",
                    label=", ".join(f"{k}={v}" for k, v in zip(self.settings, key)))
        ax.set(xlabel="epoch", ylabel="validation accuracy (%)")
        ax.legend(fontsize=7)
        return fig


def cnn_sweep(data: Any, grid: Mapping[str, Sequence[Any]], *, recipe: tuple | str = "fast", base: Mapping[str, Any] | None = None,
              seeds: int | Sequence[int] = 2, n_train: int = 0, n_test: int = 0, seed: int = 0, n_jobs: int = 1,
              device: str = "auto", progress: bool = False, backend: str = "loky") -> CNNSweep:
    """Train a CNN recipe at every combination of one or two settings, with several seeds.

    Parameters
    ----------
    data : a Dataset or ``(x_train, y_train, x_test, y_test)``; ``n_train`` / ``n_test`` images of it.
    grid : ``{setting: values}`` with one or two settings. A setting is a :class:`~digitlab.train.TrainConfig`
        field (``lr``, ``batch_size``, ``epochs``, ``min_steps``, ``optimizer``, ``scheduler``, ``l1``,
        ``l2``, ``weight_decay``, ``label_smoothing``, ``augment``, ...), ``net`` (the network family of
        :data:`digitlab.models.nets.NET_NAMES`) or a parameter of the network (``n_blocks``, ``width``,
        ``kernel_size``, ``batch_norm``, ``dropout``, ...).
    recipe : ``"fast"``, ``"strong"`` or a recipe tuple ``(net, net_params, TrainConfig)``.
    base : settings applied to every point before the swept ones (e.g. ``{"epochs": 3}``).
    seeds : a count (``seed``, ``seed + 1``, ...) or a list; a seed draws the weights, the batches
        and the validation split.

    Every point x seed is one job of :func:`digitlab.experiment.run_grid` (equal points train once)
    and goes through :func:`digitlab.experiment.fit_and_score`.
    """
    from digitlab.experiment import run_grid, summarise
    from digitlab.train import FAST_RECIPE, STRONG_RECIPE

    if isinstance(recipe, str):
        if recipe not in ("fast", "strong"):
            raise ConfigError(f"recipe {recipe!r}: unknown; use 'fast', 'strong' or a (net, net_params, TrainConfig) tuple")
        recipe = FAST_RECIPE if recipe == "fast" else STRONG_RECIPE
    if not 1 <= len(grid) <= 2 or any(len(v) == 0 for v in grid.values()):
        raise ConfigError(f"grid: {dict(grid)!r}; give one or two settings, each with at least one value, e.g. {{'lr': [0.003, 0.01]}}")
    seeds = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    d = as_data(data, n_train, n_test, seed)
    names = list(grid)
    points = [dict(zip(names, combo)) for combo in itertools.product(*(list(grid[n]) for n in names))]
    rows = run_grid(_sweep_point, points, seeds, args=(d.x_train, d.y_train, d.x_test, d.y_test, recipe, dict(base or {}),
                                                      device, d.n_classes),
                    n_jobs=n_jobs, backend=backend, device=device, progress=progress, description="cnn sweep")
    curves: dict[tuple, list] = {}
    for r in rows:
        curves.setdefault(tuple(r[n] for n in names), []).append(r.pop("val_curve"))
    runs = pd.DataFrame(rows)
    metrics = ["test_acc", "test_loss", "train_seconds", "steps"]
    summary = pd.DataFrame(summarise(rows, by=names, metrics=metrics))
    return CNNSweep(runs, summary, names, curves)


# =============================================================================================
# Augmentation effect
# =============================================================================================


def _aug_point(point: dict, seed: int, threads: int, x_tr, y_tr, eval_sets: dict, recipe: tuple, base: dict, p: float,
               device: str, n_classes: int) -> dict[str, Any]:
    """One job of :func:`augmentation_effect`: the recipe trained with one augmentation, scored on every set."""
    from digitlab.augment import get_augmentation
    from digitlab.experiment import fit_and_score

    net, net_params, tc = recipe
    cfg = dataclasses.replace(tc, **{**base, "augment": "", "device": device})
    name = point["augmentation"]
    augment = None if name == "none" else get_augmentation(name, p=p)
    res = fit_and_score(net, net_params, x_tr, y_tr, eval_sets, cfg, seed=seed, augment=augment, n_classes=n_classes)
    return {**{f"{k}_acc": res[f"{k}_acc"] for k in eval_sets}, "train_seconds": res["train_seconds"], "steps": res["steps"]}


@dataclass
class AugmentationEffect(StudyResult):
    """A CNN trained without and with each augmentation, scored on clean and corrupted test images.

    ``runs``: one row per training augmentation and seed with the accuracy on the clean test images
    (``clean``) and on each corrupted copy (one column per corruption, named after it),
    ``mean_corrupted`` and training seconds. ``summary``: mean over seeds per training augmentation,
    the clean accuracy's seed SD, and the changes against training without augmentation
    (``delta_clean``, ``delta_corrupted``). ``matrix``: mean accuracy, training augmentation (rows)
    x test condition (columns).
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    matrix: pd.DataFrame
    corruptions: list[str]

    def plot(self, ax=None):
        """Clean and mean corrupted test accuracy (%) per training augmentation, as paired bars. Returns the Figure."""
        fig, ax = single(ax, (6.5, 0.45 * len(self.summary) + 1.4))
        s = self.summary.iloc[::-1]
        y = np.arange(len(s))
        ax.barh(y + 0.2, 100 * s["clean"], height=0.4, color="tab:blue", label="clean test images")
        if self.corruptions:
            ax.barh(y - 0.2, 100 * s["mean_corrupted"], height=0.4, color="tab:orange", label="corrupted (mean)")
        ax.set_yticks(y, list(s.index))
        lo = 100 * float(np.nanmin(s[["clean", "mean_corrupted"]].to_numpy())) if self.corruptions else 100 * float(s["clean"].min())
        ax.set_xlim(max(0.0, lo - 5), 100)
        ax.set(xlabel="test accuracy (%)", ylabel="trained with")
        ax.legend(fontsize=8, loc="lower left")
        return fig

    def plot_matrix(self, ax=None):
        """Mean accuracy (%) per training augmentation (rows) and test condition (columns). Returns the Figure."""
        fig, ax = single(ax, (0.7 * self.matrix.shape[1] + 2.5, 0.45 * self.matrix.shape[0] + 1.5))
        m = 100 * self.matrix.to_numpy(dtype=float)
        im = ax.imshow(m, cmap="viridis", aspect="auto")
        for i, j in np.ndindex(m.shape):
            ax.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center", fontsize=7, color="white" if m[i, j] < np.nanmean(m) else "black")
        ax.set(xticks=range(m.shape[1]), xticklabels=list(self.matrix.columns), yticks=range(m.shape[0]),
               yticklabels=list(self.matrix.index), xlabel="tested on", ylabel="trained with")
        ax.tick_params(axis="x", rotation=45)
        fig.colorbar(im, ax=ax, fraction=0.04, label="accuracy (%)")
        return fig


def augmentation_effect(data: Any, augmentations: Sequence[str], *, corruptions: Sequence[str] | None = None, p: float = 0.5,
                        recipe: tuple | str = "fast", base: Mapping[str, Any] | None = None, seeds: int | Sequence[int] = 1,
                        n_train: int = 0, n_test: int = 0, seed: int = 0, corruption_seed: int | None = None, n_jobs: int = 1,
                        device: str = "auto", progress: bool = False, backend: str = "loky") -> AugmentationEffect:
    """How training with each augmentation changes a CNN's accuracy on clean and on corrupted images.

    One CNN of ``recipe`` is trained without augmentation (``"none"``) and one with each name of
    ``augmentations`` (:mod:`digitlab.augment`'s catalogue, each sample transformed with probability
    ``p``), per seed; the recipe's own augmentation is switched off. All are scored on the clean test
    images and on one corrupted copy of them per name of ``corruptions`` (default: the
    augmentations; each applied to every test image, ``p = 1``, drawn with ``corruption_seed``,
    default ``seed + 7919``, the same copy for every model). ``base`` overrides TrainConfig fields of
    the recipe (e.g. ``{"epochs": 3}``). Jobs run through :func:`digitlab.experiment.run_grid`.
    """
    from digitlab.augment import augment_images, get_augmentation
    from digitlab.experiment import run_grid
    from digitlab.train import FAST_RECIPE, STRONG_RECIPE

    if isinstance(recipe, str):
        if recipe not in ("fast", "strong"):
            raise ConfigError(f"recipe {recipe!r}: unknown; use 'fast', 'strong' or a (net, net_params, TrainConfig) tuple")
        recipe = FAST_RECIPE if recipe == "fast" else STRONG_RECIPE
    names = [a for a in augmentations if a != "none"]
    for a in names:
        get_augmentation(a)  # a ConfigError naming the catalogue for an unknown name, before any training
    corruptions = list(names if corruptions is None else corruptions)
    seeds = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    d = as_data(data, n_train, n_test, seed)
    cseed = seed + 7919 if corruption_seed is None else corruption_seed
    eval_sets = {"clean": (d.x_test, d.y_test), **{c: (augment_images(d.x_test, c, seed=cseed, p=1.0), d.y_test) for c in corruptions}}
    if len(eval_sets) != 1 + len(corruptions):
        raise ConfigError(f"corruptions: {corruptions} repeats a name or uses 'clean'; give each corruption once")
    points = [{"augmentation": a} for a in ["none", *names]]
    rows = run_grid(_aug_point, points, seeds, args=(d.x_train, d.y_train, eval_sets, recipe, dict(base or {}), p, device, d.n_classes),
                    n_jobs=n_jobs, backend=backend, device=device, progress=progress, description="augmentation effect")
    runs = pd.DataFrame([{"augmentation": r["augmentation"], "seed": r["seed"], **{k: r[f"{k}_acc"] for k in eval_sets},
                          "mean_corrupted": float(np.mean([r[f"{c}_acc"] for c in corruptions])) if corruptions else math.nan,
                          "train_seconds": r["train_seconds"], "steps": r["steps"]} for r in rows])
    g = runs.groupby("augmentation", sort=False)
    summary = g[["clean", "mean_corrupted", *corruptions]].mean()
    summary.insert(1, "clean_sd", g["clean"].std().fillna(0.0))
    summary.insert(0, "n_seeds", g.size())
    summary["delta_clean"] = summary["clean"] - summary.loc["none", "clean"]
    summary["delta_corrupted"] = summary["mean_corrupted"] - summary.loc["none", "mean_corrupted"]
    summary["train_seconds"] = g["train_seconds"].mean()
    return AugmentationEffect(runs, summary, summary[["clean", *corruptions]].copy(), corruptions)
