"""DDR layout loader, fundus preprocessing, the synthetic generator, and refused data folders."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from digitlab.data import load_dataset
from digitlab.data.fundus import (
    DDR_CLASSES,
    FundusSpec,
    crop_fundus,
    find_ddr_root,
    fundus_bbox,
    graham,
    load_ddr,
    synth_counts,
    synth_fundus,
    synth_image,
)
from digitlab.exceptions import DatasetError

SMALL = {"train": [3, 2, 3, 2, 2, 2], "valid": [1, 1, 1, 1, 1, 1], "test": [2, 1, 2, 1, 1, 2]}


@pytest.fixture(scope="module")
def ddr_dir(tmp_path_factory):
    """A small synthetic DDR folder, written once for the module (read-only for the tests)."""
    out = tmp_path_factory.mktemp("ddr")
    synth_fundus(out, counts=SMALL, size=96, seed=7)
    return out


def test_synthetic_layout_and_counts(ddr_dir):
    root = ddr_dir / "DR_grading"
    for split, counts in SMALL.items():
        lines = (root / f"{split}.txt").read_text().split("\n")[:-1]
        grades = [int(line.split()[1]) for line in lines]
        assert np.bincount(grades, minlength=6).tolist() == counts
        assert all((root / split / line.split()[0]).is_file() for line in lines)
    with Image.open(next((root / "train").glob("*.jpg"))) as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size[1] == 96 and 96 <= im.size[0] <= 125
    assert json.loads((root / "SYNTHETIC.json").read_text())["seed"] == 7
    assert not [p for p in ddr_dir.iterdir() if p.name.startswith(".")]  # built aside, then renamed


def test_synthetic_is_deterministic_under_a_seed(tmp_path):
    def digest(folder):
        return {
            p.name: hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted((folder / "DR_grading").rglob("*.*"))
        }

    counts = {"train": [1, 1, 1, 0, 0, 1], "test": [1, 0, 0, 1, 1, 0]}
    synth_fundus(tmp_path / "a", counts=counts, size=64, seed=3)
    synth_fundus(tmp_path / "b", counts=counts, size=64, seed=3)
    synth_fundus(tmp_path / "c", counts=counts, size=64, seed=4)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")
    with pytest.raises(DatasetError, match="already exists"):
        synth_fundus(tmp_path / "a", counts=counts, size=64, seed=3)
    synth_fundus(tmp_path / "a", counts=counts, size=64, seed=4, overwrite=True)
    assert digest(tmp_path / "a") == digest(tmp_path / "c")


def test_synth_counts_follow_ddr_imbalance():
    c = synth_counts(1000)
    assert sum(map(sum, c.values())) == 1000 and [sum(v) for v in c.values()] == [500, 200, 300]
    train = np.array(c["train"])
    assert (
        train.min() >= 1 and train[0] > train[2] > train[4] > train[1] > train[3]
    )  # DDR: 0 > 2 > 4 ~ 5 > 1 > 3


def test_round_trip_through_the_loader(ddr_dir, tmp_path):
    ds = load_dataset("ddr", ddr_dir, size=48, cache_dir=tmp_path / "c")
    assert ds.name == "ddr-synthetic" and ds.classes == DDR_CLASSES and ds.meta["synthetic"]
    assert ds.x_train.shape == (
        sum(SMALL["train"][:5]) + sum(SMALL["valid"][:5]),
        48,
        48,
        3,
    )  # valid joins train
    assert (
        ds.input_shape == (3, 48, 48) and ds.x_train.dtype == np.uint8 and isinstance(ds.x_train, np.memmap)
    )
    assert np.bincount(ds.y_test, minlength=5).tolist() == SMALL["test"][:5]  # grade 5 left out
    assert ds.meta["ungradable_excluded"] == 2 + 1 + 2 and ds.meta["kind"] == "fundus"
    same = load_dataset("ddr", ddr_dir / "DR_grading", size=48, cache_dir=tmp_path / "c")  # DR_grading itself
    assert same.meta["cache_file"] == ds.meta["cache_file"] and same.fingerprint() == ds.fingerprint()
    six = load_ddr(ddr_dir, size=32, include_ungradable=True, valid="drop", cache_dir=tmp_path / "c")
    assert six.n_classes == 6 and np.bincount(six.y_train).tolist() == SMALL["train"]
    assert np.bincount(six.y_test).tolist() == SMALL["test"]
    corners = np.asarray(ds.x_train[:, :3, :3]).max()
    assert (
        corners < 40 and np.asarray(ds.x_train[:, 24, 24]).mean() > 60
    )  # cropped: dark corners, bright fundus


def test_graham_preprocessing_option(ddr_dir, tmp_path):
    ds = load_dataset("ddr", ddr_dir, size=40, graham=True, cache_dir=tmp_path / "c")
    x = np.asarray(ds.x_train, np.float32)
    assert abs(x[:, 20, 20].mean() - 128) < 40 and (x[:, 0, 0] == 128).all()  # grey around, centred on 128


def test_crop_finds_the_circle():
    img = np.zeros((100, 160, 3), np.uint8)
    yy, xx = np.mgrid[:100, :160]
    img[(yy - 52) ** 2 + (xx - 70) ** 2 <= 40**2] = (180, 60, 20)
    img[95:, 150:] = 8  # dim noise in a corner, below the threshold
    img[2:6, 140:156] = 255  # a bright label printed on the border, apart from the fundus
    top, bottom, left, right = fundus_bbox(img)  # the circle spans rows 12..92 and columns 30..110
    assert abs(top - 12) <= 1 and abs(bottom - 93) <= 1 and abs(left - 30) <= 1 and abs(right - 111) <= 1
    assert crop_fundus(img).shape == (bottom - top, right - left, 3)
    assert crop_fundus(np.zeros((20, 20), np.uint8)).shape == (20, 20)  # nothing found: unchanged
    real = synth_image(2, 128, np.random.default_rng(0))
    top, bottom, left, right = fundus_bbox(real)
    assert (
        0.85 * 128 <= right - left <= 1.03 * 128 and 0.85 * 128 <= bottom - top <= 128
    )  # the disc, not the frame
    out = FundusSpec(size=32).transform(Image.fromarray(real))
    assert out.shape == (32, 32, 3) and out[16, 16].sum() > 100


def test_graham_formula():
    img = np.full((21, 21, 3), 90, np.uint8)
    img[10, 10] = 130
    out = graham(img, sigma=2)
    assert out[10, 10, 0] > 200 and out[5, 10, 0] == 128 and out[0, 0, 0] == 128  # flat areas -> 128


def write_bad_ddr(ddr_dir, tmp_path):
    """A copy of the synthetic folder with a bad list line, a missing file, an unreadable image and a bad grade."""
    import shutil

    root = tmp_path / "bad" / "DR_grading"
    shutil.copytree(ddr_dir / "DR_grading", root)
    lines = (root / "train.txt").read_text().split("\n")[:-1]
    (root / "train" / lines[0].split()[0]).write_bytes(b"\xff\xd8\xff not really a jpeg")
    lines[1] = lines[1].split()[0] + " 7"
    lines[2] = "gone.jpg 1"
    lines[3] = "just-a-name.jpg"
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    return root, lines


def test_bad_entries_error_or_counted_skip(ddr_dir, tmp_path):
    root, lines = write_bad_ddr(ddr_dir, tmp_path)
    with pytest.raises(DatasetError, match=r"train\.txt:2: grade '7' is not one of 0-5"):
        load_ddr(root, size=32, cache_dir=tmp_path / "c")
    (root / "train.txt").write_text("\n".join(lines[2:]) + "\n")
    with pytest.raises(DatasetError, match=r"train\.txt:1: file .*gone\.jpg not found"):
        load_ddr(root, size=32, cache_dir=tmp_path / "c")
    (root / "train.txt").write_text("\n".join(lines[3:]) + "\n")
    with pytest.raises(DatasetError, match=r"train\.txt:1: malformed line"):
        load_ddr(root, size=32, cache_dir=tmp_path / "c")
    (root / "train.txt").write_text("\n".join(lines[:1] + lines[4:]) + "\n")
    with pytest.raises(DatasetError, match=r"train/synth-train-00000\.jpg: cannot be read as an image"):
        load_ddr(root, size=32, cache_dir=tmp_path / "c")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    ds = load_ddr(
        root, size=32, cache_dir=tmp_path / "c", skip_bad_files=True, include_ungradable=True, valid="drop"
    )
    assert ds.meta["skipped_files"] == 4 and len(ds.meta["skipped"]) == 4
    assert len(ds.y_train) == sum(SMALL["train"]) - 4


def test_synthetic_grades_are_learnable(tmp_path):
    """Lesion pixels grow with the grade; a linear model on three colour fractions beats chance by far."""
    from sklearn.linear_model import LogisticRegression

    counts = {"train": [24] * 5 + [0], "test": [12] * 5 + [0]}
    synth_fundus(tmp_path, counts=counts, size=128, seed=0)
    ds = load_ddr(tmp_path, size=64, cache_dir=tmp_path / "c")

    def features(x):
        x = np.asarray(x, np.float32) / 255
        r, g, b = x[..., 0], x[..., 1], x[..., 2]
        dark = (r < 0.5 * r.mean(axis=(1, 2), keepdims=True)) & (r > 0.05)
        return np.c_[dark.mean((1, 2)), ((g > 0.6) & (b > 0.25)).mean((1, 2)), (b > 0.5).mean((1, 2))]

    f = features(ds.x_train)
    lesions = f.sum(1)
    means = [lesions[ds.y_train == g].mean() for g in range(5)]
    assert means[0] < means[1] < means[2] < means[3]
    model = LogisticRegression(max_iter=2000).fit(f, ds.y_train)
    assert (model.predict(features(ds.x_test)) == ds.y_test).mean() > 0.3  # chance: 0.2


def test_ddr_data_dir_refused_not_replaced(tmp_path, ddr_dir):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="needs --data-dir"):
        load_dataset("ddr")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("ddr", tmp_path / "typo")
    with pytest.raises(DatasetError, match="is a file"):
        load_dataset("ddr", tmp_path / "a-file")
    with pytest.raises(DatasetError, match="no DDR grading layout"):
        load_dataset("ddr", tmp_path / "empty")
    (tmp_path / "half" / "DR_grading").mkdir(parents=True)
    (tmp_path / "half" / "DR_grading" / "train.txt").write_text("")
    with pytest.raises(DatasetError, match="missing test.txt"):
        find_ddr_root(tmp_path / "half")
    with pytest.raises(DatasetError, match="valid='both'"):
        load_ddr(ddr_dir, valid="both")
    with pytest.raises(DatasetError, match="unknown option 'resolution'"):
        load_dataset("ddr", ddr_dir, resolution=64)
