"""IDX file format (the format of MNIST and Fashion-MNIST): read, write, validate.

Layout: 2 zero bytes, a dtype code byte, a byte with the number of dimensions, then one
big-endian uint32 per dimension, then the data in C order (big-endian for multi-byte types).
Files may be gzip-compressed (detected from the magic bytes, not the name).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from pathlib import Path

import numpy as np

from digitlab.exceptions import DatasetError
from digitlab.io import atomic_write_bytes

# dtype code -> numpy dtype (big-endian where it matters)
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {v.newbyteorder("="): k for k, v in IDX_DTYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"


CHUNK = 1 << 20  # bytes read or inflated per step
MAX_HEADER = 4 + 4 * 255  # magic (4 bytes) + up to 255 big-endian uint32 dimensions


def max_idx_bytes() -> int:
    """The largest IDX content this machine could hold: its physical memory (16 GiB where unknown).
    A header declaring more is corrupt or hostile and is refused before anything is allocated."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux/macOS
        return 16 << 30


def _header(
    data: bytes, name: str, partial: bool = False
) -> tuple[np.dtype, tuple[int, ...], int, int] | None:
    """``(dtype, shape, header bytes, total bytes)`` declared by the IDX header at the start of ``data``.

    With ``partial`` (streaming), None means "not enough bytes yet"; otherwise a short header is an
    error. The total is computed with Python integers (no overflow) and must fit :func:`max_idx_bytes`."""
    if len(data) < 4:
        if partial:
            return None
        raise DatasetError(
            f"{name}: only {len(data)} bytes, too short for an IDX header; replace the file with a fresh copy"
        )
    if data[0] != 0 or data[1] != 0:
        raise DatasetError(
            f"{name}: bad magic number {bytes(data[:4]).hex()} (IDX files start with two zero bytes); this is not an IDX file"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise DatasetError(
            f"{name}: unknown IDX dtype code 0x{code:02x} (expected one of {', '.join(hex(c) for c in IDX_DTYPES)}); the file is corrupt"
        )
    if ndim == 0:
        raise DatasetError(f"{name}: IDX header declares 0 dimensions; the file is corrupt")
    header = 4 + 4 * ndim
    if len(data) < header:
        if partial:
            return None
        raise DatasetError(
            f"{name}: truncated header ({len(data)} bytes, need {header}); replace the file with a fresh copy"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[code]
    total = header + math.prod(shape) * dtype.itemsize
    limit = max_idx_bytes()
    # Zero-length dimensions aside (numpy refuses those shapes too), the data must fit in memory.
    if math.prod(d or 1 for d in shape) * dtype.itemsize > limit:
        raise DatasetError(
            f"{name}: IDX header declares shape {shape}, more than this machine's {limit:,} bytes "
            "of memory could hold; the file is corrupt or not an IDX file"
        )
    return dtype, shape, header, total


def _inflate(fh, name: str) -> bytes:
    """Inflate a gzip stream chunk by chunk, stopping as soon as it outgrows what its IDX header declares
    (a decompression bomb costs at most one chunk more than the declared size)."""
    chunks: list[bytes] = []
    have, total, head, pending = 0, None, b"", b""
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        while True:
            if d.eof:
                rest = d.unused_data + pending + fh.read(CHUNK)
                if rest[:2] != GZIP_MAGIC:  # no further gzip member (concatenated .gz files are allowed)
                    if rest.strip(b"\0"):
                        raise DatasetError(
                            f"{name}: garbage after the gzip stream; replace the file with a fresh copy"
                        )
                    break
                d, pending = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS), rest
            buf = d.unconsumed_tail or pending or fh.read(CHUNK)
            pending = b""
            if not buf:
                break
            piece = d.decompress(buf, CHUNK)
            if not piece:
                continue
            chunks.append(piece)
            have += len(piece)
            if total is None:
                head = (head + piece)[:MAX_HEADER]
                found = _header(head, name, partial=True)
                total = found[3] if found else None
            if total is not None and have > total:
                raise DatasetError(
                    f"{name}: gzip content inflates past the {total:,} bytes its IDX header declares; "
                    "the file is corrupt (or a decompression bomb): replace it with a fresh copy"
                )
    except zlib.error as exc:
        raise DatasetError(
            f"{name}: gzip stream is corrupt ({exc}); replace the file with a fresh copy"
        ) from None
    if not d.eof:
        raise DatasetError(
            f"{name}: gzip stream is corrupt or truncated (it ends before its end marker); "
            "replace the file with a fresh copy"
        )
    data = b"".join(chunks)
    if total is None:
        _header(data, name)  # raises the header's problem (too short, truncated header)
    return data


def read_bytes(path: str | os.PathLike) -> bytes:
    """Return the (decompressed) bytes of an IDX file, gzip or raw.

    The header is checked first: a gzip file is inflated only up to the size its header declares, a
    raw file whose size disagrees with its header is refused before its body is read, and a header
    declaring more than the machine's memory is refused outright. Unreadable files are a DatasetError."""
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise DatasetError(
            f"{path}: file not found; check the path or run `digitlab data list` to see where datasets are looked for"
        )
    try:
        with open(path, "rb") as fh:
            if fh.read(2) == GZIP_MAGIC:
                fh.seek(0)
                return _inflate(fh, name)
            fh.seek(0)
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(MAX_HEADER)
            found = _header(head, name, partial=len(head) < size)
            if found is not None and found[3] > size:
                raise DatasetError(
                    f"{name}: file truncated: {size} bytes but header shape {found[1]} needs {found[3]}; "
                    "replace the file with a fresh copy"
                )
            return head + fh.read()
    except OSError as exc:  # permission denied, I/O error, a folder named like a file
        raise DatasetError(
            f"{path}: cannot be read ({exc.strerror or exc}); fix its permissions or replace it"
        ) from None


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array, validating magic, dtype code, dimensions and length."""
    dtype, shape, header, expected = _header(data, name)
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise DatasetError(
            f"{name}: file {problem}: {len(data)} bytes but header shape {shape} needs {expected}; replace the file with a fresh copy"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a native-endian numpy array."""
    return parse_idx(read_bytes(path), name=str(path))


def encode_idx(arr: np.ndarray) -> bytes:
    """Encode an array as IDX bytes."""
    arr = np.asarray(arr)
    key = arr.dtype.newbyteorder("=")
    if key not in _CODES:
        raise DatasetError(
            f"dtype {arr.dtype}: cannot be written as IDX; convert to uint8, int8, int16, int32, float32 or float64"
        )
    if arr.ndim == 0 or arr.ndim > 255:
        raise DatasetError(f"array with {arr.ndim} dimensions: IDX needs 1 to 255; reshape the array")
    code = _CODES[key]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, arr: np.ndarray, compress: bool | None = None) -> Path:
    """Write an array as an IDX file; gzip when ``compress`` or when the name ends in .gz."""
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    data = encode_idx(arr)
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    atomic_write_bytes(path, data)
    return path


def md5_of_content(path: str | os.PathLike) -> str:
    """MD5 of the decompressed content (the canonical checksum published for MNIST)."""
    return hashlib.md5(read_bytes(path)).hexdigest()


def check_pair(images: np.ndarray, labels: np.ndarray, name: str, n_classes: int | None = None) -> None:
    """Validate that an images/labels pair agree in count and labels are in range."""
    if images.ndim != 3:
        raise DatasetError(
            f"{name}: images have shape {images.shape}, expected (n, height, width); wrong file for images?"
        )
    if labels.ndim != 1:
        raise DatasetError(f"{name}: labels have shape {labels.shape}, expected (n,); wrong file for labels?")
    if len(images) != len(labels):
        raise DatasetError(
            f"{name}: {len(images)} images but {len(labels)} labels; the image and label files do not belong together"
        )
    if n_classes is not None and len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DatasetError(
            f"{name}: labels range {labels.min()}..{labels.max()}, expected 0..{n_classes - 1}; the label file is corrupt or from another dataset"
        )
