"""2-D embeddings of image data (PCA, t-SNE, UMAP), measures of their quality, and their plots.

Layered like openTSNE: :func:`embed` is the one call; the steps under it are callable alone.

* steps: :func:`to_features` (images -> pixels/255), :func:`pca_reduce` (PCA to k dimensions),
  :func:`pca_2d`, :func:`tsne_2d` (openTSNE: FFT-accelerated gradients from 10,000 points on,
  Barnes-Hut below), :func:`umap_2d` (umap-learn);
* quality: :func:`knn_accuracy_2d`, :func:`trustworthiness`, :func:`silhouette_by_class`,
  :func:`neighbour_class_fractions` and :func:`overlapping_pairs` (which classes share a region);
* plots: :func:`plot_embedding` (static, matplotlib), :func:`interactive_embedding` (a plotly map
  that shows each point's image on hover, offline: inline in Jupyter, ``.save("map.html")`` writes a
  complete page) and :func:`interactive_embedding_html` (the same map as a fragment for a page
  that loads plotly.js once, e.g. the report);
* storage: :func:`save_embedding` / :func:`load_embedding` (``embedding_<method>.npy`` + indices),
  both in the order ``(indices, embedding)``.

t-SNE and UMAP run on a PCA-50 projection of the pixels by default: it keeps most of the
variance, removes pixel noise and makes the neighbour search several times faster.

Seeds: PCA and t-SNE (tested with ``n_jobs=1``) are reproducible for a given seed. UMAP with a
seed is reproducible too but umap-learn then runs single-threaded; we choose reproducibility
(results are cached and compared across runs) and accept the cost, which is small on a 2-core
machine: unseeded UMAP on 2 threads took 75 s against 99 s seeded at 70,000 MNIST points and was
no faster at 10,000 (``benchmarks/bench_embed.py --umap-parallel``). Pass ``seed=None`` for the
parallel, non-reproducible UMAP.
"""

from __future__ import annotations

import base64
import inspect
import io
import json
import os
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from digitlab.exceptions import ConfigError, DigitlabError

METHODS = ("pca", "tsne", "umap")
TRUST_MAX_POINTS = 3000  # trustworthiness is O(n^2) in memory: a seeded subsample of this many points
SILHOUETTE_MAX_POINTS = 5000  # silhouette is O(n^2) too: sklearn's seeded sample_size
FFT_MIN_POINTS = 10_000  # t-SNE: FFT gradients from this size on, Barnes-Hut below (faster on small n)
EXACT_KNN_MAX_POINTS = 100_000  # t-SNE: exact neighbour search up to this size, Annoy above
UMAP_EXACT_KNN_MAX_POINTS = 20_000  # UMAP: exact neighbour graph up to this size, NN-descent above


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------


def to_features(images: np.ndarray) -> np.ndarray:
    """Flatten images to ``(n, d)`` float32; uint8 pixels are scaled to [0, 1] (divided by 255).

    Float input is only flattened, so already-computed features pass through unchanged.
    """
    x = np.asarray(images)
    x = x.reshape(len(x), -1)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    return x.astype(np.float32, copy=False)


def pca_reduce(x: np.ndarray, n_components: int = 50, seed: int | None = 0) -> np.ndarray:
    """Project ``x`` on its first ``n_components`` principal components (float32, seeded solver)."""
    from sklearn.decomposition import PCA

    x = to_features(x)
    k = min(n_components, x.shape[1], len(x))
    return PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)


def pca_2d(x: np.ndarray, seed: int | None = 0) -> np.ndarray:
    """The 2-D PCA embedding: the two directions of largest variance (a linear projection)."""
    return pca_reduce(x, 2, seed)


def tsne_2d(
    x: np.ndarray, perplexity: float = 30.0, seed: int | None = 0, n_jobs: int = 1, **params: Any
) -> np.ndarray:
    """openTSNE with PCA initialisation and FFT-accelerated gradients (interpolation on a grid).

    Defaults chosen from timings on a 2-core machine (see ``benchmarks/bench_embed.py``):

    * gradients: ``"fft"`` from :data:`FFT_MIN_POINTS` points on, Barnes-Hut (``"bh"``) below. The
      FFT grid grows with the map's extent rather than with ``n``, so on 2,000 points BH took 18 s
      against FFT's 66 s, while at 10,000 FFT won (169 s against 213 s on a busy machine);
      openTSNE's own ``"auto"`` rule uses the same cut.
    * neighbours: exact search up to :data:`EXACT_KNN_MAX_POINTS` points, approximate (Annoy) above.
      Brute force on the PCA-50 input is a few BLAS calls: it took 3.6 s against Annoy's 17 s at
      10,000 MNIST points and 95 s against 182 s at 60,000 (both on a busy 2-core machine).

    ``perplexity`` is lowered to ``(n - 1) / 3`` for tiny inputs (openTSNE's upper limit).
    Extra ``params`` go to :class:`openTSNE.TSNE` and override these defaults; unknown names raise
    :class:`ConfigError`.
    """
    import openTSNE

    x = to_features(x)
    _check_params(openTSNE.TSNE, params, "tsne")
    settings = {
        "initialization": "pca",
        "negative_gradient_method": "fft" if len(x) >= FFT_MIN_POINTS else "bh",
        "neighbors": "exact" if len(x) <= EXACT_KNN_MAX_POINTS else "annoy",
        **params,
    }
    perplexity = float(min(perplexity, (len(x) - 1) / 3))
    tsne = openTSNE.TSNE(perplexity=perplexity, n_jobs=n_jobs, random_state=seed, **settings)
    return np.asarray(tsne.fit(x), dtype=np.float32)


def umap_2d(
    x: np.ndarray,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int | None = 0,
    n_jobs: int = 1,
    **params: Any,
) -> np.ndarray:
    """UMAP (umap-learn). With an integer ``seed`` it is reproducible but single-threaded.

    Up to :data:`UMAP_EXACT_KNN_MAX_POINTS` points the neighbour graph is computed exactly with
    scikit-learn (brute force, BLAS) and handed to UMAP: below 4,096 points umap-learn would
    otherwise compute all distances through a numba metric called once per pair from Python
    (about 4 million calls for 2,000 points, the slowest step of a small run); above, it would
    build an NN-descent index. Larger inputs use umap-learn's own NN-descent.

    ``n_neighbors`` is lowered to ``n - 1`` for tiny inputs. Extra ``params`` go to
    :class:`umap.UMAP`; unknown names raise :class:`ConfigError`.
    """
    umap = import_umap()
    x = to_features(x)
    _check_params(umap.UMAP, params, "umap")
    n_neighbors = int(min(n_neighbors, len(x) - 1))
    if len(x) <= UMAP_EXACT_KNN_MAX_POINTS and "precomputed_knn" not in params:
        from sklearn.neighbors import NearestNeighbors

        dist, idx = (
            NearestNeighbors(n_neighbors=n_neighbors).fit(x).kneighbors(x)
        )  # each point is its own 1st
        params = {
            "precomputed_knn": (idx, dist.astype(np.float32)),
            "force_approximation_algorithm": True,
            **params,
        }
    model = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        random_state=seed,
        n_jobs=1 if seed is not None else n_jobs,
        **params,
    )
    with warnings.catch_warnings():
        # Seeded UMAP is single-threaded by design here (see the module docstring); not news.
        warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state.*")
        # We hand UMAP an exact neighbour graph without a search index: we never call transform().
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        return np.asarray(model.fit_transform(x), dtype=np.float32)


def embed(
    x: np.ndarray, method: str, seed: int | None = 0, n_jobs: int = 1, pca_dims: int = 50, **params: Any
) -> np.ndarray:
    """Embed ``x`` (``(n, d)`` features, or uint8 images) in 2-D with ``method``.

    Parameters
    ----------
    x : array ``(n, d)`` float (or uint8 images ``(n, H, W)``, scaled to [0, 1] first).
    method : ``"pca"``, ``"tsne"`` or ``"umap"``.
    seed : random seed (``None``: unseeded; for UMAP that also allows parallel threads).
    n_jobs : threads for t-SNE (and unseeded UMAP); ``-1`` = all cores.
    pca_dims : t-SNE and UMAP first project on this many principal components (``0`` = off).
    **params : method parameters, e.g. ``perplexity`` (t-SNE), ``n_neighbors``, ``min_dist`` (UMAP).

    Returns
    -------
    array ``(n, 2)`` float32.
    """
    if method not in METHODS:
        raise ConfigError(f"embedding method {method!r}: unknown; choose one of {', '.join(METHODS)}")
    x = to_features(x)
    if method == "pca":
        if params:
            raise ConfigError(
                f"embedding method 'pca': takes no parameters, got {', '.join(params)}; remove them"
            )
        return pca_2d(x, seed)
    if pca_dims and x.shape[1] > pca_dims:
        x = pca_reduce(x, pca_dims, seed)
    step = tsne_2d if method == "tsne" else umap_2d
    return step(x, seed=seed, n_jobs=n_jobs, **params)


def numba_cache_dir() -> str:
    """Point numba's compile cache at a persistent folder for this process and return the folder.

    numba compiles UMAP's kernels on first use (tens of seconds); with ``NUMBA_CACHE_DIR`` set the
    compiled code is reused by later processes. A ``NUMBA_CACHE_DIR`` the user set is used as it is;
    otherwise it is set to ``numba/`` under digitlab's cache folder,
    :func:`digitlab.data.registry.cache_home`: ``$DIGITLAB_HOME``, else ``$XDG_CACHE_HOME/digitlab``,
    else ``~/.cache/digitlab``. Called by :func:`import_umap`, not on import.
    """
    if "NUMBA_CACHE_DIR" not in os.environ:
        from digitlab.data.dataset import cache_home

        folder = cache_home() / "numba"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(folder)
        import sys

        if "numba" in sys.modules:  # numba read its config already: tell it too (umap not yet loaded)
            sys.modules["numba"].config.CACHE_DIR = str(folder)
    return os.environ["NUMBA_CACHE_DIR"]


def import_umap():
    """Import umap-learn with numba's compile cache in a persistent folder (:func:`numba_cache_dir`)."""
    numba_cache_dir()
    import umap

    return umap


def _check_params(cls: type, params: dict[str, Any], method: str) -> None:
    known = set(inspect.signature(cls).parameters) - {"self", "n_components", "random_state", "n_jobs"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(
            f"embedding method {method!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"see {cls.__module__}.{cls.__name__} for the valid ones"
        )


# ---------------------------------------------------------------------------------------------
# Quality measures
# ---------------------------------------------------------------------------------------------


def knn_accuracy_2d(emb: np.ndarray, y: np.ndarray, k: int = 10, cv: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a ``k``-NN classifier on the 2-D coordinates.

    High when each class forms its own region. ``cv`` stratified, shuffled (seeded) folds; lowered
    to the size of the smallest class when that is smaller.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    y = np.asarray(y)
    counts = np.bincount(y)
    folds = int(min(cv, counts[counts > 0].min()))
    if folds < 2:
        raise ConfigError(f"knn_accuracy_2d: a class has {folds} sample(s); need at least 2 per class")
    k = min(k, len(y) - len(y) // folds - 1)
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(k), emb, y, cv=split).mean())


def trustworthiness(
    x_high: np.ndarray,
    emb: np.ndarray,
    n_neighbors: int = 10,
    max_points: int = TRUST_MAX_POINTS,
    seed: int = 0,
) -> float:
    """scikit-learn's trustworthiness (1 = no false neighbours in 2-D), on a seeded subsample.

    The exact measure needs all ``n x n`` distances; for ``n > max_points`` it is computed on
    ``max_points`` random points (neighbourhoods within the subsample), the same points for every
    embedding given the same ``seed``.
    """
    from sklearn.manifold import trustworthiness as sk_trust

    x_high = to_features(x_high)
    idx = _subsample(len(emb), max_points, seed)
    k = min(n_neighbors, len(idx) // 2 - 1)
    return float(sk_trust(x_high[idx], emb[idx], n_neighbors=k))


def silhouette_by_class(
    emb: np.ndarray, y: np.ndarray, max_points: int = SILHOUETTE_MAX_POINTS, seed: int = 0
) -> float:
    """Silhouette score of the class labels in the 2-D embedding (-1..1; ~0 for random labels).

    Uses scikit-learn's seeded ``sample_size`` when ``n > max_points``.
    """
    from sklearn.metrics import silhouette_score

    size = max_points if len(emb) > max_points else None
    return float(silhouette_score(emb, y, sample_size=size, random_state=seed))


def neighbour_class_fractions(
    emb: np.ndarray, y: np.ndarray, k: int = 10, n_classes: int | None = None
) -> np.ndarray:
    """Matrix ``F`` with ``F[a, b]`` = fraction of the ``k`` nearest 2-D neighbours of class-``a``
    points that belong to class ``b`` (each point excluded from its own neighbours).

    The diagonal is how well a class keeps to itself; off-diagonal mass is overlap.
    """
    from sklearn.neighbors import NearestNeighbors

    y = np.asarray(y)
    c = int(n_classes or y.max() + 1)
    k = min(k, len(y) - 1)
    nbrs = NearestNeighbors(n_neighbors=k).fit(emb).kneighbors(return_distance=False)
    counts = np.bincount((y[:, None] * c + y[nbrs]).ravel(), minlength=c * c).reshape(c, c).astype(float)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1)


def overlapping_pairs(fractions: np.ndarray, classes: Sequence[str], top: int = 5) -> list[dict[str, Any]]:
    """The ``top`` class pairs that share most neighbours: overlap = mean of ``F[a,b]`` and ``F[b,a]``."""
    c = len(fractions)
    a, b = np.triu_indices(c, 1)
    score = (fractions[a, b] + fractions[b, a]) / 2
    order = np.argsort(-score, kind="stable")[:top]
    return [
        {
            "pair": f"{classes[a[i]]}/{classes[b[i]]}",
            "a": int(a[i]),
            "b": int(b[i]),
            "overlap %": round(100 * float(score[i]), 2),
            "a->b %": round(100 * float(fractions[a[i], b[i]]), 2),
            "b->a %": round(100 * float(fractions[b[i], a[i]]), 2),
        }
        for i in order
    ]


def embedding_quality(
    x_high: np.ndarray,
    emb: np.ndarray,
    y: np.ndarray,
    k: int = 10,
    seed: int = 0,
    trust_points: int = TRUST_MAX_POINTS,
) -> dict[str, float]:
    """All three scalar measures at once: k-NN accuracy, trustworthiness, silhouette."""
    return {
        "knn_accuracy": knn_accuracy_2d(emb, y, k=k, seed=seed),
        "trustworthiness": trustworthiness(x_high, emb, n_neighbors=k, max_points=trust_points, seed=seed),
        "silhouette": silhouette_by_class(emb, y, seed=seed),
    }


def _subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------


def class_colors(n_classes: int) -> list[str]:
    """A qualitative palette (matplotlib's tab10, tab20 beyond 10 classes) as hex strings."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n_classes <= 10 else "tab20"]
    return [matplotlib.colors.to_hex(cmap(i % cmap.N)) for i in range(n_classes)]


def plot_embedding(
    emb: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str],
    title: str = "",
    highlight: np.ndarray | None = None,
    highlight_label: str = "highlighted",
    ax=None,
):
    """Scatter of a 2-D embedding coloured by class, with each class's name at its median.

    Parameters
    ----------
    emb, y : ``(n, 2)`` coordinates and their labels.
    classes : class names (label ``i`` is ``classes[i]``).
    title : axes title.
    highlight : optional indices (or boolean mask) into ``emb`` drawn as black-edged markers,
        e.g. images that every model gets wrong.
    highlight_label : legend text of the highlighted points.
    ax : draw into this axes instead of a new figure.

    Returns
    -------
    The matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib import patheffects

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.2, 6.2))
    fig = ax.figure
    y = np.asarray(y)
    colors = np.asarray(class_colors(len(classes)))
    n = len(emb)
    size = float(np.clip(25_000 / max(n, 1), 0.4, 8))  # fewer points -> larger dots
    alpha = 0.35 if n > 30_000 else 0.6
    order = np.random.default_rng(0).permutation(n)  # no class is painted entirely on top of the others
    ax.scatter(
        emb[order, 0], emb[order, 1], c=colors[y[order]], s=size, alpha=alpha, linewidths=0, rasterized=True
    )
    if highlight is not None:
        h = (
            np.flatnonzero(highlight)
            if np.asarray(highlight).dtype == bool
            else np.asarray(highlight, dtype=int)
        )
        ax.scatter(
            emb[h, 0],
            emb[h, 1],
            c=colors[y[h]],
            s=max(size * 3, 9),
            edgecolors="black",
            linewidths=0.6,
            zorder=3,
        )
        ax.scatter(
            [],
            [],
            c="white",
            s=max(size * 3, 9),
            edgecolors="black",
            linewidths=0.6,
            label=f"{highlight_label} ({len(h):,})",
        )  # legend entry only: class colour varies
        ax.legend(loc="lower right", fontsize=8, framealpha=0.85)
    halo = [patheffects.withStroke(linewidth=3, foreground="white")]
    for c in np.unique(y):
        mx, my = np.median(emb[y == c], axis=0)
        ax.text(
            mx,
            my,
            classes[c],
            ha="center",
            va="center",
            fontsize=12,
            weight="bold",
            color=colors[c],
            path_effects=halo,
            zorder=4,
        )
    ax.set_title(title, fontsize=11)
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_aspect("equal", "datalim")
    return fig


def plot_embeddings(
    embeddings: dict[str, np.ndarray],
    y: np.ndarray,
    classes: Sequence[str],
    titles: dict[str, str] | None = None,
    highlight: np.ndarray | None = None,
    highlight_label: str = "highlighted",
    ax=None,
):
    """Several embeddings of the same points side by side (one panel per entry); ``ax``: draw the
    panels in this Axes' area (default: a new figure). Returns the Figure."""
    from digitlab.plots import panels

    own = ax is None
    fig, axes = panels(ax, 1, len(embeddings), (4.6 * len(embeddings), 4.8))
    for ax, (name, emb) in zip(axes[0], embeddings.items()):
        plot_embedding(emb, y, classes, (titles or {}).get(name, name), highlight, highlight_label, ax=ax)
    if own:
        fig.tight_layout()
    return fig


# colour thumbnails are shrunk to at most this many pixels a side (~1.3 kB each in base64)
THUMB_MAX_SIDE = 48


def png_thumbnails(images: np.ndarray) -> list[str]:
    """Each uint8 image as a base64 image for hovering: greyscale ``(n, H, W)`` as PNG (dark ink on
    white, as printed digits look), colour ``(n, H, W, C)`` as JPEG, as it is, shrunk to at most
    :data:`THUMB_MAX_SIDE` pixels a side (a 128-px photograph as PNG would weigh ~40 kB, as a 64-px JPEG ~2.2 kB)."""
    from PIL import Image

    out = []
    for img in np.asarray(images):
        buf = io.BytesIO()
        if img.ndim == 3:
            im = Image.fromarray(img[..., :3] if img.shape[2] >= 3 else img[..., 0])
            im.thumbnail((THUMB_MAX_SIDE, THUMB_MAX_SIDE))
            im.save(buf, format="JPEG", quality=80, optimize=True)
        else:
            Image.fromarray(255 - img).save(buf, format="PNG", optimize=True)
        out.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    return out


def thumbnail_mime(images: np.ndarray) -> str:
    """The MIME type :func:`png_thumbnails` uses for these images."""
    return "image/jpeg" if np.asarray(images).ndim == 4 else "image/png"


# Shows the hovered point's image next to the cursor. Runs after Plotly.newPlot ({plot_id} is the
# plot's div id, filled in by plotly); the thumbnails live in a JS array, not in plotly's JSON.
_HOVER_JS = """
var gd = document.getElementById('{plot_id}');
var box = gd.closest('.dl-embedding');
var thumbs = __THUMBS__;
gd.on('plotly_hover', function(ev) {
  var p = ev.points[0], img = box.querySelector('img.dl-thumb');
  img.src = 'data:__MIME__;base64,' + thumbs[p.customdata[1]];
  var r = box.getBoundingClientRect(), e = ev.event || {};
  var x = (e.clientX || r.left + r.width / 2) - r.left, y = (e.clientY || r.top) - r.top;
  // above the cursor (plotly's hover label sits beside it), below when too close to the top
  img.style.left = Math.max(0, Math.min(x - 43, r.width - 88)) + 'px';
  img.style.top = (y > 110 ? y - 108 : y + 30) + 'px';
  img.style.display = 'block';
});
gd.on('plotly_unhover', function() { box.querySelector('img.dl-thumb').style.display = 'none'; });
"""


def interactive_embedding_html(
    emb: np.ndarray,
    y: np.ndarray,
    images: np.ndarray,
    classes: Sequence[str],
    indices: np.ndarray | None = None,
    title: str = "",
    max_points: int = 3000,
    seed: int = 0,
    hover_notes: Sequence[str] | None = None,
    div_id: str | None = None,
) -> str:
    """A plotly scatter of the embedding as an HTML fragment; hovering a point shows its image.

    The fragment needs plotly.js on the page (``include_plotlyjs=False``: a report includes it
    once) and nothing else: thumbnails are embedded as base64 PNGs, so it works offline. For a
    notebook or a standalone file use :func:`interactive_embedding`, which carries plotly.js along.

    Parameters
    ----------
    emb, y, images : ``(n, 2)`` coordinates, labels and the ``(n, H, W)`` (or colour ``(n, H, W, C)``)
        uint8 images they show.
    classes : class names.
    indices : dataset index of each point, shown on hover (default: the row number ``0..n-1``).
    title : figure title.
    max_points : keep at most this many points (a seeded stratified subsample): each carries a
        thumbnail of ~0.3 kB, so 3000 points make a fragment of about 1 MB.
    seed : seed of the subsample.
    hover_notes : optional extra hover text per point (e.g. "misclassified by 10-NN").
    div_id : id of the plot's div (default: derived from the title, unique per fragment).
    """
    import plotly.graph_objects as go

    from digitlab.data.subsets import stratified_subset

    y = np.asarray(y)
    indices = np.arange(len(y)) if indices is None else np.asarray(indices)
    keep = np.arange(len(y)) if len(y) <= max_points else stratified_subset(y, total=max_points, seed=seed)
    thumbs = png_thumbnails(np.asarray(images)[keep])
    colors = class_colors(len(classes))
    fig = go.Figure()
    for c in np.unique(y[keep]):
        pos = np.flatnonzero(y[keep] == c)  # positions within the kept points (= thumbnail index)
        pts = keep[pos]
        notes = [f"<br>{hover_notes[i]}" if hover_notes is not None and hover_notes[i] else "" for i in pts]
        fig.add_trace(
            go.Scatter(
                x=emb[pts, 0],
                y=emb[pts, 1],
                mode="markers",
                name=str(classes[c]),
                marker={"size": 5, "color": colors[c], "opacity": 0.75},
                customdata=np.stack([np.asarray(indices)[pts], pos], 1),
                text=notes,
                hovertemplate=f"label {classes[c]}<br>index %{{customdata[0]}}%{{text}}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        height=560,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        template="plotly_white",
        legend={"itemsizing": "constant", "title": {"text": "class"}},
        hovermode="closest",
    )
    fig.update_xaxes(showticklabels=False, zeroline=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False, scaleanchor="x")
    div_id = (
        div_id or "emb-" + "".join(ch if ch.isalnum() else "-" for ch in title.lower())[:40] + f"-{len(keep)}"
    )
    script = _HOVER_JS.replace("__THUMBS__", json.dumps(thumbs)).replace("__MIME__", thumbnail_mime(images))
    plot = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        post_script=script,
        config={"displaylogo": False, "responsive": True},
    )
    thumb = (
        '<img class="dl-thumb" alt="hovered image" style="position:absolute;display:none;width:84px;height:84px;'
        'image-rendering:pixelated;border:1px solid #444;background:#fff;pointer-events:none;z-index:10">'
    )
    return f'<div class="dl-embedding" style="position:relative">{thumb}{plot}</div>'


class InteractiveEmbedding:
    """An interactive embedding map: shows itself in Jupyter and saves as a complete HTML page.

    ``fragment`` is :func:`interactive_embedding_html`'s output (needs plotly.js on the page);
    :meth:`to_html` wraps it in a page that carries plotly.js inline (about 5 MB, works offline);
    in a notebook the page is shown in a sandboxed ``<iframe>``, so it works in JupyterLab, the
    classic notebook and VS Code alike, whatever else the notebook has loaded.
    """

    def __init__(self, fragment: str, title: str = "", height: int = 620):
        self.fragment, self.title, self.height = fragment, title, height

    def to_html(self) -> str:
        """A complete, self-contained HTML page."""
        import html

        from plotly.offline import get_plotlyjs

        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title or "embedding")}'
            f'</title><script type="text/javascript">{get_plotlyjs()}</script></head>\n'
            f'<body style="margin:0;font-family:sans-serif">{self.fragment}</body></html>\n'
        )

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path`` (e.g. ``"umap.html"``); returns the path."""
        path = Path(path)
        path.write_text(self.to_html(), encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        import html

        return (
            f'<iframe srcdoc="{html.escape(self.to_html(), quote=True)}" sandbox="allow-scripts" '
            f'style="width:100%;height:{self.height}px;border:none"></iframe>'
        )


def interactive_embedding(
    emb: np.ndarray,
    y: np.ndarray,
    images: np.ndarray,
    classes: Sequence[str] | None = None,
    *,
    indices: np.ndarray | None = None,
    title: str = "",
    max_points: int = 3000,
    seed: int = 0,
    hover_notes: Sequence[str] | None = None,
) -> InteractiveEmbedding:
    """The interactive map of :func:`interactive_embedding_html` as an object that displays itself
    in Jupyter and saves as a complete page (``.save("map.html")``); ``classes`` default to the
    label numbers, ``indices`` (shown on hover) to the row numbers::

        emb = embed(x, "umap")
        interactive_embedding(emb, y, x)            # in a notebook cell: the map, hover shows the image
    """
    y = np.asarray(y)
    classes = [str(c) for c in range(int(y.max()) + 1)] if classes is None else list(classes)
    frag = interactive_embedding_html(
        emb,
        y,
        images,
        classes,
        indices,
        title,
        max_points,
        seed,
        hover_notes,
        div_id=f"dl-emb-{zlib.crc32(f'{title}|{len(y)}|{seed}'.encode()):08x}",
    )
    return InteractiveEmbedding(frag, title)


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------


class SavedEmbedding(NamedTuple):
    """What :func:`load_embedding` returns, in :func:`save_embedding`'s argument order."""

    indices: np.ndarray  # (n,) dataset index of each row
    embedding: np.ndarray  # (n, 2) float32


def save_embedding(folder: str | Path, method: str, indices: np.ndarray, embedding: np.ndarray) -> list[str]:
    """Write ``embedding_<method>.npy`` (``(n, 2)`` float32) and ``embedding_indices.npy`` (the
    dataset index of each row) into ``folder``; return the file names.

    The order ``(indices, embedding)`` is :func:`load_embedding`'s. Arguments given the other way
    round (a 2-D array first) are refused with a :class:`ConfigError`, not written swapped.
    """
    indices, embedding = np.asarray(indices), np.asarray(embedding)
    if indices.ndim != 1 or embedding.ndim != 2 or len(indices) != len(embedding):
        raise ConfigError(
            f"save_embedding(folder, method, indices, embedding): got arrays of shapes {indices.shape} and "
            f"{embedding.shape}; pass the (n,) indices first, then the (n, 2) embedding"
        )
    folder = Path(folder)
    np.save(folder / f"embedding_{method}.npy", embedding.astype(np.float32))
    np.save(folder / "embedding_indices.npy", indices.astype(np.int64))
    return [f"embedding_{method}.npy", "embedding_indices.npy"]


def load_embedding(folder: str | Path, method: str) -> SavedEmbedding:
    """Read what :func:`save_embedding` wrote: ``(indices, embedding)`` (also ``.indices``, ``.embedding``)."""
    folder = Path(folder)
    path = folder / f"embedding_{method}.npy"
    if not path.is_file():
        raise DigitlabError(
            f"{path}: no saved {method!r} embedding; run the embed task with that method first"
        )
    return SavedEmbedding(np.load(folder / "embedding_indices.npy"), np.load(path))


__all__ = [
    "METHODS",
    "embed",
    "to_features",
    "pca_reduce",
    "pca_2d",
    "tsne_2d",
    "umap_2d",
    "import_umap",
    "numba_cache_dir",
    "knn_accuracy_2d",
    "trustworthiness",
    "silhouette_by_class",
    "neighbour_class_fractions",
    "overlapping_pairs",
    "embedding_quality",
    "class_colors",
    "plot_embedding",
    "plot_embeddings",
    "png_thumbnails",
    "thumbnail_mime",
    "interactive_embedding_html",
    "interactive_embedding",
    "InteractiveEmbedding",
    "save_embedding",
    "load_embedding",
    "SavedEmbedding",
]
