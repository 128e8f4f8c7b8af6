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

import json
import textwrap
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from digitlab.exceptions import ConfigError
from digitlab.grid import fit_and_score, run_grid, summarise
from digitlab.study.common import add_figure, split
from digitlab.study.task import Table, TaskContext, TaskResult
from digitlab.train import TrainConfig, stratified_split

NAME = "overfit"
TITLE = "Regularisation and model complexity: L1/L2 penalties, dropout, a ladder of models and what cures over-fitting"

PENALTY_NETS = ("cnn", "mlp")
PLACES = ("conv", "head", "both")
PLACE_WORDS = {"conv": "after every conv block", "head": "in the head", "both": "after every conv block and in the head"}
PLACE_SHORT = {"conv": "after conv blocks", "head": "in the head", "both": "both"}  # heatmap row labels
RUNGS = ("softmax", "mlp", "deep_mlp", "cnn", "deeper_cnn")
RUNG_WORDS = {"softmax": "softmax regression", "mlp": "one-hidden-layer MLP", "deep_mlp": "deep MLP", "cnn": "small CNN",
              "deeper_cnn": "deeper CNN"}  # fmt: skip
NET_WORDS = {"cnn": "CNN", "mlp": "MLP"}
LOGREG_PENALTIES = ("l1", "l2")
HIST_EDGES = np.linspace(-6.0, 0.5, 40)  # log10 |w| bin edges of the weight histograms (below 1e-6 counts in the first bin)


# =============================================================================================
# Configuration
# =============================================================================================


@dataclass
class Config:
    """Settings of the over-fitting study; defaults are the standard profile."""

    n_train: int = 2000  # training images (stratified subset of the official training set)
    n_val: int = 1000  # validation images, drawn from the other official training images (choose settings here)
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
    cnn_hidden: int = 128  # units of the dense hidden layer in the CNN's head (dropout "in the head" acts on it)
    cnn_batch_norm: bool = False  # off: with BatchNorm a kernel's scale does not matter, so L1/L2 on it only changes the step size
    deeper_cnn_convs: int = 2  # convs per block of the ladder's deeper CNN (the small CNN has 1)
    mlp_hidden: list[int] = field(default_factory=lambda: [256])  # the one-hidden-layer MLP (penalties and ladder)
    deep_mlp_hidden: list[int] = field(default_factory=lambda: [256, 256, 256])  # the ladder's deep MLP
    # -- penalties (0, the unregularised point, is always included)
    penalty_nets: list[str] = field(default_factory=lambda: ["cnn", "mlp"])  # networks of the L1/L2 study
    l2_values: list[float] = field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 1e-1])  # L2 strengths (coefficient of sum w^2)
    l1_values: list[float] = field(default_factory=lambda: [1e-6, 1e-5, 1e-4, 1e-3])  # L1 strengths (coefficient of sum |w|)
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
    patience: int = 3  # epochs without validation improvement at which patience-based early stopping would stop
    threads_per_job: int = 1  # torch/BLAS threads per training job (1: two threads on a busy 2-core box mostly wait)

    def validate(self) -> None:
        """Raise a one-line :class:`ConfigError` on a bad value."""
        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key overfit.{key}: {problem}; {fix}")

        for key in ("n_train", "n_val", "n_seeds", "epochs", "batch_size", "cnn_blocks", "cnn_width", "deeper_cnn_convs",
                    "logreg_max_iter", "patience"):  # fmt: skip
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
                raise bad(key, f"{vals} must be a non-empty list of positive numbers", "e.g. [1e-4, 1e-3]; 0 is always added")
        for key, allowed in (("penalty_nets", PENALTY_NETS), ("logreg_penalties", LOGREG_PENALTIES),
                             ("dropout_places", PLACES), ("ladder", RUNGS)):  # fmt: skip
            vals = getattr(self, key)
            if not vals or any(v not in allowed for v in vals):
                raise bad(key, f"{vals} has unknown or no entries", f"use some of {list(allowed)}")
        if not self.dropout_rates or any(not 0.0 < r < 1.0 for r in self.dropout_rates):
            raise bad("dropout_rates", f"{self.dropout_rates} must be rates in (0, 1)", "e.g. [0.25, 0.5, 0.7]; 0 is always added")
        from digitlab.train import resolve_augment

        try:
            resolve_augment(self.augment)
        except Exception as exc:  # noqa: BLE001  (any lookup failure is a config error)
            raise bad("augment", f"{self.augment!r} is unknown ({exc})", "use 'shift' or 'affine'") from None


PROFILES: dict[str, dict] = {
    # Quick: 500 training images, a narrower CNN, one strength / rate per sweep (still every part).
    "quick": {"n_train": 500, "n_val": 250, "n_test": 1000, "epochs": 10, "min_steps": 100, "batch_size": 64, "cnn_width": 8,
              "cnn_hidden": 64, "mlp_hidden": [128], "deep_mlp_hidden": [128, 128, 128], "l2_values": [1e-2], "l1_values": [1e-4],
              "logreg_C": [1.0], "logreg_max_iter": 30, "dropout_rates": [0.5]},
    "full": {"n_seeds": 3, "epochs": 30, "l2_values": [1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
             "l1_values": [1e-7, 1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3], "logreg_C": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
             "logreg_max_iter": 200, "dropout_rates": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]},
}  # fmt: skip


# =============================================================================================
# Points: what each run trains
# =============================================================================================


def dropout_params(place: str, rate: float) -> dict[str, float]:
    """The CNN parameters that put dropout of ``rate`` after every conv block ("conv"), in the head ("head",
    on the dense hidden layer before the output layer) or both."""
    if place not in PLACES:
        raise ConfigError(f"dropout placement {place!r}: unknown; use one of {list(PLACES)}")
    return {"dropout_conv": rate if place in ("conv", "both") else 0.0, "dropout_fc": rate if place in ("head", "both") else 0.0}


def cnn_params(cfg: Config, **over) -> dict[str, Any]:
    """The small CNN of this study (no dropout unless ``over`` sets it)."""
    base = {"n_blocks": cfg.cnn_blocks, "width": cfg.cnn_width, "hidden": cfg.cnn_hidden, "batch_norm": cfg.cnn_batch_norm,
            "dropout_conv": 0.0, "dropout_fc": 0.0}  # fmt: skip
    return base | over


def point(cfg: Config, net: str, net_params: dict, curves: bool = False, **train) -> dict[str, Any]:
    """One training run: network, its parameters, TrainConfig overrides; ``curves``: carve the validation
    images inside training (per-epoch validation curves, best-epoch checkpoint kept: early stopping)."""
    base = {"epochs": cfg.epochs, "min_steps": cfg.min_steps, "batch_size": cfg.batch_size, "lr": cfg.lr, "weight_decay": 0.0,
            "l1": 0.0, "l2": 0.0, "augment": ""}  # fmt: skip
    return {"net": net, "net_params": dict(net_params), "train": base | train, "curves": curves}


def net_of(cfg: Config, name: str) -> tuple[str, dict]:
    """``(family, params)`` of a penalty net ("cnn", "mlp") or a ladder rung."""
    return {"cnn": ("cnn", cnn_params(cfg)), "mlp": ("mlp", {"hidden": list(cfg.mlp_hidden)}), "softmax": ("mlp", {"hidden": []}),
            "deep_mlp": ("mlp", {"hidden": list(cfg.deep_mlp_hidden)}),
            "deeper_cnn": ("cnn", cnn_params(cfg, convs_per_block=cfg.deeper_cnn_convs))}[name]  # fmt: skip


def strengths(values: list[float]) -> list[float]:
    return sorted({0.0, *map(float, values)})


def penalty_points(cfg: Config) -> dict[tuple[str, str, float], dict]:
    """(net, "l1"/"l2", strength) -> point."""
    out = {}
    for name in cfg.penalty_nets:
        net, params = net_of(cfg, name)
        for kind, values in (("l1", cfg.l1_values), ("l2", cfg.l2_values)):
            for lam in strengths(values):
                out[(name, kind, lam)] = point(cfg, net, params, **{kind: lam})
    return out


def dropout_points(cfg: Config) -> dict[tuple[str, float], dict]:
    """(placement, rate) -> point; rate 0 is the same run for every placement."""
    return {(place, r): point(cfg, "cnn", cnn_params(cfg, **dropout_params(place, r)))
            for place in cfg.dropout_places for r in strengths(cfg.dropout_rates)}


def ladder_points(cfg: Config) -> dict[str, dict]:
    return {rung: point(cfg, *net_of(cfg, rung)) for rung in cfg.ladder}


def key(p: dict) -> str:
    """A point's identity (equal points are trained once)."""
    return json.dumps(p, sort_keys=True)


# =============================================================================================
# One job: train a network / fit a logistic regression, score train, validation and test
# =============================================================================================


def weight_stats(model) -> dict[str, Any]:
    """Sum of squares and of absolute values of the penalised weights (matrices, kernels), the share
    below 1e-3 in magnitude, and a histogram of log10 |w| on :data:`HIST_EDGES`."""
    import torch

    w = torch.cat([p.detach().flatten().float().cpu() for p in model.parameters() if p.ndim > 1]).numpy()
    a = np.abs(w)
    logs = np.clip(np.log10(np.maximum(a, 1e-12)), HIST_EDGES[0], HIST_EDGES[-1])
    return {"l2_sum": float(np.sum(w.astype(np.float64) ** 2)), "l1_sum": float(np.sum(a, dtype=np.float64)),
            "small_frac": float(np.mean(a < 1e-3)), "n_weights": int(w.size),
            "w_hist": np.histogram(logs, HIST_EDGES)[0].tolist()}  # fmt: skip


def train_point(p: dict, seed: int, threads: int, x_pool, y_pool, x_test, y_test, val_fraction: float, n_classes: int,
                device: str) -> dict[str, Any]:  # fmt: skip
    """Train point ``p`` with ``seed``; score the training, validation and test images (one grid job).

    The seed splits the pool into training and validation images (:func:`digitlab.train.stratified_split`).
    A ``curves`` point hands the whole pool to training with the same ``val_fraction``, so the engine
    carves the very same split, records validation loss/accuracy per epoch and keeps the best epoch.
    """
    tcfg = replace(TrainConfig(), **p["train"], device=device)
    tr, va = stratified_split(y_pool, val_fraction, seed)
    evals = {"train": (x_pool[tr], y_pool[tr]), "val": (x_pool[va], y_pool[va]), "test": (x_test, y_test)}
    if p["curves"]:
        x_fit, y_fit, tcfg = x_pool, y_pool, replace(tcfg, val_fraction=val_fraction)
    else:
        x_fit, y_fit, tcfg = x_pool[tr], y_pool[tr], replace(tcfg, val_fraction=0.0)
    res = fit_and_score(p["net"], p["net_params"], x_fit, y_fit, evals, tcfg, seed=seed, n_classes=n_classes, keep_model=True)
    out = {k: res[k] for k in ("params", "train_seconds", "best_epoch", "epochs_run", "steps", "history")}
    for s in evals:
        out[f"{s}_acc"], out[f"{s}_loss"] = res[f"{s}_acc"], res[f"{s}_loss"]
    out["gap"] = out["train_acc"] - out["test_acc"]
    return out | weight_stats(res["model"])


def fit_logreg(p: dict, seed: int, threads: int, x_pool, y_pool, x_test, y_test, val_fraction: float, max_iter: int) -> dict[str, Any]:
    """Fit multinomial logistic regression with ``p["penalty"]`` at ``p["C"]`` on the same training
    images a network of this seed gets; score training, validation and test images."""
    from sklearn.exceptions import ConvergenceWarning

    from digitlab.models.classic import make_model

    tr, va = stratified_split(y_pool, val_fraction, seed)
    model = make_model("logreg", random_state=seed, penalty=p["penalty"], C=p["C"], max_iter=max_iter, tol=1e-3)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_pool[tr], y_pool[tr])
    out: dict[str, Any] = {"train_seconds": time.perf_counter() - t0}
    for name, (x, y) in {"train": (x_pool[tr], y_pool[tr]), "val": (x_pool[va], y_pool[va]), "test": (x_test, y_test)}.items():
        proba = model.predict_proba(x)
        idx = np.searchsorted(model.classes_, y)
        out[f"{name}_acc"] = float(np.mean(model.classes_[proba.argmax(1)] == y))
        out[f"{name}_loss"] = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), idx], 1e-12, None))))
    coef = model[-1].coef_
    out.update(gap=out["train_acc"] - out["test_acc"], nonzero_frac=float(np.mean(np.abs(coef) > 1e-8)),
               l2_sum=float(np.sum(coef**2)), n_iter=int(np.max(model[-1].n_iter_)))
    return out


# =============================================================================================
# Summaries
# =============================================================================================

METRICS = ("train_acc", "val_acc", "test_acc", "train_loss", "val_loss", "test_loss", "gap", "l2_sum", "l1_sum", "small_frac",
           "params", "train_seconds", "steps", "epochs_run", "best_epoch")  # fmt: skip


def mean_of(rows: list[dict], p: dict) -> dict[str, Any]:
    """Mean over seeds of point ``p``'s metrics (plus the first seed's histogram and history)."""
    mine = [r for r in rows if r["_key"] == key(p)]
    s = summarise(mine, by=["_key"], metrics=[m for m in METRICS if m in mine[0]] + [m for m in ("nonzero_frac", "n_iter") if m in mine[0]])[0]
    out = {m[: -len("_mean")]: v for m, v in s.items() if m.endswith("_mean")}
    out["test_acc_sd"] = s.get("test_acc_sd", 0.0)
    out["n"] = s["n"]
    for extra in ("w_hist", "history"):
        if extra in mine[0]:
            out[extra] = mine[0][extra]
    return out


def best_on_val(items: dict[Any, dict]) -> Any:
    """The key whose mean validation accuracy is highest (ties: lower validation loss, then the first)."""
    return max(items, key=lambda k: (round(items[k]["val_acc"], 6), -items[k]["val_loss"]))


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def pts(x: float) -> str:
    return f"{100 * x:+.2f} points"


def _row(label: dict, m: dict, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    row = dict(label)
    for k in ("train_acc", "val_acc", "test_acc", "gap"):
        row[k] = round(100 * m[k], 2)
    for k in ("train_loss", "val_loss", "test_loss"):
        row[k] = round(m[k], 4)
    for k in extra:
        row[k] = m[k] if isinstance(m[k], str) else round(float(m[k]), 4 if abs(m[k]) < 100 else 1)
    return row


# =============================================================================================
# Findings (sentences computed from the numbers)
# =============================================================================================


def penalty_findings(name: str, kind: str, res: dict[float, dict]) -> list[str]:
    zero, best = res[0.0], best_on_val(res)
    top = max(res)
    what = "L2 (coupled, λ·Σw²)" if kind == "l2" else "L1 (λ·Σ|w|)"
    s = (f"{NET_WORDS[name]}, {what}: the strength best on validation is λ = {best:g} (validation {pct(res[best]['val_acc'])}); "
         f"on test it scores {pct(res[best]['test_acc'])} against {pct(zero['test_acc'])} without a penalty "
         f"({pts(res[best]['test_acc'] - zero['test_acc'])}), and the train-test gap goes from {100 * zero['gap']:.2f} to "
         f"{100 * res[best]['gap']:.2f} points. At the largest strength (λ = {top:g}) training accuracy is "
         f"{pct(res[top]['train_acc'])} and test {pct(res[top]['test_acc'])}")  # fmt: skip
    s += ": the penalty has become too strong (under-fitting)." if res[top]["train_acc"] < zero["train_acc"] - 0.01 else "."
    if kind == "l2":
        ratio = zero["l2_sum"] / max(res[top]["l2_sum"], 1e-12)
        s += (f" The sum of squared weights falls from {zero['l2_sum']:.1f} (λ = 0) to {res[top]['l2_sum']:.3g} "
              + (f"({ratio:.0f}x smaller)." if ratio < 1e3 else "(the weights have collapsed towards zero)."))
    else:
        s += (f" The share of weights below 10⁻³ in magnitude rises from {100 * zero['small_frac']:.1f} % to "
              f"{100 * res[top]['small_frac']:.1f} %: L1 drives weights to (near) zero.")
    return [s]


def logreg_findings(res: dict[tuple[str, float], dict], none: dict) -> list[str]:
    out = []
    for pen in sorted({p for p, _ in res}):
        mine = {c: m for (p, c), m in res.items() if p == pen}
        c = best_on_val(mine)
        m = mine[c]
        out.append(f"Logistic regression, {pen.upper()}: C = {c:g} is best on validation ({pct(m['val_acc'])}); test "
                   f"{pct(m['test_acc'])} against {pct(none['test_acc'])} without a penalty ({pts(m['test_acc'] - none['test_acc'])}); "
                   f"train-test gap {100 * m['gap']:.2f} points (no penalty: {100 * none['gap']:.2f}); "
                   f"{100 * m['nonzero_frac']:.0f} % of its coefficients are non-zero.")  # fmt: skip
    return out


def dropout_findings(res: dict[tuple[str, float], dict]) -> list[str]:
    zero = next(m for (pl, r), m in res.items() if r == 0.0)
    nonzero = {k: m for k, m in res.items() if k[1] > 0}
    if not nonzero:
        return []
    (place, rate) = best_on_val(nonzero)
    m = nonzero[(place, rate)]
    out = [f"Dropout: the best setting on validation is rate {rate:g} {PLACE_WORDS[place]} (validation {pct(m['val_acc'])}, test "
           f"{pct(m['test_acc'])}, {pts(m['test_acc'] - zero['test_acc'])} over no dropout); it narrows the train-test gap from "
           f"{100 * zero['gap']:.2f} to {100 * m['gap']:.2f} points."]  # fmt: skip
    per_place = []
    for pl in dict.fromkeys(k[0] for k in nonzero):
        ms = [m for k, m in nonzero.items() if k[0] == pl]
        per_place.append(f"{PLACE_WORDS[pl]} {100 * np.mean([x['test_acc'] - zero['test_acc'] for x in ms]):+.2f}")
    top = max(k[1] for k in nonzero)
    worst = min((k for k in nonzero if k[1] == top), key=lambda k: nonzero[k]["train_acc"])
    out.append(f"Mean change in test accuracy over the non-zero rates, by placement (points): {'; '.join(per_place)}. At rate "
               f"{top:g} {PLACE_WORDS[worst[0]]} the training accuracy is {pct(nonzero[worst]['train_acc'])} "
               f"(no dropout: {pct(zero['train_acc'])}).")  # fmt: skip
    return out


def ladder_findings(res: dict[str, dict]) -> list[str]:
    best = best_on_val(res)
    widest = max(res, key=lambda r: res[r]["gap"])
    cells = "; ".join(f"{RUNG_WORDS[r]} {res[r]['params']:,.0f} parameters, train {100 * res[r]['train_acc']:.1f} %, test "
                      f"{100 * res[r]['test_acc']:.2f} %, gap {100 * res[r]['gap']:.1f}" for r in res)  # fmt: skip
    return [f"Complexity ladder ({cells}). The widest train-test gap is the {RUNG_WORDS[widest]}'s ({100 * res[widest]['gap']:.1f} "
            f"points); the model to pick on validation is the {RUNG_WORDS[best]} (validation {pct(res[best]['val_acc'])}, test "
            f"{pct(res[best]['test_acc'])}, gap {100 * res[best]['gap']:.1f} points)."]  # fmt: skip


def remedies_findings(rem: list[dict]) -> tuple[list[str], str]:
    base = rem[0]
    others = rem[1:]
    gains = "; ".join(f"{r['remedy']} {r['d_test']:+.2f} points on test, gap {r['gap']:.2f}" for r in others)
    best = max(others, key=lambda r: r["d_test"])
    text = (f"Over-fitting setting (the small CNN without regularisation, last epoch): training {base['train_acc']:.2f} %, test "
            f"{base['test_acc']:.2f} %, a gap of {base['gap']:.2f} points. Recovered: {gains}.")  # fmt: skip
    head = (f"Trained without regularisation on {base['n_train']:,} images, the CNN reaches {base['train_acc']:.1f} % training but "
            f"{base['test_acc']:.2f} % test accuracy (a {base['gap']:.1f}-point gap); {best['remedy']} recovers the most "
            f"({best['d_test']:+.2f} points on test, gap {best['gap']:.1f}).")  # fmt: skip
    return [text], head


def curve_rows(history: list[dict]) -> list[dict]:
    """Per-epoch rows of a training history, accuracies in %."""
    return [{"epoch": h["epoch"], "train_loss": round(h["train_loss"], 4), "train_acc": round(100 * h["train_acc"], 2),
             "val_loss": round(h["val_loss"], 4), "val_acc": round(100 * h["val_acc"], 2), "lr": float(f"{h['lr']:.3g}")}
            for h in history]  # fmt: skip


def curve_finding(history: list[dict], kept: int, patience: int) -> str:
    v = np.array([h["val_loss"] for h in history])
    a = np.array([h["val_acc"] for h in history])
    tl = np.array([h["train_loss"] for h in history])
    e_loss = int(np.argmin(v)) + 1
    best, since, stop = -1.0, 0, len(history)
    for i, acc in enumerate(a):
        best, since = (acc, 0) if acc > best else (best, since + 1)
        if since >= patience:
            stop = i + 1
            break
    return (f"Training curves of the over-fitting setting: validation loss is lowest at epoch {e_loss} ({v.min():.3f}) and ends at "
            f"{v[-1]:.3f} after {len(history)} epochs while the training loss falls from {tl[e_loss - 1]:.3f} to {tl[-1]:.4f}; "
            f"early stopping keeps epoch {kept}, the best on validation accuracy (ties go to the lower validation loss)"
            + (", which is the last epoch, so here it changes nothing" if kept == len(history) else "")
            + f". Stopping after {patience} epochs without a better validation accuracy would end training at epoch {stop} "
            f"of {len(history)}.")  # fmt: skip


# =============================================================================================
# Figures
# =============================================================================================


def _strength_x(values: list[float]) -> tuple[np.ndarray, list[str]]:
    """Positions on a log axis with 0 drawn one decade left of the smallest positive value."""
    pos = [v for v in values if v > 0]
    zero_at = min(pos) / 10 if pos else 1.0
    return np.array([v if v > 0 else zero_at for v in values]), [f"{v:g}" if v > 0 else "0" for v in values]


def plot_penalties(name: str, by_kind: dict[str, dict[float, dict]]):
    """Accuracy (top) and loss (bottom) on train / validation / test against the strength, one column per penalty."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(by_kind), figsize=(4.6 * len(by_kind), 6), squeeze=False)
    for j, (kind, res) in enumerate(by_kind.items()):
        lams = sorted(res)
        x, labels = _strength_x(lams)
        for s, color in (("train", "C0"), ("val", "C1"), ("test", "C2")):
            axes[0, j].plot(x, [100 * res[v][f"{s}_acc"] for v in lams], "o-", color=color, label=s)
            axes[1, j].plot(x, [res[v][f"{s}_loss"] for v in lams], "o-", color=color, label=s)
        for ax in axes[:, j]:
            ax.set_xscale("log")
            ax.set_xticks(x, labels, fontsize=7)
            ax.minorticks_off()
            ax.set_xlabel(f"{kind.upper()} strength λ")
        axes[0, j].set_title(f"{NET_WORDS[name]}: {kind.upper()} penalty")
        axes[0, j].set_ylabel("accuracy (%)")
        axes[1, j].set_ylabel("cross-entropy")
        axes[0, j].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_weight_hists(name: str, by_kind: dict[str, dict[float, dict]], picks: dict[str, list[float]]):
    """Histograms of log10 |w| of the penalised weights at a few strengths per penalty."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(by_kind), figsize=(4.6 * len(by_kind), 3.2), squeeze=False)
    centres = (HIST_EDGES[:-1] + HIST_EDGES[1:]) / 2
    for ax, (kind, res) in zip(axes[0], by_kind.items()):
        for i, lam in enumerate(picks[kind]):
            h = np.asarray(res[lam]["w_hist"], float)
            ax.step(centres, h / max(h.sum(), 1), where="mid", color=f"C{i}", label=f"λ = {lam:g}")
        ax.set(xlabel="log10 |w| (left bin: ≤ 10⁻⁶)", ylabel="share of weights", title=f"{NET_WORDS[name]}: {kind.upper()}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_logreg(res: dict[tuple[str, float], dict], none: dict):
    """Accuracy against the strength 1/C (0 = no penalty) per penalty, and the share of non-zero coefficients."""
    import matplotlib.pyplot as plt

    pens = sorted({p for p, _ in res})
    fig, axes = plt.subplots(1, len(pens) + 1, figsize=(4.2 * (len(pens) + 1), 3.3))
    for ax, pen in zip(axes, pens):
        cs = sorted((c for p, c in res if p == pen), reverse=True)
        ms = [none] + [res[(pen, c)] for c in cs]
        x, labels = _strength_x([0.0] + [1 / c for c in cs])
        for s, color in (("train", "C0"), ("val", "C1"), ("test", "C2")):
            ax.plot(x, [100 * m[f"{s}_acc"] for m in ms], "o-", color=color, label=s)
        ax.set_xscale("log")
        ax.set_xticks(x, labels, fontsize=7)
        ax.minorticks_off()
        ax.set(xlabel="strength 1/C (0 = no penalty)", ylabel="accuracy (%)", title=f"logistic regression, {pen.upper()}")
        ax.legend(fontsize=8)
        axes[-1].plot(x, [100 * m["nonzero_frac"] for m in ms], "o-", label=pen.upper())
    axes[-1].set_xscale("log")
    axes[-1].set_xticks(x, labels, fontsize=7)
    axes[-1].minorticks_off()
    axes[-1].set(xlabel="strength 1/C", ylabel="non-zero coefficients (%)", title="sparsity")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_dropout(res: dict[tuple[str, float], dict], places: list[str], rates: list[float]):
    """Heatmaps: test accuracy and train-test gap per placement (rows) and rate (columns)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.1 * len(rates) * 2, 0.7 * len(places) + 1.8))
    for ax, (metric, title, cmap) in zip(axes, (("test_acc", "test accuracy (%)", "viridis"), ("gap", "train − test gap (points)", "magma_r"))):
        mat = np.array([[100 * res[(p, r)][metric] for r in rates] for p in places])
        im = ax.imshow(mat, cmap=cmap, aspect="auto")
        for i, j in np.ndindex(mat.shape):
            ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if (mat[i, j] < mat.mean()) == (metric == "test_acc") else "black")
        ax.set(xticks=range(len(rates)), xticklabels=[f"{r:g}" for r in rates], yticks=range(len(places)),
               yticklabels=[PLACE_SHORT[p] for p in places], xlabel="dropout rate", title=title)
        fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    return fig


def plot_ladder(rows: list[dict]):
    """Train and test accuracy per rung (parameter count on the labels), and the gap."""
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    x = np.arange(len(rows))
    labels = ["\n".join(textwrap.wrap(r["model"], 12)) + f"\n{r['params']:,}" for r in rows]
    ax.plot(x, [r["train_acc"] for r in rows], "o-", label="train")
    ax.plot(x, [r["val_acc"] for r in rows], "o-", label="validation")
    ax.plot(x, [r["test_acc"] for r in rows], "o-", label="test")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set(ylabel="accuracy (%)", title="complexity ladder (parameters under the names)")
    ax.legend(fontsize=8)
    ax2.bar(x, [r["gap"] for r in rows], color="C3")
    ax2.set_xticks(x, labels, fontsize=7)
    ax2.set(ylabel="train − test gap (points)", title="over-fitting")
    fig.tight_layout()
    return fig


def plot_remedies(history: list[dict], kept: int, rem: list[dict]):
    """Left two panels: the over-fitting setting's curves; right: test accuracy and gap per remedy."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
    ep = np.arange(1, len(history) + 1)
    best = kept
    for ax, m, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "acc", "accuracy (%)")):
        scale = 100 if m == "acc" else 1
        ax.plot(ep, [scale * h[f"train_{m}"] for h in history], "o-", ms=3, label="train")
        ax.plot(ep, [scale * h[f"val_{m}"] for h in history], "o-", ms=3, label="validation")
        ax.axvline(best, color="0.5", ls="--", lw=1, label=f"best validation epoch ({best})")
        ax.set(xlabel="epoch", ylabel=label)
        ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    axes[0].set_title("over-fitting setting: loss")
    axes[1].set_title("over-fitting setting: accuracy")
    x = np.arange(len(rem))
    ax = axes[2]
    ax.bar(x - 0.2, [r["test_acc"] for r in rem], 0.4, label="test accuracy (%)")
    lo = min(r["test_acc"] for r in rem)
    ax.set_ylim(max(0, lo - 3), 100)
    ax.set_xticks(x, [r["remedy"] for r in rem], rotation=25, ha="right", fontsize=8)
    ax2 = ax.twinx()
    ax2.bar(x + 0.2, [r["gap"] for r in rem], 0.4, color="C3", label="train − test gap (points)")
    ax2.set_ylabel("train − test gap (points)")
    ax2.set_ylim(min(0, min(r["gap"] for r in rem)) * 1.1, max(max(r["gap"] for r in rem), 0.1) * 1.6)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("what each remedy recovers")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


# =============================================================================================
# Task entry point
# =============================================================================================


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    part = split(ctx, cfg.n_train + cfg.n_val, cfg.n_test)
    val_fraction = cfg.n_val / (cfg.n_train + cfg.n_val)
    seeds = [ctx.seed + s for s in range(cfg.n_seeds)]
    n_classes = ctx.dataset.n_classes

    pen, drop, ladder = penalty_points(cfg), dropout_points(cfg), ladder_points(cfg)
    base = point(cfg, "cnn", cnn_params(cfg))
    extra = {"early stopping": point(cfg, "cnn", cnn_params(cfg), curves=True),
             "augmentation": point(cfg, "cnn", cnn_params(cfg), augment=cfg.augment)}
    # The remedies' L2 and dropout runs are points of the sweeps: the CNN's L2 sweep and the dropout grid
    # always run (they are parts of the study), so choosing on validation costs no extra training.
    l2_cnn = {lam: point(cfg, "cnn", cnn_params(cfg), l2=lam) for lam in strengths(cfg.l2_values)}
    all_points = list({key(p): p for p in [base, *pen.values(), *drop.values(), *ladder.values(), *extra.values(),
                                            *l2_cnn.values()]}.values())  # fmt: skip
    t0 = time.perf_counter()
    # Finished points go to ctx.points_dir (a killed run, rerun, retrains only those in flight). Their keys: the
    # task's cache key (this config section, seed, device, data fingerprint, code) + the point (net, its params,
    # training settings) + seed + a hash of the arrays, validation fraction, classes and device passed below.
    args = (part.x_train, part.y_train, part.x_test, part.y_test, val_fraction)
    rows = run_grid(train_point, all_points, seeds, args=(*args, n_classes, ctx.device), n_jobs=ctx.n_jobs, backend=ctx.backend,
                    device=ctx.device, threads_per_job=cfg.threads_per_job, progress=ctx.progress, description="overfit: networks",
                    cache_dir=ctx.points_dir)
    lr_points = [{"penalty": "none", "C": 1.0}] + [{"penalty": p, "C": float(c)} for p in cfg.logreg_penalties for c in cfg.logreg_C]
    lr_rows = run_grid(fit_logreg, lr_points, seeds, args=(*args, cfg.logreg_max_iter), n_jobs=ctx.n_jobs, backend=ctx.backend,
                       threads_per_job=cfg.threads_per_job, progress=ctx.progress, description="overfit: logistic regression",
                       cache_dir=ctx.points_dir)
    wall = time.perf_counter() - t0
    for r in rows:
        r["_key"] = key({k: r[k] for k in ("net", "net_params", "train", "curves")})
    for r in lr_rows:
        r["_key"] = key({k: r[k] for k in ("penalty", "C")})
    m = {key(p): mean_of(rows, p) for p in all_points}
    lr_m = {(p["penalty"], p["C"]): mean_of(lr_rows, p) for p in lr_points}

    n_train, n_val = (len(i) for i in stratified_split(part.y_train, val_fraction, ctx.seed))  # the first seed's split
    result = TaskResult(title=TITLE)
    res_pen: dict[str, dict[str, dict[float, dict]]] = {}
    pen_rows = []
    for (name, kind, lam), p in pen.items():
        res_pen.setdefault(name, {}).setdefault(kind, {})[lam] = m[key(p)]
        pen_rows.append(_row({"net": NET_WORDS[name], "penalty": kind.upper(), "strength": lam}, m[key(p)],
                             ("l2_sum", "l1_sum", "small_frac", "params")))  # fmt: skip
    for name, by_kind in res_pen.items():
        for kind, res in by_kind.items():
            result.findings += penalty_findings(name, kind, res)
        picks = {k: sorted({0.0, best_on_val({v: r for v, r in res.items() if v > 0}), max(res)}) for k, res in by_kind.items()}
        add_figure(result.figures, plot_penalties(name, by_kind), ctx.out_dir, f"penalties_{name}",
                   f"{NET_WORDS[name]} on {n_train:,} training images: accuracy (top) and cross-entropy (bottom) on the training, "
                   "validation and test images against the strength of the L1 and L2 penalties (0 drawn at the left end of the log axis).")
        add_figure(result.figures, plot_weight_hists(name, by_kind, picks), ctx.out_dir, f"weights_{name}",
                   f"{NET_WORDS[name]}: distribution of the penalised weights' magnitudes (log10 |w|) without a penalty, at the "
                   "non-zero strength best on validation, and at the largest strength.")  # fmt: skip
    result.tables.append(Table("penalties", pen_rows, "L1 and L2 penalties on the CNN and the MLP: accuracy (%) and cross-entropy on "
                               "training, validation and test images, train-test gap (points), sum of squared and absolute weights, share "
                               "of weights below 1e-3, parameters; mean over seeds, last epoch."))  # fmt: skip

    none = lr_m[("none", 1.0)]
    lr_res = {k: v for k, v in lr_m.items() if k[0] != "none"}
    result.findings += logreg_findings(lr_res, none)
    add_figure(result.figures, plot_logreg(lr_res, none), ctx.out_dir, "logreg",
               "Multinomial logistic regression on the same training images: accuracy against the penalty strength 1/C (L1 with "
               "the saga solver, L2 with lbfgs; 0 = no penalty), and the share of non-zero coefficients.")
    result.tables.append(Table("logreg", [_row({"penalty": p.upper(), "C": c if p != "none" else "∞"}, v, ("nonzero_frac", "n_iter"))
                                          for (p, c), v in lr_m.items()],
                               "Logistic regression with an L1 or L2 penalty over C (inverse strength): accuracy (%), cross-entropy, "
                               "gap, share of non-zero coefficients and solver iterations."))  # fmt: skip

    rates = strengths(cfg.dropout_rates)
    res_drop = {k: m[key(p)] for k, p in drop.items()}
    result.findings += dropout_findings(res_drop)
    add_figure(result.figures, plot_dropout(res_drop, cfg.dropout_places, rates), ctx.out_dir, "dropout",
               "Dropout placed after every conv block, in the classifier head (on the dense hidden layer) or both, at each rate: "
               "test accuracy (left) and the train-test gap (right). Rate 0 is one run shared by the three rows.")
    result.tables.append(Table("dropout", [_row({"placement": PLACE_WORDS[pl], "rate": r}, v) for (pl, r), v in res_drop.items()],
                               "Dropout rate and placement: accuracy (%), cross-entropy and gap (points); mean over seeds, last epoch."))

    res_lad = {r: m[key(p)] for r, p in ladder.items()}
    lad_rows = [_row({"model": RUNG_WORDS[r], "params": int(v["params"])}, v) for r, v in res_lad.items()]
    result.findings += ladder_findings(res_lad)
    add_figure(result.figures, plot_ladder(lad_rows), ctx.out_dir, "ladder",
               "Models of growing complexity, all trained without regularisation for the same budget: training, validation and "
               "test accuracy (left) and the train-test gap (right).")
    result.tables.append(Table("ladder", lad_rows, "Complexity ladder: parameters, accuracy (%), cross-entropy and gap (points)."))

    l2_best = best_on_val({lam: m[key(p)] for lam, p in l2_cnn.items() if lam > 0})
    d_best = best_on_val({k: v for k, v in res_drop.items() if k[1] > 0})
    remedies = [("none (over-fitting setting)", base, "no regularisation, last epoch"),
                ("early stopping", extra["early stopping"], "checkpoint of the epoch with the best validation accuracy"),
                ("L2 penalty", l2_cnn[l2_best], f"λ = {l2_best:g}, chosen on validation"),
                ("dropout", drop[d_best], f"rate {d_best[1]:g} {PLACE_WORDS[d_best[0]]}, chosen on validation"),
                ("augmentation", extra["augmentation"], f"random {cfg.augment} of every training batch")]
    b = m[key(base)]
    rem_rows = []
    for label, p, how in remedies:
        v = m[key(p)]
        row = _row({"remedy": label, "setting": how}, v)
        row.update(d_test=round(100 * (v["test_acc"] - b["test_acc"]), 2), d_gap=round(100 * (v["gap"] - b["gap"]), 2),
                   n_train=n_train, epochs=round(v["epochs_run"], 1), steps=round(v["steps"]))
        rem_rows.append(row)
    history = m[key(extra["early stopping"])]["history"]
    kept = int(round(m[key(extra["early stopping"])]["best_epoch"]))
    rem_text, result.headline = remedies_findings(rem_rows)
    pick = best_on_val(res_lad)
    result.headline += (f" Of the ladder from softmax regression to a deeper CNN, validation picks the {RUNG_WORDS[pick]} "
                        f"({pct(res_lad[pick]['test_acc'])} on test, gap {100 * res_lad[pick]['gap']:.1f} points).")
    result.findings += rem_text + [curve_finding(history, kept, cfg.patience)]
    add_figure(result.figures, plot_remedies(history, kept, rem_rows), ctx.out_dir, "remedies",
               "Left: training and validation loss and accuracy per epoch of the over-fitting setting (the small CNN, no "
               "regularisation). Right: test accuracy and train-test gap without a remedy and with each remedy.")
    result.tables.append(Table("remedies", rem_rows, "The over-fitting setting and each remedy: accuracy (%), cross-entropy, gap "
                               "(points), change in test accuracy and gap against no remedy, epochs and optimiser steps.",
                               ["remedy", "setting", "train_acc", "val_acc", "test_acc", "test_loss", "gap", "d_test", "d_gap",
                                "epochs", "steps"]))  # fmt: skip
    result.tables.append(Table("curves", curve_rows(history), "Per-epoch training and validation cross-entropy and accuracy (%) of "
                               "the over-fitting setting (first seed); training figures are running means over the epoch's batches.",
                               ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]))

    steps = sorted({round(m[key(p)]["steps"]) for p in all_points})
    result.summary = (f"On {n_train:,} training images of {ctx.dataset.name} (a stratified subset), with "
                      f"{n_val:,} other training images for validation and {part.n_test:,} test images: "
                      "L1 and L2 penalties on a CNN and an MLP, logistic regression over C, dropout by rate and placement, a "
                      "ladder of models from softmax regression to a deeper CNN, and what early stopping, L2, dropout and "
                      "augmentation recover from a deliberately over-fitted CNN.")  # fmt: skip
    cpu = sum(r["cpu_seconds"] for r in rows + lr_rows)
    result.notes += part.notes + [
        "L2 here is the coupled penalty λ·Σw² over the weight matrices and convolution kernels (not biases), added to the "
        "training loss; L1 is λ·Σ|w|. It is not AdamW's weight decay, which shrinks weights outside the adaptive step "
        "(decoupled): every network here trains with AdamW at weight decay 0, so the penalty varied is the only one.",
        f"Every network trains for {cfg.epochs} epochs of batches of {cfg.batch_size} and at least {cfg.min_steps} optimiser steps "
        f"(runs had {', '.join(map(str, steps))} steps), one-cycle learning rate peaking at {cfg.lr:g}; the weights of the last "
        "epoch are scored, so nothing is chosen on the test images. Validation images choose the strength, rate and model.",
        f"The CNN has {cfg.cnn_blocks} conv blocks (3x3 conv, ReLU, 2x2 max-pool; {cfg.cnn_width} channels doubling per block), a "
        f"dense hidden layer of {cfg.cnn_hidden} units and no batch normalisation"
        + (" (kept off because with it the scale of a kernel does not change the function, so a penalty on kernels would only "
           "change the effective step size)." if not cfg.cnn_batch_norm else ".")
        + f" The MLP has hidden layers {list(cfg.mlp_hidden)}, the deep MLP {list(cfg.deep_mlp_hidden)}; softmax regression "
        f"is the MLP without hidden layer; the deeper CNN has {cfg.deeper_cnn_convs} convs per block.",
        "Dropout 'after every conv block' zeroes activations of the feature maps after each block's pooling; 'in the head' "
        "zeroes units of the dense hidden layer before the output layer; the model is scored with dropout off.",
        "Early stopping keeps the weights of the epoch with the best validation accuracy, judged on the same validation images "
        "the other runs are scored on; the other remedies take the L2 strength and dropout setting best on validation.",
        f"Logistic regression: L1 uses the saga solver (at most {cfg.logreg_max_iter} passes, so at large C it may stop before "
        "converging), L2 and no penalty lbfgs; strength is 1/C.",
        f"{len(all_points)} distinct networks x {cfg.n_seeds} seed(s) and {len(lr_points)} logistic regressions; {cpu:.0f} CPU "
        f"seconds in {wall:.0f} s of wall time.",
    ]
    result.metrics = {
        "n_train": n_train, "n_val": n_val, "n_test": part.n_test, "runs": len(rows) + len(lr_rows),
        "baseline": {k: rem_rows[0][k] for k in ("train_acc", "test_acc", "gap")},
        "remedies": {r["remedy"]: {"test_acc": r["test_acc"], "gap": r["gap"], "d_test": r["d_test"]} for r in rem_rows},
        "best_strength": {f"{n}_{k}": best_on_val(res) for n, by in res_pen.items() for k, res in by.items()},
        "best_dropout": {"placement": d_best[0], "rate": d_best[1]},
        "ladder": {r: {"params": int(v["params"]), "test_acc": round(100 * v["test_acc"], 2), "gap": round(100 * v["gap"], 2)}
                   for r, v in res_lad.items()},
        "cpu_seconds": round(cpu, 1), "wall_seconds": round(wall, 1),
    }  # fmt: skip
    return result


__all__ = ["Config", "PROFILES", "NAME", "TITLE", "run", "dropout_params", "cnn_params", "point", "train_point", "fit_logreg",
           "weight_stats", "penalty_findings", "dropout_findings", "ladder_findings"]
