"""Task ``augment``: which transformations are valid for digits, how they move the data, what they do to a CNN.

Four parts, each computed from data:

1. a gallery of the catalogue (:mod:`digitlab.augment`) on the same test digits;
2. distribution shift: per augmentation a domain-classifier AUC, an RBF MMD and the k-NN label
   consistency of augmented images among clean ones, plus a shared 2-D embedding (small multiples);
3. effectiveness: the same small CNN trained with each augmentation (same subset, budget and
   seeds), scored on the clean test set and on a corruption suite (each augmentation applied to
   the test set with p=1);
4. why flips and large rotations are invalid for digits: how the un-augmented model labels
   mirrored and rotated test digits (e.g. 6 <-> 9 under 180 degrees).
"""

from __future__ import annotations

import time
from dataclasses import replace

from digitlab.augment import plot_gallery
from digitlab.data.subsets import subset_indices
from digitlab.experiments.augmentation import augmentation_catalogue, augmentation_effect, augmentation_shift
from digitlab.study.common import add_figure
from digitlab.study.prose import augment as P
from digitlab.study.settings.augment import (
    COLOUR_AUGMENTATIONS,
    PROFILES,  # noqa: F401  (the task's settings: the runner reads them here)
    Config,
)
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "augment"
TITLE = "Augmentation: which transformations keep the label, how they move the data, and what they do"

KEY_CORRUPTIONS = ("rotate_large", "hflip", "vflip", "gaussian_noise", "elastic", "rotate_small")


# =============================================================================================
# Adapters: experiment results -> tables, figures, findings
# =============================================================================================


def _net_params(cfg: Config) -> dict:
    if cfg.net == "cnn":
        return {"width": cfg.width, "n_blocks": cfg.n_blocks}
    if cfg.net == "resnet":
        return {"width": cfg.width}
    return {}


def _records(df) -> list[dict]:
    """Rows of a DataFrame as plain-Python dicts (JSON-ready)."""
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in df.to_dict("records")]


def _gallery_part(ctx: TaskContext, cfg: Config, tables: list, figures: list) -> None:
    ds, names = ctx.dataset, list(cfg.augmentations)
    tables.append(
        Table(
            "catalogue",
            _records(augmentation_catalogue(names)),
            P.CATALOGUE.format(p=cfg.train_p),
            ["augmentation", "parameters", "default_p", "description"],
        )
    )
    idx = subset_indices(ds.y_test, cfg.gallery_n, ctx.seed)
    add_figure(figures, plot_gallery(ds.x_test[idx], names, seed=ctx.seed), ctx.out_dir, "gallery", P.GALLERY)


def _shift_part(ctx: TaskContext, cfg: Config, tables: list, figures: list) -> list[dict]:
    sh = augmentation_shift(
        ctx.dataset,
        cfg.augmentations,
        n=cfg.shift_n,
        embed_n=cfg.embed_n,
        method=cfg.embed_method,
        seed=ctx.seed,
        n_jobs=ctx.n_jobs,
    )
    rows = [
        {k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()} for r in _records(sh.shift)
    ]
    add_figure(
        figures,
        sh.plot_embedding(),
        ctx.out_dir,
        "shift_embedding",
        P.SHIFT_EMBEDDING.format(method=cfg.embed_method.upper()),
    )
    add_figure(figures, sh.plot_map(), ctx.out_dir, "shift_map", P.SHIFT_MAP)
    tables.append(
        Table(
            "distribution_shift",
            rows,
            P.SHIFT_TABLE.format(n=cfg.shift_n),
            [
                "augmentation",
                "domain_auc",
                "mmd2",
                "knn_consistency",
                "knn_consistency_clean",
                "mean_abs_pixel_change",
            ],
        )
    )
    return rows


def _summary_rows(eff, names: list[str]) -> list[dict]:
    """The effect's summary in the task's row form ("none" first)."""
    return [
        {
            "train_augmentation": a,
            "n_seeds": int(r["n_seeds"]),
            "clean_acc": float(r["clean"]),
            "clean_acc_sd": float(r["clean_sd"]),
            "mean_corrupted_acc": float(r["mean_corrupted"]),
            **{n: float(r[n]) for n in names},
            "train_seconds": float(r["train_seconds"]),
            "delta_clean_vs_none": float(r["delta_clean"]),
        }
        for a, r in eff.summary.iterrows()
    ]


def _effect_part(ctx: TaskContext, cfg: Config, tables: list, figures: list):
    """Train and score every configuration (one experiment); returns (effect, summary rows, verdicts)."""
    names = list(cfg.augmentations)
    recipe = (
        cfg.net,
        _net_params(cfg),
        {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "max_seconds": cfg.max_seconds},
    )
    eff = augmentation_effect(
        ctx.dataset,
        names,
        p=cfg.train_p,
        recipe=recipe,
        seeds=cfg.n_seeds,
        n_train=cfg.n_train,
        n_test=cfg.n_test,
        n_test_corrupt=cfg.n_test_corrupt,
        seed=ctx.seed,
        n_jobs=1,
        device=ctx.device,
        progress=ctx.progress,
        backend=ctx.backend,
    )
    summary = _summary_rows(eff, names)
    verdicts = {
        a: (r["verdict"], float(r["delta_clean"]), float(r["noise"]))
        for a, r in eff.summary.iloc[1:].iterrows()
    }
    key = [n for n in KEY_CORRUPTIONS if n in names][:4]
    eff_rows = [
        {
            "train_augmentation": r["train_augmentation"],
            "clean_acc": r["clean_acc"],
            "clean_acc_sd": r["clean_acc_sd"],
            "delta_clean_vs_none": r["delta_clean_vs_none"],
            "verdict": verdicts.get(r["train_augmentation"], ("baseline",))[0],
            "mean_corrupted_acc": r["mean_corrupted_acc"],
            **{f"acc_{n}": r[n] for n in key},
            "train_seconds": r["train_seconds"],
        }
        for r in summary
    ]
    runs = [
        {
            "train_augmentation": r["augmentation"],
            "seed": int(r["seed"]),
            "clean_acc": float(r["clean"]),
            "train_seconds": round(float(r["train_seconds"]), 2),
            "best_epoch": int(r["best_epoch"]),
            **{n: float(r[n]) for n in names},
            "mean_corrupted_acc": float(r["mean_corrupted"]),
        }
        for _, r in eff.runs.iterrows()
    ]
    tables.append(
        Table(
            "effectiveness",
            eff_rows,
            P.EFFECT_TABLE.format(
                net=cfg.net,
                width=cfg.width,
                n_train=eff.n_train,
                epochs=cfg.epochs,
                p=cfg.train_p,
                n_seeds=cfg.n_seeds,
                n_test=eff.n_test,
                n_corrupt=eff.n_test_corrupt,
            ),
        )
    )
    tables.append(
        Table(
            "robustness",
            [
                {
                    "train_augmentation": r["train_augmentation"],
                    "clean": r["clean_acc"],
                    **{n: r[n] for n in names},
                }
                for r in summary
            ],
            P.ROBUSTNESS_TABLE,
        )
    )
    tables.append(Table("runs", runs, P.RUNS_TABLE))
    add_figure(figures, eff.plot_clean_delta(), ctx.out_dir, "clean_delta", P.CLEAN_DELTA)
    add_figure(figures, eff.plot_matrix(), ctx.out_dir, "robustness_heatmap", P.HEATMAP)
    return eff, summary, verdicts, runs


def _flip_part(ctx: TaskContext, eff, tables: list, figures: list) -> list[str]:
    per_transform = _records(eff.flips)
    tables.append(Table("flip_confusions", per_transform, P.FLIP_TABLE))
    tables.append(Table("flip_per_digit", _records(eff.flip_per_class), P.FLIP_PER_DIGIT))
    add_figure(figures, eff.plot_flips(), ctx.out_dir, "flip_confusions", P.FLIP_FIGURE)
    return P.flip_findings(
        per_transform, eff.flip_cms, eff.classes, eff.swaps, eff.swap_pair, ctx.dataset.meta
    )


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    colour_added = [n for n in COLOUR_AUGMENTATIONS if ctx.dataset.is_colour and n not in cfg.augmentations]
    if colour_added:  # photographs: colour changes are among the candidates; ink drawings have none
        cfg = replace(cfg, augmentations=list(cfg.augmentations) + colour_added)
    tables: list[Table] = []
    figures: list = []
    _gallery_part(ctx, cfg, tables, figures)
    t0 = time.perf_counter()
    shift_rows = _shift_part(ctx, cfg, tables, figures)
    shift_seconds = time.perf_counter() - t0
    eff, summary, verdicts, runs = _effect_part(ctx, cfg, tables, figures)
    flip_text = _flip_part(ctx, eff, tables, figures)
    findings = (
        P.shift_findings(shift_rows)
        + P.effect_findings(summary, verdicts, list(cfg.augmentations), eff.n_test)
        + flip_text
    )
    base = summary[0]
    best = max(summary[1:], key=lambda r: r["clean_acc"])
    swap = [f for f in flip_text if f.startswith("A 180-degree rotation")]
    tc = eff.train_config  # the engine's settings this task leaves untouched (optimizer, schedule)
    return TaskResult(
        title=TITLE,
        headline=(swap or findings or [""])[0],
        summary=P.summary(len(cfg.augmentations), eff.n_train, cfg.n_seeds),
        findings=findings,
        tables=tables,
        figures=figures,
        notes=P.notes(cfg, ctx.dataset.channels, colour_added, tc.optimizer, tc.scheduler),
        metrics={
            "clean_acc_none": base["clean_acc"],
            "best_train_augmentation": best["train_augmentation"],
            "best_clean_acc": best["clean_acc"],
            "mean_corrupted_acc_none": base["mean_corrupted_acc"],
            "best_mean_corrupted_acc": max(r["mean_corrupted_acc"] for r in summary),
            "train_seconds_total": float(sum(r["train_seconds"] for r in runs)),
            "shift_seconds": round(shift_seconds, 2),
        },
    )
