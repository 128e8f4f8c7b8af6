"""`digitlab predict` / `digitlab models`: the MNIST preprocessing of arbitrary pictures, saved models, bad input.

A small CNN and a logistic regression are trained on 8,000 MNIST images and saved into a run folder
the way a run saves them (results/classify/models/<name>/). Digits drawn here with PIL (both
polarities, several sizes) and scikit-learn's 8x8 digits turned into noisy JPEG "photographs" are
classified through the same path the command line uses.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from digitlab.cli import main
from digitlab.predict import PredictError, Predictor, preprocess, read_inputs, saved_models

pytestmark = pytest.mark.usefixtures("one_blas_thread")

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def draw_digit(d: str, size: int, dark_ink: bool, colour: bool = False, stroke: int = 0) -> Image.Image:
    """A digit written with a font (or a thick stroke width) on a canvas of ``size`` pixels wide."""
    paper, ink = ((250, 245, 235), (30, 30, 60)) if dark_ink else ((10, 10, 10), (235, 235, 235))
    im = Image.new("RGB", (size, int(size * 1.25)), paper)
    try:
        font = ImageFont.truetype(FONT, int(size * 0.8))
    except OSError:
        font = ImageFont.load_default(size=int(size * 0.8))
    ImageDraw.Draw(im).text(
        (size * 0.22, size * 0.08), d, fill=ink, font=font, stroke_width=stroke, stroke_fill=ink
    )
    return im if colour else im.convert("L")


def photo_of(img8: np.ndarray, i: int, rng: np.random.Generator) -> Image.Image:
    """scikit-learn's 8x8 digit (0-16) as a blurred, noisy colour JPEG of 64-200 pixels, half of them dark on light."""
    size = (64, 120, 200)[i % 3]
    im = Image.fromarray((img8 / 16 * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    x = np.asarray(im.filter(ImageFilter.GaussianBlur(size / 64)), float)
    if i % 2 == 0:
        x = 235 - 0.85 * x
    x = x + rng.normal(0, 6, x.shape)
    rgb = np.clip(np.stack([x, 0.97 * x, 0.92 * x], -1), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=80)
    buf.seek(0)
    return Image.open(buf)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, mnist):
    from digitlab.data.subsets import stratified_subset
    from digitlab.models.zoo import ZooSettings, run_model, save_model

    run = tmp_path_factory.mktemp("predict") / "20990101-000000-test"
    idx = stratified_subset(mnist.y_train, total=8000, seed=0)
    acc = {}
    for name in ("cnn", "logreg"):
        r = run_model(
            name,
            mnist.x_train[idx],
            mnist.y_train[idx],
            mnist.x_test[:2000],
            ZooSettings(cnn_recipe="fast", cnn_epochs=3),
            seed=0,
        )
        acc[name] = float(np.mean(r.y_pred == mnist.y_test[:2000]))
        save_model(run / "results" / "classify" / "models" / name, name, r.model)
    (run / "results" / "classify" / "result.json").write_text(
        json.dumps({"title": "classify", "metrics": {"accuracy": acc, "best_model": max(acc, key=acc.get)}})
    )
    (run / "summary.json").write_text(
        json.dumps({"name": "test", "dataset": mnist.summary(), "tasks": [{"task": "classify"}]})
    )
    assert acc["cnn"] > 0.95
    return run


def test_preprocessing_matches_mnist_format(mnist):
    # an MNIST digit photographed: 5x larger, dark on light paper, slightly blurred -> back to its 28x28 self
    corr = []
    for x in mnist.x_test[:50]:
        big = Image.fromarray(255 - x).resize((140, 140), Image.BICUBIC).filter(ImageFilter.GaussianBlur(1))
        back = preprocess(big).astype(float)
        assert back.shape == (28, 28)
        corr.append(np.corrcoef(back.ravel(), x.astype(float).ravel())[0, 1])
    assert np.mean(corr) > 0.92 and min(corr) > 0.6  # resampling thin strokes twice costs the rest
    # the same drawing in either polarity and at any size gives (nearly) the same input
    for d in "3478":
        base = preprocess(draw_digit(d, 120, dark_ink=True)).astype(float)
        for size, dark, colour in ((120, False, False), (40, True, True), (400, False, True)):
            other = preprocess(draw_digit(d, size, dark_ink=dark, colour=colour)).astype(float)
            assert np.corrcoef(base.ravel(), other.ravel())[0, 1] > 0.85, (
                d,
                size,
                dark,
            )  # font hinting differs by size
        rows, cols = np.nonzero(base)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 21  # fitted into the 20x20 box
        com = (
            np.array([(np.arange(28)[:, None] * base).sum(), (np.arange(28)[None, :] * base).sum()])
            / base.sum()
        )
        assert np.all(np.abs(com - 14.0) <= 0.5)  # centred by the centre of mass


def test_drawn_digits_and_photographed_sklearn_digits(run_dir):
    from sklearn.datasets import load_digits

    p = Predictor.from_run(run_dir)
    assert p.name == "cnn"
    drawn = [
        (d, draw_digit(d, size, dark, colour, stroke))
        for d in "0123456789"
        for size, dark, colour, stroke in ((48, True, False, 0), (160, False, True, 1), (300, True, True, 3))
    ]
    images = np.stack([preprocess(im) for _, im in drawn])
    pred = [r.label for r in p.predict(images)]
    right = np.mean([a == d for a, (d, _) in zip(pred, drawn)])
    assert right >= 0.8, list(zip(pred, [d for d, _ in drawn]))
    digits = load_digits()
    rng = np.random.default_rng(0)
    sel = np.arange(0, len(digits.target), 3)  # 599 images
    photos = np.stack([preprocess(photo_of(digits.images[i], i, rng)) for i in sel])
    acc = np.mean([int(r.label) == t for r, t in zip(p.predict(photos), digits.target[sel])])
    assert acc > 0.75, acc  # an MNIST-trained CNN on another population of writers, at 8x8 resolution


def test_cli_predict_and_models(run_dir, tmp_path, capsys):
    files = []
    for d, dark in (("7", True), ("2", False)):
        path = tmp_path / f"digit_{d}.jpg"
        draw_digit(d, 200, dark_ink=dark, colour=True).save(path)
        files.append(str(path))
    np.save(tmp_path / "batch.npy", np.zeros((2, 28, 28), np.uint8) + np.eye(28, dtype=np.uint8) * 255)
    assert main(["models", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "cnn" in out and "logistic regression" in out and "(best)" in out
    assert main(["predict", str(run_dir), *files, "--model", "logreg"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("model logreg") and len(lines) == 3 and all(": " in ln for ln in lines[1:])
    assert (
        main(
            ["predict", "--run", str(run_dir), "--json", "--top", "2", str(tmp_path / "batch.npy"), files[0]]
        )
        == 0
    )
    got = json.loads(capsys.readouterr().out)
    assert got["model"] == "cnn" and len(got["predictions"]) == 3
    assert all(len(p["top"]) == 2 and 0 <= p["top"][0]["probability"] <= 1 for p in got["predictions"])
    assert got["predictions"][2]["prediction"] == "7"
    # the newest run under --runs-dir is the default
    assert main(["predict", "--runs-dir", str(run_dir.parent), files[1]]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].split(": ")[1].startswith("2")


def test_bad_input_is_one_line_and_exit_2(run_dir, tmp_path, capsys):
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    Image.new("L", (60, 60), 255).save(tmp_path / "blank.png")
    Image.new("RGB", (60, 60), (40, 40, 40)).save(tmp_path / "dark_blank.png")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "bad_shape.npy", np.zeros((2, 3, 4, 5)))
    mismatch = tmp_path / "mismatch"
    (mismatch / "results" / "classify" / "models").mkdir(parents=True)
    import shutil

    shutil.copytree(
        run_dir / "results" / "classify" / "models" / "logreg",
        mismatch / "results" / "classify" / "models" / "logreg",
    )
    (mismatch / "summary.json").write_text(json.dumps({"dataset": {"image_shape": [8, 8], "channels": 1}}))
    (tmp_path / "no_models" / "results").mkdir(parents=True)
    good = str(tmp_path / "good.png")
    draw_digit("5", 80, True).save(good)
    cases = [
        [str(run_dir), str(tmp_path / "text.png")],
        [str(run_dir), str(tmp_path / "empty.jpg")],
        [str(run_dir), str(tmp_path / "blank.png")],
        [str(run_dir), str(tmp_path / "dark_blank.png")],
        [str(run_dir), str(tmp_path / "objects.npy")],
        [str(run_dir), str(tmp_path / "bad_shape.npy")],
        [str(run_dir), str(tmp_path / "missing.png")],
        [str(run_dir), str(tmp_path / "no_models")],  # a folder without images
        [str(run_dir), good, "--model", "rbf_svm"],
        [str(mismatch), good],
        ["--run", str(tmp_path / "no_models"), good],
        ["--run", str(tmp_path), good],
        ["--runs-dir", str(tmp_path / "none"), good],
    ]
    capsys.readouterr()
    for argv in cases:
        assert main(["predict", *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("digitlab: error:"), (argv, err)
    with pytest.raises(PredictError):
        read_inputs([str(tmp_path / "blank.png")])
    assert [m.name for m in saved_models(run_dir)] == ["cnn", "logreg"]
