"""Time t-SNE (openTSNE) and UMAP (umap-learn) on MNIST at chosen sizes, as digitlab runs them.

    python benchmarks/bench_embed.py                       # 10,000 and 70,000 points
    python benchmarks/bench_embed.py --sizes 2000 10000    # other sizes (70000 = all train + test)
    python benchmarks/bench_embed.py --umap-parallel       # also unseeded, multi-threaded UMAP
    python benchmarks/bench_embed.py --sizes 70000 --baseline   # and plain openTSNE / umap-learn defaults beside ours

Sizes up to 60,000 are seeded stratified subsets of the training set; 70,000 is every train and
test image. Both methods run on the same PCA-50 projection of pixels/255 (timed separately).
UMAP's first call in a process compiles numba kernels: we time small warm-up calls first (cold,
then warm, for each of its two neighbour-search paths), so the timings per size are warm ones.
Prints wall seconds, CPU seconds of this process and the 2-D k-NN accuracy (a sanity check).
With ``--baseline`` each size also runs the libraries as a notebook would call them, with their
defaults (``openTSNE.TSNE(n_jobs=..., random_state=seed).fit(z)``,
``umap.UMAP(random_state=seed).fit_transform(z)``) on the same PCA-50 input, alternating with ours,
and prints the time ratio and both 2-D k-NN accuracies.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from digitlab import embed as E
from digitlab.data import load_dataset, stratified_subset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 70_000], help="numbers of points (70000 = all)"
    )
    p.add_argument("--methods", nargs="+", default=["tsne", "umap"], choices=["tsne", "umap"])
    p.add_argument("--n-jobs", type=int, default=1, help="threads for t-SNE (and unseeded UMAP)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup-points", type=int, default=1000, help="size of UMAP's warm-up call")
    p.add_argument(
        "--umap-parallel", action="store_true", help="also time unseeded UMAP with --n-jobs threads"
    )
    p.add_argument(
        "--baseline", action="store_true", help="also run plain openTSNE / umap-learn with their defaults"
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="with --baseline: runs of each, in alternating order (ours first, then theirs first)",
    )
    return p.parse_args(argv)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds of this process) of one call."""
    c, t = cpu_seconds(), time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t, cpu_seconds() - c


def points(ds, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n >= len(ds.y_train) + len(ds.y_test):
        return np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test])
    idx = stratified_subset(ds.y_train, total=min(n, len(ds.y_train)), seed=seed)
    return ds.x_train[idx], ds.y_train[idx]


def report(
    label: str, n: int, wall: float, cpu: float, emb: np.ndarray | None = None, y: np.ndarray | None = None
) -> None:
    acc = f"{E.knn_accuracy_2d(emb, y):.3f}" if emb is not None else ""
    print(f"{label:<34} {n:>7,} {wall:>9.1f} {cpu:>9.1f} {acc:>9}", flush=True)


def warm_up(ds, args: argparse.Namespace) -> None:
    """Time UMAP twice on a small input along both neighbour paths: cold (numba compiles) and warm.

    The exact-kNN path is what digitlab uses up to ``UMAP_EXACT_KNN_MAX_POINTS``; the NN-descent
    path (pynndescent) above it has kernels of its own to compile.
    """
    x, y = points(ds, args.warmup_points, args.seed)
    z = E.pca_reduce(x, 50, args.seed)
    nndescent = {"precomputed_knn": (None, None, None), "force_approximation_algorithm": True}
    for path, extra in (("exact knn", {}), ("nn-descent", nndescent)):
        for state in ("cold", "warm"):
            emb, wall, cpu = timed(E.umap_2d, z, seed=args.seed, **extra)
            report(f"umap warm-up {path}, {state}", len(z), wall, cpu, emb, y)


def plain_tsne(z: np.ndarray, seed: int, n_jobs: int) -> np.ndarray:
    import openTSNE

    return np.asarray(openTSNE.TSNE(n_jobs=n_jobs, random_state=seed).fit(z))


def plain_umap(z: np.ndarray, seed: int) -> np.ndarray:
    import warnings

    umap = E.import_umap()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state.*")
        return umap.UMAP(random_state=seed).fit_transform(z)


def side_by_side(label: str, z: np.ndarray, y: np.ndarray, ours, theirs, repeats: int) -> None:
    """Run ``ours()`` and ``theirs()`` ``repeats`` times each, alternating which goes first (a first
    call in a process pays compile and cache costs), and print the median wall times, their ratio and
    the 2-D k-NN accuracy of each."""
    runs: dict[str, list] = {"digitlab": [], "plain": []}
    for r in range(repeats):
        order = [("digitlab", ours), ("plain", theirs)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            emb, wall, cpu = timed(fn)
            runs[name].append((wall, E.knn_accuracy_2d(emb, y)))
            report(f"{label} ({name}, run {r + 1})", len(z), wall, cpu, emb, y)
    (w1, a1), (w2, a2) = (np.median(np.array(runs[k]), axis=0) for k in ("digitlab", "plain"))
    print(
        f"  {label} at {len(z):,}, median of {repeats}: digitlab {w1:.1f} s (2-D kNN {a1:.3f}), plain defaults {w2:.1f} s "
        f"(2-D kNN {a2:.3f}): digitlab takes {w1 / w2:.2f}x the plain time",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ds = load_dataset("mnist")
    print(
        f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, n_jobs {args.n_jobs}, "
        f"NUMBA_CACHE_DIR {os.environ.get('NUMBA_CACHE_DIR', '(set on UMAP import)')}"
    )
    print(f"{'step':<34} {'points':>7} {'wall s':>9} {'cpu s':>9} {'2-D kNN':>9}")
    if "umap" in args.methods:
        warm_up(ds, args)
    for n in args.sizes:
        x, y = points(ds, n, args.seed)
        z, wall, cpu = timed(E.pca_reduce, x, 50, args.seed)
        report("pca-50", len(z), wall, cpu)
        if "tsne" in args.methods:
            if args.baseline:
                side_by_side(
                    "tsne",
                    z,
                    y,
                    lambda: E.tsne_2d(z, seed=args.seed, n_jobs=args.n_jobs),  # noqa: B023  (called in this iteration)
                    lambda: plain_tsne(z, args.seed, args.n_jobs),  # noqa: B023  (called in this iteration)
                    args.repeats,
                )
            else:
                emb, wall, cpu = timed(E.tsne_2d, z, seed=args.seed, n_jobs=args.n_jobs)
                grad = "fft" if len(z) >= E.FFT_MIN_POINTS else "bh"
                report(f"tsne ({grad}, seeded)", len(z), wall, cpu, emb, y)
        if "umap" in args.methods:
            if args.baseline:
                side_by_side(
                    "umap",
                    z,
                    y,
                    lambda: E.umap_2d(z, seed=args.seed),  # noqa: B023  (called in this iteration)
                    lambda: plain_umap(z, args.seed),  # noqa: B023  (called in this iteration)
                    args.repeats,
                )
            else:
                knn = "exact knn" if len(z) <= E.UMAP_EXACT_KNN_MAX_POINTS else "nn-descent"
                emb, wall, cpu = timed(E.umap_2d, z, seed=args.seed)
                report(f"umap ({knn}, seeded, 1 thread)", len(z), wall, cpu, emb, y)
            if args.umap_parallel:
                emb, wall, cpu = timed(E.umap_2d, z, seed=None, n_jobs=args.n_jobs)
                report(f"umap ({knn}, unseeded, {args.n_jobs} thr.)", len(z), wall, cpu, emb, y)


if __name__ == "__main__":
    main()
