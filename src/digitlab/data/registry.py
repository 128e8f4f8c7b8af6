"""Dataset registry: name -> loader returning a :class:`Dataset` of uint8 images and int64 labels.

Registered names: ``mnist`` (bundled, offline), ``fashion-mnist`` (a data dir, Debian's
``dataset-fashion-mnist`` package, or the official mirror with checksum verification) and
``digits`` (scikit-learn's bundled 8x8 digits, for very fast runs).
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from digitlab.data.idx import atomic_write_bytes, check_pair, parse_idx, read_bytes
from digitlab.errors import DatasetError

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
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@dataclass
class Dataset:
    """An image-classification dataset with the official train/test split.

    Images are ``uint8`` arrays of shape ``(n, height, width)``; labels are ``int64`` in
    ``0..n_classes-1``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str = ""
    checksums: dict[str, str] = field(default_factory=dict)  # part -> "ok" / "unverified"

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def subset(self, train_idx: np.ndarray, test_idx: np.ndarray | None = None, name: str | None = None) -> "Dataset":
        """A smaller dataset with the given train (and test) indices, e.g. from :func:`stratified_subset`."""
        te = np.arange(len(self.y_test)) if test_idx is None else test_idx
        return Dataset(name or f"{self.name}-subset", self.x_train[train_idx], self.y_train[train_idx],
                       self.x_test[te], self.y_test[te], list(self.classes), self.source, dict(self.checksums))

    def fingerprint(self) -> str:
        """A short content hash of the whole dataset (keys the result cache)."""
        h = hashlib.sha256(self.name.encode())
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).data)
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        """Sizes, class counts and pixel statistics (for `data info` and the report)."""
        xtr = self.x_train
        return {
            "name": self.name,
            "source": self.source,
            "image_shape": list(self.image_shape),
            "n_train": int(len(self.y_train)),
            "n_test": int(len(self.y_test)),
            "n_classes": self.n_classes,
            "classes": list(self.classes),
            "train_class_counts": np.bincount(self.y_train, minlength=self.n_classes).tolist(),
            "test_class_counts": np.bincount(self.y_test, minlength=self.n_classes).tolist(),
            "pixel_mean": float(xtr.mean()),
            "pixel_std": float(xtr.std()),
            "pixel_min": int(xtr.min()),
            "pixel_max": int(xtr.max()),
            "fraction_zero_pixels": float((xtr == 0).mean()),
            "checksums": dict(self.checksums),
        }


def _find_part(folder: Path, base: str) -> Path | None:
    for cand in (base + ".gz", base, base.replace("-idx", ".idx"), base.replace("-idx", ".idx") + ".gz"):
        if (folder / cand).is_file():
            return folder / cand
    return None


def load_idx_folder(folder: str | os.PathLike, name: str, classes: list[str], md5: dict[str, str] | None = None) -> Dataset:
    """Load the four IDX files of an MNIST-layout folder, verifying MD5s when given."""
    folder = Path(folder)
    arrays, status = {}, {}
    for part, base in SPLIT_FILES.items():
        path = _find_part(folder, base)
        if path is None:
            raise DatasetError(f"{folder}: missing {base}(.gz) for dataset {name!r}; put the four official IDX files in that folder")
        data = read_bytes(path)
        if md5 is not None:
            got = hashlib.md5(data).hexdigest()
            if got != md5[part]:
                raise DatasetError(f"{path}: MD5 {got} does not match the published {md5[part]}; the file is corrupt or altered, replace it with a fresh copy")
            status[part] = "ok"
        else:
            status[part] = "unverified"
        arrays[part] = parse_idx(data, name=str(path))
    xtr, ytr = arrays["train_images"], arrays["train_labels"].astype(np.int64)
    xte, yte = arrays["test_images"], arrays["test_labels"].astype(np.int64)
    check_pair(xtr, ytr, f"{folder} (train)", len(classes))
    check_pair(xte, yte, f"{folder} (test)", len(classes))
    return Dataset(name, xtr, ytr, xte, yte, classes, source=str(folder), checksums=status)


def bundled_mnist_dir() -> Path:
    return Path(str(resources.files("digitlab.data") / "bundled" / "mnist"))


def load_mnist(data_dir: str | os.PathLike | None = None) -> Dataset:
    folder = Path(data_dir) if data_dir else bundled_mnist_dir()
    if data_dir and _find_part(folder, SPLIT_FILES["train_images"]) is None:
        folder = bundled_mnist_dir()
    return load_idx_folder(folder, "mnist", [str(i) for i in range(10)], MNIST_MD5)


def _download_fashion(dest: Path) -> None:
    for part, base in SPLIT_FILES.items():
        url = FASHION_MIRROR + base + ".gz"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                data = resp.read()
        except OSError as exc:
            raise DatasetError(
                f"fashion-mnist: not found locally and the download of {url} failed ({exc}); "
                "install Debian's dataset-fashion-mnist or pass --data-dir with the four IDX files") from None
        import gzip
        if hashlib.md5(gzip.decompress(data)).hexdigest() != FASHION_MD5[part]:
            raise DatasetError(f"fashion-mnist: {url} downloaded with a wrong checksum; retry later or pass --data-dir")
        atomic_write_bytes(dest / (base + ".gz"), data)


def fashion_candidates(data_dir: str | os.PathLike | None) -> list[Path]:
    cands = []
    if data_dir:
        cands += [Path(data_dir), Path(data_dir) / "fashion-mnist"]
    cands += [FASHION_DEBIAN_DIR, cache_home() / "fashion-mnist"]
    return cands


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    for folder in fashion_candidates(data_dir):
        if _find_part(folder, SPLIT_FILES["train_images"]) is not None:
            return load_idx_folder(folder, "fashion-mnist", FASHION_CLASSES, FASHION_MD5)
    if not download:
        raise DatasetError("fashion-mnist: files not found in " + ", ".join(map(str, fashion_candidates(data_dir)))
                           + "; install Debian's dataset-fashion-mnist or pass --data-dir")
    dest = cache_home() / "fashion-mnist"
    _download_fashion(dest)
    return load_idx_folder(dest, "fashion-mnist", FASHION_CLASSES, FASHION_MD5)


def load_digits(data_dir: str | os.PathLike | None = None) -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images), rescaled to uint8 and split 75/25, stratified."""
    from sklearn.datasets import load_digits as _ld
    from sklearn.model_selection import train_test_split

    d = _ld()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    return Dataset("digits", xtr, ytr, xte, yte, [str(i) for i in range(10)], source="sklearn.datasets.load_digits",
                   checksums={"all": "bundled with scikit-learn"})


def cache_home() -> Path:
    return Path(os.environ.get("DIGITLAB_HOME", Path.home() / ".cache" / "digitlab"))


REGISTRY: dict[str, Callable[..., Dataset]] = {
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "digits": load_digits,
}
DESCRIPTIONS = {
    "mnist": "MNIST handwritten digits, 60k/10k 28x28 (bundled, verified by MD5)",
    "fashion-mnist": "Zalando Fashion-MNIST, 60k/10k 28x28 (Debian package, --data-dir, or official mirror)",
    "digits": "scikit-learn 8x8 digits, 1,347/450 (bundled with scikit-learn; very fast runs)",
}


def load_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a registered dataset by name (``mnist``, ``fashion-mnist``, ``digits``)."""
    if name not in REGISTRY:
        raise DatasetError(f"dataset {name!r}: unknown name; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name](data_dir)


def verify_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Load (which checks every checksum) and return the per-file status."""
    return load_dataset(name, data_dir).checksums
