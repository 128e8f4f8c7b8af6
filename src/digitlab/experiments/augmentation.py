"""A CNN trained with each augmentation, scored on clean and corrupted test images."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from digitlab.exceptions import ConfigError
from digitlab.experiments.base import StudyResult, as_data
from digitlab.plots import single

# =============================================================================================
# Augmentation effect
# =============================================================================================


def _aug_point(point: dict, seed: int, threads: int, x_tr, y_tr, eval_sets: dict, recipe: tuple, base: dict, p: float,
               device: str, n_classes: int) -> dict[str, Any]:
    """One job of :func:`augmentation_effect`: the recipe trained with one augmentation, scored on every set."""
    from digitlab.augment import get_augmentation
    from digitlab.grid import fit_and_score

    net, net_params, tc = recipe
    cfg = dataclasses.replace(tc, **{**base, "augment": "", "device": device})
    name = point["augmentation"]
    augment = None if name == "none" else get_augmentation(name, p=p)
    res = fit_and_score(net, net_params, x_tr, y_tr, eval_sets, cfg, seed=seed, augment=augment, n_classes=n_classes)
    return {**{f"{k}_acc": res[f"{k}_acc"] for k in eval_sets}, "train_seconds": res["train_seconds"], "steps": res["steps"]}


@dataclass
class AugmentationEffect(StudyResult):
    """A CNN trained without and with each augmentation, scored on clean and corrupted test images.

    ``runs``: one row per training augmentation and seed with the accuracy on the clean test images
    (``clean``) and on each corrupted copy (one column per corruption, named after it),
    ``mean_corrupted`` and training seconds. ``summary``: mean over seeds per training augmentation,
    the clean accuracy's seed SD, and the changes against training without augmentation
    (``delta_clean``, ``delta_corrupted``). ``matrix``: mean accuracy, training augmentation (rows)
    x test condition (columns).
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    matrix: pd.DataFrame
    corruptions: list[str]

    def plot(self, ax=None):
        """Clean and mean corrupted test accuracy (%) per training augmentation, as paired bars. Returns the Figure."""
        fig, ax = single(ax, (6.5, 0.45 * len(self.summary) + 1.4))
        s = self.summary.iloc[::-1]
        y = np.arange(len(s))
        ax.barh(y + 0.2, 100 * s["clean"], height=0.4, color="tab:blue", label="clean test images")
        if self.corruptions:
            ax.barh(y - 0.2, 100 * s["mean_corrupted"], height=0.4, color="tab:orange", label="corrupted (mean)")
        ax.set_yticks(y, list(s.index))
        lo = 100 * float(np.nanmin(s[["clean", "mean_corrupted"]].to_numpy())) if self.corruptions else 100 * float(s["clean"].min())
        ax.set_xlim(max(0.0, lo - 5), 100)
        ax.set(xlabel="test accuracy (%)", ylabel="trained with")
        ax.legend(fontsize=8, loc="lower left")
        return fig

    def plot_matrix(self, ax=None):
        """Mean accuracy (%) per training augmentation (rows) and test condition (columns). Returns the Figure."""
        fig, ax = single(ax, (0.7 * self.matrix.shape[1] + 2.5, 0.45 * self.matrix.shape[0] + 1.5))
        m = 100 * self.matrix.to_numpy(dtype=float)
        im = ax.imshow(m, cmap="viridis", aspect="auto")
        for i, j in np.ndindex(m.shape):
            ax.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center", fontsize=7, color="white" if m[i, j] < np.nanmean(m) else "black")
        ax.set(xticks=range(m.shape[1]), xticklabels=list(self.matrix.columns), yticks=range(m.shape[0]),
               yticklabels=list(self.matrix.index), xlabel="tested on", ylabel="trained with")
        ax.tick_params(axis="x", rotation=45)
        fig.colorbar(im, ax=ax, fraction=0.04, label="accuracy (%)")
        return fig


def augmentation_effect(data: Any, augmentations: Sequence[str], *, corruptions: Sequence[str] | None = None, p: float = 0.5,
                        recipe: tuple | str = "fast", base: Mapping[str, Any] | None = None, seeds: int | Sequence[int] = 1,
                        n_train: int = 0, n_test: int = 0, seed: int = 0, corruption_seed: int | None = None, n_jobs: int = 1,
                        device: str = "auto", progress: bool = False, backend: str = "loky") -> AugmentationEffect:
    """How training with each augmentation changes a CNN's accuracy on clean and on corrupted images.

    One CNN of ``recipe`` is trained without augmentation (``"none"``) and one with each name of
    ``augmentations`` (:mod:`digitlab.augment`'s catalogue, each sample transformed with probability
    ``p``), per seed; the recipe's own augmentation is switched off. All are scored on the clean test
    images and on one corrupted copy of them per name of ``corruptions`` (default: the
    augmentations; each applied to every test image, ``p = 1``, drawn with ``corruption_seed``,
    default ``seed + 7919``, the same copy for every model). ``base`` overrides TrainConfig fields of
    the recipe (e.g. ``{"epochs": 3}``). Jobs run through :func:`digitlab.grid.run_grid`.
    """
    from digitlab.augment import augment_images, get_augmentation
    from digitlab.grid import run_grid
    from digitlab.train import FAST_RECIPE, STRONG_RECIPE

    if isinstance(recipe, str):
        if recipe not in ("fast", "strong"):
            raise ConfigError(f"recipe {recipe!r}: unknown; use 'fast', 'strong' or a (net, net_params, TrainConfig) tuple")
        recipe = FAST_RECIPE if recipe == "fast" else STRONG_RECIPE
    names = [a for a in augmentations if a != "none"]
    for a in names:
        get_augmentation(a)  # a ConfigError naming the catalogue for an unknown name, before any training
    corruptions = list(names if corruptions is None else corruptions)
    seeds = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    d = as_data(data, n_train, n_test, seed)
    cseed = seed + 7919 if corruption_seed is None else corruption_seed
    eval_sets = {"clean": (d.x_test, d.y_test), **{c: (augment_images(d.x_test, c, seed=cseed, p=1.0), d.y_test) for c in corruptions}}
    if len(eval_sets) != 1 + len(corruptions):
        raise ConfigError(f"corruptions: {corruptions} repeats a name or uses 'clean'; give each corruption once")
    points = [{"augmentation": a} for a in ["none", *names]]
    rows = run_grid(_aug_point, points, seeds, args=(d.x_train, d.y_train, eval_sets, recipe, dict(base or {}), p, device, d.n_classes),
                    n_jobs=n_jobs, backend=backend, device=device, progress=progress, description="augmentation effect")
    runs = pd.DataFrame([{"augmentation": r["augmentation"], "seed": r["seed"], **{k: r[f"{k}_acc"] for k in eval_sets},
                          "mean_corrupted": float(np.mean([r[f"{c}_acc"] for c in corruptions])) if corruptions else math.nan,
                          "train_seconds": r["train_seconds"], "steps": r["steps"]} for r in rows])
    g = runs.groupby("augmentation", sort=False)
    summary = g[["clean", "mean_corrupted", *corruptions]].mean()
    summary.insert(1, "clean_sd", g["clean"].std().fillna(0.0))
    summary.insert(0, "n_seeds", g.size())
    summary["delta_clean"] = summary["clean"] - summary.loc["none", "clean"]
    summary["delta_corrupted"] = summary["mean_corrupted"] - summary.loc["none", "mean_corrupted"]
    summary["train_seconds"] = g["train_seconds"].mean()
    return AugmentationEffect(runs, summary, summary[["clean", *corruptions]].copy(), corruptions)
