"""digitlab.experiments: the study functions a notebook calls, on scikit-learn's 8x8 digits (1,347 / 450 images).

Each result is checked against the library pieces it is built on (zoo runs, the metrics suite,
McNemar/Holm, the power-law fit) and for what its tables must hold; every plot returns its Figure.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from digitlab import experiments as S
from digitlab import metrics as M
from digitlab.exceptions import ConfigError

pytestmark = pytest.mark.usefixtures("one_blas_thread")

FAST_CNN = {"epochs": 2, "min_steps": 0, "batch_size": 64}  # a few seconds per network on 400 8x8 images


@pytest.fixture(scope="module")
def digits():
    from digitlab.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def comparison(digits):
    return S.compare_models(digits, ["logreg", "knn", "gnb", "tree"], n_boot=300, seed=0)


def _is_figure(fig) -> bool:
    ok = isinstance(fig, Figure) and plt.fignum_exists(fig.number)
    plt.close("all")
    return ok


# =============================================================================================
# compare_models, error_analysis, label_issues
# =============================================================================================


def test_compare_models_scores_equal_the_metrics_suite(comparison, digits):
    c = comparison
    y = digits.y_test
    assert isinstance(c.scores, pd.DataFrame) and list(c.scores.index) == sorted(
        c.scores.index, key=lambda m: -c.scores.loc[m, "accuracy"]
    )
    for m in ("logreg", "knn", "gnb", "tree"):
        pred = c.predictions[m]
        ref = M.classification_metrics(y, pred, c.proba[m], 10)
        row = c.scores.loc[m]
        assert row["accuracy"] == pytest.approx(np.mean(pred == y)) == pytest.approx(ref["accuracy"])
        assert row["f1_macro"] == pytest.approx(ref["f1_macro"]) and row["ece"] == pytest.approx(ref["ece"])
        assert row["acc_ci_low"] <= row["accuracy"] <= row["acc_ci_high"]
        ci = M.accuracy_ci(y, pred, n_boot=300, seed=0)
        assert (row["acc_ci_low"], row["acc_ci_high"]) == pytest.approx((ci["low"], ci["high"]))
        np.testing.assert_allclose(c.per_class.loc[m].to_numpy(), ref["f1"])
    assert c.best == "knn" and c.scores.loc["knn", "accuracy"] > 0.95  # 3-NN on PCA of 8x8 digits: ~98.7 %


def test_compare_models_mcnemar_holm_and_error_sets(comparison, digits):
    c, y = comparison, digits.y_test
    assert len(c.mcnemar) == 6
    raw = [
        M.mcnemar(y, c.predictions[a], c.predictions[b])["p_value"]
        for a, b in zip(c.mcnemar["model_a"], c.mcnemar["model_b"])
    ]
    np.testing.assert_allclose(c.mcnemar["p_value"], raw)
    np.testing.assert_allclose(c.mcnemar["p_holm"], M.holm_adjust(raw))
    assert (c.mcnemar["significant"] == (c.mcnemar["p_holm"] < 0.05)).all()
    wrong = np.stack([c.predictions[m] != y for m in c.errors.columns], axis=1)
    np.testing.assert_array_equal(c.errors.to_numpy(), wrong)
    np.testing.assert_array_equal(c.all_wrong, np.flatnonzero(wrong.all(1)))


def test_compare_models_labels_and_parameters(digits):
    c = S.compare_models(
        digits,
        {"lasso": ("logreg", {"penalty": "l1", "C": 0.05}), "ridge": "logreg"},
        n_train=600,
        n_test=200,
        n_boot=100,
    )
    assert set(c.scores.index) == {"lasso", "ridge"} and c.scores["n_train"].tolist() == [600, 600]
    zeros = {m: float(np.mean(c.runs[m].model[-1].coef_ == 0)) for m in ("lasso", "ridge")}
    assert zeros["lasso"] > zeros["ridge"] + 0.3  # L1 zeroes weights (L2 only those of always-blank pixels)
    with pytest.raises(ConfigError, match="repeated"):
        S.compare_models(digits, ["logreg", "logreg"])
    with pytest.raises(ConfigError, match="models"):
        S.compare_models(digits, ["logreg", "perceptronn"])


def test_comparison_plots(comparison):
    assert _is_figure(comparison.plot())
    assert _is_figure(comparison.plot_confusion("gnb", normalize=True))
    fig, ax = plt.subplots()
    assert comparison.plot(ax=ax) is fig
    assert _is_figure(comparison.plot_all_wrong())
    html = comparison._repr_html_()
    assert "<table" in html and "knn" in html
    for plot in ("plot_confusion_pair", "plot_per_class_f1", "plot_reliability", "plot_mcnemar", "plot_cost"):
        assert _is_figure(getattr(comparison, plot)()), plot
    fig, ax = plt.subplots()
    assert comparison.plot_cost(ax=ax) is fig and comparison.plot_confusion_pair(ax=ax) is fig
    plt.close("all")
    assert comparison.history("cnn").empty  # no network in this comparison


def test_compare_models_cost_calibration_pareto_and_files(comparison, digits, tmp_path):
    c = comparison
    assert list(c.cost.index) == list(c.runs) and (c.cost["setup"].str.len() > 0).all()
    assert (
        c.cost["train_gflop"].isna().all() and (c.cost["parameters"] > 0).all()
    )  # classic models: no FLOP counter
    assert set(c.calibration.index) == {"logreg", "knn", "gnb", "tree"}  # all four give probabilities
    conf = {m: c.proba[m].max(1) for m in c.runs}
    for m, row in c.calibration.iterrows():
        assert row["confidence_gap"] == pytest.approx(conf[m].mean() - c.scores.loc[m, "accuracy"])
        assert row["confident_share"] == pytest.approx(np.mean(conf[m] > 0.99))
    np.testing.assert_allclose(c.class_f1["mean_f1"], c.per_class.mean(axis=0))
    fit = c.cost["fit_s"]
    assert (
        c.pareto[0] == fit.idxmin() and c.best in c.pareto
    )  # the fastest model and the most accurate one are on the front
    t, p, n = c.top_confusion()
    assert t != p and n == c.metrics[c.best]["confusion_matrix"][t, p]
    c.save_predictions(tmp_path / "predictions.npz")
    pred = np.load(tmp_path / "predictions.npz")
    np.testing.assert_array_equal(pred["y_pred__gnb"], c.predictions["gnb"])
    assert list(pred["models"]) == list(c.runs)
    saved = c.save_models(tmp_path, max_mb=100)
    assert saved["gnb"] == "models/gnb" and (tmp_path / "models" / "gnb").is_dir()
    assert c.save_models(tmp_path / "small", max_mb=1e-9)["gnb"].startswith("not saved")


def test_error_analysis_of_a_comparison(comparison, digits):
    ea = comparison.error_analysis()
    y = digits.y_test
    for m in ea.models:
        assert ea.per_model.loc[m, "errors"] == int(np.sum(comparison.predictions[m] != y))
    j = ea.jaccard.to_numpy()
    np.testing.assert_allclose(j, j.T)
    assert np.all(np.diag(j) == 1)
    assert ea.intersections["images"].sum() == int(comparison.errors.any(axis=1).sum())
    assert (ea.hard["models_wrong"] >= ea.hard_min).all() and ea.hard_min == 2
    assert ea.hard["models_wrong"].is_monotonic_decreasing
    first = ea.hard.iloc[0]
    votes = sum(int(v.split("×")[1]) for v in first["votes"].split(", "))
    assert votes <= len(ea.models)  # the three most-voted classes
    assert set(ea.mistakes["model"]) <= set(ea.models) and len(ea.mistakes) == ea.per_model["errors"].sum()
    assert ea.traits is not None and "stroke_width" in ea.traits.index
    assert _is_figure(ea.plot()) and _is_figure(ea.plot_upset()) and _is_figure(ea.plot_hard(n=8))


def test_error_analysis_from_arrays():
    y = np.array([0, 1, 2, 0, 1])
    preds = {"a": np.array([0, 1, 1, 1, 1]), "b": np.array([0, 2, 1, 1, 1])}
    ea = S.error_analysis(y, preds, classes=["x", "y", "z"], hard_fraction=1.0)
    assert ea.per_model["errors"].tolist() == [2, 3] and ea.per_model.loc["b", "only_this_model"] == 1
    assert ea.hard["position"].tolist() == [2, 3] and ea.hard["true"].tolist() == ["z", "x"]
    assert ea.jaccard.loc["a", "b"] == pytest.approx(2 / 3) and ea.traits is None
    with pytest.raises(ConfigError, match="plot_hard"):
        ea.plot_hard()


def test_label_issues_find_planted_flips(digits):
    li = S.label_issues(digits, plant=0.03, seed=0)
    assert li.planted["n"] == 40 and li.planted["recall"] > 0.6 and li.oof_accuracy > 0.95
    assert (
        li.candidates["score"].is_monotonic_increasing
        and (li.candidates["given"] != li.candidates["suggested"]).mean() > 0.5
    )
    assert len(li.ranking) == len(digits.y_train)
    assert _is_figure(li.plot(n=6))


# =============================================================================================
# learning_curve
# =============================================================================================


def test_learning_curve_grid_and_power_law(digits):
    lc = S.learning_curve(digits, ["logreg", "knn"], [100, 300, 700, 5000], seeds=2, seed=1)
    assert len(lc.runs) == 2 * 4 * 2 and set(lc.runs["seed"]) == {1, 2}
    assert sorted(set(lc.runs["n_train"])) == [
        100,
        300,
        700,
        len(digits.y_train),
    ]  # 5,000 is clamped to the data
    small = lc.runs[(lc.runs["n_train"] == 100)]
    assert small.groupby("model")["accuracy"].nunique().min() == 2  # each seed draws its own subset
    mean = lc.summary.set_index(["model", "n_train"])["accuracy_mean"]
    for m in ("logreg", "knn"):
        assert mean[(m, len(digits.y_train))] > mean[(m, 100)]
        g = lc.runs[lc.runs["model"] == m]
        from digitlab.experiments.learning_curve import fit_power_law

        ref = fit_power_law(g["n_train"], 1 - g["accuracy"])
        assert lc.fits.loc[m, "c"] == pytest.approx(ref.c) and lc.fits.loc[
            m, "ceiling_accuracy"
        ] == pytest.approx(1 - ref.c)
    assert _is_figure(lc.plot())


# =============================================================================================
# cnn_sweep, augmentation_effect
# =============================================================================================


def test_cnn_sweep_routes_settings_and_summarises_seeds(digits):
    from digitlab.models.nets import build_net, count_parameters

    sw = S.cnn_sweep(digits, {"width": [4, 8], "lr": [0.03]}, base=FAST_CNN, seeds=2, n_train=300, n_test=200)
    assert len(sw.runs) == 2 * 2 and len(sw.summary) == 2 and sw.settings == ["width", "lr"]
    for width in (4, 8):
        n = count_parameters(build_net("cnn", (1, 8, 8), 10, n_blocks=3, width=width))
        assert set(sw.runs.loc[sw.runs["width"] == width, "params"]) == {n}
    assert set(sw.runs["steps"]) == {2 * 5}  # 2 epochs of ceil(270 / 64) steps: the base reached TrainConfig
    assert (sw.summary["n"] == 2).all() and (sw.summary["test_acc_min"] <= sw.summary["test_acc_mean"]).all()
    assert sw.runs["test_acc"].max() > 0.3  # far above chance after a few steps
    assert _is_figure(sw.plot()) and _is_figure(sw.plot_curves())
    with pytest.raises(ConfigError, match="one or two"):
        S.cnn_sweep(digits, {"lr": [0.1], "width": [4], "epochs": [1]})


def test_augmentation_effect_scores_clean_and_corrupted(digits):
    from digitlab.augment import augment_images

    ae = S.augmentation_effect(digits, ["vflip"], base=FAST_CNN, n_train=400, n_test=200, p=0.5)
    assert list(ae.summary.index) == ["none", "vflip"] and ae.corruptions == ["vflip"]
    assert ae.summary.loc["none", "delta_clean"] == 0.0
    assert list(ae.matrix.columns) == ["clean", "vflip"]
    none = ae.runs.set_index("augmentation").loc["none"]
    assert none["vflip"] < none["clean"] - 0.2  # a network never shown upside-down digits fails on them
    assert ae.summary.loc["vflip", "vflip"] > none["vflip"]  # training with flips recovers part of it
    # the corrupted copy is the catalogue's transform of the same test images, drawn with seed + 7919
    d = S.as_data(digits, 400, 200, 0)
    np.testing.assert_array_equal(augment_images(d.x_test, "vflip", seed=7919, p=1.0), d.x_test[:, ::-1])
    assert _is_figure(ae.plot()) and _is_figure(ae.plot_matrix())
    with pytest.raises(ConfigError, match="augmentation"):
        S.augmentation_effect(digits, ["rotate_smal"])


def test_as_data_takes_arrays_and_the_subset_rule(digits):
    from digitlab.data.subsets import subset_indices

    d = S.as_data((digits.x_train, digits.y_train, digits.x_test, digits.y_test), n_train=200, seed=3)
    np.testing.assert_array_equal(d.train_index, subset_indices(digits.y_train, 200, 3))
    assert len(d.y_test) == len(digits.y_test) and d.classes == [str(i) for i in range(10)]
    with pytest.raises(ConfigError, match="Dataset"):
        S.as_data(digits.x_train)
