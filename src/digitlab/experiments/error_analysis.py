"""Which images models get wrong, which mistakes they share, and which labels look wrong."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from digitlab.exceptions import ConfigError
from digitlab.experiments.base import StudyResult
from digitlab.plots import plot_images, single

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

    if hasattr(comparison_or_y, "predictions") and hasattr(comparison_or_y, "data"):  # a ModelComparison
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
                               "votes": vote_text(predictions, i, classes)} for i in hard],
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
    from digitlab.data.subsets import subset_indices

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


def vote_text(preds: Mapping[str, np.ndarray], i: int, classes: Sequence[str], top: int = 3) -> str:
    """``"8×5, 3×2"``: the classes the models answered for image ``i``, most votes first."""
    from digitlab.errors_analysis import votes

    v = votes(preds, int(i), len(classes))
    order = [c for c in np.argsort(-v, kind="stable") if v[c] > 0][:top]
    return ", ".join(f"{classes[c]}×{v[c]}" for c in order)
