"""Task ``cluster``: do the classes form clusters, in the images, in their 2-D map and in a CNN's layers?

Part 1 clusters the images the embed task embedded (or a stratified subset of them) with every
method of :data:`digitlab.cluster.METHODS` in three spaces: raw pixels (all channels flattened),
their PCA projection and the embed task's 2-D map (UMAP by default, read through ``REQUIRES``), and
scores each clustering against the labels. Part 2 trains the fast-recipe CNN, keeps an untrained
copy (the same initial weights) as the control, and clusters and linearly probes the output of every
conv block and of the penultimate layer, layer by layer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from digitlab import cluster as C
from digitlab import embed as E
from digitlab.exceptions import ConfigError
from digitlab.grid import fit_and_score, input_shape
from digitlab.runtime import cpu_budget, limit_threads
from digitlab.models.nets import NET_NAMES, build_net
from digitlab.study.common import add_figure, progress, split, status, subset_indices
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "cluster"
TITLE = "Clustering: images, their 2-D map and the layers of a CNN, without labels"
REQUIRES = ("embed",)
SPACES = ("pixels", "pca", "umap", "tsne")  # "umap"/"tsne": the embed task's 2-D map of that method
SPACE_LABELS = {"pixels": "raw pixels", "umap": "UMAP map", "tsne": "t-SNE map"}
COVARIANCES = ("auto", "full", "diag", "tied", "spherical")
NET_WORDS = {"cnn": "CNN", "lenet5": "LeNet-5", "resnet": "ResNet", "convmixer": "ConvMixer"}


def _net(name: str) -> str:
    return NET_WORDS.get(name, name)


def _prose(space_name: str) -> str:
    """A space's table name as it reads in a sentence ("UMAP map" -> "the UMAP map")."""
    return f"the {space_name}" if space_name.endswith("map") else space_name


@dataclass
class Config:
    # --- part 1: images -------------------------------------------------------------------------
    methods: list[str] = field(default_factory=lambda: ["kmeans", "gmm", "ward", "hdbscan", "spectral"])  # of METHODS
    spaces: list[str] = field(default_factory=lambda: ["pixels", "pca", "umap"])  # pixels, pca (PCA to pca_dims), umap, tsne (embed's 2-D maps)
    n_points: int = 5000  # images clustered: a stratified subset of the embed task's points; 0 = all of them
    pca_dims: int = 50  # dimensions of the "pca" space (and of the layer features before clustering, see layer_pca_dims)
    n_clusters: int = 0  # clusters asked of every method but HDBSCAN; 0 = the number of classes
    kmeans_n_init: int = 4  # k-means restarts, the best kept (the Gaussian mixture starts once, from k-means++ centres)
    gmm_covariance: str = "auto"  # Gaussian mixture covariance: auto (full on 2-D maps, diagonal above 10 dims), full, diag, tied, spherical
    hdbscan_min_cluster_size: int = 0  # HDBSCAN's smallest cluster in points; 0 = n / (4 x clusters), a quarter of an average class
    hdbscan_min_samples: int = 0  # HDBSCAN's density neighbourhood in points; 0 = 10 (larger = more noise)
    spectral_neighbors: int = 15  # spectral clustering: neighbours in the k-NN affinity graph
    draw_on: str = "umap"  # the embed map the cluster assignments are drawn on (umap, tsne or pca)
    # --- part 2: the layers of a CNN ------------------------------------------------------------
    layers: bool = True  # run part 2 (train a CNN, cluster and probe its layers)
    net: str = "cnn"  # network family (lenet5, cnn, resnet, convmixer); "cnn" = the fast recipe's network
    n_train: int = 10000  # training images of the CNN (stratified subset; 0 = all)
    n_test: int = 4000  # test images whose layer activations are clustered and probed (0 = all)
    epochs: int = 2  # training epochs (the fast recipe's 2)
    min_steps: int = 200  # optimiser-step budget: more epochs on small training sets (the fast recipe's 200; 0 = off)
    merge: list[str] = field(default_factory=lambda: ["gap", "flatten"])  # how a block's channels become a vector: gap = global average pooling (C values), flatten = every unit (C*H*W)
    layer_methods: list[str] = field(default_factory=lambda: ["kmeans", "ward"])  # methods run on each layer
    layer_pca_dims: int = 50  # layer features are projected on this many principal components before clustering (0 = cluster them as they are)
    probe_test_fraction: float = 0.5  # share of the n_test images the linear probe is scored on (it is fitted on the rest)
    probe_c: float = 1.0  # inverse L2 strength of the probe's logistic regression
    probe_max_iter: int = 100  # lbfgs iterations of the probe (capped: the same cap for every layer)
    feature_map_channels: int = 4  # channels drawn per network in each block's feature-map figure

    def validate(self) -> None:
        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key cluster.{key}: {problem}; {fix}")

        for key, allowed in (("methods", C.METHODS), ("layer_methods", C.METHODS), ("spaces", SPACES), ("merge", C.MERGES)):
            value = getattr(self, key)
            unknown = [v for v in value if v not in allowed]
            if not value or unknown:
                raise bad(key, f"{unknown or 'empty'} not valid", f"choose from {', '.join(allowed)}")
            if len(set(value)) != len(value):
                raise bad(key, f"{value} repeats a name", "list each once")
        if self.draw_on not in E.METHODS:
            raise bad("draw_on", f"{self.draw_on!r} is not an embed method", f"choose from {', '.join(E.METHODS)}")
        if self.net not in NET_NAMES:
            raise bad("net", f"{self.net!r} is unknown", f"choose from {', '.join(NET_NAMES)}")
        if self.gmm_covariance not in COVARIANCES:
            raise bad("gmm_covariance", f"{self.gmm_covariance!r} is unknown", f"choose from {', '.join(COVARIANCES)}")
        if self.n_points != 0 and self.n_points < 50:
            raise bad("n_points", f"{self.n_points} is too few", "use 0 (all the embed task's points) or at least 50")
        if self.n_test != 0 and self.n_test < 100:
            raise bad("n_test", f"{self.n_test} is too few for a clustering and a held-out probe", "use 0 (all) or at least 100")
        if self.n_train != 0 and self.n_train < 100:
            raise bad("n_train", f"{self.n_train} is too few to train a CNN", "use 0 (all) or at least 100")
        counts = {"epochs": 1, "kmeans_n_init": 1, "probe_max_iter": 1, "spectral_neighbors": 2, "feature_map_channels": 1, "pca_dims": 2}
        for key, low in counts.items():
            if getattr(self, key) < low:
                raise bad(key, f"{getattr(self, key)} is below {low}", f"use an integer >= {low}")
        sizes = ("n_clusters", "hdbscan_min_cluster_size", "hdbscan_min_samples", "min_steps", "layer_pca_dims")
        for key in sizes:
            if getattr(self, key) < 0:
                raise bad(key, f"{getattr(self, key)} is negative", "use 0 (automatic/off) or a positive integer")
        if self.n_clusters == 1:
            raise bad("n_clusters", "1 cluster scores nothing", "use 0 (the number of classes) or at least 2")
        if self.layer_pca_dims == 1:
            raise bad("layer_pca_dims", "1 dimension", "use 0 (no projection) or at least 2")
        if not 0.1 <= self.probe_test_fraction <= 0.9:
            raise bad("probe_test_fraction", f"{self.probe_test_fraction} out of range", "use a share from 0.1 to 0.9")
        if self.probe_c <= 0:
            raise bad("probe_c", f"{self.probe_c} is not positive", "use a positive number, e.g. 1.0")


# quick: 1,000 images for part 1 and a CNN trained for 60 steps on 2,000 images for part 2. full: 10,000
# images (Ward's and HDBSCAN's pairwise distances grow as n^2: 0.4 and 0.8 GB at 10,000; beyond 10,000
# HDBSCAN leaves brute force for a tree, which took over 7 minutes on 10,000 MNIST images in pixel space),
# the whole training set and every test image. Measured times: see the report of issue 9 / README.
PROFILES: dict[str, dict] = {
    "quick": {"n_points": 1000, "methods": ["kmeans", "gmm", "ward", "hdbscan", "spectral"], "kmeans_n_init": 2,
              "n_train": 2000, "n_test": 1000, "min_steps": 60, "layer_methods": ["kmeans"]},
    "full": {"n_points": 10000, "n_train": 0, "n_test": 0, "layer_methods": ["kmeans", "gmm", "ward", "spectral"]},
}

SCORES = [("ari", "ARI"), ("nmi", "NMI"), ("homogeneity", "homogeneity"), ("completeness", "completeness"),
          ("purity", "purity"), ("matched_accuracy", "matched accuracy")]


# =============================================================================================
# Part 1: images in pixel, PCA and embedding space
# =============================================================================================


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
        notes.append(f"The configuration asks to cluster {cfg.n_points:,} images; the embed task embedded {len(indices):,}, "
                     "so all of them are used.")
    return {"images": images, "y": y_all[idx], "rows": rows, "indices": idx, "dir": up.dir, "notes": notes,
            "source": "training and test images" if both else "training images"}


def space_features(space: str, pts: dict, cfg: Config, seed: int) -> np.ndarray:
    """The feature matrix of one clustering space."""
    if space == "pixels":
        return E.to_features(pts["images"])  # every channel of every pixel, / 255
    if space == "pca":
        return E.pca_reduce(pts["images"], cfg.pca_dims, seed)
    path = pts["dir"] / f"embedding_{space}.npy"
    if not path.is_file():
        raise ConfigError(f"config key cluster.spaces: {space!r} needs the embed task's {space} map; add {space!r} to "
                          f"embed.methods or drop it from cluster.spaces")
    return E.load_embedding(pts["dir"], space).embedding[pts["rows"]].astype(np.float32)


def space_label(space: str, cfg: Config, dims: int) -> str:
    return f"PCA-{dims}" if space == "pca" else SPACE_LABELS[space]


def run_method(x: np.ndarray, method: str, k: int, cfg: Config, seed: int, n_jobs: int) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    labels = C.cluster(x, method, k, seed, n_init=cfg.kmeans_n_init, min_cluster_size=cfg.hdbscan_min_cluster_size,
                       min_samples=cfg.hdbscan_min_samples, n_neighbors=cfg.spectral_neighbors,
                       covariance=cfg.gmm_covariance, n_jobs=n_jobs)
    return labels, time.perf_counter() - t0


def cluster_images(ctx: TaskContext, cfg: Config, pts: dict) -> dict[str, Any]:
    """Every method in every space: rows of scores, the labels of each clustering, the space names."""
    k = cfg.n_clusters or ctx.dataset.n_classes
    rows, labels, names = [], {}, {}
    n_runs = len(cfg.spaces) * len(cfg.methods)
    done = 0
    for space in cfg.spaces:
        t0 = time.perf_counter()
        x = space_features(space, pts, cfg, ctx.seed)
        prep = time.perf_counter() - t0
        names[space] = space_label(space, cfg, x.shape[1])
        for method in cfg.methods:
            done += 1
            with status(ctx.progress, f"cluster: {C.LABELS[method]} on {names[space]} ({done}/{n_runs})"):
                lab, secs = run_method(x, method, k, cfg, ctx.seed, ctx.n_jobs)
            labels[(space, method)] = lab
            score = C.agreement(pts["y"], lab, ctx.dataset.n_classes)
            rows.append({"space": names[space], "method": C.LABELS[method], "dims": int(x.shape[1]),
                         **{label: round(score[key], 4) for key, label in SCORES},
                         "clusters": score["n_clusters"], "noise %": round(100 * score["noise"], 1),
                         "seconds": round(secs, 2), "_space": space, "_method": method, "_prep": prep})
            ctx.log.info("cluster: %s on %s: ARI %.3f in %.1f s", method, space, score["ari"], secs)
    return {"rows": rows, "labels": labels, "names": names, "k": k}


# =============================================================================================
# Part 2: the layers of a trained and an untrained CNN
# =============================================================================================


def train_nets(ctx: TaskContext, cfg: Config) -> dict[str, Any]:
    """The trained network (fast recipe's settings, fit_and_score) and its untrained twin (same seed,
    hence the trained network's initial weights), with the images they are probed on."""
    from digitlab.train import FAST_RECIPE

    part = split(ctx, cfg.n_train, cfg.n_test)
    recipe_net, recipe_params, recipe_cfg = FAST_RECIPE
    params = dict(recipe_params) if cfg.net == recipe_net else {}
    tcfg = replace(recipe_cfg, epochs=cfg.epochs, min_steps=cfg.min_steps, device=ctx.device)
    _, threads = cpu_budget(ctx.n_jobs, ctx.device)
    with status(ctx.progress, f"cluster: training the {_net(cfg.net)} on {part.n_train:,} images"), limit_threads(threads):
        fitted = fit_and_score(cfg.net, params, part.x_train, part.y_train, {"test": (part.x_test, part.y_test)}, tcfg,
                               seed=ctx.seed, n_classes=ctx.dataset.n_classes, keep_model=True)
    untrained = build_net(cfg.net, input_shape(part.x_train), ctx.dataset.n_classes, seed=ctx.seed, **params)
    untrained.to(next(fitted["model"].parameters()).device)
    return {"part": part, "fitted": fitted, "nets": {"trained": fitted["model"], "untrained": untrained},
            "params": params, "train_cfg": tcfg}


def score_layer(x: np.ndarray, y: np.ndarray, k: int, cfg: Config, ctx: TaskContext) -> dict[str, float]:
    """Cluster agreement (ARI, NMI per layer method) and linear-probe accuracy of one feature matrix."""
    z = E.pca_reduce(x, cfg.layer_pca_dims, ctx.seed) if cfg.layer_pca_dims and x.shape[1] > cfg.layer_pca_dims else x
    out = {"dims": int(x.shape[1])}
    for method in cfg.layer_methods:
        score = C.agreement(y, run_method(z, method, k, cfg, ctx.seed, ctx.n_jobs)[0], ctx.dataset.n_classes)
        out[f"ARI {method}"], out[f"NMI {method}"] = round(score["ari"], 4), round(score["nmi"], 4)
    out["probe accuracy"] = round(C.linear_probe(x, y, ctx.seed, cfg.probe_test_fraction, cfg.probe_c, cfg.probe_max_iter), 4)
    return out


def layer_scores(ctx: TaskContext, cfg: Config, nets: dict, part, norm) -> tuple[list[dict], dict[str, Any]]:
    """Cluster and probe the input and every layer of both networks under every merge: tidy rows
    (net, depth, layer, merge, dims, scores) and the activations' layer names and shapes."""
    y, k = part.y_test, cfg.n_clusters or ctx.dataset.n_classes
    acts = {name: C.layer_activations(net, part.x_test, norm, cfg.merge) for name, net in nets.items()}
    layers = ["input"] + acts["trained"]["layers"]
    pixels = E.to_features(part.x_test)
    rows: list[dict] = []
    cache: dict[tuple, dict] = {}  # the input (both nets) and the penultimate layer (both merges) are one vector each
    with progress(ctx, "cluster: layers", len(nets) * len(layers) * len(cfg.merge)) as step:
        for net in nets:
            for depth, layer in enumerate(layers):
                for merge in cfg.merge:
                    key = ("input",) if layer == "input" else (net, layer) if layer == "penultimate" else (net, layer, merge)
                    if key not in cache:
                        x = pixels if layer == "input" else acts[net]["features"][layer][merge]
                        cache[key] = score_layer(x, y, k, cfg, ctx)
                    rows.append({"net": net, "depth": depth, "layer": layer, "merge": merge, **cache[key]})
                    step(description=f"cluster: {net} {layer}")
    return rows, {"layers": layers, "shapes": {n: acts["trained"]["shapes"][n] for n in acts["trained"]["layers"]}}


MERGE_NAMES = C.MERGE_LABELS


def one_per_class(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Index of the first image of each class present in ``y`` (classes in order)."""
    return np.array([int(np.flatnonzero(y == c)[0]) for c in range(n_classes) if np.any(y == c)])


# =============================================================================================
# Run
# =============================================================================================


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    ds = ctx.dataset
    pts = embedded_points(ctx, cfg)
    img = cluster_images(ctx, cfg, pts)
    tables, figures, findings, notes = [], [], [], list(pts["notes"])
    tables += image_tables(cfg, img, pts, ds.classes)
    figures += image_figures(ctx, cfg, img, pts)
    findings += image_findings(cfg, img, pts, ds.classes)
    metrics: dict[str, Any] = {"n_points": int(len(pts["y"])), "n_clusters": img["k"],
                               "scores": {f"{r['_space']}/{r['_method']}": {key: r[label] for key, label in SCORES[:2]}
                                          for r in img["rows"]}}
    layer_part = None
    if cfg.layers:
        layer_part = run_layers(ctx, cfg)
        tables += layer_part["tables"]
        figures += layer_part["figures"]
        findings += layer_part["findings"]
        notes += layer_part["notes"]
        metrics.update(layer_part["metrics"])
    notes += method_notes(cfg, img, pts)
    headline = make_headline(img, layer_part)
    return TaskResult(
        title=TITLE,
        summary=(f"We cluster {len(pts['y']):,} {ds.name} {pts['source']} without their labels, with "
                 f"{_join([C.LABELS[m] for m in cfg.methods])}, in {_join(list(img['names'].values()))}, and measure how "
                 "well the clusters agree with the classes"
                 + (f"; then we do the same with the output of every conv block and of the penultimate layer of a "
                    f"trained {_net(cfg.net)} and of its untrained copy, and ask how well a linear probe reads the class from each layer."
                    if cfg.layers else ".")),
        headline=headline, findings=findings, tables=tables, figures=figures, notes=notes, metrics=metrics)


def run_layers(ctx: TaskContext, cfg: Config) -> dict[str, Any]:
    ds = ctx.dataset
    trained = train_nets(ctx, cfg)
    part, fitted, nets = trained["part"], trained["fitted"], trained["nets"]
    rows, acts = layer_scores(ctx, cfg, nets, part, fitted["norm"])
    pick = one_per_class(part.y_test, ds.n_classes)
    maps = {name: C.layer_activations(net, part.x_test[pick], fitted["norm"], cfg.merge[:1], keep_maps=len(pick))["maps"]
            for name, net in nets.items()}
    figures: list = []
    metric_panels = [(f"ARI {m}", f"ARI ({C.LABELS[m]})") for m in cfg.layer_methods] + \
                    [(f"NMI {m}", f"NMI ({C.LABELS[m]})") for m in cfg.layer_methods] + [("probe accuracy", "linear-probe accuracy")]
    fig = C.plot_layer_scores(rows, metric_panels, cfg.merge)
    add_figure(figures, fig, ctx.out_dir, "layer_scores",
               f"Agreement of the clusters with the classes (ARI, NMI) and held-out accuracy of a linear probe at the "
               f"input and after every layer of the trained {_net(cfg.net)} (solid) and of its untrained copy (dashed), on "
               f"{part.n_test:,} test images; colours: how a block's channels are merged into one vector.")
    weights = {name: C.first_conv_weights(net) for name, net in nets.items()}
    add_figure(figures, C.plot_filters(weights), ctx.out_dir, "filters",
               f"First-layer kernels of the trained {_net(cfg.net)} and of its untrained copy (the same weights before "
               "training): red positive, blue negative, each kernel on its own scale.")
    classes = [ds.classes[c] for c in part.y_test[pick]]
    for i, layer in enumerate(acts["layers"][1:-1]):
        panel = {f"{name}": maps[name][layer] for name in nets}
        fig = C.plot_feature_maps(part.x_test[pick], classes, panel, cfg.feature_map_channels,
                                  f"{layer} of the {_net(cfg.net)}: trained (left) and untrained (right)")
        add_figure(figures, fig, ctx.out_dir, f"feature_maps_{i + 1}",
                   f"Feature maps after {layer} ({_shape(acts['shapes'][layer])}) for one test image per class: for "
                   f"each network the {cfg.feature_map_channels} channels that vary most across these images.")
    shown = [{k: v for k, v in r.items()} for r in rows]
    cols = ["net", "layer", "merge", "dims"] + [f"ARI {m}" for m in cfg.layer_methods] + \
           [f"NMI {m}" for m in cfg.layer_methods] + ["probe accuracy"]
    for r in shown:
        r["merge"] = MERGE_NAMES[r["merge"]] if r["layer"] not in ("input", "penultimate") else "-"
    seen, uniq = set(), []
    for r in shown:  # the input and the penultimate layer are the same vector under both merges: list them once
        key = (r["net"], r["layer"], r["merge"])
        if key not in seen:
            seen.add(key)
            uniq.append(r)
    tables = [Table("layers", uniq,
                    f"Layer by layer on {part.n_test:,} test images: cluster agreement (features projected on "
                    f"{cfg.layer_pca_dims} principal components first) and held-out accuracy of a linear probe (logistic "
                    f"regression fitted on {100 * (1 - cfg.probe_test_fraction):.0f} % of the images, scored on the rest).",
                    cols)]
    test_acc = float(fitted["test_acc"])
    findings = layer_findings(cfg, rows, test_acc)
    moved = float(np.linalg.norm(weights["trained"] - weights["untrained"]) / max(np.linalg.norm(weights["untrained"]), 1e-12))
    findings.append(f"Training moved the first-layer kernels by {100 * moved:.0f} % of their initial size (Frobenius norm of "
                    f"the change over that of the initial weights, in {fitted.get('steps') or '?'} optimiser steps), so the "
                    "trained kernels " + ("still resemble their random starting point" if moved < 0.5 else
                                          "no longer resemble their random starting point") + " in the filters figure.")
    notes = layer_notes(cfg, acts, part, fitted, trained)
    metrics = {"cnn_test_acc": round(test_acc, 4), "filter_change": round(moved, 4), "layer_rows": [{k: v for k, v in r.items()} for r in rows],
               "n_train": part.n_train, "n_test": part.n_test}
    return {"tables": tables, "figures": figures, "findings": findings, "notes": notes + part.notes, "metrics": metrics,
            "rows": rows, "test_acc": test_acc}


# =============================================================================================
# Tables and figures of part 1
# =============================================================================================


def image_tables(cfg: Config, img: dict, pts: dict, classes) -> list[Table]:
    cols = ["space", "method", "dims"] + [label for _, label in SCORES] + ["clusters", "noise %", "seconds"]
    tables = [Table("methods", [{c: r[c] for c in cols} for r in img["rows"]],
                    f"Agreement of each clustering of {len(pts['y']):,} images with their classes ({img['k']} clusters asked; "
                    "HDBSCAN chooses its own number and leaves noise). ARI and NMI: 0 = chance, 1 = the classes exactly; "
                    "matched accuracy: share of images in the cluster matched to their class (Hungarian matching).", cols)]
    if "hdbscan" in cfg.methods:
        rows = []
        for space, name in img["names"].items():
            share = C.noise_by_class(pts["y"], img["labels"][(space, "hdbscan")], len(classes))
            rows.append({"space": name, **{str(classes[c]): round(100 * float(share[c]), 1) for c in range(len(classes))}})
        tables.append(Table("hdbscan_noise", rows, "Share (%) of each class that HDBSCAN labels as noise, per space.",
                            ["space"] + [str(c) for c in classes]))
    return tables


def best_row(rows: list[dict], space: str | None = None) -> dict:
    pool = [r for r in rows if space is None or r["_space"] == space]
    return max(pool, key=lambda r: (r["ARI"], r["NMI"]))


def image_figures(ctx: TaskContext, cfg: Config, img: dict, pts: dict) -> list:
    classes = ctx.dataset.classes
    figures: list = []
    import matplotlib.pyplot as plt

    spaces = list(img["names"])
    cols = min(2, len(spaces))  # two tables per row keep the figure within the report's printable width
    rows = -(-len(spaces) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.7 * cols, 3.5 * rows), squeeze=False)
    for ax in axes.ravel()[len(spaces):]:
        ax.axis("off")
    for ax, space in zip(axes.ravel(), spaces):
        best = best_row(img["rows"], space)
        table, names = C.matched_contingency(pts["y"], img["labels"][(space, best["_method"])], len(classes))
        C.plot_contingency(table, names, classes, f"{best['method']} on {_prose(img['names'][space])}\n(ARI {best['ARI']:.2f})", ax=ax)
    fig.tight_layout()
    add_figure(figures, fig, ctx.out_dir, "contingency",
               "Contingency tables after Hungarian matching, for the best method (by ARI) in each space: row = true class, "
               "column = cluster; each class's matched cluster is on the diagonal, unmatched clusters and HDBSCAN's noise "
               "follow; colour = share of the row, number = images.")
    draw = cfg.draw_on
    if not (pts["dir"] / f"embedding_{draw}.npy").is_file():
        saved = [m for m in ("umap", "tsne", "pca") if (pts["dir"] / f"embedding_{m}.npy").is_file()]
        draw = saved[0] if saved else None
    if draw is None:
        return figures
    emb = E.load_embedding(pts["dir"], draw).embedding[pts["rows"]]
    map_name = {"pca": "2-D PCA map", "umap": "UMAP map", "tsne": "t-SNE map"}[draw]
    for space in spaces:
        assignments = {m: img["labels"][(space, m)] for m in cfg.methods}
        titles = {r["_method"]: f"{r['method']} on {img['names'][space]}\nARI {r['ARI']:.2f}, NMI {r['NMI']:.2f}"
                  for r in img["rows"] if r["_space"] == space}
        fig = C.plot_assignments(emb, pts["y"], assignments, classes, titles, map_name)
        add_figure(figures, fig, ctx.out_dir, f"assignments_{space}",
                   f"The clusters found on {_prose(img['names'][space])} drawn on the embed task's {map_name}, beside the true "
                   "labels (first panel). A cluster takes the colour of the class it is matched to, unmatched clusters "
                   "are black, HDBSCAN's noise grey.")
    return figures


# =============================================================================================
# Findings: sentences filled in from the numbers
# =============================================================================================


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _shape(shape) -> str:
    return " x ".join(str(s) for s in shape)


def image_findings(cfg: Config, img: dict, pts: dict, classes) -> list[str]:
    rows, names = img["rows"], img["names"]
    out = []
    best = best_row(rows)
    out.append(f"The clustering closest to the classes is {best['method']} on {_prose(best['space'])}: ARI {best['ARI']:.3f}, "
               f"NMI {best['NMI']:.3f}, and {100 * best['matched accuracy']:.1f} % of the images fall in the cluster "
               f"matched to their class.")
    if len(names) > 1:
        per_space = []
        for space, name in names.items():
            r = best_row(rows, space)
            mean_ari = np.mean([x["ARI"] for x in rows if x["_space"] == space and x["_method"] != "hdbscan"] or [np.nan])
            per_space.append(f"{name} best {r['ARI']:.3f} ({r['method']}), mean {mean_ari:.3f}")
        out.append("ARI by space, best method and mean over the methods that are given the number of clusters: "
                   + "; ".join(per_space) + ".")
    for method in cfg.methods:
        if len(names) < 2:
            break
        scores = [(names[s], next(r["ARI"] for r in rows if r["_space"] == s and r["_method"] == method)) for s in names]
        lo, hi = min(scores, key=lambda t: t[1]), max(scores, key=lambda t: t[1])
        if method == "kmeans":
            out.append(f"k-means goes from ARI {lo[1]:.3f} on {_prose(lo[0])} to {hi[1]:.3f} on {_prose(hi[0])}: k-means assumes round "
                       "clusters of equal spread, which the classes are closer to where the ARI is higher.")
    # the largest confusion in the best clustering
    table, col = C.matched_contingency(pts["y"], img["labels"][(best["_space"], best["_method"])], len(classes))
    k = len(classes)
    off = table[:, :k].copy()
    np.fill_diagonal(off, 0)
    if off.max() > 0:
        a, b = np.unravel_index(int(off.argmax()), off.shape)
        total_a = int(table[a].sum())
        out.append(f"Its largest mix-up: {off[a, b]} of the {total_a} images of class {classes[a]} "
                   f"({100 * off[a, b] / max(total_a, 1):.1f} %) land in the cluster matched to {classes[b]}.")
    missing = [classes[c] for c in range(k) if col[c] == "-"]
    if missing:
        out.append(f"No cluster of that clustering is matched to {_join([str(m) for m in missing])}: "
                   "those classes are split across or merged into clusters of other classes.")
    if "hdbscan" in cfg.methods:
        out.append(hdbscan_sentence(img, pts, classes))
    return out


def merged_classes(y: np.ndarray, labels: np.ndarray, classes, share: float = 0.2) -> list[str]:
    """Clusters that hold several classes, each at least ``share`` of the cluster: ["4/9", "3/5/8"]."""
    table, ids = C.contingency(y, labels, len(classes))
    out = []
    for j, cl in enumerate(ids):
        col = table[:, j]
        if cl < 0 or col.sum() == 0:
            continue
        big = [str(classes[c]) for c in np.flatnonzero(col >= share * col.sum())]
        if len(big) > 1:
            out.append("/".join(big))
    return out


def hdbscan_sentence(img: dict, pts: dict, classes) -> str:
    """What HDBSCAN finds in each space: clusters, noise share, the classes most often noise, merged classes."""
    parts, all_noise = [], []
    for space, name in img["names"].items():
        lab = img["labels"][(space, "hdbscan")]
        r = next(r for r in img["rows"] if r["_space"] == space and r["_method"] == "hdbscan")
        if r["clusters"] == 0:
            all_noise.append(_prose(name))
            continue
        share = C.noise_by_class(pts["y"], lab, len(classes))
        top = [c for c in np.argsort(-share, kind="stable")[:2] if share[c] > 0]
        tops = " and ".join(f"{classes[c]} ({100 * share[c]:.1f} % of the class)" for c in top)
        merged = merged_classes(pts["y"], lab, classes)
        noise = f"labels {r['noise %']:.1f} % of the images as noise" if r["noise %"] > 0 else "labels no image as noise"
        parts.append(f"on {_prose(name)} it finds {r['clusters']} clusters and {noise}" + (f", most of all {tops}" if tops else "")
                     + (f"; clusters that hold several classes (each at least a fifth of the cluster): {', '.join(merged)}"
                        if merged else ""))
    if all_noise:
        parts.insert(0, f"on {_join(all_noise)} it labels every image as noise: no group of images is denser than its "
                        "surroundings by enough to form a cluster")
    return "HDBSCAN chooses the number of clusters itself and leaves low-density points unclustered (noise): " + \
        "; ".join(parts) + "."


def layer_findings(cfg: Config, rows: list[dict], test_acc: float) -> list[str]:
    method = cfg.layer_methods[0]
    ari, nmi = f"ARI {method}", f"NMI {method}"
    merge = "flatten" if "flatten" in cfg.merge else cfg.merge[0]
    out = [f"The trained {_net(cfg.net)} reaches {100 * test_acc:.2f} % test accuracy."]

    def series(net: str, key: str, m: str = merge) -> list[tuple[str, float]]:
        return [(r["layer"], r[key]) for r in sorted(rows, key=lambda r: r["depth"]) if r["net"] == net and r["merge"] == m]

    t_ari, u_ari = series("trained", ari), series("untrained", ari)
    path = lambda s: " -> ".join(f"{v:.2f}" for _, v in s)  # noqa: E731
    rises = sum(b[1] > a[1] for a, b in zip(t_ari, t_ari[1:]))
    trend = ("rises at every layer" if rises == len(t_ari) - 1 else
             f"rises at {rises} of {len(t_ari) - 1} steps")
    out.append(f"{C.LABELS[method]} on the trained network's layers ({MERGE_NAMES[merge]} blocks), ARI from the input to the "
               f"penultimate layer: {path(t_ari)} ({trend}); on the untrained copy: {path(u_ari)}.")
    t_nmi, u_nmi = series("trained", nmi), series("untrained", nmi)
    out.append(f"NMI, same layers: trained {path(t_nmi)}; untrained {path(u_nmi)}.")
    t_probe, u_probe = series("trained", "probe accuracy"), series("untrained", "probe accuracy")
    out.append(f"Linear-probe accuracy, same layers: trained {path(t_probe)}; untrained {path(u_probe)}.")
    pen_t, pen_u, inp = t_ari[-1][1], u_ari[-1][1], t_ari[0][1]
    p_in, p_u, p_t = t_probe[0][1], u_probe[-1][1], t_probe[-1][1]
    if pen_t - pen_u > 0.1:
        out.append(f"The rise comes from training, not from the architecture: the same layers with their initial weights "
                   f"reach ARI {pen_u:.2f} at the penultimate layer, the trained ones {pen_t:.2f}.")
    else:
        out.append(f"Training changes the penultimate layer's clusters little (ARI {pen_u:.2f} untrained, {pen_t:.2f} trained).")
    if p_u >= p_in - 0.02 and (pen_t - pen_u) > 2 * max(p_t - p_u, 0.0):
        out.append(f"The untrained layers keep the class information (a linear probe reads {100 * p_u:.1f} % at the untrained "
                   f"penultimate layer, {100 * p_in:.1f} % from the pixels) without gathering each class in one region "
                   f"(ARI {pen_u:.2f}): with labels the classes can be read from random features, without labels they cannot "
                   f"be found. Training adds {100 * (p_t - p_u):+.1f} points of probe accuracy but {pen_t - pen_u:+.2f} of "
                   f"ARI: what it mostly adds is geometry, each class pulled into one compact group that {C.LABELS[method]} can find.")
    elif p_u < p_in - 0.02:
        out.append(f"The untrained layers lose class information: a linear probe reads {100 * p_u:.1f} % at the untrained "
                   f"penultimate layer against {100 * p_in:.1f} % from the pixels, and {100 * p_t:.1f} % after training.")
    if pen_u < inp:
        out.append(f"The untrained network's penultimate layer clusters worse than the pixels themselves (ARI {pen_u:.2f} "
                   f"against {inp:.2f}): random layers mix the pixels without grouping the classes.")
    if "gap" in cfg.merge and "flatten" in cfg.merge:
        blocks = [r for r in rows if r["net"] == "trained" and r["layer"] not in ("input", "penultimate")]
        first = min(r["depth"] for r in blocks)
        g = next(r for r in blocks if r["depth"] == first and r["merge"] == "gap")
        f = next(r for r in blocks if r["depth"] == first and r["merge"] == "flatten")
        last = max(r["depth"] for r in blocks)
        gl = next(r for r in blocks if r["depth"] == last and r["merge"] == "gap")
        fl = next(r for r in blocks if r["depth"] == last and r["merge"] == "flatten")
        out.append(f"Global average pooling against flattening in the trained network: after {g['layer']} the probe reads "
                   f"{100 * g['probe accuracy']:.1f} % from the {g['dims']} channel means and {100 * f['probe accuracy']:.1f} % "
                   f"from all {f['dims']} units; after {gl['layer']} {100 * gl['probe accuracy']:.1f} % against "
                   f"{100 * fl['probe accuracy']:.1f} % ({ari}: {gl[ari]:.2f} against {fl[ari]:.2f}). "
                   + ("Averaging away where a feature fires costs less the deeper the block."
                      if (f['probe accuracy'] - g['probe accuracy']) > (fl['probe accuracy'] - gl['probe accuracy']) else ""))
    return out


def make_headline(img: dict, layer_part: dict | None) -> str:
    best = best_row(img["rows"])
    pix = [r for r in img["rows"] if r["_space"] == "pixels"]
    text = f"Without labels, {best['method']} on {_prose(best['space'])} comes closest to the classes (ARI {best['ARI']:.2f}, NMI {best['NMI']:.2f}"
    if pix and best["_space"] != "pixels":
        bp = best_row(img["rows"], "pixels")
        text += f", against {bp['ARI']:.2f} and {bp['NMI']:.2f} at best on raw pixels"
    text += ")"
    if layer_part:
        rows = layer_part["rows"]
        key = next(k for k in rows[0] if k.startswith("ARI "))
        merge = rows[0]["merge"] if not any(r["merge"] == "flatten" for r in rows) else "flatten"
        get = lambda net, layer: next(r[key] for r in rows if r["net"] == net and r["layer"] == layer and r["merge"] == merge)  # noqa: E731
        text += (f"; in a trained CNN the ARI goes from {get('trained', 'input'):.2f} at the input to "
                 f"{get('trained', 'penultimate'):.2f} at the penultimate layer, against {get('untrained', 'penultimate'):.2f} "
                 "for the same network untrained")
    return text + "."


def method_notes(cfg: Config, img: dict, pts: dict) -> list[str]:
    notes = [f"Images: {len(pts['y']):,} {pts['source']} that the embed task embedded (a stratified subset of its points), so "
             "the clusterings of every space and the drawn map are of the same images. Pixel space is every pixel of every "
             f"channel divided by 255; PCA-{cfg.pca_dims} is its projection on the first {cfg.pca_dims} principal components.",
             "Scores: ARI, NMI, homogeneity and completeness are scikit-learn's; purity is the share of images whose "
             "cluster's majority class is their own; matched accuracy reads the clustering as a classifier through the "
             "one-to-one cluster-to-class matching that maximises the matched images (Hungarian algorithm, SciPy's "
             "linear_sum_assignment). HDBSCAN's noise counts as one more cluster in every score, so leaving hard images "
             "out is not rewarded; the table's noise column says how many it left out.",
             "Methods: k-means (k-means++, best of several starts); Gaussian mixture (full covariance on the 2-D maps, "
             "diagonal in higher dimensions, where a full covariance has more parameters than a class has images); "
             "agglomerative clustering with Ward's linkage (merges the pair of clusters that least increases the within-"
             "cluster variance); HDBSCAN (density-based, picks its own number of clusters, leaves noise); spectral "
             f"clustering on a {cfg.spectral_neighbors}-nearest-neighbour graph."]
    return notes


def layer_notes(cfg: Config, acts: dict, part, fitted: dict, trained: dict) -> list[str]:
    shapes = "; ".join(f"{layer} {_shape(acts['shapes'][layer])}" for layer in acts["layers"][1:])
    tc = trained["train_cfg"]
    return [f"Network: the {_net(cfg.net)} " + ("of the fast recipe " if trained["params"] else "with its family's defaults ")
            + f"({fitted['params']:,} parameters), trained on {part.n_train:,} images for {fitted['epochs_run']} epochs "
            f"({fitted.get('steps') or '?'} optimiser steps; {tc.epochs} epochs or at least {tc.min_steps} steps) in "
            f"{fitted['train_seconds']:.1f} s. The control is the same network before training (built with the same seed, "
            "so it starts from the trained network's initial weights).",
            f"Layers (output shape channels x height x width): {shapes}. A block's output is taken after its activation and "
            "pooling, by forward hooks; the penultimate layer is the input of the last linear layer, by a forward pre-hook.",
            "Channels are merged two ways: global average pooling (the mean of each channel over the map: which features "
            "fire, not where) and flattening (every unit: which and where). The penultimate layer is already a vector; "
            "for a CNN whose head flattens the last block, it equals that block flattened.",
            (f"Each layer's features are projected on their first {cfg.layer_pca_dims} principal components before "
             "clustering (fewer dimensions are kept as they are); " if cfg.layer_pca_dims else "Layers are clustered as they are; ")
            + f"the linear probe (standardised features, logistic regression, C = {cfg.probe_c:g}, at most {cfg.probe_max_iter} "
            "lbfgs iterations) sees every dimension and "
            f"is fitted on {100 * (1 - cfg.probe_test_fraction):.0f} % of the {part.n_test:,} test images and scored on the "
            "rest, so neither the network nor the probe has seen the images it is scored on."]
