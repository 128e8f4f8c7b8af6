"""Augmentation: which transformations keep the label, how they move the data, what they do to a CNN.

Three experiments over :mod:`digitlab.augment`'s catalogue:

* :func:`augmentation_catalogue`: the transforms compared, with their default parameters;
* :func:`augmentation_shift`: per augmentation a domain-classifier AUC, an RBF MMD and the k-NN
  label consistency of augmented images among clean ones, plus a shared 2-D embedding;
* :func:`augmentation_effect`: the same CNN trained without and with each augmentation, scored on the
  clean test images, on a corruption suite (each augmentation applied with p=1) and (the model trained
  without augmentation) on mirrored and 180-degree-rotated test images: how flips change labels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from digitlab.exceptions import ConfigError
from digitlab.experiments.base import StudyResult, as_data
from digitlab.plots import panels, single

# transform label -> (catalogue name, params): exact, label-changing candidates scored on the reference model
FLIP_TRANSFORMS: dict[str, tuple[str, dict]] = {
    "hflip": ("hflip", {"p": 1.0}),
    "vflip": ("vflip", {"p": 1.0}),
    "rot180": ("rotate_large", {"p": 1.0, "degrees": 180.0, "exact": True}),
}
SWAP_AUGMENTATIONS = (
    "rotate_large",
    "vflip",
    "hflip",
    "rotate_small",
)  # trained models checked for pair swaps


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


# =============================================================================================
# The catalogue
# =============================================================================================


def augmentation_catalogue(augmentations: Sequence[str]) -> pd.DataFrame:
    """One row per augmentation: its description, default probability and other default parameters."""
    from digitlab.augment import AUGMENTATIONS

    return pd.DataFrame(
        [
            {
                "augmentation": n,
                "description": AUGMENTATIONS[n].description,
                "default_p": AUGMENTATIONS[n].defaults["p"],
                "parameters": ", ".join(f"{k}={v}" for k, v in AUGMENTATIONS[n].defaults.items() if k != "p")
                or "-",
            }
            for n in augmentations
        ]
    )


# =============================================================================================
# Distribution shift
# =============================================================================================


@dataclass
class AugmentationShift(StudyResult):
    """How far each augmentation moves the images (identity first: the null).

    ``shift``: one row per augmentation with ``domain_auc``, ``mmd2``, ``knn_consistency``,
    ``knn_consistency_clean`` and ``mean_abs_pixel_change``. ``clean_2d`` / ``augmented_2d``: a shared
    2-D embedding of ``embed_n`` clean test images and of their augmented versions, labelled ``embed_y``.
    """

    shift: pd.DataFrame
    clean_2d: np.ndarray
    augmented_2d: dict[str, np.ndarray]
    embed_y: np.ndarray
    method: str
    _main = "shift"

    def plot(self, ax=None):
        """Domain AUC (x) against k-NN label consistency (y): where each augmentation lands. Returns the Figure."""
        fig, ax = single(ax, (6.2, 4.4))
        rows = self.shift.to_dict("records")
        for r in rows:
            ax.scatter(
                r["domain_auc"],
                r["knn_consistency"],
                s=18,
                color="tab:blue" if r["augmentation"] != "identity" else "k",
            )
            ax.annotate(
                r["augmentation"],
                (r["domain_auc"], r["knn_consistency"]),
                fontsize=7,
                xytext=(3, 2),
                textcoords="offset points",
            )
        base = next((r["knn_consistency_clean"] for r in rows if r["augmentation"] == "identity"), None)
        if base is not None:
            ax.axhline(base, color="0.5", ls="--", lw=0.8, label="clean k-NN consistency")
        ax.axvline(0.5, color="0.5", ls=":", lw=0.8, label="AUC 0.5 (indistinguishable)")
        ax.set_xlabel("domain-classifier ROC-AUC (clean vs augmented)")
        ax.set_ylabel("k-NN label consistency among clean images")
        ax.legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        return fig

    plot_map = plot

    def plot_embedding(self, ax=None):
        """Small multiples: clean images in grey, each augmentation's coloured by class. Returns the Figure."""
        from digitlab.augment import plot_shift_embedding

        stats = {r["augmentation"]: r for r in self.shift.to_dict("records")}
        return plot_shift_embedding(self.clean_2d, self.augmented_2d, self.embed_y, stats=stats, ax=ax)


def augmentation_shift(
    data: Any,
    augmentations: Sequence[str],
    *,
    n: int = 1000,
    embed_n: int = 200,
    method: str = "pca",
    seed: int = 0,
    n_jobs: int = 1,
) -> AugmentationShift:
    """Distribution shift of each augmentation (p=1) on ``n`` training images (half clean, half augmented),
    with identity as the null, and a shared 2-D ``method`` embedding ("pca" | "tsne" | "umap") of ``embed_n``
    stratified test images, clean and under every augmentation."""
    from digitlab.augment import distribution_shift, shift_embedding
    from digitlab.data.subsets import subset_indices

    d = as_data(data)
    names = list(augmentations)
    rows = []
    for name in ["identity"] + names:
        r = distribution_shift(d.x_train, d.y_train, name, seed=seed, n=n, n_jobs=n_jobs)
        rows.append({k: v for k, v in r.items() if k != "mmd_bandwidth"})
    idx = subset_indices(d.y_test, embed_n, seed)
    clean_2d, aug_2d = shift_embedding(d.x_test[idx], names, seed=seed, method=method, n_jobs=n_jobs)
    return AugmentationShift(pd.DataFrame(rows), clean_2d, aug_2d, d.y_test[idx], method)


# =============================================================================================
# Effect on a CNN (clean, corrupted, flipped test images)
# =============================================================================================


def _aug_point(
    point: dict,
    seed: int,
    threads: int,
    x_tr,
    y_tr,
    x_eval,
    x_ref_extra,
    recipe: tuple,
    base: dict,
    p: float,
    device: str,
    n_classes: int,
    reference_seed: int,
) -> dict[str, Any]:
    """One job of :func:`augmentation_effect`: the recipe trained with one augmentation, predicting the clean
    + corrupted images ``x_eval`` (the reference model, "none" with the first seed, also ``x_ref_extra``)."""
    from digitlab.augment import get_augmentation
    from digitlab.grid import fit_and_score

    net, net_params, tc = recipe
    cfg = dataclasses.replace(tc, **{**base, "augment": "", "device": device})
    name = point["augmentation"]
    augment = None if name == "none" else get_augmentation(name, p=p)
    reference = name == "none" and seed == reference_seed and len(x_ref_extra)
    x = np.concatenate([x_eval, x_ref_extra]) if reference else x_eval
    res = fit_and_score(
        net, net_params, x_tr, y_tr, {"all": (x, None)}, cfg, seed=seed, augment=augment, n_classes=n_classes
    )
    return {
        "pred": res["all_pred"],
        "train_seconds": res["train_seconds"],
        "steps": res["steps"],
        "best_epoch": res["best_epoch"],
    }


def flip_confusions(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Row-normalised confusion matrix: fraction of true class i predicted as j."""
    cm = np.zeros((n_classes, n_classes))
    np.add.at(cm, (y, pred), 1)
    return cm / np.maximum(cm.sum(1, keepdims=True), 1)


def top_confusions(cm: np.ndarray, classes: Sequence[str], k: int = 3) -> list[tuple[str, str, float]]:
    """The ``k`` largest off-diagonal fractions as (true, predicted, fraction of the true class)."""
    off = cm.copy()
    np.fill_diagonal(off, -1)
    flat = np.argsort(off, axis=None)[::-1][:k]
    return [(classes[i], classes[j], float(off[i, j])) for i, j in zip(*np.unravel_index(flat, cm.shape))]


def swap_pair(meta: Mapping, classes: Sequence[str]) -> tuple[str, str] | None:
    """The class pair a 180-degree rotation swaps, from the dataset's metadata (6/9 for digits)."""
    for a, b in meta.get("label_swaps_under_rotation", []):
        if a in classes and b in classes:
            return a, b
    return None


def _flip_tables(cms: dict[str, np.ndarray], classes: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    per_transform, per_class = [], []
    for name, cm in cms.items():
        row = {"transform": name, "label_kept": float(np.mean(np.diag(cm)))}
        for i, (t, p, f) in enumerate(top_confusions(cm, classes), 1):
            row[f"confusion_{i}"] = f"{t} -> {p} ({_pct(f)})"
        per_transform.append(row)
    for c, label in enumerate(classes):
        row = {"class": label}
        for name, cm in cms.items():
            other = cm[c].copy()
            other[c] = -1
            row[f"{name}_kept"] = float(cm[c, c])
            row[f"{name}_most_often"] = f"{classes[int(other.argmax())]} ({_pct(float(other.max()))})"
        per_class.append(row)
    return pd.DataFrame(per_transform), pd.DataFrame(per_class)


@dataclass
class AugmentationEffect(StudyResult):
    """A CNN trained without and with each augmentation, scored on clean and corrupted test images.

    ``runs``: one row per training augmentation and seed with the accuracy on the clean test images
    (``clean``) and on each corrupted copy (one column per corruption, named after it),
    ``mean_corrupted``, training seconds and best epoch. ``summary``: mean over seeds per training
    augmentation, the clean accuracy's seed SD, the changes against training without augmentation
    (``delta_clean``, ``delta_corrupted``) and the verdict on the clean change (``noise``: the larger of the
    seed-based standard error of the difference and the binomial one of one accuracy; ``verdict``: helps /
    hurts beyond twice it, else within noise). ``matrix``: mean accuracy, training augmentation (rows) x test
    condition (columns). ``flip_cms``: per flip transform, the row-normalised confusion matrix of the model
    trained without augmentation (first seed); ``flips`` / ``flip_per_class`` tabulate them. ``swaps``: per
    training augmentation (first seed) the clean test images confused within the pair a 180-degree rotation
    swaps (empty when the data has none). ``predictions``: the clean-test predictions per (augmentation, seed).
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    matrix: pd.DataFrame
    corruptions: list[str]
    flips: pd.DataFrame = field(default_factory=pd.DataFrame)
    flip_per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    flip_cms: dict[str, np.ndarray] = field(default_factory=dict)
    swaps: dict[str, int] = field(default_factory=dict)
    swap_pair: tuple[str, str] | None = None
    predictions: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    n_train: int = 0
    n_test: int = 0
    n_test_corrupt: int = 0
    train_config: Any = None

    def plot(self, ax=None):
        """Clean and mean corrupted test accuracy (%) per training augmentation, as paired bars. Returns the Figure."""
        fig, ax = single(ax, (6.5, 0.45 * len(self.summary) + 1.4))
        s = self.summary.iloc[::-1]
        y = np.arange(len(s))
        ax.barh(y + 0.2, 100 * s["clean"], height=0.4, color="tab:blue", label="clean test images")
        if self.corruptions:
            ax.barh(
                y - 0.2, 100 * s["mean_corrupted"], height=0.4, color="tab:orange", label="corrupted (mean)"
            )
        ax.set_yticks(y, list(s.index))
        lo = (
            100 * float(np.nanmin(s[["clean", "mean_corrupted"]].to_numpy()))
            if self.corruptions
            else 100 * float(s["clean"].min())
        )
        ax.set_xlim(max(0.0, lo - 5), 100)
        ax.set(xlabel="test accuracy (%)", ylabel="trained with")
        ax.legend(fontsize=8, loc="lower left")
        return fig

    def plot_matrix(self, ax=None):
        """Mean accuracy (%) per training augmentation (rows) and test condition (columns). Returns the Figure."""
        fig, ax = single(ax, (0.55 * self.matrix.shape[1] + 2.5, 0.33 * self.matrix.shape[0] + 1.6))
        m = 100 * self.matrix.to_numpy(dtype=float)
        im = ax.imshow(m, cmap="viridis", vmin=max(0.0, float(m.min())), vmax=100, aspect="auto")
        ax.set_xticks(range(m.shape[1]), list(self.matrix.columns), rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(m.shape[0]), list(self.matrix.index), fontsize=7)
        ax.set_xlabel("test set (corruption applied with p=1)")
        ax.set_ylabel("training augmentation")
        thresh = (m.min() + 100) / 2
        for i, j in np.ndindex(m.shape):
            ax.text(
                j,
                i,
                f"{m[i, j]:.0f}",
                ha="center",
                va="center",
                fontsize=6,
                color="w" if m[i, j] < thresh else "k",
            )
        fig.colorbar(im, ax=ax, label="accuracy (%)", shrink=0.8)
        fig.tight_layout()
        return fig

    def plot_clean_delta(self, ax=None):
        """Change of clean test accuracy against 'none' per training augmentation, +- 2 noise scales. Returns the Figure."""
        rows = self.summary.iloc[1:]
        fig, ax = single(ax, (6.5, 0.28 * len(rows) + 1.2))
        colors = [
            "tab:green" if v == "helps" else "tab:red" if v == "hurts" else "0.6" for v in rows["verdict"]
        ]
        y = np.arange(len(rows))
        ax.barh(
            y,
            100 * rows["delta_clean"].to_numpy(),
            xerr=200 * rows["noise"].to_numpy(),
            color=colors,
            capsize=2,
        )
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, list(rows.index), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("clean test accuracy minus 'none' (percentage points; bars: +-2 noise scales)")
        fig.tight_layout()
        return fig

    def plot_flips(self, ax=None):
        """One row-normalised confusion matrix per flip transform (model trained without augmentation). Returns the Figure."""
        cms, classes = self.flip_cms, self.classes
        fig, axes = panels(ax, 1, max(1, len(cms)), (3.3 * max(1, len(cms)), 3.4))
        for ax_, (name, cm) in zip(axes[0], cms.items()):
            ax_.imshow(cm, cmap="Blues", vmin=0, vmax=1)
            for i, j in np.ndindex(cm.shape):
                if cm[i, j] >= 0.1:
                    ax_.text(
                        j,
                        i,
                        f"{100 * cm[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="w" if cm[i, j] > 0.5 else "k",
                    )
            ax_.set_xticks(range(len(classes)), classes, fontsize=7)
            ax_.set_yticks(range(len(classes)), classes, fontsize=7)
            ax_.set_title(f"{name}: predicted vs true (%)", fontsize=8)
            ax_.set_xlabel("predicted", fontsize=7)
            ax_.set_ylabel("true", fontsize=7)
        fig.tight_layout()
        return fig


def _resolve_recipe(recipe: tuple | str) -> tuple:
    from digitlab.train import FAST_RECIPE, STRONG_RECIPE, TrainConfig

    if isinstance(recipe, str):
        if recipe not in ("fast", "strong"):
            raise ConfigError(
                f"recipe {recipe!r}: unknown; use 'fast', 'strong' or a (net, net_params, TrainConfig) tuple"
            )
        return FAST_RECIPE if recipe == "fast" else STRONG_RECIPE
    net, net_params, tc = recipe
    return net, dict(net_params or {}), TrainConfig(**tc) if isinstance(tc, Mapping) else tc


def _summary(runs: pd.DataFrame, corruptions: list[str], n_test: int) -> pd.DataFrame:
    g = runs.groupby("augmentation", sort=False)
    summary = g[["clean", "mean_corrupted", *corruptions]].mean()
    summary.insert(1, "clean_sd", g["clean"].std().fillna(0.0))
    summary.insert(0, "n_seeds", g.size())
    summary["delta_clean"] = summary["clean"] - summary.loc["none", "clean"]
    summary["delta_corrupted"] = summary["mean_corrupted"] - summary.loc["none", "mean_corrupted"]
    summary["train_seconds"] = g["train_seconds"].mean()
    base = summary.loc["none"]
    se_seed = np.sqrt(summary["clean_sd"] ** 2 / summary["n_seeds"] + base["clean_sd"] ** 2 / base["n_seeds"])
    p = base["clean"]
    noise = np.maximum(se_seed, np.sqrt(p * (1 - p) / max(n_test, 1)))
    d = summary["delta_clean"]
    summary["noise"] = noise
    summary["verdict"] = np.where(d > 2 * noise, "helps", np.where(d < -2 * noise, "hurts", "within noise"))
    summary.loc["none", ["noise", "verdict"]] = [0.0, "baseline"]
    return summary


def augmentation_effect(
    data: Any,
    augmentations: Sequence[str],
    *,
    corruptions: Sequence[str] | None = None,
    p: float = 0.5,
    recipe: tuple | str = "fast",
    base: Mapping[str, Any] | None = None,
    seeds: int | Sequence[int] = 1,
    n_train: int = 0,
    n_test: int = 0,
    n_test_corrupt: int = 0,
    seed: int = 0,
    corruption_seed: int | None = None,
    flips: Mapping[str, tuple[str, dict]] | None = None,
    n_jobs: int = 1,
    device: str = "auto",
    progress: bool = False,
    backend: str = "loky",
) -> AugmentationEffect:
    """How training with each augmentation changes a CNN's accuracy on clean, corrupted and flipped images.

    One CNN of ``recipe`` ("fast", "strong" or ``(net, net_params, TrainConfig or its fields)``) is trained
    without augmentation (``"none"``) and one with each name of ``augmentations`` (:mod:`digitlab.augment`'s
    catalogue, each sample transformed with probability ``p``), per seed; the recipe's own augmentation is
    switched off. All are scored on the clean test images (``n_test``, 0 = all) and on one corrupted copy per
    name of ``corruptions`` (default: the augmentations) of a stratified ``n_test_corrupt`` subset of them
    (0 = all; each corruption applied to every image, ``p = 1``, drawn with ``corruption_seed``, default
    ``seed + 7919``, the same copy for every model). The model without augmentation of the first seed also
    labels the test images under each of ``flips`` (default :data:`FLIP_TRANSFORMS`, drawn with ``seed``; {} = none).
    ``base`` overrides TrainConfig fields of the recipe (e.g. ``{"epochs": 3}``). Jobs run through
    :func:`digitlab.grid.run_grid`.
    """
    from digitlab.augment import augment_images, get_augmentation
    from digitlab.data.subsets import subset_indices
    from digitlab.grid import run_grid

    recipe = _resolve_recipe(recipe)
    names = [a for a in augmentations if a != "none"]
    for a in names:
        get_augmentation(a)  # a ConfigError naming the catalogue for an unknown name, before any training
    corruptions = list(names if corruptions is None else corruptions)
    if len(set(corruptions)) != len(corruptions) or "clean" in corruptions:
        raise ConfigError(
            f"corruptions: {corruptions} repeats a name or uses 'clean'; give each corruption once"
        )
    seeds = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    flips = dict(FLIP_TRANSFORMS if flips is None else flips)
    d = as_data(data, n_train, n_test, seed)
    tc = subset_indices(d.y_test, n_test_corrupt, seed)  # the corruption subset, inside the clean test subset
    cseed = seed + 7919 if corruption_seed is None else corruption_seed
    suite = [augment_images(d.x_test[tc], c, seed=cseed, p=1.0) for c in corruptions]
    flipped = [augment_images(d.x_test, n, seed=seed, **prm) for n, prm in flips.values()]
    x_eval = np.concatenate([d.x_test, *suite])
    x_extra = np.concatenate(flipped) if flipped else d.x_test[:0]
    points = [{"augmentation": a} for a in ["none", *names]]
    rows = run_grid(
        _aug_point,
        points,
        seeds,
        args=(
            d.x_train,
            d.y_train,
            x_eval,
            x_extra,
            recipe,
            dict(base or {}),
            p,
            device,
            d.n_classes,
            seeds[0],
        ),
        n_jobs=n_jobs,
        backend=backend,
        device=device,
        progress=progress,
        description="augmentation effect",
    )
    sizes = [len(d.x_test)] + [len(tc)] * len(corruptions) + [len(d.x_test)] * len(flips)
    y_tc, runs, predictions, ref = d.y_test[tc], [], {}, {}
    for r in rows:
        parts = np.split(
            r["pred"],
            np.cumsum(sizes)[: (len(sizes) if len(r["pred"]) > len(x_eval) else 1 + len(corruptions)) - 1],
        )
        acc = {c: float(np.mean(pr == y_tc)) for c, pr in zip(corruptions, parts[1 : 1 + len(corruptions)])}
        runs.append(
            {
                "augmentation": r["augmentation"],
                "seed": r["seed"],
                "clean": float(np.mean(parts[0] == d.y_test)),
                **acc,
                "mean_corrupted": float(np.mean(list(acc.values()))) if corruptions else math.nan,
                "train_seconds": r["wall_seconds"],
                "steps": r["steps"],
                "best_epoch": r["best_epoch"],
            }
        )
        predictions[(r["augmentation"], r["seed"])] = parts[0]
        if len(parts) > 1 + len(corruptions):
            ref = dict(zip(flips, parts[1 + len(corruptions) :]))
    runs = pd.DataFrame(runs)
    summary = _summary(runs, corruptions, len(d.y_test))
    cms = {k: flip_confusions(d.y_test, pr, d.n_classes) for k, pr in ref.items()}
    flip_table, per_class = _flip_tables(cms, d.classes) if cms else (pd.DataFrame(), pd.DataFrame())
    pair, swaps = swap_pair(d.meta, d.classes), {}
    if pair:
        i, j = d.classes.index(pair[0]), d.classes.index(pair[1])
        for a in ["none"] + [n for n in names if n in SWAP_AUGMENTATIONS]:
            pr = predictions[(a, seeds[0])]
            swaps[a] = int(np.sum((d.y_test == i) & (pr == j)) + np.sum((d.y_test == j) & (pr == i)))
    return AugmentationEffect(
        runs,
        summary,
        summary[["clean", *corruptions]].copy(),
        corruptions,
        flip_table,
        per_class,
        cms,
        swaps,
        pair,
        predictions,
        list(d.classes),
        len(d.y_train),
        len(d.y_test),
        len(tc),
        dataclasses.replace(recipe[2], **{**dict(base or {}), "augment": ""}),
    )


__all__ = [
    "augmentation_catalogue",
    "augmentation_shift",
    "AugmentationShift",
    "augmentation_effect",
    "AugmentationEffect",
    "FLIP_TRANSFORMS",
    "flip_confusions",
    "top_confusions",
    "swap_pair",
]
