"""Task ``overview``: read and inspect the data (sizes, class balance, pixel statistics, samples)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from digitlab.data.dataset import Dataset
from digitlab.data.subsets import subset_indices
from digitlab.exceptions import ConfigError
from digitlab.study.task import Figure, Table, TaskContext, TaskResult, save_png

NAME = "overview"
TITLE = "The data: sizes, class balance, pixel statistics and samples"


@dataclass
class Config:
    samples_per_class: int = 10  # images per class in the sample grid

    def validate(self) -> None:
        if not 1 <= self.samples_per_class <= 30:
            raise ConfigError(f"config key overview.samples_per_class: {self.samples_per_class} out of range; use 1 to 30")


PROFILES: dict[str, dict] = {"quick": {"samples_per_class": 8}, "full": {}}


def plot_sample_grid(ds: Dataset, per_class: int = 10, seed: int = 0) -> plt.Figure:
    """A grid with one row per class and ``per_class`` random training images in each (fewer when
    a class has fewer). Greyscale images are drawn dark ink on white, colour images as they are."""
    side = 0.7 if not ds.is_colour else 1.0  # photographs need more room than digits
    fig, axes = plt.subplots(ds.n_classes, per_class, figsize=(per_class * side, ds.n_classes * (side + 0.05)), squeeze=False)
    rng = np.random.default_rng(seed)
    for c in range(ds.n_classes):
        members = np.flatnonzero(ds.y_train == c)
        idx = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for j in range(per_class):
            ax = axes[c, j]
            if j < len(idx):
                ax.imshow(ds.x_train[idx[j]], cmap=None if ds.is_colour else "gray_r", vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(j < len(idx))
            if j == 0:
                ax.set_ylabel(ds.classes[c], rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def plot_class_counts(ds: Dataset) -> plt.Figure:
    """Bar chart of class counts in the train and test splits."""
    tr = np.bincount(ds.y_train, minlength=ds.n_classes)
    te = np.bincount(ds.y_test, minlength=ds.n_classes)
    x = np.arange(ds.n_classes)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(x - 0.2, tr / tr.sum() * 100, 0.4, label=f"train (n={tr.sum():,})")
    ax.bar(x + 0.2, te / te.sum() * 100, 0.4, label=f"test (n={te.sum():,})")
    ax.axhline(100 / ds.n_classes, color="k", lw=0.8, ls="--", label="uniform")
    ax.set_xticks(x, ds.classes, rotation=0 if ds.n_classes <= 10 and max(map(len, ds.classes)) < 4 else 30)
    ax.set_ylabel("% of split")
    ax.set_ylim(0, max(tr.max() / tr.sum(), te.max() / te.sum()) * 100 * 1.35)
    ax.legend(fontsize=8, ncol=3, loc="upper center")
    return fig


def plot_pixel_histogram(ds: Dataset) -> plt.Figure:
    """Histogram of pixel intensities (log scale: most pixels are background); one line per channel for colour."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    if ds.is_colour:
        colours = ["tab:red", "tab:green", "tab:blue", "0.4"]
        for ch in range(ds.channels):
            counts = np.bincount(np.asarray(ds.x_train[..., ch]).ravel(), minlength=256)
            ax.step(np.arange(256), counts, where="mid", color=colours[ch % 4], lw=1,
                    label=("red", "green", "blue", "alpha")[ch] if ds.channels <= 4 else f"channel {ch}")
        ax.legend(fontsize=8)
    else:
        counts = np.bincount(ds.x_train.ravel(), minlength=256)
        ax.bar(np.arange(256), counts, width=1.0, color="0.3")
    ax.set_yscale("log")
    ax.set_xlabel("pixel intensity (0 = background)")
    ax.set_ylabel("pixels (log)")
    return fig


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    ds = ctx.dataset
    s = ds.summary()
    tr = np.asarray(s["train_class_counts"])
    te = np.asarray(s["test_class_counts"])
    imbalance = tr.max() / tr.min()
    per_image_mean = ds.x_train.reshape(len(ds.x_train), -1).mean(1)
    rows = [{"class": ds.classes[c], "train": int(tr[c]), "test": int(te[c]),
             "train %": round(100 * tr[c] / tr.sum(), 2),
             "mean pixel": round(float(per_image_mean[ds.y_train == c].mean()), 1)} for c in range(ds.n_classes)]
    by_ink = sorted(rows, key=lambda r: r["mean pixel"])
    dup = _count_duplicates(ds, ctx.seed)
    findings = [
        f"{ds.name} has {s['n_train']:,} training and {s['n_test']:,} test images of {s['image_shape'][0]}x{s['image_shape'][1]} pixels in {ds.n_classes} classes.",
        f"The largest training class ({ds.classes[int(tr.argmax())]}, {tr.max():,}) is {imbalance:.2f}x the smallest ({ds.classes[int(tr.argmin())]}, {tr.min():,}): "
        + ("the classes are close to balanced, so accuracy is a fair headline metric here." if imbalance < 1.5 else
           "the classes are imbalanced, so balanced accuracy, macro F1 and per-class recall matter more than accuracy here."),
        f"{100 * s['fraction_zero_pixels']:.1f} % of all training pixels are exactly 0 (background); the mean intensity is {s['pixel_mean']:.1f} of 255 with standard deviation {s['pixel_std']:.1f}.",
        (f"Class {by_ink[0]['class']} uses the least ink (mean pixel {by_ink[0]['mean pixel']}) and class {by_ink[-1]['class']} the most ({by_ink[-1]['mean pixel']}): ink alone already carries some class information."
         if ds.meta.get("ink_on_blank", not ds.is_colour) else
         f"Class {by_ink[0]['class']} has the darkest images on average (mean pixel {by_ink[0]['mean pixel']}, all channels) and class {by_ink[-1]['class']} the brightest ({by_ink[-1]['mean pixel']}); "
         f"the spread of class means ({by_ink[-1]['mean pixel'] - by_ink[0]['mean pixel']:.1f} grey levels) shows how much brightness alone could tell the classes apart."),
        f"Exact duplicate images between the training and test split in a sample of {dup['checked']:,} test images: {dup['duplicates']}.",
    ]
    figs = [
        Figure("samples", save_png(plot_sample_grid(ds, cfg.samples_per_class, ctx.seed), ctx.out_dir, "samples"),
               f"{cfg.samples_per_class} random training images per class."),
        Figure("class_counts", save_png(plot_class_counts(ds), ctx.out_dir, "class_counts"), "Class shares of each split."),
        Figure("pixel_hist", save_png(plot_pixel_histogram(ds), ctx.out_dir, "pixel_hist"), "Distribution of pixel intensities in the training set."),
    ]
    info = [{"property": k, "value": v if isinstance(v, (int, float)) else str(v)}
            for k, v in s.items() if k not in ("train_class_counts", "test_class_counts", "classes")]
    return TaskResult(
        title=TITLE,
        summary="Before modelling anything we read the data and check its size, balance and value range.",
        headline=findings[0] + " " + findings[1],
        findings=findings,
        tables=[Table("dataset", info, "Dataset summary (checksums verified on load)."),
                Table("classes", rows, "Images per class.", ["class", "train", "test", "train %", "mean pixel"])],
        figures=figs,
        metrics={"n_train": s["n_train"], "n_test": s["n_test"], "imbalance_ratio": round(float(imbalance), 3),
                 "duplicates_in_sample": dup["duplicates"]},
    )


def _count_duplicates(ds: Dataset, seed: int, n: int = 2000) -> dict:
    """Count test images (a stratified sample) that appear byte-identical in the training set."""
    idx = subset_indices(ds.y_test, n, seed)
    train_hashes = {row.tobytes() for row in ds.x_train.reshape(len(ds.x_train), -1)}
    dups = sum(ds.x_test[i].tobytes() in train_hashes for i in idx)
    return {"checked": len(idx), "duplicates": int(dups)}
