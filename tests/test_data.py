import shutil

import numpy as np
import pytest

from digitlab.data import load_dataset, stratified_subset, write_idx
from digitlab.data.registry import bundled_mnist_dir, load_idx_folder
from digitlab.exceptions import ConfigError, DatasetError


def test_mnist_shapes_and_checksums(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.x_test.shape == (10000, 28, 28)
    assert mnist.y_train.dtype == np.int64 and set(np.unique(mnist.y_train)) == set(range(10))
    assert all(v == "ok" for v in mnist.checksums.values())
    # published class counts of the MNIST test set
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_loading_refuses_altered_file(tmp_path):
    for f in bundled_mnist_dir().glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    labels = load_dataset("mnist").y_test.astype(np.uint8).copy()
    labels[0] = (labels[0] + 1) % 10  # a valid IDX file whose content is not the official one
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DatasetError, match="MD5"):
        load_dataset("mnist", tmp_path)


def test_mismatched_and_out_of_range(tmp_path):
    x = np.zeros((5, 4, 4), np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match="5 images but 4 labels"):
        load_idx_folder(tmp_path, "tiny", ["a", "b"])
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([0, 1, 0, 1, 7], np.uint8))
    with pytest.raises(DatasetError, match="labels range"):
        load_idx_folder(tmp_path, "tiny", ["a", "b"])


def test_unknown_dataset_and_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="unknown name"):
        load_dataset("cifar11")
    with pytest.raises(DatasetError, match="missing"):
        load_idx_folder(tmp_path, "x", ["a"])


def test_digits_dataset():
    ds = load_dataset("digits")
    assert ds.x_train.shape[1:] == (8, 8) and ds.x_train.max() == 255
    assert len(ds.y_train) + len(ds.y_test) == 1797


@pytest.mark.parametrize("per_class", [1, 10, 100])
def test_subset_per_class_exact(mnist, per_class):
    idx = stratified_subset(mnist.y_train, per_class=per_class, seed=3)
    assert np.bincount(mnist.y_train[idx], minlength=10).tolist() == [per_class] * 10
    assert len(np.unique(idx)) == len(idx)


@pytest.mark.parametrize("total", [1000, 1234, 10000])
def test_subset_total_exact_and_proportional(mnist, total):
    idx = stratified_subset(mnist.y_train, total=total, seed=0)
    counts = np.bincount(mnist.y_train[idx], minlength=10)
    assert counts.sum() == total
    expected = np.bincount(mnist.y_train) / len(mnist.y_train) * total
    assert np.all(np.abs(counts - expected) < 1)


def test_subset_seeded(mnist):
    a = stratified_subset(mnist.y_train, per_class=50, seed=1)
    b = stratified_subset(mnist.y_train, per_class=50, seed=1)
    c = stratified_subset(mnist.y_train, per_class=50, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_subset_bad_sizes(mnist):
    with pytest.raises(ConfigError):
        stratified_subset(mnist.y_train, per_class=10**6)
    with pytest.raises(ConfigError):
        stratified_subset(mnist.y_train, total=0)


def test_dataset_subset(mnist):
    tr = stratified_subset(mnist.y_train, per_class=5, seed=0)
    te = stratified_subset(mnist.y_test, per_class=2, seed=0)
    small = mnist.subset(tr, te, "tiny")
    assert small.name == "tiny" and small.classes == mnist.classes
    assert small.x_train.shape == (50, 28, 28) and np.array_equal(small.x_train[3], mnist.x_train[tr[3]])
    assert np.bincount(small.y_test).tolist() == [2] * 10
    assert len(mnist.subset(tr).y_test) == len(mnist.y_test)  # test split kept whole by default


# ---- an explicit data folder is used or refused, never replaced -------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "ddr", "folder"])
def test_bad_data_dir_is_refused(tmp_path, name):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"typo: does not exist"):
        load_dataset(name, tmp_path / "typo")
    with pytest.raises(DatasetError, match=r"a-file: is a file"):
        load_dataset(name, tmp_path / "a-file")
    with pytest.raises(DatasetError, match=str(tmp_path / "empty")):
        load_dataset(name, tmp_path / "empty")


def test_fashion_mnist_with_explicit_dir_never_falls_back(tmp_path, monkeypatch):
    from digitlab.data import registry

    system = tmp_path / "system"  # a system copy that would be found without --data-dir
    system.mkdir()
    (system / "train-images-idx3-ubyte.gz").write_bytes(b"")
    monkeypatch.setattr(registry, "FASHION_DEBIAN_DIR", system)
    loaded = []
    monkeypatch.setattr(registry, "load_idx_folder", lambda folder, *a, **k: loaded.append(folder))
    (tmp_path / "mine").mkdir()
    with pytest.raises(DatasetError, match="mine: no Fashion-MNIST IDX files"):
        load_dataset("fashion-mnist", tmp_path / "mine")
    assert loaded == [] and registry.fashion_candidates(tmp_path / "mine") == [
        tmp_path / "mine",
        tmp_path / "mine" / "fashion-mnist",
    ]
    load_dataset("fashion-mnist")
    assert loaded == [system]


def test_digits_takes_no_data_dir_and_options_are_checked(tmp_path):
    with pytest.raises(DatasetError, match="digits.*drop --data-dir"):
        load_dataset("digits", tmp_path)
    with pytest.raises(DatasetError, match="dataset 'mnist': unknown option 'size'"):
        load_dataset("mnist", size=64)


def test_mnist_from_a_good_data_dir(tmp_path):
    for f in bundled_mnist_dir().glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    ds = load_dataset("mnist", tmp_path)
    assert ds.source == str(tmp_path) and all(v == "ok" for v in ds.checksums.values())


def test_metadata_of_the_bundled_datasets():
    ds = load_dataset("digits")
    assert (
        ds.meta["kind"] == "digits"
        and ds.meta["ink_on_blank"]
        and ("6", "9") in ds.meta["label_swaps_under_rotation"]
    )
    assert ds.channels == 1 and ds.input_shape == (1, 8, 8)
    from digitlab.data.registry import FASHION_META

    assert FASHION_META["kind"] == "clothing" and FASHION_META["flip_preserves_label"]
    assert all(a in ds.classes and b in ds.classes for a, b in ds.meta["confusable_pairs"])


def test_corrupt_deflate_body_is_a_dataset_error(tmp_path):
    import gzip

    for f in bundled_mnist_dir().glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    good = gzip.compress(b"\0" * 5000, mtime=0)
    bad = good[:10] + bytes(b ^ 0xFF for b in good[10:30]) + good[30:]  # header intact, deflate body broken
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(bad)
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz: gzip stream is corrupt"):
        load_dataset("mnist", tmp_path)
