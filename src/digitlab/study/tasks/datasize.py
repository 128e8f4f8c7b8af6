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

import math
import sys
import time
from typing import Any

import numpy as np

from digitlab.experiments.learning_curve import (
    FIT_COLUMNS,
    first_look,
    learning_curve,
    planned_cnn_budget,
    reused_run,
    write_runs_csv,
)
from digitlab.models.zoo import CNN, ZooSettings, describe_model
from digitlab.study.common import add_figure, split
from digitlab.study.prose import datasize as P
from digitlab.study.settings.datasize import PROFILES, Config
from digitlab.study.task import Table, TaskContext, TaskResult

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
        fit_s = float(met.get("fit_seconds", {}).get(m, math.nan))
        row = reused_run(m, n, ctx.seed, pred[f"y_pred__{m}"], fit_s)
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
    csv_file = write_runs_csv(rows, classes, out)

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
