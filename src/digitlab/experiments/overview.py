"""The data before any model: sizes, class balance, pixel statistics, duplicates, samples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from digitlab.experiments.base import StudyResult
from digitlab.plots import panels, single


def count_duplicates(ds: Any, seed: int, n: int = 2000) -> dict[str, int]:
    """Test images (a stratified sample of ``n``) that appear byte-identical in the training set."""
    from digitlab.data.subsets import subset_indices

    idx = subset_indices(ds.y_test, n, seed)
    train_hashes = {row.tobytes() for row in ds.x_train.reshape(len(ds.x_train), -1)}
    dups = sum(ds.x_test[i].tobytes() in train_hashes for i in idx)
    return {"checked": len(idx), "duplicates": int(dups)}


@dataclass
class DataOverview(StudyResult):
    """``summary``: the dataset's own summary (sizes, shape, pixel statistics, checksums); ``classes``: per
    class the train and test counts, the training share (%) and the mean pixel of its training images;
    ``imbalance``: largest / smallest training class; ``duplicates``: test images of a sample found
    byte-identical in the training set."""

    summary: dict
    classes: pd.DataFrame
    imbalance: float
    duplicates: dict[str, int]
    dataset: Any = field(repr=False, default=None)
    _main = "classes"

    def plot(self, ax=None):
        """Class shares of the train and test splits. Returns the Figure."""
        ds = self.dataset
        tr, te = self.classes["train"].to_numpy(), self.classes["test"].to_numpy()
        x = np.arange(ds.n_classes)
        fig, ax = single(ax, (7, 3))
        ax.bar(x - 0.2, tr / tr.sum() * 100, 0.4, label=f"train (n={tr.sum():,})")
        ax.bar(x + 0.2, te / te.sum() * 100, 0.4, label=f"test (n={te.sum():,})")
        ax.axhline(100 / ds.n_classes, color="k", lw=0.8, ls="--", label="uniform")
        ax.set_xticks(
            x, ds.classes, rotation=0 if ds.n_classes <= 10 and max(map(len, ds.classes)) < 4 else 30
        )
        ax.set_ylabel("% of split")
        ax.set_ylim(0, max(tr.max() / tr.sum(), te.max() / te.sum()) * 100 * 1.35)
        ax.legend(fontsize=8, ncol=3, loc="upper center")
        return fig

    plot_class_counts = plot

    def plot_samples(self, per_class: int = 10, seed: int = 0, ax=None):
        """One row per class of ``per_class`` random training images (fewer when a class has fewer); greyscale
        images dark ink on white, colour images as they are. Returns the Figure."""
        ds = self.dataset
        side = 0.7 if not ds.is_colour else 1.0  # photographs need more room than digits
        fig, axes = panels(ax, ds.n_classes, per_class, (per_class * side, ds.n_classes * (side + 0.05)))
        rng = np.random.default_rng(seed)
        for c in range(ds.n_classes):
            members = np.flatnonzero(ds.y_train == c)
            idx = rng.choice(members, size=min(per_class, len(members)), replace=False)
            for j in range(per_class):
                a = axes[c, j]
                if j < len(idx):
                    a.imshow(ds.x_train[idx[j]], cmap=None if ds.is_colour else "gray_r", vmin=0, vmax=255)
                a.set_xticks([]), a.set_yticks([])
                for spine in a.spines.values():
                    spine.set_visible(j < len(idx))
                if j == 0:
                    a.set_ylabel(ds.classes[c], rotation=0, ha="right", va="center", fontsize=9)
        fig.subplots_adjust(wspace=0.05, hspace=0.05)
        return fig

    def plot_pixel_histogram(self, ax=None):
        """Pixel intensities (log scale: most pixels are background); one line per channel for colour. Returns the Figure."""
        ds = self.dataset
        fig, ax = single(ax, (7, 2.8))
        if ds.is_colour:
            colours = ["tab:red", "tab:green", "tab:blue", "0.4"]
            for ch in range(ds.channels):
                counts = np.bincount(np.asarray(ds.x_train[..., ch]).ravel(), minlength=256)
                ax.step(
                    np.arange(256),
                    counts,
                    where="mid",
                    color=colours[ch % 4],
                    lw=1,
                    label=("red", "green", "blue", "alpha")[ch] if ds.channels <= 4 else f"channel {ch}",
                )
            ax.legend(fontsize=8)
        else:
            ax.bar(np.arange(256), np.bincount(ds.x_train.ravel(), minlength=256), width=1.0, color="0.3")
        ax.set_yscale("log")
        ax.set_xlabel("pixel intensity (0 = background)")
        ax.set_ylabel("pixels (log)")
        return fig


def data_overview(ds: Any, *, seed: int = 0, duplicate_sample: int = 2000) -> DataOverview:
    """Sizes, class balance, per-class mean pixel and train/test duplicates of a Dataset."""
    s = ds.summary()
    tr, te = np.asarray(s["train_class_counts"]), np.asarray(s["test_class_counts"])
    per_image_mean = ds.x_train.reshape(len(ds.x_train), -1).mean(1)
    rows = [
        {
            "class": ds.classes[c],
            "train": int(tr[c]),
            "test": int(te[c]),
            "train %": round(100 * tr[c] / tr.sum(), 2),
            "mean pixel": round(float(per_image_mean[ds.y_train == c].mean()), 1),
        }
        for c in range(ds.n_classes)
    ]
    return DataOverview(
        s, pd.DataFrame(rows), float(tr.max() / tr.min()), count_duplicates(ds, seed, duplicate_sample), ds
    )


__all__ = ["data_overview", "DataOverview", "count_duplicates"]
