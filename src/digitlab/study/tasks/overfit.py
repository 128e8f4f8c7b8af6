"""Task ``overfit``: under- and over-fitting: L1/L2 penalties, dropout placement, model complexity, remedies.

One small stratified training set (``n_train``, 2,000 images by default) so that over-fitting shows,
a validation set drawn from the other official training images (``n_val``) to choose settings on,
and the test set to report them. Five parts, all networks trained through the experiment engine
(:func:`~digitlab.grid.run_grid` and :func:`~digitlab.grid.fit_and_score`) for one
budget (``epochs``, at least ``min_steps`` optimiser steps) with AdamW at ``weight_decay = 0``, so
the only regulariser in a run is the one varied; the model scored is the **last** epoch's (no
checkpoint selection), except in the early-stopping remedy:

* **penalties**: L1 and L2 on the CNN and on an MLP over a log grid of strengths with 0. Both are
  the coupled penalties of :class:`~digitlab.train.TrainConfig` (``l1 * sum|w|``, ``l2 * sum w^2``
  over weight matrices and kernels, added to the loss), not AdamW's decoupled decay.
* **logreg**: multinomial logistic regression (scikit-learn) with an L1 or L2 penalty over ``C``.
* **dropout**: rates after every conv block, in the classifier head, or both (heatmaps).
* **ladder**: softmax regression, one-hidden-layer MLP, deep MLP, small CNN, deeper CNN.
* **remedies**: the unregularised CNN trained long (the over-fitting setting) with its curves, and
  what early stopping, L2, dropout and augmentation each recover.

Points shared between parts (the unregularised CNN is the strength-0 point, the rate-0 point, a
rung of the ladder and the remedies' baseline) are trained once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from digitlab.exceptions import ConfigError
from digitlab.experiments.regularisation import (
    LOGREG_PENALTIES,
    NET_WORDS,
    PENALTY_NETS,
    PLACE_WORDS,
    PLACES,
    REMEDY_WORDS,
    RUNG_WORDS,
    RUNGS,
    Regularisation,
    best_on_val,
    regularisation,
)
from digitlab.study.common import add_figure, split
from digitlab.study.prose import overfit as P
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "overfit"
TITLE = "Regularisation and model complexity: L1/L2 penalties, dropout, a ladder of models and what cures over-fitting"


# =============================================================================================
# Configuration
# =============================================================================================


@dataclass
class Config:
    """Settings of the over-fitting study; defaults are the standard profile."""

    n_train: int = 2000  # training images (stratified subset of the official training set)
    # validation images, drawn from the other official training images (choose settings here)
    n_val: int = 1000
    n_test: int = 0  # test images (stratified subset; 0 = the whole official test set)
    n_seeds: int = 1  # seeds per point (weights, batches, the train/validation draw)
    # -- the training budget of every network (AdamW, one-cycle, weight_decay 0)
    epochs: int = 15  # passes over the training images
    min_steps: int = 200  # at least this many optimiser steps (more epochs on smaller sets; 0 = off)
    batch_size: int = 128  # images per optimiser step
    lr: float = 0.01  # peak learning rate of the one-cycle schedule
    # -- the networks
    cnn_blocks: int = 3  # conv blocks of the small CNN (each: conv 3x3, ReLU, 2x2 max-pool)
    cnn_width: int = 16  # channels of the first block (doubling per block)
    # units of the dense hidden layer in the CNN's head (dropout "in the head" acts on it)
    cnn_hidden: int = 128
    cnn_batch_norm: bool = False  # off: with BatchNorm a kernel's scale does not matter, so L1/L2 on it only changes the step size
    deeper_cnn_convs: int = 2  # convs per block of the ladder's deeper CNN (the small CNN has 1)
    mlp_hidden: list[int] = field(
        default_factory=lambda: [256]
    )  # the one-hidden-layer MLP (penalties and ladder)
    deep_mlp_hidden: list[int] = field(default_factory=lambda: [256, 256, 256])  # the ladder's deep MLP
    # -- penalties (0, the unregularised point, is always included)
    penalty_nets: list[str] = field(default_factory=lambda: ["cnn", "mlp"])  # networks of the L1/L2 study
    l2_values: list[float] = field(
        default_factory=lambda: [1e-4, 1e-3, 1e-2, 1e-1]
    )  # L2 strengths (coefficient of sum w^2)
    l1_values: list[float] = field(
        default_factory=lambda: [1e-6, 1e-5, 1e-4, 1e-3]
    )  # L1 strengths (coefficient of sum |w|)
    # -- logistic regression (scikit-learn; strength = 1/C; a no-penalty fit is the strength-0 point)
    logreg_C: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])  # inverse strengths
    logreg_penalties: list[str] = field(default_factory=lambda: ["l1", "l2"])  # l1 (saga) and/or l2 (lbfgs)
    logreg_max_iter: int = 50  # solver iterations (saga epochs for L1: it may stop before converging)
    # -- dropout (rate 0 is always included)
    dropout_rates: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.7])  # dropout probabilities
    dropout_places: list[str] = field(default_factory=lambda: list(PLACES))  # conv | head | both
    # -- complexity ladder and remedies
    ladder: list[str] = field(default_factory=lambda: list(RUNGS))  # rungs, simplest first
    augment: str = "shift"  # augmentation of the remedies ("shift", "affine", or one of digitlab.augment's)
    # epochs without validation improvement at which patience-based early stopping would stop
    patience: int = 3
    # torch/BLAS threads per training job (1: two threads on a busy 2-core box mostly wait)
    threads_per_job: int = 1

    def validate(self) -> None:
        """Raise a one-line :class:`ConfigError` on a bad value."""

        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key overfit.{key}: {problem}; {fix}")

        for key in (
            "n_train",
            "n_val",
            "n_seeds",
            "epochs",
            "batch_size",
            "cnn_blocks",
            "cnn_width",
            "deeper_cnn_convs",
            "logreg_max_iter",
            "patience",
        ):
            if getattr(self, key) < 1:
                raise bad(key, f"{getattr(self, key)} must be at least 1", "e.g. the default")
        for key in ("n_test", "min_steps", "cnn_hidden", "threads_per_job"):
            if getattr(self, key) < 0:
                raise bad(key, f"{getattr(self, key)} must be >= 0", "use 0 for the default behaviour")
        if not self.lr > 0:
            raise bad("lr", f"{self.lr} must be positive", "e.g. 0.01")
        if self.cnn_blocks > 6:
            raise bad("cnn_blocks", f"{self.cnn_blocks} is more than 6", "use 1 to 6")
        for key in ("mlp_hidden", "deep_mlp_hidden"):
            if not getattr(self, key) or any(h < 1 for h in getattr(self, key)):
                raise bad(key, f"{getattr(self, key)} needs at least one layer of >= 1 units", "e.g. [256]")
        for key in ("l2_values", "l1_values", "logreg_C"):
            vals = getattr(self, key)
            if not vals or any(not v > 0 for v in vals):
                raise bad(
                    key,
                    f"{vals} must be a non-empty list of positive numbers",
                    "e.g. [1e-4, 1e-3]; 0 is always added",
                )
        for key, allowed in (
            ("penalty_nets", PENALTY_NETS),
            ("logreg_penalties", LOGREG_PENALTIES),
            ("dropout_places", PLACES),
            ("ladder", RUNGS),
        ):
            vals = getattr(self, key)
            if not vals or any(v not in allowed for v in vals):
                raise bad(key, f"{vals} has unknown or no entries", f"use some of {list(allowed)}")
        if not self.dropout_rates or any(not 0.0 < r < 1.0 for r in self.dropout_rates):
            raise bad(
                "dropout_rates",
                f"{self.dropout_rates} must be rates in (0, 1)",
                "e.g. [0.25, 0.5, 0.7]; 0 is always added",
            )
        from digitlab.train import resolve_augment

        try:
            resolve_augment(self.augment)
        except Exception as exc:  # noqa: BLE001  (any lookup failure is a config error)
            raise bad("augment", f"{self.augment!r} is unknown ({exc})", "use 'shift' or 'affine'") from None


PROFILES: dict[str, dict] = {
    # Quick: 500 training images, a narrower CNN, one strength / rate per sweep (still every part).
    "quick": {
        "n_train": 500,
        "n_val": 250,
        "n_test": 1000,
        "epochs": 10,
        "min_steps": 100,
        "batch_size": 64,
        "cnn_width": 8,
        "cnn_hidden": 64,
        "mlp_hidden": [128],
        "deep_mlp_hidden": [128, 128, 128],
        "l2_values": [1e-2],
        "l1_values": [1e-4],
        "logreg_C": [1.0],
        "logreg_max_iter": 30,
        "dropout_rates": [0.5],
    },
    "full": {
        "n_seeds": 3,
        "epochs": 30,
        "l2_values": [1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
        "l1_values": [1e-7, 1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3],
        "logreg_C": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
        "logreg_max_iter": 200,
        "dropout_rates": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    },
}


# =============================================================================================
# Task entry point: the experiment's result -> tables, figures, sentences
# =============================================================================================

EXPERIMENT_KEYS = (
    "n_train",
    "n_val",
    "n_seeds",
    "epochs",
    "min_steps",
    "batch_size",
    "lr",
    "cnn_blocks",
    "cnn_width",
    "cnn_hidden",
    "cnn_batch_norm",
    "deeper_cnn_convs",
    "mlp_hidden",
    "deep_mlp_hidden",
    "penalty_nets",
    "l2_values",
    "l1_values",
    "logreg_C",
    "logreg_penalties",
    "logreg_max_iter",
    "dropout_rates",
    "dropout_places",
    "ladder",
    "augment",
    "threads_per_job",
)


def _row(label: dict, m: dict, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """A table row: accuracies and gap in % (2 decimals), losses to 4 decimals, ``extra`` metrics rounded."""
    row = dict(label)
    for k in ("train_acc", "val_acc", "test_acc", "gap"):
        row[k] = round(100 * m[k], 2)
    for k in ("train_loss", "val_loss", "test_loss"):
        row[k] = round(m[k], 4)
    for k in extra:
        row[k] = m[k] if isinstance(m[k], str) else round(float(m[k]), 4 if abs(m[k]) < 100 else 1)
    return row


def curve_rows(history: list[dict]) -> list[dict]:
    """Per-epoch rows of a training history, accuracies in %."""
    return [
        {
            "epoch": h["epoch"],
            "train_loss": round(h["train_loss"], 4),
            "train_acc": round(100 * h["train_acc"], 2),
            "val_loss": round(h["val_loss"], 4),
            "val_acc": round(100 * h["val_acc"], 2),
            "lr": float(f"{h['lr']:.3g}"),
        }
        for h in history
    ]


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    part = split(ctx, cfg.n_train + cfg.n_val, cfg.n_test)
    # Finished points go to ctx.points_dir (a killed run, rerun, retrains only those in flight). Their keys: the
    # task's cache key (this config section, seed, device, data fingerprint, code) + the point + seed + a hash of
    # the arrays, validation fraction, classes and device.
    res: Regularisation = regularisation(
        (part.x_train, part.y_train, part.x_test, part.y_test),
        **{k: getattr(cfg, k) for k in EXPERIMENT_KEYS},
        n_test=0,
        seed=ctx.seed,
        n_jobs=ctx.n_jobs,
        backend=ctx.backend,
        device=ctx.device,
        progress=ctx.progress,
        cache_dir=ctx.points_dir,
    )
    result = TaskResult(title=TITLE)
    figs, n_train = result.figures, res.n_train

    res_pen = res.penalty_results()
    pen_rows = [
        _row(
            {"net": NET_WORDS[r["net"]], "penalty": r["penalty"].upper(), "strength": r["strength"]},
            r,
            ("l2_sum", "l1_sum", "small_frac", "params"),
        )
        for r in res.penalties.to_dict("records")
    ]
    for name, by_kind in res_pen.items():
        for kind, r in by_kind.items():
            result.findings += P.penalty_findings(name, kind, r)
        cap_pen, cap_w = P.penalty_captions(name, n_train)
        add_figure(figs, res.plot_penalties(name), ctx.out_dir, f"penalties_{name}", cap_pen)
        add_figure(figs, res.plot_weights(name), ctx.out_dir, f"weights_{name}", cap_w)
    result.tables.append(Table("penalties", pen_rows, P.TABLE_CAPTIONS["penalties"]))

    lr_res, none = res.logreg_results()
    result.findings += P.logreg_findings(lr_res, none)
    add_figure(figs, res.plot_logreg(), ctx.out_dir, "logreg", P.CAPTIONS["logreg"])
    result.tables.append(
        Table(
            "logreg",
            [
                _row(
                    {"penalty": r["penalty"].upper(), "C": r["C"] if r["penalty"] != "none" else "∞"},
                    r,
                    ("nonzero_frac", "n_iter"),
                )
                for r in res.logreg.to_dict("records")
            ],
            P.TABLE_CAPTIONS["logreg"],
        )
    )

    res_drop = res.dropout_results()
    result.findings += P.dropout_findings(res_drop)
    add_figure(figs, res.plot_dropout(), ctx.out_dir, "dropout", P.CAPTIONS["dropout"])
    result.tables.append(
        Table(
            "dropout",
            [_row({"placement": PLACE_WORDS[pl], "rate": r}, v) for (pl, r), v in res_drop.items()],
            P.TABLE_CAPTIONS["dropout"],
        )
    )

    res_lad = res.ladder_results()
    lad_rows = [_row({"model": RUNG_WORDS[r], "params": int(v["params"])}, v) for r, v in res_lad.items()]
    result.findings += P.ladder_findings(res_lad)
    add_figure(figs, res.plot_ladder(), ctx.out_dir, "ladder", P.CAPTIONS["ladder"])
    result.tables.append(Table("ladder", lad_rows, P.TABLE_CAPTIONS["ladder"]))

    rem_rows = []
    for v in res.remedies.to_dict("records"):
        row = _row(
            {
                "remedy": REMEDY_WORDS[v["remedy"]],
                "setting": P.remedy_setting(v["remedy"], res.l2_best, res.dropout_best, cfg.augment),
            },
            v,
        )
        row.update(
            d_test=round(100 * v["d_test"], 2),
            d_gap=round(100 * v["d_gap"], 2),
            n_train=n_train,
            epochs=round(v["epochs_run"], 1),
            steps=round(v["steps"]),
        )
        rem_rows.append(row)
    history = res.history()
    rem_text, result.headline = P.remedies_findings(rem_rows)
    result.headline += P.ladder_headline(res_lad)
    result.findings += rem_text + [P.curve_finding(history, res.kept, cfg.patience)]
    add_figure(figs, res.plot_remedies(), ctx.out_dir, "remedies", P.CAPTIONS["remedies"])
    result.tables.append(
        Table(
            "remedies",
            rem_rows,
            P.TABLE_CAPTIONS["remedies"],
            [
                "remedy",
                "setting",
                "train_acc",
                "val_acc",
                "test_acc",
                "test_loss",
                "gap",
                "d_test",
                "d_gap",
                "epochs",
                "steps",
            ],
        )
    )
    result.tables.append(
        Table(
            "curves",
            curve_rows(history),
            P.TABLE_CAPTIONS["curves"],
            ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"],
        )
    )

    result.summary = P.summary(n_train, res.n_val, part.n_test, ctx.dataset.name)
    cpu, wall = res.cpu_seconds, res.wall_seconds
    result.notes += part.notes + P.method_notes(cfg, res.steps, res.n_networks, res.n_logreg, cpu, wall)
    d_best = res.dropout_best
    result.metrics = {
        "n_train": n_train,
        "n_val": res.n_val,
        "n_test": part.n_test,
        "runs": len(res.runs) + res.n_logreg * cfg.n_seeds,
        "baseline": {k: rem_rows[0][k] for k in ("train_acc", "test_acc", "gap")},
        "remedies": {
            r["remedy"]: {"test_acc": r["test_acc"], "gap": r["gap"], "d_test": r["d_test"]} for r in rem_rows
        },
        "best_strength": {f"{n}_{k}": best_on_val(r) for n, by in res_pen.items() for k, r in by.items()},
        "best_dropout": {"placement": d_best[0], "rate": d_best[1]},
        "ladder": {
            r: {
                "params": int(v["params"]),
                "test_acc": round(100 * v["test_acc"], 2),
                "gap": round(100 * v["gap"], 2),
            }
            for r, v in res_lad.items()
        },
        "cpu_seconds": round(cpu, 1),
        "wall_seconds": round(wall, 1),
    }
    return result


__all__ = ["Config", "PROFILES", "NAME", "TITLE", "run"]
