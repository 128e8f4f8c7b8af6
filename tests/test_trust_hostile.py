"""Issue 23: hostile inputs get one clear line and exit code 2, not a traceback."""

import json
import types

import numpy as np
import pytest
from PIL import Image

from digitlab import cli
from digitlab.exceptions import DatasetError


def _images(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (10, 10), dtype=np.uint8)).save(folder / f"{i}.png")


def _one_line_exit_2(argv, capsys, *words):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("digitlab: error:") and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def test_a_single_class_image_folder_is_refused(tmp_path, capsys):
    _images(tmp_path / "imgs" / "only")
    _one_line_exit_2(
        ["data", "info", "folder", "--data-dir", str(tmp_path / "imgs")], capsys, "at least 2 classes"
    )


def test_synth_fundus_refuses_a_negative_seed(tmp_path, capsys):
    _one_line_exit_2(
        ["data", "synth-fundus", str(tmp_path / "s"), "--n", "18", "--seed", "-1"], capsys, "seed -1"
    )
    assert not (tmp_path / "s" / "DR_grading").exists()


@pytest.mark.parametrize("case", ["empty", "ungradable"])
def test_ddr_without_training_images_is_refused(tmp_path, case):
    from digitlab.data.fundus import load_ddr

    root = tmp_path / "DR_grading"
    for split in ("train", "valid", "test"):
        (root / split).mkdir(parents=True)
    _images(root / "test")
    (root / "test.txt").write_text("".join(f"{i}.png {i % 5}\n" for i in range(4)))
    if case == "ungradable":
        _images(root / "train")
        (root / "train.txt").write_text("".join(f"{i}.png 5\n" for i in range(4)))
    else:
        (root / "train.txt").write_text("")
    (root / "valid.txt").write_text("")
    with pytest.raises(DatasetError, match="no training images") as err:
        load_ddr(tmp_path, size=8, cache_dir=tmp_path / "cache")
    assert "\n" not in str(err.value) and ("ungradable" in str(err.value)) == (case == "ungradable")


def test_compare_reads_a_damaged_predictions_file_as_a_problem(tmp_path):
    from digitlab.report.compare_runs import read_predictions

    (tmp_path / "predictions.npz").write_bytes(b"PK\x03\x04 not really a zip" * 10)
    run = types.SimpleNamespace(task_dir=lambda task: tmp_path)
    problems = []
    assert read_predictions(run, problems, "A") is None
    assert len(problems) == 1 and "unreadable" in problems[0]


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    from digitlab.data import load_dataset
    from digitlab.models.zoo import save_model
    from digitlab.train import CNNClassifier

    ds = load_dataset("digits")
    model = CNNClassifier(net="mlp", epochs=1).fit(ds.x_train[:100], ds.y_train[:100])
    run = tmp_path_factory.mktemp("pred") / "20990101-000000-t"
    save_model(run / "results" / "classify" / "models" / "mlp", "mlp", model)
    (run / "results" / "classify" / "result.json").write_text(
        json.dumps({"title": "classify", "metrics": {"accuracy": {"mlp": 0.5}, "best_model": "mlp"}})
    )
    (run / "summary.json").write_text(
        json.dumps({"name": "t", "dataset": ds.summary(), "tasks": [{"task": "classify"}]})
    )
    np.save(run.parent / "img.npy", (np.arange(64, dtype=np.uint8).reshape(1, 8, 8) * 4))
    return run


@pytest.mark.parametrize(
    "edit,words",
    [
        (lambda m: m.pop("normalisation"), ("normalisation",)),
        (lambda m: m.update(in_shape=[1, 100000, 100000]), ("100000x100000", "4096")),
        (lambda m: m.update(in_shape=[1, "x", 3]), ("in_shape",)),
        (lambda m: m.update(normalisation={"mean": 0.1}), ("normalisation",)),
    ],
)
def test_predict_refuses_a_damaged_model_description(saved_run, capsys, edit, words):
    path = saved_run / "results" / "classify" / "models" / "mlp" / "model.json"
    good = path.read_text()
    meta = json.loads(good)
    edit(meta)
    path.write_text(json.dumps(meta))
    try:
        _one_line_exit_2(
            ["predict", str(saved_run.parent / "img.npy"), "--run", str(saved_run)], capsys, *words
        )
    finally:
        path.write_text(good)
    assert cli.main(["predict", str(saved_run.parent / "img.npy"), "--run", str(saved_run)]) == 0
