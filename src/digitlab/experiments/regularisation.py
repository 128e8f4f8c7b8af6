"""Regularisation and model complexity: L1/L2 penalties, logistic regression over C, dropout rate x
placement, a ladder of models and what cures over-fitting (one experiment: :func:`regularisation`).

One small stratified training set so that over-fitting shows, a validation set drawn from the other
training images (the pool is split per seed by :func:`digitlab.train.stratified_split`) to choose settings
on, and the test set to report them. Every network trains through :func:`digitlab.grid.run_grid` and
:func:`digitlab.grid.fit_and_score` for one budget (``epochs``, at least ``min_steps`` optimiser steps) with
AdamW at ``weight_decay = 0``, so the only regulariser in a run is the one varied; the model scored is the
**last** epoch's, except in the early-stopping remedy. Points shared between parts (the unregularised CNN is
the strength-0 point, the rate-0 point, a rung of the ladder and the remedies' baseline) are trained once.
"""

from __future__ import annotations

import json
import textwrap
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from digitlab.exceptions import ConfigError
from digitlab.experiments.base import StudyResult, as_data
from digitlab.plots import panels

PENALTY_NETS = ("cnn", "mlp")
PLACES = ("conv", "head", "both")
PLACE_WORDS = {
    "conv": "after every conv block",
    "head": "in the head",
    "both": "after every conv block and in the head",
}
PLACE_SHORT = {"conv": "after conv blocks", "head": "in the head", "both": "both"}  # heatmap row labels
RUNGS = ("softmax", "mlp", "deep_mlp", "cnn", "deeper_cnn")
RUNG_WORDS = {
    "softmax": "softmax regression",
    "mlp": "one-hidden-layer MLP",
    "deep_mlp": "deep MLP",
    "cnn": "small CNN",
    "deeper_cnn": "deeper CNN",
}
NET_WORDS = {"cnn": "CNN", "mlp": "MLP"}
LOGREG_PENALTIES = ("l1", "l2")
REMEDIES = ("none", "early_stopping", "l2", "dropout", "augmentation")
REMEDY_WORDS = {
    "none": "none (over-fitting setting)",
    "early_stopping": "early stopping",
    "l2": "L2 penalty",
    "dropout": "dropout",
    "augmentation": "augmentation",
}
HIST_EDGES = np.linspace(
    -6.0, 0.5, 40
)  # log10 |w| bin edges of the weight histograms (below 1e-6 counts in the first bin)


# =============================================================================================
# Points: what each run trains
# =============================================================================================


def dropout_params(place: str, rate: float) -> dict[str, float]:
    """The CNN parameters that put dropout of ``rate`` after every conv block ("conv"), in the head ("head",
    on the dense hidden layer before the output layer) or both."""
    if place not in PLACES:
        raise ConfigError(f"dropout placement {place!r}: unknown; use one of {list(PLACES)}")
    return {
        "dropout_conv": rate if place in ("conv", "both") else 0.0,
        "dropout_fc": rate if place in ("head", "both") else 0.0,
    }


def cnn_params(cfg: Any, **over) -> dict[str, Any]:
    """The small CNN of this study (no dropout unless ``over`` sets it)."""
    base = {
        "n_blocks": cfg.cnn_blocks,
        "width": cfg.cnn_width,
        "hidden": cfg.cnn_hidden,
        "batch_norm": cfg.cnn_batch_norm,
        "dropout_conv": 0.0,
        "dropout_fc": 0.0,
    }
    return base | over


def point(cfg: Any, net: str, net_params: dict, curves: bool = False, **train) -> dict[str, Any]:
    """One training run: network, its parameters, TrainConfig overrides; ``curves``: carve the validation
    images inside training (per-epoch validation curves, best-epoch checkpoint kept: early stopping)."""
    base = {
        "epochs": cfg.epochs,
        "min_steps": cfg.min_steps,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "weight_decay": 0.0,
        "l1": 0.0,
        "l2": 0.0,
        "augment": "",
    }
    return {"net": net, "net_params": dict(net_params), "train": base | train, "curves": curves}


def net_of(cfg: Any, name: str) -> tuple[str, dict]:
    """``(family, params)`` of a penalty net ("cnn", "mlp") or a ladder rung."""
    return {
        "cnn": ("cnn", cnn_params(cfg)),
        "mlp": ("mlp", {"hidden": list(cfg.mlp_hidden)}),
        "softmax": ("mlp", {"hidden": []}),
        "deep_mlp": ("mlp", {"hidden": list(cfg.deep_mlp_hidden)}),
        "deeper_cnn": ("cnn", cnn_params(cfg, convs_per_block=cfg.deeper_cnn_convs)),
    }[name]


def strengths(values: list[float]) -> list[float]:
    return sorted({0.0, *map(float, values)})


def penalty_points(cfg: Any) -> dict[tuple[str, str, float], dict]:
    """(net, "l1"/"l2", strength) -> point."""
    out = {}
    for name in cfg.penalty_nets:
        net, params = net_of(cfg, name)
        for kind, values in (("l1", cfg.l1_values), ("l2", cfg.l2_values)):
            for lam in strengths(values):
                out[(name, kind, lam)] = point(cfg, net, params, **{kind: lam})
    return out


def dropout_points(cfg: Any) -> dict[tuple[str, float], dict]:
    """(placement, rate) -> point; rate 0 is the same run for every placement."""
    return {
        (place, r): point(cfg, "cnn", cnn_params(cfg, **dropout_params(place, r)))
        for place in cfg.dropout_places
        for r in strengths(cfg.dropout_rates)
    }


def ladder_points(cfg: Any) -> dict[str, dict]:
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
    return {
        "l2_sum": float(np.sum(w.astype(np.float64) ** 2)),
        "l1_sum": float(np.sum(a, dtype=np.float64)),
        "small_frac": float(np.mean(a < 1e-3)),
        "n_weights": int(w.size),
        "w_hist": np.histogram(logs, HIST_EDGES)[0].tolist(),
    }


def train_point(
    p: dict,
    seed: int,
    threads: int,
    x_pool,
    y_pool,
    x_test,
    y_test,
    val_fraction: float,
    n_classes: int,
    device: str,
) -> dict[str, Any]:
    """Train point ``p`` with ``seed``; score the training, validation and test images (one grid job).

    The seed splits the pool into training and validation images (:func:`digitlab.train.stratified_split`).
    A ``curves`` point hands the whole pool to training with the same ``val_fraction``, so the engine
    carves the very same split, records validation loss/accuracy per epoch and keeps the best epoch.
    """
    from digitlab.grid import fit_and_score
    from digitlab.train import TrainConfig, stratified_split

    tcfg = replace(TrainConfig(), **p["train"], device=device)
    tr, va = stratified_split(y_pool, val_fraction, seed)
    evals = {"train": (x_pool[tr], y_pool[tr]), "val": (x_pool[va], y_pool[va]), "test": (x_test, y_test)}
    if p["curves"]:
        x_fit, y_fit, tcfg = x_pool, y_pool, replace(tcfg, val_fraction=val_fraction)
    else:
        x_fit, y_fit, tcfg = x_pool[tr], y_pool[tr], replace(tcfg, val_fraction=0.0)
    res = fit_and_score(
        p["net"], p["net_params"], x_fit, y_fit, evals, tcfg, seed=seed, n_classes=n_classes, keep_model=True
    )
    out = {k: res[k] for k in ("params", "train_seconds", "best_epoch", "epochs_run", "steps", "history")}
    for s in evals:
        out[f"{s}_acc"], out[f"{s}_loss"] = res[f"{s}_acc"], res[f"{s}_loss"]
    out["gap"] = out["train_acc"] - out["test_acc"]
    return out | weight_stats(res["model"])


def fit_logreg(
    p: dict, seed: int, threads: int, x_pool, y_pool, x_test, y_test, val_fraction: float, max_iter: int
) -> dict[str, Any]:
    """Fit multinomial logistic regression with ``p["penalty"]`` at ``p["C"]`` on the same training
    images a network of this seed gets; score training, validation and test images."""
    from sklearn.exceptions import ConvergenceWarning

    from digitlab import metrics as M
    from digitlab.models.classic import make_model
    from digitlab.train import stratified_split

    tr, va = stratified_split(y_pool, val_fraction, seed)
    model = make_model(
        "logreg", random_state=seed, penalty=p["penalty"], C=p["C"], max_iter=max_iter, tol=1e-3
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_pool[tr], y_pool[tr])
    out: dict[str, Any] = {"train_seconds": time.perf_counter() - t0}
    for name, (x, y) in {
        "train": (x_pool[tr], y_pool[tr]),
        "val": (x_pool[va], y_pool[va]),
        "test": (x_test, y_test),
    }.items():
        proba = model.predict_proba(x)
        out[f"{name}_acc"] = float(np.mean(model.classes_[proba.argmax(1)] == y))
        out[f"{name}_loss"] = M.log_loss(y, proba)
    coef = model[-1].coef_
    out.update(
        gap=out["train_acc"] - out["test_acc"],
        nonzero_frac=float(np.mean(np.abs(coef) > 1e-8)),
        l2_sum=float(np.sum(coef**2)),
        n_iter=int(np.max(model[-1].n_iter_)),
    )
    return out


# =============================================================================================
# Summaries
# =============================================================================================

METRICS = (
    "train_acc",
    "val_acc",
    "test_acc",
    "train_loss",
    "val_loss",
    "test_loss",
    "gap",
    "l2_sum",
    "l1_sum",
    "small_frac",
    "params",
    "train_seconds",
    "steps",
    "epochs_run",
    "best_epoch",
)


def mean_of(rows: list[dict], p: dict) -> dict[str, Any]:
    """Mean over seeds of point ``p``'s metrics (plus the first seed's histogram and history)."""
    from digitlab.grid import summarise

    mine = [r for r in rows if r["_key"] == key(p)]
    s = summarise(
        mine,
        by=["_key"],
        metrics=[m for m in METRICS if m in mine[0]]
        + [m for m in ("nonzero_frac", "n_iter") if m in mine[0]],
    )[0]
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


def _records(df: pd.DataFrame) -> list[dict]:
    return df.to_dict("records")


# =============================================================================================
# The result
# =============================================================================================

_DROP = ("history", "_key")  # kept out of the part tables (the early-stopping run's history is ``curves``)


@dataclass
class Regularisation(StudyResult):
    """What :func:`regularisation` measured; every metric is a mean over seeds (accuracies and gaps as fractions).

    ``penalties``: per network (``net``), penalty (``penalty`` "l1"/"l2") and ``strength`` (0 included) the
    accuracy, cross-entropy and train-test ``gap`` on training / validation / test images, ``l2_sum``,
    ``l1_sum``, ``small_frac`` (share of weights below 1e-3), ``params`` and ``w_hist`` (histogram of
    log10 |w| on :data:`HIST_EDGES`, first seed). ``logreg``: per ``penalty`` ("none", "l1", "l2") and ``C``,
    the same scores plus ``nonzero_frac`` and ``n_iter``. ``dropout``: per ``placement`` and ``rate``.
    ``ladder``: per rung (``model``: a key of :data:`RUNG_WORDS`). ``remedies``: per remedy (a key of
    :data:`REMEDY_WORDS`) its scores and ``d_test`` / ``d_gap`` against no remedy. ``curves``: per-epoch
    training and validation loss and accuracy of the over-fitting setting (first seed); ``kept``: the epoch
    early stopping keeps. ``runs``: one row per network and seed.
    """

    penalties: pd.DataFrame
    logreg: pd.DataFrame
    dropout: pd.DataFrame
    ladder: pd.DataFrame
    remedies: pd.DataFrame
    curves: pd.DataFrame
    runs: pd.DataFrame
    kept: int
    l2_best: float
    dropout_best: tuple[str, float]
    n_train: int
    n_val: int
    n_test: int
    n_networks: int
    n_logreg: int
    steps: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    _main = "remedies"

    # --- the parts as {key: metrics} ------------------------------------------------------------
    def penalty_results(self) -> dict[str, dict[str, dict[float, dict]]]:
        """``{net: {"l1"/"l2": {strength: metrics}}}``."""
        out: dict[str, dict[str, dict[float, dict]]] = {}
        for r in _records(self.penalties):
            out.setdefault(r["net"], {}).setdefault(r["penalty"], {})[r["strength"]] = r
        return out

    def logreg_results(self) -> tuple[dict[tuple[str, float], dict], dict]:
        """``({(penalty, C): metrics}, metrics of the fit without penalty)``."""
        rows = _records(self.logreg)
        return {(r["penalty"], r["C"]): r for r in rows if r["penalty"] != "none"}, next(
            r for r in rows if r["penalty"] == "none"
        )

    def dropout_results(self) -> dict[tuple[str, float], dict]:
        """``{(placement, rate): metrics}``."""
        return {(r["placement"], r["rate"]): r for r in _records(self.dropout)}

    def ladder_results(self) -> dict[str, dict]:
        """``{rung: metrics}``, simplest first."""
        return {r["model"]: r for r in _records(self.ladder)}

    def history(self) -> list[dict]:
        """The over-fitting setting's per-epoch history (the early-stopping run, first seed)."""
        return _records(self.curves)

    # --- figures ---------------------------------------------------------------------------------
    def plot(self, ax=None):
        return self.plot_remedies(ax)

    def plot_penalties(self, net: str = "cnn", ax=None):
        """Accuracy (top) and loss (bottom) on train / validation / test against the strength, one column per penalty."""
        by_kind = self.penalty_results()[net]
        fig, axes = panels(ax, 2, len(by_kind), (4.6 * len(by_kind), 6))
        for j, (kind, res) in enumerate(by_kind.items()):
            lams = sorted(res)
            x, labels = _strength_x(lams)
            for s, color in (("train", "C0"), ("val", "C1"), ("test", "C2")):
                axes[0, j].plot(x, [100 * res[v][f"{s}_acc"] for v in lams], "o-", color=color, label=s)
                axes[1, j].plot(x, [res[v][f"{s}_loss"] for v in lams], "o-", color=color, label=s)
            for a in axes[:, j]:
                a.set_xscale("log")
                a.set_xticks(x, labels, fontsize=7)
                a.minorticks_off()
                a.set_xlabel(f"{kind.upper()} strength λ")
            axes[0, j].set_title(f"{NET_WORDS[net]}: {kind.upper()} penalty")
            axes[0, j].set_ylabel("accuracy (%)")
            axes[1, j].set_ylabel("cross-entropy")
            axes[0, j].legend(fontsize=8)
        fig.tight_layout()
        return fig

    def weight_picks(self, net: str) -> dict[str, list[float]]:
        """Per penalty: 0, the non-zero strength best on validation and the largest strength."""
        return {
            k: sorted({0.0, best_on_val({v: r for v, r in res.items() if v > 0}), max(res)})
            for k, res in self.penalty_results()[net].items()
        }

    def plot_weights(self, net: str = "cnn", ax=None):
        """Histograms of log10 |w| of the penalised weights at the strengths of :meth:`weight_picks`."""
        by_kind, picks = self.penalty_results()[net], self.weight_picks(net)
        fig, axes = panels(ax, 1, len(by_kind), (4.6 * len(by_kind), 3.2))
        centres = (HIST_EDGES[:-1] + HIST_EDGES[1:]) / 2
        for a, (kind, res) in zip(axes[0], by_kind.items()):
            for i, lam in enumerate(picks[kind]):
                h = np.asarray(res[lam]["w_hist"], float)
                a.step(centres, h / max(h.sum(), 1), where="mid", color=f"C{i}", label=f"λ = {lam:g}")
            a.set(
                xlabel="log10 |w| (left bin: ≤ 10⁻⁶)",
                ylabel="share of weights",
                title=f"{NET_WORDS[net]}: {kind.upper()}",
            )
            a.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def plot_logreg(self, ax=None):
        """Accuracy against the strength 1/C (0 = no penalty) per penalty, and the share of non-zero coefficients."""
        res, none = self.logreg_results()
        pens = sorted({p for p, _ in res})
        fig, axes = panels(ax, 1, len(pens) + 1, (4.2 * (len(pens) + 1), 3.3))
        axes = axes[0]
        for a, pen in zip(axes, pens):
            cs = sorted((c for p, c in res if p == pen), reverse=True)
            ms = [none] + [res[(pen, c)] for c in cs]
            x, labels = _strength_x([0.0] + [1 / c for c in cs])
            for s, color in (("train", "C0"), ("val", "C1"), ("test", "C2")):
                a.plot(x, [100 * m[f"{s}_acc"] for m in ms], "o-", color=color, label=s)
            a.set_xscale("log")
            a.set_xticks(x, labels, fontsize=7)
            a.minorticks_off()
            a.set(
                xlabel="strength 1/C (0 = no penalty)",
                ylabel="accuracy (%)",
                title=f"logistic regression, {pen.upper()}",
            )
            a.legend(fontsize=8)
            axes[-1].plot(x, [100 * m["nonzero_frac"] for m in ms], "o-", label=pen.upper())
        axes[-1].set_xscale("log")
        axes[-1].set_xticks(x, labels, fontsize=7)
        axes[-1].minorticks_off()
        axes[-1].set(xlabel="strength 1/C", ylabel="non-zero coefficients (%)", title="sparsity")
        axes[-1].legend(fontsize=8)
        fig.tight_layout()
        return fig

    def plot_dropout(self, ax=None):
        """Heatmaps: test accuracy and train-test gap per placement (rows) and rate (columns)."""
        res = self.dropout_results()
        places, rates = list(dict.fromkeys(p for p, _ in res)), sorted({r for _, r in res})
        fig, axes = panels(ax, 1, 2, (4 + 1.1 * len(rates) * 2, 0.7 * len(places) + 1.8))
        for a, (metric, title, cmap) in zip(
            axes[0],
            (("test_acc", "test accuracy (%)", "viridis"), ("gap", "train − test gap (points)", "magma_r")),
        ):
            mat = np.array([[100 * res[(p, r)][metric] for r in rates] for p in places])
            im = a.imshow(mat, cmap=cmap, aspect="auto")
            for i, j in np.ndindex(mat.shape):
                a.text(
                    j,
                    i,
                    f"{mat[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if (mat[i, j] < mat.mean()) == (metric == "test_acc") else "black",
                )
            a.set(
                xticks=range(len(rates)),
                xticklabels=[f"{r:g}" for r in rates],
                yticks=range(len(places)),
                yticklabels=[PLACE_SHORT[p] for p in places],
                xlabel="dropout rate",
                title=title,
            )
            fig.colorbar(im, ax=a, fraction=0.04)
        fig.tight_layout()
        return fig

    def plot_ladder(self, ax=None):
        """Train, validation and test accuracy per rung (parameter count on the labels), and the gap."""
        rows = _records(self.ladder)
        fig, axes = panels(ax, 1, 2, (10, 3.4))
        a, a2 = axes[0]
        x = np.arange(len(rows))
        labels = [
            "\n".join(textwrap.wrap(RUNG_WORDS[r["model"]], 12)) + f"\n{int(r['params']):,}" for r in rows
        ]
        for s, label in (("train", "train"), ("val", "validation"), ("test", "test")):
            a.plot(x, [100 * r[f"{s}_acc"] for r in rows], "o-", label=label)
        a.set_xticks(x, labels, fontsize=7)
        a.set(ylabel="accuracy (%)", title="complexity ladder (parameters under the names)")
        a.legend(fontsize=8)
        a2.bar(x, [100 * r["gap"] for r in rows], color="C3")
        a2.set_xticks(x, labels, fontsize=7)
        a2.set(ylabel="train − test gap (points)", title="over-fitting")
        fig.tight_layout()
        return fig

    def plot_remedies(self, ax=None):
        """Left two panels: the over-fitting setting's curves; right: test accuracy and gap per remedy."""
        history, rem = self.history(), _records(self.remedies)
        fig, axes = panels(ax, 1, 3, (14, 3.5))
        axes = axes[0]
        ep = np.arange(1, len(history) + 1)
        for a, m, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "acc", "accuracy (%)")):
            scale = 100 if m == "acc" else 1
            a.plot(ep, [scale * h[f"train_{m}"] for h in history], "o-", ms=3, label="train")
            a.plot(ep, [scale * h[f"val_{m}"] for h in history], "o-", ms=3, label="validation")
            a.axvline(self.kept, color="0.5", ls="--", lw=1, label=f"best validation epoch ({self.kept})")
            a.set(xlabel="epoch", ylabel=label)
            a.legend(fontsize=8)
        axes[0].set_yscale("log")
        axes[0].set_title("over-fitting setting: loss")
        axes[1].set_title("over-fitting setting: accuracy")
        x = np.arange(len(rem))
        acc, gap = [100 * r["test_acc"] for r in rem], [100 * r["gap"] for r in rem]
        a = axes[2]
        a.bar(x - 0.2, acc, 0.4, label="test accuracy (%)")
        a.set_ylim(max(0, min(acc) - 3), 100)
        a.set_xticks(x, [REMEDY_WORDS[r["remedy"]] for r in rem], rotation=25, ha="right", fontsize=8)
        a2 = a.twinx()
        a2.bar(x + 0.2, gap, 0.4, color="C3", label="train − test gap (points)")
        a2.set_ylabel("train − test gap (points)")
        a2.set_ylim(min(0, min(gap)) * 1.1, max(max(gap), 0.1) * 1.6)
        a.set_ylabel("test accuracy (%)")
        a.set_title("what each remedy recovers")
        handles = a.get_legend_handles_labels()[0] + a2.get_legend_handles_labels()[0]
        a.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper left")
        fig.tight_layout()
        return fig


def _strength_x(values: list[float]) -> tuple[np.ndarray, list[str]]:
    """Positions on a log axis with 0 drawn one decade left of the smallest positive value."""
    pos = [v for v in values if v > 0]
    zero_at = min(pos) / 10 if pos else 1.0
    return np.array([v if v > 0 else zero_at for v in values]), [f"{v:g}" if v > 0 else "0" for v in values]


# =============================================================================================
# The experiment
# =============================================================================================


def regularisation(
    data: Any,
    *,
    n_train: int = 2000,
    n_val: int = 1000,
    n_test: int = 0,
    n_seeds: int = 1,
    seed: int = 0,
    epochs: int = 15,
    min_steps: int = 200,
    batch_size: int = 128,
    lr: float = 0.01,
    cnn_blocks: int = 3,
    cnn_width: int = 16,
    cnn_hidden: int = 128,
    cnn_batch_norm: bool = False,
    deeper_cnn_convs: int = 2,
    mlp_hidden: Sequence[int] = (256,),
    deep_mlp_hidden: Sequence[int] = (256, 256, 256),
    penalty_nets: Sequence[str] = PENALTY_NETS,
    l2_values: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1),
    l1_values: Sequence[float] = (1e-6, 1e-5, 1e-4, 1e-3),
    logreg_C: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
    logreg_penalties: Sequence[str] = LOGREG_PENALTIES,
    logreg_max_iter: int = 50,
    dropout_rates: Sequence[float] = (0.25, 0.5, 0.7),
    dropout_places: Sequence[str] = PLACES,
    ladder: Sequence[str] = RUNGS,
    augment: str = "shift",
    n_jobs: int = 1,
    backend: str = "loky",
    device: str = "cpu",
    threads_per_job: int = 1,
    progress: bool = False,
    cache_dir: Any = None,
) -> Regularisation:
    """Under- and over-fitting on ``n_train`` training images (a stratified subset) with ``n_val`` other
    training images to choose settings on and ``n_test`` test images (0 = all) to report them.

    Five parts: L1 and L2 penalties (coupled: ``l1 * sum|w|``, ``l2 * sum w^2`` over weight matrices and
    kernels, added to the loss) on the nets of ``penalty_nets`` over ``l1_values`` / ``l2_values`` with 0;
    multinomial logistic regression with ``logreg_penalties`` over ``logreg_C`` (and no penalty); dropout at
    ``dropout_rates`` (and 0) ``dropout_places`` ("conv": after every conv block, "head": on the dense hidden
    layer, "both"); the ``ladder`` of models (keys of :data:`RUNG_WORDS`); and the remedies: early stopping,
    the L2 strength and dropout setting best on validation, and ``augment``. Every network trains ``epochs``
    epochs (at least ``min_steps`` steps) with AdamW at weight decay 0; ``n_seeds`` seeds (``seed``,
    ``seed + 1``, ...) draw the weights, the batches and the train/validation split.

    All runs go through :func:`digitlab.grid.run_grid` (``n_jobs``, ``backend``, ``threads_per_job``); with
    ``cache_dir`` every finished point is stored there and reused.
    """
    from digitlab.grid import run_grid
    from digitlab.train import stratified_split

    cfg = SimpleNamespace(
        epochs=epochs,
        min_steps=min_steps,
        batch_size=batch_size,
        lr=lr,
        cnn_blocks=cnn_blocks,
        cnn_width=cnn_width,
        cnn_hidden=cnn_hidden,
        cnn_batch_norm=cnn_batch_norm,
        deeper_cnn_convs=deeper_cnn_convs,
        mlp_hidden=list(mlp_hidden),
        deep_mlp_hidden=list(deep_mlp_hidden),
        penalty_nets=list(penalty_nets),
        l2_values=list(l2_values),
        l1_values=list(l1_values),
        dropout_rates=list(dropout_rates),
        dropout_places=list(dropout_places),
        ladder=list(ladder),
    )
    for name, vals, allowed in (
        ("penalty_nets", penalty_nets, PENALTY_NETS),
        ("logreg_penalties", logreg_penalties, LOGREG_PENALTIES),
        ("dropout_places", dropout_places, PLACES),
        ("ladder", ladder, RUNGS),
    ):
        if not vals or any(v not in allowed for v in vals):
            raise ConfigError(f"{name}: {list(vals)} has unknown or no entries; use some of {list(allowed)}")
    d = as_data(data, n_train + n_val, n_test, seed)
    val_fraction = n_val / (n_train + n_val)
    seeds = [seed + s for s in range(n_seeds)]

    pen, drop, lad = penalty_points(cfg), dropout_points(cfg), ladder_points(cfg)
    base = point(cfg, "cnn", cnn_params(cfg))
    extra = {
        "early_stopping": point(cfg, "cnn", cnn_params(cfg), curves=True),
        "augmentation": point(cfg, "cnn", cnn_params(cfg), augment=augment),
    }
    # The remedies' L2 and dropout runs are points of the sweeps: the CNN's L2 sweep and the dropout grid
    # always run (they are parts of the study), so choosing on validation costs no extra training.
    l2_cnn = {lam: point(cfg, "cnn", cnn_params(cfg), l2=lam) for lam in strengths(cfg.l2_values)}
    all_points = list(
        {
            key(p): p
            for p in [base, *pen.values(), *drop.values(), *lad.values(), *extra.values(), *l2_cnn.values()]
        }.values()
    )
    t0 = time.perf_counter()
    # Point-cache keys: the point (net, its params, training settings) + seed + a hash of the arrays, validation
    # fraction, classes and device passed below (and the caller's cache_dir: e.g. a task's points folder).
    args = (d.x_train, d.y_train, d.x_test, d.y_test, val_fraction)
    rows = run_grid(
        train_point,
        all_points,
        seeds,
        args=(*args, d.n_classes, device),
        n_jobs=n_jobs,
        backend=backend,
        device=device,
        threads_per_job=threads_per_job,
        progress=progress,
        description="overfit: networks",
        cache_dir=cache_dir,
    )
    lr_points = [{"penalty": "none", "C": 1.0}] + [
        {"penalty": p, "C": float(c)} for p in logreg_penalties for c in logreg_C
    ]
    lr_rows = run_grid(
        fit_logreg,
        lr_points,
        seeds,
        args=(*args, logreg_max_iter),
        n_jobs=n_jobs,
        backend=backend,
        threads_per_job=threads_per_job,
        progress=progress,
        description="overfit: logistic regression",
        cache_dir=cache_dir,
    )
    wall = time.perf_counter() - t0
    for r in rows:
        r["_key"] = key({k: r[k] for k in ("net", "net_params", "train", "curves")})
    for r in lr_rows:
        r["_key"] = key({k: r[k] for k in ("penalty", "C")})
    m = {key(p): mean_of(rows, p) for p in all_points}
    lr_m = {(p["penalty"], p["C"]): mean_of(lr_rows, p) for p in lr_points}

    def table(items, drop=("w_hist",)) -> pd.DataFrame:
        return pd.DataFrame(
            [{**label, **{k: v for k, v in mm.items() if k not in _DROP + drop}} for label, mm in items]
        )

    penalties = table(
        [({"net": n, "penalty": k, "strength": lam}, m[key(p)]) for (n, k, lam), p in pen.items()], drop=()
    )
    logreg = table([({"penalty": p, "C": c}, v) for (p, c), v in lr_m.items()])
    res_drop = {k: m[key(p)] for k, p in drop.items()}
    dropout = table([({"placement": pl, "rate": r}, v) for (pl, r), v in res_drop.items()])
    ladder_df = table([({"model": r}, m[key(p)]) for r, p in lad.items()])

    l2_best = best_on_val({lam: m[key(p)] for lam, p in l2_cnn.items() if lam > 0})
    d_best = best_on_val({k: v for k, v in res_drop.items() if k[1] > 0})
    remedy_points = {
        "none": base,
        "early_stopping": extra["early_stopping"],
        "l2": l2_cnn[l2_best],
        "dropout": drop[d_best],
        "augmentation": extra["augmentation"],
    }
    b = m[key(base)]
    rem = []
    for name, p in remedy_points.items():
        v = m[key(p)]
        rem.append(
            ({"remedy": name}, {**v, "d_test": v["test_acc"] - b["test_acc"], "d_gap": v["gap"] - b["gap"]})
        )
    stopped = m[key(extra["early_stopping"])]
    n_tr, n_va = (len(i) for i in stratified_split(d.y_train, val_fraction, seed))  # the first seed's split
    runs = pd.DataFrame(
        [{k: v for k, v in r.items() if k not in ("history", "w_hist", "_key")} for r in rows]
    )
    return Regularisation(
        penalties=penalties,
        logreg=logreg,
        dropout=dropout,
        ladder=ladder_df,
        remedies=table(rem),
        curves=pd.DataFrame(stopped["history"]),
        runs=runs,
        kept=int(round(stopped["best_epoch"])),
        l2_best=l2_best,
        dropout_best=d_best,
        n_train=n_tr,
        n_val=n_va,
        n_test=len(d.y_test),
        n_networks=len(all_points),
        n_logreg=len(lr_points),
        steps=sorted({round(m[key(p)]["steps"]) for p in all_points}),
        cpu_seconds=sum(r["cpu_seconds"] for r in rows + lr_rows),
        wall_seconds=wall,
    )


__all__ = [
    "regularisation",
    "Regularisation",
    "best_on_val",
    "dropout_params",
    "cnn_params",
    "point",
    "train_point",
    "fit_logreg",
    "weight_stats",
    "penalty_points",
    "dropout_points",
    "ladder_points",
    "key",
    "strengths",
    "PLACES",
    "PLACE_WORDS",
    "RUNGS",
    "RUNG_WORDS",
    "NET_WORDS",
    "REMEDY_WORDS",
    "HIST_EDGES",
]
