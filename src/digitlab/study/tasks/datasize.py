"""Task ``datasize``: how much training data is enough.

An adapter over :mod:`digitlab.experiments.learning_curve`: the **first look** (every model on
``first_look_per_class`` images per class, with its convergence), the **growth** (every model at
several sizes and seeds on one test set, a saturating power law ``error = a (n/1000)^-b + c`` fitted
per model and the **adequate size** read from it) and the **milestones** (macro and per-class scores
at a few sizes). Points the classify task already trained (same subset, test set, seed and
settings) are read from its ``predictions.npz`` instead of being retrained. This module reads its
config and that upstream result and turns the results into tables, figures and sentences.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitlab.exceptions import ConfigError
from digitlab.experiments.learning_curve import (
    FIT_COLUMNS,
    RUN_COLUMNS,
    first_look,
    learning_curve,
    planned_cnn_budget,
)
from digitlab.models.zoo import CNN, ZooSettings, check_models, describe_model, model_names, recipe
from digitlab.study.common import add_figure, split
from digitlab.study.prose import datasize as P
from digitlab.study.task import Table, TaskContext, TaskResult
from digitlab.study.tasks.classify import DEFAULT_MODELS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NAME = "datasize"
TITLE = "How much training data is needed"
REQUIRES = ("classify",)

# Zoo settings that change each model (a mismatch with classify's forbids reusing that model's runs).
ZOO_FIELDS = {
    "random_forest": ("n_estimators",),
    "extra_trees": ("n_estimators",),
    "hgb": ("hgb_max_iter", "hgb_pca"),
    "rbf_svm": ("svm_n_train", "svm_search_size", "svm_C", "svm_gamma", "svm_pca"),
    "numpy_mlp": ("mlp_epochs",),
    CNN: ("cnn_recipe", "cnn_augment", "cnn_epochs", "cnn_max_seconds"),
}


# =============================================================================================
# Configuration
# =============================================================================================


@dataclass
class Config:
    """Settings of the datasize task; defaults are the standard profile."""

    models: list[str] = field(
        default_factory=lambda: list(DEFAULT_MODELS)
    )  # zoo models (classify's names), first look and growth
    # -- first look
    first_look_per_class: int = 100  # training images per class in the first look (x 10 classes = 1,000)
    first_look_test_per_class: int = 20  # test images per class in the first look (x 10 classes = 200)
    # -- growth
    sizes: list[int] = field(
        default_factory=lambda: [1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 0]
    )  # training images; 0 = all
    # > 0: that many log-spaced sizes from the smallest to the largest of `sizes`, instead of the list
    log_sizes: int = 0
    n_test: int = 0  # test images of the growth (stratified subset); 0 = the full official test set
    n_seeds: int = 3  # seeds per size (subset and model randomness) for models not in slow_models
    slow_models: list[str] = field(
        default_factory=lambda: ["rbf_svm", "cnn"]
    )  # models trained with slow_n_seeds seeds
    # seeds per size of the slow models (2: the CNN and RBF SVM curves get a spread too)
    slow_n_seeds: int = 2
    full_n_seeds: int = 1  # seeds on the whole training set (only the model's own randomness varies there; seed 0 = classify's run)
    table_sizes: list[int] = field(
        default_factory=lambda: [1000, 10000, 0]
    )  # sizes of the milestone table; 0 = all
    # adequate size: where gain_per more images buy less than this accuracy (0.001 = 0.1 points)
    min_gain: float = 0.001
    gain_per: int = 1000  # images the gain is counted per
    n_draws: int = 2000  # parameter draws (from the fit's covariance) for the adequate size's 95 % interval
    reuse_classify: bool = True  # read points classify already trained instead of retraining them
    # BLAS/torch threads per job (0 = cores / jobs); 1: parallelism comes from jobs (study.n_jobs)
    threads_per_job: int = 1
    # -- model settings: the same names and defaults as classify's (so its runs can be reused)
    svm_n_train: int = 0  # cap on the RBF SVM's training images; 0 = no cap
    svm_search_size: int = 4000  # images per C/gamma candidate in the SVM's validation search
    svm_C: list[float] = field(default_factory=lambda: [2.0, 5.0, 10.0])  # RBF SVM C candidates
    svm_gamma: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.04])  # RBF SVM gamma candidates
    svm_pca: int = 50  # PCA components in front of the RBF SVM (0 = raw pixels)
    n_estimators: int = 100  # trees of the random forest and extra trees
    hgb_max_iter: int = 200  # boosting rounds cap (early stopping usually stops sooner)
    hgb_pca: int = 50  # PCA components in front of boosting (0 = raw pixels)
    mlp_epochs: int = 15  # epochs of the NumPy MLP
    # "strong" (digitlab.train.STRONG_RECIPE), "fast" (FAST_RECIPE) or "wide" (WIDE_RECIPE)
    cnn_recipe: str = "strong"
    cnn_augment: str = ""  # the CNN's training augmentation: "" = the recipe's; catalogue names joined by "+", e.g. "shift+hflip"
    cnn_epochs: int = 0  # override the recipe's epochs (0 = keep)
    cnn_max_seconds: float = 0.0  # wall-time cap of CNN training (0 = none)
    # CNN optimiser-step budget (more epochs on small sets); 0 = the recipe's own (200)
    cnn_min_steps: int = 0

    def validate(self) -> None:
        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key datasize.{key}: {problem}; {fix}")

        check_models(self.models, "datasize.models")
        unknown = [m for m in self.slow_models if m not in model_names()]
        if unknown:
            raise bad("slow_models", f"{unknown} unknown", f"choose from {', '.join(model_names())}")
        recipe(ZooSettings.from_config(self))
        for key in (
            "first_look_per_class",
            "first_look_test_per_class",
            "n_seeds",
            "slow_n_seeds",
            "full_n_seeds",
            "gain_per",
            "n_draws",
            "n_estimators",
            "hgb_max_iter",
            "svm_search_size",
            "mlp_epochs",
        ):
            if getattr(self, key) < 1:
                raise bad(key, f"{getattr(self, key)} must be at least 1", "e.g. 1")
        for key in (
            "n_test",
            "log_sizes",
            "svm_n_train",
            "svm_pca",
            "hgb_pca",
            "cnn_epochs",
            "cnn_min_steps",
            "threads_per_job",
        ):
            if getattr(self, key) < 0:
                raise bad(key, f"{getattr(self, key)} must be at least 0", "0 means the default")
        if not self.sizes or any(s < 0 for s in self.sizes) or any(s < 0 for s in self.table_sizes):
            raise bad(
                "sizes",
                f"{self.sizes} must be a non-empty list of sizes >= 0",
                "e.g. [1000, 5000, 0] (0 = all)",
            )
        if self.log_sizes == 1:
            raise bad("log_sizes", "1 size is no curve", "use 0 (the list) or at least 2")
        if not 0.0 < self.min_gain < 1.0:
            raise bad("min_gain", f"{self.min_gain} must be in (0, 1)", "e.g. 0.001 (0.1 accuracy points)")
        if self.cnn_max_seconds < 0:
            raise bad("cnn_max_seconds", f"{self.cnn_max_seconds} must be >= 0", "0 = no cap")


# The zoo settings of the quick and full profiles are classify's, so its runs can be reused. Quick: the
# CNN gets 100 optimiser steps at least instead of the recipe's 200 (on 1,000 MNIST images 96.3 / 94.6 /
# 96.4 % against 96.5 / 97.1 / 96.6 %, in half the time; see digitlab.train's recipe notes).
# Every profile: one thread per job. The grid is many small independent fits, so parallelism belongs to
# the jobs (study.n_jobs); two threads per fit on a busy 2-core machine ran a 200-step CNN on 8x8 images
# in 64-75 s against 5 s with one thread (measured), as the threads' spin-waits fight other processes.
PROFILES = {
    "quick": {
        "models": ["gnb", "logreg", "knn", "random_forest", "cnn"],
        "sizes": [1000, 2000, 5000],
        "n_seeds": 2,
        "slow_n_seeds": 1,
        "slow_models": ["cnn"],
        "table_sizes": [1000, 5000],
        "n_draws": 500,
        "n_estimators": 60,
        "hgb_max_iter": 30,
        "svm_search_size": 1500,
        "svm_C": [5.0],
        "svm_gamma": [0.02, 0.04],
        "mlp_epochs": 8,
        "cnn_recipe": "fast",
        "cnn_epochs": 6,
        "cnn_min_steps": 100,
    },
    "full": {
        "sizes": [500, 1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 45000, 0],
        "n_seeds": 5,
        "slow_n_seeds": 3,
        "full_n_seeds": 3,
        "n_draws": 5000,
        "n_estimators": 500,
        "hgb_max_iter": 500,
        "hgb_pca": 0,
        "svm_search_size": 10000,
        "svm_C": [1.0, 2.0, 5.0, 10.0, 20.0],
        "svm_gamma": [0.01, 0.015, 0.02, 0.03, 0.04],
        "mlp_epochs": 30,
    },
}


def settings(cfg: Config) -> ZooSettings:
    return ZooSettings.from_config(cfg)


def cnn_extra(cfg: Config) -> dict[str, Any]:
    """CNNClassifier overrides beyond the zoo's settings: the step budget when one is configured."""
    return {"min_steps": cfg.cnn_min_steps} if cfg.cnn_min_steps else {}


def models_of(cfg: Config) -> dict[str, Any]:
    """``{label: name | (name, params)}`` for the experiments: the CNN with its step budget."""
    return {m: ((m, cnn_extra(cfg)) if m == CNN else m) for m in cfg.models}


def resolve_sizes(cfg: Config, available: int) -> tuple[list[int], list[str]]:
    """The distinct training-set sizes of the growth, ascending, clamped to the data (with notes)."""
    asked = [available if s == 0 else s for s in cfg.sizes]
    notes = P.size_notes(sorted({s for s in asked if s > available}), available)
    sizes = [min(s, available) for s in asked]
    if cfg.log_sizes:
        lo, hi = min(sizes), max(sizes)
        step = 100 if hi >= 5000 else 10
        sizes = [
            min(available, int(round(v / step)) * step or step) for v in np.geomspace(lo, hi, cfg.log_sizes)
        ]
        sizes[0], sizes[-1] = lo, hi
    return sorted(set(sizes)), notes


def classify_runs(
    ctx: TaskContext, cfg: Config, test_index: np.ndarray, sizes: list[int]
) -> tuple[dict, list[str]]:
    """Rows classify already computed that equal a growth point: ``{(model, n_train): row}`` for the
    study seed, and a note saying what was reused or why not."""
    if not cfg.reuse_classify:
        return {}, [P.NO_REUSE]
    up = ctx.upstream("classify")
    path = up.file("predictions.npz")
    met = up.result.metrics
    n = int(met.get("n_train", -1))
    if not path.exists() or n not in sizes:
        return {}, [P.no_match(n)]
    pred = np.load(path, allow_pickle=False)
    if not np.array_equal(pred["test_index"], test_index):
        return {}, [P.OTHER_TEST]
    zoo = settings(cfg)
    try:
        theirs = tomllib.loads((up.dir.parent.parent / "config.toml").read_text()).get("classify", {})
    except (OSError, tomllib.TOMLDecodeError):
        theirs = {}
    setups = {r["model"]: r.get("setup") for t in up.result.tables if t.name == "cost" for r in t.rows}
    reused, refused = {}, []
    for m in cfg.models:
        same = (
            m in set(pred["models"].tolist())
            and setups.get(m) == describe_model(m, zoo)
            and all(theirs.get(k, getattr(cfg, k)) == getattr(cfg, k) for k in ZOO_FIELDS.get(m, ()))
            and not (m == CNN and cfg.cnn_min_steps)
        )
        if not same:
            if m in set(pred["models"].tolist()):
                refused.append(m)
            continue
        row = {
            "model": m,
            "n_train": n,
            "seed": ctx.seed,
            "y_pred": pred[f"y_pred__{m}"].astype(np.int16),
            "fit_s": float(met.get("fit_seconds", {}).get(m, math.nan)),
            "predict_s": math.nan,
            "source": "classify",
            "epochs": None,
            "steps": None,
            "iterations": None,
            "wall_seconds": 0.0,
            "cpu_seconds": 0.0,
        }
        if m == CNN:
            row.update(planned_cnn_budget(zoo, cnn_extra(cfg), n))
        reused[(m, n)] = row
    return reused, [P.reuse_note(n, [m for m, _ in reused], refused, ctx.seed)]


def grow(ctx: TaskContext, cfg: Config, sizes: list[int], reused: dict):
    """The growth: :func:`~digitlab.experiments.learning_curve.learning_curve` with this config; each
    finished point is stored in ``ctx.points_dir`` (when the runner gives one), so a killed run,
    rerun, trains again only the points that were in flight."""
    return learning_curve(
        ctx.dataset,
        models_of(cfg),
        sizes,
        seeds=cfg.n_seeds,
        slow_models=cfg.slow_models,
        slow_seeds=cfg.slow_n_seeds,
        full_seeds=cfg.full_n_seeds,
        n_test=cfg.n_test,
        seed=ctx.seed,
        settings=settings(cfg),
        n_jobs=ctx.n_jobs,
        device=ctx.device,
        gain=cfg.min_gain,
        per=cfg.gain_per,
        n_draws=cfg.n_draws,
        milestones=cfg.table_sizes,
        known=reused,
        threads_per_job=cfg.threads_per_job,
        progress=ctx.progress,
        backend=ctx.backend,
        cache_dir=ctx.points_dir,
    )


def save_rows(rows: list[dict], classes: list[str], out_dir) -> str:
    """Write ``growth.csv``: one row per trained (model, size, seed) with accuracy, times, budget, recall per class."""
    keys = list(RUN_COLUMNS)
    with open(out_dir / "growth.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(keys + [f"recall_{c}" for c in classes])
        for r in rows:
            w.writerow([r.get(k) for k in keys] + [round(float(v), 5) for v in r["recall"]])
    return "growth.csv"


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    """First look, growth with fitted learning curves, milestone table."""
    cfg.validate()
    ds, out = ctx.dataset, ctx.out_dir
    available, classes = len(ds.y_train), list(ds.classes)
    sizes, notes = resolve_sizes(cfg, available)
    part = split(ctx, 0, cfg.n_test)
    notes += part.notes
    clock = [time.perf_counter(), time.process_time()]
    phases: dict[str, list[float]] = {}

    def lap(name: str) -> None:
        now = [time.perf_counter(), time.process_time()]
        phases[name] = [round(now[0] - clock[0], 1), round(now[1] - clock[1], 1)]
        clock[:] = now
        ctx.log.info("datasize: %s took %.1f s (%.1f CPU s in this process)", name, *phases[name])

    fl = first_look(
        ds,
        models_of(cfg),
        per_class=cfg.first_look_per_class,
        test_per_class=cfg.first_look_test_per_class,
        seed=ctx.seed,
        settings=settings(cfg),
        n_jobs=ctx.n_jobs,
        device=ctx.device,
    )
    first_rows, curves = fl.rows, fl.curves
    notes += fl.notes
    lap("first look")
    reused, reuse_notes = classify_runs(ctx, cfg, part.test_index, sizes)
    lc = grow(ctx, cfg, sizes, reused)
    rows, summary, fits, adequate, time_exp = (
        lc.rows,
        lc.grid_summary,
        lc.power_laws,
        lc.adequate,
        lc.time_exponents,
    )
    lap("growth")
    wanted = {min(available if s == 0 else s, available) for s in cfg.table_sizes}
    notes += P.missing_note(sorted(wanted - set(sizes)))
    n0, n1 = sizes[0], sizes[-1]
    gain_models = list(lc.class_gain.index)
    class_gain, low_recall = lc.class_gain.to_numpy(float), np.array(lc.tables["low_recall"])
    text = P.captions(cfg, first_rows, n0, n1)

    figures: list = []
    add_figure(figures, fl.plot(), out, "first_look", text["first_look"])
    if curves:
        add_figure(figures, fl.plot_convergence(), out, "convergence", text["convergence"])
    add_figure(figures, lc.plot(), out, "growth", text["growth"])
    add_figure(figures, lc.plot_error(), out, "error_all", text["error_all"])
    add_figure(figures, lc.plot_fit_time(), out, "fit_time", text["fit_time"])
    if gain_models and n1 > n0:
        add_figure(figures, lc.plot_class_gain(), out, "class_gain", text["class_gain"])
    csv_file = save_rows(rows, classes, out)

    findings = P.first_look_findings(first_rows, curves) + P.growth_findings(
        summary, fits, adequate, cfg, available, time_exp
    )
    if gain_models and n1 > n0:
        findings += P.class_findings(class_gain, classes, n0, n1, low_recall)
    fit_rows = [
        {
            **r,
            "note": (
                "fewer than 3 sizes: no fit"
                if fits[r["model"]] is None
                else P.fit_note(fits[r["model"]], adequate[r["model"]]["size"], available)
            ),
        }
        for r in lc.tables["fits"]
    ]
    tables = [
        Table("first_look", first_rows, text["table_first_look"]),
        *([Table("convergence", fl.convergence_rows, text["table_convergence"])] if curves else []),
        Table("growth", lc.tables["growth"], text["table_growth"]),
        Table("fits", fit_rows, P.fits_caption(cfg, available), columns=FIT_COLUMNS),
        Table("milestones", lc.tables["milestones"], text["table_milestones"]),
    ]
    headline = P.headline(summary, adequate, cfg, n0, n1)
    lap("fits, tables and figures")
    setups = {m: describe_model(m, settings(cfg)) for m in cfg.models}
    notes += reuse_notes + P.method_notes(cfg, sizes, part.n_test, available, rows, setups)
    notes.append(P.closing_note(part.n_test))
    return TaskResult(
        title=TITLE,
        summary=P.summary(cfg, first_rows, sizes, part.n_test),
        headline=headline,
        findings=findings,
        tables=tables,
        figures=figures,
        notes=notes,
        metrics={
            "n_train": sizes,
            "n_test": part.n_test,
            "n_seeds": cfg.n_seeds,
            "models": list(cfg.models),
            "first_look": {r["model"]: r["accuracy"] for r in first_rows},
            "accuracy": {
                m: {str(r["n_train"]): round(r["accuracy_mean"], 5) for r in summary if r["model"] == m}
                for m in cfg.models
            },
            "accuracy_sd": {
                m: {str(r["n_train"]): round(r["accuracy_sd"], 5) for r in summary if r["model"] == m}
                for m in cfg.models
            },
            "fits": {m: (f.to_dict() if f else None) for m, f in fits.items()},
            "adequate_size": {
                m: (None if math.isinf(a["size"]) else int(a["size"])) for m, a in adequate.items()
            },
            "adequate_interval": {
                m: [None if not math.isfinite(v) else int(v) for v in (a["low"], a["high"])]
                for m, a in adequate.items()
            },
            "reused_from_classify": sorted(f"{m}@{n}" for m, n in reused),
            "fit_time_exponent": {
                m: (round(e, 3) if math.isfinite(e) else None) for m, e in time_exp.items()
            },
            "runs": len(rows),
            "trained": sum(r["source"] == "trained" for r in rows),
            "train_seconds": round(sum(r.get("wall_seconds", 0.0) for r in rows), 1),
            "growth_file": csv_file,
            "phase_seconds": phases,
        },
    )


__all__ = ["Config", "PROFILES", "run", "resolve_sizes", "classify_runs", "grow", "models_of"]
