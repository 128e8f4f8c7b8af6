"""One or two settings of a CNN recipe x seeds."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from digitlab.exceptions import ConfigError
from digitlab.experiments.base import StudyResult, as_data
from digitlab.plots import panels, single

# =============================================================================================
# CNN sweep
# =============================================================================================


def _split_setting(key: str, train_fields: set[str]) -> str:
    """Where a swept setting goes: "train" (a TrainConfig field), "net" (the network family) or "net_params"."""
    return "train" if key in train_fields else "net" if key == "net" else "net_params"


def _sweep_point(
    point: dict,
    seed: int,
    threads: int,
    x_tr,
    y_tr,
    x_te,
    y_te,
    recipe: tuple,
    base: dict,
    device: str,
    n_classes: int,
) -> dict[str, Any]:
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
    return {
        "test_acc": res["test_acc"],
        "test_loss": res["test_loss"],
        "params": res["params"],
        "train_seconds": res["train_seconds"],
        "epochs_run": res["epochs_run"],
        "steps": res["steps"],
        "best_epoch": res["best_epoch"],
        "val_curve": [h["val_acc"] for h in res["history"]],
    }


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
    rows: list[dict] = field(repr=False, default_factory=list)  # one dict per run, with its validation curve
    seeds: list[int] = field(default_factory=list)

    def runs_of(self, point: Mapping[str, Any]) -> list[dict]:
        """The runs (one per seed, in seed order) of the point with exactly these settings."""
        key = dict(point)
        found = {
            r["seed"]: r for r in self.rows if {k: r[k] for k in r if k in self.settings and k in r} == key
        }
        return [found[s] for s in self.seeds]

    def compare(self, points: Mapping[Any, Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One row per labelled point (``{value: settings}``): test accuracy (%) mean, SD, min and max
        over seeds, parameters, mean training seconds, seeds; ``_accs`` (each seed's accuracy, %) and
        ``_curve`` (validation accuracy per epoch, %, mean over seeds) for plotting."""
        rows = []
        for value, point in points.items():
            runs = self.runs_of(point)
            acc = np.array([r["test_acc"] for r in runs]) * 100
            curves = [r["val_curve"] for r in runs]
            n = min(len(c) for c in curves)
            rows.append(
                {
                    "value": value,
                    "test_acc_mean": round(float(acc.mean()), 3),
                    "test_acc_std": round(float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, 3),
                    "test_acc_min": round(float(acc.min()), 3),
                    "test_acc_max": round(float(acc.max()), 3),
                    "params": int(runs[0]["params"]),
                    "train_seconds": round(float(np.mean([r["train_seconds"] for r in runs])), 2),
                    "seeds": len(runs),
                    "_accs": acc.tolist(),
                    "_curve": (np.nanmean([c[:n] for c in curves], axis=0) * 100).tolist(),
                }
            )
        return rows

    def architectures(self, points: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """Every distinct point of ``(label, settings)`` pairs (first label wins): its network,
        parameters and mean test accuracy (%), sorted by parameters."""
        seen: dict[tuple, dict] = {}
        for label, point in points:
            key = tuple(sorted(point.items(), key=lambda kv: kv[0]))
            if key in seen:
                continue
            runs = self.runs_of(point)
            acc = [r["test_acc"] * 100 for r in runs]
            seen[key] = {
                "config": label,
                "net": point.get("net"),
                "params": int(runs[0]["params"]),
                "test_acc_mean": round(float(np.mean(acc)), 3),
            }
        return sorted(seen.values(), key=lambda r: r["params"])

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
            ax.errorbar(
                x,
                100 * sub["test_acc_mean"],
                yerr=100 * sub["test_acc_sd"],
                fmt="o-" if numeric else "o",
                capsize=3,
                color=f"C{i}",
                label=None if second is None else f"{second} = {g}",
            )
            runs = self.runs if second is None else self.runs[self.runs[second] == g]
            ax.scatter(
                [xs[v] for v in runs[first]], 100 * runs["test_acc"], s=9, color=f"C{i}", alpha=0.5, zorder=3
            )
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
            ax.plot(
                np.arange(1, n + 1),
                100 * mean,
                "o-",
                ms=3,
                color=f"C{i % 10}",
                label=", ".join(f"{k}={v}" for k, v in zip(self.settings, key)),
            )
        ax.set(xlabel="epoch", ylabel="validation accuracy (%)")
        ax.legend(fontsize=7)
        return fig


def cnn_sweep(
    data: Any,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    points: Sequence[Mapping[str, Any]] | None = None,
    recipe: tuple | str = "fast",
    base: Mapping[str, Any] | None = None,
    seeds: int | Sequence[int] = 2,
    n_train: int = 0,
    n_test: int = 0,
    seed: int = 0,
    n_jobs: int = 1,
    device: str = "auto",
    progress: bool = False,
    backend: str = "loky",
    threads_per_job: int = 0,
    cache_dir: Any = None,
) -> CNNSweep:
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
    points : instead of ``grid``, the list of points to train, each a ``{setting: value}`` dict (e.g.
        several one-setting sweeps around one base point; equal points train once).
    base : settings applied to every point before the swept ones (e.g. ``{"epochs": 3}``).
    seeds : a count (``seed``, ``seed + 1``, ...) or a list; a seed draws the weights, the batches
        and the validation split.

    Every point x seed is one job of :func:`digitlab.grid.run_grid` (equal points train once)
    and goes through :func:`digitlab.grid.fit_and_score`; ``cache_dir`` stores each as it finishes.
    """
    from digitlab.grid import run_grid, summarise
    from digitlab.train import FAST_RECIPE, STRONG_RECIPE

    if isinstance(recipe, str):
        if recipe not in ("fast", "strong"):
            raise ConfigError(
                f"recipe {recipe!r}: unknown; use 'fast', 'strong' or a (net, net_params, TrainConfig) tuple"
            )
        recipe = FAST_RECIPE if recipe == "fast" else STRONG_RECIPE
    if points is not None:
        unique: list[dict] = []
        for p in points:
            if dict(p) not in unique:  # equal points train once (and give one row per seed)
                unique.append(dict(p))
        points = unique
        names = list(dict.fromkeys(k for p in points for k in p))
        if not points:
            raise ConfigError("points: give at least one point, e.g. [{'lr': 0.01}]")
    else:
        if grid is None or not 1 <= len(grid) <= 2 or any(len(v) == 0 for v in grid.values()):
            raise ConfigError(
                f"grid: {dict(grid or {})!r}; give one or two settings, each with at least one value, e.g. "
                "{'lr': [0.003, 0.01]}"
            )
        names = list(grid)
        points = [dict(zip(names, combo)) for combo in itertools.product(*(list(grid[n]) for n in names))]
    seeds = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    d = as_data(data, n_train, n_test, seed)
    rows = run_grid(
        _sweep_point,
        points,
        seeds,
        args=(d.x_train, d.y_train, d.x_test, d.y_test, recipe, dict(base or {}), device, d.n_classes),
        n_jobs=n_jobs,
        backend=backend,
        device=device,
        threads_per_job=threads_per_job,
        progress=progress,
        description="cnn sweep",
        cache_dir=cache_dir,
    )
    curves: dict[tuple, list] = {}
    for r in rows:
        curves.setdefault(tuple(r.get(n) for n in names), []).append(r["val_curve"])
    runs = pd.DataFrame([{k: v for k, v in r.items() if k != "val_curve"} for r in rows])
    metrics = ["test_acc", "test_loss", "train_seconds", "steps"]
    summary = pd.DataFrame(summarise(rows, by=names, metrics=metrics))
    return CNNSweep(runs, summary, names, curves, rows, seeds)


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of ``x`` and ``y`` (scipy)."""
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(x, float), np.asarray(y, float)).statistic)


def plot_values(rows: list[dict], label: str, log_base: int | None = None, ax=None):
    """One sweep, from :meth:`CNNSweep.compare` rows. Left: test accuracy against the value (mean +-
    seed SD, every seed as a dot); right: validation accuracy per epoch. Returns the Figure."""
    import matplotlib as mpl

    fig, axes = panels(ax, 1, 2, (9.5, 3.3))
    ax, ax2 = axes[0]
    values = [r["value"] for r in rows]
    numeric = log_base is not None or all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    )
    x = np.array(values, float) if numeric else np.arange(len(values))
    mean = np.array([r["test_acc_mean"] for r in rows])
    # Lines join ordered values only; categories (optimisers, schedules, families) get bare markers.
    ax.errorbar(
        x,
        mean,
        yerr=[r["test_acc_std"] for r in rows],
        fmt="o-" if numeric else "o",
        capsize=4,
        color="C0",
        label="mean ± seed std",
    )
    for xi, r in zip(x, rows):
        ax.scatter([xi] * len(r["_accs"]), r["_accs"], s=10, color="0.5", zorder=3)
    if log_base is not None:
        ax.set_xscale("log", base=log_base)
    ax.set_xticks(x, [str(v) for v in values], rotation=30 if not numeric else 0)
    ax.minorticks_off()
    ax.set_xlabel(label)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    colors = mpl.colormaps["viridis"](np.linspace(0, 0.9, len(rows)))
    for color, r in zip(colors, rows):
        ep = np.arange(1, len(r["_curve"]) + 1)
        ax2.plot(ep, r["_curve"], "o-", ms=3, color=color, label=str(r["value"]))
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation accuracy (%)")
    ax2.xaxis.get_major_locator().set_params(integer=True)
    ax2.legend(fontsize=7, title=label, title_fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_params(rows: list[dict], ax=None):
    """Test accuracy against parameter count (log axis), one dot per :meth:`CNNSweep.architectures`
    row. Returns the Figure."""
    fig, ax = single(ax, (6.5, 3.5))
    for i, net in enumerate(sorted({r["net"] for r in rows})):
        sub = [r for r in rows if r["net"] == net]
        ax.scatter([r["params"] for r in sub], [r["test_acc_mean"] for r in sub], label=net, color=f"C{i}")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("mean test accuracy (%)")
    ax.legend(fontsize=8)
    return fig
