"""One or two settings of a CNN recipe x seeds."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from digitlab.exceptions import ConfigError
from digitlab.experiments.base import StudyResult, as_data
from digitlab.plots import single

# =============================================================================================
# CNN sweep
# =============================================================================================


def _split_setting(key: str, train_fields: set[str]) -> str:
    """Where a swept setting goes: "train" (a TrainConfig field), "net" (the network family) or "net_params"."""
    return "train" if key in train_fields else "net" if key == "net" else "net_params"


def _sweep_point(point: dict, seed: int, threads: int, x_tr, y_tr, x_te, y_te, recipe: tuple, base: dict, device: str,
                 n_classes: int) -> dict[str, Any]:
    """One job of :func:`cnn_sweep`: the recipe with ``base`` and ``point`` applied, trained with ``seed``."""
    from digitlab.grid import fit_and_score
    from digitlab.train import TrainConfig

    net, net_params, tc = recipe
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    settings = {**base, **point}
    train = {k: v for k, v in settings.items() if _split_setting(k, train_fields) == "train"}
    net = settings.get("net", net)
    extra = {k: v for k, v in settings.items() if _split_setting(k, train_fields) == "net_params"}
    params = {**(net_params if net == recipe[0] else {}), **extra}
    cfg = dataclasses.replace(tc, **{**train, "device": device})
    res = fit_and_score(net, params, x_tr, y_tr, {"test": (x_te, y_te)}, cfg, seed=seed, n_classes=n_classes)
    return {"test_acc": res["test_acc"], "test_loss": res["test_loss"], "params": res["params"],
            "train_seconds": res["train_seconds"], "epochs_run": res["epochs_run"], "steps": res["steps"],
            "best_epoch": res["best_epoch"], "val_curve": [h["val_acc"] for h in res["history"]]}


@dataclass
class CNNSweep(StudyResult):
    """A CNN recipe with one or two settings varied, every point trained with several seeds.

    ``runs``: one row per point and seed (the settings, ``seed``, test accuracy and loss, parameters,
    training seconds, epochs and optimiser steps run, best epoch); ``summary``: per point the mean,
    SD, min and max over seeds (:func:`digitlab.grid.summarise`). ``settings``: the swept names.
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    settings: list[str]
    curves: dict[tuple, list[list[float]]]

    def plot(self, ax=None):
        """Test accuracy (%) against the first setting (mean +- seed SD, single seeds as dots), one line
        per value of the second setting if there is one. Returns the Figure."""
        fig, ax = single(ax, (6, 4))
        first, second = self.settings[0], (self.settings[1] if len(self.settings) > 1 else None)
        values = list(dict.fromkeys(self.summary[first]))
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        xs = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
        groups = [(None, self.summary)] if second is None else list(self.summary.groupby(second, sort=False))
        for i, (g, sub) in enumerate(groups):
            x = [xs[v] for v in sub[first]]
            ax.errorbar(x, 100 * sub["test_acc_mean"], yerr=100 * sub["test_acc_sd"], fmt="o-" if numeric else "o", capsize=3,
                        color=f"C{i}", label=None if second is None else f"{second} = {g}")
            runs = self.runs if second is None else self.runs[self.runs[second] == g]
            ax.scatter([xs[v] for v in runs[first]], 100 * runs["test_acc"], s=9, color=f"C{i}", alpha=0.5, zorder=3)
        if numeric and min(values) > 0 and max(values) / min(values) >= 10:
            ax.set_xscale("log")
        ax.set_xticks(list(xs.values()), [str(v) for v in values])
        ax.minorticks_off()
        ax.set(xlabel=first, ylabel="test accuracy (%)")
        if second is not None:
            ax.legend(fontsize=8)
        return fig

    def plot_curves(self, ax=None):
        """Validation accuracy per epoch, mean over seeds, one line per point. Returns the Figure."""
        fig, ax = single(ax, (6, 4))
        for i, (key, curves) in enumerate(self.curves.items()):
            n = min(len(c) for c in curves)
            mean = np.nanmean([c[:n] for c in curves], axis=0)
            ax.plot(np.arange(1, n + 1), 100 * mean, "o-", ms=3, color=f"C{i % 10}",
                    label=", ".join(f"{k}={v}" for k, v in zip(self.settings, key)))
        ax.set(xlabel="epoch", ylabel="validation accuracy (%)")
        ax.legend(fontsize=7)
        return fig


def cnn_sweep(data: Any, grid: Mapping[str, Sequence[Any]], *, recipe: tuple | str = "fast", base: Mapping[str, Any] | None = None,
              seeds: int | Sequence[int] = 2, n_train: int = 0, n_test: int = 0, seed: int = 0, n_jobs: int = 1,
              device: str = "auto", progress: bool = False, backend: str = "loky") -> CNNSweep:
    """Train a CNN recipe at every combination of one or two settings, with several seeds.

    Parameters
    ----------
    data : a Dataset or ``(x_train, y_train, x_test, y_test)``; ``n_train`` / ``n_test`` images of it.
    grid : ``{setting: values}`` with one or two settings. A setting is a :class:`~digitlab.train.TrainConfig`
        field (``lr``, ``batch_size``, ``epochs``, ``min_steps``, ``optimizer``, ``scheduler``, ``l1``,
        ``l2``, ``weight_decay``, ``label_smoothing``, ``augment``, ...), ``net`` (the network family of
        :data:`digitlab.models.nets.NET_NAMES`) or a parameter of the network (``n_blocks``, ``width``,
        ``kernel_size``, ``batch_norm``, ``dropout``, ...).
    recipe : ``"fast"``, ``"strong"`` or a recipe tuple ``(net, net_params, TrainConfig)``.
    base : settings applied to every point before the swept ones (e.g. ``{"epochs": 3}``).
    seeds : a count (``seed``, ``seed + 1``, ...) or a list; a seed draws the weights, the batches
        and the validation split.

    Every point x seed is one job of :func:`digitlab.grid.run_grid` (equal points train once)
    and goes through :func:`digitlab.grid.fit_and_score`.
    """
    from digitlab.grid import run_grid, summarise
    from digitlab.train import FAST_RECIPE, STRONG_RECIPE

    if isinstance(recipe, str):
        if recipe not in ("fast", "strong"):
            raise ConfigError(f"recipe {recipe!r}: unknown; use 'fast', 'strong' or a (net, net_params, TrainConfig) tuple")
        recipe = FAST_RECIPE if recipe == "fast" else STRONG_RECIPE
    if not 1 <= len(grid) <= 2 or any(len(v) == 0 for v in grid.values()):
        raise ConfigError(f"grid: {dict(grid)!r}; give one or two settings, each with at least one value, e.g. {{'lr': [0.003, 0.01]}}")
    seeds = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    d = as_data(data, n_train, n_test, seed)
    names = list(grid)
    points = [dict(zip(names, combo)) for combo in itertools.product(*(list(grid[n]) for n in names))]
    rows = run_grid(_sweep_point, points, seeds, args=(d.x_train, d.y_train, d.x_test, d.y_test, recipe, dict(base or {}),
                                                      device, d.n_classes),
                    n_jobs=n_jobs, backend=backend, device=device, progress=progress, description="cnn sweep")
    curves: dict[tuple, list] = {}
    for r in rows:
        curves.setdefault(tuple(r[n] for n in names), []).append(r.pop("val_curve"))
    runs = pd.DataFrame(rows)
    metrics = ["test_acc", "test_loss", "train_seconds", "steps"]
    summary = pd.DataFrame(summarise(rows, by=names, metrics=metrics))
    return CNNSweep(runs, summary, names, curves)
