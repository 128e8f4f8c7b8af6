"""Task ``datasize``: how much training data is enough.

Three parts, every model trained through :func:`digitlab.models.zoo.run_model` with the classify
task's settings:

* **First look**: exactly ``first_look_per_class`` training images per class (1,000 on ten classes)
  and ``first_look_test_per_class`` test images per class (200): accuracy of every model, and how
  its training converged (loss and accuracy per epoch, iteration, boosting round or tree).
* **Growth**: every model at a list of training-set sizes (or log-spaced ones) up to the whole
  training set, several seeds per size (a seed draws the subset and the model's randomness),
  all scored on one fixed test set. A saturating power law ``error = a * (n / 1000) ** -b + c`` is
  fitted per model (:mod:`digitlab.learning_curve`), and the **adequate size** read from it: the
  size beyond which another ``gain_per`` images buy less than ``min_gain`` accuracy.
* **Milestones**: accuracy, macro precision/recall/F1 and per-class recall at 1k / 10k / all.

Points that the classify task already trained (same training subset, test set, seed and model
settings: its full-data run under the standard profile) are read from its ``predictions.npz``
instead of being retrained. A network's training budget grows with the data: the CNN's recipe
has a minimum number of optimiser steps (``min_steps``), and every point records the epochs and
steps it had.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitlab import metrics as M
from digitlab.data.subsets import stratified_subset
from digitlab.exceptions import ConfigError
from digitlab.grid import run_grid, summarise
from digitlab.learning_curve import (ITERATIVE, PowerLawFit, adequate_size, adequate_size_interval, fit_power_law,
                                     plot_learning_curve, scaling_exponent, size_ticks, training_curve)
from digitlab.models.zoo import CNN, ModelRun, ZooSettings, check_models, describe_model, model_names, recipe, run_model
from digitlab.plots import plain_log_ticks
from digitlab.study.common import add_figure, split, subset_indices
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
ZOO_FIELDS = {"random_forest": ("n_estimators",), "extra_trees": ("n_estimators",), "hgb": ("hgb_max_iter", "hgb_pca"),
              "rbf_svm": ("svm_n_train", "svm_search_size", "svm_C", "svm_gamma", "svm_pca"), "numpy_mlp": ("mlp_epochs",),
              CNN: ("cnn_recipe", "cnn_augment", "cnn_epochs", "cnn_max_seconds")}  # fmt: skip


# =============================================================================================
# Configuration
# =============================================================================================


@dataclass
class Config:
    """Settings of the datasize task; defaults are the standard profile."""

    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))  # zoo models (classify's names), first look and growth
    # -- first look
    first_look_per_class: int = 100  # training images per class in the first look (x 10 classes = 1,000)
    first_look_test_per_class: int = 20  # test images per class in the first look (x 10 classes = 200)
    # -- growth
    sizes: list[int] = field(default_factory=lambda: [1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 0])  # training images; 0 = all
    log_sizes: int = 0  # > 0: that many log-spaced sizes from the smallest to the largest of `sizes`, instead of the list
    n_test: int = 0  # test images of the growth (stratified subset); 0 = the full official test set
    n_seeds: int = 3  # seeds per size (subset and model randomness) for models not in slow_models
    slow_models: list[str] = field(default_factory=lambda: ["rbf_svm", "cnn"])  # models trained with slow_n_seeds seeds
    slow_n_seeds: int = 2  # seeds per size of the slow models (2: the CNN and RBF SVM curves get a spread too)
    full_n_seeds: int = 1  # seeds on the whole training set (only the model's own randomness varies there; seed 0 = classify's run)
    table_sizes: list[int] = field(default_factory=lambda: [1000, 10000, 0])  # sizes of the milestone table; 0 = all
    min_gain: float = 0.001  # adequate size: where gain_per more images buy less than this accuracy (0.001 = 0.1 points)
    gain_per: int = 1000  # images the gain is counted per
    n_draws: int = 2000  # parameter draws (from the fit's covariance) for the adequate size's 95 % interval
    reuse_classify: bool = True  # read points classify already trained instead of retraining them
    threads_per_job: int = 1  # BLAS/torch threads per job (0 = cores / jobs); 1: parallelism comes from jobs (study.n_jobs)
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
    cnn_recipe: str = "strong"  # "strong" (digitlab.train.STRONG_RECIPE), "fast" (FAST_RECIPE) or "wide" (WIDE_RECIPE)
    cnn_augment: str = ""  # the CNN's training augmentation: "" = the recipe's; catalogue names joined by "+", e.g. "shift+hflip"
    cnn_epochs: int = 0  # override the recipe's epochs (0 = keep)
    cnn_max_seconds: float = 0.0  # wall-time cap of CNN training (0 = none)
    cnn_min_steps: int = 0  # CNN optimiser-step budget (more epochs on small sets); 0 = the recipe's own (200)

    def validate(self) -> None:
        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key datasize.{key}: {problem}; {fix}")

        check_models(self.models, "datasize.models")
        unknown = [m for m in self.slow_models if m not in model_names()]
        if unknown:
            raise bad("slow_models", f"{unknown} unknown", f"choose from {', '.join(model_names())}")
        recipe(ZooSettings.from_config(self))
        for key in ("first_look_per_class", "first_look_test_per_class", "n_seeds", "slow_n_seeds", "full_n_seeds",
                    "gain_per", "n_draws", "n_estimators", "hgb_max_iter", "svm_search_size", "mlp_epochs"):
            if getattr(self, key) < 1:
                raise bad(key, f"{getattr(self, key)} must be at least 1", "e.g. 1")
        for key in ("n_test", "log_sizes", "svm_n_train", "svm_pca", "hgb_pca", "cnn_epochs", "cnn_min_steps", "threads_per_job"):
            if getattr(self, key) < 0:
                raise bad(key, f"{getattr(self, key)} must be at least 0", "0 means the default")
        if not self.sizes or any(s < 0 for s in self.sizes) or any(s < 0 for s in self.table_sizes):
            raise bad("sizes", f"{self.sizes} must be a non-empty list of sizes >= 0", "e.g. [1000, 5000, 0] (0 = all)")
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
    "quick": {"models": ["gnb", "logreg", "knn", "random_forest", "cnn"], "sizes": [1000, 2000, 5000], "n_seeds": 2, "slow_n_seeds": 1,
              "slow_models": ["cnn"], "table_sizes": [1000, 5000], "n_draws": 500,
              "n_estimators": 60, "hgb_max_iter": 30, "svm_search_size": 1500, "svm_C": [5.0], "svm_gamma": [0.02, 0.04],
              "mlp_epochs": 8, "cnn_recipe": "fast", "cnn_epochs": 6, "cnn_min_steps": 100},
    "full": {"sizes": [500, 1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 45000, 0], "n_seeds": 5,
             "slow_n_seeds": 3, "full_n_seeds": 3, "n_draws": 5000,
             "n_estimators": 500, "hgb_max_iter": 500, "hgb_pca": 0, "svm_search_size": 10000, "svm_C": [1.0, 2.0, 5.0, 10.0, 20.0],
             "svm_gamma": [0.01, 0.015, 0.02, 0.03, 0.04], "mlp_epochs": 30},
}  # fmt: skip


def settings(cfg: Config) -> ZooSettings:
    return ZooSettings.from_config(cfg)


def cnn_extra(cfg: Config) -> dict[str, Any]:
    """CNNClassifier overrides beyond the zoo's settings: the step budget when one is configured."""
    return {"min_steps": cfg.cnn_min_steps} if cfg.cnn_min_steps else {}


def model_name(name: str) -> str:
    """The model's name in words, for sentences."""
    try:
        from digitlab.names import model_name as words
    except ImportError:  # pragma: no cover
        return {"random_forest": "random forest", "rbf_svm": "RBF SVM", "numpy_mlp": "NumPy MLP", "knn": "k-NN",
                "hgb": "gradient boosting", "gnb": "Gaussian naive Bayes", "logreg": "logistic regression",
                "linear_svm": "linear SVM", "tree": "decision tree", "extra_trees": "extra trees", "cnn": "CNN"}.get(name, name)
    return words(name)


def resolve_sizes(cfg: Config, available: int) -> tuple[list[int], list[str]]:
    """The distinct training-set sizes of the growth, ascending, clamped to the data (with notes)."""
    asked = [available if s == 0 else s for s in cfg.sizes]
    notes = []
    over = sorted({s for s in asked if s > available})
    if over:
        notes.append(f"The configuration asks for {', '.join(f'{s:,}' for s in over)} training images; {available:,} "
                     "exist, so those sizes become all of them.")
    sizes = [min(s, available) for s in asked]
    if cfg.log_sizes:
        lo, hi = min(sizes), max(sizes)
        step = 100 if hi >= 5000 else 10
        sizes = [min(available, int(round(v / step)) * step or step) for v in np.geomspace(lo, hi, cfg.log_sizes)]
        sizes[0], sizes[-1] = lo, hi
    return sorted(set(sizes)), notes


def seeds_for(cfg: Config, model: str, n: int, available: int, seed0: int) -> list[int]:
    """The seeds a (model, size) point is trained with."""
    k = cfg.slow_n_seeds if model in cfg.slow_models else cfg.n_seeds
    if n >= available:
        k = min(k, cfg.full_n_seeds)
    return [seed0 + i for i in range(k)]


# =============================================================================================
# Training: one grid job, the budget each point had, reuse of classify's runs
# =============================================================================================


def budget(run: ModelRun) -> dict[str, Any]:
    """The training budget a fitted model had: epochs and optimiser steps for networks, rounds or
    iterations for iterative classic models (None where a model has none)."""
    model = run.model
    out: dict[str, Any] = {"epochs": None, "steps": None, "iterations": None}
    if run.name == CNN:
        tr = model.train_result_
        out["epochs"] = int(getattr(tr, "epochs_run", 0) or len(tr.history))
        out["steps"] = int(getattr(tr, "steps", 0)) or None
        return out
    clf = model[-1] if hasattr(model, "steps") else model
    clf = getattr(clf, "best_estimator_", clf)
    if run.name == "numpy_mlp":
        out["epochs"] = len(clf.loss_curve_)
        out["steps"] = out["epochs"] * math.ceil(run.n_train / clf.batch_size)
    elif hasattr(clf, "n_iter_"):
        out["iterations"] = int(np.max(clf.n_iter_))
    return out


def fit_point(point: dict, seed: int, threads: int, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
              zoo: ZooSettings, device: str, extra: dict) -> dict[str, Any]:
    """One grid job: train ``point["model"]`` on ``point["n_train"]`` images drawn with ``seed`` (the
    shared subset rule) and predict the test images."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    idx = subset_indices(y_train, point["n_train"], seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the iterations a model ran are recorded instead
        run = run_model(point["model"], x_train[idx], y_train[idx], x_test, zoo, seed=seed, n_jobs=threads, device=device,
                        threads=threads, **(extra if point["model"] == CNN else {}))
    return {"y_pred": run.y_pred.astype(np.int16), "fit_s": run.fit_s, "predict_s": run.predict_s, "source": "trained",
            **budget(run)}


def planned_cnn_budget(zoo: ZooSettings, extra: dict, n_train: int) -> dict[str, Any]:
    """The epochs and steps the CNN is set up for on ``n_train`` images (for runs read from classify)."""
    from digitlab.models.zoo import build_model

    try:
        from digitlab.train import planned_epochs
    except ImportError:  # pragma: no cover
        return {"epochs": None, "steps": None, "iterations": None}
    tc = build_model(CNN, zoo, **extra)._config()
    n_fit = n_train - int(round(n_train * tc.val_fraction))
    epochs = planned_epochs(tc, n_fit)
    return {"epochs": epochs, "steps": epochs * math.ceil(n_fit / tc.batch_size), "iterations": None}


def classify_runs(ctx: TaskContext, cfg: Config, test_index: np.ndarray, sizes: list[int]) -> tuple[dict, list[str]]:
    """Rows classify already computed that equal a growth point: ``{(model, n_train): row}`` for the
    study seed, and a note saying what was reused or why not."""
    if not cfg.reuse_classify:
        return {}, ["Nothing is reused from the classify task (datasize.reuse_classify = false)."]
    up = ctx.upstream("classify")
    path = up.file("predictions.npz")
    met = up.result.metrics
    n = int(met.get("n_train", -1))
    if not path.exists() or n not in sizes:
        return {}, [f"The classify task's runs ({n:,} training images) match none of the sizes here, so every point is trained."]
    pred = np.load(path, allow_pickle=False)
    if not np.array_equal(pred["test_index"], test_index):
        return {}, ["The classify task scored other test images, so none of its runs is reused."]
    zoo = settings(cfg)
    theirs = _classify_settings(up)
    setups = {r["model"]: r.get("setup") for t in up.result.tables if t.name == "cost" for r in t.rows}
    reused, refused = {}, []
    for m in cfg.models:
        same = (m in set(pred["models"].tolist()) and setups.get(m) == describe_model(m, zoo)
                and all(theirs.get(k, getattr(cfg, k)) == getattr(cfg, k) for k in ZOO_FIELDS.get(m, ()))
                and not (m == CNN and cfg.cnn_min_steps))
        if not same:
            if m in set(pred["models"].tolist()):
                refused.append(m)
            continue
        row = {"model": m, "n_train": n, "seed": ctx.seed, "y_pred": pred[f"y_pred__{m}"].astype(np.int16),
               "fit_s": float(met.get("fit_seconds", {}).get(m, math.nan)), "predict_s": math.nan, "source": "classify",
               "epochs": None, "steps": None, "iterations": None, "wall_seconds": 0.0, "cpu_seconds": 0.0}
        if m == CNN:
            row.update(planned_cnn_budget(zoo, cnn_extra(cfg), n))
        reused[(m, n)] = row
    note = (f"The {n:,}-image points of {_list([m for m, _ in reused]) if reused else 'no model'} (seed {ctx.seed}) are the "
            "classify task's runs, read from its predictions: the same training images, test images, seed and settings.")
    if refused:
        note += (f" The {_list(refused)} {'was' if len(refused) == 1 else 'were'} set up differently in classify "
                 "(model settings or, for the CNN, its step budget) and retrained here.")
    return reused, [note]


def _classify_settings(up) -> dict[str, Any]:
    """classify's resolved config section, from the run folder's config.toml when there is one."""
    path = up.dir.parent.parent / "config.toml"
    try:
        return tomllib.loads(path.read_text()).get("classify", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def grow(ctx: TaskContext, cfg: Config, part, sizes: list[int], reused: dict) -> list[dict]:
    """Train every (model, size, seed) of the growth not read from classify; tidy rows, one per run.

    Each finished point is stored in ``ctx.points_dir`` (when the runner gives one), so a killed run,
    rerun, trains again only the points that were in flight. A point's key there is the task's cache key
    (this config section: every model setting and size list; seed, device, data fingerprint, code, the
    classify result it reads) plus the point (model, size), its seed and a hash of the shared arguments
    (training and test images, zoo settings, device, CNN step budget)."""
    available = len(ctx.dataset.y_train)
    groups: dict[tuple[int, ...], list[dict]] = {}
    for m in cfg.models:
        for n in sorted(sizes, reverse=True):  # large points first: better load balance across jobs
            seeds = tuple(s for s in seeds_for(cfg, m, n, available, ctx.seed) if not (s == ctx.seed and (m, n) in reused))
            if seeds:
                groups.setdefault(seeds, []).append({"model": m, "n_train": n})
    rows = list(reused.values())
    args = (ctx.dataset.x_train, ctx.dataset.y_train, part.x_test, settings(cfg), ctx.device, cnn_extra(cfg))
    for seeds, points in groups.items():
        rows += run_grid(fit_point, points, list(seeds), args=args, n_jobs=ctx.n_jobs, backend=ctx.backend, device=ctx.device,
                         threads_per_job=cfg.threads_per_job, progress=ctx.progress,
                         description=f"datasize: {len(points)} points x {len(seeds)} seeds", cache_dir=ctx.points_dir)
    order = {m: i for i, m in enumerate(cfg.models)}
    rows.sort(key=lambda r: (order[r["model"]], r["n_train"], r["seed"]))
    y = part.y_test
    for r in rows:
        r["accuracy"] = float(np.mean(r["y_pred"] == y))
        r["recall"] = M.precision_recall_f1(y, r["y_pred"], ctx.dataset.n_classes)[1]
    return rows


# =============================================================================================
# First look: 100 per class, every model, convergence
# =============================================================================================


def first_look_indices(y_train: np.ndarray, y_test: np.ndarray, cfg: Config, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Exactly ``first_look_per_class`` training and ``first_look_test_per_class`` test images per
    class (fewer, with a note, when the smallest class has fewer)."""
    k_tr = min(cfg.first_look_per_class, int(np.bincount(y_train).min()))
    k_te = min(cfg.first_look_test_per_class, int(np.bincount(y_test).min()))
    notes = []
    if (k_tr, k_te) != (cfg.first_look_per_class, cfg.first_look_test_per_class):
        notes.append(f"The first look asks for {cfg.first_look_per_class} training and {cfg.first_look_test_per_class} test "
                     f"images per class; the smallest class allows {k_tr} and {k_te}, which are used.")
    return (stratified_subset(y_train, per_class=k_tr, seed=seed), stratified_subset(y_test, per_class=k_te, seed=seed), notes)


def first_look(ctx: TaskContext, cfg: Config) -> tuple[list[dict], dict[str, Any], list[str]]:
    """Train every model on exactly ``first_look_per_class`` images per class; score on
    ``first_look_test_per_class`` per class. Returns table rows, training curves and notes."""
    ds = ctx.dataset
    tr, te, notes = first_look_indices(ds.y_train, ds.y_test, cfg, ctx.seed)
    x_tr, y_tr, x_te, y_te = ds.x_train[tr], ds.y_train[tr], ds.x_test[te], ds.y_test[te]
    zoo, rows, curves = settings(cfg), [], {}
    for m in cfg.models:
        extra = cnn_extra(cfg) if m == CNN else {}
        run = run_model(m, x_tr, y_tr, x_te, zoo, seed=ctx.seed, n_jobs=ctx.n_jobs, device=ctx.device, **extra)
        b = budget(run)
        rows.append({"model": m, "n_train": len(y_tr), "n_test": len(y_te), "accuracy": round(float(np.mean(run.y_pred == y_te)), 4),
                     "fit_s": round(run.fit_s, 2), "budget": budget_text(m, b)})
        if m in ITERATIVE:
            curve = training_curve(m, x_tr, y_tr, x_te, y_te, zoo, seed=ctx.seed, n_jobs=ctx.n_jobs, device=ctx.device,
                                   run=run if m in (CNN, "hgb", "random_forest", "extra_trees") else None, **extra)
            curves[m] = curve.to_dict()
    return rows, curves, notes


def budget_text(model: str, b: dict) -> str:
    """A point's training budget in words ("" for models without one)."""
    if b.get("steps") and b.get("epochs"):
        return f"{b['epochs']} epochs, {b['steps']} steps"
    if b.get("epochs"):
        return f"{b['epochs']} epochs"
    if b.get("iterations"):
        return f"{b['iterations']} {'rounds' if model == 'hgb' else 'iterations'}"
    return ""


# =============================================================================================
# Tables
# =============================================================================================


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def growth_rows(rows: list[dict], summary: list[dict]) -> list[dict]:
    """Accuracy mean / SD / range and fit time per (model, size), with the budget and where it came from."""
    out = []
    for s in summary:
        rs = [r for r in rows if r["model"] == s["model"] and r["n_train"] == s["n_train"]]
        out.append({"model": s["model"], "n_train": s["n_train"], "seeds": s["n"], "accuracy_mean": _r(s["accuracy_mean"]),
                    "accuracy_sd": _r(s["accuracy_sd"]), "accuracy_min": _r(s["accuracy_min"]), "accuracy_max": _r(s["accuracy_max"]),
                    "fit_s": _r(s.get("fit_s_mean"), 2), "budget": budget_text(s["model"], rs[0]),
                    "source": "+".join(sorted({r["source"] for r in rs}))})
    return out


FIT_COLUMNS = ["model", "a", "a_sd", "b", "b_sd", "c_error_floor", "c_sd", "accuracy_ceiling", "rmse_points", "adequate_size",
               "adequate_low", "adequate_high", "gain_at_full_points", "note"]


def convergence_rows(curves: dict[str, dict]) -> list[dict]:
    """One row per training curve: where the held-out accuracy peaked and where it got close."""
    out = []
    for m, c in curves.items():
        ev, tr = np.array(c["eval_acc"]), np.array(c["train_acc"])
        best, near = int(np.argmax(ev)), int(np.argmax(ev >= ev.max() - 0.005))
        out.append({"model": m, "unit": c["unit"], "held_out": c["eval_name"], "run": c["x"][-1], "best_at": c["x"][best],
                    "best_acc": _r(ev[best]), "within_half_point_at": c["x"][near], "final_train_acc": _r(tr[-1]),
                    "final_held_out_acc": _r(ev[-1]), "final_train_loss": _r((c.get("train_loss") or [math.nan])[-1]),
                    "final_held_out_loss": _r((c.get("eval_loss") or [math.nan])[-1])})
    return out


def fit_rows(fits: dict[str, PowerLawFit | None], adequate: dict[str, dict], available: int) -> list[dict]:
    """Power-law parameters with SDs, the error floor, the adequate size and its interval per model."""
    out = []
    for m, f in fits.items():
        if f is None:
            out.append({"model": m, "note": "fewer than 3 sizes: no fit"})
            continue
        a = adequate[m]
        out.append({"model": m, "a": _r(f.a, 5), "a_sd": _r(f.a_sd, 5), "b": _r(f.b, 3), "b_sd": _r(f.b_sd, 3),
                    "c_error_floor": _r(f.c, 5), "c_sd": _r(f.c_sd, 5), "accuracy_ceiling": _r(1 - f.c),
                    "rmse_points": _r(100 * f.rmse, 3), "adequate_size": _size(a["size"]), "adequate_low": _size(a["low"]),
                    "adequate_high": _size(a["high"]), "gain_at_full_points": _r(100 * float(f.gain(available, a["per"])), 3),
                    "note": _fit_note(f, a["size"], available)})
    return out


def _size(v: float) -> int | str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return "beyond 1e12" if math.isinf(v) else int(v)


def _where(size: float, f: PowerLawFit, available: int) -> str:
    """Whether an adequate size lies among the sizes measured or is an extrapolation of the fit."""
    if size > available:
        return f"beyond the {available:,} images the data set has"
    if size > f.size_range[1]:
        return f"extrapolated beyond the largest size measured ({int(f.size_range[1]):,})"
    if size < f.size_range[0]:
        return f"below the smallest size measured ({int(f.size_range[0]):,})"
    return "within the sizes measured"


def _fit_note(f: PowerLawFit, size: float, available: int) -> str:
    parts = []
    if f.at_bound:
        parts.append(f"{', '.join(f.at_bound)} at a bound")
    if not f.has_covariance:
        parts.append("no uncertainty (as many points as parameters)")
    if not f.size_range[0] <= size <= f.size_range[1]:
        parts.append(_where(size, f, available))
    return "; ".join(parts)


def milestone_rows(rows: list[dict], y_test: np.ndarray, sizes: list[int], classes: list[str], k: int) -> list[dict]:
    """At each milestone size and for each model: accuracy, macro precision/recall/F1 and per-class
    recall, each the mean over the seeds run at that size."""
    out = []
    models = list(dict.fromkeys(r["model"] for r in rows))
    for m in models:
        for n in sizes:
            rs = [r for r in rows if r["model"] == m and r["n_train"] == n]
            if not rs:
                continue
            macro = np.array([M.precision_recall_f1(y_test, r["y_pred"], k, average="macro")[:3] for r in rs]).mean(0)
            rec = np.mean([r["recall"] for r in rs], axis=0)
            out.append({"model": m, "n_train": n, "seeds": len(rs), "accuracy": _r(np.mean([r["accuracy"] for r in rs])),
                        "precision_macro": _r(macro[0]), "recall_macro": _r(macro[1]), "f1_macro": _r(macro[2]),
                        **{f"recall {c}": _r(v, 3) for c, v in zip(classes, rec)}})
    return out


# =============================================================================================
# Figures
# =============================================================================================


def fig_first_look(rows: list[dict]):
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["accuracy"])
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(rows) + 1.2))
    acc = np.array([r["accuracy"] for r in rows])
    n_te = rows[0]["n_test"]
    se = np.sqrt(acc * (1 - acc) / n_te)
    ax.barh([model_name(r["model"]) for r in rows], 100 * acc, xerr=196 * se, color="tab:blue", alpha=0.8, capsize=3)
    for i, a in enumerate(acc):
        ax.text(100 * a + 0.3, i, f"{100 * a:.1f} %", va="center", fontsize=8)
    ax.set(xlabel=f"test accuracy % on {n_te} images (bars: binomial 95 % interval)", xlim=(max(0, 100 * acc.min() - 15), 103),
           title=f"First look: {rows[0]['n_train']:,} training images")
    return fig


def fig_convergence(curves: dict[str, dict]):
    import matplotlib.pyplot as plt

    names = list(curves)
    cols = min(3, len(names))
    nrow = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(4.2 * cols, 3.1 * nrow), squeeze=False, layout="constrained")
    for ax, m in zip(axes.ravel(), names):
        c = curves[m]
        ax.plot(c["x"], 100 * np.array(c["train_acc"]), "-", color="tab:blue", label="train accuracy")
        ax.plot(c["x"], 100 * np.array(c["eval_acc"]), "-", color="tab:orange", label=f"{c['eval_name']} accuracy")
        ax.set(xlabel=c["unit"] + ("s" if not c["unit"].endswith("s") else ""), ylabel="accuracy %", title=model_name(m))
        if c["unit"] in ("iteration", "tree") or len(c["x"]) > 60:
            ax.set_xscale("log")
        handles = ax.get_lines()
        if c.get("train_loss"):
            ax2 = ax.twinx()
            ax2.plot(c["x"], c["train_loss"], "--", color="tab:blue", alpha=0.6, label="train loss")
            ax2.plot(c["x"], c["eval_loss"], "--", color="tab:orange", alpha=0.6, label=f"{c['eval_name']} loss")
            ax2.set_ylabel("cross-entropy (dashed, log)")
            ax2.set_yscale("log")
            handles = [*handles, *ax2.get_lines()]
        ax.legend(handles=handles, fontsize=6.5, loc="center right")
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    return fig


def fig_growth(rows: list[dict], fits: dict, cfg: Config, available: int):
    """Small multiples: accuracy against size per model, the fit and its band, the adequate size."""
    import matplotlib.pyplot as plt

    models = list(fits)
    cols = min(4, len(models))
    nrow = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(3.6 * cols, 2.9 * nrow), squeeze=False, layout="constrained")
    for i, (ax, m) in enumerate(zip(axes.ravel(), models)):
        rs = [r for r in rows if r["model"] == m]
        plot_learning_curve([r["n_train"] for r in rs], [r["accuracy"] for r in rs], fits[m], ax=ax, color=f"C{i % 10}",
                            gain=cfg.min_gain, per=cfg.gain_per)
        ax.set_title(model_name(m), fontsize=10)
        ax.set_xlabel("training images (log)" if i >= len(models) - cols else "")
    for ax in axes.ravel()[len(models):]:
        ax.axis("off")
    return fig


def fig_error_all(summary: list[dict], fits: dict):
    """Every model's test error against size, both log scales: power laws become straight lines
    bending towards their floor."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for i, m in enumerate(fits):
        s = [r for r in summary if r["model"] == m]
        n = np.array([r["n_train"] for r in s])
        err = 100 * (1 - np.array([r["accuracy_mean"] for r in s]))
        ax.plot(n, err, "o", ms=3.5, color=f"C{i % 10}", label=model_name(m))
        if fits[m] is not None:
            grid = np.geomspace(n.min(), n.max(), 100)
            ax.plot(grid, 100 * fits[m].predict(grid), "-", lw=1, color=f"C{i % 10}")
    ax.set(xscale="log", yscale="log", xlabel="training images (log)", ylabel="test error % (log)",
           title="Test error against training-set size (points: mean over seeds; lines: fitted power law)")
    size_ticks(ax.xaxis)
    plain_log_ticks(ax.yaxis)
    ax.legend(fontsize=7, ncol=2)
    return fig


def fig_fit_time(summary: list[dict], models: list[str]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for i, m in enumerate(models):
        s = [r for r in summary if r["model"] == m and r.get("fit_s_mean") and math.isfinite(r["fit_s_mean"])]
        if s:
            ax.plot([r["n_train"] for r in s], [max(r["fit_s_mean"], 1e-3) for r in s], "o-", ms=3, lw=1, color=f"C{i % 10}",
                    label=model_name(m))
    ax.set(xscale="log", yscale="log", xlabel="training images (log)", ylabel="fit time, s (log)",
           title="Fit time against training-set size (mean over seeds)")
    size_ticks(ax.xaxis)
    plain_log_ticks(ax.yaxis)
    ax.legend(fontsize=7, ncol=2)
    return fig


def fig_class_gain(gain: np.ndarray, models: list[str], classes: list[str], n0: int, n1: int):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(0.55 * len(classes) + 3, 0.38 * len(models) + 1.6), layout="constrained")
    lim = max(1e-9, float(np.abs(gain).max()))
    im = ax.imshow(gain, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    for i, j in np.ndindex(gain.shape):
        ax.text(j, i, f"{gain[i, j]:+.1f}", ha="center", va="center", fontsize=7,
                color="white" if abs(gain[i, j]) > 0.6 * lim else "black")
    ax.set(xticks=range(len(classes)), xticklabels=classes, yticks=range(len(models)),
           yticklabels=[model_name(m) for m in models], xlabel="class",
           title=f"Recall gain per class, {n0:,} -> {n1:,} training images (points)")
    fig.colorbar(im, ax=ax, fraction=0.03)
    return fig


# =============================================================================================
# Findings
# =============================================================================================


def first_look_findings(rows: list[dict], curves: dict) -> list[str]:
    acc = {r["model"]: r["accuracy"] for r in rows}
    order = sorted(acc, key=acc.get, reverse=True)
    n, n_te = rows[0]["n_train"], rows[0]["n_test"]
    half = 100 * 1.96 * math.sqrt(0.25 / n_te)
    out = [f"First look ({n:,} training images, {n_te} test images): {model_name(order[0])} is the most accurate at "
           f"{100 * acc[order[0]]:.1f} %, {model_name(order[-1])} the least at {100 * acc[order[-1]]:.1f} %; with {n_te} test "
           f"images one accuracy is known to within about ±{half:.0f} points (95 %), so only gaps well beyond that count."]
    for m, c in curves.items():
        ev = np.array(c["eval_acc"])
        tr = np.array(c["train_acc"])
        best = int(np.argmax(ev))
        near = int(np.argmax(ev >= ev.max() - 0.005))
        unit = c["unit"]
        out.append(f"{model_name(m)}: {c['eval_name']} accuracy comes within 0.5 points of its best ({100 * ev.max():.1f} %, "
                   f"reached at {c['x'][best]} {_plural(unit, c['x'][best])}) after {c['x'][near]} of {c['x'][-1]} {unit}s"
                   + (f" and ends at {100 * ev[-1]:.1f} %" if ev[-1] < ev.max() - 0.005 else "")
                   + f"; training accuracy ends at {100 * tr[-1]:.1f} %, a train-{c['eval_name']} gap of "
                   f"{100 * (tr[-1] - ev[-1]):.1f} points.")
    return out


def growth_findings(summary: list[dict], fits: dict, adequate: dict, cfg: Config, available: int,
                    time_exp: dict[str, float]) -> list[str]:
    by = {(r["model"], r["n_train"]): r for r in summary}
    models = list(fits)
    n0 = min(r["n_train"] for r in summary)
    n1 = max(r["n_train"] for r in summary)
    mids = sorted({r["n_train"] for r in summary if r["n_train"] <= n1 / 5})
    nm = mids[-1] if mids and mids[-1] > n0 else None
    out = []
    lo = {m: by[(m, n0)]["accuracy_mean"] for m in models if (m, n0) in by}
    hi = {m: by[(m, n1)]["accuracy_mean"] for m in models if (m, n1) in by}
    both = [m for m in models if m in lo and m in hi]
    if both:
        gain = {m: hi[m] - lo[m] for m in both}
        ranked = sorted(both, key=gain.get, reverse=True)
        ratio = {m: (1 - lo[m]) / max(1 - hi[m], 1e-9) for m in both}
        out.append(f"From {n0:,} to {n1:,} training images every model's accuracy changes by "
                   + ", ".join(f"{model_name(m)} {100 * gain[m]:+.1f} points ({100 * lo[m]:.1f} -> {100 * hi[m]:.1f} %, "
                               f"error / {ratio[m]:.1f})" for m in ranked) + ".")
        out.append(f"The models that need data most are {_list(ranked[:3])} (the largest gains); "
                   f"{_list(ranked[-2:][::-1])} gain least.")
        if nm:
            late = {m: hi[m] - by[(m, nm)]["accuracy_mean"] for m in both if (m, nm) in by}
            early = sorted(late, key=late.get)
            out.append(f"Past {nm:,} images, {_list(early[:3])} gain only "
                       + ", ".join(f"{100 * late[m]:+.2f}" for m in early[:3]) + " points up to "
                       f"{n1:,} (they saturate early), against {_list(early[-2:][::-1])} with "
                       + ", ".join(f"{100 * late[m]:+.2f}" for m in early[-2:][::-1]) + " points.")
        r0, r1 = sorted(both, key=lo.get, reverse=True), sorted(both, key=hi.get, reverse=True)
        moved = [m for m in both if abs(r0.index(m) - r1.index(m)) >= 2]
        if moved:
            out.append("The ranking changes with data: " + "; ".join(
                f"{model_name(m)} is {_ordinal(r0.index(m) + 1)} at {n0:,} and {_ordinal(r1.index(m) + 1)} at {n1:,}" for m in moved) + ".")
        else:
            out.append(f"The ranking of the models barely changes between {n0:,} and {n1:,} images (no model moves two places).")
    fitted = {m: a for m, a in adequate.items() if fits.get(m) is not None}
    if fitted:
        words = []
        for m in sorted(fitted, key=lambda m: fitted[m]["size"]):
            a, f = fitted[m], fits[m]
            where = _where(a["size"], f, available)
            ci = (f" (95 % interval {_fmt_end(a['low'], f)}-{_fmt_end(a['high'], f)})" if math.isfinite(a["low"]) else
                  " (no interval: too few points)")
            words.append(f"{model_name(m)} {_fmt_size(a['size'])}{ci}, {where}")
        out.append(f"Adequate size (where {cfg.gain_per:,} more images buy less than {100 * cfg.min_gain:g} accuracy points, "
                   "read from each model's fitted power law): " + "; ".join(words) + ".")
        out += _exponent_findings({m: fits[m] for m in fitted})
    t = {m: e for m, e in time_exp.items() if math.isfinite(e)}
    if t:
        fast, slow = min(t, key=t.get), max(t, key=t.get)
        out.append(f"Fit time grows like n^{t[slow]:.2f} for {model_name(slow)} (the steepest) and n^{t[fast]:.2f} for "
                   f"{model_name(fast)} (the flattest), from a straight line through log time against log size.")
    sd0 = [by[(m, n0)]["accuracy_sd"] for m in models if (m, n0) in by and by[(m, n0)]["n"] > 1]
    sdl = [r["accuracy_sd"] for r in summary if r["n"] > 1 and r["n_train"] == max(x["n_train"] for x in summary if x["n"] > 1)]
    if sd0 and sdl:
        out.append(f"The spread between seeds shrinks with data: mean SD {100 * np.mean(sd0):.2f} points at {n0:,} images, "
                   f"{100 * np.mean(sdl):.2f} at the largest size run with several seeds.")
    return out


def _exponent_findings(fits: dict[str, PowerLawFit]) -> list[str]:
    """Which curve falls fastest and which floor is lowest, from the fits whose parameters the data
    pin down (SD below the value), or a sentence saying the fits are too loose to rank."""
    sure = {m: f for m, f in fits.items() if f.has_covariance and f.b_sd < f.b and "b" not in f.at_bound}
    n_sizes = max(f.n_sizes for f in fits.values())
    if len(sure) < 2:
        return [f"With {n_sizes} sizes the fitted exponents are too uncertain to rank the models by how fast their error "
                "falls (standard deviations as large as the values); more sizes or seeds would pin them down."]
    steep, flat = max(sure, key=lambda m: sure[m].b), min(sure, key=lambda m: sure[m].b)
    floors = {m: f for m, f in sure.items() if f.c_sd < max(f.c, 1e-4) and "c" not in f.at_bound}
    out = [f"Among the {len(sure)} well-determined fits, the error falls fastest with data for {model_name(steep)} "
           f"(exponent b = {sure[steep].b:.2f} ± {sure[steep].b_sd:.2f}) and slowest for {model_name(flat)} "
           f"(b = {sure[flat].b:.2f} ± {sure[flat].b_sd:.2f})."]
    if len(floors) == 1:
        (m, f), = floors.items()
        out.append(f"The one well-determined error floor (the error the model would keep with unlimited data of this kind) "
                   f"is {model_name(m)}'s, {100 * f.c:.2f} ± {100 * f.c_sd:.2f} %.")
    elif floors:
        lo, hi = min(floors, key=lambda m: floors[m].c), max(floors, key=lambda m: floors[m].c)
        out.append(f"The fitted error floors (the error a model would keep with unlimited data of this kind) range from "
                   f"{100 * floors[lo].c:.2f} ± {100 * floors[lo].c_sd:.2f} % ({model_name(lo)}) to {100 * floors[hi].c:.2f} ± "
                   f"{100 * floors[hi].c_sd:.2f} % ({model_name(hi)}).")
    return out


def class_findings(gain: np.ndarray, classes: list[str], n0: int, n1: int, low_recall: np.ndarray) -> list[str]:
    mean = gain.mean(0)
    order = np.argsort(-mean)
    hard = int(np.argmin(low_recall.mean(0)))
    return [f"Averaged over the models, the classes that gain most recall from {n0:,} to {n1:,} images are "
            + ", ".join(f"{classes[i]} ({mean[i]:+.1f} points)" for i in order[:3]) + "; the least, "
            + ", ".join(f"{classes[i]} ({mean[i]:+.1f})" for i in order[-2:][::-1])
            + f". At {n0:,} images class {classes[hard]} has the lowest mean recall ({100 * low_recall.mean(0)[hard]:.1f} %)."]


def _list(names: list[str]) -> str:
    w = [model_name(n) for n in names]
    return w[0] if len(w) == 1 else ", ".join(w[:-1]) + " and " + w[-1]


def _plural(unit: str, k: int) -> str:
    return unit if k == 1 else unit + "s"


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def _fmt_end(v: float, fit: PowerLawFit) -> str:
    """An end of an adequate-size interval; below the smallest size measured the fit says nothing."""
    return f"under {int(fit.size_range[0]):,}" if v < fit.size_range[0] else _fmt_size(v)


def _fmt_size(v: float) -> str:
    if math.isinf(v):
        return "more than 10^12"
    return f"{int(v):,}"


# =============================================================================================
# The task
# =============================================================================================


def method_notes(cfg: Config, sizes: list[int], n_test: int, available: int, rows: list[dict]) -> list[str]:
    cnn_rows = [r for r in rows if r["model"] == CNN and r.get("steps")]
    notes = [f"Growth: every model is trained at {len(sizes)} sizes ({', '.join(f'{s:,}' for s in sizes)} images; a size is a "
             "seeded stratified subset drawn by the study's one subset rule) and scored on the same "
             f"{n_test:,} test images. Seeds per size: {cfg.n_seeds} for most models, {cfg.slow_n_seeds} for "
             f"{_list(cfg.slow_models) if cfg.slow_models else 'none'}, and {cfg.full_n_seeds} on the whole training set "
             "(where only the model's own randomness can vary). A seed draws both the subset and the model's randomness.",
             "The learning curve fitted per model is error(n) = a·(n/1,000)^-b + c by least squares over every (size, seed) "
             "point (scipy's curve_fit with a ≥ 0, 0.01 ≤ b ≤ 4, 0 ≤ c ≤ 1); the ± values are standard deviations from its "
             f"covariance, and the adequate size's interval comes from {cfg.n_draws:,} parameter draws from that covariance. "
             "The adequate size is the smallest n where error(n) - error(n + "
             f"{cfg.gain_per:,}) falls below {100 * cfg.min_gain:g} points: beyond it more data buys little, by the fit.",
             "Every model uses the same settings as in the model comparison: "
             + "; ".join(f"{model_name(m)}: {describe_model(m, settings(cfg))}" for m in cfg.models) + "."]
    if cnn_rows:
        per = {}
        for r in cnn_rows:
            per.setdefault(r["n_train"], set()).add((r["epochs"], r["steps"]))
        notes.append("The CNN's training budget grows with the data: its recipe runs at least "
                     + (f"{cfg.cnn_min_steps}" if cfg.cnn_min_steps else "the recipe's minimum number of")
                     + " optimiser steps, adding epochs on small sets. Budget per size: "
                     + "; ".join(f"{n:,} images: " + ", ".join(f"{e} epochs / {s} steps" for e, s in sorted(v))
                                 for n, v in sorted(per.items())) + ".")
    return notes


def fit_time_exponent(summary: list[dict], model: str, min_seconds: float = 0.5) -> float:
    """How fit time scales with size (``n ** exponent``); NaN when the model fits in under
    ``min_seconds`` even at its largest size (its times are then timer noise)."""
    s = [r for r in summary if r["model"] == model and math.isfinite(r.get("fit_s_mean", math.nan))]
    if not s or max(r["fit_s_mean"] for r in s) < min_seconds:
        return math.nan
    return scaling_exponent([r["n_train"] for r in s], [r["fit_s_mean"] for r in s])


def save_rows(rows: list[dict], classes: list[str], out_dir) -> str:
    """Write ``growth.csv``: one row per trained (model, size, seed) with accuracy, times, budget, recall per class."""
    keys = ["model", "n_train", "seed", "source", "accuracy", "fit_s", "predict_s", "epochs", "steps", "iterations", "wall_seconds"]
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
    available, classes, k = len(ds.y_train), list(ds.classes), ds.n_classes
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

    first_rows, curves, fl_notes = first_look(ctx, cfg)
    notes += fl_notes
    lap("first look")
    reused, reuse_notes = classify_runs(ctx, cfg, part.test_index, sizes)
    rows = grow(ctx, cfg, part, sizes, reused)
    lap("growth")
    summary = summarise(rows, by=["model", "n_train"], metrics=["accuracy", "fit_s"])
    fits = {m: fit_power_law([r["n_train"] for r in rows if r["model"] == m], [1 - r["accuracy"] for r in rows if r["model"] == m])
            for m in cfg.models}
    adequate = {}
    for m, f in fits.items():
        if f is not None:
            low, high = adequate_size_interval(f, cfg.min_gain, cfg.gain_per, n_draws=cfg.n_draws, seed=ctx.seed)
            adequate[m] = {"size": adequate_size(f, cfg.min_gain, cfg.gain_per), "low": low, "high": high, "per": cfg.gain_per}
    time_exp = {m: fit_time_exponent(summary, m) for m in cfg.models}
    table_sizes = sorted({min(available if s == 0 else s, available) for s in cfg.table_sizes} & set(sizes))
    missing = sorted({min(available if s == 0 else s, available) for s in cfg.table_sizes} - set(sizes))
    if missing:
        notes.append(f"Milestone sizes {', '.join(f'{s:,}' for s in missing)} are not among the growth sizes and are left out.")
    n0, n1 = sizes[0], sizes[-1]
    rec = {(r["model"], r["n_train"]): [] for r in rows}
    for r in rows:
        rec[(r["model"], r["n_train"])].append(r["recall"])
    gain_models = [m for m in cfg.models if (m, n0) in rec and (m, n1) in rec]
    low_recall = np.array([np.mean(rec[(m, n0)], axis=0) for m in gain_models])
    class_gain = 100 * (np.array([np.mean(rec[(m, n1)], axis=0) for m in gain_models]) - low_recall)

    figures: list = []
    add_figure(figures, fig_first_look(first_rows), out, "first_look",
               f"First look: test accuracy of every model trained on {first_rows[0]['n_train']:,} images "
               f"({cfg.first_look_per_class} per class), scored on {first_rows[0]['n_test']} test images.")
    if curves:
        add_figure(figures, fig_convergence(curves), out, "convergence",
                   "Convergence in the first look: training and held-out accuracy (solid) and cross-entropy (dashed, log) per "
                   "epoch (CNN: on its own validation split; NumPy MLP), L-BFGS iteration (logistic regression), boosting round "
                   "or number of trees (on the first look's test images).")
    add_figure(figures, fig_growth(rows, fits, cfg, available), out, "growth",
               "Test accuracy against training-set size (log scale) per model: points are the mean over seeds with their range, "
               "the line the fitted saturating power law with its 95 % band, the dotted line the adequate size when it lies in "
               "the plotted range.")
    add_figure(figures, fig_error_all(summary, fits), out, "error_all", "Test error of every model against training-set size, "
               "both axes logarithmic.")
    add_figure(figures, fig_fit_time(summary, cfg.models), out, "fit_time", "Fit time against training-set size, both axes "
               "logarithmic (this machine; points read from the classify task carry its times).")
    if gain_models and n1 > n0:
        add_figure(figures, fig_class_gain(class_gain, gain_models, classes, n0, n1), out, "class_gain",
                   f"Per-class recall gained between {n0:,} and {n1:,} training images (points; mean over seeds).")
    csv_file = save_rows(rows, classes, out)

    findings = first_look_findings(first_rows, curves) + growth_findings(summary, fits, adequate, cfg, available, time_exp)
    if gain_models and n1 > n0:
        findings += class_findings(class_gain, classes, n0, n1, low_recall)
    tables = [Table("first_look", first_rows, f"First look: {first_rows[0]['n_train']:,} training images "
                                              f"({cfg.first_look_per_class} per class), {first_rows[0]['n_test']} test images."),
              *([Table("convergence", convergence_rows(curves), "How training converged in the first look: per iterative "
                                                               "model, the best held-out accuracy and when it was reached, "
                                                               "when it came within 0.5 points of it, and the final training "
                                                               "and held-out accuracy and cross-entropy.")] if curves else []),
              Table("growth", growth_rows(rows, summary), "Test accuracy (fraction) per model and training-set size: mean, SD, "
                                                          "min and max over seeds, mean fit time (s), training budget, and "
                                                          "whether the point was trained here or read from classify."),
              Table("fits", fit_rows(fits, adequate, available), "Fitted error = a·(n/1,000)^-b + c per model (± SD), "
                                                                 "accuracy ceiling 1 - c, fit RMSE (points), adequate size with its "
                                                                 "95 % interval, and the gain per "
                                                                 f"{cfg.gain_per:,} images at {available:,} images (points).",
                    columns=FIT_COLUMNS),
              Table("milestones", milestone_rows(rows, part.y_test, table_sizes, classes, k),
                    "Accuracy, macro precision / recall / F1 and recall per class at the milestone sizes (means over seeds).")]
    best1 = max((r for r in summary if r["n_train"] == n1), key=lambda r: r["accuracy_mean"])
    best0 = {r["model"]: r for r in summary if r["n_train"] == n0}[best1["model"]]
    fitted = {m: a["size"] for m, a in adequate.items()}
    headline = (f"From {n0:,} to {n1:,} training images the most accurate model, {model_name(best1['model'])}, goes from "
                f"{100 * best0['accuracy_mean']:.2f} % to {100 * best1['accuracy_mean']:.2f} %")
    if best1["model"] in fitted:
        headline += (f"; by its fitted learning curve {cfg.gain_per:,} more images stop buying {100 * cfg.min_gain:g} points at "
                     f"about {_fmt_size(fitted[best1['model']])} images")
    if fitted:
        lo_m, hi_m = min(fitted, key=fitted.get), max(fitted, key=fitted.get)
        headline += (f" (adequate sizes range from {_fmt_size(fitted[lo_m])} for {model_name(lo_m)} to "
                     f"{_fmt_size(fitted[hi_m])} for {model_name(hi_m)})")
    headline += "."
    lap("fits, tables and figures")
    notes += reuse_notes + method_notes(cfg, sizes, part.n_test, available, rows)
    notes.append("The first look's 200 test images make each accuracy uncertain by several points; the growth uses the "
                 f"{part.n_test:,}-image test set. Per-point results (accuracy, times, budget, recall per class) are in growth.csv.")
    return TaskResult(
        title=TITLE,
        summary=(f"How accuracy grows with training data: {len(cfg.models)} models trained on {first_rows[0]['n_train']:,} images "
                 f"for a first look, then at {len(sizes)} sizes from {n0:,} to {n1:,} images with several seeds each, scored on "
                 f"{part.n_test:,} test images, with a saturating power law fitted to each model's curve."),
        headline=headline, findings=findings, tables=tables, figures=figures, notes=notes,
        metrics={"n_train": sizes, "n_test": part.n_test, "n_seeds": cfg.n_seeds, "models": list(cfg.models),
                 "first_look": {r["model"]: r["accuracy"] for r in first_rows},
                 "accuracy": {m: {str(r["n_train"]): round(r["accuracy_mean"], 5) for r in summary if r["model"] == m} for m in cfg.models},
                 "accuracy_sd": {m: {str(r["n_train"]): round(r["accuracy_sd"], 5) for r in summary if r["model"] == m} for m in cfg.models},
                 "fits": {m: (f.to_dict() if f else None) for m, f in fits.items()},
                 "adequate_size": {m: (None if math.isinf(a["size"]) else int(a["size"])) for m, a in adequate.items()},
                 "adequate_interval": {m: [None if not math.isfinite(v) else int(v) for v in (a["low"], a["high"])]
                                       for m, a in adequate.items()},
                 "reused_from_classify": sorted(f"{m}@{n}" for m, n in reused),
                 "fit_time_exponent": {m: _r(e, 3) for m, e in time_exp.items()},
                 "runs": len(rows), "trained": sum(r["source"] == "trained" for r in rows),
                 "train_seconds": round(sum(r.get("wall_seconds", 0.0) for r in rows), 1), "growth_file": csv_file,
                 "phase_seconds": phases})


__all__ = ["Config", "PROFILES", "run", "resolve_sizes", "seeds_for", "fit_point", "budget", "classify_runs", "first_look",
           "first_look_indices"]
