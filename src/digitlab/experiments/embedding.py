"""What the data looks like in 2-D: PCA, t-SNE and UMAP maps of the same images, measured.

:func:`embedding_study` embeds one stratified subset (or every train + test image) with each method
(t-SNE and UMAP on a shared PCA projection), scores every map by 2-D k-NN accuracy, trustworthiness and
silhouette, lists the class pairs that share neighbourhoods and relates them to how alike the class-mean
images are; the images a k-NN classifier in the high-dimensional space gets wrong are marked as hard.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from digitlab.experiments.base import StudyResult, as_data

LABELS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
METHOD_COLUMNS = ["method", "points", "k-NN accuracy (2-D)", "trustworthiness", "silhouette", "seconds"]


# =============================================================================================
# Pieces
# =============================================================================================


def select_points(
    data: Any, n_points: int | str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Images, labels and dataset indices to embed, and what the indices index.

    ``"all"`` -> every training then every test image (index ``i >= n_train`` is test image
    ``i - n_train``); a number -> a seeded stratified subset of the training set.
    """
    from digitlab.data.subsets import subset_indices

    if n_points == "all":
        images = np.concatenate([data.x_train, data.x_test])
        y = np.concatenate([data.y_train, data.y_test])
        return images, y, np.arange(len(y)), f"train+test: 0..{len(data.y_train) - 1} train, then test"
    idx = subset_indices(data.y_train, int(n_points), seed)
    return data.x_train[idx], data.y_train[idx], idx, "training set"


def hard_samples(x: np.ndarray, y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Out-of-fold predictions of a ``k``-NN classifier in the (PCA) feature space (5 folds)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    folds = int(min(5, np.bincount(y)[np.bincount(y) > 0].min()))
    return cross_val_predict(
        KNeighborsClassifier(k), x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed)
    )


def mean_image_overlap(images: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """``O[a, b]``: weighted Jaccard of the class-mean images (shared ink / combined ink), 0..1."""
    flat = images.reshape(len(images), -1)  # uint8; mean() accumulates in float64 without a float copy of all
    means = np.stack(
        [flat[y == c].mean(0) if np.any(y == c) else np.zeros(flat.shape[1]) for c in range(n_classes)]
    )
    lo = np.minimum(means[:, None], means[None]).sum(-1)
    hi = np.maximum(means[:, None], means[None]).sum(-1)
    return lo / np.maximum(hi, 1e-12)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (0 when undefined)."""
    from scipy.stats import spearmanr

    r = spearmanr(a, b).statistic
    return float(r) if np.isfinite(r) else 0.0


def foreign_neighbourhood(emb: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Per point: whether most of its ``k`` nearest 2-D neighbours are of another class."""
    from sklearn.neighbors import NearestNeighbors

    nbrs = NearestNeighbors(n_neighbors=min(k, len(y) - 1)).fit(emb).kneighbors(return_distance=False)
    return (y[nbrs] != y[:, None]).mean(1) > 0.5


# =============================================================================================
# The study
# =============================================================================================


@dataclass
class EmbeddingStudy(StudyResult):
    """2-D maps of the same images by each method, with their quality.

    ``methods``: one row per method (k-NN accuracy in 2-D, trustworthiness, silhouette, seconds; t-SNE
    and UMAP include the shared PCA step). ``overlaps``: the ``top_pairs`` most-overlapping class pairs
    per method (share of a class's k nearest 2-D neighbours from the other, both directions) with the
    overlap of their class-mean images. ``own_class``: per class and method the own-class share (%).
    ``embeddings`` / ``fractions``: per method key the ``(n, 2)`` map and the class-neighbour matrix.
    ``ink``: class-mean-image overlap. ``hard``: indices (into the points) misclassified by ``k``-NN in
    the high-dimensional space (``pred``: its predictions). ``ink_rho``: per method, Spearman's rho between
    map overlap and mean-image overlap over all pairs. ``foreign``: per method, the share of the hard / of
    all points whose 2-D neighbours are mostly of another class. ``pca_variance_kept``: % of the pixel
    variance in the PCA map.
    """

    methods: pd.DataFrame
    overlaps: pd.DataFrame
    own_class: pd.DataFrame
    embeddings: dict[str, np.ndarray]
    fractions: dict[str, np.ndarray]
    ink: np.ndarray
    images: np.ndarray
    y: np.ndarray
    indices: np.ndarray
    space: str
    space_name: str
    classes: list[str]
    hard: np.ndarray
    pred: np.ndarray
    k: int
    t_reduce: float
    ink_rho: dict[str, float] = field(default_factory=dict)
    foreign: dict[str, tuple[float, float]] = field(default_factory=dict)
    pca_variance_kept: float | None = None
    _main = "methods"

    @property
    def hard_label(self) -> str:
        return f"misclassified by {self.k}-NN in {self.space_name}"

    def hover(self) -> list[str]:
        """Per point the hover note of the interactive maps (the k-NN prediction where it is wrong)."""
        return [
            f"{self.k}-NN in {self.space_name} predicts {self.classes[p]}" if p != t else ""
            for p, t in zip(self.pred, self.y)
        ]

    def plot(self, ax=None):
        """Every map side by side, coloured by class, hard points black-edged. Returns the Figure."""
        from digitlab.embed import plot_embeddings

        return plot_embeddings(
            self.embeddings,
            self.y,
            self.classes,
            {m: LABELS[m] for m in self.embeddings},
            self.hard,
            self.hard_label,
            ax=ax,
        )

    def plot_map(self, method: str, title: str = "", ax=None):
        """One method's map. Returns the Figure."""
        from digitlab.embed import plot_embedding

        return plot_embedding(
            self.embeddings[method], self.y, self.classes, title, self.hard, self.hard_label, ax=ax
        )

    def interactive_html(self, method: str, title: str, n_points: int, seed: int = 0) -> str:
        """The map as an interactive HTML fragment (a stratified sample of ``n_points`` with image thumbnails)."""
        from digitlab.embed import interactive_embedding_html

        return interactive_embedding_html(
            self.embeddings[method],
            self.y,
            self.images,
            self.classes,
            self.indices,
            title,
            n_points,
            seed,
            self.hover(),
            div_id=f"embed-{method}",
        )


def embedding_study(
    data: Any,
    methods: Sequence[str] = ("pca", "tsne", "umap"),
    *,
    n_points: int | str = 10000,
    pca_dims: int = 50,
    perplexity: float = 30.0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    k: int = 10,
    quality_points: int = 3000,
    top_pairs: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool = False,
    log: Any = None,
) -> EmbeddingStudy:
    """Embed ``n_points`` stratified training images (``"all"``: every train + test image) with each of
    ``methods``; t-SNE (``perplexity``) and UMAP (``n_neighbors``, ``min_dist``) run on the first
    ``pca_dims`` principal components of pixels / 255 (0 = raw pixels), PCA on the pixels. ``k``: neighbours
    of the 2-D k-NN accuracy, trustworthiness (on ``quality_points`` seeded points) and class overlap."""
    from digitlab import embed as E
    from digitlab.runtime import progress_bar

    d = as_data(data)
    images, y, indices, space = select_points(d, n_points, seed)
    x = E.to_features(images)
    n, nc = len(y), d.n_classes
    t0 = time.perf_counter()
    reduced = E.pca_reduce(x, pca_dims, seed) if pca_dims and x.shape[1] > pca_dims else x
    t_reduce = time.perf_counter() - t0
    pred = hard_samples(reduced, y, k, seed)
    hard = np.flatnonzero(pred != y)
    space_name = f"{reduced.shape[1]}-D PCA space" if reduced is not x else "pixel space"
    params = {
        "pca": {},
        "tsne": {"perplexity": perplexity},
        "umap": {"n_neighbors": n_neighbors, "min_dist": min_dist},
    }
    embs, rows, fractions = {}, [], {}
    with progress_bar(progress, f"embed {n:,} points", len(methods)) as step:
        for m in methods:
            step(0, description=f"embed: {LABELS[m]} of {n:,} points")
            t0 = time.perf_counter()
            embs[m] = E.embed(
                x if m == "pca" else reduced, m, seed=seed, n_jobs=n_jobs, pca_dims=0, **params[m]
            )
            secs = time.perf_counter() - t0
            if log is not None:
                log.info("embed: %s of %d points in %.1f s", m, n, secs)
            secs += t_reduce if m != "pca" else 0.0  # t-SNE and UMAP pay for the shared PCA step too
            q = E.embedding_quality(x, embs[m], y, k=k, seed=seed, trust_points=quality_points)
            rows.append(
                {
                    "method": LABELS[m],
                    "points": n,
                    "k-NN accuracy (2-D)": round(q["knn_accuracy"], 4),
                    "trustworthiness": round(q["trustworthiness"], 4),
                    "silhouette": round(q["silhouette"], 4),
                    "seconds": round(secs, 2),
                }
            )
            fractions[m] = E.neighbour_class_fractions(embs[m], y, k, nc)
            step()
    ink = mean_image_overlap(images, y, nc)
    overlaps = [
        {"method": LABELS[m], **r, "mean-image overlap %": round(100 * float(ink[r["a"], r["b"]]), 1)}
        for m in methods
        for r in E.overlapping_pairs(fractions[m], d.classes, top_pairs)
    ]
    own = [
        {"class": d.classes[c], **{LABELS[m]: round(100 * float(fractions[m][c, c]), 1) for m in methods}}
        for c in range(nc)
    ]
    iu = np.triu_indices(nc, 1)
    ink_rho = {m: spearman((f[iu] + f.T[iu]) / 2, ink[iu]) for m, f in fractions.items()}
    foreign = {}
    if len(hard):
        for m, emb in embs.items():
            f = foreign_neighbourhood(emb, y, k)
            foreign[m] = (float(f[hard].mean()), float(f.mean()))
    kept = float(100 * embs["pca"].var(0).sum() / x.var(0).sum()) if "pca" in embs else None
    return EmbeddingStudy(
        pd.DataFrame(rows, columns=METHOD_COLUMNS),
        pd.DataFrame(overlaps),
        pd.DataFrame(own),
        embs,
        fractions,
        ink,
        images,
        y,
        indices,
        space,
        space_name,
        list(d.classes),
        hard,
        pred,
        k,
        t_reduce,
        ink_rho,
        foreign,
        kept,
    )


__all__ = [
    "embedding_study",
    "EmbeddingStudy",
    "LABELS",
    "select_points",
    "hard_samples",
    "mean_image_overlap",
    "spearman",
    "foreign_neighbourhood",
]
