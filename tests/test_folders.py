"""Image-folder loader: layouts, decoding, bad files, the memory-mapped cache, colour datasets."""

import os

import numpy as np
import pytest
from PIL import Image

from digitlab.data import load_dataset
from digitlab.data.dataset import Dataset
from digitlab.data.folders import (
    ImageSpec,
    cache_key,
    load_folder_dataset,
    load_image_folder,
    load_images,
    read_file_list,
)
from digitlab.exceptions import DatasetError

COLOURS = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}


def make_folder(root, per_class=3, size=(12, 10), ext="png"):
    """root/<colour>/<i>.<ext>: flat images of the class colour with a little noise."""
    rng = np.random.default_rng(0)
    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = np.clip(np.array(rgb) + rng.integers(-3, 4, (*size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / name / f"{i}.{ext}")
    return root


def entries(cache_dir):
    return sorted(p.name for p in cache_dir.iterdir())


def test_class_folders_colour_and_grey(tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "red" / "notes.txt").write_text("not an image, and not listed")
    res = load_image_folder(root, ImageSpec(size=8, colour=True), cache_dir=tmp_path / "c")
    assert res.classes == ["blue", "green", "red"] and res.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert res.images.shape == (9, 8, 8, 3) and res.images.dtype == np.uint8 and res.n_skipped == 0
    for img, y in zip(res.images, res.labels):  # each image keeps its class colour through the resize
        assert np.abs(img.reshape(-1, 3).mean(0) - COLOURS[res.classes[y]]).max() < 6
    grey = load_image_folder(root, ImageSpec(size=(6, 5)), cache_dir=tmp_path / "c")
    assert grey.images.shape == (9, 6, 5)
    assert abs(int(grey.images[6].mean()) - round(0.299 * 255)) <= 3  # red -> ITU-R 601 luma


def test_fit_modes_keep_aspect(tmp_path):
    wide = np.zeros((10, 40), np.uint8)
    wide[:, 15:25] = 255  # a bright centre stripe
    Image.fromarray(wide).save(tmp_path / "wide.png")
    crop = ImageSpec(size=10, fit="crop").load(tmp_path / "wide.png")
    pad = ImageSpec(size=8, fit="pad").load(tmp_path / "wide.png")
    assert crop.shape == (10, 10) and crop[:, 2:8].min() > 200  # the centre square is the stripe
    assert (
        pad.shape == (8, 8) and pad[0].max() < 30 and pad[4, 3:5].min() > 150
    )  # black bands above and below
    with pytest.raises(DatasetError, match="fit"):
        ImageSpec(fit="squash")


def test_sixteen_bit_png_keeps_its_range(tmp_path):
    arr = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    out = ImageSpec(size=8).load(tmp_path / "deep.png")
    assert out.min() == 0 and out.max() == 255


def test_file_list_with_spaces_comments_and_bad_lines(tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "blue" / "with space.png").write_bytes((root / "blue" / "0.png").read_bytes())
    lst = tmp_path / "list.txt"
    lst.write_text("# path label\nblue/with space.png 2\n\ngreen/0.png 10\nred/1.png 2\n")
    res = load_image_folder(root, ImageSpec(size=4), file_list=lst, cache_dir=tmp_path / "c")
    assert res.classes == ["2", "10"] and res.labels.tolist() == [0, 1, 0]  # integer labels sort numerically
    lst.write_text("blue/0.png 0\nthis-line-has-no-label\nmissing.png 1\n")
    with pytest.raises(DatasetError, match=r"list.txt:2: malformed line") as err:
        read_file_list(lst, root)
    assert "skip_bad_files" in str(err.value) and "\n" not in str(err.value)
    paths, labels, skipped = read_file_list(lst, root, skip_bad_files=True)
    assert (
        len(paths) == 1
        and [w for w, _ in skipped] == [f"{lst}:2", f"{lst}:3"]
        and "not found" in skipped[1][1]
    )
    lst.write_text("blue/0.png cat\n")
    with pytest.raises(DatasetError, match="list.txt:1: label 'cat' is not one of the classes"):
        load_image_folder(root, file_list=lst, classes=["0", "1"], use_cache=False)


@pytest.mark.parametrize("damage", ["garbage", "truncated_png", "truncated_jpeg", "empty"])
def test_bad_file_is_one_line_error_naming_it(tmp_path, damage):
    root = make_folder(tmp_path / "imgs", ext="jpg" if damage == "truncated_jpeg" else "png")
    good = next((root / "green").iterdir())
    bad = root / "green" / f"bad{good.suffix}"
    data = good.read_bytes()
    bad.write_bytes(
        {"garbage": b"this is not an image at all", "empty": b""}.get(damage, data[: len(data) // 2])
    )
    with pytest.raises(DatasetError) as err:
        load_image_folder(root, cache_dir=tmp_path / "c")
    msg = str(err.value)
    assert str(bad) in msg and "skip_bad_files" in msg and "\n" not in msg
    assert not any((tmp_path / "c").iterdir())  # no cache entry, no temporary file left behind


def test_truncated_file_is_refused_even_after_weasyprint_is_imported(tmp_path):
    """WeasyPrint switches on Pillow's LOAD_TRUNCATED_IMAGES for the whole process when imported."""
    import weasyprint  # noqa: F401
    from PIL import ImageFile

    root = make_folder(tmp_path / "imgs")
    data = (root / "red" / "0.png").read_bytes()
    (root / "red" / "0.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="0.png"):
        load_image_folder(root, cache_dir=tmp_path / "c")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for the library that set it


def test_skip_bad_files_counts_and_remembers(tmp_path, caplog):
    root = make_folder(tmp_path / "imgs")
    (root / "blue" / "x.png").write_bytes(b"garbage")
    data = (root / "red" / "0.png").read_bytes()
    (root / "red" / "y.png").write_bytes(data[:40])
    res = load_image_folder(root, ImageSpec(size=5), cache_dir=tmp_path / "c", skip_bad_files=True)
    assert res.n_skipped == 2 and res.images.shape == (9, 5, 5) and len(res.labels) == 9
    assert {os.path.basename(f) for f, _ in res.skipped} == {"x.png", "y.png"}
    assert all("y.png" not in p and "x.png" not in p for p in res.paths)
    assert "skipping" in caplog.text
    again = load_image_folder(root, ImageSpec(size=5), cache_dir=tmp_path / "c", skip_bad_files=True)
    assert again.from_cache and again.n_skipped == 2 and np.array_equal(again.labels, res.labels)
    assert np.array_equal(again.images, res.images)


def test_cache_reused_then_invalidated_by_mtime_size_and_settings(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "imgs")
    spec, cache = ImageSpec(size=6, colour=True), tmp_path / "c"
    first = load_image_folder(root, spec, cache_dir=cache)
    assert not first.from_cache and isinstance(first.images, np.memmap) and first.cache_file.suffix == ".npy"
    assert [n for n in entries(cache) if n.startswith(".")] == []  # temporary files renamed or removed

    def no_decoding(self, path):
        raise AssertionError("a cache hit must not decode any file")

    with monkeypatch.context() as m:
        m.setattr(ImageSpec, "decode", no_decoding)
        hit = load_image_folder(root, spec, cache_dir=cache)
    assert hit.from_cache and hit.cache_file == first.cache_file and np.array_equal(hit.images, first.images)

    f = root / "green" / "1.png"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: same bytes, new mtime
    assert not load_image_folder(root, spec, cache_dir=cache).from_cache
    Image.fromarray(np.full((12, 10, 3), 255, np.uint8)).save(f, optimize=True)  # new content and size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # ... even with the previous mtime
    changed = load_image_folder(root, spec, cache_dir=cache)
    assert not changed.from_cache and changed.images[4].min() > 240
    assert (
        cache_key([f], ImageSpec(size=6))
        != cache_key([f], ImageSpec(size=7))
        != cache_key([f], ImageSpec(size=7, colour=True))
    )
    assert not load_image_folder(root, ImageSpec(size=6, colour=True, fit="pad"), cache_dir=cache).from_cache


def test_damaged_cache_entry_is_rebuilt(tmp_path, caplog):
    root = make_folder(tmp_path / "imgs")
    first = load_image_folder(root, ImageSpec(size=6), cache_dir=tmp_path / "c")
    expected = np.array(first.images)
    del first
    npy = next((tmp_path / "c").glob("*.npy"))
    npy.write_bytes(npy.read_bytes()[:100])  # truncated
    again = load_image_folder(root, ImageSpec(size=6), cache_dir=tmp_path / "c")
    assert not again.from_cache and np.array_equal(again.images, expected) and "damaged" in caplog.text


def test_uncached_and_threaded_decoding_agree(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=5)
    paths = sorted(root.glob("*/*.png"))
    a = load_images(paths, ImageSpec(size=7, colour=True), use_cache=False, n_jobs=1)
    b = load_images(paths, ImageSpec(size=7, colour=True), cache_dir=tmp_path / "c", n_jobs=3)
    assert np.array_equal(a.images, b.images) and a.kept.tolist() == list(range(15))


def test_unreadable_file_named(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "imgs")
    locked = root / "red" / "2.png"
    real_open = Image.open

    def open_(path, *args, **kwargs):  # as for a file without read permission (root ignores chmod)
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", open_)
    with pytest.raises(DatasetError, match=r"2\.png: cannot be read as an image \(Permission denied\)"):
        load_image_folder(root, use_cache=False)
    assert load_image_folder(root, use_cache=False, skip_bad_files=True).n_skipped == 1


def test_folder_dataset_official_split_and_registry(tmp_path):
    make_folder(tmp_path / "set" / "train", per_class=4)
    make_folder(tmp_path / "set" / "test", per_class=2)
    ds = load_dataset("folder", tmp_path / "set", size=8, cache_dir=tmp_path / "c")
    assert ds.channels == 3 and ds.input_shape == (3, 8, 8) and ds.image_shape == (8, 8)  # colour guessed
    assert np.bincount(ds.y_train).tolist() == [4, 4, 4] and np.bincount(ds.y_test).tolist() == [2, 2, 2]
    assert ds.meta["kind"] == "images" and isinstance(ds.x_train, np.memmap)
    with pytest.raises(DatasetError, match="needs --data-dir"):
        load_dataset("folder")
    with pytest.raises(DatasetError, match="unknown option 'sise'"):
        load_dataset("folder", tmp_path / "set", sise=8)


def test_folder_dataset_stratified_holdout(tmp_path):
    make_folder(tmp_path / "flat", per_class=8)
    ds = load_folder_dataset(
        tmp_path / "flat", size=4, colour=False, test_fraction=0.25, seed=1, cache_dir=tmp_path / "c"
    )
    assert ds.x_train.shape == (18, 4, 4) and ds.channels == 1 and ds.input_shape == (1, 4, 4)
    assert np.bincount(ds.y_test).tolist() == [2, 2, 2]


def colour_dataset(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 5, 6, 3), dtype=np.uint8)
    y = np.arange(n) % 3
    return Dataset(
        "toy", x, y, x[:6].copy(), y[:6].copy(), ["a", "b", "c"], meta={"kind": "images", "nested": [1, 2]}
    )


def test_colour_dataset_shapes_subset_fingerprint_summary():
    ds = colour_dataset()
    assert ds.channels == 3 and ds.input_shape == (3, 5, 6) and ds.image_shape == (5, 6) and ds.is_colour
    sub = ds.subset(np.array([0, 4, 5]), np.array([1, 2]), "small")
    assert (
        sub.x_train.shape == (3, 5, 6, 3)
        and sub.y_train.tolist() == [0, 1, 2]
        and sub.x_test.shape == (2, 5, 6, 3)
    )
    assert sub.meta == ds.meta and sub.meta is not ds.meta
    sub.meta["nested"].append(3)
    assert ds.meta["nested"] == [1, 2]  # metadata is copied, not shared
    fp = ds.fingerprint()
    assert fp == colour_dataset().fingerprint() and fp != sub.fingerprint()
    changed = colour_dataset()
    changed.x_train[3, 2, 2, 1] ^= 1  # one channel of one pixel
    assert changed.fingerprint() != fp
    s = ds.summary()
    assert s["channels"] == 3 and s["input_shape"] == [3, 5, 6] and s["image_shape"] == [5, 6]
    assert np.allclose(s["channel_mean"], ds.x_train.reshape(-1, 3).mean(0))
    assert np.isclose(s["pixel_std"], ds.x_train.std()) and np.isclose(s["pixel_mean"], ds.x_train.mean())
    assert s["meta"]["kind"] == "images"


def test_greyscale_dataset_shapes(mnist):
    assert mnist.channels == 1 and mnist.input_shape == (1, 28, 28) and mnist.image_shape == (28, 28)
    assert mnist.meta["kind"] == "digits" and ("6", "9") in mnist.meta["label_swaps_under_rotation"]


def test_orphan_temporary_files_are_removed(tmp_path):
    root = make_folder(tmp_path / "imgs")
    cache = tmp_path / "c"
    cache.mkdir()
    old, fresh = cache / ".imgs-abc.123.npy.tmp", cache / ".imgs-abc.456.npy.tmp"
    old.write_bytes(b"half a file from a killed run")
    fresh.write_bytes(b"another process may be writing this one")
    os.utime(old, (0, 0))
    load_image_folder(root, cache_dir=cache)
    assert not old.exists() and fresh.exists()
