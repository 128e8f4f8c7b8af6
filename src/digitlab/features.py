"""Hand-crafted statistical image features and how well each one tells the classes apart.

Three layers, each callable on its own:

* **extraction** -- :func:`extract_features` turns ``(n, H, W)`` uint8 images into an ``(n, f)``
  float32 matrix of named features (intensity, ink, bounding box, centroid and moments, symmetry,
  projection profiles, topology, stroke width, a zoning grid). Every step works on the whole stack
  at once; the building blocks (:func:`otsu_thresholds`, :func:`euler_numbers`,
  :func:`count_components`, :func:`skeleton_lengths`, ...) are public.
* **discriminability** -- :func:`feature_scores` (ANOVA F, mutual information, ranks),
  :func:`pairwise_auc` / :func:`pairwise_separation` (which class pairs a feature separates) and
  :func:`feature_vs_pixel_accuracy` (classifiers on features vs on raw pixels).
* **plots** -- per-class mean/variance images, the F/MI bar chart, per-class distributions and
  pairwise-separation heatmaps (matplotlib figures; the caller saves them).

Conventions: intensities are scaled to [0, 1]; "ink" after the fixed threshold means
``pixel >= threshold``, after Otsu ``pixel > t_otsu`` (as in scikit-image); coordinates are in
pixels with rows increasing downwards; moments follow the image-moment convention ``mu_pq`` with
``p`` the power of the column (x) offset and ``q`` the power of the row (y) offset, divided by the
total intensity (so ``mu20`` is the horizontal and ``mu02`` the vertical variance, in pixel^2).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from digitlab.exceptions import ConfigError, DatasetError

CHUNK = 8192  # images per block: bounds the float intermediates to ~100 MB whatever n is

FEATURE_DESCRIPTIONS: dict[str, str] = {
    "mean_intensity": "mean pixel intensity (0-1)",
    "std_intensity": "standard deviation of pixel intensity (0-1)",
    "otsu_threshold": "per-image Otsu threshold (0-255)",
    "ink_otsu": "fraction of pixels above the image's Otsu threshold",
    "ink_fixed": "fraction of pixels at or above the fixed threshold",
    "bbox_width": "width of the bounding box of the binarised ink (pixels)",
    "bbox_height": "height of the bounding box of the binarised ink (pixels)",
    "aspect_ratio": "bounding-box width / height",
    "centroid_row": "intensity-weighted centre of mass, row (pixels from the top)",
    "centroid_col": "intensity-weighted centre of mass, column (pixels from the left)",
    "mu20": "horizontal variance of the intensity mass (pixel^2)",
    "mu02": "vertical variance of the intensity mass (pixel^2)",
    "mu11": "covariance of column and row offsets (pixel^2; negative for '/' slants)",
    "orientation_deg": "angle of the major axis in [0, 180), degrees counter-clockwise from horizontal (90 = upright)",
    "eccentricity": "sqrt(1 - minor/major eigenvalue) of the second-moment matrix (0 = round)",
    "symmetry_lr": "1 - normalised |image - left-right mirror| about the bounding-box centre",
    "symmetry_tb": "1 - normalised |image - top-bottom mirror| about the bounding-box centre",
    "row_peak_pos": "position of the row-profile maximum within the bounding box (0 top, 1 bottom)",
    "row_entropy": "entropy of the row projection profile (bits; spread of ink over rows)",
    "row_n_peaks": "number of peaks of the smoothed row profile above half its maximum",
    "col_peak_pos": "position of the column-profile maximum within the bounding box (0 left, 1 right)",
    "col_entropy": "entropy of the column projection profile (bits)",
    "col_n_peaks": "number of peaks of the smoothed column profile above half its maximum",
    "n_components": "connected ink components (8-connectivity)",
    "euler_number": "Euler number of the binarised image (components - holes, 8-connectivity)",
    "holes": "number of holes = components - Euler number",
    "skeleton_length": "pixels in the skeleton of the binarised ink",
    "stroke_width": "ink area / skeleton length (pixels)",
}


# ---------------------------------------------------------------------------------------------
# Extraction: building blocks
# ---------------------------------------------------------------------------------------------


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"images: expected a uint8 array of shape (n, H, W), got {images.dtype} {images.shape}; "
            "convert with np.asarray(x, dtype=np.uint8).reshape(n, H, W)"
        )
    return images


def intensity_histograms(images: np.ndarray) -> np.ndarray:
    """Per-image 256-bin histograms of uint8 images, shape ``(n, 256)``, in one ``bincount``."""
    n = len(images)
    offset = (np.arange(n, dtype=np.int64) * 256)[:, None]
    flat = images.reshape(n, -1) + offset
    return np.bincount(flat.ravel(), minlength=256 * n).reshape(n, 256)


def otsu_from_histograms(counts: np.ndarray) -> np.ndarray:
    """Otsu's threshold for each row of ``(n, 256)`` histograms (see :func:`otsu_thresholds`).

    The between-class variance ``w1 w2 (m1 - m2)^2`` is evaluated as ``(N s1 - S w1)^2 / (w1 w2)``
    (``s1`` the cumulative intensity sum, ``S`` and ``N`` the totals): the same quantity with one
    division instead of three. Float64 holds these integer sums exactly for any image under
    ~10^7 pixels (and is much faster than int64, which SIMD units cannot multiply).
    """
    counts = np.asarray(counts, dtype=np.float64)
    w1 = np.cumsum(counts, axis=1)  # weight of the class <= t
    s1 = np.cumsum(counts * np.arange(counts.shape[1]), axis=1)
    N, S = w1[:, -1:], s1[:, -1:]
    w1, s1 = w1[:, :-1], s1[:, :-1]  # thresholds t = 0..254 (t = 255 leaves nothing above)
    denom = w1 * (N - w1)  # zero where one side is empty: no split there
    num = (N * s1 - S * w1) ** 2
    var12 = np.divide(num, denom, out=np.zeros_like(denom), where=denom > 0)
    t = np.argmax(var12, axis=1)
    present = counts > 0
    lo = present.argmax(1)
    hi = counts.shape[1] - 1 - present[:, ::-1].argmax(1)
    return np.where(lo == hi, lo, t).astype(np.int64)  # a constant image: its one value, as skimage


def otsu_thresholds(images: np.ndarray) -> np.ndarray:
    """Otsu's threshold of every image at once, shape ``(n,)`` int.

    Same formula, tie-breaking and constant-image rule as ``skimage.filters.threshold_otsu`` on
    uint8 input (foreground = ``image > t``), computed from per-image histograms.
    """
    return otsu_from_histograms(intensity_histograms(_check_images(images)))


def _histogram_features(images: np.ndarray, threshold: int) -> dict[str, np.ndarray]:
    """Intensity mean/std, Otsu threshold and ink ratios, read off the per-image histograms."""
    n = len(images)
    hist = intensity_histograms(images)
    v = np.arange(256, dtype=np.float64)
    npix = float(images[0].size) if n else 1.0
    mean = hist @ v / npix
    std = np.sqrt(np.maximum(hist @ v**2 / npix - mean**2, 0))
    otsu = otsu_from_histograms(hist)
    above_otsu = np.count_nonzero(images.reshape(n, -1) > otsu[:, None], axis=1)
    return {
        "mean_intensity": mean / 255,
        "std_intensity": std / 255,
        "otsu_threshold": otsu,
        "ink_otsu": above_otsu / npix,
        "ink_fixed": hist[:, threshold:].sum(1) / npix,
    }


# Gray's bit-quad weights: a 2x2 window coded a + 2b + 4c + 8d (a b / c d). For 8-connected
# foreground E = (Q1 - Q3 - 2 QD) / 4; for 4-connected E = (Q1 - Q3 + 2 QD) / 4.
_Q1 = (1, 2, 4, 8)
_Q3 = (7, 11, 13, 14)
_QD = (6, 9)


def _quad_lut(connectivity: int) -> np.ndarray:
    lut = np.zeros(16, dtype=np.int8)
    lut[list(_Q1)] = 1
    lut[list(_Q3)] = -1
    lut[list(_QD)] = -2 if connectivity == 8 else 2
    return lut


def euler_numbers(binary: np.ndarray, connectivity: int = 8) -> np.ndarray:
    """Euler number (components - holes) of every binary image, by bit-quad counting.

    Parameters
    ----------
    binary : (n, H, W) bool array (foreground = True)
    connectivity : 8 or 4, the foreground connectivity (the background uses the other one).

    Returns
    -------
    (n,) int64 Euler numbers; equal to ``skimage.measure.euler_number(img, connectivity=2)`` for 8.
    """
    if connectivity not in (4, 8):
        raise ConfigError(f"euler_numbers connectivity={connectivity}: not supported; use 4 or 8")
    b = np.pad(np.asarray(binary, dtype=np.uint8), ((0, 0), (1, 1), (1, 1)))
    code = b[:, :-1, :-1] + 2 * b[:, :-1, 1:] + 4 * b[:, 1:, :-1] + 8 * b[:, 1:, 1:]
    total = _quad_lut(connectivity)[code].reshape(len(b), -1).sum(1, dtype=np.int64)
    return total // 4


def count_components(binary: np.ndarray) -> np.ndarray:
    """Number of 8-connected foreground components of every image, shape ``(n,)``.

    One ``scipy.ndimage.label`` call on the whole stack with a structuring element that connects
    pixels only within an image; labels run in scan order, so each image owns a contiguous range.
    """
    binary = np.asarray(binary, dtype=bool)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True
    labels, _ = ndi.label(binary, structure=structure)
    top = np.maximum.accumulate(labels.reshape(len(binary), -1).max(1))
    return np.diff(top, prepend=0).astype(np.int64)


def skeleton_lengths(binary: np.ndarray) -> np.ndarray:
    """Skeleton pixel count of every image, shape ``(n,)``.

    The padded images are stacked into one tall mosaic and thinned by a single
    ``skimage.morphology.skeletonize`` call: thinning only looks at 3x3 neighbourhoods, so the
    zero rows between images keep them independent (identical to skeletonising one by one).
    """
    from skimage.morphology import skeletonize

    b = np.pad(np.asarray(binary, dtype=bool), ((0, 0), (1, 1), (1, 1)))
    skel = skeletonize(b.reshape(-1, b.shape[2])).reshape(b.shape)
    return skel.reshape(len(b), -1).sum(1).astype(np.int64)


def bounding_boxes(binary: np.ndarray) -> np.ndarray:
    """Inclusive bounding boxes ``(r0, r1, c0, c1)`` of the foreground, shape ``(n, 4)``.

    Empty images get ``(0, -1, 0, -1)`` (zero width and height).
    """
    rows, cols = binary.any(2), binary.any(1)
    h, w = rows.shape[1], cols.shape[1]
    r0, r1 = rows.argmax(1), h - 1 - rows[:, ::-1].argmax(1)
    c0, c1 = cols.argmax(1), w - 1 - cols[:, ::-1].argmax(1)
    empty = ~rows.any(1)
    box = np.stack([r0, r1, c0, c1], axis=1)
    box[empty] = (0, -1, 0, -1)
    return box


def zoning_means(f: np.ndarray, grid: int = 4) -> np.ndarray:
    """Mean intensity of each cell of a ``grid x grid`` partition, shape ``(n, grid*grid)``.

    Cell edges are ``linspace(0, H, grid + 1)`` rounded down, so sizes that do not divide evenly
    still cover every pixel exactly once.
    """
    n, h, w = f.shape
    if not 1 <= grid <= min(h, w):
        raise ConfigError(
            f"zoning grid {grid}: must be between 1 and {min(h, w)} for {h}x{w} images; pick a smaller grid"
        )
    re = np.linspace(0, h, grid + 1).astype(int)
    ce = np.linspace(0, w, grid + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(f, re[:-1], axis=1), ce[:-1], axis=2)
    area = np.diff(re)[:, None] * np.diff(ce)[None, :]
    return (sums / area).reshape(n, -1)


# ---------------------------------------------------------------------------------------------
# Extraction: feature groups (each returns {name: (n,) array})
# ---------------------------------------------------------------------------------------------


def _safe_div(a: np.ndarray, b: np.ndarray, fill: float = 0.0) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    return np.where(b > 0, a / np.where(b > 0, b, 1.0), fill)


def _moment_features(f: np.ndarray) -> dict[str, np.ndarray]:
    n, h, w = f.shape
    r = np.arange(h, dtype=np.float64)
    c = np.arange(w, dtype=np.float64)
    rp, cp = f.sum(2, dtype=np.float64), f.sum(1, dtype=np.float64)
    m = rp.sum(1)
    rc = _safe_div(rp @ r, m, (h - 1) / 2)
    cc = _safe_div(cp @ c, m, (w - 1) / 2)
    mu02 = np.maximum(_safe_div(rp @ r**2, m) - rc**2, 0) * (m > 0)
    mu20 = np.maximum(_safe_div(cp @ c**2, m) - cc**2, 0) * (m > 0)
    rcgrid = np.outer(r, c).ravel().astype(np.float32)
    mu11 = (_safe_div(f.reshape(n, -1) @ rcgrid, m) - rc * cc) * (m > 0)
    # rows grow downwards, so flip the sign of mu11 to measure the angle as the image is seen
    # angles in [0, 180) put the cut at horizontal, which digits rarely are (vertical = 90)
    theta = (0.5 * np.degrees(np.arctan2(-2 * mu11, mu20 - mu02))) % 180
    half, diff = (mu20 + mu02) / 2, np.sqrt(((mu20 - mu02) / 2) ** 2 + mu11**2)
    ecc = np.sqrt(np.clip(1 - _safe_div(half - diff, half + diff, 1.0), 0, 1))
    return {
        "centroid_row": rc,
        "centroid_col": cc,
        "mu20": mu20,
        "mu02": mu02,
        "mu11": mu11,
        "orientation_deg": theta,
        "eccentricity": ecc,
    }


def _mirror_lr(f: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mirror every image left-right about the centre of its own column interval [lo, hi].

    The mirror is the flipped image shifted by ``W - 1 - (lo + hi)``; a zero-padded flip viewed
    through a sliding window picks each image's shift with one gather (no index arrays per pixel).
    """
    n, h, w = f.shape
    padded = np.pad(f[:, :, ::-1], ((0, 0), (0, 0), (w - 1, w - 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, w, axis=2)  # (n, h, 2w - 1, w)
    start = np.clip(2 * (w - 1) - (lo + hi), 0, 2 * (w - 1))  # empty images (hi = lo - 1) stay in range
    return windows[np.arange(n), :, start]


def _symmetry_features(images: np.ndarray, box: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    # top-bottom symmetry is left-right symmetry of the transposed image; uint8 keeps the copies small
    for name, img, lo, hi in (
        ("symmetry_lr", images, box[:, 2], box[:, 3]),
        ("symmetry_tb", images.transpose(0, 2, 1), box[:, 0], box[:, 1]),
    ):
        g = _mirror_lr(img, lo, hi)
        diff = (np.maximum(img, g) - np.minimum(img, g)).sum((1, 2), dtype=np.int64)
        total = img.sum((1, 2), dtype=np.int64) + g.sum((1, 2), dtype=np.int64)
        out[name] = 1 - _safe_div(diff, total)
    return out


def _profile_features(prof: np.ndarray, lo: np.ndarray, hi: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Peak position (relative to the box), entropy and peak count of projection profiles (n, L)."""
    total = prof.sum(1)
    p = _safe_div(prof, total[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log2(p), 0).sum(1)
    pos = _safe_div(prof.argmax(1) - lo, np.maximum(hi - lo, 1).astype(np.float64))
    # peaks of the [1, 2, 1]-smoothed profile: a rise into the point, no rise after it (so a
    # plateau counts once), at least half the highest value (ignores ripples)
    s = np.pad(prof, ((0, 0), (1, 1)))
    s = np.pad((s[:, :-2] + 2 * s[:, 1:-1] + s[:, 2:]) / 4, ((0, 0), (1, 1)))
    mid = s[:, 1:-1]
    peak = (mid > s[:, :-2]) & (mid >= s[:, 2:]) & (mid >= 0.5 * mid.max(1, keepdims=True)) & (mid > 0)
    return {f"{prefix}_peak_pos": pos, f"{prefix}_entropy": entropy, f"{prefix}_n_peaks": peak.sum(1)}


def _extract_block(images: np.ndarray, threshold: int, zoning: int) -> dict[str, np.ndarray]:
    n = len(images)
    f = images.astype(np.float32) / 255.0
    binary = images >= threshold
    box = bounding_boxes(binary)
    bw, bh = box[:, 3] - box[:, 2] + 1, box[:, 1] - box[:, 0] + 1
    feats = _histogram_features(images, threshold)
    feats |= {"bbox_width": bw, "bbox_height": bh, "aspect_ratio": _safe_div(bw, bh)}
    feats |= _moment_features(f)
    feats |= _symmetry_features(images, box)
    feats |= _profile_features(f.sum(2, dtype=np.float64), box[:, 0], box[:, 1], "row")
    feats |= _profile_features(f.sum(1, dtype=np.float64), box[:, 2], box[:, 3], "col")
    comps, euler = count_components(binary), euler_numbers(binary, 8)
    skel = skeleton_lengths(binary)
    feats |= {
        "n_components": comps,
        "euler_number": euler,
        "holes": comps - euler,
        "skeleton_length": skel,
        "stroke_width": _safe_div(binary.reshape(n, -1).sum(1), skel),
    }
    zones = zoning_means(f, zoning)
    feats |= {f"zone_r{i}_c{j}": zones[:, i * zoning + j] for i in range(zoning) for j in range(zoning)}
    return feats


def extract_features(
    images: np.ndarray, threshold: int = 128, zoning: int = 4
) -> tuple[np.ndarray, list[str]]:
    """Hand-crafted features of every image, computed on the whole stack at once.

    Parameters
    ----------
    images : (n, H, W) uint8 array.
    threshold : fixed binarisation threshold; a pixel is ink when ``pixel >= threshold``. Used by
        ``ink_fixed``, the bounding box, symmetry centre, topology (components, Euler number,
        holes) and the skeleton.
    zoning : the zoning grid is ``zoning x zoning`` mean intensities.

    Returns
    -------
    X : (n, f) float32 feature matrix.
    names : the f feature names (see :data:`FEATURE_DESCRIPTIONS`; zones are ``zone_r{i}_c{j}``).
    """
    images = _check_images(images)
    if not 1 <= threshold <= 255:
        raise ConfigError(f"threshold {threshold}: must be between 1 and 255; use e.g. 128")
    if len(images) == 0:  # the names come from a blank image; no rows
        X, names = extract_features(np.zeros((1,) + images.shape[1:], np.uint8), threshold, zoning)
        return X[:0], names
    blocks = [_extract_block(images[i : i + CHUNK], threshold, zoning) for i in range(0, len(images), CHUNK)]
    names = list(blocks[0])
    X = np.stack([np.concatenate([b[k] for b in blocks]) for k in names], axis=1).astype(np.float32)
    return X, names


def describe_feature(name: str) -> str:
    """A one-line description of a feature name (zones included)."""
    if name.startswith("zone_r"):
        r, c = name[len("zone_r") :].split("_c")
        return f"mean intensity of zoning cell row {r}, column {c} (top-left = 0, 0)"
    return FEATURE_DESCRIPTIONS.get(name, name)


def class_mean_images(images: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mean and variance image of intensities in [0, 1], each ``(n_classes, H, W)`` float32.

    Classes without images get zeros.
    """
    images = _check_images(images)
    y = np.asarray(y)
    means = np.zeros((n_classes,) + images.shape[1:], dtype=np.float32)
    variances = np.zeros_like(means)
    for c in range(n_classes):  # a loop over classes, not images: each step is one vectorised reduction
        sel = images[y == c]
        if len(sel):
            means[c] = sel.mean(0, dtype=np.float64) / 255.0
            variances[c] = sel.var(0, dtype=np.float64) / 255.0**2
    return means, variances


# ---------------------------------------------------------------------------------------------
# Discriminability
# ---------------------------------------------------------------------------------------------


def discrete_mask(X: np.ndarray, max_values: int = 32) -> np.ndarray:
    """Columns that hold only integers with at most ``max_values`` distinct values (counts, sizes)."""
    integral = np.all(X == np.round(X), axis=0)
    few = np.array([len(np.unique(col)) <= max_values for col in X.T])
    return integral & few


def _ranks(values: np.ndarray) -> np.ndarray:
    """1 = largest; ties share the better rank order of appearance (stable)."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[order] = np.arange(1, len(values) + 1)
    return ranks


def feature_scores(
    X: np.ndarray, y: np.ndarray, names: Sequence[str], seed: int = 0, n_jobs: int = 1
) -> list[dict]:
    """ANOVA F (with p-value) and mutual information with the label, and both rankings, per feature.

    F is ``sklearn.feature_selection.f_classif`` (constant features score 0, p = 1). MI is
    ``mutual_info_classif`` (k-NN estimate for continuous features, exact contingency estimate for
    integer features with few values, see :func:`discrete_mask`), seeded with ``seed``, in nats.
    Rows are in the order of ``names``.
    """
    from sklearn.feature_selection import f_classif, mutual_info_classif

    X = np.asarray(X, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant columns: 0/0, handled below
        F, p = f_classif(X, y)
    F, p = np.nan_to_num(F, nan=0.0), np.nan_to_num(p, nan=1.0)
    mi = mutual_info_classif(X, y, discrete_features=discrete_mask(X), random_state=seed, n_jobs=n_jobs)
    rf, rm = _ranks(F), _ranks(mi)
    return [
        {
            "feature": n,
            "F": float(F[i]),
            "p_value": float(p[i]),
            "MI": float(mi[i]),
            "rank_F": int(rf[i]),
            "rank_MI": int(rm[i]),
        }
        for i, n in enumerate(names)
    ]


def pairwise_auc(X: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """ROC-AUC of every feature for every ordered class pair, shape ``(f, C, C)``.

    ``auc[k, a, b] = P(x_a > x_b) + P(x_a = x_b) / 2`` for feature ``k``, a random image ``x_a`` of
    class ``a`` and ``x_b`` of class ``b`` (the Mann-Whitney statistic); 0.5 = no separation,
    ``auc[k, b, a] = 1 - auc[k, a, b]``, the diagonal is 0.5. Pairs with an empty class give 0.5.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    auc = np.full((X.shape[1], n_classes, n_classes), 0.5)
    both = np.outer(counts, counts)
    for k in range(X.shape[1]):
        # class histogram over the feature's distinct values, then every pair in one product:
        # wins[a, b] = sum_v K[a, v] * (#class-b values below v + #class-b values equal to v / 2)
        uniq, inv = np.unique(X[:, k], return_inverse=True)
        K = (
            np.bincount(y * len(uniq) + inv, minlength=n_classes * len(uniq))
            .reshape(n_classes, -1)
            .astype(np.float64)
        )
        below = np.cumsum(K, axis=1) - K
        wins = K @ (below + 0.5 * K).T
        auc[k] = np.divide(wins, both, out=np.full_like(wins, 0.5), where=both > 0)
    return auc


def cohens_d(X: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Cohen's d for every feature and ordered class pair, ``(f, C, C)``: (mean_a - mean_b) / pooled sd."""
    X = np.asarray(X, dtype=np.float64)
    onehot = np.eye(n_classes)[np.asarray(y)]
    n = np.maximum(onehot.sum(0), 1)[:, None]
    mean = onehot.T @ X / n
    var = onehot.T @ X**2 / n - mean**2
    pooled = np.sqrt(np.maximum((var[:, None, :] + var[None, :, :]) / 2, 1e-12))
    return np.moveaxis((mean[:, None, :] - mean[None, :, :]) / pooled, 2, 0)


def pairwise_separation(
    X: np.ndarray, y: np.ndarray, names: Sequence[str], classes: Sequence[str], auc: np.ndarray | None = None
) -> list[dict]:
    """For each feature, the class pair it separates best (largest ROC-AUC away from 0.5).

    Rows (in the order of ``names``): ``feature``, ``best_pair`` ("a vs b"), ``auc`` (>= 0.5, the
    separation of that pair), ``higher`` (the class with the larger values), ``cohen_d`` (for that
    pair, positive), ``mean_pair_auc`` (average separation over all pairs: how generally useful
    the feature is).
    """
    C = len(classes)
    auc = pairwise_auc(X, y, C) if auc is None else auc
    d = cohens_d(X, y, C)
    sep = np.maximum(auc, 1 - auc)
    iu = np.triu_indices(C, 1)
    rows = []
    for k, name in enumerate(names):
        flat = sep[k][iu]
        j = int(np.argmax(flat))
        a, b = int(iu[0][j]), int(iu[1][j])
        hi = a if auc[k, a, b] >= 0.5 else b
        rows.append(
            {
                "feature": name,
                "best_pair": f"{classes[a]} vs {classes[b]}",
                "auc": float(flat[j]),
                "higher": classes[hi],
                "cohen_d": float(abs(d[k, a, b])),
                "mean_pair_auc": float(flat.mean()),
            }
        )
    return rows


CLASSIFIERS = ("logreg", "rf", "knn")


def make_classifier(name: str, seed: int = 0, n_jobs: int = 1, rf_trees: int = 100, max_iter: int = 300):
    """A scikit-learn pipeline by short name: ``logreg`` (standardised, lbfgs), ``rf`` (random forest), ``knn`` (k=5, standardised)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    if name == "rf":
        return RandomForestClassifier(n_estimators=rf_trees, random_state=seed, n_jobs=n_jobs)
    if name == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(5, n_jobs=n_jobs))
    raise ConfigError(f"classifier {name!r}: unknown; choose from {', '.join(CLASSIFIERS)}")


def feature_vs_pixel_accuracy(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    pixels_train: np.ndarray,
    pixels_test: np.ndarray,
    top_idx: Sequence[int],
    classifiers: Sequence[str] = ("logreg", "rf"),
    seed: int = 0,
    n_jobs: int = 1,
    rf_trees: int = 100,
    max_iter: int = 300,
    progress: bool = False,
) -> list[dict]:
    """Test accuracy of each classifier on all features, on the ``top_idx`` features and on raw pixels.

    All inputs use the same train/test images; pixels are scaled to [0, 1] and flattened. BLAS
    threads are capped at ``n_jobs`` (all when -1): on a small shared CPU, multi-threaded BLAS on
    the many small products of lbfgs was measured 40x slower than one thread.
    Rows: ``classifier``, ``input`` ("all features", "top-k features", "raw pixels"),
    ``n_inputs``, ``accuracy``, ``fit_seconds``. ``progress`` shows a rich progress bar over the fits.
    """
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    top_idx = list(top_idx)
    inputs = {
        "all features": (X_train, X_test),
        f"top-{len(top_idx)} features": (X_train[:, top_idx], X_test[:, top_idx]),
        "raw pixels": (
            pixels_train.reshape(len(pixels_train), -1) / np.float32(255),
            pixels_test.reshape(len(pixels_test), -1) / np.float32(255),
        ),
    }
    jobs = [(clf, label) for clf in classifiers for label in inputs]
    if progress:
        from rich.progress import track

        jobs = track(jobs, description="features vs pixels", transient=True)
    rows = []
    for clf_name, label in jobs:
        a, b = inputs[label]
        model = make_classifier(clf_name, seed, n_jobs, rf_trees, max_iter)
        t0 = time.perf_counter()
        with warnings.catch_warnings(), threadpool_limits(n_jobs if n_jobs > 0 else None, user_api="blas"):
            warnings.simplefilter("ignore", ConvergenceWarning)  # a capped iteration budget is a choice here
            model.fit(a, y_train)
            fit_s = time.perf_counter() - t0
            acc = float((model.predict(b) == y_test).mean())
        rows.append(
            {
                "classifier": clf_name,
                "input": label,
                "n_inputs": int(a.shape[1]),
                "accuracy": acc,
                "fit_seconds": round(fit_s, 2),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib figures; the caller saves or shows them). Each takes ``ax=``: None draws a new
# figure, an Axes gets the panels drawn in its area (see digitlab.plots); each returns the Figure.
# ---------------------------------------------------------------------------------------------


def _strip(images: np.ndarray, gap: int = 2) -> np.ndarray:
    """Images side by side, separated by NaN columns (drawn blank), as one array: one imshow, not C axes."""
    C, h, w = images.shape
    out = np.full((h, C * (w + gap) - gap), np.nan, dtype=np.float32)
    for c in range(C):
        out[:, c * (w + gap) : c * (w + gap) + w] = images[c]
    return out


def plot_class_mean_images(means: np.ndarray, variances: np.ndarray, classes: Sequence[str], ax=None):
    """Two strips of images: per-class mean intensity (top) and per-class pixel variance (bottom)."""
    import matplotlib.pyplot as plt

    from digitlab.plots import panels

    C, h, w = means.shape
    own = ax is None
    fig, axes = panels(ax, 2, 1, (1.0 * C, 2.6))
    axes = axes[:, 0]
    for ax, imgs, cmap, label in (
        (axes[0], means, "gray_r", "mean"),
        (axes[1], variances, "magma", "variance"),
    ):
        ax.imshow(
            _strip(imgs),
            cmap=plt.get_cmap(cmap).with_extremes(bad="white"),
            vmin=0,
            vmax=float(np.nanmax(imgs)) or 1.0,
        )
        ax.set_yticks([])
        ax.set_ylabel(label, fontsize=8)
        ax.set_xticks(
            [c * (w + 2) + w / 2 - 0.5 for c in range(C)], list(classes) if ax is axes[0] else [], fontsize=8
        )
        ax.tick_params(length=0)
        ax.xaxis.set_ticks_position("top")
        for side in ax.spines.values():
            side.set_visible(False)
    if own:
        fig.subplots_adjust(hspace=0.05)
    return fig


def plot_feature_scores(scores: list[dict], top: int | None = None, ax=None):
    """Horizontal bars of ANOVA F (log scale) and mutual information, features sorted by F."""
    from digitlab.plots import panels

    rows = sorted(scores, key=lambda r: r["rank_F"])[:top]
    names = [r["feature"] for r in rows][::-1]
    F = np.maximum([r["F"] for r in rows][::-1], 1e-3)
    mi = [r["MI"] for r in rows][::-1]
    own = ax is None
    fig, axes = panels(ax, 1, 2, (9, 0.2 * len(rows) + 1), sharey=True)
    a1, a2 = axes[0]
    y = np.arange(len(rows))
    a1.barh(y, F, color="tab:blue")
    a1.set_xscale("log")
    a1.set_xlabel("ANOVA F (log)")
    a2.barh(y, mi, color="tab:orange")
    a2.set_xlabel("mutual information with the label (nats)")
    a1.set_yticks(y, names, fontsize=7)
    for ax in (a1, a2):
        ax.grid(axis="x", alpha=0.3)
    if own:
        fig.subplots_adjust(wspace=0.05)
    return fig


def plot_feature_distributions(
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    features: Sequence[str],
    classes: Sequence[str],
    ncols: int = 3,
    ax=None,
):
    """Per-class distributions of ``features``: violins for continuous ones, stacked value shares for counts."""
    from digitlab.plots import panels

    C, k = len(classes), len(features)
    nrows = -(-k // ncols)
    own = ax is None
    fig, axes = panels(ax, nrows, ncols, (4.2 * ncols, 2.6 * nrows))
    disc = discrete_mask(X)
    for ax, feat in zip(axes.ravel(), features):
        j = list(names).index(feat)
        per_class = [X[y == c, j] for c in range(C)]
        if disc[j] and len(np.unique(X[:, j])) <= 6:
            _stacked_shares(ax, per_class, np.unique(X[:, j]))
        else:
            lo, hi = np.percentile(X[:, j], [0.5, 99.5])
            data = [np.clip(v, lo, hi) if len(v) else np.array([lo]) for v in per_class]
            ax.violinplot(data, positions=range(C), showmedians=True, widths=0.8)
        ax.set_xticks(range(C), classes, fontsize=7, rotation=0 if max(map(len, classes)) < 4 else 45)
        ax.set_title(feat, fontsize=9)
    for ax in axes.ravel()[k:]:
        ax.set_visible(False)
    if own:
        fig.subplots_adjust(hspace=0.55, wspace=0.25)
    return fig


def _stacked_shares(ax, per_class: list[np.ndarray], values: np.ndarray) -> None:
    bottom = np.zeros(len(per_class))
    cmap = __import__("matplotlib").colormaps["viridis"]
    for i, v in enumerate(values):
        share = np.array([(pc == v).mean() if len(pc) else 0 for pc in per_class])
        ax.bar(
            range(len(per_class)),
            share,
            bottom=bottom,
            color=cmap(i / max(len(values) - 1, 1)),
            label=f"{v:g}",
        )
        bottom += share
    ax.set_ylabel("share", fontsize=8)
    ax.legend(fontsize=6, ncol=len(values), loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)


def plot_pairwise_auc(
    auc: np.ndarray, names: Sequence[str], features: Sequence[str], classes: Sequence[str], ax=None
):
    """Heatmaps of pairwise separation max(AUC, 1 - AUC) for ``features`` (0.5 = none, 1 = perfect)."""
    from digitlab.plots import panels

    k, C = len(features), len(classes)
    fig, axes = panels(ax, 1, k, (3.0 * k + 0.6, 3.0))
    for ax, feat in zip(axes[0], features):
        a = auc[list(names).index(feat)]
        im = ax.imshow(np.maximum(a, 1 - a), vmin=0.5, vmax=1.0, cmap="viridis")
        ax.set_xticks(range(C), classes, fontsize=6, rotation=0 if max(map(len, classes)) < 4 else 90)
        ax.set_yticks(range(C), classes, fontsize=6)
        ax.set_title(feat, fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="pair AUC")
    return fig
