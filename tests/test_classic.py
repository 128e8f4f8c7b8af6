"""The classic-model zoo: every model learns a small MNIST subset; names and parameters are checked."""

import numpy as np
import pytest
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from digitlab.data import stratified_subset
from digitlab.exceptions import DigitlabError, ModelError
from digitlab.models.classic import CLASSIC_MODELS, ValidationSearch, make_model, unit_pixels

# small-but-fair settings so the whole zoo fits in a few seconds
FAST = {
    "random_forest": {"n_estimators": 40},
    "extra_trees": {"n_estimators": 40},
    "hgb": {"max_iter": 30},
    "rbf_svm": {"search_size": 400, "val_size": 300},
    "numpy_mlp": {"epochs": 8},
}
# accuracy floors on 1,500 training images (chance is 0.10); measured values are 5-10 points higher
FLOOR = {"tree": 0.60, "gnb": 0.60}


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS/OpenMP thread: on a shared 2-core machine more threads spin and run several times slower."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def mnist_small(mnist):
    ds = mnist
    tr = stratified_subset(ds.y_train, total=1500, seed=0)
    te = stratified_subset(ds.y_test, total=600, seed=0)
    return ds.x_train[tr], ds.y_train[tr], ds.x_test[te], ds.y_test[te]


@pytest.mark.parametrize("name", list(CLASSIC_MODELS))
def test_every_model_learns_mnist(name, mnist_small):
    x, y, xt, yt = mnist_small
    model = make_model(name, random_state=0, n_jobs=1, **FAST.get(name, {})).fit(x, y)
    acc = np.mean(model.predict(xt) == yt)
    assert acc > FLOOR.get(name, 0.80), f"{name}: {acc:.3f}"
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(xt[:20])
        assert proba.shape == (20, 10)
        np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-4)  # float32 pixels


def test_models_accept_flat_rows_and_clone(mnist_small):
    x, y, xt, _ = mnist_small
    a = make_model("logreg").fit(x, y)
    b = clone(make_model("logreg")).fit(x.reshape(len(x), -1), y)
    np.testing.assert_array_equal(a.predict(xt), b.predict(xt.reshape(len(xt), -1)))
    assert unit_pixels(np.full((2, 28, 28), 255, np.uint8)).max() == 1.0


def test_validation_search_picks_the_best_setting(mnist_small):
    x, y, xt, yt = mnist_small
    svm = make_model("rbf_svm", C=[0.01, 5.0], gamma=[0.02], search_size=500, val_size=300).fit(x, y)
    assert isinstance(svm, ValidationSearch)
    assert len(svm.search_results_) == 2
    assert svm.best_params_["clf__C"] == 5.0  # C=0.01 underfits badly
    best = max(r["val_accuracy"] for r in svm.search_results_)
    assert best == max(r["val_accuracy"] for r in svm.search_results_ if r["clf__C"] == 5.0)
    assert not hasattr(svm, "predict_proba")  # an SVC without Platt scaling has no probabilities
    assert svm.decision_function(xt[:5]).shape == (5, 10)


def test_seeded_models_are_reproducible(mnist_small):
    x, y, xt, _ = mnist_small
    a = make_model("extra_trees", random_state=3, n_estimators=10).fit(x, y).predict_proba(xt)
    b = make_model("extra_trees", random_state=3, n_estimators=10).fit(x, y).predict_proba(xt)
    np.testing.assert_array_equal(a, b)


def test_unknown_model_and_bad_parameter_raise_model_error():
    with pytest.raises(ModelError) as err:
        make_model("xgboost")
    msg = str(err.value)
    assert "xgboost" in msg and "random_forest" in msg and "\n" not in msg
    assert isinstance(err.value, DigitlabError)
    with pytest.raises(ModelError, match="knn.*n_trees"):
        make_model("knn", n_trees=5)


def test_descriptions_follow_the_settings():
    from digitlab.models.classic import describe

    assert all(describe(name) for name in CLASSIC_MODELS)
    assert "40 trees" in describe("random_forest", n_estimators=40)
    assert "PCA-50" in describe("hgb") and "pixels/255" in describe("hgb", pca=0)


def test_logreg_penalties_fit_and_l1_is_sparser_than_l2(mnist_small):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from digitlab.models.classic import describe

    x, y, xt, yt = mnist_small
    x, y = x[::3], y[::3]  # 500 images: saga is slow on raw pixels

    def fit(penalty, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 40 saga epochs are enough to compare
            model = make_model("logreg", penalty=penalty, C=0.1, max_iter=40, **kw).fit(x, y)
        coef = model.named_steps["clf"].coef_
        return float(np.mean(model.predict(xt) == yt)), float(np.mean(coef == 0)), model

    acc2, zeros2, m2 = fit("l2")
    acc1, zeros1, m1 = fit("l1")
    acc_en, zeros_en, m_en = fit("elasticnet", l1_ratio=0.5)
    assert min(acc2, acc1, acc_en) > 0.6, (acc2, acc1, acc_en)
    # L2 leaves only the never-inked border pixels at exactly zero (~25 %); L1 zeroes almost every pixel
    assert zeros1 > zeros2 + 0.4 and zeros1 >= zeros_en > zeros2, (zeros1, zeros_en, zeros2)
    assert m1.named_steps["clf"].solver == "saga" and m2.named_steps["clf"].solver == "lbfgs"
    assert "L1 penalty, saga, C=0.1" in describe("logreg", penalty="l1", C=0.1)
    assert "elastic net, 0.3 L1" in describe("logreg", penalty="elasticnet", l1_ratio=0.3)
    assert "L2 penalty, lbfgs" in describe("logreg")
    with pytest.raises(ModelError, match="penalty"):
        make_model("logreg", penalty="l3")
    with pytest.raises(ModelError, match="l1_ratio"):
        make_model("logreg", penalty="elasticnet", l1_ratio=1.5)


@pytest.mark.parametrize("name", ["knn", "hgb", "rbf_svm"])
def test_pca_models_fit_thirty_images(name, mnist_small):
    """The PCA-50 front ends (k-NN, boosting, RBF SVM with and without its validation search) fit a
    training set smaller than their component count: 30 images of ten classes (the datasize task's
    smallest sizes, a few hundred fundus photographs) instead of raising scikit-learn's n_components error."""
    x, y, xt, yt = mnist_small
    idx = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(10)])
    for params in ({}, {"C": 5.0, "gamma": 0.02}) if name == "rbf_svm" else ({},):
        model = make_model(name, random_state=0, **{**FAST.get(name, {}), **params}).fit(x[idx], y[idx])
        assert model.predict(xt[:50]).shape == (50,)
        pipe = getattr(model, "best_estimator_", model)
        pca = pipe.named_steps["pca"]
        assert (
            pca.n_components_ == 30 and pca.n_components == 50
        )  # the cap fits; the setting stays (clone sees 50)
        assert clone(pipe).named_steps["pca"].n_components == 50
    if name == "hgb":  # 3 validation images cannot hold ten classes: no early stopping on this fit
        assert (
            model.named_steps["clf"].early_stopping_used_ is False
            and model.named_steps["clf"].early_stopping is True
        )
    # on the full 1,500 nothing changes: 50 components and early stopping as before
    if name in ("knn", "hgb"):
        big = make_model(name, random_state=0, **FAST.get(name, {})).fit(x, y)
        assert big.named_steps["pca"].n_components_ == 50
        if name == "hgb":
            assert big.named_steps["clf"].early_stopping_used_ is True


def test_pca_models_fit_images_with_fewer_pixels_than_components():
    """8x8 images (64 pixels) with PCA-50 keep 50; 5x5 ones (25 pixels) keep 25 instead of raising."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 30)
    x = (rng.random((120, 5, 5)) * 255).astype(np.uint8)
    model = make_model("knn", pca=50).fit(x, y)
    assert model.named_steps["pca"].n_components_ == 25
