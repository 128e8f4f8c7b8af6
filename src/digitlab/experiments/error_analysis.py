"""Error analysis and label issues: which images models get wrong, which mistakes they share, which labels look wrong.

One experiment, one home. :func:`error_analysis` takes the true labels and every model's predictions
(and probabilities) on the same test images and returns an :class:`ErrorAnalysis`: the error sets and
their overlap (Jaccard, exclusive intersections for an UpSet plot), the hard images (missed by at least
``hard_fraction`` of the models) with their traits against correctly classified images of their class,
optionally a 2-D map of the test images and, given training images, the label issues of
:func:`label_issues` (out-of-fold probabilities of a fast model ranked by confident learning, with a
planted-flip check). The ``errors`` task of the study and a notebook call these same functions.

The building blocks are plain functions on arrays, in four layers:

* **error sets** -- :func:`load_predictions` reads classify's ``predictions.npz``;
  :func:`error_matrix`, :func:`confidence`, :func:`misclassified`, :func:`votes`;
* **overlap** -- :func:`jaccard_matrix`, :func:`intersections`, :func:`plot_upset`;
* **traits** -- :func:`image_traits`, :func:`centre_distance`, :func:`trait_comparison`;
* **label issues** -- :func:`out_of_fold_proba`, :func:`rank_label_issues`,
  :func:`self_confidence_ranking`, :func:`plant_flips`, :func:`detection_scores`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from digitlab.exceptions import ConfigError, DatasetError
from digitlab.experiments.base import StudyResult
from digitlab.plots import fit_width, single

CV_MODELS = ("knn", "logreg")  # fast models for out-of-fold probabilities (see out_of_fold_proba)
# at most this share of a subsampled map is taken by the hard images (more would bridge the clusters)
MAP_HARD_SHARE = 0.1


# =============================================================================================
# Error sets
# =============================================================================================


def load_predictions(path: str | Path) -> dict[str, Any]:
    """Read classify's ``predictions.npz``: ``y_true``, ``test_index``, ``models`` (names) and per
    model ``pred[name]``, ``proba[name]`` (``None`` for models with decision scores only) and
    ``scores[name]`` (``None`` for models with probabilities)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"predictions file {path}: not found; run the classify task first")
    with np.load(path) as d:
        models = [str(m) for m in d["models"]]
        return {
            "y_true": d["y_true"].astype(np.int64),
            "test_index": d["test_index"].astype(np.int64),
            "models": models,
            "pred": {m: d[f"y_pred__{m}"].astype(np.int64) for m in models},
            "proba": {
                m: d[f"proba__{m}"].astype(np.float64) if f"proba__{m}" in d.files else None for m in models
            },
            "scores": {
                m: d[f"scores__{m}"].astype(np.float64) if f"scores__{m}" in d.files else None for m in models
            },
        }


def error_matrix(y_true: np.ndarray, preds: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Model names and the ``(n_models, n_images)`` boolean matrix ``E[m, i]`` = model m got image i wrong."""
    names = list(preds)
    y = np.asarray(y_true)
    return names, np.stack([np.asarray(preds[n]) != y for n in names]) if names else np.zeros(
        (0, len(y)), bool
    )


def confidence(proba: np.ndarray | None, n: int) -> np.ndarray:
    """Probability of the predicted (most probable) class per image; NaN for a model without probabilities."""
    return np.full(n, np.nan) if proba is None else np.asarray(proba, dtype=np.float64).max(1)


def misclassified(
    y_true: np.ndarray, y_pred: np.ndarray, conf: np.ndarray, index: np.ndarray | None = None
) -> list[dict]:
    """One row per misclassified image: ``index`` (``index[i]``, e.g. the official test order), ``true``,
    ``predicted`` and ``confidence`` (None where NaN); most confident mistakes first."""
    y_true, y_pred, conf = np.asarray(y_true), np.asarray(y_pred), np.asarray(conf, dtype=np.float64)
    index = np.arange(len(y_true)) if index is None else np.asarray(index)
    wrong = np.flatnonzero(y_true != y_pred)
    wrong = wrong[np.argsort(-np.nan_to_num(conf[wrong], nan=-1.0), kind="stable")]
    return [
        {
            "index": int(index[i]),
            "true": int(y_true[i]),
            "predicted": int(y_pred[i]),
            "confidence": None if np.isnan(conf[i]) else float(conf[i]),
        }
        for i in wrong
    ]


def votes(preds: Mapping[str, np.ndarray], i: int, n_classes: int) -> np.ndarray:
    """How many models predicted each class for image ``i`` (length ``n_classes``)."""
    return np.bincount([int(p[i]) for p in preds.values()], minlength=n_classes)


# =============================================================================================
# Overlap of error sets
# =============================================================================================


def jaccard_matrix(errors: np.ndarray) -> np.ndarray:
    """``J[a, b]`` = |A ∩ B| / |A ∪ B| of the error sets (rows of the boolean ``errors`` matrix).

    Two empty sets are identical: their Jaccard index is 1.
    """
    e = np.asarray(errors, dtype=np.int64)
    inter = e @ e.T
    sizes = e.sum(1)
    union = sizes[:, None] + sizes[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def intersections(errors: np.ndarray, names: Sequence[str], top: int | None = None) -> list[dict[str, Any]]:
    """The exclusive intersections of the error sets, largest first: for each combination of models,
    the images that exactly these models (and no other) got wrong.

    Returns rows ``{"models": tuple of names, "degree": number of models, "size": images}``; images no
    model got wrong are not counted. Ties are broken by degree (more models first), then by the
    models' order in ``names``. ``top`` keeps the largest ones.
    """
    e = np.asarray(errors, dtype=bool)
    any_wrong = e.any(0)
    if not any_wrong.any():
        return []
    patterns, counts = np.unique(e[:, any_wrong].T, axis=0, return_counts=True)
    rows = [
        {
            "models": tuple(names[j] for j in np.flatnonzero(p)),
            "degree": int(p.sum()),
            "size": int(c),
            "_key": tuple(np.flatnonzero(p)),
        }
        for p, c in zip(patterns, counts)
    ]
    rows.sort(key=lambda r: (-r["size"], -r["degree"], r["_key"]))
    for r in rows:
        del r["_key"]
    return rows[:top] if top else rows


def plot_upset(
    rows: Sequence[dict],
    names: Sequence[str],
    set_sizes: Sequence[int],
    title: str = "",
    labels: Mapping[str, str] | None = None,
    ax=None,
):
    """An UpSet plot of ``rows`` (from :func:`intersections`): intersection sizes as bars on top, the
    models in each intersection as joined dots below, each model's error count as bars on the left.
    The intersections' columns narrow so that the figure stays within :data:`digitlab.plots.MAX_WIDTH`.
    ``ax``: draw into the area of this Axes instead of a new figure. Returns the matplotlib figure."""
    from digitlab.plots import fit_width, grid

    labels = labels or {}
    m, k = len(names), len(rows)
    step = fit_width(0.38, max(k, 1), extra=3.6)
    fig, gs = grid(
        ax,
        2,
        3,
        (max(6.0, step * k + 3.6), 2.6 + 0.3 * m),
        width_ratios=(1.0, 1.45, max(k, 1) * step),
        height_ratios=(2.0, 0.3 * m),
        wspace=0.0,
        hspace=0.04,
    )
    ax_bar, ax_dots, ax_sets = fig.add_subplot(gs[0, 2]), fig.add_subplot(gs[1, 2]), fig.add_subplot(gs[1, 0])
    x = np.arange(k)
    sizes = [r["size"] for r in rows]
    ax_bar.bar(x, sizes, color="0.25", width=0.6)
    for xi, s in zip(x, sizes):
        ax_bar.text(xi, s, str(s), ha="center", va="bottom", fontsize=7)
    ax_bar.set(xlim=(-0.6, k - 0.4), xticks=[], ylabel="images", title=title)
    ax_bar.spines[["top", "right"]].set_visible(False)
    row_of = {n: m - 1 - j for j, n in enumerate(names)}  # first model on top
    for j in range(0, m, 2):  # zebra stripes guide the eye along a model's row
        ax_dots.axhspan(j - 0.5, j + 0.5, color="0.95", zorder=0)
    dot = min(1.0, step / 0.38) ** 2  # dots shrink with the columns
    for xi, r in zip(x, rows):
        ax_dots.scatter(np.full(m, xi), np.arange(m), s=28 * dot, color="0.82", zorder=1)
        ys = sorted(row_of[n] for n in r["models"])
        ax_dots.plot([xi, xi], [ys[0], ys[-1]], color="0.25", lw=1.6, zorder=2)
        ax_dots.scatter(np.full(len(ys), xi), ys, s=34 * dot, color="0.25", zorder=3)
    ax_dots.set(
        xlim=(-0.6, k - 0.4),
        ylim=(-0.5, m - 0.5),
        xticks=[],
        yticks=[row_of[n] for n in names],
        yticklabels=[labels.get(n, n) for n in names],
    )
    ax_dots.tick_params(axis="y", length=0, labelsize=8)
    for s in ax_dots.spines.values():
        s.set_visible(False)
    ax_sets.barh([row_of[n] for n in names], set_sizes, color="tab:red", alpha=0.7, height=0.6)
    ax_sets.set(ylim=(-0.5, m - 0.5), yticks=[], xlabel="errors per model")
    ax_sets.invert_xaxis()
    ax_sets.spines[["top", "left", "right"]].set_visible(False)
    return fig


# =============================================================================================
# Traits of hard images
# =============================================================================================


def greyscale(images: np.ndarray) -> np.ndarray:
    """``(n, H, W)`` uint8 images; colour ``(n, H, W, C)`` images are averaged over channels."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images.mean(-1).round().astype(np.uint8)
    return images


def image_traits(images: np.ndarray, strokes: bool = True) -> dict[str, np.ndarray]:
    """Per-image traits from :func:`digitlab.features.extract_features`: ink ratio, mean intensity and,
    when ``strokes`` (ink on a blank background), stroke width and slant.

    Slant is the shear of the ink: ``atan(-mu11 / mu02)`` in degrees, the horizontal drift of the ink
    per row down the image (rows grow downwards, so a ``/`` lean has ``mu11 < 0`` and a positive slant).
    """
    from digitlab.features import extract_features

    X, names = extract_features(greyscale(images))
    col = {n: X[:, i].astype(np.float64) for i, n in enumerate(names)}
    out = {"ink_ratio": col["ink_otsu"], "mean_intensity": col["mean_intensity"]}
    if strokes:
        slant = np.degrees(np.arctan2(-col["mu11"], np.maximum(col["mu02"], 1e-9)))
        out = {"stroke_width": col["stroke_width"], **out, "slant_deg": slant, "abs_slant_deg": np.abs(slant)}
    return out


def pca_space(x_fit: np.ndarray, dims: int, seed: int, *others: np.ndarray) -> list[np.ndarray]:
    """Fit PCA with ``dims`` components on ``x_fit`` (pixels/255) and project it and ``others``."""
    from sklearn.decomposition import PCA

    from digitlab.embed import to_features

    x_fit = to_features(x_fit)
    pca = PCA(n_components=int(min(dims, x_fit.shape[1], len(x_fit))), random_state=seed).fit(x_fit)
    return [pca.transform(x_fit).astype(np.float32)] + [
        pca.transform(to_features(o)).astype(np.float32) for o in others
    ]


def class_centres(z: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean of each class's rows of ``z`` (NaN for a class without rows)."""
    return np.stack(
        [z[y == c].mean(0) if np.any(y == c) else np.full(z.shape[1], np.nan) for c in range(n_classes)]
    )


def centre_distance(z: np.ndarray, y: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row of ``z`` to the centre of its class ``y``."""
    return np.linalg.norm(z - centres[np.asarray(y)], axis=1)


def trait_comparison(
    traits: Mapping[str, np.ndarray], y: np.ndarray, hard: np.ndarray, reference: np.ndarray
) -> list[dict]:
    """Compare ``hard`` images (indices) with ``reference`` images (a boolean mask, e.g. classified
    correctly by every model) **of the same class**, one row per trait.

    Each hard image is measured against the reference images of its own class: its z-score (distance
    from their mean in their standard deviations) and its percentile among them. Rows hold the hard
    images' mean, the mean of their classes' reference means (``reference_mean``, weighted like the
    hard images), the mean z-score, the mean absolute z-score, the mean percentile (50 = typical of its
    class) and ``reference_abs_z``, the mean absolute z-score of the reference images themselves (about
    0.8 for a normal trait: the baseline ``mean_abs_z`` is to be read against). Hard images of a class
    without reference images are skipped (``n_hard`` counts the rest).
    """
    y, hard, reference = np.asarray(y), np.asarray(hard, dtype=np.int64), np.asarray(reference, dtype=bool)
    rows = []
    for name, t in traits.items():
        t = np.asarray(t, dtype=np.float64)
        vals, refs, zs, pct = [], [], [], []
        for i in hard:
            r = t[reference & (y == y[i])]
            r = r[np.isfinite(r)]
            if len(r) < 2 or not np.isfinite(t[i]):
                continue
            sd = r.std(ddof=1)
            vals.append(t[i])
            refs.append(r.mean())
            zs.append((t[i] - r.mean()) / sd if sd > 0 else 0.0)
            pct.append(100 * ((r < t[i]).mean() + 0.5 * (r == t[i]).mean()))
        base = []  # the same |z| for the reference images themselves: the spread typical of a class
        for c in np.unique(y[reference]):
            r = t[reference & (y == c)]
            r = r[np.isfinite(r)]
            if len(r) >= 2 and r.std(ddof=1) > 0:
                base.append(np.abs(r - r.mean()) / r.std(ddof=1))
        rows.append(
            {
                "trait": name,
                "n_hard": len(vals),
                "hard_mean": float(np.mean(vals)) if vals else None,
                "reference_mean": float(np.mean(refs)) if refs else None,
                "mean_z": float(np.mean(zs)) if zs else None,
                "mean_abs_z": float(np.mean(np.abs(zs))) if zs else None,
                "mean_percentile": float(np.mean(pct)) if pct else None,
                "reference_abs_z": float(np.concatenate(base).mean()) if base else None,
            }
        )
    return rows


# =============================================================================================
# Label issues: out-of-sample probabilities and confident learning
# =============================================================================================


def make_cv_model(name: str, k: int = 10):
    """The fast model behind the out-of-fold probabilities: ``"knn"`` (``k`` neighbours, distance-weighted)
    or ``"logreg"`` (multinomial logistic regression); both on the features they are given."""
    if name == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=k, weights="distance")
    if name == "logreg":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, max_iter=300)
    raise ConfigError(f"label-issue model {name!r}: unknown; choose one of {', '.join(CV_MODELS)}")


def out_of_fold_proba(
    z: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    model: str = "knn",
    n_folds: int = 5,
    seed: int = 0,
    k: int = 10,
    n_jobs: int = 1,
) -> np.ndarray:
    """Out-of-fold predicted probabilities ``(n, n_classes)``: ``n_folds`` stratified, shuffled folds
    (scikit-learn's ``cross_val_predict``), so each image is scored by a model that never saw its label.

    Probabilities are floored at 1e-4 and renormalised (k-NN gives exact zeros; confident learning
    works with them, but ties at zero carry no ranking).
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray(y)
    counts = np.bincount(y, minlength=n_classes)
    folds = int(min(n_folds, counts[counts > 0].min()))
    if folds < 2:
        raise DatasetError(
            f"label issues: a class has {folds} training image(s); need at least 2 per class for cross-validation"
        )
    est = make_cv_model(model, k=int(min(k, len(y) - len(y) // folds - 1)))
    p = cross_val_predict(
        est,
        z,
        y,
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        method="predict_proba",
        n_jobs=n_jobs,
    )
    full = np.zeros((len(y), n_classes))
    full[:, np.unique(y)] = p  # classes absent from y keep probability 0
    return smooth(full)


def smooth(p: np.ndarray, floor: float = 1e-4) -> np.ndarray:
    """Probabilities floored at ``floor`` and renormalised to rows summing to 1."""
    p = np.maximum(np.asarray(p, dtype=np.float64), floor)
    return p / p.sum(1, keepdims=True)


def rank_label_issues(labels: np.ndarray, proba: np.ndarray, index: np.ndarray | None = None) -> list[dict]:
    """Images whose given label is probably wrong, most probable first (confident learning).

    cleanlab's ``find_label_issues`` estimates the joint distribution of given and true labels from
    the out-of-sample ``proba`` (the confident joint) and flags, per given class, as many images as it
    estimates to be mislabelled (``prune_by_noise_rate``); they are ranked by self-confidence, the
    probability assigned to the given label (low = suspicious; ties, such as k-NN's zeros, broken by the
    probability of the most probable other class). Rows: ``index`` (``index[i]``),
    ``given``, ``suggested`` (most probable class), ``score`` (self-confidence).
    """
    from cleanlab.filter import find_label_issues

    labels = np.asarray(labels, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    index = np.arange(len(labels)) if index is None else np.asarray(index)
    if proba.shape != (len(labels), proba.shape[1]) or labels.max(initial=0) >= proba.shape[1]:
        raise DatasetError(
            f"label issues: probabilities of shape {proba.shape} do not match {len(labels)} labels"
        )
    present = np.flatnonzero(np.bincount(labels, minlength=proba.shape[1]) > 0)
    if len(present) < 2:
        return []
    # cleanlab wants every column's class among the labels: restrict to the classes present
    remap = np.full(proba.shape[1], -1)
    remap[present] = np.arange(len(present))
    p = proba[:, present]
    p = p / np.maximum(p.sum(1, keepdims=True), 1e-300)
    flagged = find_label_issues(remap[labels], p, return_indices_ranked_by="self_confidence", n_jobs=1)
    score = p[np.arange(len(labels)), remap[labels]]
    ranked = flagged[_by_self_confidence(p[flagged], remap[labels][flagged])]
    suggested = present[p.argmax(1)]
    return [
        {
            "index": int(index[i]),
            "given": int(labels[i]),
            "suggested": int(suggested[i]),
            "score": float(score[i]),
        }
        for i in ranked
    ]


def self_confidence_ranking(
    labels: np.ndarray, proba: np.ndarray, index: np.ndarray | None = None
) -> list[dict]:
    """Every image ranked by self-confidence (probability of the given label, lowest first), in the rows
    of :func:`rank_label_issues`: the order confident learning ranks its candidates in, without its cut."""
    labels = np.asarray(labels, dtype=np.int64)
    p = smooth(proba)
    index = np.arange(len(labels)) if index is None else np.asarray(index)
    score = p[np.arange(len(labels)), labels]
    return [
        {
            "index": int(index[i]),
            "given": int(labels[i]),
            "suggested": int(p[i].argmax()),
            "score": float(score[i]),
        }
        for i in _by_self_confidence(p, labels)
    ]


def _by_self_confidence(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Order of rows by self-confidence ``p[i, labels[i]]`` (lowest first); ties (e.g. k-NN's zeros) go
    first to the row whose most probable other class is most probable."""
    rows = np.arange(len(p))
    score = p[rows, labels]
    other = p.copy()
    other[rows, labels] = -np.inf
    return np.lexsort((-other.max(1) if len(p) else np.zeros(0), score))


def plant_flips(y: np.ndarray, n: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A copy of labels ``y`` with ``n`` seeded random positions set to another random class, and those positions."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y).copy()
    where = np.sort(rng.choice(len(y), size=int(min(n, len(y))), replace=False))
    y[where] = (y[where] + rng.integers(1, n_classes, size=len(where))) % n_classes
    return y, where


def detection_scores(ranked: Sequence[int], planted: np.ndarray) -> dict[str, float]:
    """How well a ranked candidate list finds ``planted`` positions: recall among all candidates, and
    precision among the first ``len(planted)`` candidates."""
    ranked, planted = np.asarray(ranked, dtype=np.int64), np.asarray(planted, dtype=np.int64)
    if len(planted) == 0:
        return {"recall": float("nan"), "precision_at_k": float("nan"), "flagged": len(ranked)}
    return {
        "recall": float(np.isin(planted, ranked).mean()),
        "precision_at_k": float(np.isin(ranked[: len(planted)], planted).mean()) if len(ranked) else 0.0,
        "flagged": int(len(ranked)),
    }


def plot_error_maps(
    emb: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str],
    errors: np.ndarray,
    names: Sequence[str],
    labels: Mapping[str, str] | None = None,
    cols: int = 5,
    ax=None,
):
    """Error maps on one 2-D embedding: a large panel (top left, 2 x 2 cells) coloured by how many models
    got each image wrong, then one small panel per model with its errors in red over the other images
    in grey, filling the grid of ``cols`` columns beside and below it. The figure is at most
    :data:`digitlab.plots.MAX_WIDTH` wide (more models: more rows). ``ax``: draw into the area of this
    Axes instead of a new figure. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    from matplotlib import patheffects

    from digitlab.plots import fit_width, grid

    labels = labels or {}
    errors = np.asarray(errors, dtype=bool)
    m, n = errors.shape
    cols = max(3, cols)
    big = 2  # the summary panel spans big x big cells
    beside = (cols - big) * big  # model panels to its right
    rows = big + int(np.ceil(max(m - beside, 0) / cols))
    cell = fit_width(1.5, cols)
    fig, gs = grid(ax, rows, cols, (cell * cols, cell * rows + 0.7), hspace=0.35, wspace=0.08)
    ax0 = fig.add_subplot(gs[:big, :big])
    size = float(np.clip(12_000 / max(n, 1), 1.0, 14)) * (cell * big / 5.8) ** 2
    wrong = errors.sum(0)
    right = wrong == 0
    ax0.scatter(
        emb[right, 0],
        emb[right, 1],
        s=size,
        color="0.82",
        linewidths=0,
        rasterized=True,
        label="no model wrong",
    )
    order = np.flatnonzero(~right)[
        np.argsort(wrong[~right], kind="stable")
    ]  # most-missed drawn last (on top)
    cmap = plt.get_cmap("plasma_r", max(m, 1))
    sc = ax0.scatter(
        emb[order, 0],
        emb[order, 1],
        c=wrong[order],
        cmap=cmap,
        vmin=0.5,
        vmax=m + 0.5,
        s=size * 2.2,
        linewidths=0.2,
        edgecolors="black",
        rasterized=True,
    )
    cb = fig.colorbar(sc, ax=ax0, ticks=range(1, m + 1), location="left", fraction=0.05, pad=0.02, shrink=0.9)
    cb.set_label("models that got the image wrong", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    for c in np.unique(y):
        mx, my = np.median(emb[y == c], axis=0)
        ax0.text(
            mx,
            my,
            classes[c],
            ha="center",
            va="center",
            fontsize=10,
            weight="bold",
            path_effects=halo,
            zorder=4,
        )
    ax0.set_title("how many models got each image wrong", fontsize=9)
    cells = [(i, j) for i in range(big) for j in range(big, cols)] + [
        (i, j) for i in range(big, rows) for j in range(cols)
    ]
    panels = [ax0]
    for (i, j), name, e in zip(cells, names, errors):
        a = fig.add_subplot(gs[i, j])
        panels.append(a)
        a.scatter(emb[~e, 0], emb[~e, 1], s=size * 0.25, color="0.85", linewidths=0, rasterized=True)
        a.scatter(emb[e, 0], emb[e, 1], s=size * 0.6, color="tab:red", linewidths=0, rasterized=True)
        a.set_title(f"{labels.get(name, name)}\n{int(e.sum()):,} wrong", fontsize=7.5)
    for a in panels:
        a.set_xticks([]), a.set_yticks([])
        a.set_aspect("equal", "datalim")
    return fig


# =============================================================================================
# Galleries
# =============================================================================================


def plot_gallery(
    images: np.ndarray,
    titles: Sequence[str],
    cols: int = 8,
    suptitle: str = "",
    cell: float = 1.35,
    title_size: float = 6.5,
    ax=None,
):
    """A grid of images with a (possibly multi-line) title each; returns the matplotlib figure.

    Greyscale images with a dark background (ink on blank, e.g. MNIST) are shown dark on white, all
    with the same colour map so that the images compare. Images shrink from ``cell`` inches so that
    ``cols`` of them fit :data:`digitlab.plots.MAX_WIDTH`. ``ax``: draw into the area of this Axes
    (:func:`digitlab.plots.plot_images`, which this is)."""
    from digitlab.plots import fit_width, plot_images

    cols = max(1, min(cols, len(images)))
    return plot_images(
        images, titles, cols=cols, ax=ax, suptitle=suptitle, cell=fit_width(cell, cols), title_size=title_size
    )


# =============================================================================================
# The experiment: label issues
# =============================================================================================


def _status(enabled: bool, text: str):
    """A spinner on stderr while a slow step runs (a no-op when ``enabled`` is False)."""
    if not enabled:
        return nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(text)


def _top(flagged: list[dict], ranking: list[dict], n: int) -> list[dict]:
    """The first ``n`` candidates: the flagged ones, then (if fewer) the unflagged images of lowest self-confidence."""
    seen = {r["index"] for r in flagged}
    rows = [dict(r, flagged=True) for r in flagged[:n]]
    return rows + [dict(r, flagged=False) for r in ranking if r["index"] not in seen][: n - len(rows)]


def _frame(rows: list[dict], classes: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [{**r, "given": classes[r["given"]], "suggested": classes[r["suggested"]]} for r in rows],
        columns=["index", "given", "suggested", "score"],
    )


@dataclass
class LabelIssues(StudyResult):
    """Images whose given label is probably wrong, most suspicious first.

    ``candidates``: the training images confident learning flags (``index`` = official training index,
    ``given``, ``suggested`` = the most probable class, ``score`` = probability of the given label; low
    is suspicious); ``ranking``: every scanned training image by that score (the order without
    confident learning's cut). With test images, ``test_candidates`` / ``test_ranking`` do the same for
    them. ``planted``: with ``plant > 0``, how well the procedure finds labels flipped on purpose
    (``n``, ``recall``, ``precision_at_k``, ``flagged``). ``oof_accuracy``: accuracy of the
    out-of-fold probabilities. ``flagged``/``ranked``/``top`` hold the same rows as dicts by part
    ("train", "test"; class ids), ``top`` the first ``top`` candidates (flagged, then the lowest
    self-confidence, with ``flagged`` True/False).
    """

    candidates: pd.DataFrame
    ranking: pd.DataFrame
    planted: dict[str, float] | None
    oof_accuracy: float
    images: np.ndarray  # the training images scanned
    classes: list[str]
    test_candidates: pd.DataFrame | None = None
    test_ranking: pd.DataFrame | None = None
    train_index: np.ndarray | None = None
    y_train: np.ndarray | None = None
    flagged: dict[str, list[dict]] = field(default_factory=dict)
    ranked: dict[str, list[dict]] = field(default_factory=dict)
    top: dict[str, list[dict]] = field(default_factory=dict)
    z_train: np.ndarray | None = None  # PCA of the training images (pixels/255), fitted on them
    z_test: np.ndarray | None = None  # the test images in that PCA space
    p_test: np.ndarray | None = None  # test probabilities the test labels are ranked by
    test_models: list[str] = field(
        default_factory=list
    )  # models whose probabilities were averaged ([] = the cv model)
    test_images: np.ndarray | None = None
    test_index: np.ndarray | None = None
    _main = "candidates"

    @property
    def n_train(self) -> int:
        return len(self.images)

    def plot(self, n: int = 24, cols: int | None = None, part: str = "train", ax=None):
        """The first ``n`` candidates of ``part`` ("train" or "test"): flagged first, then the lowest
        self-confidence; titled with the rank, given and suggested label and self-confidence."""
        if part not in self.ranked:
            raise ConfigError(
                f"plot: no {part!r} label issues; pass test images to label_issues for part='test'"
            )
        top = _top(self.flagged[part], self.ranked[part], n)
        index = self.train_index if part == "train" else self.test_index
        images = self.images if part == "train" else self.test_images
        where = {int(v): i for i, v in enumerate(index)}
        titles = [
            f"#{k + 1}{'' if r['flagged'] else ' (not flagged)'}\ngiven {self.classes[r['given']]}\n"
            f"suggest {self.classes[r['suggested']]}\nself-conf. {r['score']:.3f}"
            for k, r in enumerate(top)
        ]
        if cols is None:
            cols = (
                8 if max(len(c) for c in self.classes) <= 6 else 6
            )  # four title lines per image need ~0.9 inch
        return plot_gallery(images[[where[r["index"]] for r in top]], titles, cols=cols, ax=ax)


def label_issues(
    data: Any,
    *,
    n_train: int = 0,
    model: str = "knn",
    pca_dims: int = 50,
    folds: int = 5,
    k: int = 10,
    seed: int = 0,
    plant: float = 0.0,
    n_jobs: int = 1,
    top: int = 20,
    test_images: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
    test_index: np.ndarray | None = None,
    test_proba: Mapping[str, np.ndarray | None] | None = None,
    test_models: Sequence[str] = (),
) -> LabelIssues:
    """Rank labels that look wrong: out-of-fold probabilities of a fast model (``"knn"`` or ``"logreg"``
    on a PCA of the pixels, ``folds`` stratified folds) ranked by confident learning (cleanlab).

    ``data``: a Dataset (its training images, ``n_train`` of them by the study's subset rule; 0 = all)
    or ``(x, y)``. ``plant``: also flip this share of the labels on purpose and report how many of them
    the procedure finds. With ``test_images`` and ``test_labels``, the test labels are ranked too, by
    the mean probabilities of ``test_models`` taken from ``test_proba`` (models without probabilities
    skipped), or, when none is left, by the fast model fitted on the training images.
    """
    from digitlab.data.subsets import subset_indices

    if hasattr(data, "x_train"):
        x, y, classes = data.x_train, np.asarray(data.y_train, dtype=np.int64), list(data.classes)
    else:
        x, y = data
        y = np.asarray(y, dtype=np.int64)
        classes = [str(c) for c in range(int(y.max()) + 1)]
    at = subset_indices(y, n_train, seed)
    x, y = np.asarray(x)[at], y[at]
    kk = len(classes)
    others = () if test_images is None else (test_images,)
    z_train, *rest = pca_space(x, pca_dims, seed, *others)
    oof = out_of_fold_proba(z_train, y, kk, model, folds, seed, k, n_jobs)
    flagged = {"train": rank_label_issues(y, oof, at)}
    ranked = {"train": self_confidence_ranking(y, oof, at)}
    res = LabelIssues(
        _frame(flagged["train"], classes),
        _frame(ranked["train"], classes),
        None,
        float(np.mean(oof.argmax(1) == y)),
        x,
        classes,
        train_index=at,
        y_train=y,
        z_train=z_train,
    )
    if test_images is not None:
        y_test = np.asarray(test_labels, dtype=np.int64)
        test_index = np.arange(len(y_test)) if test_index is None else np.asarray(test_index)
        proba = test_proba or {}
        used = [m for m in test_models if m in proba and proba[m] is not None]
        if used:
            p_test = np.mean([proba[m] for m in used], axis=0)
        else:
            est = make_cv_model(model, k).fit(z_train, y)
            p_test = np.zeros((len(y_test), kk))
            p_test[:, est.classes_] = est.predict_proba(rest[0])
        flagged["test"] = rank_label_issues(y_test, smooth(p_test), test_index)
        ranked["test"] = self_confidence_ranking(y_test, p_test, test_index)
        res.test_candidates, res.test_ranking = (
            _frame(flagged["test"], classes),
            _frame(ranked["test"], classes),
        )
        res.z_test, res.p_test, res.test_models = rest[0], p_test, used
        res.test_images, res.test_index = np.asarray(test_images), test_index
    res.flagged, res.ranked = flagged, ranked
    res.top = {part: _top(flagged[part], ranked[part], top) for part in ("test", "train") if part in flagged}
    if plant > 0:
        y_flip, where = plant_flips(y, max(1, int(round(plant * len(y)))), kk, seed + 1)
        oof_flip = out_of_fold_proba(z_train, y_flip, kk, model, folds, seed, k, n_jobs)
        res.planted = {
            "n": len(where),
            **detection_scores([r["index"] for r in rank_label_issues(y_flip, oof_flip)], where),
        }
    return res


# =============================================================================================
# The experiment: error analysis
# =============================================================================================


def map_points(wrong: np.ndarray, y: np.ndarray, n: int, hard_min: int, seed: int) -> np.ndarray:
    """Positions drawn on the map: all when ``n`` is 0 or covers them; otherwise the hard images first
    (most-missed first, up to :data:`MAP_HARD_SHARE` of ``n``), then a stratified sample of the rest."""
    from digitlab.data.subsets import subset_indices

    if n <= 0 or n >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    missed = np.flatnonzero(wrong >= hard_min)
    missed = missed[np.lexsort((rng.random(len(missed)), -wrong[missed]))][: int(MAP_HARD_SHARE * n)]
    rest = np.setdiff1d(np.arange(len(y)), missed)
    fill = rest[subset_indices(y[rest], n - len(missed), seed)]
    return np.sort(np.concatenate([missed, fill]))


def independent_jaccard(a: float, b: float, n: int) -> float:
    """Expected Jaccard index of two error sets of sizes a and b among n images if mistakes were independent."""
    both = a * b / max(n, 1)
    return both / max(a + b - both, 1e-12)


@dataclass
class ErrorAnalysis(StudyResult):
    """Which test images the models get wrong, and which mistakes they share.

    ``per_model`` (errors, error %, errors no other model makes, hard images among them, mean
    confidence on mistakes and when right), ``jaccard`` (|A ∩ B| / |A ∪ B| of the error sets),
    ``intersections`` (images wrong for exactly these models, largest first), ``hard`` (images at
    least ``hard_min`` models get wrong, most-missed first, with the models' votes), ``mistakes``
    (every model's misclassified images, most confident first) and, with images, ``traits`` (the hard
    images' traits against correctly classified images of their class, as z-scores). ``label``: the
    :class:`LabelIssues` when training images were given; ``map_xy``: the 2-D map of the test images
    at positions ``map_pos`` when a map method was given. The raw arrays and rows behind the tables
    are kept as well (``errors``, ``wrong``, ``hard_positions``, ``conf``, ``inter``, ``comparison``, ...).
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
    y: np.ndarray | None = None
    index: np.ndarray | None = None
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    conf: dict[str, np.ndarray] = field(default_factory=dict)
    wrong: np.ndarray | None = None  # models wrong per image
    hard_positions: np.ndarray | None = None  # positions of the hard images, most-missed first
    mistake_rows: dict[str, list[dict]] = field(default_factory=dict)  # misclassified() rows by model
    inter: list[dict] = field(default_factory=list)  # intersections() rows
    chance_ratio: float = math.nan  # median over pairs of observed / independent Jaccard
    independent: np.ndarray | None = None  # independent-mistake Jaccard of each pair (upper triangle order)
    hard_confusions: dict[tuple[int, int], int] = field(
        default_factory=dict
    )  # (given, top wrong vote) -> hard images
    trait_values: dict[str, np.ndarray] = field(default_factory=dict)  # per image (NaN where not measured)
    comparison: list[dict] = field(default_factory=list)  # trait_comparison() rows
    label: LabelIssues | None = None
    map_method: str | None = None
    map_pos: np.ndarray | None = None
    map_xy: np.ndarray | None = None
    map_seconds: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    _main = "per_model"

    def plot(self, ax=None, labels: Mapping[str, str] | None = None):
        """Jaccard similarity of the models' error sets as an annotated heatmap. Returns the Figure."""
        labels = labels or {}
        m = len(self.models)
        cell = fit_width(0.55, m, extra=2.5)  # within the report's printable width
        fig, ax = single(ax, (cell * m + 2.5, 0.9 * cell * m + 1.5))
        j = self.jaccard.to_numpy()
        im = ax.imshow(j, cmap="viridis", vmin=0, vmax=1)
        for a, b in np.ndindex(j.shape):
            ax.text(
                b,
                a,
                f"{j[a, b]:.2f}",
                ha="center",
                va="center",
                fontsize=6.5,
                color="black" if j[a, b] > 0.6 else "white",
            )
        names = [labels.get(n, n) for n in self.models]
        ax.set(
            xticks=range(m),
            yticks=range(m),
            xticklabels=names,
            yticklabels=names,
            title="Jaccard index of the error sets",
        )
        for t in ax.get_xticklabels():
            t.set(rotation=60, ha="right", rotation_mode="anchor")
        fig.colorbar(im, ax=ax, fraction=0.04)
        return fig

    plot_jaccard = plot

    def plot_upset(
        self,
        top: int = 15,
        labels: Mapping[str, str] | None = None,
        title: str = "largest exclusive intersections",
        ax=None,
    ):
        """UpSet plot of the ``top`` largest exclusive intersections of the error sets."""
        return plot_upset(self.inter[:top], self.models, self.errors.sum(1), title, labels, ax=ax)

    def plot_error_map(self, labels: Mapping[str, str] | None = None, ax=None):
        """The 2-D map coloured by how many models miss each image, and each model's mistakes."""
        if self.map_xy is None:
            raise ConfigError("plot_error_map: this analysis has no map; pass map_method= to error_analysis")
        pos = self.map_pos
        return plot_error_maps(
            self.map_xy, self.y[pos], self.classes, self.errors[:, pos], self.models, labels, ax=ax
        )

    def plot_hard(self, n: int = 24, cols: int = 8, ax=None):
        """The hardest images (most models wrong first), titled with their given label and the models' votes."""
        if self.images is None:
            raise ConfigError("plot_hard: this analysis has no images; pass images= to error_analysis")
        hard = self.hard_positions[:n]
        titles = [
            f"given {self.classes[self.y[i]]}\n{vote_text(self.predictions, i, self.classes)}" for i in hard
        ]
        return plot_gallery(self.images[hard], titles, cols=cols, ax=ax)


def error_analysis(
    comparison_or_y: Any,
    predictions: Mapping[str, np.ndarray] | None = None,
    proba: Mapping[str, np.ndarray | None] | None = None,
    *,
    images: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    index: np.ndarray | None = None,
    hard_fraction: float = 0.5,
    strokes: bool | None = None,
    reference_per_class: int = 0,
    train: Any = None,
    n_train: int = 0,
    pca_dims: int = 50,
    cv_model: str = "knn",
    cv_folds: int = 5,
    cv_k: int = 10,
    test_models: Sequence[str] | None = None,
    planted_fraction: float = 0.0,
    top_candidates: int = 20,
    map_method: str | None = None,
    map_size: int = 0,
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool = False,
) -> ErrorAnalysis:
    """The error sets of several models on the same test images, their overlap, the hard images and,
    given training images, the labels that look wrong.

    Pass a :class:`ModelComparison` (its labels, predictions, probabilities, test images, classes and
    training data are used), or the true labels with ``predictions`` (and optionally ``proba``,
    ``images``, ``classes``) as dicts by model. ``index`` numbers the images in the tables (default:
    the comparison's test indices, else positions). An image is hard when at least ``hard_fraction``
    of the models get it wrong. Traits (with ``images``): the hard images against up to
    ``reference_per_class`` images per class every model gets right (0 = all); ``strokes`` measures
    stroke width and slant (default: the dataset's ``ink_on_blank``, or True). ``train`` (a Dataset or
    ``(x, y)``): run :func:`label_issues` on ``n_train`` of its images with ``cv_model``, ``cv_folds``,
    ``cv_k``, ``pca_dims``, ``planted_fraction`` and rank the test labels by the mean probabilities of
    ``test_models`` (default: every model with probabilities); the traits then add the distance to the
    class centre in that PCA space and the probability of the given label. ``map_method`` ("pca",
    "tsne", "umap"): a 2-D map of ``map_size`` test images (0 = all; the hard images first).
    """
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
            raise ConfigError(
                "error_analysis: pass a ModelComparison, or the true labels and predictions={model: y_pred}"
            )
    if not 0 < hard_fraction <= 1:
        raise ConfigError(f"hard_fraction = {hard_fraction}: use a share in (0, 1], e.g. 0.5")
    y = np.asarray(y, dtype=np.int64)
    proba = proba or {}
    classes = [str(v) for v in (classes if classes is not None else range(int(y.max()) + 1))]
    index = np.arange(len(y)) if index is None else np.asarray(index)
    names, errors = error_matrix(y, predictions)
    wrong = errors.sum(0)
    m = len(names)
    hard_min = max(1, int(np.ceil(hard_fraction * m)))
    hard = np.flatnonzero(wrong >= hard_min)
    hard = hard[np.argsort(-wrong[hard], kind="stable")]
    conf = {n: confidence(proba.get(n), len(y)) for n in names}
    clock = {"start": time.perf_counter()}

    lab = None
    if train is not None and images is not None:
        with _status(progress, "errors: label issues (cross-validation, confident learning)"):
            lab = label_issues(
                train,
                n_train=n_train,
                model=cv_model,
                pca_dims=pca_dims,
                folds=cv_folds,
                k=cv_k,
                seed=seed,
                plant=planted_fraction,
                top=top_candidates,
                test_images=images,
                test_labels=y,
                test_index=index,
                test_proba=proba,
                test_models=[n for n in names if proba.get(n) is not None]
                if test_models is None
                else test_models,
            )
        clock["label_issues"] = time.perf_counter()
        where = {int(v): i for i, v in enumerate(index)}
        for r in lab.top["test"]:
            r["models_suggesting"] = int(
                sum(predictions[n][where[r["index"]]] == r["suggested"] for n in names)
            )

    trait_values: dict[str, np.ndarray] = {}
    comparison: list[dict] = []
    if images is not None:
        ref = np.flatnonzero(wrong == 0)
        if reference_per_class:
            from digitlab.data.subsets import subset_indices

            ref = ref[subset_indices(y[ref], min(len(ref), reference_per_class * len(classes)), seed)]
        at = np.union1d(hard, ref)
        for name, v in image_traits(
            np.asarray(images)[at], strokes=True if strokes is None else strokes
        ).items():
            trait_values[name] = np.full(len(y), np.nan)
            trait_values[name][at] = v
        if lab is not None:
            centres = class_centres(lab.z_train, lab.y_train, len(classes))
            trait_values["centre_distance"] = centre_distance(lab.z_test, y, centres)
            trait_values["given_label_probability"] = lab.p_test[np.arange(len(y)), y]
        comparison = trait_comparison(trait_values, y, hard, np.isin(np.arange(len(y)), at) & (wrong == 0))
        clock["traits"] = time.perf_counter()

    pos = emb = None
    map_s = 0.0
    if map_method is not None:
        from digitlab.embed import embed

        pos = map_points(wrong, y, map_size, hard_min, seed)
        if map_method == "pca":
            source = np.asarray(images)[pos]
        else:  # t-SNE / UMAP on the training-fitted PCA (the test images' own PCA without training images)
            z_test = lab.z_test if lab is not None else pca_space(np.asarray(images), pca_dims, seed)[0]
            source = z_test[pos]
        with _status(progress, f"errors: {map_method} map of {len(pos):,} test images"):
            t0 = time.perf_counter()
            emb = embed(source, map_method, seed=seed, n_jobs=n_jobs, pca_dims=0)
        map_s = time.perf_counter() - t0
        clock["map"] = time.perf_counter()

    jac = jaccard_matrix(errors)
    inter = intersections(errors, names)
    iu = np.triu_indices(m, 1)
    errs = errors.sum(1)
    ind = np.array([independent_jaccard(errs[i], errs[j], len(y)) for i, j in zip(*iu)])
    ratio = float(np.median(jac[iu] / np.maximum(ind, 1e-12))) if m > 1 else math.nan
    pairs: dict[tuple[int, int], int] = {}
    for i in hard:
        v = votes(predictions, i, len(classes))
        v[y[i]] = -1
        key = (int(y[i]), int(v.argmax()))
        pairs[key] = pairs.get(key, 0) + 1

    per_model = []
    for i, n in enumerate(names):
        e, cf = errors[i], conf[n]
        others = errors[np.arange(m) != i].any(0) if m > 1 else np.zeros_like(e)
        per_model.append(
            {
                "model": n,
                "errors": int(e.sum()),
                "error_pct": 100 * float(e.mean()),
                "only_this_model": int((e & ~others).sum()),
                "hard_among_them": int((e & (wrong >= hard_min)).sum()),
                "confidence_on_mistakes": float(np.nanmean(cf[e]))
                if e.any() and np.isfinite(cf).any()
                else math.nan,
                "confidence_when_right": float(np.nanmean(cf[~e]))
                if (~e).any() and np.isfinite(cf).any()
                else math.nan,
            }
        )
    inter_df = pd.DataFrame(
        [{"models": ", ".join(r["models"]), "n_models": r["degree"], "images": r["size"]} for r in inter],
        columns=["models", "n_models", "images"],
    )
    hard_rows = pd.DataFrame(
        [
            {
                "position": int(i),
                "index": int(index[i]),
                "true": classes[y[i]],
                "models_wrong": int(wrong[i]),
                "votes": vote_text(predictions, i, classes),
            }
            for i in hard
        ],
        columns=["position", "index", "true", "models_wrong", "votes"],
    )
    mistake_rows = {n: misclassified(y, predictions[n], conf[n], index) for n in names}
    mistakes = pd.DataFrame(
        [
            {"model": n, **r, "true": classes[r["true"]], "predicted": classes[r["predicted"]]}
            for n in names
            for r in mistake_rows[n]
        ],
        columns=["model", "index", "true", "predicted", "confidence"],
    )
    traits = pd.DataFrame(comparison).set_index("trait") if comparison else None
    steps = list(clock)
    return ErrorAnalysis(
        pd.DataFrame(per_model).set_index("model"),
        pd.DataFrame(jac, index=names, columns=names),
        inter_df,
        hard_rows,
        mistakes,
        traits,
        hard_min,
        errors,
        names,
        None if images is None else np.asarray(images),
        classes,
        y=y,
        index=index,
        predictions=dict(predictions),
        conf=conf,
        wrong=wrong,
        hard_positions=hard,
        mistake_rows=mistake_rows,
        inter=inter,
        chance_ratio=ratio,
        independent=ind,
        hard_confusions=pairs,
        trait_values=trait_values,
        comparison=comparison,
        label=lab,
        map_method=map_method,
        map_pos=pos,
        map_xy=None if emb is None else np.asarray(emb),
        map_seconds=map_s,
        seconds={b: round(clock[b] - clock[a], 2) for a, b in zip(steps, steps[1:])},
    )


def vote_text(preds: Mapping[str, np.ndarray], i: int, classes: Sequence[str], top: int = 3) -> str:
    """``"8×5, 3×2"``: the classes the models answered for image ``i``, most votes first."""
    v = votes(preds, int(i), len(classes))
    order = [c for c in np.argsort(-v, kind="stable") if v[c] > 0][:top]
    return ", ".join(f"{classes[c]}×{v[c]}" for c in order)


__all__ = [
    "error_analysis",
    "ErrorAnalysis",
    "label_issues",
    "LabelIssues",
    "vote_text",
    "map_points",
    "independent_jaccard",
    "load_predictions",
    "error_matrix",
    "confidence",
    "misclassified",
    "votes",
    "jaccard_matrix",
    "intersections",
    "plot_upset",
    "plot_error_maps",
    "greyscale",
    "image_traits",
    "pca_space",
    "class_centres",
    "centre_distance",
    "trait_comparison",
    "make_cv_model",
    "out_of_fold_proba",
    "smooth",
    "rank_label_issues",
    "self_confidence_ranking",
    "plant_flips",
    "detection_scores",
    "plot_gallery",
    "CV_MODELS",
    "MAP_HARD_SHARE",
]
