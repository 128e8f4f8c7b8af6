"""Colour fundus photographs for diabetic-retinopathy (DR) grading: the DDR layout, fundus
preprocessing, and a synthetic generator that writes the same layout.

DDR (Li et al., 2019) ships its grading part as::

    DR_grading/train/*.jpg   DR_grading/valid/*.jpg   DR_grading/test/*.jpg
    DR_grading/train.txt     DR_grading/valid.txt     DR_grading/test.txt     ("filename grade" lines)

with grades 0 (no DR), 1 (mild NPDR), 2 (moderate NPDR), 3 (severe NPDR), 4 (proliferative DR)
and 5 (ungradable, left out by default). :func:`load_ddr` reads it through the image-folder cache
of :mod:`digitlab.data.folders` with :class:`FundusSpec` preprocessing: crop to the circular
fundus, resize, optionally Graham's local-average colour subtraction.

:func:`synth_fundus` writes a DDR-layout folder of generated photographs (for tests and
demonstrations only: they are drawings, not retinas); from the folder on, real and synthetic data
take the same code path.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from digitlab.data.folders import ImageSpec, fit_aspect, load_images, read_file_list, resize
from digitlab.exceptions import DatasetError

DDR_CLASSES = ["no DR", "mild NPDR", "moderate NPDR", "severe NPDR", "proliferative DR"]
UNGRADABLE = 5  # DDR's grade for images too poor to grade
DDR_SPLITS = ("train", "valid", "test")
DDR_GRADE_COUNTS = (6266, 630, 4477, 236, 913, 1151)  # DDR's 13,673 grading images per grade 0-5
DDR_SPLIT_FRACTIONS = (0.5, 0.2, 0.3)  # train / valid / test, as in DDR
SYNTH_MARKER = "SYNTHETIC.json"

FUNDUS_META = {
    "kind": "fundus",
    "description": "colour photographs of the retina (fundus) graded for diabetic retinopathy, 0 (none) to 4 (proliferative)",
    "item_noun": "fundus photograph",
    "ink_on_blank": False,
    "ordinal": True,  # grades are ordered: quadratic weighted kappa fits
    "canonical_orientation": False,  # left and right eyes, cameras at any angle
    "flip_preserves_label": True,
    "large_rotation_preserves_label": True,
    "label_swaps_under_rotation": [],
    "confusable_pairs": [
        ("no DR", "mild NPDR"),
        ("mild NPDR", "moderate NPDR"),
        ("moderate NPDR", "severe NPDR"),
        ("severe NPDR", "proliferative DR"),
    ],
}


# ==================================================================================================
# Preprocessing: crop to the fundus, resize, Graham's local-average subtraction
# ==================================================================================================


@dataclass(frozen=True)
class FundusSpec(ImageSpec):
    """Fundus preprocessing settings (all part of the cache key)."""

    size: int | tuple[int, int] = 128  # output side in pixels
    colour: bool = True  # RGB; False gives greyscale
    fit: str = "pad"  # after the crop, pad the fundus to a square (keeps the circle round)
    crop: bool = True  # crop to the bounding box of the circular fundus first
    threshold: int = 12  # a pixel whose brightest channel exceeds this (0-255) belongs to the fundus
    graham: bool = False  # Graham's local-average colour subtraction after resizing
    graham_sigma: float = 1 / 30  # its Gaussian blur sigma, as a fraction of the fundus radius (Graham: 1/30)

    def transform(self, im) -> np.ndarray:
        from PIL import Image

        if self.crop:
            im = Image.fromarray(crop_fundus(np.asarray(im), self.threshold))
        arr = resize(fit_aspect(im, self.hw, self.fit), self.hw)
        if self.graham:
            arr = graham(arr, self.graham_sigma * min(self.hw) / 2)
        return arr


def fundus_bbox(
    img: np.ndarray, threshold: int = 12, min_fraction: float = 0.01
) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` (end-exclusive) of the bright fundus on its dark border.

    A row or column belongs to the fundus when more than ``min_fraction`` of its pixels exceed
    ``threshold`` in their brightest channel (robust to JPEG noise); the longest run of such rows
    (columns) is kept, so a label printed apart on the border does not widen the box.
    ``None`` when no such region of at least a tenth of the image is found.
    """
    lum = img.max(axis=2) if img.ndim == 3 else img
    mask = lum > threshold
    top, bottom = _longest_run(mask.mean(axis=1) > min_fraction)  # the longest run: not a separate label
    left, right = _longest_run(mask.mean(axis=0) > min_fraction)
    if (bottom - top) < 0.1 * lum.shape[0] or (right - left) < 0.1 * lum.shape[1]:
        return None
    return top, bottom, left, right


def _longest_run(flags: np.ndarray) -> tuple[int, int]:
    """``(start, end)`` (end-exclusive) of the longest run of True in a 1-D boolean array; (0, 0) if none."""
    edges = np.flatnonzero(np.diff(np.r_[0, flags.astype(np.int8), 0]))
    if len(edges) == 0:
        return 0, 0
    starts, ends = edges[::2], edges[1::2]
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k])


def crop_fundus(img: np.ndarray, threshold: int = 12) -> np.ndarray:
    """Crop an image (H, W[, C]) to the bounding box of its circular fundus (unchanged when none is found)."""
    box = fundus_bbox(img, threshold)
    if box is None:
        return img
    top, bottom, left, right = box
    return img[top:bottom, left:right]


def graham(img: np.ndarray, sigma: float) -> np.ndarray:
    """Graham's preprocessing (Kaggle DR 2015): ``4 * (img - gaussian_blur(img, sigma)) + 128``, then
    the border outside 90 % of the fundus radius set to grey 128. ``img`` is a uint8 (H, W[, C])
    fundus centred in its frame; returns uint8."""
    from scipy.ndimage import gaussian_filter

    x = img.astype(np.float32)
    blur = gaussian_filter(x, sigma=(sigma, sigma, 0)[: x.ndim])
    out = np.clip(4 * (x - blur) + 128, 0, 255)
    h, w = img.shape[:2]
    yy, xx = np.ogrid[:h, :w]
    inside = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= (0.9 * min(h, w) / 2) ** 2
    out[~inside] = 128
    return np.round(out).astype(np.uint8)


# ==================================================================================================
# The DDR layout
# ==================================================================================================


def find_ddr_root(data_dir: str | os.PathLike) -> Path:
    """The ``DR_grading`` folder: ``data_dir`` itself, or ``data_dir/DR_grading`` (also under ``DDR-dataset/``)."""
    d = Path(data_dir)
    for cand in (d, d / "DR_grading", d / "DDR-dataset" / "DR_grading"):
        if (cand / "train.txt").is_file() or (cand / "test.txt").is_file():
            for need in ("train.txt", "test.txt", "train", "test"):
                if not (cand / need).exists():
                    raise DatasetError(
                        f"{cand}: missing {need} of the DDR grading layout; it needs train/, test/ "
                        "(and valid/) image folders and train.txt, test.txt (and valid.txt) lists"
                    )
            return cand
    raise DatasetError(
        f"--data-dir {d}: no DDR grading layout (DR_grading/ with train.txt, valid.txt, test.txt and "
        "train/, valid/, test/ image folders) in it; pass the folder holding DR_grading, or DR_grading itself"
    )


def read_ddr_split(
    root: str | os.PathLike, split: str, *, include_ungradable: bool = False, skip_bad_files: bool = False
) -> tuple[list[Path], np.ndarray, list[tuple[str, str]], int]:
    """Files and grades of one split's ``<split>.txt`` (image names relative to ``<split>/``).

    Returns the paths, int64 grades, the skipped lines ``(file:line, why)`` and the number of
    ungradable images left out. A malformed line, a grade outside 0-5 or a missing file is a
    :class:`DatasetError` naming the list file and line, or a counted skip with ``skip_bad_files``.
    """
    root = Path(root)

    def check(label: str) -> str | None:
        return None if label in {"0", "1", "2", "3", "4", "5"} else f"grade {label!r} is not one of 0-5"

    paths, labels, skipped = read_file_list(
        root / f"{split}.txt", root / split, check=check, skip_bad_files=skip_bad_files
    )
    grades = np.asarray([int(g) for g in labels], np.int64)
    keep = np.ones(len(grades), bool) if include_ungradable else grades != UNGRADABLE
    return [p for p, k in zip(paths, keep) if k], grades[keep], skipped, int((~keep).sum())


def load_ddr(
    data_dir: str | os.PathLike,
    *,
    size: int = 128,
    graham: bool = False,
    crop: bool = True,
    colour: bool = True,
    include_ungradable: bool = False,
    valid: str = "train",
    skip_bad_files: bool = False,
    cache_dir: str | os.PathLike | None = None,
    n_jobs: int | None = None,
):
    """DDR's grading photographs as a :class:`~digitlab.data.registry.Dataset` (uint8, (n, size, size, 3)).

    ``data_dir`` is the folder holding ``DR_grading`` or ``DR_grading`` itself. The test split is
    DDR's test split; ``valid="train"`` adds DDR's validation images to the training split (tasks
    draw their own validation subsets from it), ``valid="drop"`` leaves them out. Grade 5
    (ungradable) is left out unless ``include_ungradable`` (then it is a sixth class). Images are
    decoded once and cached as a memory-mapped ``.npy`` (see :func:`digitlab.data.folders.load_images`).
    """
    from digitlab.data.dataset import Dataset

    if valid not in ("train", "drop"):
        raise DatasetError(
            f"ddr option valid={valid!r}: unknown; use 'train' (add DDR's validation images to training) or 'drop'"
        )
    root = find_ddr_root(data_dir)
    splits = (
        ["train", "valid", "test"]
        if valid == "train" and (root / "valid.txt").is_file()
        else ["train", "test"]
    )
    paths, grades, skipped, parts = [], [], [], {}
    n_ungradable = 0
    for split in splits:
        p, g, s, u = read_ddr_split(
            root, split, include_ungradable=include_ungradable, skip_bad_files=skip_bad_files
        )
        paths += p
        grades.append(g)
        skipped += s
        n_ungradable += u
        parts[split] = len(p)
    n_fit = len(paths) - parts["test"]
    for what, n in (("training", n_fit), ("test", parts["test"])):
        if n == 0:
            lists = (
                " and ".join(f"{s}.txt" for s in splits if s != "test") if what == "training" else "test.txt"
            )
            why = (
                f"{n_ungradable} ungradable image(s) left out, none gradable"
                if n_ungradable and not include_ungradable
                else "the lists name no images"
            )
            raise DatasetError(
                f"{root}: no {what} images ({lists}: {why}); list graded images (grades 0-4) in "
                f"{lists}, one 'file grade' line each"
            )
    spec = FundusSpec(size=size, colour=colour, crop=crop, graham=graham)
    res = load_images(
        paths, spec, name=f"ddr-{size}", cache_dir=cache_dir, skip_bad_files=skip_bad_files, n_jobs=n_jobs
    )
    y = np.concatenate(grades)[res.kept]
    n_train = int(
        np.searchsorted(res.kept, len(paths) - parts["test"])
    )  # kept is sorted: train (+ valid) rows first
    if n_train == 0 or n_train == len(y):
        raise DatasetError(
            f"{root}: every {'training' if n_train == 0 else 'test'} image was skipped as unreadable; "
            "replace the damaged files"
        )
    synthetic = (root / SYNTH_MARKER).is_file()
    classes = DDR_CLASSES + (["ungradable"] if include_ungradable else [])
    meta = {
        **json.loads(json.dumps(FUNDUS_META)),
        "synthetic": synthetic,
        "splits": dict(parts),
        "valid": valid,
        "ungradable_excluded": n_ungradable,
        "skipped_files": len(skipped) + res.n_skipped,
        "skipped": [f"{f}: {why}" for f, why in skipped + res.skipped][:50],
        "preprocessing": json.loads(spec.key()),
        "cache_file": str(res.cache_file or ""),
    }
    if synthetic:
        meta["description"] = (
            "synthetic fundus drawings in the DDR layout (digitlab's generator, for tests and "
            "demonstrations; not real retinas), graded 0 (no DR) to 4 (proliferative)"
        )
    status = dict.fromkeys(splits, "unverified (DDR publishes no checksums)")
    return Dataset(
        "ddr-synthetic" if synthetic else "ddr",
        res.images[:n_train],
        y[:n_train],
        res.images[n_train:],
        y[n_train:],
        classes,
        source=str(root),
        checksums=status,
        meta=meta,
    )


# ==================================================================================================
# Synthetic fundus photographs in the DDR layout
# ==================================================================================================

# Mean number of each lesion per grade 0-4 (Poisson); the kind and number grow with the grade.
LESIONS = {
    "microaneurysms": (0, 4, 8, 12, 10),
    "haemorrhages": (0, 0, 3, 12, 8),
    "exudate_clusters": (0, 0, 1.5, 3, 3),
    "cotton_wool": (0, 0, 0.7, 3, 3),
    "new_vessels": (0, 0, 0, 0, 2),
    "preretinal": (0, 0, 0, 0, 0.6),  # large boat-shaped haemorrhages in front of the retina
}
MINIMUM = {1: ("microaneurysms", 1), 2: ("haemorrhages", 1), 3: ("haemorrhages", 8), 4: ("new_vessels", 1)}


def synth_counts(
    n_images: int,
    grade_counts: Sequence[float] = DDR_GRADE_COUNTS,
    split_fractions: Sequence[float] = DDR_SPLIT_FRACTIONS,
    min_per_grade: int = 1,
) -> dict[str, list[int]]:
    """Images per split and grade (0-5) for ``n_images`` in DDR's proportions, at least
    ``min_per_grade`` of each grade in each split (largest-remainder rounding)."""
    out = {}
    n_split = _largest_remainder(np.asarray(split_fractions, float), n_images)
    for split, n in zip(DDR_SPLITS, n_split):
        k = len(grade_counts)
        base = min(min_per_grade, n // k)
        out[split] = (_largest_remainder(np.asarray(grade_counts, float), n - base * k) + base).tolist()
    return out


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    quota = weights / weights.sum() * total
    take = np.floor(quota).astype(int)
    take[np.argsort(-(quota - take), kind="stable")[: total - take.sum()]] += 1
    return take


MAX_SYNTH_IMAGES = 200_000  # more is a typo, not a test set (each image is a JPEG of up to 2048 px)


def synth_fundus(
    out_dir: str | os.PathLike,
    n_images: int = 300,
    *,
    counts: Mapping[str, Sequence[int]] | None = None,
    size: int = 256,
    seed: int = 0,
    quality: int = 90,
    overwrite: bool = False,
) -> dict[str, list[int]]:
    """Write a DDR-layout folder ``out_dir/DR_grading`` of synthetic fundus photographs (JPEG).

    ``counts`` gives images per split (``train``/``valid``/``test``) and grade 0-5; by default
    :func:`synth_counts` spreads ``n_images`` in DDR's proportions (imbalanced like DDR). Each
    image is ``size`` pixels high and up to 1.3x as wide (a dark border as on a real camera).
    Deterministic under ``seed``. The folder appears whole (built aside, then renamed); an
    existing ``DR_grading`` is replaced only with ``overwrite``. Returns the counts written.
    """
    counts = {s: [int(c) for c in v] for s, v in (counts or synth_counts(n_images)).items()}
    bad = [s for s, v in counts.items() if s not in DDR_SPLITS or len(v) != 6 or min(v) < 0]
    if bad:
        raise DatasetError(
            f"synth_fundus counts[{bad[0]!r}]: need a split of {', '.join(DDR_SPLITS)} with 6 counts >= 0 (grades 0-5)"
        )
    if not 32 <= size <= 2048:
        raise DatasetError(f"synth_fundus size {size}: use 32 to 2048 pixels")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise DatasetError(f"synth_fundus seed {seed}: use a whole number from 0 to 2**63 - 1")
    if sum(map(sum, counts.values())) > MAX_SYNTH_IMAGES:
        raise DatasetError(
            f"synth_fundus: {sum(map(sum, counts.values())):,d} images; write at most {MAX_SYNTH_IMAGES:,d}"
        )
    out_dir = Path(out_dir)
    final = out_dir / "DR_grading"
    if final.exists() and not overwrite:
        raise DatasetError(f"{final}: already exists; choose another folder or pass overwrite=True")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=".DR_grading.tmp-"))
    try:
        for s_i, split in enumerate(DDR_SPLITS):
            (tmp / split).mkdir()
            lines = []
            grades = np.repeat(np.arange(6), counts.get(split, [0] * 6))
            order = np.random.default_rng([seed, s_i]).permutation(
                len(grades)
            )  # grades shuffled over file names
            for i, g in enumerate(grades[order]):
                name = f"synth-{split}-{i:05d}.jpg"
                img = synth_image(int(g), size, np.random.default_rng([seed, s_i, i]))
                _save_jpeg(img, tmp / split / name, quality)
                lines.append(f"{name} {g}\n")
            (tmp / f"{split}.txt").write_text("".join(lines))
        info = {
            "generator": "digitlab.data.fundus.synth_fundus",
            "seed": seed,
            "size": size,
            "quality": quality,
            "counts": counts,
            "note": "synthetic drawings for tests and demonstrations, not real retinas",
        }
        (tmp / SYNTH_MARKER).write_text(json.dumps(info, indent=1))
        os.chmod(tmp, 0o755)
        if final.exists():
            old = Path(tempfile.mkdtemp(dir=out_dir, prefix=".DR_grading.old-"))
            os.replace(final, old / "DR_grading")
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return counts


def _save_jpeg(img: np.ndarray, path: Path, quality: int) -> None:
    from PIL import Image

    Image.fromarray(img).save(path, format="JPEG", quality=quality, optimize=False)


@lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    return yy, xx


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid upsampled bicubically."""
    from PIL import Image

    coarse = rng.standard_normal((cells, max(2, round(cells * w / h)))).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((w, h), Image.Resampling.BICUBIC)) / 2


def synth_image(grade: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One synthetic fundus photograph of DR ``grade`` (0-4, or 5 for an ungradable one): uint8 (H, W, 3)."""
    h = size
    w = int(round(size * rng.uniform(1.0, 1.3)))
    yy, xx = _grid(h, w)
    r = size * rng.uniform(0.44, 0.51)  # above 0.5 the disc is clipped at top and bottom, as in many cameras
    cx, cy = w / 2 + rng.normal(0, 0.01 * size), h / 2 + rng.normal(0, 0.01 * size)
    d = np.hypot(xx - cx, yy - cy) / r
    side = rng.choice([-1.0, 1.0])  # left or right eye: the optic disc lies nasally
    od = (cx + side * 0.42 * r, cy + rng.normal(0, 0.04 * r))
    fovea = (cx - side * 0.08 * r, cy + rng.normal(0, 0.03 * r))

    # background: orange-red, textured, brighter at the centre (vignetting)
    base = np.array([rng.uniform(0.72, 0.92), rng.uniform(0.26, 0.40), rng.uniform(0.07, 0.15)], np.float32)
    shade = 1 + 0.06 * _smooth_noise(rng, h, w, 5) + 0.025 * _smooth_noise(rng, h, w, 24)
    shade *= 1 - 0.55 * np.minimum(d, 1.2) ** 2.2
    img = shade[..., None] * base
    # the fovea: a darker spot; the optic disc: a pale yellow disc with a brighter cup
    _blend_spot(img, fovea, 0.16 * r, 2, (0.0, 0.0, 0.0), 0.35)
    rod = r * rng.uniform(0.10, 0.13)
    _blend_spot(img, od, rod, 4, (1.0, 0.82, 0.52), 0.85)
    _blend_spot(img, od, 0.45 * rod, 2, (1.0, 0.95, 0.85), 0.6)

    s = size / 256
    for canvas, blur, colour, alpha in _draw_layers(
        grade if grade < 5 else int(rng.integers(0, 5)), size, (h, w), r, (cx, cy), od, fovea, rng
    ):
        _blend_canvas(img, canvas, blur * s, colour, alpha)

    img *= np.clip((1 - d) * (r / 1.5), 0, 1)[..., None]  # the camera's round aperture, 1.5 px soft edge
    if grade == 5:
        img = _degrade(img, size, rng)
    img *= 255
    img += rng.standard_normal(img.shape, dtype=np.float32) * 2.0 + 0.5  # sensor noise; +0.5 rounds below
    return np.clip(img, 0, 255).astype(np.uint8)


def _box(centre: tuple[float, float], radius: float, h: int, w: int) -> tuple[int, int, int, int]:
    x, y = centre
    return (
        max(0, int(y - radius)),
        min(h, int(y + radius) + 2),
        max(0, int(x - radius)),
        min(w, int(x + radius) + 2),
    )


def _blend_spot(
    img: np.ndarray, centre: tuple[float, float], radius: float, power: int, colour, alpha: float
) -> None:
    """Blend ``colour`` into ``img`` in place with opacity ``alpha * exp(-(dist / radius) ** power)``."""
    y0, y1, x0, x1 = _box(centre, 3 * radius, *img.shape[:2])
    yy, xx = np.ogrid[y0:y1, x0:x1]
    mask = alpha * np.exp(-((((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / radius**2) ** (power / 2)))
    sub = img[y0:y1, x0:x1]
    sub += (np.asarray(colour, np.float32) - sub) * mask[..., None].astype(np.float32)


def _blend_canvas(img: np.ndarray, canvas, blur: float, colour, alpha: float) -> None:
    """Blend ``colour`` into ``img`` in place where the Pillow mask ``canvas`` is drawn, softened by ``blur``."""
    from PIL import ImageFilter

    box = canvas.getbbox()
    if box is None:
        return
    m = int(3 * blur) + 2
    x0, y0 = max(0, box[0] - m), max(0, box[1] - m)
    x1, y1 = min(img.shape[1], box[2] + m), min(img.shape[0], box[3] + m)
    mask = np.asarray(canvas.crop((x0, y0, x1, y1)).filter(ImageFilter.GaussianBlur(blur)), np.float32) * (
        alpha / 255
    )
    sub = img[y0:y1, x0:x1]
    sub += (np.asarray(colour, np.float32) - sub) * mask[..., None]


def _draw_layers(
    grade: int,
    size: int,
    hw: tuple[int, int],
    r: float,
    centre: tuple[float, float],
    od: tuple[float, float],
    fovea: tuple[float, float],
    rng: np.random.Generator,
) -> list:
    """Vessels and lesions as (Pillow "L" mask, blur, RGB colour, opacity) layers."""
    from PIL import Image, ImageDraw

    h, w = hw
    n = {k: rng.poisson(v[grade]) for k, v in LESIONS.items()}
    if grade in MINIMUM:
        kind, least = MINIMUM[grade]
        n[kind] = max(n[kind], least)
    canvases = {k: Image.new("L", (w, h)) for k in ("vessels", "haem", "ma", "exudate", "cotton")}
    pens = {k: ImageDraw.Draw(v) for k, v in canvases.items()}
    s = size / 256  # lesion sizes are set for a 256-pixel image

    _vessel_network(pens["vessels"], od, _arcades(od, fovea, rng), size, r, centre, rng)
    for _ in range(n["new_vessels"]):  # fine tortuous tufts near the disc or along the arcades
        p0 = (od[0] + rng.normal(0, 0.2 * r), od[1] + rng.normal(0, 0.25 * r))
        for _ in range(int(rng.integers(6, 12))):
            angles = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.9, 12))
            pts = np.asarray(p0) + np.cumsum(np.c_[np.cos(angles), np.sin(angles)] * r / 60, axis=0)
            pens["vessels"].line([tuple(p) for p in pts], fill=255, width=max(1, round(1.5 * s)))

    pts = _points_in_disc(n["microaneurysms"], centre, 0.8 * r, rng)
    for (x, y), rad in zip(pts, rng.uniform(1.5, 2.5, len(pts)) * s):
        pens["ma"].ellipse([x - rad, y - rad, x + rad, y + rad], fill=255)
    pts = _points_in_disc(n["haemorrhages"], centre, 0.8 * r, rng)
    for (x, y), rad in zip(pts, rng.uniform(2.5, 7.0, len(pts)) * s):  # blots of a few overlapping ellipses
        for dx, dy, f in rng.normal(0, 0.4, (int(rng.integers(2, 5)), 3)):
            a, b = rad * (1 + 0.3 * f), rad * (1 - 0.3 * f)
            pens["haem"].ellipse(
                [x + dx * rad - a, y + dy * rad - b, x + dx * rad + a, y + dy * rad + b], fill=255
            )
    for (x, y), rad in zip(
        _points_in_disc(n["preretinal"], centre, 0.6 * r, rng), rng.uniform(12, 22, n["preretinal"]) * s
    ):
        pens["haem"].chord(
            [x - rad, y - 0.8 * rad, x + rad, y + 0.8 * rad], 0, 180, fill=255
        )  # flat top, round bottom
    for cx, cy in _points_in_disc(
        n["exudate_clusters"], fovea, 0.45 * r, rng
    ):  # hard exudates cluster near the macula
        for (x, y), rad in zip(
            rng.normal((cx, cy), 0.05 * r, (int(rng.integers(4, 12)), 2)), rng.uniform(1.0, 2.6, 12) * s
        ):
            pens["exudate"].ellipse([x - rad, y - rad, x + rad, y + rad], fill=255)
    pts = _points_in_disc(n["cotton_wool"], centre, 0.7 * r, rng)
    for (x, y), rad in zip(pts, rng.uniform(5, 10, len(pts)) * s):
        pens["cotton"].ellipse([x - rad, y - 0.7 * rad, x + rad, y + 0.7 * rad], fill=255)

    return [  # (mask, blur in pixels at 256, colour, opacity), drawn in this order
        (canvases["vessels"], 0.6, (0.42, 0.06, 0.05), 0.55),
        (canvases["haem"], 0.8, (0.38, 0.03, 0.03), 0.85),
        (canvases["ma"], 0.4, (0.40, 0.04, 0.04), 0.9),
        (canvases["exudate"], 0.4, (1.0, 0.88, 0.35), 0.9),
        (canvases["cotton"], 3.0, (0.96, 0.92, 0.82), 0.75),
    ]


def _arcades(
    od: tuple[float, float], fovea: tuple[float, float], rng: np.random.Generator
) -> list[tuple[float, float]]:
    """Start angle and bend per step of the four main vessels: two temporal arcades that leave the disc
    towards the macula and curve around it, and two nasal vessels that fan out the other way."""
    towards = float(np.arctan2(fovea[1] - od[1], fovea[0] - od[0]))
    out = []
    for u in (-1.0, 1.0):
        out.append((towards + u * rng.uniform(0.9, 1.2), -u * rng.uniform(0.015, 0.022)))
        out.append((towards + np.pi - u * rng.uniform(0.5, 0.8), -u * rng.uniform(0.0, 0.015)))
    return out


def _vessel_network(
    pen,
    od: tuple[float, float],
    arcades: list[tuple[float, float]],
    size: int,
    r: float,
    centre: tuple[float, float],
    rng: np.random.Generator,
    depth: int = 3,
) -> None:
    """The main vessels from the optic disc and their branches, one generation at a time.

    Each vessel is a random walk with a steady bend; all vessels of a generation are generated in
    one batch of arrays, and each branches 2-3 times into a thinner, shorter vessel.
    """
    length = r / 30  # step length in pixels
    n = len(arcades)
    start = np.tile(np.asarray(od, np.float64), (n, 1))
    angle0 = np.array([a for a, _ in arcades])
    bend = np.array([b for _, b in arcades])
    steps = rng.integers(38, 52, n)
    width = 3.2 * size / 256
    for level in range(depth + 1):
        m = int(steps.max())
        angles = (
            angle0[:, None] + bend[:, None] * np.arange(m) + np.cumsum(rng.normal(0, 0.06, (n, m)), axis=1)
        )
        pts = start[:, None, :] + np.cumsum(
            np.stack([np.cos(angles), np.sin(angles)], axis=2) * length, axis=1
        )
        ok = (np.hypot(pts[..., 0] - centre[0], pts[..., 1] - centre[1]) < 1.02 * r) & (
            np.arange(m) < steps[:, None]
        )
        lengths = np.where(ok.all(axis=1), m, np.argmin(ok, axis=1))  # up to the first step outside
        for i in np.flatnonzero(lengths >= 2):
            line = np.vstack([start[i], pts[i, : lengths[i]]]).ravel().tolist()
            pen.line(line, fill=255 if level == 0 else 220, width=max(1, round(width)), joint="curve")
        if level == depth:
            return
        # 2-3 branch points per vessel that is long enough, away from both of its ends
        per = rng.integers(2, 4, n)
        pick = (np.arange(3) < per[:, None]) & (lengths[:, None] > 5)
        vessel, slot = np.nonzero(pick)
        k = 2 + np.floor(rng.uniform(size=len(vessel)) * (lengths[vessel] - 4)).astype(int)
        n = len(vessel)
        if n == 0:
            return
        start = pts[vessel, k]
        angle0 = angles[vessel, k] + rng.choice([-1.0, 1.0], n) * rng.uniform(0.4, 0.9, n)
        bend = rng.normal(0, 0.02, n)
        steps = np.maximum(2, (steps[vessel] * rng.uniform(0.35, 0.6, n)).astype(int))
        width *= 0.7


def _points_in_disc(
    n: int, centre: tuple[float, float], radius: float, rng: np.random.Generator
) -> np.ndarray:
    rho = radius * np.sqrt(rng.uniform(0, 1, n))
    phi = rng.uniform(0, 2 * np.pi, n)
    return np.c_[centre[0] + rho * np.cos(phi), centre[1] + rho * np.sin(phi)]


def _degrade(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Make a photograph ungradable: out of focus, and under- or over-exposed or hazy."""
    from PIL import Image, ImageFilter

    u8 = Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    img = np.asarray(u8.filter(ImageFilter.GaussianBlur(size * rng.uniform(0.012, 0.025))), np.float32) / 255
    kind = rng.integers(0, 3)
    if kind == 0:
        return img * rng.uniform(0.2, 0.35)  # too dark
    if kind == 1:
        return np.clip(img * 1.8 + 0.25, 0, 1)  # over-exposed
    return img * 0.6 + 0.3 * (img.max(axis=2, keepdims=True) > 0.02)  # haze over the fundus
