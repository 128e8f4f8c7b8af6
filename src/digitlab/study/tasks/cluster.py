"""Task ``cluster``: do the classes form clusters, in the images, in their 2-D map and in a CNN's layers?

Part 1 hands the images the embed task embedded (or a stratified subset of them), with the embed
task's stored 2-D maps as arrays, to :func:`digitlab.experiments.clustering.cluster_images`, which
clusters them with every method in raw pixels, their PCA projection and the maps, and scores each
clustering against the labels. Part 2 calls :func:`digitlab.experiments.clustering.cluster_layers`:
the fast-recipe CNN and its untrained copy, every layer clustered and linearly probed. This module
turns the results into the report's tables and figures; the sentences live in
:mod:`digitlab.study.prose.cluster`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab import embed as E
from digitlab.exceptions import ConfigError
from digitlab.experiments import clustering as C
from digitlab.study.common import add_figure, clamp_note, subset_indices
from digitlab.study.prose import cluster as P
from digitlab.study.settings.cluster import (
    PROFILES,  # noqa: F401  (the task's settings: the runner reads them here)
    Config,
)
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "cluster"
TITLE = "Clustering: images, their 2-D map and the layers of a CNN, without labels"
REQUIRES = ("embed",)


def embedded_points(ctx: TaskContext, cfg: Config) -> dict[str, Any]:
    """The images the embed task embedded (a stratified subset of ``cfg.n_points``), their labels and
    their rows in the embed task's saved maps."""
    up = ctx.upstream("embed")
    indices = np.load(up.file("embedding_indices.npy"))
    ds = ctx.dataset
    both = str(up.result.metrics.get("index_space", "")).startswith("train+test")
    y_all = np.concatenate([ds.y_train, ds.y_test]) if both else ds.y_train
    rows = subset_indices(y_all[indices], cfg.n_points, ctx.seed)  # positions within the embedding
    idx = indices[rows]
    if both:  # index i >= n_train is test image i - n_train
        n_tr, in_train = len(ds.y_train), idx < len(ds.y_train)
        images = np.empty((len(idx), *ds.x_train.shape[1:]), dtype=ds.x_train.dtype)
        images[in_train], images[~in_train] = ds.x_train[idx[in_train]], ds.x_test[idx[~in_train] - n_tr]
    else:
        images = ds.x_train[idx]
    notes = []
    if cfg.n_points > len(indices):
        notes.append(
            f"The configuration asks to cluster {cfg.n_points:,} images; the embed task embedded {len(indices):,}, "
            "so all of them are used."
        )
    return {
        "images": images,
        "y": y_all[idx],
        "rows": rows,
        "indices": idx,
        "dir": up.dir,
        "notes": notes,
        "source": "training and test images" if both else "training images",
    }


def _map(pts: dict, method: str) -> np.ndarray:
    """The embed task's stored 2-D map of ``method`` at the clustered images' rows."""
    return E.load_embedding(pts["dir"], method).embedding[pts["rows"]].astype(np.float32)


def _cluster_kw(cfg: Config, ctx: TaskContext) -> dict[str, Any]:
    return {
        "n_clusters": cfg.n_clusters,
        "n_init": cfg.kmeans_n_init,
        "min_cluster_size": cfg.hdbscan_min_cluster_size,
        "min_samples": cfg.hdbscan_min_samples,
        "n_neighbors": cfg.spectral_neighbors,
        "covariance": cfg.gmm_covariance,
        "seed": ctx.seed,
        "n_jobs": ctx.n_jobs,
        "progress": ctx.progress,
    }


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    ds = ctx.dataset
    pts = embedded_points(ctx, cfg)
    maps = {}
    for space in cfg.spaces:
        if space in ("pixels", "pca"):
            continue
        if not (pts["dir"] / f"embedding_{space}.npy").is_file():
            raise ConfigError(
                f"config key cluster.spaces: {space!r} needs the embed task's {space} map; add {space!r} to "
                f"embed.methods or drop it from cluster.spaces"
            )
        maps[space] = _map(pts, space)
    img = C.cluster_images(
        pts["images"],
        pts["y"],
        classes=ds.classes,
        spaces=cfg.spaces,
        maps=maps,
        methods=cfg.methods,
        pca_dims=cfg.pca_dims,
        log=ctx.log,
        **_cluster_kw(cfg, ctx),
    )
    tables, notes = image_tables(cfg, img), list(pts["notes"])
    figures = image_figures(ctx, cfg, img, pts)
    findings = P.image_findings(img, cfg.methods)
    metrics: dict[str, Any] = {
        "n_points": int(len(pts["y"])),
        "n_clusters": img.k,
        "scores": {
            f"{r['_space']}/{r['_method']}": {key: r[label] for key, label in C.SCORES[:2]} for r in img.rows
        },
    }
    lc = None
    if cfg.layers:
        lc = C.cluster_layers(
            ds,
            net=cfg.net,
            n_train=cfg.n_train,
            n_test=cfg.n_test,
            epochs=cfg.epochs,
            min_steps=cfg.min_steps,
            merge=cfg.merge,
            methods=cfg.layer_methods,
            layer_pca_dims=cfg.layer_pca_dims,
            probe_test_fraction=cfg.probe_test_fraction,
            probe_c=cfg.probe_c,
            probe_max_iter=cfg.probe_max_iter,
            device=ctx.device,
            **_cluster_kw(cfg, ctx),
        )
        tables += layer_tables(cfg, lc)
        figures += layer_figures(ctx, cfg, lc)
        findings += P.layer_findings(lc) + [P.filter_sentence(lc)]
        notes += P.layer_notes(
            lc, cfg.layer_pca_dims, cfg.probe_c, cfg.probe_max_iter, cfg.probe_test_fraction
        )
        notes += [
            n
            for n in (
                clamp_note("training images", cfg.n_train, len(ds.y_train)),
                clamp_note("test images", cfg.n_test, len(ds.y_test)),
            )
            if n
        ]
        metrics.update(
            {
                "cnn_test_acc": round(lc.test_acc, 4),
                "filter_change": round(lc.filter_change, 4),
                "layer_rows": [dict(r) for r in lc.rows],
                "n_train": lc.n_train,
                "n_test": lc.n_test,
            }
        )
    notes += P.method_notes(len(pts["y"]), pts["source"], cfg.pca_dims, cfg.spectral_neighbors)
    return TaskResult(
        title=TITLE,
        summary=P.summary(img, ds.name, pts["source"], cfg.methods, cfg.net, cfg.layers),
        headline=P.headline(img, lc),
        findings=findings,
        tables=tables,
        figures=figures,
        notes=notes,
        metrics=metrics,
    )


def image_tables(cfg: Config, img) -> list[Table]:
    cols = ["space", "method", "dims"] + [label for _, label in C.SCORES] + ["clusters", "noise %", "seconds"]
    tables = [Table("methods", [{c: r[c] for c in cols} for r in img.rows], P.methods_caption(img), cols)]
    if "hdbscan" in cfg.methods:
        classes = img.classes
        rows = [
            {"space": name, **{str(classes[c]): round(100 * float(share[c]), 1) for c in range(len(classes))}}
            for space, name in img.names.items()
            for share in [img.noise_by_class(space)]
        ]
        tables.append(Table("hdbscan_noise", rows, P.NOISE_CAPTION, ["space"] + [str(c) for c in classes]))
    return tables


def image_figures(ctx: TaskContext, cfg: Config, img, pts: dict) -> list:
    figures: list = []
    add_figure(figures, img.plot_contingency(), ctx.out_dir, "contingency", P.CONTINGENCY_CAPTION)
    draw = cfg.draw_on
    if not (pts["dir"] / f"embedding_{draw}.npy").is_file():
        saved = [m for m in ("umap", "tsne", "pca") if (pts["dir"] / f"embedding_{m}.npy").is_file()]
        draw = saved[0] if saved else None
    if draw is None:
        return figures
    emb = E.load_embedding(pts["dir"], draw).embedding[pts["rows"]]
    for space in img.names:
        add_figure(
            figures,
            img.plot_assignments(space, emb, P.MAP_NAMES[draw]),
            ctx.out_dir,
            f"assignments_{space}",
            P.assignments_caption(img.names[space], P.MAP_NAMES[draw]),
        )
    return figures


def layer_figures(ctx: TaskContext, cfg: Config, lc) -> list:
    figures: list = []
    add_figure(figures, lc.plot_scores(), ctx.out_dir, "layer_scores", P.layer_scores_caption(lc))
    add_figure(figures, lc.plot_filters(), ctx.out_dir, "filters", P.filters_caption(lc))
    for i, layer in enumerate(lc.layers[1:-1]):
        fig = lc.plot_feature_maps(layer, cfg.feature_map_channels, P.feature_maps_title(lc, layer))
        add_figure(
            figures,
            fig,
            ctx.out_dir,
            f"feature_maps_{i + 1}",
            P.feature_maps_caption(lc, layer, cfg.feature_map_channels),
        )
    return figures


def layer_tables(cfg: Config, lc) -> list[Table]:
    cols = (
        ["net", "layer", "merge", "dims"]
        + [f"ARI {m}" for m in cfg.layer_methods]
        + [f"NMI {m}" for m in cfg.layer_methods]
        + ["probe accuracy"]
    )
    seen, uniq = set(), []
    for (
        r
    ) in lc.rows:  # the input and the penultimate layer are the same vector under both merges: list them once
        r = dict(r, merge=P.MERGE_NAMES[r["merge"]] if r["layer"] not in ("input", "penultimate") else "-")
        key = (r["net"], r["layer"], r["merge"])
        if key not in seen:
            seen.add(key)
            uniq.append(r)
    return [Table("layers", uniq, P.layers_caption(lc, cfg.layer_pca_dims, cfg.probe_test_fraction), cols)]
