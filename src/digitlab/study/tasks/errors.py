"""Task ``errors``: which test images the models get wrong, which mistakes they share, which labels look wrong.

Reads classify's per-model test predictions (``predictions.npz``) and hands them, with the test and
training images, to :func:`digitlab.experiments.error_analysis.error_analysis`, which answers four
questions: what each model gets wrong (drawn on a 2-D map of the test images), how much the models'
error sets overlap (Jaccard, UpSet), what the images most models miss are like, and which labels are
probably wrong (confident learning with a planted-flip check). This module turns the result into the
report's tables, figures and files; the sentences live in :mod:`digitlab.study.prose.errors`.
"""

from __future__ import annotations

import csv
import time
from typing import Any

import numpy as np

from digitlab.experiments.error_analysis import error_analysis, load_predictions, vote_text
from digitlab.names import model_name
from digitlab.study.common import add_figure, clamp_note
from digitlab.study.prose import errors as P
from digitlab.study.settings.errors import (
    PROFILES,  # noqa: F401  (the task's settings: the runner reads them here)
    Config,
)
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "errors"
TITLE = "Hard samples, shared mistakes and suspicious labels"
REQUIRES = ("classify", "embed")


def words(name: str) -> str:
    """A model's name in words for prose and tables (the project's one mapping)."""
    return model_name(name)


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    """Study the classify models' test errors and rank suspicious labels."""
    cfg.validate()
    ds, classes = ctx.dataset, list(ctx.dataset.classes)
    preds = load_predictions(ctx.upstream("classify").file("predictions.npz"))
    images = ds.x_test[preds["test_index"]]
    ea = error_analysis(
        preds["y_true"],
        preds["pred"],
        preds["proba"],
        images=images,
        classes=classes,
        index=preds["test_index"],
        hard_fraction=cfg.hard_fraction,
        strokes=bool(ds.meta.get("ink_on_blank", False)) and ds.channels == 1,
        reference_per_class=cfg.reference_per_class,
        train=ds,
        n_train=cfg.n_train,
        pca_dims=cfg.pca_dims,
        cv_model=cfg.cv_model,
        cv_folds=cfg.cv_folds,
        cv_k=cfg.cv_k,
        test_models=cfg.test_models,
        planted_fraction=cfg.planted_fraction,
        top_candidates=cfg.top_candidates,
        map_method=cfg.map_method,
        map_size=cfg.map_points,
        seed=ctx.seed,
        n_jobs=ctx.n_jobs,
        progress=ctx.progress,
    )
    # The map for the report's explorer: rows of classify's test order, 2-D positions, the images themselves.
    np.savez_compressed(
        ctx.out_dir / "error_map.npz",
        pos=ea.map_pos,
        xy=np.asarray(ea.map_xy, np.float32),
        images=np.asarray(images[ea.map_pos], np.uint8),
    )
    _write_csvs(ctx, ea)
    t0 = time.perf_counter()
    figures = _figures(ctx, cfg, ea)
    seconds = {**ea.seconds, "figures": round(time.perf_counter() - t0, 2)}
    cv = P.cv_words(cfg.cv_model, cfg.cv_k, cfg.pca_dims)
    found = P.findings(ea, cv, cfg.planted_fraction)
    notes = [n for n in (clamp_note("training images", cfg.n_train, len(ds.y_train)),) if n]
    return TaskResult(
        title=TITLE,
        summary=P.summary(ea, ds.name),
        headline=found[0],
        findings=found,
        tables=_tables(cfg, ea),
        figures=figures,
        notes=notes + P.notes(ea, cfg.map_method, cfg.pca_dims, cfg.cv_folds, cv),
        metrics=_metrics(ea, seconds),
    )


def _write_csvs(ctx: TaskContext, ea) -> None:
    """misclassified.csv (every model's mistakes) and label_issues_{test,train}.csv (ranked candidates)."""
    classes = ea.classes
    with open(ctx.out_dir / "misclassified.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "index", "true", "predicted", "confidence"])
        for n in ea.models:
            for r in ea.mistake_rows[n]:
                w.writerow(
                    [
                        n,
                        r["index"],
                        classes[r["true"]],
                        classes[r["predicted"]],
                        "" if r["confidence"] is None else f"{r['confidence']:.4f}",
                    ]
                )
    for part in ("test", "train"):
        with open(ctx.out_dir / f"label_issues_{part}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["index", "given", "suggested", "score"])
            for r in ea.label.flagged[part]:
                w.writerow([r["index"], classes[r["given"]], classes[r["suggested"]], f"{r['score']:.6f}"])


def _r(x: Any, nd: int = 3) -> Any:
    return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else round(float(x), nd)


def _tables(cfg: Config, ea) -> list[Table]:
    names, classes, y, lab = ea.models, ea.classes, ea.y, ea.label
    model_rows = sorted(
        (
            {
                "model": words(n),
                "errors": int(r["errors"]),
                "error %": _r(r["error_pct"], 2),
                "only this model": int(r["only_this_model"]),
                "hard images among them": int(r["hard_among_them"]),
                "confidence on mistakes": _r(r["confidence_on_mistakes"]),
                "confidence when right": _r(r["confidence_when_right"]),
            }
            for n, r in ea.per_model.iterrows()
        ),
        key=lambda r: r["errors"],
    )
    mistakes = [
        {
            "model": words(n),
            "index": r["index"],
            "true": classes[r["true"]],
            "predicted": classes[r["predicted"]],
            "confidence": _r(r["confidence"]),
        }
        for n in names
        for r in ea.mistake_rows[n][: cfg.list_per_model]
    ]
    jac = ea.jaccard.to_numpy()
    jac_rows = [
        {"model": words(a), **{words(b): _r(jac[i, j], 2) for j, b in enumerate(names)}}
        for i, a in enumerate(names)
    ]
    inter_rows = [
        {
            "models": ", ".join(words(n) for n in r["models"]),
            "number of models": r["degree"],
            "images": r["size"],
        }
        for r in ea.inter[: cfg.top_intersections]
    ]
    hard_rows = [
        {
            "index": int(ea.index[i]),
            "given": classes[y[i]],
            "models wrong": int(ea.wrong[i]),
            "votes": vote_text(ea.predictions, i, classes),
            **{P.TRAIT_COLUMNS[t]: _r(v[i]) for t, v in ea.trait_values.items()},
        }
        for i in ea.hard_positions[: cfg.gallery_size]
    ]
    trait_rows = [
        {
            "trait": P.TRAIT_COLUMNS[r["trait"]],
            "hard images": r["n_hard"],
            "hard mean": _r(r["hard_mean"]),
            "same-class correct mean": _r(r["reference_mean"]),
            "mean z": _r(r["mean_z"], 2),
            "mean |z|": _r(r["mean_abs_z"], 2),
            "mean |z| of the correct": _r(r["reference_abs_z"], 2),
            "mean percentile": _r(r["mean_percentile"], 1),
        }
        for r in ea.comparison
    ]
    cands = {}
    for part in ("test", "train"):
        cands[part] = []
        for k, r in enumerate(lab.top[part][: cfg.top_candidates]):
            row = {
                "rank": k + 1,
                "index": r["index"],
                "given": classes[r["given"]],
                "suggested": classes[r["suggested"]],
                "self-confidence": _r(r["score"], 4),
                "flagged": "yes" if r["flagged"] else "no",
            }
            if part == "test":
                row["models predicting the suggestion"] = r["models_suggesting"]
            cands[part].append(row)
    cap = P.table_captions(ea, cfg.list_per_model, cfg.top_candidates)
    rows = {
        "models": model_rows,
        "confident_mistakes": mistakes,
        "jaccard": jac_rows,
        "intersections": inter_rows,
        "hard_images": hard_rows,
        "traits": trait_rows,
        "label_issues_test": cands["test"],
        "label_issues_train": cands["train"],
    }
    return [Table(name, rows[name], cap[name]) for name in rows]


def _figures(ctx: TaskContext, cfg: Config, ea) -> list:
    out, figs = ctx.out_dir, []
    labels = {n: words(n) for n in ea.models}
    add_figure(figs, ea.plot_error_map(labels), out, "error_map", P.map_caption(ea, cfg.map_method))
    add_figure(figs, ea.plot_jaccard(labels=labels), out, "jaccard", P.JACCARD_CAPTION)
    k = len(ea.inter[: cfg.top_intersections])
    if k:
        add_figure(figs, ea.plot_upset(cfg.top_intersections, labels), out, "upset", P.upset_caption(k))
    k = len(ea.hard_positions[: cfg.gallery_size])
    if k:
        add_figure(figs, ea.plot_hard(cfg.gallery_size), out, "hard_gallery", P.hard_caption(ea, k))
    for part in ("test", "train"):
        k = len(ea.label.top[part])
        if k:
            add_figure(
                figs,
                ea.label.plot(cfg.top_candidates, part=part),
                out,
                f"label_issues_{part}",
                P.label_caption(part, k, cfg.top_candidates),
            )
    return figs


def _metrics(ea, seconds: dict) -> dict[str, Any]:
    names, m, lab = ea.models, len(ea.models), ea.label
    iu = np.triu_indices(m, 1)
    jac = ea.jaccard.to_numpy()
    return {
        "n_test": int(len(ea.y)),
        "n_train": int(lab.n_train),
        "models": names,
        "errors": {n: int(e) for n, e in zip(names, ea.errors.sum(1))},
        "missed_by_any": int((ea.wrong > 0).sum()),
        "missed_by_all": int((ea.wrong == m).sum()),
        "n_hard": int(len(ea.hard_positions)),
        "hard_min_models": ea.hard_min,
        "jaccard_median": round(float(np.median(jac[iu])), 4) if m > 1 else None,
        "jaccard": {
            f"{a}|{b}": round(float(jac[i, j]), 4) for i, j in zip(*iu) for a, b in [(names[i], names[j])]
        },
        "label_issues_test": len(lab.flagged["test"]),
        "label_issues_train": len(lab.flagged["train"]),
        "label_issues_test_top": [r["index"] for r in lab.top["test"]],
        "test_proba_models": lab.test_models,
        "cv_oof_accuracy": round(lab.oof_accuracy, 4),
        "planted": lab.planted,
        "map_points": int(len(ea.map_pos)),
        "map_seconds": round(ea.map_seconds, 2),
        "step_seconds": seconds,
        "files": {
            "label_issues_test": "label_issues_test.csv",
            "label_issues_train": "label_issues_train.csv",
            "misclassified": "misclassified.csv",
        },
    }
