"""Image folders -> uint8 arrays, cached as memory-mapped ``.npy`` files.

Two layouts are read: one sub-folder per class (``root/<class>/*.png``), or a file list of
``path label`` lines. Files are decoded lazily with Pillow only when the cache misses, one at a
time (threads overlap the decoding), resized to a configured size, greyscale or RGB, and written
straight into a memory-mapped ``.npy``. The cache key is built from the file names, sizes and
modification times plus the preprocessing settings (an :class:`ImageSpec`): touching, replacing or
adding a file, or changing a setting, rebuilds the cache; nothing hashes gigabytes of pixels.

A file that cannot be decoded is a one-line :class:`DatasetError` naming it, or, with
``skip_bad_files=True``, a logged skip that is counted on the result (``n_skipped``, ``skipped``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from digitlab.exceptions import DatasetError
from digitlab.io import atomic_write_text

log = logging.getLogger("digitlab.data")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
CACHE_VERSION = 1  # bump when the decoding code changes what a given file and spec produce
FITS = ("stretch", "crop", "pad")
SKIP_HINT = "or set skip_bad_files = true to skip such files"


# ==================================================================================================
# Preprocessing settings: how one file becomes one array (part of the cache key)
# ==================================================================================================


@dataclass(frozen=True)
class ImageSpec:
    """How a file becomes an array. Every field is part of the cache key.

    Subclasses (e.g. :class:`digitlab.data.fundus.FundusSpec`) override :meth:`transform` and add
    fields; the class name is part of the key too.
    """

    size: int | tuple[int, int] = 32  # output size in pixels: an int for square, or (height, width)
    colour: bool = False  # True: RGB images (n, H, W, 3); False: greyscale (n, H, W)
    fit: str = "stretch"  # "stretch" to the size; "crop" the centre to its aspect first; "pad" with black to it first

    def __post_init__(self) -> None:
        h, w = self.hw
        if not (1 <= h <= 4096 and 1 <= w <= 4096):
            raise DatasetError(f"image size {self.size}: must be 1 to 4096 pixels per side")
        if self.fit not in FITS:
            raise DatasetError(f"image fit {self.fit!r}: unknown; choose one of {', '.join(FITS)}")

    @property
    def hw(self) -> tuple[int, int]:
        """Output ``(height, width)``."""
        return (
            (int(self.size), int(self.size)) if np.isscalar(self.size) else tuple(int(v) for v in self.size)
        )  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one output image: ``(H, W)`` or ``(H, W, 3)``."""
        return (*self.hw, 3) if self.colour else self.hw

    def key(self) -> str:
        return json.dumps(
            {"spec": type(self).__name__, "version": CACHE_VERSION, **asdict(self)}, sort_keys=True
        )

    def decode(self, path: str | os.PathLike):
        """Open and fully decode a file as an ``RGB`` or ``L`` Pillow image (JPEGs at a reduced scale
        that is still at least twice the output size). Raises whatever Pillow raises on a bad file."""
        from PIL import Image, ImageOps

        h, w = self.hw
        with Image.open(path) as im:
            im.draft("RGB" if self.colour else "L", (2 * w, 2 * h))
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I;16"):  # 16-bit greyscale: keep the top 8 bits, not a clip at 255
                im = Image.fromarray((np.asarray(im, dtype=np.uint16) >> 8).astype(np.uint8))
            return im.convert("RGB" if self.colour else "L")

    def transform(self, im) -> np.ndarray:
        """Fit and resize a decoded image to :attr:`shape` (uint8)."""
        return resize(fit_aspect(im, self.hw, self.fit), self.hw)

    def load(self, path: str | os.PathLike) -> np.ndarray:
        return self.transform(self.decode(path))


def fit_aspect(im, hw: tuple[int, int], fit: str):
    """Crop the centre of, or pad with black, a Pillow image to the aspect ratio of ``hw``."""
    from PIL import Image

    if fit == "stretch":
        return im
    h, w = hw
    W, H = im.size
    if fit == "crop":
        cw, ch = (min(W, round(H * w / h)), H) if W * h >= H * w else (W, min(H, round(W * h / w)))
        left, top = (W - cw) // 2, (H - ch) // 2
        return im.crop((left, top, left + cw, top + ch))
    pw, ph = (W, max(H, round(W * h / w))) if W * h >= H * w else (max(W, round(H * w / h)), H)
    canvas = Image.new(im.mode, (pw, ph))
    canvas.paste(im, ((pw - W) // 2, (ph - H) // 2))
    return canvas


def resize(im, hw: tuple[int, int]) -> np.ndarray:
    """Resize a Pillow image to ``(height, width)`` with an anti-aliased filter; return uint8."""
    from PIL import Image

    h, w = hw
    if im.size != (w, h):
        im = im.resize((w, h), Image.Resampling.LANCZOS if im.size[0] > w else Image.Resampling.BICUBIC)
    return np.asarray(im, dtype=np.uint8)


# ==================================================================================================
# Listing files: one folder per class, or a "path label" list
# ==================================================================================================


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _scandir(folder: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(folder))
    except OSError as exc:
        raise DatasetError(
            f"{folder}: cannot be listed ({exc.strerror or exc}); fix its permissions"
        ) from None


def scan_class_folders(
    root: str | os.PathLike, classes: Sequence[str] | None = None
) -> tuple[list[Path], list[str], list[str]]:
    """Image files of ``root/<class>/`` (sorted), their class names, and the classes in order.

    Files without an image extension and hidden files are ignored. ``classes`` fixes the class
    order (and which folders count); by default every sub-folder holding images, sorted by name.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder; pass a folder with one sub-folder of images per class")
    folders = [p for p in _scandir(root) if p.is_dir() and not p.name.startswith(".")]
    if classes is not None:
        missing = [c for c in classes if not (root / c).is_dir()]
        if missing:
            raise DatasetError(
                f"{root}: no folder for class {missing[0]!r}; every class needs a sub-folder of images"
            )
        folders = [root / c for c in classes]
    paths, labels = [], []
    for folder in folders:
        files = [p for p in _scandir(folder) if is_image_file(p)]
        paths += files
        labels += [folder.name] * len(files)
    found = list(classes) if classes is not None else sorted(set(labels))
    if not paths:
        raise DatasetError(
            f"{root}: no image files ({', '.join(IMAGE_EXTENSIONS[:4])}, ...) in any sub-folder; "
            "put the images of each class in a sub-folder named after the class"
        )
    return paths, labels, found


def read_file_list(
    list_file: str | os.PathLike,
    root: str | os.PathLike | None = None,
    *,
    check: Callable[[str], str | None] | None = None,
    skip_bad_files: bool = False,
) -> tuple[list[Path], list[str], list[tuple[str, str]]]:
    """Parse a list of ``path label`` lines (blank lines and ``#`` comments ignored).

    The path may contain spaces (the label is the last field); relative paths are resolved
    against ``root`` (default: the list's folder). ``check(label)`` returns an error text for a
    label that is not allowed, or ``None``. A malformed line, a refused label or a missing file
    is a :class:`DatasetError` naming the list file and line, or, with ``skip_bad_files``, a
    skip recorded as ``(where, why)`` in the third return value.
    """
    list_file = Path(list_file)
    base = Path(root) if root is not None else list_file.parent
    try:
        text = list_file.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    except FileNotFoundError:
        raise DatasetError(f"{list_file}: file list not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"{list_file}: cannot be read as a UTF-8 text file list ({exc}); fix or replace it"
        ) from None
    paths, labels, skipped = [], [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.rsplit(None, 1)
        path = base / fields[0]
        if len(fields) != 2:
            problem = "malformed line (expected 'path label')"
        elif check is not None and check(fields[1]):
            problem = check(fields[1])
        else:
            problem = None if path.is_file() else f"file {path} not found"
        if problem:
            where = f"{list_file}:{lineno}"
            if not skip_bad_files:
                raise DatasetError(f"{where}: {problem} in {line[:80]!r}; fix the line, {SKIP_HINT}")
            log.warning("skipping %s: %s", where, problem)
            skipped.append((where, problem))
            continue
        paths.append(path)
        labels.append(fields[1])
    return paths, labels, skipped


def label_order(labels: Iterable[str]) -> list[str]:
    """Distinct labels in order: numerically when every label is an integer, else by name."""
    uniq = set(labels)
    try:
        return sorted(uniq, key=int)
    except ValueError:
        return sorted(uniq)


# ==================================================================================================
# Decoding into the memory-mapped cache
# ==================================================================================================


@dataclass
class LoadedImages:
    """Images decoded from a list of files (possibly fewer, when bad files were skipped)."""

    images: np.ndarray  # (n_kept, H, W) or (n_kept, H, W, 3) uint8, memory-mapped when cached
    kept: np.ndarray  # int64 indices into the input file list of the images that decoded
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) per skipped file
    cache_file: Path | None = None
    from_cache: bool = False

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)


def default_cache_dir() -> Path:
    from digitlab.data.dataset import cache_home

    return cache_home() / "images"


def cache_key(paths: Sequence[str | os.PathLike], spec: ImageSpec) -> str:
    """Hash of the preprocessing settings and each file's absolute name, size and mtime (ns)."""
    h = hashlib.sha256(spec.key().encode())
    for p in paths:
        name = os.path.abspath(p)
        try:
            st = os.stat(name)
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{name}\0missing\n".encode())
    return h.hexdigest()


def load_images(
    paths: Sequence[str | os.PathLike],
    spec: ImageSpec | None = None,
    *,
    name: str = "images",
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    skip_bad_files: bool = False,
    n_jobs: int | None = None,
) -> LoadedImages:
    """Decode ``paths`` with ``spec`` into one uint8 array, through the memory-mapped cache.

    ``cache_dir`` defaults to ``$DIGITLAB_HOME/images``; ``use_cache=False`` decodes into memory.
    ``n_jobs`` threads decode in parallel (default: up to 8, the CPU count).
    """
    spec = spec or ImageSpec()
    paths = [str(p) for p in paths]
    if not use_cache:
        images = np.empty((len(paths), *spec.shape), np.uint8)
        kept, skipped = _decode_all(paths, spec, images, skip_bad_files, n_jobs)
        return LoadedImages(images[: len(kept)], kept, skipped)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(paths, spec)
    stem = f"{_safe(name)}-{key[:24]}"
    npy, meta = folder / f"{stem}.npy", folder / f"{stem}.json"
    hit = _read_cache(npy, meta, key, len(paths), spec)
    if hit is not None:
        return hit
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_orphans(folder)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".npy.tmp")
        os.close(fd)
    except OSError as exc:
        raise DatasetError(
            f"image cache folder {folder}: cannot be written ({exc.strerror or exc}); "
            "choose another cache folder or fix its permissions"
        ) from None
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), *spec.shape))
        kept, skipped = _decode_all(paths, spec, out, skip_bad_files, n_jobs)
        out.flush()
        del out
        if skipped:  # shrink to the images that decoded
            _compact(tmp, len(kept))
        os.chmod(tmp, 0o644)
        os.replace(tmp, npy)
    finally:
        Path(tmp).unlink(missing_ok=True)
    info = {
        "key": key,
        "n_files": len(paths),
        "shape": [len(kept), *spec.shape],
        "spec": json.loads(spec.key()),
        "skipped": [[int(i), f, why] for i, (f, why) in zip(_skipped_index(kept, len(paths)), skipped)],
    }
    atomic_write_text(meta, json.dumps(info, indent=0))  # written last: an entry without it is ignored
    log.info("cached %d images of %s in %s", len(kept), name, npy)
    return LoadedImages(np.load(npy, mmap_mode="r"), kept, skipped, npy, False)


@contextlib.contextmanager
def _strict_decoding():
    """Truncated files must fail to decode. WeasyPrint sets Pillow's process-wide
    ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` on import, which would silently pad a half file with
    grey; switch it off while we decode and restore it afterwards."""
    from PIL import ImageFile

    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def _decode_all(
    paths: list[str], spec: ImageSpec, out: np.ndarray, skip_bad_files: bool, n_jobs: int | None
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Decode each file into the next free row of ``out``; return the kept indices and the skips."""
    with _strict_decoding():
        return _decode_rows(paths, spec, out, skip_bad_files, n_jobs)


def _decode_rows(
    paths: list[str], spec: ImageSpec, out: np.ndarray, skip_bad_files: bool, n_jobs: int | None
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    kept, skipped = [], []
    n_jobs = n_jobs or min(8, os.cpu_count() or 1)
    chunk = 64 * n_jobs  # bounded memory, and a bad file stops the work soon
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        for start in range(0, len(paths), chunk):
            batch = paths[start : start + chunk]
            for i, (arr, problem) in enumerate(pool.map(lambda p: _decode_one(p, spec), batch), start):
                if problem is not None:
                    if not skip_bad_files:
                        raise DatasetError(
                            f"{paths[i]}: cannot be read as an image ({problem}); "
                            f"replace or delete the file, {SKIP_HINT}"
                        )
                    log.warning("skipping %s: %s", paths[i], problem)
                    skipped.append((paths[i], problem))
                    continue
                out[len(kept)] = arr
                kept.append(i)
            if len(paths) >= 1000:
                log.info("decoded %d of %d images", min(start + chunk, len(paths)), len(paths))
    return np.asarray(kept, np.int64), skipped


def _decode_one(path: str, spec: ImageSpec) -> tuple[np.ndarray | None, str | None]:
    from PIL import UnidentifiedImageError

    try:
        im = spec.decode(path)
    except UnidentifiedImageError:
        return None, "not an image format Pillow recognises"
    except OSError as exc:  # truncated data, permission denied, I/O error
        return None, exc.strerror or str(exc) or type(exc).__name__
    except Exception as exc:  # any other failure to decode a file is that file's fault too: name it
        return None, f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    arr = spec.transform(im)
    if arr.shape != spec.shape:
        raise DatasetError(
            f"{path}: preprocessing produced shape {arr.shape}, expected {spec.shape}; this is a bug in {type(spec).__name__}"
        )
    return arr, None


def _compact(tmp: str, n: int) -> None:
    """Rewrite the temporary ``.npy`` with only its first ``n`` rows (after skipped files)."""
    src = np.load(tmp, mmap_mode="r")
    fd, tmp2 = tempfile.mkstemp(dir=os.path.dirname(tmp), prefix=".compact.", suffix=".npy.tmp")
    os.close(fd)
    try:
        dst = np.lib.format.open_memmap(tmp2, mode="w+", dtype=np.uint8, shape=(n, *src.shape[1:]))
        for s in range(0, n, 1024):
            dst[s : min(n, s + 1024)] = src[s : min(n, s + 1024)]
        dst.flush()
        del dst, src
        os.replace(tmp2, tmp)
    finally:
        Path(tmp2).unlink(missing_ok=True)


def _remove_orphans(folder: Path, max_age_s: float = 6 * 3600) -> None:
    """Delete temporary files that killed runs left behind (old enough not to belong to a live one)."""
    now = time.time()
    for p in folder.glob(".*.npy.tmp"):
        try:
            if now - p.stat().st_mtime > max_age_s:
                p.unlink()
                log.info("removed %s, left by an interrupted run", p)
        except OSError:
            pass


def _skipped_index(kept: np.ndarray, n: int) -> np.ndarray:
    mask = np.ones(n, bool)
    mask[kept] = False
    return np.flatnonzero(mask)


def _read_cache(npy: Path, meta: Path, key: str, n_files: int, spec: ImageSpec) -> LoadedImages | None:
    if not (npy.is_file() and meta.is_file()):
        return None
    try:
        info = json.loads(meta.read_text())
        images = np.load(npy, mmap_mode="r")
        if (
            info["key"] != key
            or info["n_files"] != n_files
            or list(images.shape) != info["shape"]
            or images.shape[1:] != spec.shape
            or images.dtype != np.uint8
        ):
            raise ValueError("cache entry does not match its manifest")
        skipped_idx = [int(i) for i, _, _ in info["skipped"]]
        skipped = [(f, why) for _, f, why in info["skipped"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("image cache %s is damaged (%s); rebuilding it", npy, exc)
        return None
    kept = np.setdiff1d(np.arange(n_files), skipped_idx).astype(np.int64)
    for f, why in skipped:
        log.warning("skipped %s: %s (cached)", f, why)
    return LoadedImages(images, kept, skipped, npy, True)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "images"


# ==================================================================================================
# Whole folders and datasets
# ==================================================================================================


@dataclass
class ImageFolder:
    """Images and labels read from a folder or file list."""

    images: np.ndarray  # uint8 (n, H, W) or (n, H, W, 3), memory-mapped when cached
    labels: np.ndarray  # int64 indices into classes
    classes: list[str]
    paths: list[str]  # the file of each image
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file or list line, reason)
    cache_file: Path | None = None
    from_cache: bool = False

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)


def load_image_folder(
    root: str | os.PathLike,
    spec: ImageSpec | None = None,
    *,
    file_list: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    name: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    skip_bad_files: bool = False,
    n_jobs: int | None = None,
) -> ImageFolder:
    """Read a folder with one sub-folder per class, or the files of ``file_list`` (``path label``
    lines, paths relative to ``root``), into uint8 arrays through the cache.

    ``classes`` fixes the class order; a label outside it is a bad line. By default classes are
    the sub-folders by name, or the list's labels (numerically when all are integers).
    """
    root = Path(root)
    skipped: list[tuple[str, str]] = []
    if file_list is None:
        paths, labels, classes = scan_class_folders(root, classes)
    else:
        known = None if classes is None else set(classes)
        check = (
            None
            if known is None
            else (lambda lab: None if lab in known else f"label {lab!r} is not one of the classes")
        )
        paths, labels, skipped = read_file_list(file_list, root, check=check, skip_bad_files=skip_bad_files)
        if not paths:
            raise DatasetError(f"{file_list}: lists no usable image; add 'path label' lines")
        classes = list(classes) if classes is not None else label_order(labels)
    index = {c: i for i, c in enumerate(classes)}
    res = load_images(
        paths,
        spec,
        name=name or root.name,
        cache_dir=cache_dir,
        use_cache=use_cache,
        skip_bad_files=skip_bad_files,
        n_jobs=n_jobs,
    )
    y = np.asarray([index[labels[i]] for i in res.kept], np.int64)
    return ImageFolder(
        res.images,
        y,
        list(classes),
        [str(paths[i]) for i in res.kept],
        skipped + res.skipped,
        res.cache_file,
        res.from_cache,
    )


def guess_colour(paths: Sequence[str | os.PathLike], n: int = 8) -> bool:
    """True when any of the first ``n`` readable files is not greyscale (reads headers only)."""
    from PIL import Image

    for p in list(paths)[:n]:
        try:
            with Image.open(p) as im:
                if im.mode not in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
                    return True
        except Exception:
            continue
    return False


def load_folder_dataset(
    root: str | os.PathLike,
    *,
    size: int | tuple[int, int] = 32,
    colour: bool | None = None,
    fit: str = "stretch",
    test_fraction: float = 0.25,
    seed: int = 0,
    name: str | None = None,
    skip_bad_files: bool = False,
    cache_dir: str | os.PathLike | None = None,
    n_jobs: int | None = None,
):
    """A :class:`~digitlab.data.registry.Dataset` from an image folder.

    ``root`` holds one sub-folder per class, or ``train/`` and ``test/`` folders each laid out
    that way (the official split). Without them, a stratified ``test_fraction`` is held out with
    ``seed``. ``colour=None`` picks RGB when the first images are colour.
    """
    from digitlab.data.dataset import Dataset

    root = Path(root)
    name = name or root.name
    split = (root / "train").is_dir() and (root / "test").is_dir()
    parts = [scan_class_folders(root / s) for s in ("train", "test")] if split else [scan_class_folders(root)]
    classes = parts[0][2]
    if len(classes) < 2:
        where = root / "train" if split else root
        found = f"only the class folder {classes[0]!r}" if classes else "no class folders"
        raise DatasetError(
            f"{where}: {found}; a classification dataset needs at least 2 classes, one sub-folder "
            "of images per class"
        )
    for _paths, labels_, _ in parts[1:]:
        extra = sorted(set(labels_) - set(classes))
        if extra:
            raise DatasetError(
                f"{root / 'test'}: class folder {extra[0]!r} has no counterpart in {root / 'train'}; "
                "use the same class folders in both"
            )
    paths = [p for ps, _, _ in parts for p in ps]
    labels = [lab for _, ls, _ in parts for lab in ls]
    spec = ImageSpec(size=size, colour=guess_colour(paths) if colour is None else bool(colour), fit=fit)
    res = load_images(
        paths, spec, name=name, cache_dir=cache_dir, skip_bad_files=skip_bad_files, n_jobs=n_jobs
    )
    index = {c: i for i, c in enumerate(classes)}
    y = np.asarray([index[labels[i]] for i in res.kept], np.int64)
    meta = {
        "kind": "images",
        "description": f"images from the folder {root.name}, one sub-folder per class",
        "item_noun": "image",
        "ink_on_blank": False,
        "skipped_files": res.n_skipped,
        "cache_file": str(res.cache_file) if res.cache_file else "",
    }
    if split:
        n_train = int(np.searchsorted(res.kept, len(parts[0][0])))  # kept is sorted: train rows come first
        xtr, ytr, xte, yte = res.images[:n_train], y[:n_train], res.images[n_train:], y[n_train:]
    else:
        tr, te = _stratified_split(y, test_fraction, seed, root)
        xtr, ytr, xte, yte = res.images[tr], y[tr], res.images[te], y[te]
        meta["split"] = f"stratified {test_fraction:.0%} held out with seed {seed}"
    status = {"images": "unverified (no published checksums)"}
    return Dataset(name, xtr, ytr, xte, yte, classes, source=str(root), checksums=status, meta=meta)


def _stratified_split(
    y: np.ndarray, test_fraction: float, seed: int, root: Path
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise DatasetError(f"test_fraction {test_fraction}: must lie strictly between 0 and 1")
    counts = np.bincount(y)
    if len(y) == 0 or counts.min() < 2:
        raise DatasetError(
            f"{root}: a class has fewer than 2 images, too few to split into train and test; add images"
        )
    idx = np.arange(len(y))
    try:
        tr, te = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed)
    except ValueError as exc:
        raise DatasetError(
            f"{root}: cannot split {len(y)} images stratified with test_fraction {test_fraction} ({exc}); "
            "add images or change test_fraction"
        ) from None
    return np.sort(tr), np.sort(te)
