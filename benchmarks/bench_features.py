"""Time hand-crafted feature extraction on MNIST: 10k and all 70k images, best of a few repeats.

Usage: python benchmarks/bench_features.py [--repeats 3] [--threshold 128] [--zoning 4]
Prints one line per size and a per-step breakdown for 10k images.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from digitlab import features as F
from digitlab.data import load_dataset


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def step_breakdown(x: np.ndarray, threshold: int, zoning: int, repeats: int) -> dict[str, float]:
    """Seconds of each building block on ``x`` (best of ``repeats``)."""
    b = x >= threshold
    f = x.astype(np.float32) / 255
    box = F.bounding_boxes(b)
    return {
        "histograms + Otsu": best_of(lambda: F._histogram_features(x, threshold), repeats),
        "moments": best_of(lambda: F._moment_features(f), repeats),
        "symmetry": best_of(lambda: F._symmetry_features(x, box), repeats),
        "components (label)": best_of(lambda: F.count_components(b), repeats),
        "Euler (bit quads)": best_of(lambda: F.euler_numbers(b), repeats),
        "skeleton": best_of(lambda: F.skeleton_lengths(b), repeats),
        "zoning": best_of(lambda: F.zoning_means(f, zoning), repeats),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threshold", type=int, default=128)
    ap.add_argument("--zoning", type=int, default=4)
    args = ap.parse_args()
    ds = load_dataset("mnist")
    all_x = np.concatenate([ds.x_train, ds.x_test])
    for n in (10_000, len(all_x)):
        x = all_x[:n]
        s = best_of(lambda: F.extract_features(x, args.threshold, args.zoning), args.repeats)  # noqa: B023
        n_feat = F.extract_features(x[:1], args.threshold, args.zoning)[0].shape[1]
        print(
            f"extract_features: {n:>6,} images x {n_feat} features: {s:6.2f} s  ({n / s:,.0f} images/s, best of {args.repeats})"
        )
    print("per step, 10,000 images:")
    for step, s in step_breakdown(all_x[:10_000], args.threshold, args.zoning, args.repeats).items():
        print(f"  {step:20s} {s:6.3f} s")


if __name__ == "__main__":
    main()
