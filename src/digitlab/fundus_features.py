"""Fundus photographs: hand-crafted colour and texture features, and the metrics of DR grading.

:func:`fundus_features` turns uint8 RGB fundus images ``(n, H, W, 3)`` (cropped and centred as
:func:`digitlab.data.fundus.load_ddr` delivers them) into a table of numbers a classic model can
use, all computed on whole batches with NumPy/SciPy (no loop over pixels):

* **colour** (per channel R, G, B inside the fundus): mean, standard deviation, skewness,
  10th/50th/90th percentiles, and an 8-bin histogram;
* **red-free** (the green channel, where haemorrhages and microaneurysms have most contrast, as in
  ophthalmologists' red-free photographs): the green channel against its smooth local background
  (Gaussian blur of about 1/16 of the image side, normalised within the fundus so the dark rim
  does not leak in): the fraction of the fundus darker than the background by 10/20/35 % (dark
  lesions and vessels) and brighter by 10/20/35 % (exudates, cotton-wool spots, the optic disc),
  and the spread of that relative contrast;
* **yellow**: the fraction of the fundus where red and green both exceed blue by a margin and
  the pixel is brighter than its background (hard exudates are yellow);
* **texture** (green channel): mean and SD of the gradient magnitude, mean absolute Laplacian,
  and a local-binary-pattern-like histogram (for each pixel, how many of its 8 neighbours are
  brighter than it by a margin: 9 bins);
* **blobs**: connected components of the dark and bright masks (20 % threshold) per image, their
  count, the count of small ones (lesion-sized, at most ~0.2 % of the fundus) and the size of the
  largest (a vessel tree or the optic disc).

:func:`quadratic_weighted_kappa` and :func:`grading_metrics` score ordinal grades (0-4): the
kappa counts a miss by two grades four times as badly as a miss by one.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "fundus_features",
    "feature_names",
    "fundus_mask",
    "quadratic_weighted_kappa",
    "qwk_bootstrap",
    "grading_metrics",
    "downsample",
]

CHANNELS = ("red", "green", "blue")
HIST_BINS = 8  # bins of each channel's histogram (0-255)
REL_THRESHOLDS = (0.10, 0.20, 0.35)  # relative darkness/brightness against the local background
BLOB_THRESHOLD = 0.20  # threshold of the masks whose connected components are counted
LBP_MARGIN = 4  # grey levels a neighbour must exceed the centre by to count as brighter
MASK_THRESHOLD = 12  # a pixel whose brightest channel exceeds this (0-255) belongs to the fundus
# ... and lies within this fraction of the inscribed circle's radius (Graham's grey border too)
MASK_RADIUS = 0.94


def feature_names() -> list[str]:
    """Names of the columns :func:`fundus_features` returns, in order."""
    names = []
    for ch in CHANNELS:
        names += [f"{ch}_{s}" for s in ("mean", "sd", "skew", "p10", "p50", "p90")]
        names += [f"{ch}_hist{b}" for b in range(HIST_BINS)]
    names += [f"dark_{int(100 * t)}pct" for t in REL_THRESHOLDS] + [
        f"bright_{int(100 * t)}pct" for t in REL_THRESHOLDS
    ]
    names += ["green_rel_sd", "green_rel_p01", "green_rel_p99", "yellow_fraction"]
    names += ["grad_mean", "grad_sd", "laplacian_mean"] + [f"lbp_{k}" for k in range(9)]
    names += [
        "dark_blobs",
        "dark_small_blobs",
        "dark_largest",
        "bright_blobs",
        "bright_small_blobs",
        "bright_largest",
    ]
    return names


def fundus_mask(
    images: np.ndarray, threshold: int = MASK_THRESHOLD, radius: float = MASK_RADIUS
) -> np.ndarray:
    """Boolean ``(n, H, W)``: pixels inside the circular fundus (bright enough and inside the
    centred circle of ``radius`` x half the shorter side)."""
    n, h, w = images.shape[:3]
    yy, xx = np.ogrid[:h, :w]
    circle = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= (radius * min(h, w) / 2) ** 2
    return (images.max(axis=3) > threshold) & circle[None]


def _value_counts(v: np.ndarray, m: np.ndarray, levels: int) -> np.ndarray:
    """Per row, the count of masked values of integer ``v`` (n, P) in ``0..levels-1``: ``(n, levels)``."""
    n = len(v)
    idx = v.astype(np.int64) + np.arange(n)[:, None] * levels
    return np.bincount(idx[m], minlength=n * levels).reshape(n, levels).astype(np.float64)


def _hist_moments(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean, SD, skewness and 10/50/90th percentiles per row of a histogram ``counts`` (n, L) over ``values`` (L,).
    Exact for uint8 data (one bin per grey level)."""
    total = np.maximum(counts.sum(1), 1)
    mean = counts @ values / total
    d = values[None, :] - mean[:, None]
    sd = np.sqrt((counts * d**2).sum(1) / total)
    skew = (counts * d**3).sum(1) / total / np.maximum(sd, 1e-6) ** 3
    cdf = np.cumsum(counts, 1) / total[:, None]
    pct = [values[np.minimum((cdf < q).sum(1), len(values) - 1)] for q in (0.1, 0.5, 0.9)]
    return np.column_stack([mean, sd, skew, *pct])


def _local_background(g: np.ndarray, m: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-blurred green normalised within the fundus: ``blur(g * m) / blur(m)`` (no dark rim bleeding in)."""
    from scipy.ndimage import gaussian_filter

    s = (0, sigma, sigma)
    num = gaussian_filter(g * m, s, mode="constant", truncate=3.0)
    den = gaussian_filter(m.astype(np.float32), s, mode="constant", truncate=3.0)
    return num / np.maximum(den, 1e-3)


def _blob_stats(mask: np.ndarray, fundus_px: np.ndarray) -> np.ndarray:
    """Per image: number of connected components of ``mask`` (n, H, W), number of small ones
    (at most 0.2 % of the fundus, at least 2 px) and the largest one's size as a fraction of the fundus."""
    from scipy.ndimage import label

    n = len(mask)
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]  # 4-connected within an image, never across images
    lab, k = label(mask, structure=structure)
    out = np.zeros((n, 3))
    if k == 0:
        return out
    flat = lab.ravel()
    sizes = np.bincount(flat, minlength=k + 1)[1:]
    first = np.zeros(k + 1, np.int64)
    nz = np.flatnonzero(flat)
    first[flat[nz[::-1]]] = nz[::-1]  # the last write wins: the first pixel of each component
    img = first[1:] // (mask.shape[1] * mask.shape[2])
    frac = sizes / np.maximum(fundus_px[img], 1)
    small = (sizes >= 2) & (frac <= 0.002)
    out[:, 0] = np.bincount(img, weights=(sizes >= 2).astype(float), minlength=n)
    out[:, 1] = np.bincount(img, weights=small.astype(float), minlength=n)
    np.maximum.at(out[:, 2], img, frac)
    return out


def _lbp_hist(g: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per image, the share of fundus pixels with 0..8 of their 8 neighbours brighter by ``LBP_MARGIN``."""
    p = np.pad(g, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = g.shape[1:]
    count = np.zeros(g.shape, np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                count += p[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] > g + LBP_MARGIN
    n = len(g)
    idx = (count + np.arange(n)[:, None, None] * 9)[m]
    hist = np.bincount(idx, minlength=n * 9).reshape(n, 9).astype(np.float64)
    return hist / np.maximum(hist.sum(1, keepdims=True), 1)


def _chunk_features(x: np.ndarray) -> np.ndarray:
    n, h, w, _ = x.shape
    m = fundus_mask(x)
    fundus_px = m.reshape(n, -1).sum(1).astype(np.float64)
    mf = m.reshape(n, -1)
    cols = []
    grey = np.arange(256, dtype=np.float64)
    for c in range(3):
        counts = _value_counts(x[..., c].reshape(n, -1), mf, 256)
        hist = counts.reshape(n, HIST_BINS, 256 // HIST_BINS).sum(2)
        cols += [_hist_moments(counts, grey), hist / np.maximum(hist.sum(1, keepdims=True), 1)]
    g = x[..., 1].astype(np.float32)
    bg = _local_background(g, m, sigma=min(h, w) / 16)
    rel = np.where(m, (g - bg) / np.maximum(bg, 8.0), 0.0)
    area = np.maximum(fundus_px, 1)[:, None]
    cols.append(np.column_stack([((rel < -t) & m).reshape(n, -1).sum(1) for t in REL_THRESHOLDS]) / area)
    cols.append(np.column_stack([((rel > t) & m).reshape(n, -1).sum(1) for t in REL_THRESHOLDS]) / area)
    # relative contrast in 0.01 steps from -1 to +2: its SD and 1st/99th percentiles from one histogram
    steps = np.clip(np.rint((rel.reshape(n, -1) + 1) * 100), 0, 300).astype(np.int64)
    rel_counts = _value_counts(steps, mf, 301)
    rel_sd = _hist_moments(rel_counts, np.arange(301) / 100 - 1)[:, 1]
    cdf = np.cumsum(rel_counts, 1) / np.maximum(rel_counts.sum(1, keepdims=True), 1)
    p01, p99 = ((cdf < 0.01).sum(1) / 100 - 1), (np.minimum((cdf < 0.99).sum(1), 300) / 100 - 1)
    r, b = x[..., 0].astype(np.float32), x[..., 2].astype(np.float32)
    yellow = m & (r - b > 60) & (g - b > 60) & (rel > 0.1)
    cols.append(np.nan_to_num(np.column_stack([rel_sd, p01, p99, yellow.reshape(n, -1).sum(1) / area[:, 0]])))
    gy, gx = np.gradient(g, axis=(1, 2))
    grad = np.sqrt(gx**2 + gy**2).reshape(n, -1)
    lap = np.abs(4 * g - np.roll(g, 1, 1) - np.roll(g, -1, 1) - np.roll(g, 1, 2) - np.roll(g, -1, 2)).reshape(
        n, -1
    )
    inner = _erode(m).reshape(n, -1)  # texture away from the rim's edge
    cnt = np.maximum(inner.sum(1), 1)
    gmean = (grad * inner).sum(1) / cnt
    gsd = np.sqrt(((grad - gmean[:, None]) ** 2 * inner).sum(1) / cnt)
    cols.append(np.column_stack([gmean, gsd, (lap * inner).sum(1) / cnt]))
    cols.append(_lbp_hist(x[..., 1].astype(np.int16), inner.reshape(n, h, w)))
    inner3 = inner.reshape(n, h, w)
    cols.append(_blob_stats((rel < -BLOB_THRESHOLD) & inner3, fundus_px))
    cols.append(_blob_stats((rel > BLOB_THRESHOLD) & inner3, fundus_px))
    return np.hstack(cols).astype(np.float32)


def _erode(m: np.ndarray, k: int = 2) -> np.ndarray:
    """Shrink each fundus mask by ``k`` pixels (a 4-neighbour minimum filter applied ``k`` times)."""
    out = m.copy()
    for _ in range(k):
        p = np.pad(out, ((0, 0), (1, 1), (1, 1)))
        out = out & p[:, :-2, 1:-1] & p[:, 2:, 1:-1] & p[:, 1:-1, :-2] & p[:, 1:-1, 2:]
    return out


def fundus_features(images: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, list[str]]:
    """Colour and texture features of RGB fundus images.

    Parameters
    ----------
    images : uint8 ``(n, H, W, 3)`` (memory-mapped arrays are read in chunks). Greyscale
        ``(n, H, W)`` is taken as R = G = B.
    chunk : images processed at a time (memory: about 40 floats per pixel of a chunk).

    Returns
    -------
    ``(X, names)``: float32 ``(n, len(names))`` and :func:`feature_names`.
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = np.repeat(x[..., None], 3, axis=3)
    if x.ndim != 4 or x.shape[3] < 3:
        raise ValueError(f"fundus_features: images of shape {x.shape}; pass uint8 (n, H, W, 3)")
    parts = [
        _chunk_features(np.ascontiguousarray(x[i : i + chunk, :, :, :3])) for i in range(0, len(x), chunk)
    ]
    names = feature_names()
    return (np.vstack(parts) if parts else np.zeros((0, len(names)), np.float32)), names


def downsample(images: np.ndarray, side: int) -> np.ndarray:
    """Area-average uint8 images ``(n, H, W[, C])`` to ``side x side`` pixels (unchanged when already that small)."""
    import torch
    import torch.nn.functional as F

    x = np.asarray(images)
    if max(x.shape[1:3]) <= side:
        return x
    out = []
    for i in range(0, len(x), 512):  # in chunks: a float copy of all images would be 4x their size
        t = torch.from_numpy(np.asarray(x[i : i + 512], dtype=np.float32))  # a fresh, writable array
        t = t[:, None] if x.ndim == 3 else t.permute(0, 3, 1, 2)
        o = F.adaptive_avg_pool2d(t, side).round_().clamp_(0, 255).to(torch.uint8)
        out.append((o[:, 0] if x.ndim == 3 else o.permute(0, 2, 3, 1)).contiguous().numpy())
    return np.concatenate(out) if out else np.zeros((0, side, side, *x.shape[3:]), np.uint8)


# ---------------------------------------------------------------------------------------------
# Grading metrics
# ---------------------------------------------------------------------------------------------


def quadratic_weighted_kappa(y_true, y_pred, n_classes: int | None = None) -> float:
    """Cohen's kappa with quadratic weights ``(i - j)^2 / (K - 1)^2``: agreement beyond chance,
    a miss by ``d`` grades costing ``d^2``. 1 = perfect, 0 = chance, negative = worse than chance.
    Equals ``sklearn.metrics.cohen_kappa_score(y_true, y_pred, weights="quadratic")``."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    k = int(n_classes or max(y_true.max(initial=0), y_pred.max(initial=0)) + 1)
    obs = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k).astype(np.float64)
    n = obs.sum()
    if n == 0:
        return float("nan")
    exp = np.outer(obs.sum(1), obs.sum(0)) / n
    i = np.arange(k)
    w = (i[:, None] - i[None, :]) ** 2 / max(k - 1, 1) ** 2
    denom = (w * exp).sum()
    return float(1 - (w * obs).sum() / denom) if denom > 0 else (1.0 if (w * obs).sum() == 0 else 0.0)


def grading_metrics(
    y_true,
    y_pred,
    proba: np.ndarray | None = None,
    n_classes: int | None = None,
    scores: np.ndarray | None = None,
) -> dict:
    """The metrics suite of :func:`digitlab.metrics.classification_metrics` plus ``qwk`` (quadratic
    weighted kappa), ``mae_grades`` (mean absolute grade error), ``within_one`` (share of
    predictions at most one grade off) and ``referable_sensitivity`` / ``referable_specificity``
    (grade >= 2, moderate NPDR or worse, the usual referral threshold, as a yes/no decision)."""
    from digitlab.metrics import classification_metrics

    out = classification_metrics(y_true, y_pred, proba=proba, n_classes=n_classes, scores=scores)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = n_classes or out["confusion_matrix"].shape[0]
    err = np.abs(y_true - y_pred)
    ref_t, ref_p = y_true >= 2, y_pred >= 2
    out.update(
        qwk=quadratic_weighted_kappa(y_true, y_pred, k),
        mae_grades=float(err.mean()) if len(err) else float("nan"),
        within_one=float(np.mean(err <= 1)) if len(err) else float("nan"),
        referable_sensitivity=float(ref_p[ref_t].mean()) if ref_t.any() else float("nan"),
        referable_specificity=float((~ref_p[~ref_t]).mean()) if (~ref_t).any() else float("nan"),
    )
    return out


def qwk_bootstrap(
    y_true, y_pred, n_classes: int, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> dict[str, float]:
    """Bootstrap of the quadratic weighted kappa over test images (all resamples at once):
    ``{"qwk", "se", "low", "high"}`` (percentile interval)."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    n, k = len(y_true), n_classes
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    cells = y_true[idx] * k + y_pred[idx] + np.arange(n_boot)[:, None] * k * k
    obs = np.bincount(cells.ravel(), minlength=n_boot * k * k).reshape(n_boot, k, k).astype(np.float64)
    exp = obs.sum(2)[:, :, None] * obs.sum(1)[:, None, :] / n
    i = np.arange(k)
    w = (i[:, None] - i[None, :]) ** 2 / max(k - 1, 1) ** 2
    den = (w * exp).sum((1, 2))
    with np.errstate(all="ignore"):
        q = np.where(den > 0, 1 - (w * obs).sum((1, 2)) / den, 0.0)
    a = (1 - confidence) / 2
    return {
        "qwk": quadratic_weighted_kappa(y_true, y_pred, k),
        "se": float(q.std(ddof=1)),
        "low": float(np.quantile(q, a)),
        "high": float(np.quantile(q, 1 - a)),
    }
