import gzip

import numpy as np
import pytest

from digitlab.data.idx import encode_idx, md5_of_content, parse_idx, read_idx, write_idx
from digitlab.data.registry import MNIST_MD5, bundled_mnist_dir
from digitlab.exceptions import DatasetError


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [True, False])
def test_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=(7, 5, 3)) * 50).astype(dtype)
    path = write_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), arr)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz


def test_header_layout_matches_spec():
    data = encode_idx(np.zeros((2, 3), dtype=np.uint8))
    assert data[:4] == bytes([0, 0, 0x08, 2])
    assert data[4:12] == (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    assert len(data) == 12 + 6


def _valid() -> bytes:
    return encode_idx(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"\x01" + b[1:], "bad magic"),
        (lambda b: b[:2] + b"\x07" + b[3:], "dtype code"),
        (lambda b: b[:3] + b"\x00" + b[4:], "0 dimensions"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "trailing"),
        (lambda b: b[:6], "truncated header"),
        (lambda b: b[:2], "too short"),
    ],
)
def test_corruptions_raise_one_line_errors(tmp_path, mutate, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(mutate(_valid()))
    with pytest.raises(DatasetError, match=message) as err:
        read_idx(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text


def test_corrupt_gzip_and_missing_file(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(_valid())[:-10])
    with pytest.raises(DatasetError, match="gzip"):
        read_idx(path)
    with pytest.raises(DatasetError, match="not found"):
        read_idx(tmp_path / "missing.gz")


def test_parse_rejects_non_idx_text():
    with pytest.raises(DatasetError):
        parse_idx(b"hello world, not idx", "text")


def test_bundled_mnist_matches_published_md5():
    folder = bundled_mnist_dir()
    for part, base in [
        ("train_images", "train-images-idx3-ubyte"),
        ("train_labels", "train-labels-idx1-ubyte"),
        ("test_images", "t10k-images-idx3-ubyte"),
        ("test_labels", "t10k-labels-idx1-ubyte"),
    ]:
        assert md5_of_content(folder / (base + ".gz")) == MNIST_MD5[part]
