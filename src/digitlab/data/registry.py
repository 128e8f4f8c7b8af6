"""Dataset registry: name -> loader returning a :class:`Dataset` of uint8 images and int64 labels.

Registered names: ``mnist`` (bundled, offline), ``fashion-mnist`` (a data dir, Debian's
``dataset-fashion-mnist`` package, or the official mirror with checksum verification) and
``digits`` (scikit-learn's bundled 8x8 digits, for very fast runs).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import os
import urllib.request
import zlib
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np

from digitlab.data.dataset import Dataset, cache_home, pixel_stats  # noqa: F401  (public names of the data layer)
from digitlab.data.idx import check_pair, parse_idx, read_bytes
from digitlab.exceptions import DatasetError
from digitlab.io import atomic_write_bytes

SPLIT_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# MD5 of the decompressed content, as published with each dataset.
MNIST_MD5 = {
    "train_images": "6bbc9ace898e44ae57da46a324031adb",
    "train_labels": "a25bea736e30d166cdddb491f175f624",
    "test_images": "2646ac647ad5339dbf082846283269ea",
    "test_labels": "27ae3e4e09519cfbb04c329615203637",
}
FASHION_MD5 = {
    "train_images": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train_labels": "9018921c3c673c538a1fc5bad174d6f9",
    "test_images": "8181f5470baa50b63fa0f6fddb340f0a",
    "test_labels": "15d484375f8d13e6eb1aabb0c3f46965",
}
FASHION_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

# Dataset metadata for generic prose (see Dataset.meta).
MNIST_META = {
    "kind": "digits",
    "description": "handwritten digits, white ink on a black background, size-normalised and centred",
    "item_noun": "digit",
    "ink_on_blank": True,
    "canonical_orientation": True,
    "flip_preserves_label": False,
    "large_rotation_preserves_label": False,
    "label_swaps_under_rotation": [("6", "9")],
    "confusable_pairs": [("4", "9"), ("3", "5"), ("3", "8"), ("5", "8"), ("1", "7"), ("7", "9"), ("2", "7")],
    # Why two classes share a region of an embedding: the strokes they have in common (read by the embed task).
    "pair_reasons": [
        ("4", "9", "both are a loop or hook on top of a vertical stem"),
        ("7", "9", "a 9 with a thin or open loop is a 7 with a hooked top"),
        ("3", "5", "both end in the same lower bowl and differ only in the top stroke"),
        ("3", "8", "an 8 is a 3 whose left side is closed"),
        ("5", "8", "both have an S-like spine; an 8 closes both halves"),
        ("4", "7", "both have a long diagonal or vertical stroke with a bar across the top half"),
        ("1", "7", "a 7 with a short top bar is a slanted 1"),
        ("8", "9", "both have a closed upper loop over a downward stroke"),
        ("2", "3", "both start with the same top arc"),
        ("5", "6", "a 6 is a 5 whose lower bowl is closed"),
        ("0", "6", "a 6 is a 0 whose top is opened into a tail"),
    ],
}
FASHION_META = {
    "kind": "clothing",
    "description": "greyscale catalogue photographs of clothing, shoes and bags, upright and centred",
    "item_noun": "garment",
    "ink_on_blank": False,
    "canonical_orientation": True,
    "flip_preserves_label": True,
    "large_rotation_preserves_label": True,  # an upside-down boot is still a boot, though never seen upright-trained
    "label_swaps_under_rotation": [],
    "confusable_pairs": [
        ("T-shirt/top", "Shirt"),
        ("Pullover", "Coat"),
        ("Shirt", "Coat"),
        ("Pullover", "Shirt"),
        ("Sandal", "Sneaker"),
        ("Sneaker", "Ankle boot"),
    ],
    "pair_reasons": [
        ("Shirt", "T-shirt/top", "both are a torso with sleeves"),
        ("Pullover", "Coat", "both are long-sleeved tops of the same outline"),
        ("Shirt", "Coat", "both are long-sleeved tops of the same outline"),
        ("Shirt", "Pullover", "both are long-sleeved tops of the same outline"),
        ("Sneaker", "Sandal", "both are low shoes seen from the side"),
        ("Sneaker", "Ankle boot", "both are shoes seen from the side"),
    ],
}
DIGITS_META = {
    **MNIST_META,
    "description": "handwritten digits scanned at 8x8 pixels with 17 grey levels (scikit-learn)",
}


def _find_part(folder: Path, base: str) -> Path | None:
    for cand in (base + ".gz", base, base.replace("-idx", ".idx"), base.replace("-idx", ".idx") + ".gz"):
        if (folder / cand).is_file():
            return folder / cand
    return None


def load_idx_folder(
    folder: str | os.PathLike,
    name: str,
    classes: list[str],
    md5: dict[str, str] | None = None,
    meta: dict | None = None,
) -> Dataset:
    """Load the four IDX files of an MNIST-layout folder, verifying MD5s when given."""
    folder = Path(folder)
    arrays, status = {}, {}
    for part, base in SPLIT_FILES.items():
        path = _find_part(folder, base)
        if path is None:
            raise DatasetError(
                f"{folder}: missing {base}(.gz) for dataset {name!r}; put the four official IDX files in that folder"
            )
        try:
            data = read_bytes(path)
        except zlib.error as exc:  # a gzip whose deflate body is corrupt
            raise DatasetError(
                f"{path}: gzip stream is corrupt ({exc}); replace the file with a fresh copy"
            ) from None
        except OSError as exc:  # permission denied, I/O error
            raise DatasetError(
                f"{path}: cannot be read ({exc.strerror or exc}); fix its permissions or replace it"
            ) from None
        if md5 is not None:
            got = hashlib.md5(data).hexdigest()
            if got != md5[part]:
                raise DatasetError(
                    f"{path}: MD5 {got} does not match the published {md5[part]}; the file is corrupt or altered, replace it with a fresh copy"
                )
            status[part] = "ok"
        else:
            status[part] = "unverified"
        arrays[part] = parse_idx(data, name=str(path))
    xtr, ytr = arrays["train_images"], arrays["train_labels"].astype(np.int64)
    xte, yte = arrays["test_images"], arrays["test_labels"].astype(np.int64)
    check_pair(xtr, ytr, f"{folder} (train)", len(classes))
    check_pair(xte, yte, f"{folder} (test)", len(classes))
    return Dataset(
        name,
        xtr,
        ytr,
        xte,
        yte,
        classes,
        source=str(folder),
        checksums=status,
        meta=copy.deepcopy(meta or {}),
    )


def check_data_dir(data_dir: str | os.PathLike, dataset: str) -> Path:
    """An explicit data folder must exist and be a folder: it is used or refused, never replaced."""
    folder = Path(data_dir).expanduser()
    if not folder.exists():
        raise DatasetError(f"--data-dir {folder}: does not exist (dataset {dataset!r}); check the path")
    if not folder.is_dir():
        raise DatasetError(
            f"--data-dir {folder}: is a file, not a folder (dataset {dataset!r}); pass the folder that holds the data"
        )
    try:
        next(os.scandir(folder), None)
    except OSError as exc:
        raise DatasetError(
            f"--data-dir {folder}: cannot be read ({exc.strerror or exc}); fix its permissions"
        ) from None
    return folder


def bundled_mnist_dir() -> Path:
    return Path(str(resources.files("digitlab.data") / "bundled" / "mnist"))


def load_mnist(data_dir: str | os.PathLike | None = None) -> Dataset:
    """MNIST from the bundled copy, or from ``data_dir`` (which must hold the four IDX files)."""
    folder = check_data_dir(data_dir, "mnist") if data_dir else bundled_mnist_dir()
    return load_idx_folder(folder, "mnist", [str(i) for i in range(10)], MNIST_MD5, MNIST_META)


def _download_fashion(dest: Path) -> None:
    for part, base in SPLIT_FILES.items():
        url = FASHION_MIRROR + base + ".gz"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                data = resp.read()
        except OSError as exc:
            raise DatasetError(
                f"fashion-mnist: not found locally and the download of {url} failed ({exc}); "
                "install Debian's dataset-fashion-mnist or pass --data-dir with the four IDX files"
            ) from None
        import gzip

        if hashlib.md5(gzip.decompress(data)).hexdigest() != FASHION_MD5[part]:
            raise DatasetError(
                f"fashion-mnist: {url} downloaded with a wrong checksum; retry later or pass --data-dir"
            )
        atomic_write_bytes(dest / (base + ".gz"), data)


def fashion_candidates(data_dir: str | os.PathLike | None) -> list[Path]:
    """Folders searched for Fashion-MNIST: only ``data_dir`` (and its ``fashion-mnist/``) when given."""
    if data_dir:
        return [Path(data_dir), Path(data_dir) / "fashion-mnist"]
    return [FASHION_DEBIAN_DIR, cache_home() / "fashion-mnist"]


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Fashion-MNIST from ``data_dir`` (nothing else when it is given), else Debian's copy, the cache, or the mirror."""
    if data_dir:
        check_data_dir(data_dir, "fashion-mnist")
    for folder in fashion_candidates(data_dir):
        if _find_part(folder, SPLIT_FILES["train_images"]) is not None:
            return load_idx_folder(folder, "fashion-mnist", FASHION_CLASSES, FASHION_MD5, FASHION_META)
    if data_dir:
        raise DatasetError(
            f"--data-dir {data_dir}: no Fashion-MNIST IDX files ({SPLIT_FILES['train_images']}(.gz) ...) in it "
            "or in its fashion-mnist/ folder; put the four official files there, or drop --data-dir"
        )
    if not download:
        raise DatasetError(
            "fashion-mnist: files not found in "
            + ", ".join(map(str, fashion_candidates(data_dir)))
            + "; install Debian's dataset-fashion-mnist or pass --data-dir"
        )
    dest = cache_home() / "fashion-mnist"
    _download_fashion(dest)
    return load_idx_folder(dest, "fashion-mnist", FASHION_CLASSES, FASHION_MD5, FASHION_META)


def load_digits(data_dir: str | os.PathLike | None = None) -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images), rescaled to uint8 and split 75/25, stratified."""
    from sklearn.datasets import load_digits as _ld
    from sklearn.model_selection import train_test_split

    if data_dir:
        raise DatasetError(
            f"--data-dir {data_dir}: dataset 'digits' is bundled with scikit-learn and reads no folder; drop --data-dir"
        )
    d = _ld()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    return Dataset(
        "digits",
        xtr,
        ytr,
        xte,
        yte,
        [str(i) for i in range(10)],
        source="sklearn.datasets.load_digits",
        checksums={"all": "bundled with scikit-learn"},
        meta=copy.deepcopy(DIGITS_META),
    )


def load_ddr(data_dir: str | os.PathLike | None = None, **options) -> Dataset:
    """DDR diabetic-retinopathy grading photographs (see :func:`digitlab.data.fundus.load_ddr`)."""
    from digitlab.data import fundus

    if not data_dir:
        raise DatasetError(
            "dataset 'ddr' needs --data-dir: the folder holding DR_grading/ (or DR_grading itself); "
            "`digitlab data synth-fundus DIR` writes a synthetic one"
        )
    check_options("ddr", fundus.load_ddr, options)
    return fundus.load_ddr(check_data_dir(data_dir, "ddr"), **options)


def load_folder(data_dir: str | os.PathLike | None = None, **options) -> Dataset:
    """Any image folder, one sub-folder per class (see :func:`digitlab.data.folders.load_folder_dataset`)."""
    from digitlab.data import folders

    if not data_dir:
        raise DatasetError(
            "dataset 'folder' needs --data-dir: a folder with one sub-folder of images per class "
            "(or train/ and test/ folders laid out that way)"
        )
    check_options("folder", folders.load_folder_dataset, options)
    return folders.load_folder_dataset(check_data_dir(data_dir, "folder"), **options)


REGISTRY: dict[str, Callable[..., Dataset]] = {
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "digits": load_digits,
    "ddr": load_ddr,
    "folder": load_folder,
}
DESCRIPTIONS = {
    "mnist": "MNIST handwritten digits, 60k/10k 28x28 (bundled, verified by MD5)",
    "fashion-mnist": "Zalando Fashion-MNIST, 60k/10k 28x28 (Debian package, --data-dir, or official mirror)",
    "digits": "scikit-learn 8x8 digits, 1,347/450 (bundled with scikit-learn; very fast runs)",
    "ddr": "DDR diabetic-retinopathy grading, colour fundus photographs, grades 0-4 (--data-dir: the folder holding DR_grading)",
    "folder": "any image folder, one sub-folder per class, greyscale or colour (--data-dir)",
}


def load_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None, **options) -> Dataset:
    """Load a registered dataset by name (``mnist``, ``fashion-mnist``, ``digits``, ``ddr``, ``folder``).

    An explicit ``data_dir`` is used or refused with a :class:`DatasetError`, never replaced by another
    copy. ``options`` go to the dataset's loader (e.g. ``size=128, graham=True`` for ``ddr``).
    """
    if name not in REGISTRY:
        raise DatasetError(f"dataset {name!r}: unknown name; choose one of {', '.join(REGISTRY)}")
    loader = REGISTRY[name]
    check_options(name, loader, options)
    return loader(data_dir, **options)


def check_options(name: str, func: Callable, options: dict) -> None:
    """Refuse an option that ``func`` (a dataset loader) does not take, naming the ones it does."""
    params = inspect.signature(func).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return  # a wrapper that checks against the function it calls
    params = {
        k: p
        for k, p in list(params.items())[1:]  # the first parameter is the data folder
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    bad = [k for k in options if k not in params]
    if bad:
        raise DatasetError(
            f"dataset {name!r}: unknown option {bad[0]!r}; it takes " + (", ".join(params) or "no options")
        )


def verify_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Load (which checks every checksum) and return the per-file status."""
    return load_dataset(name, data_dir).checksums
