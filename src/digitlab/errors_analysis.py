"""Which images models get wrong, which mistakes they share, and which labels look wrong.

Pure functions on arrays (no files, no config), in four layers:

* **error sets** -- :func:`load_predictions` reads classify's ``predictions.npz``;
  :func:`error_matrix` turns per-model predictions into a ``(models, images)`` boolean matrix;
  :func:`confidence` (probability of the predicted class), :func:`misclassified` (index, true,
  predicted, confidence rows of one model) and :func:`votes` (what the models answered per image).
* **overlap** -- :func:`jaccard_matrix` (|A ∩ B| / |A ∪ B| of the error sets) and
  :func:`intersections` (the exclusive intersections an UpSet plot draws: images wrong by exactly
  this set of models), :func:`plot_upset` draws them with matplotlib.
* **traits** -- :func:`image_traits` (stroke width, ink ratio, slant, intensity from
  :mod:`digitlab.features`), :func:`centre_distance` (distance to the class centre in PCA space)
  and :func:`trait_comparison` (hard images against correctly classified images of their class).
* **label issues** -- :func:`out_of_fold_proba` (k-fold cross-validated probabilities of a fast
  model) and :func:`rank_label_issues` (confident learning with cleanlab's ``find_label_issues``,
  ranked by self-confidence = the probability the model gives the given label).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from digitlab.exceptions import ConfigError, DatasetError

CV_MODELS = ("knn", "logreg")  # fast models for out-of-fold probabilities (see out_of_fold_proba)


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
        return {"y_true": d["y_true"].astype(np.int64), "test_index": d["test_index"].astype(np.int64), "models": models,
                "pred": {m: d[f"y_pred__{m}"].astype(np.int64) for m in models},
                "proba": {m: d[f"proba__{m}"].astype(np.float64) if f"proba__{m}" in d.files else None for m in models},
                "scores": {m: d[f"scores__{m}"].astype(np.float64) if f"scores__{m}" in d.files else None for m in models}}


def error_matrix(y_true: np.ndarray, preds: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Model names and the ``(n_models, n_images)`` boolean matrix ``E[m, i]`` = model m got image i wrong."""
    names = list(preds)
    y = np.asarray(y_true)
    return names, np.stack([np.asarray(preds[n]) != y for n in names]) if names else np.zeros((0, len(y)), bool)


def confidence(proba: np.ndarray | None, n: int) -> np.ndarray:
    """Probability of the predicted (most probable) class per image; NaN for a model without probabilities."""
    return np.full(n, np.nan) if proba is None else np.asarray(proba, dtype=np.float64).max(1)


def misclassified(y_true: np.ndarray, y_pred: np.ndarray, conf: np.ndarray, index: np.ndarray | None = None) -> list[dict]:
    """One row per misclassified image: ``index`` (``index[i]``, e.g. the official test order), ``true``,
    ``predicted`` and ``confidence`` (None where NaN); most confident mistakes first."""
    y_true, y_pred, conf = np.asarray(y_true), np.asarray(y_pred), np.asarray(conf, dtype=np.float64)
    index = np.arange(len(y_true)) if index is None else np.asarray(index)
    wrong = np.flatnonzero(y_true != y_pred)
    wrong = wrong[np.argsort(-np.nan_to_num(conf[wrong], nan=-1.0), kind="stable")]
    return [{"index": int(index[i]), "true": int(y_true[i]), "predicted": int(y_pred[i]),
             "confidence": None if np.isnan(conf[i]) else float(conf[i])} for i in wrong]


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
    rows = [{"models": tuple(names[j] for j in np.flatnonzero(p)), "degree": int(p.sum()), "size": int(c),
             "_key": tuple(np.flatnonzero(p))} for p, c in zip(patterns, counts)]
    rows.sort(key=lambda r: (-r["size"], -r["degree"], r["_key"]))
    for r in rows:
        del r["_key"]
    return rows[:top] if top else rows


def plot_upset(rows: Sequence[dict], names: Sequence[str], set_sizes: Sequence[int], title: str = "",
               labels: Mapping[str, str] | None = None, ax=None):
    """An UpSet plot of ``rows`` (from :func:`intersections`): intersection sizes as bars on top, the
    models in each intersection as joined dots below, each model's error count as bars on the left.
    The intersections' columns narrow so that the figure stays within :data:`digitlab.plots.MAX_WIDTH`.
    ``ax``: draw into the area of this Axes instead of a new figure. Returns the matplotlib figure."""
    from digitlab.plots import fit_width, grid

    labels = labels or {}
    m, k = len(names), len(rows)
    step = fit_width(0.38, max(k, 1), extra=3.6)
    fig, gs = grid(ax, 2, 3, (max(6.0, step * k + 3.6), 2.6 + 0.3 * m), width_ratios=(1.0, 1.45, max(k, 1) * step),
                   height_ratios=(2.0, 0.3 * m), wspace=0.0, hspace=0.04)
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
    ax_dots.set(xlim=(-0.6, k - 0.4), ylim=(-0.5, m - 0.5), xticks=[], yticks=[row_of[n] for n in names],
                yticklabels=[labels.get(n, n) for n in names])
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
    return [pca.transform(x_fit).astype(np.float32)] + [pca.transform(to_features(o)).astype(np.float32) for o in others]


def class_centres(z: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean of each class's rows of ``z`` (NaN for a class without rows)."""
    return np.stack([z[y == c].mean(0) if np.any(y == c) else np.full(z.shape[1], np.nan) for c in range(n_classes)])


def centre_distance(z: np.ndarray, y: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row of ``z`` to the centre of its class ``y``."""
    return np.linalg.norm(z - centres[np.asarray(y)], axis=1)


def trait_comparison(traits: Mapping[str, np.ndarray], y: np.ndarray, hard: np.ndarray, reference: np.ndarray) -> list[dict]:
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
        rows.append({"trait": name, "n_hard": len(vals),
                     "hard_mean": float(np.mean(vals)) if vals else None,
                     "reference_mean": float(np.mean(refs)) if refs else None,
                     "mean_z": float(np.mean(zs)) if zs else None,
                     "mean_abs_z": float(np.mean(np.abs(zs))) if zs else None,
                     "mean_percentile": float(np.mean(pct)) if pct else None,
                     "reference_abs_z": float(np.concatenate(base).mean()) if base else None})
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


def out_of_fold_proba(z: np.ndarray, y: np.ndarray, n_classes: int, model: str = "knn", n_folds: int = 5, seed: int = 0,
                      k: int = 10, n_jobs: int = 1) -> np.ndarray:
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
        raise DatasetError(f"label issues: a class has {folds} training image(s); need at least 2 per class for cross-validation")
    est = make_cv_model(model, k=int(min(k, len(y) - len(y) // folds - 1)))
    p = cross_val_predict(est, z, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed), method="predict_proba",
                          n_jobs=n_jobs)
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
        raise DatasetError(f"label issues: probabilities of shape {proba.shape} do not match {len(labels)} labels")
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
    return [{"index": int(index[i]), "given": int(labels[i]), "suggested": int(suggested[i]), "score": float(score[i])}
            for i in ranked]


def self_confidence_ranking(labels: np.ndarray, proba: np.ndarray, index: np.ndarray | None = None) -> list[dict]:
    """Every image ranked by self-confidence (probability of the given label, lowest first), in the rows
    of :func:`rank_label_issues`: the order confident learning ranks its candidates in, without its cut."""
    labels = np.asarray(labels, dtype=np.int64)
    p = smooth(proba)
    index = np.arange(len(labels)) if index is None else np.asarray(index)
    score = p[np.arange(len(labels)), labels]
    return [{"index": int(index[i]), "given": int(labels[i]), "suggested": int(p[i].argmax()), "score": float(score[i])}
            for i in _by_self_confidence(p, labels)]


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
    return {"recall": float(np.isin(planted, ranked).mean()),
            "precision_at_k": float(np.isin(ranked[:len(planted)], planted).mean()) if len(ranked) else 0.0,
            "flagged": int(len(ranked))}


def plot_error_maps(emb: np.ndarray, y: np.ndarray, classes: Sequence[str], errors: np.ndarray, names: Sequence[str],
                    labels: Mapping[str, str] | None = None, cols: int = 5, ax=None):
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
    ax0.scatter(emb[right, 0], emb[right, 1], s=size, color="0.82", linewidths=0, rasterized=True, label="no model wrong")
    order = np.flatnonzero(~right)[np.argsort(wrong[~right], kind="stable")]  # most-missed drawn last (on top)
    cmap = plt.get_cmap("plasma_r", max(m, 1))
    sc = ax0.scatter(emb[order, 0], emb[order, 1], c=wrong[order], cmap=cmap, vmin=0.5, vmax=m + 0.5, s=size * 2.2,
                     linewidths=0.2, edgecolors="black", rasterized=True)
    cb = fig.colorbar(sc, ax=ax0, ticks=range(1, m + 1), location="left", fraction=0.05, pad=0.02, shrink=0.9)
    cb.set_label("models that got the image wrong", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    for c in np.unique(y):
        mx, my = np.median(emb[y == c], axis=0)
        ax0.text(mx, my, classes[c], ha="center", va="center", fontsize=10, weight="bold", path_effects=halo, zorder=4)
    ax0.set_title("how many models got each image wrong", fontsize=9)
    cells = [(i, j) for i in range(big) for j in range(big, cols)] + [(i, j) for i in range(big, rows) for j in range(cols)]
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


def plot_gallery(images: np.ndarray, titles: Sequence[str], cols: int = 8, suptitle: str = "", cell: float = 1.35,
                 title_size: float = 6.5, ax=None):
    """A grid of images with a (possibly multi-line) title each; returns the matplotlib figure.

    Greyscale images with a dark background (ink on blank, e.g. MNIST) are shown dark on white, all
    with the same colour map so that the images compare. Images shrink from ``cell`` inches so that
    ``cols`` of them fit :data:`digitlab.plots.MAX_WIDTH`. ``ax``: draw into the area of this Axes
    (:func:`digitlab.plots.plot_images`, which this is)."""
    from digitlab.plots import fit_width, plot_images

    cols = max(1, min(cols, len(images)))
    return plot_images(images, titles, cols=cols, ax=ax, suptitle=suptitle, cell=fit_width(cell, cols),
                       title_size=title_size)


__all__ = ["load_predictions", "error_matrix", "confidence", "misclassified", "votes", "jaccard_matrix", "intersections",
           "plot_upset", "plot_error_maps", "greyscale", "image_traits", "pca_space", "class_centres",
           "centre_distance", "trait_comparison", "make_cv_model", "out_of_fold_proba", "smooth", "rank_label_issues",
           "self_confidence_ranking", "plant_flips", "detection_scores", "plot_gallery", "CV_MODELS"]
