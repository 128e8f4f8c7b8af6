"""Sentences of the cnn_sweeps task: findings, captions and notes, from its numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

# How each sweep's values read in tables and axes.
LABELS = {
    "lr": "learning rate",
    "batch_size": "batch size",
    "optimizer": "optimiser",
    "epochs": "epochs",
    "scheduler": "lr schedule",
    "depth": "conv blocks",
    "width": "width (channels of block 1)",
    "kernel_size": "kernel size",
    "batch_norm": "batch norm",
    "family": "architecture",
}


def sweep_finding(sweep: str, rows: list[dict]) -> str:
    """A sentence on the best value, the size of the effect and how it compares with the seed spread."""
    order = sorted(rows, key=lambda r: -r["test_acc_mean"])
    best, worst = order[0], order[-1]
    spread = float(np.sqrt(np.mean([r["test_acc_std"] ** 2 for r in rows])))  # pooled seed std
    effect = best["test_acc_mean"] - worst["test_acc_mean"]
    text = (
        f"{LABELS[sweep].capitalize()}: best {best['value']} ({best['test_acc_mean']:.2f} %), worst {worst['value']} "
        f"({worst['test_acc_mean']:.2f} %), a range of {effect:.2f} points"
    )
    if spread == 0:
        return text + " (one seed per point, so no seed spread to compare with)."
    text += f" against a seed-to-seed spread of {spread:.2f} points ({effect / spread:.1f}x)"
    if len(order) > 1:
        gap = best["test_acc_mean"] - order[1]["test_acc_mean"]
        verdict = "exceeds" if gap > 2 * spread else "does not exceed"
        text += (
            f"; the winner's lead over {order[1]['value']} ({gap:.2f} points) {verdict} twice the seed spread"
        )
    return text + "."


def params_finding(rows: list[dict], rho: float | None) -> str:
    """Rank correlation of parameters with accuracy (``rho``), and the smallest model near the best."""
    if len(rows) < 3:
        return f"Only {len(rows)} distinct architectures: too few to relate parameter count and accuracy."
    top = max(r["test_acc_mean"] for r in rows)
    best = next(r for r in rows if r["test_acc_mean"] == top)
    near = min((r for r in rows if r["test_acc_mean"] >= top - 0.2), key=lambda r: r["params"])
    near = near if near["params"] < best["params"] else best
    text = (
        f"Across {len(rows)} distinct architectures, parameter count and test accuracy have a Spearman rank correlation "
        f"of {rho:+.2f}; the best ({best['config']}, {best['test_acc_mean']:.2f} %) has {best['params']:,} parameters"
    )
    if near is best:
        return text + ", and no configuration with fewer parameters comes within 0.2 points of it."
    return (
        text
        + f", while {near['config']} comes within 0.2 points with {near['params']:,} ({near['params'] / best['params']:.2g}x)."
    )


def summary(cfg: Any, n_train: int, n_test: int) -> str:
    return (
        f"Each sweep changes one setting of a base CNN ({cfg.n_blocks} conv blocks, width {cfg.width}, {cfg.optimizer} at lr "
        f"{cfg.lr}, {cfg.scheduler} schedule, batch {cfg.batch_size}, {cfg.epochs} epoch(s)) and trains it from scratch on "
        f"{n_train:,} stratified training images with {cfg.n_seeds} seed(s); test accuracy is measured on {n_test:,} test images."
    )


def table_caption(sweep: str, n_seeds: int) -> str:
    return f"{LABELS[sweep].capitalize()}: test accuracy (%) over {n_seeds} seed(s), parameters and mean training seconds per run."


def figure_caption(sweep: str) -> str:
    return (
        f"{LABELS[sweep].capitalize()}. Left: test accuracy against the value (mean and seed standard deviation; grey dots "
        "are single seeds). Right: validation accuracy per epoch, mean over seeds."
    )


PARAMS_TABLE = "Every distinct architecture trained: parameters and mean test accuracy."
PARAMS_FIGURE = "Mean test accuracy against the number of trainable parameters, per distinct architecture."


def notes(cfg: Any, n_points: int, n_runs: int, cpu: float, wall: float) -> list[str]:
    return [
        "Seeds change the initial weights, the order of the mini-batches and the validation split; the seed spread is the "
        "standard deviation of test accuracy across seeds (with two seeds, a rough estimate). A difference smaller than about "
        "twice that spread is not evidence that one setting is better.",
        f"All sweeps but the schedule sweep use the {cfg.scheduler} schedule"
        + (" (its peak is the learning rate)" if cfg.scheduler == "onecycle" else "")
        + "; the optimiser sweep gives each optimiser a learning rate that suits it (value name:lr) and the batch-size "
        "sweep keeps the learning rate fixed. Widths double at every downsampling; 2x2 pooling stops once the map is "
        "3 pixels wide, so blocks beyond the third keep that resolution and width.",
        f"{n_points} distinct configurations x {cfg.n_seeds} seed(s) = {n_runs} training runs; {cpu:.0f} CPU seconds "
        f"in {wall:.0f} s of wall time.",
    ]
