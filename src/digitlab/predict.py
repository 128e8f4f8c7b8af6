"""Classify new images with a model a run saved: ``digitlab predict`` and ``digitlab models``.

A run saves its fitted models under ``results/<task>/models/<name>/`` (see
:mod:`digitlab.models.persist`). This module finds them, turns arbitrary pictures of a digit into the
model's input and prints predictions::

    from digitlab.predict import Predictor, read_inputs
    p = Predictor.from_run("runs/20261125-162955-mnist-quick")          # the run's best saved model
    names, images = read_inputs(["seven.jpg", "scans/"], p.image_shape)
    for r in p.predict(images, names):
        print(r.source, r.label, r.top)

Pictures (PNG, JPEG, ...) of any size, colour or grey, dark ink on light paper or the reverse, get
the MNIST preprocessing: greyscale; invert when the background is light; subtract the background and
crop to the ink; fit into a 20×20 box (for 28×28 images) keeping the aspect ratio; centre by the
centre of mass. ``.npy`` and IDX files hold arrays already in the dataset's format and are used as
they are when their image size matches the model's (otherwise each image is preprocessed as a picture).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.exceptions import DigitlabError, ModelError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm")
ARRAY_SUFFIXES = (".npy", ".idx", ".gz", "-ubyte")
MAX_PIXELS = 40_000_000  # a larger picture is refused (a decompression bomb is no digit)
MIN_CONTRAST = 24  # grey levels between background and ink below which an image counts as blank
MODEL_TASKS = ("classify",)  # tasks whose saved models predict looks at first (then any results/*/models)


# a saved model's declared image side above this is refused before anything is allocated
MAX_MODEL_SIDE = 4096


class PredictError(DigitlabError):
    """Bad input to predict: not an image, a blank image, a model that does not match."""


# ---------------------------------------------------------------------------------------------
# Preprocessing: a picture of a digit -> the dataset's image format
# ---------------------------------------------------------------------------------------------


def to_grey(img) -> np.ndarray:
    """A PIL image as float greyscale 0-255; transparency is composited over white paper."""
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    return np.asarray(img.convert("L"), dtype=np.float64)


def ink_map(grey: np.ndarray) -> np.ndarray:
    """Ink intensity 0-255 (bright ink on black) from a greyscale picture of either polarity.

    The background level is the median of the border pixels: a light border means dark ink on
    light paper, which is inverted. Raises :class:`PredictError` for an image without contrast.
    """
    if grey.size == 0 or min(grey.shape) < 2:
        raise PredictError("empty image")
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    ink = grey - background if background < 128 else background - grey
    ink = np.clip(ink, 0, None)
    top = float(np.percentile(ink, 99.5)) if ink.size > 400 else float(ink.max())
    if top < MIN_CONTRAST:
        raise PredictError(f"blank image (contrast {top:.0f} of 255 grey levels between paper and ink)")
    ink = np.clip(ink / top, 0, 1) * 255
    ink[ink < 0.2 * 255] = 0  # paper texture, shadows and JPEG noise are not ink
    return ink


def fit_digit(ink: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Crop to the ink, scale into the MNIST box (20/28 of the image) keeping the aspect ratio, and
    centre by the centre of mass; returns uint8 ``size``."""
    from PIL import Image

    rows, cols = np.nonzero(ink)
    if len(rows) == 0:
        raise PredictError("blank image (no ink after removing the background)")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = size
    box = max(1, round(min(h, w) * 20 / 28))
    scale = box / max(crop.shape)
    nh, nw = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = np.asarray(
        Image.fromarray(crop.astype(np.float32), mode="F").resize(
            (nw, nh), Image.LANCZOS if scale < 1 else Image.BILINEAR
        )
    )
    small = np.clip(small, 0, 255)
    canvas = np.zeros((h, w), np.float64)
    total = small.sum()
    cy, cx = (
        ((np.arange(nh)[:, None] * small).sum() / total, (np.arange(nw)[None, :] * small).sum() / total)
        if total > 0
        else ((nh - 1) / 2, (nw - 1) / 2)
    )
    top = int(
        round(h / 2 - cy)
    )  # MNIST's centre of mass sits at (14.0, 14.0) of 28x28 (measured: 13.99, 14.00)
    left = int(round(w / 2 - cx))
    top, left = min(max(top, 0), h - nh), min(max(left, 0), w - nw)  # keep the whole digit on the canvas
    canvas[top : top + nh, left : left + nw] = small
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def preprocess(img, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """A PIL image of a digit -> a ``size`` uint8 image in MNIST's format (white ink on black, centred)."""
    return fit_digit(ink_map(to_grey(img)), size)


# ---------------------------------------------------------------------------------------------
# Reading inputs: image files, folders, .npy and IDX arrays
# ---------------------------------------------------------------------------------------------


def _open_image(path: Path):
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        img = Image.open(path)
        img.load()
        return img
    except Image.DecompressionBombError:
        raise PredictError(f"{path}: image too large (over {MAX_PIXELS:,} pixels)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = (
            "not an image"
            if "cannot identify" in str(exc)
            else f"unreadable image ({str(exc).splitlines()[0][:80]})"
        )
        raise PredictError(f"{path}: {reason}") from None


def _array(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise PredictError(
                f"{path}: not a readable .npy array ({str(exc).splitlines()[0][:80]})"
            ) from None
    else:
        from digitlab.data.idx import read_idx

        try:
            arr = read_idx(path)
        except DigitlabError as exc:
            raise PredictError(f"{path}: {exc}") from None
    if arr.ndim == 2:
        arr = arr[None]
    if (
        arr.ndim != 3
        or arr.shape[0] == 0
        or min(arr.shape[1:]) < 2
        or not np.issubdtype(arr.dtype, np.number)
    ):
        raise PredictError(
            f"{path}: expected images of shape (n, height, width) or (height, width), got {arr.shape} "
            f"{arr.dtype}"
        )
    return arr


def _as_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    """An array of images as uint8 0-255 (floats in [0, 1] are scaled)."""
    a = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(a).all():
        raise PredictError(f"{path}: the array holds NaN or infinite values")
    if a.max() <= 1.0 and a.min() >= 0.0 and arr.dtype.kind == "f":
        a = a * 255
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _files(item: Path) -> list[Path]:
    if item.is_dir():
        found = sorted(
            p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + (".npy",)
        )
        if not found:
            raise PredictError(
                f"{item}: a folder without images ({', '.join(IMAGE_SUFFIXES[:3])}, ...) or .npy files"
            )
        return found
    if not item.exists():
        raise PredictError(f"{item}: no such file or folder")
    return [item]


def read_inputs(
    items: Sequence[str | os.PathLike], size: tuple[int, int] = (28, 28)
) -> tuple[list[str], np.ndarray]:
    """Read image files, folders of them, ``.npy`` and IDX files into ``(names, images)`` (uint8 ``(n, *size)``)."""
    names, images = [], []
    for item in items:
        for path in _files(Path(item)):
            low = path.name.lower()
            if (
                low.endswith(".npy")
                or low.endswith("-ubyte")
                or low.endswith("-ubyte.gz")
                or low.endswith(".idx")
            ):
                arr = _array(path)
                if tuple(arr.shape[1:]) == tuple(size):
                    batch = _as_uint8(arr, path)
                else:
                    batch = np.stack(
                        [_preprocess_array(a, path, i, size) for i, a in enumerate(_as_uint8(arr, path))]
                    )
                names += [f"{path}[{i}]" for i in range(len(batch))] if len(batch) > 1 else [str(path)]
                images.append(batch)
            else:
                try:
                    images.append(preprocess(_open_image(path), size)[None])
                except PredictError as exc:
                    msg = str(exc)
                    raise PredictError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
                names.append(str(path))
    if not names:
        raise PredictError("no input images; pass image files, folders, .npy or IDX files")
    return names, np.concatenate(images)


def _preprocess_array(a: np.ndarray, path: Path, i: int, size: tuple[int, int]) -> np.ndarray:
    try:
        return fit_digit(ink_map(a.astype(np.float64)), size)
    except PredictError as exc:
        raise PredictError(f"{path}[{i}]: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Finding saved models
# ---------------------------------------------------------------------------------------------


@dataclass
class SavedModel:
    name: str
    folder: Path
    kind: str  # "network" | "classic"
    task: str
    accuracy: float | None = None
    best: bool = False


def is_run_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "results").is_dir()


def latest_run(output_dir: str | os.PathLike = "runs") -> Path:
    """The newest run folder under ``output_dir`` that saved models."""
    root = Path(output_dir)
    runs = [p for p in root.iterdir() if is_run_dir(p)] if root.is_dir() else []
    runs = [p for p in runs if any((p / "results").glob("*/models/*/model.json"))]
    if not runs:
        raise PredictError(
            f"no run with saved models in {root}/; run `digitlab run` first or pass --run RUN_DIR"
        )
    return max(runs, key=lambda p: (p.name, p.stat().st_mtime))


def saved_models(run_dir: str | os.PathLike) -> list[SavedModel]:
    """The models a run saved (results/<task>/models/<name>/), with their test accuracy when known."""
    from digitlab.models.persist import NET_FORMAT, read_meta

    run = Path(run_dir)
    if not is_run_dir(run):
        raise PredictError(f"{run}: not a run folder (no results/); pass a folder written by `digitlab run`")
    out: list[SavedModel] = []
    tasks = sorted((run / "results").iterdir(), key=lambda p: (p.name not in MODEL_TASKS, p.name))
    for task in tasks:
        folder = task / "models"
        if not folder.is_dir():
            continue
        acc, best = _accuracies(task / "result.json")
        for m in sorted(p for p in folder.iterdir() if (p / "model.json").is_file()):
            try:
                kind = "network" if read_meta(m)["format"] == NET_FORMAT else "classic"
            except ModelError:
                kind = "unreadable"
            out.append(SavedModel(m.name, m, kind, task.name, acc.get(m.name), m.name == best))
    if out and not any(s.best for s in out):
        scored = [s for s in out if s.accuracy is not None]
        (max(scored, key=lambda s: s.accuracy) if scored else out[0]).best = True
    return out


def _accuracies(result_json: Path) -> tuple[dict[str, float], str | None]:
    try:
        metrics = json.loads(result_json.read_text(encoding="utf-8")).get("metrics", {})
    except (OSError, ValueError, AttributeError):
        return {}, None
    acc = metrics.get("accuracy") if isinstance(metrics, dict) else None
    acc = (
        {k: float(v) for k, v in acc.items() if isinstance(v, (int, float))} if isinstance(acc, dict) else {}
    )
    best = metrics.get("best_model") if isinstance(metrics, dict) else None
    return acc, best if isinstance(best, str) else None


def _run_image_shape(run: Path) -> tuple[tuple[int, int], list[str] | None, int]:
    """(image size, class labels, channels) of the run's dataset, from summary.json (MNIST's when unknown)."""
    try:
        ds = json.loads((run / "summary.json").read_text(encoding="utf-8")).get("dataset", {})
        shape = tuple(int(v) for v in ds.get("image_shape", (28, 28)))[:2]
        classes = [str(c) for c in ds.get("classes", [])] or None
        return (shape if len(shape) == 2 else (28, 28)), classes, int(ds.get("channels", 1) or 1)
    except (OSError, ValueError, AttributeError, TypeError):
        return (28, 28), None, 1


# ---------------------------------------------------------------------------------------------
# Predicting
# ---------------------------------------------------------------------------------------------


@dataclass
class Prediction:
    source: str
    label: str
    top: list[tuple[str, float]]  # (class, probability or score), best first
    kind: str = "probability"  # or "score" for models without probabilities (SVMs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.source,
            "prediction": self.label,
            "kind": self.kind,
            "top": [{"class": c, self.kind: round(float(p), 6)} for c, p in self.top],
        }


@dataclass
class Predictor:
    model: Any
    name: str
    image_shape: tuple[int, int] = (28, 28)
    classes: list[str] | None = None
    folder: Path | None = None
    info: dict = field(default_factory=dict)

    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike,
        image_shape: tuple[int, int] = (28, 28),
        classes: list[str] | None = None,
        name: str | None = None,
    ) -> Predictor:
        """Load a saved model folder (``model.json`` + weights)."""
        from digitlab.models.persist import read_meta
        from digitlab.models.zoo import load_model

        folder = Path(folder)
        meta = read_meta(folder)
        where = folder / "model.json"
        shape = meta.get("in_shape")
        if shape is not None:
            if not (
                isinstance(shape, list)
                and len(shape) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
            ):
                raise PredictError(
                    f"{where}: in_shape {str(shape)[:60]} is not [channels, height, width] of positive whole "
                    "numbers; the file is damaged, save the model again"
                )
            if shape[0] != 1:
                raise PredictError(
                    f"{folder}: a model of {shape[0]}-channel images; predict reads greyscale digit models"
                )
            if max(shape[1:]) > MAX_MODEL_SIDE:
                raise PredictError(
                    f"{where}: in_shape {shape} declares images of {shape[1]}x{shape[2]} pixels, more than "
                    f"{MAX_MODEL_SIDE} a side; the file is damaged or not digitlab's, save the model again"
                )
            image_shape = (shape[1], shape[2])
        norm = meta.get("normalisation")
        if meta.get("format") == "digitlab-net" and not (
            isinstance(norm, dict) and {"mean", "std"} <= set(norm)
        ):
            raise PredictError(
                f"{where}: no input normalisation (mean and std) recorded; the file is damaged or from an "
                "older digitlab, save the model again"
            )
        try:
            model = load_model(folder)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise PredictError(
                f"{where}: cannot rebuild the model ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:120]}); the file is damaged, save the model again"
            ) from None
        return cls(model, name or str(meta.get("name") or folder.name), image_shape, classes, folder, meta)

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, model: str | None = None) -> Predictor:
        """The run's model ``model`` (default: its best saved model)."""
        run = Path(run_dir)
        models = saved_models(run)
        if not models:
            raise PredictError(
                f"{run}: this run saved no models (results/*/models/ is empty); rerun it with a digitlab "
                "version that saves them"
            )
        if model is None:
            chosen = next(s for s in models if s.best)
        else:
            match = [s for s in models if s.name == model]
            if not match:
                raise PredictError(
                    f"model {model!r}: not saved by {run.name}; choose from {', '.join(s.name for s in models)}"
                )
            chosen = match[0]
        shape, classes, channels = _run_image_shape(run)
        if channels != 1:
            raise PredictError(
                f"{run}: a run on {channels}-channel images; predict reads greyscale digit models"
            )
        return cls.from_folder(chosen.folder, shape, classes, chosen.name)

    def _scores(self, images: np.ndarray) -> tuple[np.ndarray, str]:
        from digitlab.models.zoo import probabilities

        try:
            proba, scores = probabilities(self.model, images)
        except (ValueError, RuntimeError) as exc:
            raise PredictError(
                f"model {self.name!r} does not accept {images.shape[1]}x{images.shape[2]} images "
                f"({str(exc).splitlines()[0][:100]}); the model folder does not match its run"
            ) from None
        if proba is not None:
            return proba, "probability"
        if scores is not None:
            return scores, "score"
        raise PredictError(f"model {self.name!r}: gives neither probabilities nor scores")

    def predict(self, images: np.ndarray, names: Sequence[str] | None = None, k: int = 3) -> list[Prediction]:
        """Top-``k`` classes of each image (uint8 ``(n, H, W)`` in the dataset's format)."""
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if tuple(images.shape[1:]) != tuple(self.image_shape):
            raise PredictError(
                f"images of {images.shape[1:]} pixels; model {self.name!r} reads {self.image_shape}"
            )
        values, kind = self._scores(images)
        model_classes = [str(c) for c in getattr(self.model, "classes_", range(values.shape[1]))]
        if values.ndim != 2 or values.shape[1] != len(model_classes):
            raise PredictError(
                f"model {self.name!r}: {values.shape} outputs for {len(model_classes)} classes"
            )
        labels = model_classes
        if (
            self.classes
            and all(c.isdigit() and int(c) < len(self.classes) for c in model_classes)
            and model_classes != self.classes
        ):
            labels = [self.classes[int(c)] for c in model_classes]
        names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
        out = []
        for name, row in zip(names, values):
            order = np.argsort(-row, kind="stable")[:k]
            out.append(Prediction(name, labels[order[0]], [(labels[j], float(row[j])) for j in order], kind))
        return out


def format_prediction(p: Prediction) -> str:
    """One line: ``input: 7  (7 0.981, 1 0.012, 9 0.004)``."""
    what = "p" if p.kind == "probability" else "score"
    top = ", ".join(f"{c} {v:.3f}" if math.isfinite(v) else f"{c} –" for c, v in p.top)
    return f"{p.source}: {p.label}  ({what}: {top})"


__all__ = [
    "Predictor",
    "Prediction",
    "PredictError",
    "SavedModel",
    "preprocess",
    "read_inputs",
    "saved_models",
    "latest_run",
    "is_run_dir",
    "format_prediction",
]
