"""Plotting conventions and the small figures every study needs: a confusion matrix and a grid of images.

Every public plotting function of digitlab follows one convention (as scikit-learn's displays do):

* it takes ``ax=``: ``None`` draws a new figure; an Axes draws into it. A function that draws
  several panels fills the area of the Axes it is given with its own grid of panels (or takes an
  array of exactly as many Axes as it has panels), so any figure can be one cell of a larger one;
* it returns the matplotlib ``Figure``;
* it neither saves nor closes the figure and never chooses the backend: in a notebook the figure
  shows inline, in a script ``fig.savefig(...)`` writes it.

:func:`panels` and :func:`single` implement the first rule for the plotting functions of the
other modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from digitlab import metrics as M

__all__ = [
    "MAX_WIDTH",
    "panels",
    "single",
    "grid",
    "fit_width",
    "plot_confusion_matrix",
    "plot_reliability_diagram",
    "plot_reliability_diagrams",
    "plot_images",
    "plain_log_ticks",
]

# Widest figure (inches) the report prints legibly: it prints figures at 0.72 of their saved size within
# ~180 mm of text width, so a 7.5-inch figure fills the width with its 10 pt labels at ~7 pt; a wider one
# is shrunk further and its labels print smaller still. Multi-panel figures wrap into more rows instead.
MAX_WIDTH = 7.5


def fit_width(cell: float, cols: int, extra: float = 0.0, max_width: float = MAX_WIDTH) -> float:
    """The panel size (inches) for ``cols`` panels of ``cell`` inches plus ``extra`` inches of margins,
    shrunk so that the figure is at most ``max_width`` wide."""
    return float(min(cell, (max_width - extra) / max(cols, 1)))


def single(ax=None, figsize: tuple[float, float] = (5.0, 4.0)):
    """``(fig, ax)``: a new figure with one Axes when ``ax`` is None, else ``ax`` and its figure."""
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def grid(ax, nrows: int, ncols: int, figsize: tuple[float, float], **gridspec_kw: Any):
    """``(fig, gridspec)`` for a plot with its own layout of panels (spans, ratios).

    ``ax`` None: a new figure of ``figsize`` and ``fig.add_gridspec(nrows, ncols, **gridspec_kw)``. One
    Axes: a grid inside its area (the Axes itself is removed), so the plot becomes one cell of the
    caller's figure. Add panels with ``fig.add_subplot(gridspec[i, j])``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is None:
        fig = plt.figure(figsize=figsize)
        return fig, fig.add_gridspec(nrows, ncols, **gridspec_kw)
    if not isinstance(ax, Axes) or ax.get_subplotspec() is None:
        raise ValueError(
            "ax: pass one Axes made by plt.subplots or fig.add_subplot (this plot lays out its own panels)"
        )
    spec, fig = ax.get_subplotspec(), ax.figure
    ax.remove()
    return fig, spec.subgridspec(nrows, ncols, **gridspec_kw)


def panels(ax, nrows: int, ncols: int, figsize: tuple[float, float], **subplot_kw: Any):
    """``(fig, axes)`` with ``axes`` a ``(nrows, ncols)`` array of Axes for a multi-panel plot.

    ``ax`` None: a new figure (``plt.subplots(..., squeeze=False, **subplot_kw)``). An array or list of
    ``nrows * ncols`` Axes: those, reshaped. One Axes: its area is split into the grid (the Axes itself
    is removed), so the plot becomes one cell of the caller's figure. ``sharex``/``sharey`` in
    ``subplot_kw`` are honoured when the grid is made here, and so are ``width_ratios`` / ``wspace`` /
    ``hspace`` (passed to the grid in both cases).
    """
    layout = {
        k: subplot_kw.pop(k) for k in ("width_ratios", "height_ratios", "wspace", "hspace") if k in subplot_kw
    }
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is None:
        fig, axes = plt.subplots(
            nrows, ncols, figsize=figsize, squeeze=False, gridspec_kw=layout or None, **subplot_kw
        )
        return fig, axes
    if isinstance(ax, Axes):
        if nrows * ncols == 1:
            return ax.figure, np.array([[ax]])
        spec = ax.get_subplotspec()
        if spec is None:
            raise ValueError(
                "ax: an Axes placed by hand (fig.add_axes) cannot be split into panels; "
                "pass one made by plt.subplots or fig.add_subplot"
            )
        fig = ax.figure
        gs = spec.subgridspec(nrows, ncols, **layout)
        ax.remove()
        axes = np.empty((nrows, ncols), dtype=object)
        share_x, share_y = subplot_kw.get("sharex", False), subplot_kw.get("sharey", False)
        for i in range(nrows):
            for j in range(ncols):
                first = axes[0, 0] if (i, j) != (0, 0) else None
                axes[i, j] = fig.add_subplot(
                    gs[i, j], sharex=first if share_x else None, sharey=first if share_y else None
                )
        return fig, axes
    axes = np.asarray(ax, dtype=object)
    if axes.size != nrows * ncols:
        raise ValueError(
            f"ax: {axes.size} Axes given, this plot draws {nrows} x {ncols} panels; pass one Axes or {nrows * ncols}"
        )
    return axes.flat[0].figure, axes.reshape(nrows, ncols)


# =============================================================================================
# Confusion matrix
# =============================================================================================


def plot_confusion_matrix(
    cm_or_y_true,
    y_pred=None,
    classes: Sequence[str] | None = None,
    *,
    normalize: bool = False,
    ax=None,
    title: str = "",
    colour_errors: bool = True,
    colorbar: bool = True,
):
    """A confusion matrix (rows = true class, columns = predicted) with every non-zero cell annotated.

    Parameters
    ----------
    cm_or_y_true : a ``(k, k)`` matrix of counts, or the true labels when ``y_pred`` is given.
    y_pred : predicted labels (then the matrix is computed with :func:`digitlab.metrics.confusion_matrix`).
    classes : class names (default ``0..k-1``).
    normalize : show each row as % of the true class (the diagonal is then per-class recall).
    ax : draw into this Axes (default: a new figure).
    title : Axes title.
    colour_errors : colour the off-diagonal cells only (the diagonal would swamp the colour scale);
        False colours every cell.
    colorbar : draw a colour bar beside the matrix.

    Returns
    -------
    The matplotlib Figure.
    """
    if y_pred is not None:
        cm = M.confusion_matrix(cm_or_y_true, y_pred, len(classes) if classes is not None else None)
    else:
        cm = np.asarray(cm_or_y_true)
    classes = [str(c) for c in (classes if classes is not None else range(len(cm)))]
    mat = 100 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    fig, ax = single(ax, (6, 5))
    shown = mat.astype(float).copy()
    if colour_errors:
        np.fill_diagonal(shown, np.nan)
    im = ax.imshow(shown, cmap="Reds")
    dark = 0.6 * np.nanmax(shown) if np.isfinite(shown).any() else np.inf
    for i, j in np.ndindex(mat.shape):
        if mat[i, j] > 0:
            color = "tab:blue" if (i == j and colour_errors) else "white" if mat[i, j] > dark else "black"
            ax.text(
                j,
                i,
                f"{mat[i, j]:.1f}" if normalize else f"{mat[i, j]:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color=color,
            )
    ax.set(
        xticks=range(len(classes)),
        yticks=range(len(classes)),
        xticklabels=classes,
        yticklabels=classes,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    if colorbar:
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


# =============================================================================================
# Reliability diagrams
# =============================================================================================


def plot_reliability_diagram(y_true, proba: np.ndarray, n_bins: int = 15, ax=None, label: str | None = None):
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect calibration.

    Bars show accuracy per bin; the gap to the diagonal is the miscalibration that ECE averages.
    Draws into ``ax`` (default: a new figure) and returns the matplotlib Figure.
    """
    fig, ax = single(ax, (4, 4))
    b = M.calibration_bins(y_true, proba, n_bins)
    width = 1.0 / n_bins
    centers = b["edges"][:-1] + width / 2
    f = b["count"] > 0
    acc, conf = b["accuracy"][f], b["confidence"][f]
    ax.bar(centers[f], acc, width=width * 0.95, color="tab:blue", alpha=0.8, label="accuracy")
    # hatched gap between accuracy and mean confidence: above the bar = overconfident, inside = underconfident
    ax.bar(
        centers[f],
        np.abs(conf - acc),
        bottom=np.minimum(acc, conf),
        width=width * 0.95,
        fill=False,
        hatch="///",
        edgecolor="tab:red",
        lw=0.5,
        label="gap to mean confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ece = M.expected_calibration_error(y_true, proba, n_bins)
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence",
        ylabel="accuracy",
        title=f"{label + ': ' if label else ''}ECE {ece:.3f}",
    )
    return fig


def plot_reliability_diagrams(
    y_true,
    probas: dict[str, np.ndarray],
    n_bins: int = 15,
    ax=None,
    cols: int = 4,
    labels: dict[str, str] | None = None,
):
    """One reliability diagram per model (``probas``: name -> ``(n, k)`` probabilities), ``cols`` per row.

    Panels are sized so that the figure stays within :data:`digitlab.plots.MAX_WIDTH` (more models:
    more rows, not a wider figure); axis labels sit on the outer panels only. ``labels``: names in
    words for the panel titles. ``ax``: draw into the area of this Axes (or into exactly one Axes per
    model) instead of a new figure. Returns the matplotlib Figure.
    """
    names = list(probas)
    cols = max(1, min(cols, len(names)))
    rows = -(-len(names) // cols)
    cell = fit_width(2.6, cols)
    given = ax is not None and not hasattr(ax, "get_subplotspec") and np.size(ax) == len(names)
    fig, axes = panels(
        ax, 1 if given else rows, len(names) if given else cols, (cell * cols, cell * rows + 0.2)
    )
    flat = axes.ravel()
    for i, (a, name) in enumerate(zip(flat, names)):
        plot_reliability_diagram(y_true, probas[name], n_bins, ax=a, label=(labels or {}).get(name, name))
        a.title.set_fontsize(8)
        a.tick_params(labelsize=7)
        r, c = divmod(i, axes.shape[1])
        a.set_xlabel(
            "confidence" if r == axes.shape[0] - 1 or i + axes.shape[1] >= len(names) else "", fontsize=8
        )
        a.set_ylabel("accuracy" if c == 0 else "", fontsize=8)
    for a in flat[len(names) :]:
        a.axis("off")
    if ax is None:
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# One call
# ---------------------------------------------------------------------------------------------


# =============================================================================================
# Image grid
# =============================================================================================


def plot_images(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    *,
    cols: int = 8,
    ax=None,
    suptitle: str = "",
    cell: float = 1.35,
    title_size: float = 6.5,
    cmap: str | None = None,
):
    """A grid of images, each with its (possibly multi-line) title.

    Parameters
    ----------
    images : uint8 ``(n, H, W)`` greyscale or ``(n, H, W, C)`` colour images.
    titles : one title per image (default: none).
    cols : images per row.
    ax : draw the grid into the area of this Axes (default: a new figure).
    suptitle : a title over the grid (a new figure only).
    cell : inches per image (a new figure only).
    title_size : font size of the titles.
    cmap : colour map of greyscale images; default: dark ink on white for images with a dark
        background (ink on blank, e.g. MNIST: median pixel below 64), plain grey otherwise. All
        images share it and the 0-255 range, so they compare.

    Returns
    -------
    The matplotlib Figure.
    """
    images = np.asarray(images)
    n = len(images)
    titles = list(titles) if titles is not None else [""] * n
    cols = max(1, min(cols, n))
    rows = max(1, int(np.ceil(n / cols)))
    lines = max((str(t).count("\n") + 1 for t in titles), default=1)
    if cmap is None and images.ndim != 4:
        cmap = "gray_r" if n and np.median(images) < 64 else "gray"
    fig, axes = panels(ax, rows, cols, (cell * cols, (cell + 0.13 * lines) * rows + 0.4))
    for a in axes.ravel():
        a.axis("off")
    for a, img, t in zip(axes.ravel(), images, titles):
        a.imshow(img, cmap=None if img.ndim == 3 else cmap, vmin=0, vmax=255, interpolation="nearest")
        if t:
            a.set_title(t, fontsize=title_size)
    if ax is None:
        if suptitle:
            fig.suptitle(suptitle, fontsize=9)
        fig.tight_layout()
    return fig


def plain_log_ticks(axis) -> None:
    """Log-axis ticks at 1-2-5 steps labelled as plain numbers (not 2x10^0); left alone when
    fewer than two such ticks fall in view."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = sorted(axis.get_view_interval())
    ticks = [m * 10.0**e for e in range(-3, 6) for m in (1, 2, 5) if lo <= m * 10.0**e <= hi]
    if len(ticks) >= 2:
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_minor_locator(NullLocator())
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
