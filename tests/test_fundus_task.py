"""The fundus grading task and its library: quadratic weighted kappa against scikit-learn, colour
augmentations, colour/texture features, learnable synthetic grades, and a ddr study through the runner."""

import numpy as np
import pytest
import torch
from sklearn.metrics import cohen_kappa_score

from digitlab.augment import AUGMENTATIONS, augment_images, get_augmentation
from digitlab.experiments import fundus as E
from digitlab.fundus_features import (
    downsample,
    feature_names,
    fundus_features,
    grading_metrics,
    quadratic_weighted_kappa,
    qwk_bootstrap,
)
from digitlab.report.build import build_reports
from digitlab.study.tasks import fundus as F

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def ddr_dir(tmp_path_factory):
    from digitlab.data import synth_fundus

    folder = tmp_path_factory.mktemp("ddr")
    synth_fundus(folder, 200, size=64, seed=0)
    return folder


@pytest.fixture(scope="module")
def ddr(ddr_dir, tmp_path_factory):
    from digitlab.data import load_ddr

    return load_ddr(ddr_dir, size=48, cache_dir=tmp_path_factory.mktemp("ddr-cache"))


# ---------------------------------------------------------------------------------------------
# Grading metrics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_quadratic_kappa_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, 300)
    noisy = np.clip(y + rng.integers(-2, 3, 300) * (rng.random(300) < 0.4), 0, 4)  # mostly right, some misses
    for pred in (noisy, rng.integers(0, 5, 300), np.full(300, 2), y):
        assert quadratic_weighted_kappa(y, pred, 5) == pytest.approx(
            cohen_kappa_score(y, pred, weights="quadratic"), abs=1e-12
        )
    assert quadratic_weighted_kappa(y, y, 5) == 1.0


def test_kappa_with_absent_grades_and_bootstrap():
    y = np.array([0, 0, 0, 2, 2, 4, 4, 4])  # grades 1 and 3 absent
    p = np.array([0, 0, 2, 2, 4, 4, 4, 0])
    assert quadratic_weighted_kappa(y, p, 5) == pytest.approx(
        cohen_kappa_score(y, p, weights="quadratic", labels=range(5))
    )
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 400)
    p = np.where(rng.random(400) < 0.7, y, rng.integers(0, 5, 400))
    boot = qwk_bootstrap(y, p, 5, n_boot=400, seed=0)
    assert boot["low"] < boot["qwk"] < boot["high"] and 0 < boot["se"] < 0.1
    m = grading_metrics(y, p, n_classes=5)
    assert m["qwk"] == pytest.approx(cohen_kappa_score(y, p, weights="quadratic"))
    assert m["accuracy"] == pytest.approx(np.mean(y == p))
    assert m["referable_sensitivity"] == pytest.approx(np.mean(p[y >= 2] >= 2))


# ---------------------------------------------------------------------------------------------
# Colour augmentations
# ---------------------------------------------------------------------------------------------


def test_every_augmentation_keeps_shape_dtype_and_layout_on_colour():
    x = np.random.default_rng(0).integers(0, 256, (5, 24, 24, 3), dtype=np.uint8)
    for name in AUGMENTATIONS:
        out = augment_images(x, name, seed=0, p=1.0)
        assert out.shape == x.shape and out.dtype == np.uint8, name
        first = augment_images(x.transpose(0, 3, 1, 2), name, seed=0, p=1.0)  # channels first: same images
        assert np.array_equal(first.transpose(0, 2, 3, 1), out), name
        t = torch.rand(4, 3, 16, 16)
        y = get_augmentation(name, p=1.0)(t, torch.Generator().manual_seed(0))
        assert y.shape == t.shape and y.dtype == t.dtype and 0 <= float(y.min()) and float(y.max()) <= 1, name
    assert np.array_equal(augment_images(x, "hflip", p=1.0), x[:, :, ::-1])  # channels stay with their pixel


def test_colour_jitter_changes_colour_and_is_identity_at_zero():
    x = np.random.default_rng(1).integers(30, 220, (6, 16, 16, 3), dtype=np.uint8)
    zero = augment_images(x, "colour_jitter", p=1.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)
    assert np.abs(zero.astype(int) - x).max() <= 1
    jittered = augment_images(x, "colour_jitter", seed=3, p=1.0)
    ratios = jittered.reshape(6, -1, 3).mean(1) / x.reshape(6, -1, 3).mean(1)
    assert (
        np.ptp(ratios, axis=1).max() > 0.01
    )  # channels scaled differently: a colour change, not only brightness
    assert AUGMENTATIONS["colour_jitter"].colour_only and not AUGMENTATIONS["hflip"].colour_only
    g = augment_images(x[..., 0], "colour_jitter", seed=3, p=1.0)  # greyscale: brightness and contrast only
    assert g.shape == x[..., 0].shape and g.dtype == np.uint8


# ---------------------------------------------------------------------------------------------
# Features, balancing, learnable grades
# ---------------------------------------------------------------------------------------------


def test_fundus_features_shape_and_grade_signal(ddr):
    from scipy.stats import spearmanr

    X, names = fundus_features(ddr.x_train, chunk=64)
    assert X.shape == (len(ddr.y_train), len(feature_names())) and names == feature_names()
    assert np.isfinite(X).all() and X.dtype == np.float32
    X2, _ = fundus_features(ddr.x_train[:10], chunk=3)  # chunking does not change the numbers
    np.testing.assert_allclose(X2, X[:10], rtol=1e-5, atol=1e-5)
    rho = {
        n: spearmanr(X[:, i], ddr.y_train).statistic
        for i, n in enumerate(names)
        if n.startswith(("dark_", "bright_"))
    }
    assert max(rho.values()) > 0.5  # more lesions with higher grades
    small = downsample(ddr.x_train[:4], 16)
    assert small.shape == (4, 16, 16, 3) and small.dtype == np.uint8


def test_oversampling_balances_every_grade():
    y = np.array([0] * 50 + [1] * 5 + [2] * 20 + [4] * 2)
    idx = E.oversample(y, seed=0)
    counts = np.bincount(y[idx], minlength=5)
    assert counts.tolist() == [50, 50, 50, 0, 50]
    assert set(np.arange(len(y))) <= set(idx.tolist())  # every original image is kept


def test_synthetic_grades_are_learnable_by_a_small_cnn(ddr):
    from digitlab.grid import fit_and_score
    from digitlab.train import TrainConfig

    bal = E.oversample(ddr.y_train, seed=0)
    x_tr, x_te = downsample(ddr.x_train, 32)[bal], downsample(ddr.x_test, 32)
    cfg = TrainConfig(epochs=1, min_steps=80, batch_size=32, lr=0.005, val_fraction=0.0, device="cpu")
    res = fit_and_score(
        "cnn",
        {"width": 8, "n_blocks": 3},
        x_tr,
        ddr.y_train[bal],
        {"test": (x_te, ddr.y_test)},
        cfg,
        seed=0,
        n_classes=5,
    )
    majority = np.mean(ddr.y_test == np.bincount(ddr.y_train).argmax())
    assert res["test_acc"] > majority + 0.05
    assert quadratic_weighted_kappa(ddr.y_test, res["test_pred"], 5) > 0.4


# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------


def test_fundus_grading_experiment_directly(ddr, tmp_path, monkeypatch):
    """The library function: every fit a point of the grid runner (stored in cache_dir), tidy tables, ax= plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import digitlab.grid

    seen, real = [], digitlab.grid.run_grid

    def spy(fn, points, seeds, **kw):
        seen.append((fn.__name__, kw.get("cache_dir"), len(points) * len(seeds)))
        return real(fn, points, seeds, **kw)

    monkeypatch.setattr(digitlab.grid, "run_grid", spy)
    kw = {
        "models": ["logreg"],
        "inputs": ["pixels"],
        "pixel_size": 16,
        "nets": ["cnn"],
        "net_size": 32,
        "width": 4,
        "steps": 10,
        "batch_size": 16,
        "augmentations": ["none", "hflip"],
        "n_seeds": 2,
        "augment_deltas": {"hflip": 0.01},
        "cache_dir": tmp_path / "points",
    }
    res = E.fundus_grading(ddr, **kw)
    assert [(n, c) for n, c, _ in seen] == [
        ("_classic_point", tmp_path / "points"),
        ("_net_point", tmp_path / "points"),
    ]
    assert seen[1][2] == 3 * 2 and len(list((tmp_path / "points").glob("*.pkl"))) == 1 + 3 * 2
    rows = E.records(res.grading)
    assert [(r["model"], r["input"]) for r in rows] == [("logistic regression", "pixels"), ("CNN", "network")]
    assert (
        "params" not in rows[0] and rows[1]["n_seeds"] == 2 and -1 <= rows[1]["qwk"] <= 1
    )  # absent cells stay absent
    assert list(res.augmentation_runs["augmentation"]) == ["none", "hflip"] and res.n_train_balanced >= len(
        res.y_train
    )
    comp = E.records(res.comparison)
    assert comp[0]["augmentation"] == "hflip" and comp[0]["fundus accuracy change (pp, augment task)"] == 1.0
    again = E.fundus_grading(ddr, **kw)  # every point from the cache: the same numbers
    assert E.records(again.grading)[1]["qwk"] == rows[1]["qwk"]
    fig, ax = plt.subplots()
    assert res.plot_qwk(ax=ax) is fig
    for f in (res.plot_confusion(), res.plot_recall(), res.plot_augment_comparison(), res.plot_gallery()):
        assert f.axes
        plt.close(f)
    plt.close(fig)


def test_config_rejects_bad_values(tmp_path):
    from digitlab.exceptions import ConfigError

    for bad in (
        {"balance": "weights"},
        {"nets": ["vgg"]},
        {"nets": [], "models": []},
        {"augmentations": ["hflip"]},
        {"models": ["cnn"]},
        {"compare_run": str(tmp_path)},
        {"train_p": 0.0},
        {"pixel_size": 4},
    ):
        with pytest.raises(ConfigError, match="fundus"):
            F.Config(**bad).validate()


def test_on_a_digit_dataset_it_says_how_to_run_it(tmp_path):
    from digitlab.data import load_dataset
    from digitlab.study.task import TaskContext

    ctx = TaskContext(dataset=load_dataset("digits"), out_dir=tmp_path, profile="quick", progress=False)
    res = F.run(ctx, F.Config(**F.PROFILES["quick"]))
    assert res.metrics["skipped"] and "synth-fundus" in res.findings[0] and "--dataset ddr" in res.findings[0]


def test_ddr_study_through_the_runner_and_the_report(ddr_dir, tmp_path):
    import json

    from digitlab.study.config import resolve
    from digitlab.study.runner import run_study

    cfg = resolve(
        {
            "study": {
                "dataset": "ddr",
                "data_dir": str(ddr_dir),
                "image_size": 48,
                "profile": "quick",
                "tasks": ["overview", "embed", "classify", "fundus"],
                "output_dir": str(tmp_path / "runs"),
                "cache_dir": str(tmp_path / "cache"),
                "pdf": False,
            },
            "embed": {"methods": ["pca"], "n_points": 100, "interactive_points": 50},
            "augment": {
                "augmentations": ["hflip"],
                "n_train": 100,
                "n_test": 60,
                "n_test_corrupt": 40,
                "shift_n": 60,
                "embed_n": 20,
                "epochs": 1,
            },
            "classify": {"models": ["logreg", "cnn"], "n_boot": 200, "cnn_recipe": "fast", "cnn_epochs": 1},
            "fundus": {
                "models": ["logreg"],
                "nets": ["cnn"],
                "steps": 20,
                "augmentations": ["none", "colour_jitter"],
                "n_estimators": 20,
            },
        }
    )
    out = run_study(cfg, quiet=True)
    out.html, out.pdf = build_reports(out.run_dir, pdf=cfg.study.pdf)
    assert set(out.results) == {
        "overview",
        "embed",
        "augment",
        "classify",
        "fundus",
    }  # augment added: fundus REQUIRES it
    assert list(out.results)[-1] == "fundus"
    res = out.results["fundus"]
    tables = {t.name: t for t in res.tables}
    grading = tables["grading"].rows
    assert [(r["model"], r["input"]) for r in grading] == [
        ("logistic regression", "pixels"),
        ("logistic regression", "features"),
        ("CNN", "network"),
    ]
    for r in grading:
        assert -1 <= r["qwk"] <= 1 and r["qwk_low"] <= r["qwk"] <= r["qwk_high"]
    assert {"per_grade_recall", "confusion_best", "classify_as_graders", "augmentation_domains"} <= set(
        tables
    )
    comp = {r["augmentation"]: r for r in tables["augmentation_domains"].rows}
    assert (
        comp["hflip"]["keeps label: MNIST"].startswith("no") and comp["hflip"]["keeps grade: fundus"] == "yes"
    )
    assert comp["colour_jitter"]["fundus QWK change (this task)"] is not None
    stored = json.loads((out.run_dir / "results" / "fundus" / "result.json").read_text())
    assert stored["metrics"]["best_qwk"] == res.metrics["best_qwk"]
    page = out.html.read_text()
    assert "Diabetic-retinopathy grading" in page and "figure-missing" not in page
    for fig in res.figures:
        assert (out.run_dir / "results" / "fundus" / fig.file).stat().st_size > 500
    aug = {t.name: t for t in out.results["augment"].tables}
    assert "colour_jitter" in {
        r["train_augmentation"] for r in aug["effectiveness"].rows
    }  # added on colour data


def test_cli_synth_fundus_writes_a_ddr_folder_and_refuses_to_overwrite(tmp_path, capsys):
    from digitlab.cli import main

    assert main(["data", "synth-fundus", str(tmp_path), "--n", "30", "--size", "32", "--seed", "1"]) == 0
    assert "--dataset ddr --data-dir" in capsys.readouterr().out
    lines = (tmp_path / "DR_grading" / "train.txt").read_text().splitlines()
    assert lines and all((tmp_path / "DR_grading" / "train" / ln.split()[0]).is_file() for ln in lines)
    assert (
        main(["data", "synth-fundus", str(tmp_path), "--n", "30", "--size", "32"]) == 2
    )  # exists: one-line error
    assert "already exists" in capsys.readouterr().err


def test_compare_run_puts_another_runs_augment_numbers_beside(tmp_path):
    import json

    from digitlab.data.fundus import FUNDUS_META
    from digitlab.data.registry import MNIST_META

    run = tmp_path / "run"
    (run / "results" / "augment").mkdir(parents=True)
    rows = [
        {"train_augmentation": "none", "delta_clean_vs_none": 0.0},
        {"train_augmentation": "hflip", "delta_clean_vs_none": -0.02},
        {"train_augmentation": "rotate_large", "delta_clean_vs_none": -0.05},
    ]
    (run / "results" / "augment" / "result.json").write_text(
        json.dumps({"tables": [{"name": "effectiveness", "rows": rows}]})
    )
    (run / "summary.json").write_text(json.dumps({"dataset": {"name": "mnist", "meta": MNIST_META}}))
    F.Config(compare_run=str(run)).validate()
    deltas, meta, name = F.read_compare(str(run))
    assert name == "mnist" and deltas["rotate_large"] == -0.05 and meta["label_swaps_under_rotation"]
    aug_rows = [{"augmentation": "none", "qwk": 0.80}, {"augmentation": "hflip", "qwk": 0.83}]
    comp = {
        r["augmentation"]: r
        for r in E.comparison_rows(
            ["none", "hflip"], aug_rows, {"hflip": 0.01}, deltas, meta, FUNDUS_META, name
        )
    }
    assert comp["hflip"]["mnist accuracy change (pp)"] == -2.0 and comp["hflip"][
        "fundus QWK change (this task)"
    ] == pytest.approx(0.03)
    assert (
        comp["rotate_large"]["keeps label: mnist"] == "no (6 <-> 9)"
        and comp["rotate_large"]["keeps grade: fundus"] == "yes"
    )
