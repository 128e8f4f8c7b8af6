"""Exact, seeded, stratified subsets shared by every task that needs fewer images."""

from __future__ import annotations

import numpy as np

from digitlab.exceptions import ConfigError


def stratified_subset(
    y: np.ndarray, per_class: int | None = None, total: int | None = None, seed: int = 0
) -> np.ndarray:
    """Indices of an exact stratified sample of labels ``y``.

    Give ``per_class`` (exactly that many of each class) or ``total`` (split as evenly as the
    class proportions allow: the largest-remainder method, so counts sum exactly to ``total``).
    Indices are returned sorted; the same seed gives the same subset.
    """
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if (per_class is None) == (total is None):
        raise ConfigError("stratified_subset: give exactly one of per_class or total")
    if total is not None:
        if total <= 0 or total > len(y):
            raise ConfigError(f"subset size {total}: must be between 1 and {len(y)}; lower the size")
        if total == len(y):
            return np.arange(len(y))
        quota = counts / counts.sum() * total
        take = np.floor(quota).astype(int)
        rest = total - take.sum()
        order = np.argsort(-(quota - take), kind="stable")
        take[order[:rest]] += 1
    else:
        if per_class <= 0 or per_class > counts.min():
            raise ConfigError(
                f"per_class {per_class}: must be between 1 and {counts.min()} (smallest class); lower it"
            )
        take = np.full(len(classes), per_class)
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picked))


def subset_indices(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` images of labels ``y``: all of them when ``n`` is 0 or at least ``len(y)``,
    otherwise an exact stratified subset drawn with ``seed`` (sorted)."""
    if n <= 0 or n >= len(y):
        return np.arange(len(y))
    return stratified_subset(y, total=int(n), seed=seed)
