"""Task ``cnn_sweeps``: how hyper-parameters, depth and architecture change the CNN.

Every sweep varies one setting of a base point (the fast recipe's CNN and training settings, on a
stratified subset of the training images) and keeps everything else fixed. Every point is trained
from scratch with several seeds (the seed draws the initial weights, the shuffling and the
validation split) as an independent joblib job, and is scored on the test images. Points shared by
several sweeps (the base point appears in most) are trained once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from digitlab.exceptions import ConfigError
from digitlab.grid import fit_and_score, run_grid
from digitlab.models.nets import NET_NAMES
from digitlab.study.common import split
from digitlab.study.task import Figure, Table, TaskContext, TaskResult, save_png
from digitlab.train import FAST_RECIPE, OPTIMIZERS, SCHEDULERS, TrainConfig

NAME = "cnn_sweeps"
TITLE = "How hyper-parameters, depth and architecture change the CNN"

_NET, _NET_PARAMS, _CFG = FAST_RECIPE  # the base point of every sweep
SWEEPS = ("lr", "batch_size", "optimizer", "epochs", "scheduler", "depth", "width", "kernel_size", "batch_norm", "family")
# How each sweep's values read in tables and axes.
LABELS = {"lr": "learning rate", "batch_size": "batch size", "optimizer": "optimiser", "epochs": "epochs",
          "scheduler": "lr schedule", "depth": "conv blocks", "width": "width (channels of block 1)",
          "kernel_size": "kernel size", "batch_norm": "batch norm", "family": "architecture"}  # fmt: skip
LOG_AXIS = {"lr", "batch_size", "width"}
ARCH_SWEEPS = ("depth", "width", "kernel_size", "batch_norm", "family")  # sweeps that change the parameter count


# =============================================================================================
# Configuration
# =============================================================================================


@dataclass
class Config:
    """Settings of the sweeps; defaults are the standard profile."""

    sweeps: list[str] = field(default_factory=lambda: list(SWEEPS))  # which sweeps to run, in order
    n_train: int = 10_000  # training images (stratified subset; 0 = all)
    n_test: int = 0  # test images scored (stratified subset; 0 = all)
    n_seeds: int = 3  # seeds per point (the spread in the error bars); standard: 3 since bf16 training left the time
    # The base point (defaults: the fast recipe), changed one setting at a time by the sweeps.
    epochs: int = 2
    batch_size: int = _CFG.batch_size
    lr: float = _CFG.lr
    optimizer: str = _CFG.optimizer
    scheduler: str = _CFG.scheduler
    n_blocks: int = _NET_PARAMS.get("n_blocks", 3)
    width: int = _NET_PARAMS.get("width", 16)
    kernel_size: int = 3
    batch_norm: bool = True
    # The values of each sweep.
    lr_values: list[float] = field(default_factory=lambda: [0.001, 0.003, 0.01, 0.02, 0.05, 0.1])
    batch_size_values: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    # "name" or "name:lr" (each optimiser at a learning rate that suits it); "nesterov" = momentum + Nesterov.
    optimizer_values: list[str] = field(default_factory=lambda: ["sgd:0.1", "momentum:0.05", "nesterov:0.05", "adam", "adamw"])
    epochs_values: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    # ("exponential" is "step" with step_size 1, so it is left out of the default sweep.)
    scheduler_values: list[str] = field(default_factory=lambda: ["none", "step", "cosine", "onecycle", "plateau"])
    depth_values: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6])
    width_values: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    kernel_size_values: list[int] = field(default_factory=lambda: [3, 5, 7])
    batch_norm_values: list[bool] = field(default_factory=lambda: [False, True])
    family_values: list[str] = field(default_factory=lambda: list(NET_NAMES))
    threads_per_job: int = 0  # torch threads per job (0 = cores / jobs)

    def validate(self) -> None:
        """Raise :class:`ConfigError` on an unknown sweep or a bad value."""
        bad = [s for s in self.sweeps if s not in SWEEPS]
        if bad:
            raise ConfigError(f"config key cnn_sweeps.sweeps: unknown sweep(s) {bad}; use some of {list(SWEEPS)}")
        if self.n_seeds < 1 or self.n_train < 0 or self.n_test < 0:
            raise ConfigError("config keys cnn_sweeps.n_seeds/n_train/n_test: must be >= 1 / >= 0 / >= 0")
        for key in ("epochs", "batch_size", "n_blocks", "width", "kernel_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"config key cnn_sweeps.{key}: {getattr(self, key)} must be at least 1")
        if self.lr <= 0 or any(v <= 0 for v in self.lr_values):
            raise ConfigError("config key cnn_sweeps.lr / lr_values: learning rates must be positive, e.g. 0.01")
        for opt in self.optimizer_values:
            if _parse_optimizer(opt)[0] not in OPTIMIZERS:
                raise ConfigError(f"config key cnn_sweeps.optimizer_values: {opt!r} unknown; use name or name:lr with name in "
                                  f"{list(OPTIMIZERS) + ['nesterov']}")  # fmt: skip
        for s in self.scheduler_values + [self.scheduler]:
            if s not in SCHEDULERS:
                raise ConfigError(f"config key cnn_sweeps scheduler {s!r}: unknown; use one of {list(SCHEDULERS)}")
        for f in self.family_values:
            if f not in NET_NAMES:
                raise ConfigError(f"config key cnn_sweeps.family_values: {f!r} unknown; use some of {list(NET_NAMES)}")
        if any(not 1 <= d <= 6 for d in self.depth_values):
            raise ConfigError("config key cnn_sweeps.depth_values: depths must be 1 to 6 conv blocks")


PROFILES: dict[str, dict] = {
    # Quick: batch 64 so that 1,800 images still give ~30 optimiser steps.
    "quick": {"sweeps": ["lr", "depth"], "lr_values": [0.003, 0.03], "depth_values": [1, 3], "n_train": 2000,
              "n_test": 1000, "epochs": 1, "batch_size": 64, "n_seeds": 2},
    "full": {"n_train": 0, "n_test": 0, "n_seeds": 3, "epochs": 3, "epochs_values": [1, 2, 3, 5, 8],
             "lr_values": [0.0003, 0.001, 0.003, 0.01, 0.02, 0.05, 0.1, 0.3], "width_values": [4, 8, 16, 32, 64],
             "batch_size_values": [16, 32, 64, 128, 256, 512, 1024], "kernel_size_values": [3, 5, 7, 9]},
}  # fmt: skip


# =============================================================================================
# Sweep points
# =============================================================================================


def _parse_optimizer(value: str) -> tuple[str, float | None, bool]:
    """``"nesterov:0.05"`` -> ("momentum", 0.05, True); ``"adam"`` -> ("adam", None, False)."""
    name, _, lr = str(value).partition(":")
    nesterov = name == "nesterov"
    return ("momentum" if nesterov else name), (float(lr) if lr else None), nesterov


@dataclass(frozen=True)
class Point:
    """One trained configuration: the network and the training settings (without the seed)."""

    net: str
    net_params: tuple  # sorted (key, value) pairs, hashable so shared points train once
    train: tuple  # sorted (key, value) overrides of TrainConfig


def base_point(cfg: Config) -> tuple[str, dict, dict]:
    """The base network and training overrides every sweep starts from."""
    net_params = dict(_NET_PARAMS, n_blocks=cfg.n_blocks, width=cfg.width, kernel_size=cfg.kernel_size, batch_norm=cfg.batch_norm)
    train = {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "optimizer": cfg.optimizer, "scheduler": cfg.scheduler}
    return _NET, net_params, train


def sweep_point(cfg: Config, sweep: str, value: Any) -> Point:
    """The point of ``sweep`` at ``value``: the base point with one setting changed."""
    net, net_params, train = base_point(cfg)
    if sweep in ("lr", "batch_size", "epochs", "scheduler"):
        train[sweep] = value
    elif sweep == "optimizer":
        name, lr, nesterov = _parse_optimizer(value)
        train.update(optimizer=name, **({"lr": lr} if lr else {}), **({"nesterov": True} if nesterov else {}))
    elif sweep in ("width", "kernel_size", "batch_norm"):
        net_params[sweep] = value
    elif sweep == "depth":
        net_params["n_blocks"] = value
    elif sweep == "family":
        net, net_params = value, ({} if value != _NET else net_params)
    return Point(net, tuple(sorted(net_params.items())), tuple(sorted(train.items())))


def sweep_values(cfg: Config, sweep: str) -> list:
    return list(getattr(cfg, f"{sweep}_values"))


def train_point(grid_point: dict, seed: int, threads: int, x_tr, y_tr, x_te, y_te, device: str) -> dict[str, Any]:
    """Train one point with one seed and score it on the test images (one job of the grid)."""
    point = grid_point["point"]
    tcfg = replace(TrainConfig(), **dict(point.train), device=device)
    res = fit_and_score(point.net, dict(point.net_params), x_tr, y_tr, {"test": (x_te, y_te)}, tcfg, seed=seed,
                        n_classes=int(max(y_tr.max(), y_te.max())) + 1)
    return {"test_acc": res["test_acc"], "test_loss": res["test_loss"], "params": res["params"],
            "train_seconds": res["train_seconds"], "val_curve": [h["val_acc"] for h in res["history"]],
            "best_epoch": res["best_epoch"]}


def run_points(ctx: TaskContext, cfg: Config, points: list[Point], data: tuple) -> dict[tuple[Point, int], dict]:
    """Train every (point, seed) once through the experiment engine; results keyed by (point, seed)."""
    seeds = [ctx.seed + s for s in range(cfg.n_seeds)]
    grid = [{"point": p} for p in points]
    rows = run_grid(train_point, grid, seeds, args=(*data, ctx.device), n_jobs=ctx.n_jobs, backend=ctx.backend, device=ctx.device, threads_per_job=cfg.threads_per_job,
                    progress=ctx.progress, description="cnn sweeps", cache_dir=ctx.points_dir)
    return {(r["point"], r["seed"]): r for r in rows}


# =============================================================================================
# Summaries, tables, findings
# =============================================================================================


def _show(value: Any) -> Any:
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


def summarise(cfg: Config, sweep: str, results: dict, seed0: int) -> list[dict[str, Any]]:
    """One row per value: mean/std/min/max test accuracy over seeds, parameters, seconds, curve."""
    rows = []
    for value in sweep_values(cfg, sweep):
        point = sweep_point(cfg, sweep, value)
        runs = [results[(point, seed0 + s)] for s in range(cfg.n_seeds)]
        acc = np.array([r["test_acc"] for r in runs]) * 100
        curves = [r["val_curve"] for r in runs]
        n = min(len(c) for c in curves)
        rows.append({"value": _show(value), "test_acc_mean": round(float(acc.mean()), 3),
                     "test_acc_std": round(float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, 3),
                     "test_acc_min": round(float(acc.min()), 3), "test_acc_max": round(float(acc.max()), 3),
                     "params": int(runs[0]["params"]), "train_seconds": round(float(np.mean([r["train_seconds"] for r in runs])), 2),
                     "seeds": len(runs), "_accs": acc.tolist(),
                     "_curve": (np.nanmean([c[:n] for c in curves], axis=0) * 100).tolist()})  # fmt: skip
    return rows


def sweep_finding(sweep: str, rows: list[dict]) -> str:
    """A sentence on the best value, the size of the effect and how it compares with the seed spread."""
    order = sorted(rows, key=lambda r: -r["test_acc_mean"])
    best, worst = order[0], order[-1]
    spread = float(np.sqrt(np.mean([r["test_acc_std"] ** 2 for r in rows])))  # pooled seed std
    effect = best["test_acc_mean"] - worst["test_acc_mean"]
    text = (f"{LABELS[sweep].capitalize()}: best {best['value']} ({best['test_acc_mean']:.2f} %), worst {worst['value']} "
            f"({worst['test_acc_mean']:.2f} %), a range of {effect:.2f} points")  # fmt: skip
    if spread == 0:
        return text + " (one seed per point, so no seed spread to compare with)."
    text += f" against a seed-to-seed spread of {spread:.2f} points ({effect / spread:.1f}x)"
    if len(order) > 1:
        gap = best["test_acc_mean"] - order[1]["test_acc_mean"]
        verdict = "exceeds" if gap > 2 * spread else "does not exceed"
        text += f"; the winner's lead over {order[1]['value']} ({gap:.2f} points) {verdict} twice the seed spread"
    return text + "."


def sweep_table(sweep: str, rows: list[dict], cfg: Config) -> Table:
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    cols = ["value", "test_acc_mean", "test_acc_std", "test_acc_min", "test_acc_max", "params", "train_seconds", "seeds"]
    return Table(f"sweep_{sweep}", public, f"{LABELS[sweep].capitalize()}: test accuracy (%) over {cfg.n_seeds} seed(s), "
                 "parameters and mean training seconds per run.", cols)  # fmt: skip


def params_rows(cfg: Config, sweeps: list[str], results: dict, seed0: int) -> list[dict[str, Any]]:
    """Every distinct architecture trained (training-setting sweeps left out, as they share one
    parameter count; all sweeps if no architectural one ran): parameters and mean test accuracy."""
    arch = [s for s in sweeps if s in ARCH_SWEEPS] or sweeps
    seen: dict[Point, dict] = {}
    for sweep in arch:
        for value in sweep_values(cfg, sweep):
            point = sweep_point(cfg, sweep, value)
            if point in seen:
                continue
            acc = [results[(point, seed0 + s)]["test_acc"] * 100 for s in range(cfg.n_seeds)]
            seen[point] = {"config": f"{sweep}={_show(value)}", "net": point.net, "params": int(results[(point, seed0)]["params"]),
                           "test_acc_mean": round(float(np.mean(acc)), 3)}  # fmt: skip
    return sorted(seen.values(), key=lambda r: r["params"])


def params_finding(rows: list[dict]) -> str:
    """Rank correlation of log-parameters with accuracy, and the smallest model near the best."""
    from scipy.stats import spearmanr

    if len(rows) < 3:
        return f"Only {len(rows)} distinct architectures: too few to relate parameter count and accuracy."
    p = np.array([r["params"] for r in rows], float)
    a = np.array([r["test_acc_mean"] for r in rows])
    rho = float(spearmanr(p, a).statistic)
    best = rows[int(np.argmax(a))]
    near = min((r for r in rows if r["test_acc_mean"] >= a.max() - 0.2), key=lambda r: r["params"])
    near = near if near["params"] < best["params"] else best
    text = (f"Across {len(rows)} distinct architectures, parameter count and test accuracy have a Spearman rank correlation "
            f"of {rho:+.2f}; the best ({best['config']}, {best['test_acc_mean']:.2f} %) has {best['params']:,} parameters")  # fmt: skip
    if near is best:
        return text + ", and no configuration with fewer parameters comes within 0.2 points of it."
    return text + f", while {near['config']} comes within 0.2 points with {near['params']:,} ({near['params'] / best['params']:.2g}x)."


# =============================================================================================
# Figures
# =============================================================================================


def plot_sweep(sweep: str, rows: list[dict]) -> plt.Figure:
    """Left: test accuracy vs the swept value (mean +- seed std, every seed as a dot). Right: val curves."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.3))
    values = [r["value"] for r in rows]
    numeric = sweep in LOG_AXIS or all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    x = np.array(values, float) if numeric else np.arange(len(values))
    mean = np.array([r["test_acc_mean"] for r in rows])
    # Lines join ordered values only; categories (optimisers, schedules, families) get bare markers.
    ax.errorbar(x, mean, yerr=[r["test_acc_std"] for r in rows], fmt="o-" if numeric else "o", capsize=4, color="C0",
                label="mean ± seed std")
    for xi, r in zip(x, rows):
        ax.scatter([xi] * len(r["_accs"]), r["_accs"], s=10, color="0.5", zorder=3)
    if sweep in LOG_AXIS:
        ax.set_xscale("log", base=2 if sweep != "lr" else 10)
    ax.set_xticks(x, [str(v) for v in values], rotation=30 if not numeric else 0)
    ax.minorticks_off()
    ax.set_xlabel(LABELS[sweep])
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(rows)))
    for color, r in zip(colors, rows):
        ep = np.arange(1, len(r["_curve"]) + 1)
        ax2.plot(ep, r["_curve"], "o-", ms=3, color=color, label=str(r["value"]))
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation accuracy (%)")
    ax2.xaxis.get_major_locator().set_params(integer=True)
    ax2.legend(fontsize=7, title=LABELS[sweep], title_fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_params(rows: list[dict]) -> plt.Figure:
    """Test accuracy against parameter count (log axis), one dot per distinct configuration."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for i, net in enumerate(sorted({r["net"] for r in rows})):
        sub = [r for r in rows if r["net"] == net]
        ax.scatter([r["params"] for r in sub], [r["test_acc_mean"] for r in sub], label=net, color=f"C{i}")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("mean test accuracy (%)")
    ax.legend(fontsize=8)
    return fig


# =============================================================================================
# Task entry point
# =============================================================================================


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    part = split(ctx, cfg.n_train, cfg.n_test)
    data = (part.x_train, part.y_train, part.x_test, part.y_test)
    sweeps = list(dict.fromkeys(cfg.sweeps))
    points = list(dict.fromkeys(sweep_point(cfg, s, v) for s in sweeps for v in sweep_values(cfg, s)))
    t0 = time.perf_counter()
    results = run_points(ctx, cfg, points, data)
    wall = time.perf_counter() - t0
    result = TaskResult(title=TITLE, summary=(
        f"Each sweep changes one setting of a base CNN ({cfg.n_blocks} conv blocks, width {cfg.width}, {cfg.optimizer} at lr {cfg.lr}, "
        f"{cfg.scheduler} schedule, batch {cfg.batch_size}, {cfg.epochs} epoch(s)) and trains it from scratch on {len(data[1]):,} "
        f"stratified training images with {cfg.n_seeds} seed(s); test accuracy is measured on {len(data[3]):,} test images."))  # fmt: skip
    summaries = {}
    for sweep in sweeps:
        rows = summarise(cfg, sweep, results, ctx.seed)
        summaries[sweep] = rows
        result.tables.append(sweep_table(sweep, rows, cfg))
        file = save_png(plot_sweep(sweep, rows), ctx.out_dir, f"sweep_{sweep}")
        result.figures.append(Figure(f"sweep_{sweep}", file, f"{LABELS[sweep].capitalize()}. Left: test accuracy against the value "
                                     "(mean and seed standard deviation; grey dots are single seeds). Right: validation accuracy "
                                     "per epoch, mean over seeds."))  # fmt: skip
        result.findings.append(sweep_finding(sweep, rows))
    prow = params_rows(cfg, sweeps, results, ctx.seed)
    result.tables.append(Table("params_vs_accuracy", prow, "Every distinct architecture trained: parameters and mean test accuracy.",
                               ["config", "net", "params", "test_acc_mean"]))  # fmt: skip
    result.figures.append(Figure("params_vs_accuracy", save_png(plot_params(prow), ctx.out_dir, "params_vs_accuracy"),
                                 "Mean test accuracy against the number of trainable parameters, per distinct architecture."))
    result.findings.append(params_finding(prow))
    cpu = sum(r["cpu_seconds"] for r in results.values())
    result.notes += part.notes + [
        "Seeds change the initial weights, the order of the mini-batches and the validation split; the seed spread is the "
        "standard deviation of test accuracy across seeds (with two seeds, a rough estimate). A difference smaller than about "
        "twice that spread is not evidence that one setting is better.",
        f"All sweeps but the schedule sweep use the {cfg.scheduler} schedule"
        + (" (its peak is the learning rate)" if cfg.scheduler == "onecycle" else "")
        + "; the optimiser sweep gives each optimiser a learning rate that suits it (value name:lr) and the batch-size "
        "sweep keeps the learning rate fixed. Widths double at every downsampling; 2x2 pooling stops once the map is "
        "3 pixels wide, so blocks beyond the third keep that resolution and width.",
        f"{len(points)} distinct configurations x {cfg.n_seeds} seed(s) = {len(results)} training runs; {cpu:.0f} CPU seconds "
        f"in {wall:.0f} s of wall time.",
    ]
    result.metrics = {"runs": len(results), "distinct_configs": len(points), "cpu_seconds": round(cpu, 1),
                      "best": {s: summaries[s][int(np.argmax([r["test_acc_mean"] for r in summaries[s]]))]["value"] for s in sweeps},
                      "base_test_acc": _base_acc(cfg, results, ctx.seed)}  # fmt: skip
    result.headline = result.findings[0] if result.findings else ""
    return result


def _base_acc(cfg: Config, results: dict, seed0: int) -> float | None:
    net, net_params, train = base_point(cfg)
    point = Point(net, tuple(sorted(net_params.items())), tuple(sorted(train.items())))
    runs = [results.get((point, seed0 + s)) for s in range(cfg.n_seeds)]
    return None if any(r is None for r in runs) else round(float(np.mean([r["test_acc"] for r in runs])) * 100, 3)


__all__ = ["Config", "PROFILES", "NAME", "TITLE", "run", "sweep_point", "train_point", "summarise", "sweep_finding",
           "plot_sweep", "plot_params"]
