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

from typing import Any

from digitlab.experiments.regularisation import (
    NET_WORDS,
    PLACE_WORDS,
    REMEDY_WORDS,
    RUNG_WORDS,
    Regularisation,
    best_on_val,
    regularisation,
)
from digitlab.study.common import add_figure, split
from digitlab.study.prose import overfit as P
from digitlab.study.settings.overfit import PROFILES, Config
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "overfit"
TITLE = "Regularisation and model complexity: L1/L2 penalties, dropout, a ladder of models and what cures over-fitting"


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
