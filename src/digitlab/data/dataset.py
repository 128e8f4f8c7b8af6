"""The Dataset every loader returns (uint8 images, integer labels, class names, metadata), its
fingerprint and pixel statistics, and digitlab's cache folder. The loaders and the registry both
import this module; it imports none of them."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Dataset:
    """An image-classification dataset with a train/test split.

    Images are ``uint8`` arrays of shape ``(n, height, width)`` (greyscale) or
    ``(n, height, width, channels)`` (colour, e.g. RGB); they may be memory-mapped arrays
    (image-folder datasets). Labels are ``int64`` in ``0..n_classes-1``. ``meta`` describes
    the dataset for generic prose: ``kind`` ("digits", "clothing", "fundus", "images"),
    ``description``, ``label_swaps_under_rotation`` (pairs of class names that a 180-degree
    rotation turns into each other), ``label_swaps_under_flip``, ``flip_preserves_label``,
    ``ink_on_blank`` (greyscale strokes on an empty background: binarised ink features make
    sense), ``confusable_pairs`` (class pairs that share strokes or shapes).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str = ""
    checksums: dict[str, str] = field(default_factory=dict)  # part -> "ok" / "unverified"
    meta: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels, for greyscale and colour alike."""
        return tuple(self.x_train.shape[1:3])  # type: ignore[return-value]

    @property
    def channels(self) -> int:
        """1 for greyscale ``(n, H, W)`` images, C for colour ``(n, H, W, C)`` images."""
        return 1 if self.x_train.ndim == 3 else int(self.x_train.shape[3])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)``: the shape a network sees per image."""
        return (self.channels, *self.image_shape)  # type: ignore[return-value]

    @property
    def is_colour(self) -> bool:
        return self.x_train.ndim == 4

    def subset(
        self, train_idx: np.ndarray, test_idx: np.ndarray | None = None, name: str | None = None
    ) -> Dataset:
        """A smaller dataset with the given train (and test) indices, e.g. from :func:`stratified_subset`."""
        te = np.arange(len(self.y_test)) if test_idx is None else test_idx
        return Dataset(
            name or f"{self.name}-subset",
            self.x_train[train_idx],
            self.y_train[train_idx],
            self.x_test[te],
            self.y_test[te],
            list(self.classes),
            self.source,
            dict(self.checksums),
            copy.deepcopy(self.meta),
        )

    def fingerprint(self) -> str:
        """A short content hash of the whole dataset (keys the result cache)."""
        h = hashlib.sha256(self.name.encode())
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(str(a.shape).encode())
            for start in range(
                0, max(len(a), 1), _HASH_ROWS
            ):  # in row chunks: memory-mapped arrays stay on disk
                h.update(np.ascontiguousarray(a[start : start + _HASH_ROWS]).data)
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        """Sizes, class counts and pixel statistics (for `data info` and the report)."""
        stats = pixel_stats(self.x_train)
        return {
            "name": self.name,
            "source": self.source,
            "image_shape": list(self.image_shape),
            "channels": self.channels,
            "input_shape": list(self.input_shape),
            "n_train": int(len(self.y_train)),
            "n_test": int(len(self.y_test)),
            "n_classes": self.n_classes,
            "classes": list(self.classes),
            "train_class_counts": np.bincount(self.y_train, minlength=self.n_classes).tolist(),
            "test_class_counts": np.bincount(self.y_test, minlength=self.n_classes).tolist(),
            **stats,
            "checksums": dict(self.checksums),
            "meta": json.loads(json.dumps(self.meta, default=str)),
        }


_HASH_ROWS = 4096  # rows per chunk when hashing or summing images


def pixel_stats(x: np.ndarray) -> dict:
    """Mean, std, min, max and zero fraction of uint8 images (per channel too for colour), in row chunks."""
    n_ch = 1 if x.ndim == 3 else x.shape[3]
    s = np.zeros(n_ch, np.int64)
    ss = np.zeros(n_ch, np.int64)
    zeros, lo, hi = 0, 255, 0
    for start in range(0, len(x), _HASH_ROWS):
        c = np.asarray(x[start : start + _HASH_ROWS]).reshape(-1, n_ch)
        s += c.sum(axis=0, dtype=np.int64)
        ss += (c.astype(np.int64) ** 2).sum(axis=0)
        zeros += int(np.count_nonzero(c == 0))
        if c.size:
            lo, hi = min(lo, int(c.min())), max(hi, int(c.max()))
    n = max(len(x) * int(np.prod(x.shape[1:3])), 1)
    mean_c, sq_c = s / n, ss / n
    mean, sq = s.sum() / (n * n_ch), ss.sum() / (n * n_ch)
    out = {
        "pixel_mean": float(mean),
        "pixel_std": float(np.sqrt(max(sq - mean**2, 0.0))),
        "pixel_min": lo,
        "pixel_max": hi,
        "fraction_zero_pixels": zeros / (n * n_ch),
    }
    if n_ch > 1:
        out["channel_mean"] = [float(m) for m in mean_c]
        out["channel_std"] = [float(np.sqrt(max(v, 0.0))) for v in sq_c - mean_c**2]
    return out


def cache_home() -> Path:
    """digitlab's cache folder outside the project (image-folder caches, numba's compiled UMAP kernels):
    ``$DIGITLAB_HOME``, else ``$XDG_CACHE_HOME/digitlab``, else ``~/.cache/digitlab``."""
    if os.environ.get("DIGITLAB_HOME"):
        return Path(os.environ["DIGITLAB_HOME"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "digitlab"
