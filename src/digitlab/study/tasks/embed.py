"""Task ``embed``: what the data looks like in 2-D (PCA, t-SNE, UMAP), measured and drawn.

Each method embeds the same stratified subset of images (or all train+test images). Every map
is scored by 2-D k-NN accuracy, trustworthiness and silhouette, the class pairs that share
neighbourhoods are listed, and the maps are drawn statically and interactively (hover = image).
Each embedding is also saved as ``embedding_<method>.npy`` with ``embedding_indices.npy`` so later
tasks can draw their own results on it (:func:`digitlab.embed.load_embedding`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from digitlab import embed as E
from digitlab.data.dataset import Dataset
from digitlab.study.common import status, subset_indices
from digitlab.exceptions import ConfigError
from digitlab.study.task import Figure, Table, TaskContext, TaskResult, save_png

NAME = "embed"
TITLE = "What the data looks like: PCA, t-SNE and UMAP"
LABELS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


@dataclass
class Config:
    methods: list[str] = field(default_factory=lambda: ["pca", "tsne", "umap"])  # any of pca, tsne, umap
    n_points: int | str = 10000  # stratified training subset size, or "all" = every train + test image
    pca_dims: int = 50  # t-SNE and UMAP run on this many principal components of pixels/255 (0 = raw pixels)
    perplexity: float = 30.0  # t-SNE: effective number of neighbours each point attends to
    n_neighbors: int = 15  # UMAP: size of the local neighbourhood
    min_dist: float = 0.1  # UMAP: how tightly points may pack in 2-D (0..1)
    k: int = 10  # neighbours for 2-D k-NN accuracy, trustworthiness and class overlap
    quality_points: int = 3000  # seeded subsample for trustworthiness (O(n^2) memory)
    interactive_points: int = 2000  # points with image thumbnails per interactive map (0 = none)
    top_pairs: int = 5  # most-overlapping class pairs listed per method

    def validate(self) -> None:
        bad = [m for m in self.methods if m not in E.METHODS]
        if not self.methods or bad:
            raise ConfigError(f"config key embed.methods: {bad or 'empty'} not valid; choose from {', '.join(E.METHODS)}")
        if isinstance(self.n_points, str) and self.n_points != "all" or isinstance(self.n_points, int) and self.n_points < 50:
            raise ConfigError(f"config key embed.n_points: {self.n_points!r} not valid; use a number >= 50 or \"all\"")
        checks = {"pca_dims": self.pca_dims == 0 or self.pca_dims >= 2, "perplexity": self.perplexity > 0,
                  "n_neighbors": self.n_neighbors >= 2, "min_dist": 0 <= self.min_dist <= 1, "k": self.k >= 1,
                  "quality_points": self.quality_points >= 50, "interactive_points": self.interactive_points >= 0,
                  "top_pairs": self.top_pairs >= 1}
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"config key embed.{key}: {getattr(self, key)!r} out of range; see the comment in "
                                  "digitlab.study.tasks.embed.Config for valid values")


# quick: 1,500 points fit ~35 s on 2 cores including UMAP's numba compile (~15 s in every fresh
# process); 2,000 points took ~50 s, mostly Barnes-Hut t-SNE.
PROFILES: dict[str, dict] = {
    "quick": {"n_points": 1500, "interactive_points": 800},
    "full": {"n_points": "all", "interactive_points": 3000},
}



# ---------------------------------------------------------------------------------------------
# Data selection
# ---------------------------------------------------------------------------------------------

def select_points(ds: Dataset, n_points: int | str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Images, labels and dataset indices to embed, and what the indices index.

    ``"all"`` -> every training then every test image (index ``i >= n_train`` is test image
    ``i - n_train``); a number -> a seeded stratified subset of the training set.
    """
    if n_points == "all":
        images = np.concatenate([ds.x_train, ds.x_test])
        y = np.concatenate([ds.y_train, ds.y_test])
        return images, y, np.arange(len(y)), f"train+test: 0..{len(ds.y_train) - 1} train, then test"
    idx = subset_indices(ds.y_train, int(n_points), seed)
    return ds.x_train[idx], ds.y_train[idx], idx, "training set"


def hard_samples(x: np.ndarray, y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Out-of-fold predictions of a ``k``-NN classifier in the (PCA) feature space (5 folds)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    folds = int(min(5, np.bincount(y)[np.bincount(y) > 0].min()))
    return cross_val_predict(KNeighborsClassifier(k), x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))


def mean_image_overlap(images: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """``O[a, b]``: weighted Jaccard of the class-mean images (shared ink / combined ink), 0..1."""
    flat = images.reshape(len(images), -1)  # uint8; mean() accumulates in float64 without a float copy of all
    means = np.stack([flat[y == c].mean(0) if np.any(y == c) else np.zeros(flat.shape[1]) for c in range(n_classes)])
    lo = np.minimum(means[:, None], means[None]).sum(-1)
    hi = np.maximum(means[:, None], means[None]).sum(-1)
    return lo / np.maximum(hi, 1e-12)


# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------

def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    ds, seed = ctx.dataset, ctx.seed
    images, y, indices, space = select_points(ds, cfg.n_points, seed)
    x = E.to_features(images)
    n, nc = len(y), ds.n_classes
    t0 = time.perf_counter()
    reduced = E.pca_reduce(x, cfg.pca_dims, seed) if cfg.pca_dims and x.shape[1] > cfg.pca_dims else x
    t_reduce = time.perf_counter() - t0
    pred = hard_samples(reduced, y, cfg.k, seed)
    hard = np.flatnonzero(pred != y)
    space_name = f"{reduced.shape[1]}-D PCA space" if reduced is not x else "pixel space"
    hard_label = f"misclassified by {cfg.k}-NN in {space_name}"
    hover = [f"{cfg.k}-NN in {space_name} predicts {ds.classes[p]}" if p != t else "" for p, t in zip(pred, y)]

    embs, rows, fractions = {}, [], {}
    for m in cfg.methods:
        embs[m], secs = _embed_one(m, x, reduced, cfg, ctx)
        secs += t_reduce if m != "pca" else 0.0  # t-SNE and UMAP pay for the shared PCA step too
        q = E.embedding_quality(x, embs[m], y, k=cfg.k, seed=seed, trust_points=cfg.quality_points)
        rows.append({"method": LABELS[m], "points": n, "k-NN accuracy (2-D)": round(q["knn_accuracy"], 4),
                     "trustworthiness": round(q["trustworthiness"], 4), "silhouette": round(q["silhouette"], 4),
                     "seconds": round(secs, 2)})
        fractions[m] = E.neighbour_class_fractions(embs[m], y, cfg.k, nc)
        E.save_embedding(ctx.out_dir, m, indices, embs[m])

    ink = mean_image_overlap(images, y, nc)
    overlap_rows = [{"method": LABELS[m], **r, "mean-image overlap %": round(100 * float(ink[r["a"], r["b"]]), 1)}
                    for m in cfg.methods for r in E.overlapping_pairs(fractions[m], ds.classes, cfg.top_pairs)]
    best = max(rows, key=lambda r: r["k-NN accuracy (2-D)"])
    top = next((r for r in overlap_rows if r["method"] == best["method"]), None)
    headline = (f"{best['method']} separates the classes best: a {cfg.k}-nearest-neighbour vote in its 2-D map recovers the "
                f"label of {100 * best['k-NN accuracy (2-D)']:.1f} % of the {n:,} images"
                + (f"; the classes that share most of their neighbourhood are {top['pair']}." if top else "."))
    return TaskResult(
        title=TITLE,
        headline=headline,
        summary=(f"We embed {n:,} images ({space}) in two dimensions with {', '.join(LABELS[m] for m in cfg.methods)}, "
                 "measure how well each map keeps the classes apart and the true neighbours together, and look at "
                 "which classes share a region."),
        findings=_findings(cfg, ds.classes, rows, overlap_rows, fractions, ink, embs, x, y, hard, space_name, ds.meta),
        tables=_tables(cfg, ds.classes, rows, overlap_rows, fractions),
        figures=_figures(ctx, cfg, embs, y, images, indices, hard, hard_label, hover),
        notes=_notes(cfg, n, space, t_reduce),
        metrics={"n_points": n, "index_space": space, "indices": [int(i) for i in indices],
                 "files": {**{m: f"embedding_{m}.npy" for m in cfg.methods}, "indices": "embedding_indices.npy"},
                 "n_hard": int(len(hard)),
                 **{f"{m}_{key}": r[col] for m, r in zip(cfg.methods, rows) for key, col in
                    (("knn_accuracy", "k-NN accuracy (2-D)"), ("trustworthiness", "trustworthiness"),
                     ("silhouette", "silhouette"), ("seconds", "seconds"))}},
    )


def _tables(cfg: Config, classes, rows: list[dict], overlap_rows: list[dict], fractions: dict) -> list[Table]:
    n = rows[0]["points"]
    per_class = [{"class": classes[c], **{LABELS[m]: round(100 * float(fractions[m][c, c]), 1) for m in cfg.methods}}
                 for c in range(len(classes))]
    return [
        Table("methods", rows, f"Quality of each 2-D map ({n:,} points). Seconds include the PCA-{cfg.pca_dims} step "
              "for t-SNE and UMAP.", ["method", "points", "k-NN accuracy (2-D)", "trustworthiness", "silhouette", "seconds"]),
        Table("overlaps", [{k: v for k, v in r.items() if k not in ("a", "b")} for r in overlap_rows],
              f"Most-overlapping class pairs per map: overlap = share of a class's {cfg.k} nearest 2-D neighbours that "
              "belong to the other class (mean of both directions); mean-image overlap = shared intensity (ink, for "
              "digits) of the two class-mean images.", ["method", "pair", "overlap %", "a->b %", "b->a %", "mean-image overlap %"]),
        Table("own_class", per_class, f"Share (%) of each class's {cfg.k} nearest 2-D neighbours that are of the same "
              "class, per map.", ["class"] + [LABELS[m] for m in cfg.methods]),
    ]


def _embed_one(method: str, x: np.ndarray, reduced: np.ndarray, cfg: Config, ctx: TaskContext) -> tuple[np.ndarray, float]:
    """One method on the shared inputs (PCA on the pixels, t-SNE and UMAP on the PCA projection)
    and its wall time in seconds."""
    params = {"pca": {}, "tsne": {"perplexity": cfg.perplexity},
              "umap": {"n_neighbors": cfg.n_neighbors, "min_dist": cfg.min_dist}}[method]
    with status(ctx.progress, f"embed: {LABELS[method]} of {len(x):,} points"):
        t0 = time.perf_counter()
        emb = E.embed(x if method == "pca" else reduced, method, seed=ctx.seed, n_jobs=ctx.n_jobs, pca_dims=0, **params)
        secs = time.perf_counter() - t0
    ctx.log.info("embed: %s of %d points in %.1f s", method, len(x), secs)
    return emb, secs


def _figures(ctx, cfg, embs, y, images, indices, hard, hard_label, notes_hover) -> list[Figure]:
    classes, n = ctx.dataset.classes, len(y)
    both = E.plot_embeddings(embs, y, classes, {m: LABELS[m] for m in embs}, hard, hard_label)
    figs = [Figure("maps", save_png(both, ctx.out_dir, "embeddings"),
                   f"The same {n:,} images embedded by each method, coloured by class; class names sit at each "
                   f"class's median; black-edged points are {hard_label}.")]
    for m, emb in embs.items():
        title = f"{LABELS[m]} of {n:,} {ctx.dataset.name} images"
        png = save_png(E.plot_embedding(emb, y, classes, title, hard, hard_label), ctx.out_dir, f"embedding_{m}")
        html = None
        if cfg.interactive_points:
            html = f"embedding_{m}.html"
            frag = E.interactive_embedding_html(emb, y, images, classes, indices, title, cfg.interactive_points,
                                                ctx.seed, notes_hover, div_id=f"embed-{m}")
            (ctx.out_dir / html).write_text(frag)
        shown = min(cfg.interactive_points, n)
        caption = f"{LABELS[m]} map of the {n:,} images; black-edged points are {hard_label}." + (
            f" The HTML report shows it interactively for a stratified sample of {shown:,} points." if html else "")
        figs.append(Figure(f"map_{m}", png, caption, html))
    return figs


# ---------------------------------------------------------------------------------------------
# Findings: sentences filled in from the measurements
# ---------------------------------------------------------------------------------------------

def _findings(cfg, classes, rows, overlap_rows, fractions, ink, embs, x, y, hard, space_name, meta) -> list[str]:
    out = [_best_sentence(rows)]
    by_method = {r["method"]: r for r in rows}
    best = max(rows, key=lambda r: r["k-NN accuracy (2-D)"])["method"]
    top = [r for r in overlap_rows if r["method"] == best]
    pairs = ", ".join(f"{r['pair']} ({r['overlap %']:.1f} %)" for r in top[:3])
    common = set.intersection(*({r["pair"] for r in overlap_rows if r["method"] == m}
                                for m in by_method))
    out.append(f"In the {best} map the classes that overlap most are {pairs} (share of their {cfg.k} nearest 2-D "
               f"neighbours from the other class)" + (f"; {', '.join(sorted(common))} are among the {cfg.top_pairs} most "
               f"overlapping pairs in every map." if common and len(by_method) > 1 else "."))
    out.append(_why_sentence(top[0], classes, fractions[_key(best)], ink, meta))
    if "pca" in embs and len(embs) > 1:
        out.append(_pca_sentence(embs["pca"], x, rows, fractions["pca"], classes))
    if len(hard):
        out.append(_hard_sentence(embs[_key(best)], y, hard, cfg.k, best, space_name))
    timed = [r for r in rows if r["method"] != "PCA"]
    if timed:
        out.append(f"On {rows[0]['points']:,} points " + " and ".join(f"{r['method']} took {r['seconds']:.1f} s" for r in timed)
                   + (f", PCA {by_method['PCA']['seconds']:.2f} s" if "PCA" in by_method else "") + ".")
    return out


def _key(label: str) -> str:
    return {v: k for k, v in LABELS.items()}[label]


def _best_sentence(rows: list[dict], tie: float = 0.005) -> str:
    """Which map wins by each measure; maps within ``tie`` of the best count as tied."""
    cols = {"k-NN accuracy (2-D)": "2-D k-NN accuracy", "silhouette": "silhouette", "trustworthiness": "trustworthiness"}
    if len(rows) == 1:
        r = rows[0]
        return f"{r['method']}: " + ", ".join(f"{label} {r[c]:.3f}" for c, label in cols.items()) + "."
    parts, leaders = [], []
    for c, label in cols.items():
        ranked = sorted(rows, key=lambda r: -r[c])
        lead = [r for r in ranked if ranked[0][c] - r[c] < tie]
        rest = ", ".join(f"{r['method']} {r[c]:.3f}" for r in ranked if r not in lead)
        who = " and ".join(r["method"] for r in lead) + (" tie" if len(lead) > 1 else "")
        parts.append(f"by {label} {who} ({'/'.join(f'{r[c]:.3f}' for r in lead)}{'; ' + rest if rest else ''})")
        leaders.append({r["method"] for r in lead})
    common = set.intersection(*leaders)
    head = (f"{' and '.join(sorted(common))} separate{'s' if len(common) == 1 else ''} the classes best by all three "
            "measures: " if common else "The best map depends on the measure: ")
    return head + "; ".join(parts) + "."


def pair_reason(meta: dict, a: str, b: str) -> str | None:
    """Why classes ``a`` and ``b`` look alike, from the dataset's metadata (e.g. the strokes two digits share)."""
    for x, y, reason in meta.get("pair_reasons", []):
        if {x, y} == {a, b}:
            return reason
    return None


def _why_sentence(pair: dict, classes, frac: np.ndarray, ink: np.ndarray, meta: dict) -> str:
    a, b = pair["a"], pair["b"]
    iu = np.triu_indices(len(classes), 1)
    ink_all = ink[iu]
    rank = int((ink_all > ink[a, b]).sum()) + 1
    overlap_all = (frac[iu] + frac.T[iu]) / 2
    rho = _spearman(overlap_all, ink_all)
    stroke = pair_reason(meta, classes[a], classes[b])
    stuff = "ink" if meta.get("ink_on_blank", True) else "pixel intensity"  # photographs have no ink
    return (f"{classes[a]} and {classes[b]} also have similar average images: their class means share "
            f"{100 * ink[a, b]:.0f} % of their {stuff} (rank {rank} of {len(ink_all)} pairs, median {100 * np.median(ink_all):.0f} %)"
            + (f" — {stroke}" if stroke else "")
            + f". Over all pairs, overlap in the map follows shared {stuff} (Spearman rho = {rho:.2f})"
            + (": classes drawn with the same strokes become neighbours." if meta.get("ink_on_blank") else
               ": classes whose average images look alike become neighbours."))


def _pca_sentence(emb_pca: np.ndarray, x: np.ndarray, rows: list[dict], frac: np.ndarray, classes) -> str:
    kept = 100 * emb_pca.var(0).sum() / x.var(0).sum()
    pca = next(r for r in rows if r["method"] == "PCA")
    best = max((r for r in rows if r["method"] != "PCA"), key=lambda r: r["k-NN accuracy (2-D)"])
    own = np.diag(frac)
    order = np.argsort(-own)
    hi = ", ".join(f"{classes[c]} ({100 * own[c]:.0f} %)" for c in order[:2])
    lo = ", ".join(f"{classes[c]} ({100 * own[c]:.0f} %)" for c in order[-2:])
    return (f"PCA's two linear directions keep only {kept:.1f} % of the pixel variance and reach a 2-D k-NN accuracy of "
            f"{pca['k-NN accuracy (2-D)']:.3f} against {best['k-NN accuracy (2-D)']:.3f} for {best['method']}: the linear "
            f"projection lays most classes on top of each other; only {hi} keep most of their neighbours "
            f"(own-class share), while {lo} are the most mixed.")


def _hard_sentence(emb: np.ndarray, y: np.ndarray, hard: np.ndarray, k: int, method: str, space_name: str) -> str:
    from sklearn.neighbors import NearestNeighbors

    nbrs = NearestNeighbors(n_neighbors=min(k, len(y) - 1)).fit(emb).kneighbors(return_distance=False)
    foreign = (y[nbrs] != y[:, None]).mean(1) > 0.5  # most 2-D neighbours of another class
    return (f"A {k}-NN classifier in the {space_name} misclassifies {len(hard):,} of {len(y):,} images "
            f"({100 * len(hard) / len(y):.1f} %, black-edged in the maps); in the {method} map {100 * foreign[hard].mean():.0f} % "
            f"of them sit among another class against {100 * foreign.mean():.1f} % of all images: they look like the "
            "other class, so no 2-D map separates them.")


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    r = spearmanr(a, b).statistic
    return float(r) if np.isfinite(r) else 0.0


def _notes(cfg: Config, n: int, space: str, t_reduce: float) -> list[str]:
    return [
        "2-D k-NN accuracy: 5-fold cross-validated accuracy of a k-NN classifier on the map's coordinates "
        f"(k = {cfg.k}); high when every class has its own region.",
        f"Trustworthiness (scikit-learn): 1 when the {cfg.k} nearest neighbours of each point in the map are also near "
        f"in pixel space; computed on a seeded subsample of {min(cfg.quality_points, n):,} points because it needs all "
        "pairwise distances.",
        f"Silhouette: how much closer points are to their own class than to the nearest other class in the map (-1..1; "
        f"about 0 for random labels); a seeded sample of {min(E.SILHOUETTE_MAX_POINTS, n):,} points.",
        f"t-SNE (openTSNE, {'FFT-accelerated' if n >= E.FFT_MIN_POINTS else 'Barnes-Hut'} gradients (FFT from "
        f"{E.FFT_MIN_POINTS:,} points on), PCA initialisation, perplexity {cfg.perplexity:g}) and UMAP "
        f"(umap-learn, n_neighbors {cfg.n_neighbors}, min_dist {cfg.min_dist:g}) run on the first {cfg.pca_dims} principal "
        f"components of the pixels / 255 (computed in {t_reduce:.1f} s). Both preserve local neighbourhoods rather than "
        "global variance, so distances between clusters in their maps carry little meaning; PCA is a linear projection "
        "that keeps the directions of largest variance.",
        "UMAP is seeded for reproducibility, which makes umap-learn single-threaded; its first run in a fresh "
        "environment includes numba's compilation (cached afterwards under NUMBA_CACHE_DIR).",
        f"Each map is saved as embedding_<method>.npy ((n, 2) float32) with embedding_indices.npy: row i is image "
        f"indices[i] of the {space} (digitlab.embed.load_embedding reads them).",
    ]
