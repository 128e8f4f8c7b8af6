"""The classify task end to end on a tiny MNIST subset: tables, figures, predictions, findings."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from digitlab.data import stratified_subset
from digitlab.data.dataset import Dataset
from digitlab.exceptions import ConfigError
from digitlab.study.task import TaskContext
from digitlab.study.tasks import classify

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def tiny(mnist) -> Dataset:
    ds = mnist
    tr = stratified_subset(ds.y_train, total=800, seed=0)
    te = stratified_subset(ds.y_test, total=400, seed=0)
    return ds.subset(tr, te, "mnist-tiny")


@pytest.fixture(scope="module")
def result(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("classify")
    cfg = replace(
        classify.Config(**classify.PROFILES["quick"]),
        n_train=0,
        models=["logreg", "gnb", "tree", "random_forest", "rbf_svm", "cnn"],
        n_estimators=20,
        svm_search_size=300,
        cnn_epochs=4,
        cnn_max_seconds=10.0,
        n_boot=200,
    )
    ctx = TaskContext(tiny, out, profile="quick", progress=False)
    return classify.run(ctx, cfg), out, tiny


def test_tables_and_figures(result):
    res, out, ds = result
    names = {t.name: t for t in res.tables}
    assert {"scores", "probabilistic", "per_class_f1", "cost", "mcnemar"} <= set(names)
    assert len(names["scores"].rows) == 6
    assert len(names["mcnemar"].rows) == 15  # every pair of 6 models
    accs = [r["accuracy"] for r in names["scores"].rows]
    assert accs == sorted(accs, reverse=True)
    for r in names["scores"].rows:
        assert r["acc_ci_low"] <= r["accuracy"] <= r["acc_ci_high"]
    for fig in res.figures:
        assert (out / fig.file).is_file(), fig.file
    assert {"accuracy", "confusion_best", "per_class_f1", "reliability", "mcnemar"} <= {
        f.name for f in res.figures
    }


def test_predictions_artifact_and_metrics(result):
    res, out, ds = result
    pred = np.load(Path(out) / res.metrics["predictions_file"])
    np.testing.assert_array_equal(pred["y_true"], ds.y_test)
    np.testing.assert_array_equal(pred["test_index"], np.arange(len(ds.y_test)))
    wrong = np.all([pred[f"y_pred__{n}"] != ds.y_test for n in res.metrics["models"]], axis=0)
    assert res.metrics["all_models_wrong_index"] == np.flatnonzero(wrong).tolist()
    for name in res.metrics["models"]:
        acc = np.mean(pred[f"y_pred__{name}"] == ds.y_test)
        assert acc == pytest.approx(res.metrics["accuracy"][name], abs=1e-4)
        assert acc > 0.5, name  # far above chance (0.1) even on 800 training images
    assert pred["proba__logreg"].shape == (len(ds.y_test), 10)
    assert "scores__rbf_svm" in pred  # the SVM gives decision scores, not probabilities
    assert res.metrics["best_model"] == res.tables[0].rows[0]["model"]


def test_findings_and_notes(result):
    res, _, _ = result
    text = " ".join(res.findings)
    best = res.metrics["best_model"]
    assert f"{100 * res.metrics['accuracy'][best]:.2f} %" in text
    assert "McNemar" in text and "naive Bayes" in text
    n_sig = sum(r["significant"] for r in next(t for t in res.tables if t.name == "mcnemar").rows)
    assert f"{n_sig} of 15 model pairs differ significantly" in text
    notes = " ".join(res.notes)
    assert "Expected calibration error" in notes and "rbf_svm validation search" in notes


def test_unknown_model_is_a_config_error(tiny, tmp_path):
    ctx = TaskContext(tiny, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="resnet9000"):
        classify.run(ctx, replace(classify.Config(), models=["resnet9000"]))


def test_subset_sizes_and_official_test_indices(tiny, tmp_path):
    ctx = TaskContext(tiny, tmp_path, progress=False)
    res = classify.run(
        ctx, replace(classify.Config(), models=["gnb", "knn"], n_train=300, n_test=200, n_boot=100)
    )
    assert res.metrics["n_train"] == 300 and res.metrics["n_test"] == 200
    pred = np.load(tmp_path / "predictions.npz")
    np.testing.assert_array_equal(pred["y_true"], tiny.y_test[pred["test_index"]])
    np.testing.assert_array_equal(pred["test_index"], stratified_subset(tiny.y_test, total=200, seed=0))


def test_saved_models_load_back_with_identical_predictions(result):
    from digitlab.models.zoo import load_model

    res, out, tiny = result
    saved = res.metrics["saved_models"]
    assert set(saved) == {"logreg", "gnb", "tree", "random_forest", "rbf_svm", "cnn"}
    pred = np.load(out / "predictions.npz")
    for name in ("cnn", "logreg", "random_forest"):
        model = load_model(out / saved[name])
        np.testing.assert_array_equal(model.predict(tiny.x_test), pred[f"y_pred__{name}"], err_msg=name)
