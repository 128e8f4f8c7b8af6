"""Sentences of the ``embed`` task: findings, notes and captions, filled in from the measurements."""

from __future__ import annotations

import numpy as np

LABELS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


def key(label: str) -> str:
    return {v: k for k, v in LABELS.items()}[label]


def findings(res, k: int, top_pairs: int, meta: dict) -> list[str]:
    """``res``: an :class:`~digitlab.experiments.embedding.EmbeddingStudy`."""
    rows, overlap_rows = res.methods.to_dict("records"), res.overlaps.to_dict("records")
    out = [best_sentence(rows)]
    by_method = {r["method"]: r for r in rows}
    best = max(rows, key=lambda r: r["k-NN accuracy (2-D)"])["method"]
    top = [r for r in overlap_rows if r["method"] == best]
    pairs = ", ".join(f"{r['pair']} ({r['overlap %']:.1f} %)" for r in top[:3])
    common = set.intersection(*({r["pair"] for r in overlap_rows if r["method"] == m} for m in by_method))
    out.append(
        f"In the {best} map the classes that overlap most are {pairs} (share of their {k} nearest 2-D "
        f"neighbours from the other class)"
        + (
            f"; {', '.join(sorted(common))} are among the {top_pairs} most overlapping pairs in every map."
            if common and len(by_method) > 1
            else "."
        )
    )
    out.append(why_sentence(top[0], res.classes, res.ink, res.ink_rho[key(best)], meta))
    if "pca" in res.embeddings and len(res.embeddings) > 1:
        out.append(pca_sentence(res.pca_variance_kept, rows, res.fractions["pca"], res.classes))
    if len(res.hard):
        out.append(hard_sentence(res.foreign[key(best)], len(res.hard), len(res.y), k, best, res.space_name))
    timed = [r for r in rows if r["method"] != "PCA"]
    if timed:
        out.append(
            f"On {rows[0]['points']:,} points "
            + " and ".join(f"{r['method']} took {r['seconds']:.1f} s" for r in timed)
            + (f", PCA {by_method['PCA']['seconds']:.2f} s" if "PCA" in by_method else "")
            + "."
        )
    return out


def best_sentence(rows: list[dict], tie: float = 0.005) -> str:
    """Which map wins by each measure; maps within ``tie`` of the best count as tied."""
    cols = {
        "k-NN accuracy (2-D)": "2-D k-NN accuracy",
        "silhouette": "silhouette",
        "trustworthiness": "trustworthiness",
    }
    if len(rows) == 1:
        r = rows[0]
        return f"{r['method']}: " + ", ".join(f"{label} {r[c]:.3f}" for c, label in cols.items()) + "."
    parts, leaders = [], []
    for c, label in cols.items():
        ranked = sorted(rows, key=lambda r: -r[c])
        lead = [r for r in ranked if ranked[0][c] - r[c] < tie]
        rest = ", ".join(f"{r['method']} {r[c]:.3f}" for r in ranked if r not in lead)
        who = " and ".join(r["method"] for r in lead) + (" tie" if len(lead) > 1 else "")
        parts.append(
            f"by {label} {who} ({'/'.join(f'{r[c]:.3f}' for r in lead)}{'; ' + rest if rest else ''})"
        )
        leaders.append({r["method"] for r in lead})
    common = set.intersection(*leaders)
    head = (
        f"{' and '.join(sorted(common))} separate{'s' if len(common) == 1 else ''} the classes best by all three "
        "measures: "
        if common
        else "The best map depends on the measure: "
    )
    return head + "; ".join(parts) + "."


def pair_reason(meta: dict, a: str, b: str) -> str | None:
    """Why classes ``a`` and ``b`` look alike, from the dataset's metadata (e.g. the strokes two digits share)."""
    for x, y, reason in meta.get("pair_reasons", []):
        if {x, y} == {a, b}:
            return reason
    return None


def why_sentence(pair: dict, classes, ink: np.ndarray, rho: float, meta: dict) -> str:
    a, b = pair["a"], pair["b"]
    ink_all = ink[np.triu_indices(len(classes), 1)]
    rank = int((ink_all > ink[a, b]).sum()) + 1
    stroke = pair_reason(meta, classes[a], classes[b])
    stuff = "ink" if meta.get("ink_on_blank", True) else "pixel intensity"  # photographs have no ink
    return (
        f"{classes[a]} and {classes[b]} also have similar average images: their class means share "
        f"{100 * ink[a, b]:.0f} % of their {stuff} (rank {rank} of {len(ink_all)} pairs, median {100 * np.median(ink_all):.0f} %)"
        + (f" — {stroke}" if stroke else "")
        + f". Over all pairs, overlap in the map follows shared {stuff} (Spearman rho = {rho:.2f})"
        + (
            ": classes drawn with the same strokes become neighbours."
            if meta.get("ink_on_blank")
            else ": classes whose average images look alike become neighbours."
        )
    )


def pca_sentence(kept: float, rows: list[dict], frac: np.ndarray, classes) -> str:
    pca = next(r for r in rows if r["method"] == "PCA")
    best = max((r for r in rows if r["method"] != "PCA"), key=lambda r: r["k-NN accuracy (2-D)"])
    own = np.diag(frac)
    order = np.argsort(-own)
    hi = ", ".join(f"{classes[c]} ({100 * own[c]:.0f} %)" for c in order[:2])
    lo = ", ".join(f"{classes[c]} ({100 * own[c]:.0f} %)" for c in order[-2:])
    return (
        f"PCA's two linear directions keep only {kept:.1f} % of the pixel variance and reach a 2-D k-NN accuracy of "
        f"{pca['k-NN accuracy (2-D)']:.3f} against {best['k-NN accuracy (2-D)']:.3f} for {best['method']}: the linear "
        f"projection lays most classes on top of each other; only {hi} keep most of their neighbours "
        f"(own-class share), while {lo} are the most mixed."
    )


def hard_sentence(
    foreign: tuple[float, float], n_hard: int, n: int, k: int, method: str, space_name: str
) -> str:
    hard_share, all_share = foreign
    return (
        f"A {k}-NN classifier in the {space_name} misclassifies {n_hard:,} of {n:,} images "
        f"({100 * n_hard / n:.1f} %, black-edged in the maps); in the {method} map {100 * hard_share:.0f} % "
        f"of them sit among another class against {100 * all_share:.1f} % of all images: they look like the "
        "other class, so no 2-D map separates them."
    )


def headline(best: dict, top: dict | None, k: int, n: int) -> str:
    return (
        f"{best['method']} separates the classes best: a {k}-nearest-neighbour vote in its 2-D map recovers the "
        f"label of {100 * best['k-NN accuracy (2-D)']:.1f} % of the {n:,} images"
        + (f"; the classes that share most of their neighbourhood are {top['pair']}." if top else ".")
    )


def summary(n: int, space: str, methods: list[str]) -> str:
    return (
        f"We embed {n:,} images ({space}) in two dimensions with {', '.join(LABELS[m] for m in methods)}, "
        "measure how well each map keeps the classes apart and the true neighbours together, and look at "
        "which classes share a region."
    )


def methods_caption(n: int, pca_dims: int) -> str:
    return (
        f"Quality of each 2-D map ({n:,} points). Seconds include the PCA-{pca_dims} step for t-SNE and UMAP."
    )


def overlaps_caption(k: int) -> str:
    return (
        f"Most-overlapping class pairs per map: overlap = share of a class's {k} nearest 2-D neighbours that "
        "belong to the other class (mean of both directions); mean-image overlap = shared intensity (ink, for "
        "digits) of the two class-mean images."
    )


def own_class_caption(k: int) -> str:
    return f"Share (%) of each class's {k} nearest 2-D neighbours that are of the same class, per map."


def maps_caption(n: int, hard_label: str) -> str:
    return (
        f"The same {n:,} images embedded by each method, coloured by class; class names sit at each "
        f"class's median; black-edged points are {hard_label}."
    )


def map_caption(label: str, n: int, hard_label: str, shown: int | None) -> str:
    return f"{label} map of the {n:,} images; black-edged points are {hard_label}." + (
        f" The HTML report shows it interactively for a stratified sample of {shown:,} points."
        if shown is not None
        else ""
    )


def notes(cfg, n: int, space: str, t_reduce: float, silhouette_max: int, fft_min: int) -> list[str]:
    return [
        "2-D k-NN accuracy: 5-fold cross-validated accuracy of a k-NN classifier on the map's coordinates "
        f"(k = {cfg.k}); high when every class has its own region.",
        f"Trustworthiness (scikit-learn): 1 when the {cfg.k} nearest neighbours of each point in the map are also near "
        f"in pixel space; computed on a seeded subsample of {min(cfg.quality_points, n):,} points because it needs all "
        "pairwise distances.",
        f"Silhouette: how much closer points are to their own class than to the nearest other class in the map (-1..1; "
        f"about 0 for random labels); a seeded sample of {min(silhouette_max, n):,} points.",
        f"t-SNE (openTSNE, {'FFT-accelerated' if n >= fft_min else 'Barnes-Hut'} gradients (FFT from "
        f"{fft_min:,} points on), PCA initialisation, perplexity {cfg.perplexity:g}) and UMAP "
        f"(umap-learn, n_neighbors {cfg.n_neighbors}, min_dist {cfg.min_dist:g}) run on the first {cfg.pca_dims} principal "
        f"components of the pixels / 255 (computed in {t_reduce:.1f} s). Both preserve local neighbourhoods rather than "
        "global variance, so distances between clusters in their maps carry little meaning; PCA is a linear projection "
        "that keeps the directions of largest variance.",
        "UMAP is seeded for reproducibility, which makes umap-learn single-threaded; its first run in a fresh "
        "environment includes numba's compilation (cached afterwards under NUMBA_CACHE_DIR).",
        f"Each map is saved as embedding_<method>.npy ((n, 2) float32) with embedding_indices.npy: row i is image "
        f"indices[i] of the {space} (digitlab.embed.load_embedding reads them).",
    ]
