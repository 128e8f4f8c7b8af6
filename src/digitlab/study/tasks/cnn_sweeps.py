"""Task ``cnn_sweeps``: how hyper-parameters, depth and architecture change the CNN.

Every sweep varies one setting of a base point (the fast recipe's CNN and training settings, on a
stratified subset of the training images) and keeps everything else fixed. All points of all sweeps
go to one :func:`digitlab.experiments.cnn_sweep.cnn_sweep` call, which trains every point from
scratch with several seeds (the seed draws the initial weights, the shuffling and the validation
split) as an independent grid job and scores it on the test images; points shared by several
sweeps (the base point appears in most) are trained once. This module builds the points and turns
the result into tables, figures and sentences.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from digitlab.experiments.cnn_sweep import cnn_sweep, plot_params, plot_values, rank_correlation
from digitlab.study.common import add_figure, split
from digitlab.study.prose import cnn_sweeps as P
from digitlab.study.prose.cnn_sweeps import LABELS, sweep_finding  # noqa: F401  (re-exported)
from digitlab.study.settings.cnn_sweeps import _NET, _NET_PARAMS, PROFILES, Config, _parse_optimizer
from digitlab.study.task import Table, TaskContext, TaskResult
from digitlab.train import TrainConfig

NAME = "cnn_sweeps"
TITLE = "How hyper-parameters, depth and architecture change the CNN"

LOG_AXIS = {"lr", "batch_size", "width"}
ARCH_SWEEPS = (
    "depth",
    "width",
    "kernel_size",
    "batch_norm",
    "family",
)  # sweeps that change the parameter count


# =============================================================================================
# Sweep points
# =============================================================================================


@dataclass(frozen=True)
class Point:
    """One trained configuration: the network and the training settings (without the seed)."""

    net: str
    net_params: tuple  # sorted (key, value) pairs, hashable so shared points train once
    train: tuple  # sorted (key, value) overrides of TrainConfig


def base_point(cfg: Config) -> tuple[str, dict, dict]:
    """The base network and training overrides every sweep starts from."""
    net_params = dict(
        _NET_PARAMS,
        n_blocks=cfg.n_blocks,
        width=cfg.width,
        kernel_size=cfg.kernel_size,
        batch_norm=cfg.batch_norm,
    )
    train = {
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "optimizer": cfg.optimizer,
        "scheduler": cfg.scheduler,
    }
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


def settings_of(point: Point) -> dict[str, Any]:
    """A point as the experiment's settings: the network, its parameters and the TrainConfig overrides."""
    return {"net": point.net, **dict(point.net_params), **dict(point.train)}


def _show(value: Any) -> Any:
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    part = split(ctx, cfg.n_train, cfg.n_test)
    sweeps = list(dict.fromkeys(cfg.sweeps))
    points = list(dict.fromkeys(sweep_point(cfg, s, v) for s in sweeps for v in sweep_values(cfg, s)))
    t0 = time.perf_counter()
    # The recipe's own settings are the task's base point, carried by every point: TrainConfig() defaults beneath.
    sw = cnn_sweep(
        ctx.dataset,
        points=[settings_of(p) for p in points],
        recipe=(_NET, {}, TrainConfig()),
        seeds=cfg.n_seeds,
        n_train=cfg.n_train,
        n_test=cfg.n_test,
        seed=ctx.seed,
        n_jobs=ctx.n_jobs,
        device=ctx.device,
        progress=ctx.progress,
        backend=ctx.backend,
        threads_per_job=cfg.threads_per_job,
        cache_dir=ctx.points_dir,
    )
    wall = time.perf_counter() - t0
    result = TaskResult(title=TITLE, summary=P.summary(cfg, part.n_train, part.n_test))
    summaries = {}
    cols = [
        "value",
        "test_acc_mean",
        "test_acc_std",
        "test_acc_min",
        "test_acc_max",
        "params",
        "train_seconds",
        "seeds",
    ]
    for sweep in sweeps:
        rows = sw.compare(
            {_show(v): settings_of(sweep_point(cfg, sweep, v)) for v in sweep_values(cfg, sweep)}
        )
        summaries[sweep] = rows
        result.tables.append(
            Table(
                f"sweep_{sweep}",
                [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
                P.table_caption(sweep, cfg.n_seeds),
                cols,
            )
        )
        log_base = (10 if sweep == "lr" else 2) if sweep in LOG_AXIS else None
        add_figure(
            result.figures,
            plot_values(rows, LABELS[sweep], log_base),
            ctx.out_dir,
            f"sweep_{sweep}",
            P.figure_caption(sweep),
        )
        result.findings.append(sweep_finding(sweep, rows))
    # Every distinct architecture (training-setting sweeps share one parameter count; all sweeps if no architectural one ran).
    arch = [s for s in sweeps if s in ARCH_SWEEPS] or sweeps
    prow = sw.architectures(
        [(f"{s}={_show(v)}", settings_of(sweep_point(cfg, s, v))) for s in arch for v in sweep_values(cfg, s)]
    )
    result.tables.append(
        Table("params_vs_accuracy", prow, P.PARAMS_TABLE, ["config", "net", "params", "test_acc_mean"])
    )
    add_figure(result.figures, plot_params(prow), ctx.out_dir, "params_vs_accuracy", P.PARAMS_FIGURE)
    rho = (
        rank_correlation([r["params"] for r in prow], [r["test_acc_mean"] for r in prow])
        if len(prow) >= 3
        else None
    )
    result.findings.append(P.params_finding(prow, rho))
    cpu = sum(r["cpu_seconds"] for r in sw.rows)
    result.notes += part.notes + P.notes(cfg, len(points), len(sw.rows), cpu, wall)
    base_point = sweep_point(cfg, "lr", cfg.lr)  # the base point itself
    base = sw.runs_of(settings_of(base_point)) if base_point in points else None
    result.metrics = {
        "runs": len(sw.rows),
        "distinct_configs": len(points),
        "cpu_seconds": round(cpu, 1),
        "best": {s: max(summaries[s], key=lambda r: r["test_acc_mean"])["value"] for s in sweeps},
        "base_test_acc": None
        if base is None
        else round(sum(r["test_acc"] for r in base) / len(base) * 100, 3),
    }
    result.headline = result.findings[0] if result.findings else ""
    return result


__all__ = ["Config", "PROFILES", "NAME", "TITLE", "run", "sweep_point", "settings_of", "sweep_finding"]
