"""Hand-crafted image statistics and which of them tell the classes apart.

:func:`feature_study` extracts the features of :mod:`digitlab.features` (of every image, timed, or of the
subsets only), scores each against the label (ANOVA F, mutual information), finds the class pair each
separates best (pairwise ROC-AUC) and fits classifiers on the features, the top-k features and raw
pixels of the same train/test images.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from digitlab.exceptions import ConfigError
from digitlab.experiments.base import StudyResult, as_data


def plot_features(scores: Sequence[dict], n: int) -> list[str]:
    """The top ``n`` features by F and by MI, interleaved (F1, MI1, F2, MI2, ...) without repeats."""
    by_f = [r["feature"] for r in sorted(scores, key=lambda r: r["rank_F"])]
    by_mi = [r["feature"] for r in sorted(scores, key=lambda r: r["rank_MI"])]
    out: list[str] = []
    for pair in zip(by_f, by_mi):
        for name in pair:
            if name not in out and len(out) < n:
                out.append(name)
    return out


@dataclass
class FeatureStudy(StudyResult):
    """Features scored against the label and classifiers on features vs pixels.

    ``scores``: one row per feature (in extraction order) with ``F``, ``p_value``, ``MI``, ``rank_F``,
    ``rank_MI``, its best-separated pair (``best_pair``, ``pair_auc`` = max(AUC, 1 - AUC), ``higher``: the
    class with larger values) and ``mean_pair_auc``. ``accuracy``: test accuracy per classifier and input
    ("all features", "top-k features", "raw pixels"). ``class_means``: per-class mean of the ``shown``
    features (the top ones by F and MI, interleaved). ``X_train`` / ``y_train``: the training features.
    ``auc``: pairwise ROC-AUC, ``(features, C, C)``. ``mean_images`` / ``var_images``: per-class mean and
    variance image over all training images. ``timing``: images, seconds and images per second of the
    extraction; ``step_seconds``: per step.
    """

    scores: pd.DataFrame
    accuracy: pd.DataFrame
    class_means: pd.DataFrame
    names: list[str]
    classes: list[str]
    shown: list[str]
    X_train: np.ndarray
    y_train: np.ndarray
    auc: np.ndarray
    mean_images: np.ndarray
    var_images: np.ndarray
    timing: dict[str, float]
    step_seconds: dict[str, float] = field(default_factory=dict)
    n_test: int = 0
    _main = "scores"

    def class_mean(self, feature: str) -> dict[str, float]:
        """Mean of ``feature`` over the training images of each class (classes without images left out)."""
        col = self.X_train[:, self.names.index(feature)]
        return {
            c: float(col[self.y_train == i].mean())
            for i, c in enumerate(self.classes)
            if np.any(self.y_train == i)
        }

    def plot(self, ax=None):
        """ANOVA F (log scale) and mutual information per feature, sorted by F. Returns the Figure."""
        from digitlab.features import plot_feature_scores

        return plot_feature_scores(self.scores.to_dict("records"), ax=ax)

    plot_scores = plot

    def plot_class_means(self, ax=None):
        """Per-class mean image (top) and pixel variance (bottom). Returns the Figure."""
        from digitlab.features import plot_class_mean_images

        return plot_class_mean_images(self.mean_images, self.var_images, self.classes, ax=ax)

    def plot_distributions(self, ax=None):
        """Per-class distributions of the shown features. Returns the Figure."""
        from digitlab.features import plot_feature_distributions

        return plot_feature_distributions(
            self.X_train, self.y_train, self.names, self.shown, self.classes, ax=ax
        )

    def plot_pair_separation(self, n: int = 4, ax=None):
        """How well each of the first ``n`` shown features separates every class pair. Returns the Figure."""
        from digitlab.features import plot_pairwise_auc

        return plot_pairwise_auc(self.auc, self.names, self.shown[:n], self.classes, ax=ax)


def feature_study(
    data: Any,
    *,
    n_train: int = 0,
    n_test: int = 0,
    extract_all: bool = False,
    threshold: int = 128,
    zoning: int = 4,
    top_k: int = 8,
    rank_by: str = "F",
    n_plot: int = 6,
    classifiers: Sequence[str] = ("logreg", "rf"),
    rf_trees: int = 100,
    max_iter: int = 300,
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool = False,
) -> FeatureStudy:
    """Extract, score and classify the hand-crafted features of greyscale images.

    ``n_train`` / ``n_test``: stratified subsets drawn with ``seed`` (0 = all). ``extract_all``: extract
    (and time) the features of every image, not only of the subsets. ``threshold``: fixed binarisation
    (ink >= threshold); ``zoning``: zoning x zoning cells. ``top_k`` features ranked by ``rank_by`` ("F" or
    "MI") feed the top-k classifiers; ``n_plot`` features are shown. ``classifiers``: of logreg, rf, knn.
    """
    from digitlab.data.subsets import subset_indices
    from digitlab.features import (
        CLASSIFIERS,
        class_mean_images,
        describe_feature,
        extract_features,
        feature_scores,
        feature_vs_pixel_accuracy,
        pairwise_auc,
        pairwise_separation,
    )

    if rank_by not in ("F", "MI"):
        raise ConfigError(f'rank_by: {rank_by!r} unknown; use "F" or "MI"')
    unknown = [c for c in classifiers if c not in CLASSIFIERS]
    if unknown or not classifiers:
        raise ConfigError(f"classifiers: {unknown or 'empty list'}; choose from {', '.join(CLASSIFIERS)}")
    d = as_data(data)
    tr, te = subset_indices(d.y_train, n_train, seed), subset_indices(d.y_test, n_test, seed)
    ytr, yte = d.y_train[tr], d.y_test[te]
    steps: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        steps[step] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()

    t0 = time.perf_counter()
    if extract_all:
        Xa, names = extract_features(d.x_train, threshold, zoning)
        Xb, _ = extract_features(d.x_test, threshold, zoning)
        Xtr, Xte, n = Xa[tr], Xb[te], len(Xa) + len(Xb)
    else:
        Xtr, names = extract_features(d.x_train[tr], threshold, zoning)
        Xte, _ = extract_features(d.x_test[te], threshold, zoning)
        n = len(Xtr) + len(Xte)
    secs = time.perf_counter() - t0
    timing = {"n_images": n, "seconds": secs, "images_per_second": n / max(secs, 1e-9)}
    lap("extract")
    scores = feature_scores(Xtr, ytr, names, seed=seed, n_jobs=n_jobs)
    auc = pairwise_auc(Xtr, ytr, d.n_classes)
    sep = {r["feature"]: r for r in pairwise_separation(Xtr, ytr, names, d.classes, auc=auc)}
    rank_key = "rank_F" if rank_by == "F" else "rank_MI"
    top_idx = [names.index(r["feature"]) for r in sorted(scores, key=lambda r: r[rank_key])[:top_k]]
    lap("scores")
    acc = feature_vs_pixel_accuracy(
        Xtr,
        ytr,
        Xte,
        yte,
        d.x_train[tr],
        d.x_test[te],
        top_idx,
        classifiers,
        seed=seed,
        n_jobs=n_jobs,
        rf_trees=rf_trees,
        max_iter=max_iter,
        progress=progress,
    )
    lap("classifiers")
    shown = plot_features(scores, n_plot)
    means, variances = class_mean_images(d.x_train, d.y_train, d.n_classes)
    table = pd.DataFrame(
        [
            {
                "feature": r["feature"],
                "description": describe_feature(r["feature"]),
                "F": r["F"],
                "p_value": r["p_value"],
                "MI": r["MI"],
                "rank_F": r["rank_F"],
                "rank_MI": r["rank_MI"],
                "best_pair": sep[r["feature"]]["best_pair"],
                "pair_auc": sep[r["feature"]]["auc"],
                "higher": sep[r["feature"]]["higher"],
                "mean_pair_auc": sep[r["feature"]]["mean_pair_auc"],
            }
            for r in scores
        ]
    )
    class_means = pd.DataFrame(
        [
            {"feature": feat}
            | {
                c: round(float(Xtr[ytr == i, names.index(feat)].mean()), 3) if np.any(ytr == i) else None
                for i, c in enumerate(d.classes)
            }
            for feat in shown
        ]
    )
    return FeatureStudy(
        table,
        pd.DataFrame(acc),
        class_means,
        list(names),
        list(d.classes),
        shown,
        Xtr,
        ytr,
        auc,
        means,
        variances,
        timing,
        steps,
        len(yte),
    )


__all__ = ["feature_study", "FeatureStudy", "plot_features"]
