"""Clustering experiment: do the classes form clusters, in the images, in their 2-D map and in a CNN's layers?

One experiment, one home. :func:`cluster_images` clusters images with every method of :data:`METHODS`
in several spaces (raw pixels, their PCA projection, and any 2-D map passed in as an array, e.g. the
embed task's UMAP) and scores each clustering against the labels; :func:`cluster_layers` trains a CNN
(the fast recipe's settings), keeps an untrained copy with the same initial weights as the control,
and clusters and linearly probes the output of every conv block and of the penultimate layer. The
``cluster`` task of the study and a notebook call these same functions.

Building blocks, each a plain function:

* clustering: :func:`cluster` runs one method of :data:`METHODS` (k-means, Gaussian mixture,
  agglomerative Ward, HDBSCAN, spectral) on a feature matrix; HDBSCAN marks noise with ``-1``;
* agreement with the true labels: :func:`agreement` (ARI, NMI, homogeneity, completeness from
  scikit-learn, plus :func:`purity` and the accuracy after :func:`hungarian_match`),
  :func:`matched_contingency` and :func:`noise_by_class`;
* layers of a network from :mod:`digitlab.models.nets`: :func:`conv_blocks`,
  :func:`layer_activations`, :func:`first_conv_weights`, :func:`linear_probe`;
* plots: :func:`plot_contingency`, :func:`plot_assignments`, :func:`plot_layer_scores`,
  :func:`plot_filters`, :func:`plot_feature_maps`.

Conventions. Noise points (label ``-1``) count as one more cluster in every score: a method is not
rewarded for leaving the hard points out (``agreement`` also reports the share of noise and the ARI of
the clustered points alone). With more clusters than classes, the Hungarian matching pairs each
class with at most one cluster and the remaining clusters count as errors in the matched accuracy.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from digitlab.exceptions import ConfigError
from digitlab.experiments.base import StudyResult, as_data

METHODS = ("kmeans", "gmm", "ward", "hdbscan", "spectral")
LABELS = {
    "kmeans": "k-means",
    "gmm": "Gaussian mixture",
    "ward": "agglomerative (Ward)",
    "hdbscan": "HDBSCAN",
    "spectral": "spectral",
}
MERGES = (
    "gap",
    "flatten",
)  # gap: mean over the map of each channel -> (n, C); flatten: every unit -> (n, C*H*W)
MERGE_LABELS = {"gap": "global average pooling", "flatten": "flattened"}
# HDBSCAN: all pairwise distances (n^2 floats: 0.8 GB at 10,000) above 16 dims up to this size
HDBSCAN_BRUTE_MAX_POINTS = 10_000
GMM_FULL_MAX_DIMS = 10  # "auto" covariance: full up to this many dimensions (the 2-D maps), diagonal above (PCA-50 full: 16x slower, worse ARI on MNIST)


# =============================================================================================
# Clustering
# =============================================================================================


def cluster(
    x: np.ndarray,
    method: str,
    n_clusters: int = 10,
    seed: int = 0,
    *,
    n_init: int = 4,
    min_cluster_size: int = 0,
    min_samples: int = 0,
    n_neighbors: int = 15,
    covariance: str = "auto",
    n_jobs: int = 1,
) -> np.ndarray:
    """Cluster the rows of ``x`` with ``method`` and return one integer label per row.

    Parameters
    ----------
    x : ``(n, d)`` features (float).
    method : one of :data:`METHODS`.
    n_clusters : clusters asked of every method but HDBSCAN, which finds its own number.
    seed : random state of k-means, the Gaussian mixture and spectral clustering (Ward and HDBSCAN
        are deterministic).
    n_init : k-means restarts (the best is kept); the Gaussian mixture starts once, from k-means++ centres
        (on 10,000 MNIST images two starts took 96 s in pixel space on a busy machine).
    min_cluster_size : HDBSCAN's smallest cluster; 0 = ``max(5, n // (4 * n_clusters))``, a quarter of
        an average class, so that a class's sub-styles do not each become a cluster.
    min_samples : HDBSCAN's density neighbourhood; 0 = 10 (larger = more points called noise).
    n_neighbors : spectral clustering's k-nearest-neighbour affinity graph.
    covariance : Gaussian mixture covariance type ("full", "diag", "tied", "spherical"), or "auto":
        full up to :data:`GMM_FULL_MAX_DIMS` dimensions, diagonal above.
    n_jobs : parallel jobs where scikit-learn offers them (HDBSCAN, spectral's neighbour search).

    Returns
    -------
    ``(n,)`` int64 labels ``0..k-1``; HDBSCAN's noise points are ``-1``.
    """
    x = np.ascontiguousarray(x, dtype=np.float64 if method == "gmm" else np.float32)
    n = len(x)
    k = int(min(n_clusters, n))
    if method == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(k, n_init=n_init, random_state=seed).fit_predict(x).astype(np.int64)
    if method == "gmm":
        from sklearn.mixture import GaussianMixture

        cov = covariance if covariance != "auto" else ("full" if x.shape[1] <= GMM_FULL_MAX_DIMS else "diag")
        gm = GaussianMixture(
            k,
            covariance_type=cov,
            n_init=1,
            random_state=seed,
            reg_covar=1e-4,
            max_iter=200,
            init_params="k-means++",
        )
        return gm.fit(x).predict(x).astype(np.int64)
    if method == "ward":
        from sklearn.cluster import AgglomerativeClustering

        return AgglomerativeClustering(k, linkage="ward").fit_predict(x).astype(np.int64)
    if method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        size = min_cluster_size or max(5, n // (4 * max(n_clusters, 1)))
        samples = min_samples or min(10, size)
        # In many dimensions a tree does not prune: all pairwise distances (BLAS) were 13x faster than
        # scikit-learn's "auto" on 2,000 MNIST images in pixel space (0.9 s against 12.4 s), same labels.
        brute = x.shape[1] > 16 and n <= HDBSCAN_BRUTE_MAX_POINTS
        return (
            HDBSCAN(
                min_cluster_size=int(size),
                min_samples=int(samples),
                n_jobs=n_jobs,
                copy=True,
                algorithm="brute" if brute else "auto",
            )
            .fit_predict(x)
            .astype(np.int64)
        )
    if method == "spectral":
        from sklearn.cluster import SpectralClustering

        sc = SpectralClustering(
            k,
            affinity="nearest_neighbors",
            n_neighbors=int(min(n_neighbors, n - 1)),
            assign_labels="cluster_qr",
            random_state=seed,
            n_jobs=n_jobs,
        )
        with warnings.catch_warnings():  # separate islands (common on a UMAP map) still get one cluster each
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            return sc.fit_predict(x).astype(np.int64)
    raise ConfigError(f"clustering method {method!r}: unknown; choose from {', '.join(METHODS)}")


# =============================================================================================
# Agreement with the labels
# =============================================================================================


def contingency(
    y_true: np.ndarray, labels: np.ndarray, n_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(C, ids)``: ``C[i, j]`` = points of class ``i`` in cluster ``ids[j]`` (ids sorted; noise -1 first)."""
    y_true, labels = np.asarray(y_true, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    n_classes = int(n_classes or y_true.max() + 1)
    ids, col = np.unique(labels, return_inverse=True)
    table = np.zeros((n_classes, len(ids)), dtype=np.int64)
    np.add.at(table, (y_true, col.ravel()), 1)
    return table, ids


def purity(y_true: np.ndarray, labels: np.ndarray) -> float:
    """Share of points whose cluster's majority class is their own class (noise counts as one cluster).

    1 when every cluster holds one class; it rises with the number of clusters (n singletons score 1),
    so read it next to completeness or NMI.
    """
    table, _ = contingency(y_true, labels)
    return float(table.max(0).sum() / max(table.sum(), 1))


def hungarian_match(y_true: np.ndarray, labels: np.ndarray, n_classes: int | None = None) -> dict[int, int]:
    """The one-to-one cluster -> class assignment that maximises the number of matched points.

    Solved by :func:`scipy.optimize.linear_sum_assignment` on the contingency table; with more
    clusters than classes the extra clusters stay unmatched (absent from the dict), with fewer some
    classes do. HDBSCAN's noise (-1) is never matched.
    """
    from scipy.optimize import linear_sum_assignment

    table, ids = contingency(y_true, labels, n_classes)
    keep = ids >= 0
    table, ids = table[:, keep], ids[keep]
    if table.size == 0:
        return {}
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {int(ids[c]): int(r) for r, c in zip(rows, cols)}


def matched_accuracy(y_true: np.ndarray, labels: np.ndarray, n_classes: int | None = None) -> float:
    """Accuracy of the clustering read as a classifier through :func:`hungarian_match` (noise = wrong)."""
    mapping = hungarian_match(y_true, labels, n_classes)
    pred = np.array([mapping.get(int(c), -1) for c in np.asarray(labels)])
    return float(np.mean(pred == np.asarray(y_true)))


def matched_contingency(
    y_true: np.ndarray, labels: np.ndarray, n_classes: int | None = None
) -> tuple[np.ndarray, list[str]]:
    """The contingency table with its columns reordered by the Hungarian matching.

    Column ``i`` (for ``i < n_classes``) is the cluster matched to class ``i`` (all zeros when no
    cluster is), so the matched points lie on the diagonal; unmatched clusters follow, then noise.
    Returns the ``(n_classes, n_columns)`` table and one column name per column (the cluster id as a
    string, "-" for an empty slot, "noise").
    """
    table, ids = contingency(y_true, labels, n_classes)
    k = table.shape[0]
    mapping = hungarian_match(y_true, labels, k)
    by_class = {c: cl for cl, c in mapping.items()}
    pos = {int(c): j for j, c in enumerate(ids)}
    cols, names = [], []
    for c in range(k):
        cl = by_class.get(c)
        cols.append(table[:, pos[cl]] if cl is not None else np.zeros(k, dtype=np.int64))
        names.append(str(cl) if cl is not None else "-")
    for cl in ids:
        if cl >= 0 and int(cl) not in mapping:
            cols.append(table[:, pos[int(cl)]])
            names.append(str(int(cl)))
    if -1 in pos:
        cols.append(table[:, pos[-1]])
        names.append("noise")
    return np.stack(cols, 1), names


def agreement(y_true: np.ndarray, labels: np.ndarray, n_classes: int | None = None) -> dict[str, float]:
    """Every agreement score of a clustering with the true labels.

    ``ari`` (adjusted Rand index: 0 for chance, 1 for identical partitions), ``nmi`` (normalised
    mutual information, arithmetic mean), ``homogeneity`` (each cluster holds one class),
    ``completeness`` (each class lies in one cluster), ``purity``, ``matched_accuracy``
    (Hungarian), ``n_clusters`` (noise excluded), ``noise`` (share of points labelled -1) and
    ``ari_clustered`` (ARI of the non-noise points alone; equal to ``ari`` without noise).
    """
    from sklearn import metrics as M

    y_true, labels = np.asarray(y_true), np.asarray(labels)
    noise = labels < 0
    clustered = ~noise
    ari_c = (
        float(M.adjusted_rand_score(y_true[clustered], labels[clustered]))
        if clustered.sum() > 1
        else float("nan")
    )
    return {
        "ari": float(M.adjusted_rand_score(y_true, labels)),
        "nmi": float(M.normalized_mutual_info_score(y_true, labels)),
        "homogeneity": float(M.homogeneity_score(y_true, labels)),
        "completeness": float(M.completeness_score(y_true, labels)),
        "purity": purity(y_true, labels),
        "matched_accuracy": matched_accuracy(y_true, labels, n_classes),
        "n_clusters": int(len(np.unique(labels[clustered]))),
        "noise": float(noise.mean()),
        "ari_clustered": ari_c,
    }


def noise_by_class(y_true: np.ndarray, labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Share of each class's points that are noise (label -1), ``(n_classes,)``."""
    y_true = np.asarray(y_true, dtype=np.int64)
    k = int(n_classes or y_true.max() + 1)
    total = np.bincount(y_true, minlength=k)
    noisy = np.bincount(y_true[np.asarray(labels) < 0], minlength=k)
    return noisy / np.maximum(total, 1)


# =============================================================================================
# Layers of a network
# =============================================================================================


def conv_blocks(model) -> list[tuple[str, Any]]:
    """``[(name, module)]``: the module whose output is each conv block's output, input side first.

    * ``cnn`` (:class:`~digitlab.models.nets.ConvNet`): each block (convs, BN, activation, pooling);
    * ``lenet5``: each conv -> activation -> pooling stage (the output of the pooling);
    * ``resnet``: the stem (conv, BN, ReLU) and every basic block (after its residual sum and ReLU);
    * ``convmixer``: the patch embedding (after its BN) and every mixer layer (depthwise residual,
      pointwise conv, GELU, BN: after the BN).
    Any other network with a ``features`` ``nn.Sequential``: its children that contain a convolution.
    """
    from torch import nn

    from digitlab.models import nets

    feats = getattr(model, "features", None)
    if feats is None:
        raise ConfigError(
            f"network {type(model).__name__}: no 'features' module; conv_blocks knows the nets of digitlab.models.nets"
        )
    if isinstance(model, nets.ConvNet):
        return [(f"block {i + 1}", m) for i, m in enumerate(feats)]
    if isinstance(model, nets.LeNet5):
        pools = [m for m in feats if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d))]
        return [(f"block {i + 1}", m) for i, m in enumerate(pools)]
    if isinstance(model, nets.ResNet):
        blocks = [m for m in feats if isinstance(m, nets.BasicBlock)]
        return [("stem", feats[2])] + [(f"block {i + 1}", m) for i, m in enumerate(blocks)]
    if isinstance(model, nets.ConvMixer):
        norms = [
            m for m in feats if isinstance(m, nn.BatchNorm2d)
        ]  # top-level BNs: patch embedding, then each layer's
        return [("patch embedding", norms[0])] + [(f"mixer {i + 1}", m) for i, m in enumerate(norms[1:])]
    out = [m for m in feats if any(isinstance(s, nn.Conv2d) for s in m.modules())]
    return [(f"block {i + 1}", m) for i, m in enumerate(out)]


def penultimate_module(model):
    """The last ``nn.Linear`` of the network: its input is the penultimate layer."""
    from torch import nn

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"network {type(model).__name__}: no linear output layer, so no penultimate layer")
    return linears[-1]


def images_to_tensor(x: np.ndarray, norm=(0.0, 1.0)):
    """uint8 images (any layout :func:`digitlab.train.as_images` accepts: ``(n, H, W)``, ``(n, H, W, C)``, ...)
    -> float ``(n, C, H, W)`` on the CPU, normalised like the trainer does (``norm`` = ``(mean, std)``,
    floats or one value per channel)."""
    from digitlab.train import normalise, to_tensor

    return normalise(to_tensor(x, "cpu"), norm)


def layer_activations(
    model,
    x: np.ndarray,
    norm=(0.0, 1.0),
    merge: Sequence[str] = MERGES,
    batch_size: int = 512,
    keep_maps: int = 0,
) -> dict[str, Any]:
    """The activations of every conv block and of the penultimate layer for images ``x``.

    Forward hooks on :func:`conv_blocks` and a forward pre-hook on :func:`penultimate_module` record
    each batch (eval mode, no gradients). A block's ``(n, C, H, W)`` output is merged per ``merge``:
    ``"gap"`` averages each channel over the map -> ``(n, C)`` (what a channel detects, not where);
    ``"flatten"`` keeps every unit -> ``(n, C*H*W)`` (what and where). The penultimate layer is
    already a vector and is the same under both merges.

    Returns
    -------
    ``{"layers": [names...], "features": {layer: {merge: (n, d) float32}}, "shapes": {layer: (C, H, W) or (d,)},
    "maps": {layer: (keep_maps, C, H, W) float32}}``: ``maps`` holds the raw maps of the first
    ``keep_maps`` images (for :func:`plot_feature_maps`). The last layer is "penultimate".
    """
    import torch

    bad = [m for m in merge if m not in MERGES]
    if bad or not merge:
        raise ConfigError(f"merge {bad or 'empty'}: unknown; use some of {', '.join(MERGES)}")
    blocks = conv_blocks(model)
    names = [n for n, _ in blocks] + ["penultimate"]
    store: dict[str, list] = {n: [] for n in names}
    maps: dict[str, list] = {n: [] for n, _ in blocks}
    shapes: dict[str, tuple] = {}
    seen = [0]

    def block_hook(name):
        def hook(_module, _inputs, out):
            out = out.detach().float()
            shapes.setdefault(name, tuple(out.shape[1:]))
            if keep_maps > seen[0]:
                maps[name].append(out[: keep_maps - seen[0]].cpu())
            store[name].append({m: (out.mean((2, 3)) if m == "gap" else out.flatten(1)).cpu() for m in merge})

        return hook

    def pen_hook(_module, inputs):
        vec = inputs[0].detach().float().flatten(1).cpu()
        store["penultimate"].append(dict.fromkeys(merge, vec))

    handles = [m.register_forward_hook(block_hook(n)) for n, m in blocks]
    handles.append(penultimate_module(model).register_forward_pre_hook(pen_hook))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(images_to_tensor(x[i : i + batch_size], norm).to(device))
                seen[0] += len(x[i : i + batch_size])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    feats = {n: {m: torch.cat([b[m] for b in store[n]]).numpy() for m in merge} for n in names}
    shapes["penultimate"] = (feats["penultimate"][merge[0]].shape[1],)
    return {
        "layers": names,
        "features": feats,
        "shapes": shapes,
        "maps": {n: torch.cat(v).numpy() for n, v in maps.items() if v},
    }


def first_conv_weights(model) -> np.ndarray:
    """Kernels of the network's first ``nn.Conv2d``: ``(out_channels, in_channels, kh, kw)``."""
    from torch import nn

    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ConfigError(f"network {type(model).__name__}: no convolution, so no first-layer filters")
    return conv.weight.detach().float().cpu().numpy()


def linear_probe(
    x: np.ndarray,
    y: np.ndarray,
    seed: int = 0,
    test_fraction: float = 0.5,
    c: float = 1.0,
    max_iter: int = 100,
) -> float:
    """Held-out accuracy of a linear classifier on features ``x``: how linearly decodable the classes are.

    Standardises the features, fits multinomial logistic regression (L2, inverse strength ``c``,
    lbfgs, at most ``max_iter`` iterations) on a stratified ``1 - test_fraction`` of the rows and scores
    it on the rest.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", ConvergenceWarning
        )  # a capped probe is still a fair comparison across layers
        probe.fit(x_tr, y_tr)
    return float(probe.score(x_te, y_te))


# =============================================================================================
# Plots
# =============================================================================================


def plot_contingency(
    table: np.ndarray, col_names: Sequence[str], classes: Sequence[str], title: str = "", ax=None
):
    """Heatmap of a (matched) contingency table: rows = classes, columns = clusters, share of each row."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(0.42 * table.shape[1] + 2.2, 0.38 * table.shape[0] + 1.4))
    share = table / np.maximum(table.sum(1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i, j in zip(*np.nonzero(table)):
        ax.text(
            j,
            i,
            str(table[i, j]),
            ha="center",
            va="center",
            fontsize=6.5,
            color="white" if share[i, j] > 0.55 else "black",
        )
    ax.set_xticks(range(table.shape[1]), col_names, fontsize=7, rotation=90 if table.shape[1] > 14 else 0)
    ax.set_yticks(range(table.shape[0]), classes, fontsize=7)
    ax.set_xlabel("cluster (matched to the row's class on the diagonal)", fontsize=8)
    ax.set_ylabel("true class", fontsize=8)
    ax.set_title(title, fontsize=9)
    return ax.figure


def plot_assignments(
    emb: np.ndarray,
    y: np.ndarray,
    assignments: dict[str, np.ndarray],
    classes: Sequence[str],
    titles: dict[str, str] | None = None,
    space: str = "",
    ax=None,
    cols: int = 3,
):
    """The 2-D map coloured by the true labels, then once per clustering by its clusters.

    Clusters are coloured by their Hungarian-matched class (so a correct cluster has its class's
    colour); unmatched clusters are black, noise light grey. ``cols`` panels per row (more rows for
    more clusterings: the figure stays within :data:`digitlab.plots.MAX_WIDTH`). ``ax``: draw the
    panels into the area of this Axes (or into exactly ``1 + len(assignments)`` Axes) instead of a new figure.
    """
    from digitlab.embed import class_colors, plot_embedding
    from digitlab.plots import fit_width, panels

    n_panels = 1 + len(assignments)
    cols = max(1, min(n_panels, cols))
    rows = -(-n_panels // cols)
    cell = fit_width(3.0, cols)
    given = ax is not None and not hasattr(ax, "get_subplotspec") and np.size(ax) == n_panels
    fig, axes = panels(ax, 1 if given else rows, n_panels if given else cols, (cell * cols, cell * rows))
    flat = axes.ravel()
    plot_embedding(emb, y, classes, f"true labels{' (' + space + ')' if space else ''}", ax=flat[0])
    flat[0].title.set_fontsize(9)
    colors = np.asarray(class_colors(len(classes)) + ["#000000", "#d0d0d0"])
    size = float(np.clip(25_000 / max(len(emb), 1), 0.4, 8) * (cell / 4.3) ** 2)
    for a, (name, lab) in zip(flat[1:], assignments.items()):
        mapping = hungarian_match(y, lab, len(classes))
        idx = np.array([len(classes) + 1 if c < 0 else mapping.get(int(c), len(classes)) for c in lab])
        order = np.random.default_rng(0).permutation(len(emb))
        a.scatter(
            emb[order, 0],
            emb[order, 1],
            c=colors[idx[order]],
            s=size,
            alpha=0.6,
            linewidths=0,
            rasterized=True,
        )
        a.set_title((titles or {}).get(name, name), fontsize=9)
        a.set_xticks([]), a.set_yticks([])
        a.set_aspect("equal", "datalim")
    for a in flat[n_panels:]:
        a.axis("off")
    if ax is None:
        fig.tight_layout()
    return fig


def plot_layer_scores(
    rows: Sequence[dict], metrics: Sequence[tuple[str, str]], merges: Sequence[str], ax=None, cols: int = 2
):
    """One panel per metric: score against depth, trained (solid) vs untrained (dashed), one colour per merge.

    ``rows`` have keys ``depth``, ``layer``, ``net`` ("trained"/"untrained"), ``merge`` and the metrics.
    ``cols`` panels per row (within :data:`digitlab.plots.MAX_WIDTH`); ``ax``: draw into the area of this
    Axes (or into exactly one Axes per metric) instead of a new figure.
    """
    from digitlab.plots import fit_width, panels

    cols = max(1, min(cols, len(metrics)))
    rows_n = -(-len(metrics) // cols)
    cell = fit_width(3.7, cols)
    given = ax is not None and not hasattr(ax, "get_subplotspec") and np.size(ax) == len(metrics)
    fig, axes = panels(
        ax, 1 if given else rows_n, len(metrics) if given else cols, (cell * cols, 0.8 * cell * rows_n)
    )
    for a in axes.ravel()[len(metrics) :]:
        a.axis("off")
    names = {}
    for r in rows:
        names[r["depth"]] = r["layer"]
    palette = {"gap": "#1f77b4", "flatten": "#d62728"}
    for a, (key, label) in zip(axes.ravel(), metrics):
        for merge in merges:
            for net, style in (("trained", "-"), ("untrained", "--")):
                pts = sorted((r["depth"], r[key]) for r in rows if r["net"] == net and r["merge"] == merge)
                if pts:
                    a.plot(
                        *zip(*pts),
                        style,
                        marker="o",
                        ms=4,
                        color=palette.get(merge, "gray"),
                        label=f"{net}, {MERGE_LABELS.get(merge, merge)}",
                    )
        a.set_xticks(sorted(names), [names[d] for d in sorted(names)], rotation=30, ha="right", fontsize=8)
        a.set_ylabel(label, fontsize=9)
        a.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    if ax is None:
        fig.tight_layout()
    return fig


def _tile(ax, img: np.ndarray, cmap: str = "gray", symmetric: bool = False) -> None:
    lim = float(np.abs(img).max()) or 1.0
    kw = {"vmin": -lim, "vmax": lim} if symmetric else {}
    ax.imshow(img, cmap=cmap, interpolation="nearest", **kw)
    ax.set_xticks([]), ax.set_yticks([])


def plot_filters(weights: dict[str, np.ndarray], max_filters: int = 32, ax=None, per_row: int = 16):
    """First-layer kernels of each network: red-blue, white = 0, each kernel scaled to its own largest
    weight; kernels over several input channels show their channel mean. Each network takes
    ``ceil(n / per_row)`` rows of at most ``per_row`` kernels (labelled with its name on its first row),
    so the figure stays within :data:`digitlab.plots.MAX_WIDTH`. ``ax``: draw into the area of this Axes."""
    from digitlab.plots import fit_width, panels

    n = min(max_filters, max(len(w) for w in weights.values()))
    cols = max(1, min(n, per_row))
    lines = -(-n // cols)
    tile = fit_width(0.55, cols, extra=1.2)
    fig, axes = panels(
        ax, lines * len(weights), cols, (tile * cols + 1.2, (tile + 0.15) * lines * len(weights) + 0.3)
    )
    for k, (name, w) in enumerate(weights.items()):
        block = axes[k * lines : (k + 1) * lines].ravel()
        for j, a in enumerate(block):
            if j < min(len(w), n):
                _tile(a, w[j].mean(0), cmap="RdBu_r", symmetric=True)
            else:
                a.axis("off")
        block[0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    if ax is None:
        fig.subplots_adjust(wspace=0.08, hspace=0.1)
    return fig


def _montage(tiles: np.ndarray, normalise: bool = True) -> np.ndarray:
    """``(rows, cols, H, W)`` tiles -> one image with a 1-pixel NaN (blank) border between tiles,
    each tile scaled to [0, 1] on its own when ``normalise``."""
    r, c, h, w = tiles.shape
    t = tiles.astype(np.float32)
    if normalise:
        lo = t.min((2, 3), keepdims=True)
        t = (t - lo) / np.maximum(t.max((2, 3), keepdims=True) - lo, 1e-12)
    out = np.full((r * (h + 1) - 1, c * (w + 1) - 1), np.nan, dtype=np.float32)
    for i in range(r):
        for j in range(c):
            out[i * (h + 1) : i * (h + 1) + h, j * (w + 1) : j * (w + 1) + w] = t[i, j]
    return out


def plot_feature_maps(
    images: np.ndarray,
    classes: Sequence[str],
    maps: dict[str, np.ndarray],
    n_channels: int = 4,
    title: str = "",
    ax=None,
):
    """Feature maps of one image per class (rows): the image, then ``n_channels`` channels per network.

    ``maps[net] = (n_images, C, H, W)``; for each network the ``n_channels`` channels whose mean
    activation varies most across the shown images are drawn, each tile on its own scale (dark = low).
    One montage per network (one imshow each), so the figure stays cheap at any number of tiles. Tiles
    shrink so that the figure stays within :data:`digitlab.plots.MAX_WIDTH`; ``ax``: draw into the area of
    this Axes (or into exactly ``1 + len(maps)`` Axes) instead of a new figure.
    """
    import matplotlib.pyplot as plt

    from digitlab.plots import fit_width, panels

    k = len(images)
    grey = images if images.ndim == 3 else images.mean(-1)
    first = next(iter(maps.values()))
    h, w = first.shape[2:]
    widths = [1] + [min(n_channels, m.shape[1]) for m in maps.values()]
    tile = fit_width(0.75, sum(widths), extra=1.2)
    fig, axes = panels(
        ax,
        1,
        len(widths),
        (tile * sum(widths) + 1.2, tile * k + 0.8),
        **({"width_ratios": widths, "wspace": 0.06} if ax is None or hasattr(ax, "get_subplotspec") else {}),
    )
    ax = axes[0, 0]
    ax.imshow(_montage(grey[:, None]), cmap="gray", interpolation="nearest")
    ax.set_yticks(
        [i * (grey.shape[1] + 1) + grey.shape[1] / 2 for i in range(k)], [str(c) for c in classes], fontsize=8
    )
    ax.set_xticks([])
    ax.set_title("image", fontsize=8)
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("white")
    for ax, (name, m) in zip(axes[0, 1:], maps.items()):
        chosen = np.argsort(-m.reshape(m.shape[0], m.shape[1], -1).mean(-1).std(0), kind="stable")[
            :n_channels
        ]
        ax.imshow(_montage(m[:, chosen]), cmap=cmap, interpolation="nearest", aspect="equal")
        ax.set_xticks(
            [j * (w + 1) + w / 2 for j in range(len(chosen))], [f"ch {c}" for c in chosen], fontsize=7
        )
        ax.set_yticks([])
        ax.set_title(name, fontsize=8)
    if title and ax is None:  # a title over the figure (a new figure only, as digitlab.plots.plot_images)
        fig.suptitle(title, fontsize=9)
    return fig


# =============================================================================================
# The experiment, part 1: images in pixel, PCA and 2-D map space
# =============================================================================================

SPACES = ("pixels", "pca", "umap", "tsne")  # "umap"/"tsne" (and "pca2" ...): 2-D maps passed in as arrays
SPACE_LABELS = {"pixels": "raw pixels", "umap": "UMAP map", "tsne": "t-SNE map"}
SCORES = [
    ("ari", "ARI"),
    ("nmi", "NMI"),
    ("homogeneity", "homogeneity"),
    ("completeness", "completeness"),
    ("purity", "purity"),
    ("matched_accuracy", "matched accuracy"),
]


def _status(enabled: bool, text: str):
    """A spinner on stderr while a slow step runs (a no-op when ``enabled`` is False)."""
    if not enabled:
        return nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(text)


def prose_space(space_name: str) -> str:
    """A space's table name as it reads in a sentence ("UMAP map" -> "the UMAP map")."""
    return f"the {space_name}" if space_name.endswith("map") else space_name


def merged_classes(
    y: np.ndarray, labels: np.ndarray, classes: Sequence[str], share: float = 0.2
) -> list[str]:
    """Clusters that hold several classes, each at least ``share`` of the cluster: ["4/9", "3/5/8"]."""
    table, ids = contingency(y, labels, len(classes))
    out = []
    for j, cl in enumerate(ids):
        col = table[:, j]
        if cl < 0 or col.sum() == 0:
            continue
        big = [str(classes[c]) for c in np.flatnonzero(col >= share * col.sum())]
        if len(big) > 1:
            out.append("/".join(big))
    return out


@dataclass
class ImageClustering(StudyResult):
    """Every clustering method in every space, scored against the labels.

    ``scores``: one row per space and method (space, method, dims, ARI, NMI, homogeneity, completeness,
    purity, matched accuracy, clusters, noise %, seconds); ``rows`` the same as dicts (with ``_space``
    and ``_method`` keys), ``labels[(space, method)]`` the cluster of every image, ``names`` each
    space's label ("raw pixels", "PCA-50", "UMAP map"), ``k`` the clusters asked.
    """

    scores: pd.DataFrame
    rows: list[dict]
    labels: dict[tuple[str, str], np.ndarray]
    names: dict[str, str]
    k: int
    y: np.ndarray
    classes: list[str]
    methods: list[str]
    _main = "scores"

    def best(self, space: str | None = None) -> dict:
        """The row of the highest ARI (then NMI), over every space or in ``space``."""
        pool = [r for r in self.rows if space is None or r["_space"] == space]
        return max(pool, key=lambda r: (r["ARI"], r["NMI"]))

    def row(self, space: str, method: str) -> dict:
        return next(r for r in self.rows if r["_space"] == space and r["_method"] == method)

    def matched(self, space: str, method: str) -> tuple[np.ndarray, list[str]]:
        """:func:`matched_contingency` of one clustering."""
        return matched_contingency(self.y, self.labels[(space, method)], len(self.classes))

    def noise_by_class(self, space: str) -> np.ndarray:
        """Share of each class HDBSCAN labels as noise in ``space``."""
        return noise_by_class(self.y, self.labels[(space, "hdbscan")], len(self.classes))

    def merged_classes(self, space: str, method: str) -> list[str]:
        return merged_classes(self.y, self.labels[(space, method)], self.classes)

    def plot(self, ax=None):
        """Matched contingency tables of the best method (by ARI) in each space, two per row."""
        from digitlab.plots import panels

        spaces = list(self.names)
        cols = min(2, len(spaces))  # two tables per row keep the figure within the report's printable width
        rows = -(-len(spaces) // cols)
        fig, axes = panels(ax, rows, cols, (3.7 * cols, 3.5 * rows))
        for a in axes.ravel()[len(spaces) :]:
            a.axis("off")
        for a, space in zip(axes.ravel(), spaces):
            best = self.best(space)
            table, names = self.matched(space, best["_method"])
            plot_contingency(
                table,
                names,
                self.classes,
                f"{best['method']} on {prose_space(self.names[space])}\n(ARI {best['ARI']:.2f})",
                ax=a,
            )
        if ax is None:
            fig.tight_layout()
        return fig

    plot_contingency = plot

    def plot_assignments(self, space: str, emb: np.ndarray, map_name: str = "", ax=None):
        """The clusterings of ``space`` drawn on the 2-D map ``emb`` (same rows), beside the true labels."""
        assignments = {m: self.labels[(space, m)] for m in self.methods}
        titles = {
            r["_method"]: f"{r['method']} on {self.names[space]}\nARI {r['ARI']:.2f}, NMI {r['NMI']:.2f}"
            for r in self.rows
            if r["_space"] == space
        }
        return plot_assignments(emb, self.y, assignments, self.classes, titles, map_name, ax=ax)


def cluster_images(
    images: np.ndarray,
    y: np.ndarray,
    *,
    classes: Sequence[str] | None = None,
    spaces: Sequence[str] = ("pixels", "pca"),
    maps: Mapping[str, np.ndarray] | None = None,
    methods: Sequence[str] = ("kmeans", "gmm", "ward", "hdbscan", "spectral"),
    n_clusters: int = 0,
    pca_dims: int = 50,
    n_init: int = 4,
    min_cluster_size: int = 0,
    min_samples: int = 0,
    n_neighbors: int = 15,
    covariance: str = "auto",
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool = False,
    log: Any = None,
) -> ImageClustering:
    """Cluster ``images`` (labels ``y``) with every method in every space and score each clustering.

    ``spaces``: "pixels" (every channel of every pixel / 255), "pca" (PCA to ``pca_dims``) and any key of
    ``maps``, a 2-D map of the same images (e.g. ``{"umap": xy}`` from the embed task; "umap" and
    "tsne" are labelled "UMAP map" and "t-SNE map"). ``n_clusters``: clusters asked of every method but
    HDBSCAN (0 = the number of classes). The remaining keywords go to :func:`cluster`.
    """
    from digitlab.embed import pca_reduce, to_features

    y = np.asarray(y, dtype=np.int64)
    classes = [str(c) for c in (classes if classes is not None else range(int(y.max()) + 1))]
    maps = maps or {}
    k = n_clusters or len(classes)
    rows, labels, names = [], {}, {}
    n_runs, done = len(spaces) * len(methods), 0
    for space in spaces:
        t0 = time.perf_counter()
        if space == "pixels":
            x = to_features(images)
        elif space == "pca":
            x = pca_reduce(images, pca_dims, seed)
        elif space in maps:
            x = np.asarray(maps[space]).astype(np.float32)
        else:
            raise ConfigError(
                f"space {space!r}: not pixels or pca, and no map of that name was passed (maps={list(maps)})"
            )
        prep = time.perf_counter() - t0
        names[space] = f"PCA-{x.shape[1]}" if space == "pca" else SPACE_LABELS.get(space, space)
        for method in methods:
            done += 1
            with _status(progress, f"cluster: {LABELS[method]} on {names[space]} ({done}/{n_runs})"):
                t0 = time.perf_counter()
                lab = cluster(
                    x,
                    method,
                    k,
                    seed,
                    n_init=n_init,
                    min_cluster_size=min_cluster_size,
                    min_samples=min_samples,
                    n_neighbors=n_neighbors,
                    covariance=covariance,
                    n_jobs=n_jobs,
                )
                secs = time.perf_counter() - t0
            labels[(space, method)] = lab
            score = agreement(y, lab, len(classes))
            rows.append(
                {
                    "space": names[space],
                    "method": LABELS[method],
                    "dims": int(x.shape[1]),
                    **{label: round(score[key], 4) for key, label in SCORES},
                    "clusters": score["n_clusters"],
                    "noise %": round(100 * score["noise"], 1),
                    "seconds": round(secs, 2),
                    "_space": space,
                    "_method": method,
                    "_prep": prep,
                }
            )
            if log is not None:
                log.info("cluster: %s on %s: ARI %.3f in %.1f s", method, space, score["ari"], secs)
    scores = pd.DataFrame([{c: v for c, v in r.items() if not c.startswith("_")} for r in rows])
    return ImageClustering(scores, rows, labels, names, k, y, classes, list(methods))


# =============================================================================================
# The experiment, part 2: the layers of a trained and an untrained CNN
# =============================================================================================


def one_per_class(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Index of the first image of each class present in ``y`` (classes in order)."""
    return np.array([int(np.flatnonzero(y == c)[0]) for c in range(n_classes) if np.any(y == c)])


@dataclass
class LayerClustering(StudyResult):
    """Cluster agreement and linear-probe accuracy at the input and after every layer of a trained CNN
    and of its untrained copy (the same initial weights).

    ``scores``: one row per network ("trained"/"untrained"), depth, layer, merge ("gap"/"flatten"):
    dims, ``ARI <method>``, ``NMI <method>`` per layer method, ``probe accuracy``; ``rows`` the same as
    dicts. ``layers``: "input", the blocks, "penultimate"; ``shapes``: each layer's output shape.
    ``test_acc``: the trained network's test accuracy; ``filter_change``: how far training moved the
    first-layer kernels (Frobenius norm of the change / that of the initial weights).
    """

    scores: pd.DataFrame
    rows: list[dict]
    layers: list[str]
    shapes: dict[str, tuple]
    test_acc: float
    filter_change: float
    weights: dict[str, np.ndarray]
    maps: dict[str, dict[str, np.ndarray]]  # net -> layer -> (one image per class, C, H, W)
    x_pick: np.ndarray
    y_pick: np.ndarray
    classes: list[str]
    methods: list[str]
    merge: list[str]
    net: str
    n_train: int
    n_test: int
    fitted: dict[str, Any] = field(
        default_factory=dict
    )  # parameters, epochs_run, steps, train_seconds of the trained net
    recipe: bool = True  # the fast recipe's network parameters were used
    epochs: int = 0
    min_steps: int = 0
    _main = "scores"

    def plot(self, ax=None):
        """ARI, NMI per layer method and probe accuracy against depth, trained (solid) and untrained (dashed)."""
        metric_panels = (
            [(f"ARI {m}", f"ARI ({LABELS[m]})") for m in self.methods]
            + [(f"NMI {m}", f"NMI ({LABELS[m]})") for m in self.methods]
            + [("probe accuracy", "linear-probe accuracy")]
        )
        return plot_layer_scores(self.rows, metric_panels, self.merge, ax=ax)

    plot_scores = plot

    def plot_filters(self, ax=None):
        return plot_filters(self.weights, ax=ax)

    def plot_feature_maps(self, layer: str, n_channels: int = 4, title: str = "", ax=None):
        """Feature maps after ``layer`` for one test image per class, trained and untrained side by side."""
        panel = {name: self.maps[name][layer] for name in self.maps}
        return plot_feature_maps(
            self.x_pick, [self.classes[c] for c in self.y_pick], panel, n_channels, title, ax=ax
        )


def cluster_layers(
    data: Any,
    *,
    net: str = "cnn",
    n_train: int = 10000,
    n_test: int = 4000,
    epochs: int = 2,
    min_steps: int = 200,
    merge: Sequence[str] = MERGES,
    methods: Sequence[str] = ("kmeans", "ward"),
    layer_pca_dims: int = 50,
    n_clusters: int = 0,
    probe_test_fraction: float = 0.5,
    probe_c: float = 1.0,
    probe_max_iter: int = 100,
    n_init: int = 4,
    min_cluster_size: int = 0,
    min_samples: int = 0,
    n_neighbors: int = 15,
    covariance: str = "auto",
    seed: int = 0,
    device: str = "cpu",
    n_jobs: int = 1,
    progress: bool = False,
) -> LayerClustering:
    """Train ``net`` (the fast recipe's settings with ``epochs`` / ``min_steps``) on ``n_train`` images of
    ``data`` (a Dataset or ``(x_train, y_train, x_test, y_test)``), build its untrained twin (same seed,
    hence the same initial weights), and on ``n_test`` test images cluster (``methods``, after PCA to
    ``layer_pca_dims``; 0 = as they are) and linearly probe the input and every layer of both, each
    block merged per ``merge``. Clustering keywords go to :func:`cluster`."""
    from dataclasses import replace

    from digitlab.embed import pca_reduce, to_features
    from digitlab.grid import fit_and_score, input_shape
    from digitlab.models.nets import build_net
    from digitlab.runtime import cpu_budget, limit_threads, progress_bar
    from digitlab.train import FAST_RECIPE

    d = as_data(data, n_train, n_test, seed)
    n_classes = d.n_classes
    recipe_net, recipe_params, recipe_cfg = FAST_RECIPE
    params = dict(recipe_params) if net == recipe_net else {}
    tcfg = replace(recipe_cfg, epochs=epochs, min_steps=min_steps, device=device)
    _, threads = cpu_budget(n_jobs, device)
    with (
        _status(progress, f"cluster: training the {net} on {len(d.y_train):,} images"),
        limit_threads(threads),
    ):
        fitted = fit_and_score(
            net,
            params,
            d.x_train,
            d.y_train,
            {"test": (d.x_test, d.y_test)},
            tcfg,
            seed=seed,
            n_classes=n_classes,
            keep_model=True,
        )
    untrained = build_net(net, input_shape(d.x_train), n_classes, seed=seed, **params)
    untrained.to(next(fitted["model"].parameters()).device)
    nets = {"trained": fitted["model"], "untrained": untrained}
    norm = fitted["norm"]

    y, k = d.y_test, n_clusters or n_classes

    def score_layer(x: np.ndarray) -> dict[str, float]:
        z = pca_reduce(x, layer_pca_dims, seed) if layer_pca_dims and x.shape[1] > layer_pca_dims else x
        out = {"dims": int(x.shape[1])}
        for method in methods:
            lab = cluster(
                z,
                method,
                k,
                seed,
                n_init=n_init,
                min_cluster_size=min_cluster_size,
                min_samples=min_samples,
                n_neighbors=n_neighbors,
                covariance=covariance,
                n_jobs=n_jobs,
            )
            score = agreement(y, lab, n_classes)
            out[f"ARI {method}"], out[f"NMI {method}"] = round(score["ari"], 4), round(score["nmi"], 4)
        out["probe accuracy"] = round(
            linear_probe(x, y, seed, probe_test_fraction, probe_c, probe_max_iter), 4
        )
        return out

    acts = {name: layer_activations(m, d.x_test, norm, merge) for name, m in nets.items()}
    layers = ["input"] + acts["trained"]["layers"]
    pixels = to_features(d.x_test)
    rows: list[dict] = []
    cache: dict[
        tuple, dict
    ] = {}  # the input (both nets) and the penultimate layer (both merges) are one vector each
    with progress_bar(progress, "cluster: layers", len(nets) * len(layers) * len(merge)) as step:
        for name in nets:
            for depth, layer in enumerate(layers):
                for mg in merge:
                    key = (
                        ("input",)
                        if layer == "input"
                        else (name, layer)
                        if layer == "penultimate"
                        else (name, layer, mg)
                    )
                    if key not in cache:
                        cache[key] = score_layer(
                            pixels if layer == "input" else acts[name]["features"][layer][mg]
                        )
                    rows.append({"net": name, "depth": depth, "layer": layer, "merge": mg, **cache[key]})
                    step(description=f"cluster: {name} {layer}")
    shapes = {n: acts["trained"]["shapes"][n] for n in acts["trained"]["layers"]}
    pick = one_per_class(d.y_test, n_classes)
    maps = {
        name: layer_activations(m, d.x_test[pick], norm, list(merge)[:1], keep_maps=len(pick))["maps"]
        for name, m in nets.items()
    }
    weights = {name: first_conv_weights(m) for name, m in nets.items()}
    moved = float(
        np.linalg.norm(weights["trained"] - weights["untrained"])
        / max(np.linalg.norm(weights["untrained"]), 1e-12)
    )
    info = {key: fitted.get(key) for key in ("params", "epochs_run", "steps", "train_seconds")}
    return LayerClustering(
        pd.DataFrame(rows),
        rows,
        layers,
        shapes,
        float(fitted["test_acc"]),
        moved,
        weights,
        maps,
        d.x_test[pick],
        d.y_test[pick],
        list(d.classes),
        list(methods),
        list(merge),
        net,
        len(d.y_train),
        len(d.y_test),
        info,
        bool(params),
        tcfg.epochs,
        tcfg.min_steps,
    )


__all__ = [
    "cluster_images",
    "ImageClustering",
    "cluster_layers",
    "LayerClustering",
    "METHODS",
    "LABELS",
    "MERGES",
    "MERGE_LABELS",
    "SPACES",
    "SPACE_LABELS",
    "SCORES",
    "cluster",
    "contingency",
    "purity",
    "hungarian_match",
    "matched_accuracy",
    "matched_contingency",
    "agreement",
    "noise_by_class",
    "merged_classes",
    "one_per_class",
    "prose_space",
    "conv_blocks",
    "penultimate_module",
    "images_to_tensor",
    "layer_activations",
    "first_conv_weights",
    "linear_probe",
    "plot_contingency",
    "plot_assignments",
    "plot_layer_scores",
    "plot_filters",
    "plot_feature_maps",
]
