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

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitlab import embed as E
from digitlab.exceptions import ConfigError
from digitlab.experiments import clustering as C
from digitlab.models.nets import NET_NAMES
from digitlab.study.common import add_figure, clamp_note, subset_indices
from digitlab.study.prose import cluster as P
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "cluster"
TITLE = "Clustering: images, their 2-D map and the layers of a CNN, without labels"
REQUIRES = ("embed",)
SPACES = C.SPACES  # "umap"/"tsne": the embed task's 2-D map of that method
COVARIANCES = ("auto", "full", "diag", "tied", "spherical")


@dataclass
class Config:
    # --- part 1: images -------------------------------------------------------------------------
    methods: list[str] = field(
        default_factory=lambda: ["kmeans", "gmm", "ward", "hdbscan", "spectral"]
    )  # of METHODS
    spaces: list[str] = field(
        default_factory=lambda: ["pixels", "pca", "umap"]
    )  # pixels, pca (PCA to pca_dims), umap, tsne (embed's 2-D maps)
    n_points: int = 5000  # images clustered: a stratified subset of the embed task's points; 0 = all of them
    # dimensions of the "pca" space (and of the layer features before clustering, see layer_pca_dims)
    pca_dims: int = 50
    n_clusters: int = 0  # clusters asked of every method but HDBSCAN; 0 = the number of classes
    # k-means restarts, the best kept (the Gaussian mixture starts once, from k-means++ centres)
    kmeans_n_init: int = 4
    gmm_covariance: str = "auto"  # Gaussian mixture covariance: auto (full on 2-D maps, diagonal above 10 dims), full, diag, tied, spherical
    # HDBSCAN's smallest cluster in points; 0 = n / (4 x clusters), a quarter of an average class
    hdbscan_min_cluster_size: int = 0
    hdbscan_min_samples: int = 0  # HDBSCAN's density neighbourhood in points; 0 = 10 (larger = more noise)
    spectral_neighbors: int = 15  # spectral clustering: neighbours in the k-NN affinity graph
    draw_on: str = "umap"  # the embed map the cluster assignments are drawn on (umap, tsne or pca)
    # --- part 2: the layers of a CNN ------------------------------------------------------------
    layers: bool = True  # run part 2 (train a CNN, cluster and probe its layers)
    net: str = "cnn"  # network family (lenet5, cnn, resnet, convmixer); "cnn" = the fast recipe's network
    n_train: int = 10000  # training images of the CNN (stratified subset; 0 = all)
    n_test: int = 4000  # test images whose layer activations are clustered and probed (0 = all)
    epochs: int = 2  # training epochs (the fast recipe's 2)
    # optimiser-step budget: more epochs on small training sets (the fast recipe's 200; 0 = off)
    min_steps: int = 200
    merge: list[str] = field(
        default_factory=lambda: ["gap", "flatten"]
    )  # how a block's channels become a vector: gap = global average pooling (C values), flatten = every unit (C*H*W)
    layer_methods: list[str] = field(default_factory=lambda: ["kmeans", "ward"])  # methods run on each layer
    layer_pca_dims: int = 50  # layer features are projected on this many principal components before clustering (0 = cluster them as they are)
    # share of the n_test images the linear probe is scored on (it is fitted on the rest)
    probe_test_fraction: float = 0.5
    probe_c: float = 1.0  # inverse L2 strength of the probe's logistic regression
    probe_max_iter: int = 100  # lbfgs iterations of the probe (capped: the same cap for every layer)
    feature_map_channels: int = 4  # channels drawn per network in each block's feature-map figure

    def validate(self) -> None:
        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key cluster.{key}: {problem}; {fix}")

        for key, allowed in (
            ("methods", C.METHODS),
            ("layer_methods", C.METHODS),
            ("spaces", SPACES),
            ("merge", C.MERGES),
        ):
            value = getattr(self, key)
            unknown = [v for v in value if v not in allowed]
            if not value or unknown:
                raise bad(key, f"{unknown or 'empty'} not valid", f"choose from {', '.join(allowed)}")
            if len(set(value)) != len(value):
                raise bad(key, f"{value} repeats a name", "list each once")
        if self.draw_on not in E.METHODS:
            raise bad(
                "draw_on", f"{self.draw_on!r} is not an embed method", f"choose from {', '.join(E.METHODS)}"
            )
        if self.net not in NET_NAMES:
            raise bad("net", f"{self.net!r} is unknown", f"choose from {', '.join(NET_NAMES)}")
        if self.gmm_covariance not in COVARIANCES:
            raise bad(
                "gmm_covariance",
                f"{self.gmm_covariance!r} is unknown",
                f"choose from {', '.join(COVARIANCES)}",
            )
        if self.n_points != 0 and self.n_points < 50:
            raise bad(
                "n_points",
                f"{self.n_points} is too few",
                "use 0 (all the embed task's points) or at least 50",
            )
        if self.n_test != 0 and self.n_test < 100:
            raise bad(
                "n_test",
                f"{self.n_test} is too few for a clustering and a held-out probe",
                "use 0 (all) or at least 100",
            )
        if self.n_train != 0 and self.n_train < 100:
            raise bad("n_train", f"{self.n_train} is too few to train a CNN", "use 0 (all) or at least 100")
        counts = {
            "epochs": 1,
            "kmeans_n_init": 1,
            "probe_max_iter": 1,
            "spectral_neighbors": 2,
            "feature_map_channels": 1,
            "pca_dims": 2,
        }
        for key, low in counts.items():
            if getattr(self, key) < low:
                raise bad(key, f"{getattr(self, key)} is below {low}", f"use an integer >= {low}")
        sizes = (
            "n_clusters",
            "hdbscan_min_cluster_size",
            "hdbscan_min_samples",
            "min_steps",
            "layer_pca_dims",
        )
        for key in sizes:
            if getattr(self, key) < 0:
                raise bad(
                    key, f"{getattr(self, key)} is negative", "use 0 (automatic/off) or a positive integer"
                )
        if self.n_clusters == 1:
            raise bad("n_clusters", "1 cluster scores nothing", "use 0 (the number of classes) or at least 2")
        if self.layer_pca_dims == 1:
            raise bad("layer_pca_dims", "1 dimension", "use 0 (no projection) or at least 2")
        if not 0.1 <= self.probe_test_fraction <= 0.9:
            raise bad(
                "probe_test_fraction",
                f"{self.probe_test_fraction} out of range",
                "use a share from 0.1 to 0.9",
            )
        if self.probe_c <= 0:
            raise bad("probe_c", f"{self.probe_c} is not positive", "use a positive number, e.g. 1.0")


# quick: 1,000 images for part 1 and a CNN trained for 60 steps on 2,000 images for part 2. full: 10,000
# images (Ward's and HDBSCAN's pairwise distances grow as n^2: 0.4 and 0.8 GB at 10,000; beyond 10,000
# HDBSCAN leaves brute force for a tree, which took over 7 minutes on 10,000 MNIST images in pixel space),
# the whole training set and every test image. Measured times: see the report of issue 9 / README.
PROFILES: dict[str, dict] = {
    "quick": {
        "n_points": 1000,
        "methods": ["kmeans", "gmm", "ward", "hdbscan", "spectral"],
        "kmeans_n_init": 2,
        "n_train": 2000,
        "n_test": 1000,
        "min_steps": 60,
        "layer_methods": ["kmeans"],
    },
    "full": {
        "n_points": 10000,
        "n_train": 0,
        "n_test": 0,
        "layer_methods": ["kmeans", "gmm", "ward", "spectral"],
    },
}


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
