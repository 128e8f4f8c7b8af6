"""Sentences of the cluster task: the results of :mod:`digitlab.experiments.clustering` in, strings out."""

from __future__ import annotations

from typing import Any

import numpy as np

NET_WORDS = {"cnn": "CNN", "lenet5": "LeNet-5", "resnet": "ResNet", "convmixer": "ConvMixer"}
METHOD_LABELS = {
    "kmeans": "k-means",
    "gmm": "Gaussian mixture",
    "ward": "agglomerative (Ward)",
    "hdbscan": "HDBSCAN",
    "spectral": "spectral",
}
MERGE_NAMES = {"gap": "global average pooling", "flatten": "flattened"}
MAP_NAMES = {"pca": "2-D PCA map", "umap": "UMAP map", "tsne": "t-SNE map"}


def net_words(name: str) -> str:
    return NET_WORDS.get(name, name)


def prose_space(space_name: str) -> str:
    """A space's table name as it reads in a sentence ("UMAP map" -> "the UMAP map")."""
    return f"the {space_name}" if space_name.endswith("map") else space_name


def join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def shape(s) -> str:
    return " x ".join(str(v) for v in s)


def summary(img: Any, dataset: str, source: str, methods: list[str], net: str, layers: bool) -> str:
    return (
        f"We cluster {len(img.y):,} {dataset} {source} without their labels, with "
        f"{join([METHOD_LABELS[m] for m in methods])}, in {join(list(img.names.values()))}, and measure how "
        "well the clusters agree with the classes"
        + (
            f"; then we do the same with the output of every conv block and of the penultimate layer of a "
            f"trained {net_words(net)} and of its untrained copy, and ask how well a linear probe reads the class from each layer."
            if layers
            else "."
        )
    )


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------


def methods_caption(img: Any) -> str:
    return (
        f"Agreement of each clustering of {len(img.y):,} images with their classes ({img.k} clusters asked; "
        "HDBSCAN chooses its own number and leaves noise). ARI and NMI: 0 = chance, 1 = the classes exactly; "
        "matched accuracy: share of images in the cluster matched to their class (Hungarian matching)."
    )


NOISE_CAPTION = "Share (%) of each class that HDBSCAN labels as noise, per space."
CONTINGENCY_CAPTION = (
    "Contingency tables after Hungarian matching, for the best method (by ARI) in each space: row = true "
    "class, column = cluster; each class's matched cluster is on the diagonal, unmatched clusters and "
    "HDBSCAN's noise follow; colour = share of the row, number = images."
)


def assignments_caption(space_name: str, map_name: str) -> str:
    return (
        f"The clusters found on {prose_space(space_name)} drawn on the embed task's {map_name}, beside the true "
        "labels (first panel). A cluster takes the colour of the class it is matched to, unmatched clusters "
        "are black, HDBSCAN's noise grey."
    )


def layer_scores_caption(lc: Any) -> str:
    return (
        f"Agreement of the clusters with the classes (ARI, NMI) and held-out accuracy of a linear probe at the "
        f"input and after every layer of the trained {net_words(lc.net)} (solid) and of its untrained copy (dashed), on "
        f"{lc.n_test:,} test images; colours: how a block's channels are merged into one vector."
    )


def filters_caption(lc: Any) -> str:
    return (
        f"First-layer kernels of the trained {net_words(lc.net)} and of its untrained copy (the same weights before "
        "training): red positive, blue negative, each kernel on its own scale."
    )


def feature_maps_title(lc: Any, layer: str) -> str:
    return f"{layer} of the {net_words(lc.net)}: trained (left) and untrained (right)"


def feature_maps_caption(lc: Any, layer: str, n_channels: int) -> str:
    return (
        f"Feature maps after {layer} ({shape(lc.shapes[layer])}) for one test image per class: for "
        f"each network the {n_channels} channels that vary most across these images."
    )


def layers_caption(lc: Any, layer_pca_dims: int, probe_test_fraction: float) -> str:
    return (
        f"Layer by layer on {lc.n_test:,} test images: cluster agreement (features projected on "
        f"{layer_pca_dims} principal components first) and held-out accuracy of a linear probe (logistic "
        f"regression fitted on {100 * (1 - probe_test_fraction):.0f} % of the images, scored on the rest)."
    )


# ---------------------------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------------------------


def image_findings(img: Any, methods: list[str]) -> list[str]:
    rows, names, classes = img.rows, img.names, img.classes
    out = []
    best = img.best()
    out.append(
        f"The clustering closest to the classes is {best['method']} on {prose_space(best['space'])}: ARI {best['ARI']:.3f}, "
        f"NMI {best['NMI']:.3f}, and {100 * best['matched accuracy']:.1f} % of the images fall in the cluster "
        f"matched to their class."
    )
    if len(names) > 1:
        per_space = []
        for space, name in names.items():
            r = img.best(space)
            mean_ari = np.mean(
                [x["ARI"] for x in rows if x["_space"] == space and x["_method"] != "hdbscan"] or [np.nan]
            )
            per_space.append(f"{name} best {r['ARI']:.3f} ({r['method']}), mean {mean_ari:.3f}")
        out.append(
            "ARI by space, best method and mean over the methods that are given the number of clusters: "
            + "; ".join(per_space)
            + "."
        )
    if len(names) >= 2 and "kmeans" in methods:
        scores = [(names[s], img.row(s, "kmeans")["ARI"]) for s in names]
        lo, hi = min(scores, key=lambda t: t[1]), max(scores, key=lambda t: t[1])
        out.append(
            f"k-means goes from ARI {lo[1]:.3f} on {prose_space(lo[0])} to {hi[1]:.3f} on {prose_space(hi[0])}: k-means "
            "assumes round clusters of equal spread, which the classes are closer to where the ARI is higher."
        )
    table, col = img.matched(best["_space"], best["_method"])  # the largest confusion in the best clustering
    k = len(classes)
    off = table[:, :k].copy()
    np.fill_diagonal(off, 0)
    if off.max() > 0:
        a, b = np.unravel_index(int(off.argmax()), off.shape)
        total_a = int(table[a].sum())
        out.append(
            f"Its largest mix-up: {off[a, b]} of the {total_a} images of class {classes[a]} "
            f"({100 * off[a, b] / max(total_a, 1):.1f} %) land in the cluster matched to {classes[b]}."
        )
    missing = [classes[c] for c in range(k) if col[c] == "-"]
    if missing:
        out.append(
            f"No cluster of that clustering is matched to {join([str(m) for m in missing])}: "
            "those classes are split across or merged into clusters of other classes."
        )
    if "hdbscan" in methods:
        out.append(hdbscan_sentence(img))
    return out


def hdbscan_sentence(img: Any) -> str:
    """What HDBSCAN finds in each space: clusters, noise share, the classes most often noise, merged classes."""
    classes = img.classes
    parts, all_noise = [], []
    for space, name in img.names.items():
        r = img.row(space, "hdbscan")
        if r["clusters"] == 0:
            all_noise.append(prose_space(name))
            continue
        share = img.noise_by_class(space)
        top = [c for c in np.argsort(-share, kind="stable")[:2] if share[c] > 0]
        tops = " and ".join(f"{classes[c]} ({100 * share[c]:.1f} % of the class)" for c in top)
        merged = img.merged_classes(space, "hdbscan")
        noise = (
            f"labels {r['noise %']:.1f} % of the images as noise"
            if r["noise %"] > 0
            else "labels no image as noise"
        )
        parts.append(
            f"on {prose_space(name)} it finds {r['clusters']} clusters and {noise}"
            + (f", most of all {tops}" if tops else "")
            + (
                f"; clusters that hold several classes (each at least a fifth of the cluster): {', '.join(merged)}"
                if merged
                else ""
            )
        )
    if all_noise:
        parts.insert(
            0,
            f"on {join(all_noise)} it labels every image as noise: no group of images is denser than its "
            "surroundings by enough to form a cluster",
        )
    return (
        "HDBSCAN chooses the number of clusters itself and leaves low-density points unclustered (noise): "
        + "; ".join(parts)
        + "."
    )


def layer_findings(lc: Any) -> list[str]:
    rows, method = lc.rows, lc.methods[0]
    ari, nmi = f"ARI {method}", f"NMI {method}"
    merge = "flatten" if "flatten" in lc.merge else lc.merge[0]
    out = [f"The trained {net_words(lc.net)} reaches {100 * lc.test_acc:.2f} % test accuracy."]

    def series(net: str, key: str, m: str = merge) -> list[tuple[str, float]]:
        return [
            (r["layer"], r[key])
            for r in sorted(rows, key=lambda r: r["depth"])
            if r["net"] == net and r["merge"] == m
        ]

    t_ari, u_ari = series("trained", ari), series("untrained", ari)
    path = lambda s: " -> ".join(f"{v:.2f}" for _, v in s)  # noqa: E731
    rises = sum(b[1] > a[1] for a, b in zip(t_ari, t_ari[1:]))
    trend = (
        "rises at every layer" if rises == len(t_ari) - 1 else f"rises at {rises} of {len(t_ari) - 1} steps"
    )
    out.append(
        f"{METHOD_LABELS[method]} on the trained network's layers ({MERGE_NAMES[merge]} blocks), ARI from the input to the "
        f"penultimate layer: {path(t_ari)} ({trend}); on the untrained copy: {path(u_ari)}."
    )
    t_nmi, u_nmi = series("trained", nmi), series("untrained", nmi)
    out.append(f"NMI, same layers: trained {path(t_nmi)}; untrained {path(u_nmi)}.")
    t_probe, u_probe = series("trained", "probe accuracy"), series("untrained", "probe accuracy")
    out.append(f"Linear-probe accuracy, same layers: trained {path(t_probe)}; untrained {path(u_probe)}.")
    pen_t, pen_u, inp = t_ari[-1][1], u_ari[-1][1], t_ari[0][1]
    p_in, p_u, p_t = t_probe[0][1], u_probe[-1][1], t_probe[-1][1]
    if pen_t - pen_u > 0.1:
        out.append(
            f"The rise comes from training, not from the architecture: the same layers with their initial weights "
            f"reach ARI {pen_u:.2f} at the penultimate layer, the trained ones {pen_t:.2f}."
        )
    else:
        out.append(
            f"Training changes the penultimate layer's clusters little (ARI {pen_u:.2f} untrained, {pen_t:.2f} trained)."
        )
    if p_u >= p_in - 0.02 and (pen_t - pen_u) > 2 * max(p_t - p_u, 0.0):
        out.append(
            f"The untrained layers keep the class information (a linear probe reads {100 * p_u:.1f} % at the untrained "
            f"penultimate layer, {100 * p_in:.1f} % from the pixels) without gathering each class in one region "
            f"(ARI {pen_u:.2f}): with labels the classes can be read from random features, without labels they cannot "
            f"be found. Training adds {100 * (p_t - p_u):+.1f} points of probe accuracy but {pen_t - pen_u:+.2f} of "
            f"ARI: what it mostly adds is geometry, each class pulled into one compact group that {METHOD_LABELS[method]} can find."
        )
    elif p_u < p_in - 0.02:
        out.append(
            f"The untrained layers lose class information: a linear probe reads {100 * p_u:.1f} % at the untrained "
            f"penultimate layer against {100 * p_in:.1f} % from the pixels, and {100 * p_t:.1f} % after training."
        )
    if pen_u < inp:
        out.append(
            f"The untrained network's penultimate layer clusters worse than the pixels themselves (ARI {pen_u:.2f} "
            f"against {inp:.2f}): random layers mix the pixels without grouping the classes."
        )
    if "gap" in lc.merge and "flatten" in lc.merge:
        blocks = [r for r in rows if r["net"] == "trained" and r["layer"] not in ("input", "penultimate")]
        first = min(r["depth"] for r in blocks)
        g = next(r for r in blocks if r["depth"] == first and r["merge"] == "gap")
        f = next(r for r in blocks if r["depth"] == first and r["merge"] == "flatten")
        last = max(r["depth"] for r in blocks)
        gl = next(r for r in blocks if r["depth"] == last and r["merge"] == "gap")
        fl = next(r for r in blocks if r["depth"] == last and r["merge"] == "flatten")
        out.append(
            f"Global average pooling against flattening in the trained network: after {g['layer']} the probe reads "
            f"{100 * g['probe accuracy']:.1f} % from the {g['dims']} channel means and {100 * f['probe accuracy']:.1f} % "
            f"from all {f['dims']} units; after {gl['layer']} {100 * gl['probe accuracy']:.1f} % against "
            f"{100 * fl['probe accuracy']:.1f} % ({ari}: {gl[ari]:.2f} against {fl[ari]:.2f}). "
            + (
                "Averaging away where a feature fires costs less the deeper the block."
                if (f["probe accuracy"] - g["probe accuracy"]) > (fl["probe accuracy"] - gl["probe accuracy"])
                else ""
            )
        )
    return out


def filter_sentence(lc: Any) -> str:
    moved = lc.filter_change
    return (
        f"Training moved the first-layer kernels by {100 * moved:.0f} % of their initial size (Frobenius norm of "
        f"the change over that of the initial weights, in {lc.fitted.get('steps') or '?'} optimiser steps), so the "
        "trained kernels "
        + (
            "still resemble their random starting point"
            if moved < 0.5
            else "no longer resemble their random starting point"
        )
        + " in the filters figure."
    )


def headline(img: Any, lc: Any | None) -> str:
    best = img.best()
    pix = [r for r in img.rows if r["_space"] == "pixels"]
    text = (
        f"Without labels, {best['method']} on {prose_space(best['space'])} comes closest to the classes "
        f"(ARI {best['ARI']:.2f}, NMI {best['NMI']:.2f}"
    )
    if pix and best["_space"] != "pixels":
        bp = img.best("pixels")
        text += f", against {bp['ARI']:.2f} and {bp['NMI']:.2f} at best on raw pixels"
    text += ")"
    if lc is not None:
        rows = lc.rows
        key = next(k for k in rows[0] if k.startswith("ARI "))
        merge = rows[0]["merge"] if not any(r["merge"] == "flatten" for r in rows) else "flatten"
        get = lambda net, layer: next(
            r[key] for r in rows if r["net"] == net and r["layer"] == layer and r["merge"] == merge
        )  # noqa: E731
        text += (
            f"; in a trained CNN the ARI goes from {get('trained', 'input'):.2f} at the input to "
            f"{get('trained', 'penultimate'):.2f} at the penultimate layer, against {get('untrained', 'penultimate'):.2f} "
            "for the same network untrained"
        )
    return text + "."


def method_notes(n_points: int, source: str, pca_dims: int, spectral_neighbors: int) -> list[str]:
    return [
        f"Images: {n_points:,} {source} that the embed task embedded (a stratified subset of its points), so "
        "the clusterings of every space and the drawn map are of the same images. Pixel space is every pixel of every "
        f"channel divided by 255; PCA-{pca_dims} is its projection on the first {pca_dims} principal components.",
        "Scores: ARI, NMI, homogeneity and completeness are scikit-learn's; purity is the share of images whose "
        "cluster's majority class is their own; matched accuracy reads the clustering as a classifier through the "
        "one-to-one cluster-to-class matching that maximises the matched images (Hungarian algorithm, SciPy's "
        "linear_sum_assignment). HDBSCAN's noise counts as one more cluster in every score, so leaving hard images "
        "out is not rewarded; the table's noise column says how many it left out.",
        "Methods: k-means (k-means++, best of several starts); Gaussian mixture (full covariance on the 2-D maps, "
        "diagonal in higher dimensions, where a full covariance has more parameters than a class has images); "
        "agglomerative clustering with Ward's linkage (merges the pair of clusters that least increases the within-"
        "cluster variance); HDBSCAN (density-based, picks its own number of clusters, leaves noise); spectral "
        f"clustering on a {spectral_neighbors}-nearest-neighbour graph.",
    ]


def layer_notes(
    lc: Any, layer_pca_dims: int, probe_c: float, probe_max_iter: int, probe_test_fraction: float
) -> list[str]:
    shapes = "; ".join(f"{layer} {shape(lc.shapes[layer])}" for layer in lc.layers[1:])
    f = lc.fitted
    return [
        f"Network: the {net_words(lc.net)} "
        + ("of the fast recipe " if lc.recipe else "with its family's defaults ")
        + f"({f['params']:,} parameters), trained on {lc.n_train:,} images for {f['epochs_run']} epochs "
        f"({f.get('steps') or '?'} optimiser steps; {lc.epochs} epochs or at least {lc.min_steps} steps) in "
        f"{f['train_seconds']:.1f} s. The control is the same network before training (built with the same seed, "
        "so it starts from the trained network's initial weights).",
        f"Layers (output shape channels x height x width): {shapes}. A block's output is taken after its activation and "
        "pooling, by forward hooks; the penultimate layer is the input of the last linear layer, by a forward pre-hook.",
        "Channels are merged two ways: global average pooling (the mean of each channel over the map: which features "
        "fire, not where) and flattening (every unit: which and where). The penultimate layer is already a vector; "
        "for a CNN whose head flattens the last block, it equals that block flattened.",
        (
            f"Each layer's features are projected on their first {layer_pca_dims} principal components before "
            "clustering (fewer dimensions are kept as they are); "
            if layer_pca_dims
            else "Layers are clustered as they are; "
        )
        + f"the linear probe (standardised features, logistic regression, C = {probe_c:g}, at most {probe_max_iter} "
        "lbfgs iterations) sees every dimension and "
        f"is fitted on {100 * (1 - probe_test_fraction):.0f} % of the {lc.n_test:,} test images and scored on the "
        "rest, so neither the network nor the probe has seen the images it is scored on.",
    ]
