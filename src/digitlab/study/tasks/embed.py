"""Task ``embed``: what the data looks like in 2-D (PCA, t-SNE, UMAP), measured and drawn.

Each method embeds the same stratified subset of images (or all train+test images). Every map
is scored by 2-D k-NN accuracy, trustworthiness and silhouette, the class pairs that share
neighbourhoods are listed, and the maps are drawn statically and interactively (hover = image).
Each embedding is also saved as ``embedding_<method>.npy`` with ``embedding_indices.npy`` so later
tasks can draw their own results on it (:func:`digitlab.embed.load_embedding`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from digitlab import embed as E
from digitlab.exceptions import ConfigError
from digitlab.experiments.embedding import LABELS, embedding_study
from digitlab.study.prose import embed as P
from digitlab.study.task import Figure, Table, TaskContext, TaskResult, save_png

NAME = "embed"
TITLE = "What the data looks like: PCA, t-SNE and UMAP"


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
            raise ConfigError(
                f"config key embed.methods: {bad or 'empty'} not valid; choose from {', '.join(E.METHODS)}"
            )
        if (
            isinstance(self.n_points, str)
            and self.n_points != "all"
            or isinstance(self.n_points, int)
            and self.n_points < 50
        ):
            raise ConfigError(
                f'config key embed.n_points: {self.n_points!r} not valid; use a number >= 50 or "all"'
            )
        checks = {
            "pca_dims": self.pca_dims == 0 or self.pca_dims >= 2,
            "perplexity": self.perplexity > 0,
            "n_neighbors": self.n_neighbors >= 2,
            "min_dist": 0 <= self.min_dist <= 1,
            "k": self.k >= 1,
            "quality_points": self.quality_points >= 50,
            "interactive_points": self.interactive_points >= 0,
            "top_pairs": self.top_pairs >= 1,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(
                    f"config key embed.{key}: {getattr(self, key)!r} out of range; see the comment in "
                    "digitlab.study.tasks.embed.Config for valid values"
                )


# quick: 1,500 points fit ~35 s on 2 cores including UMAP's numba compile (~15 s in every fresh
# process); 2,000 points took ~50 s, mostly Barnes-Hut t-SNE.
PROFILES: dict[str, dict] = {
    "quick": {"n_points": 1500, "interactive_points": 800},
    "full": {"n_points": "all", "interactive_points": 3000},
}


# ---------------------------------------------------------------------------------------------
# Run: the experiment's result -> tables, figures (and the saved maps), findings
# ---------------------------------------------------------------------------------------------


def _records(df) -> list[dict]:
    """Rows of a DataFrame as plain-Python dicts (JSON-ready)."""
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in df.to_dict("records")]


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    res = embedding_study(
        ctx.dataset,
        cfg.methods,
        n_points=cfg.n_points,
        pca_dims=cfg.pca_dims,
        perplexity=cfg.perplexity,
        n_neighbors=cfg.n_neighbors,
        min_dist=cfg.min_dist,
        k=cfg.k,
        quality_points=cfg.quality_points,
        top_pairs=cfg.top_pairs,
        seed=ctx.seed,
        n_jobs=ctx.n_jobs,
        progress=ctx.progress,
        log=ctx.log,
    )
    for m in cfg.methods:
        E.save_embedding(ctx.out_dir, m, res.indices, res.embeddings[m])
    rows, overlap_rows, n = _records(res.methods), _records(res.overlaps), len(res.y)
    best = max(rows, key=lambda r: r["k-NN accuracy (2-D)"])
    top = next((r for r in overlap_rows if r["method"] == best["method"]), None)
    return TaskResult(
        title=TITLE,
        headline=P.headline(best, top, cfg.k, n),
        summary=P.summary(n, res.space, cfg.methods),
        findings=P.findings(res, cfg.k, cfg.top_pairs, ctx.dataset.meta),
        tables=[
            Table("methods", rows, P.methods_caption(n, cfg.pca_dims), list(res.methods.columns)),
            Table(
                "overlaps",
                [{k: v for k, v in r.items() if k not in ("a", "b")} for r in overlap_rows],
                P.overlaps_caption(cfg.k),
                ["method", "pair", "overlap %", "a->b %", "b->a %", "mean-image overlap %"],
            ),
            Table(
                "own_class",
                _records(res.own_class),
                P.own_class_caption(cfg.k),
                ["class"] + [LABELS[m] for m in cfg.methods],
            ),
        ],
        figures=_figures(ctx, cfg, res),
        notes=P.notes(cfg, n, res.space, res.t_reduce, E.SILHOUETTE_MAX_POINTS, E.FFT_MIN_POINTS),
        metrics={
            "n_points": n,
            "index_space": res.space,
            "indices": [int(i) for i in res.indices],
            "files": {**{m: f"embedding_{m}.npy" for m in cfg.methods}, "indices": "embedding_indices.npy"},
            "n_hard": int(len(res.hard)),
            **{
                f"{m}_{key}": r[col]
                for m, r in zip(cfg.methods, rows)
                for key, col in (
                    ("knn_accuracy", "k-NN accuracy (2-D)"),
                    ("trustworthiness", "trustworthiness"),
                    ("silhouette", "silhouette"),
                    ("seconds", "seconds"),
                )
            },
        },
    )


def _figures(ctx: TaskContext, cfg: Config, res) -> list[Figure]:
    n, figs = len(res.y), []
    figs.append(
        Figure("maps", save_png(res.plot(), ctx.out_dir, "embeddings"), P.maps_caption(n, res.hard_label))
    )
    for m in res.embeddings:
        title = f"{LABELS[m]} of {n:,} {ctx.dataset.name} images"
        html = None
        if cfg.interactive_points:
            html = f"embedding_{m}.html"
            (ctx.out_dir / html).write_text(res.interactive_html(m, title, cfg.interactive_points, ctx.seed))
        shown = min(cfg.interactive_points, n) if html else None
        png = save_png(res.plot_map(m, title), ctx.out_dir, f"embedding_{m}")
        figs.append(Figure(f"map_{m}", png, P.map_caption(LABELS[m], n, res.hard_label, shown), html))
    return figs
