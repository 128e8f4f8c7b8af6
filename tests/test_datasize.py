"""The datasize task and its experiment (digitlab.experiments.learning_curve): exact subsets, the
power-law fit, the adequate size, training curves, the experiment on its own, and the task end to end
on a small MNIST subset."""

import math
from dataclasses import replace

import numpy as np
import pytest

from digitlab.data import stratified_subset
from digitlab.data.subsets import subset_indices
from digitlab.exceptions import ConfigError
from digitlab.experiments.learning_curve import (
    PowerLawFit,
    adequate_size,
    adequate_size_interval,
    fit_power_law,
    learning_curve,
    power_law,
    seeds_for,
    training_curve,
)
from digitlab.experiments.learning_curve import first_look_indices as _first_look_indices
from digitlab.study.task import TaskContext, Upstream
from digitlab.study.tasks import classify, datasize
from digitlab.study.tasks.datasize import Config, resolve_sizes


def first_look_indices(y_train, y_test, cfg, seed):
    return _first_look_indices(y_train, y_test, cfg.first_look_per_class, cfg.first_look_test_per_class, seed)


# ---------------------------------------------------------------------------------------------
# Subsets and sizes
# ---------------------------------------------------------------------------------------------


def test_first_look_is_exactly_100_and_20_images_per_class(mnist):
    tr, te, notes = first_look_indices(mnist.y_train, mnist.y_test, Config(), seed=0)
    assert np.array_equal(np.bincount(mnist.y_train[tr]), np.full(10, 100))
    assert np.array_equal(np.bincount(mnist.y_test[te]), np.full(10, 20))
    assert len(np.unique(tr)) == 1000 and len(np.unique(te)) == 200 and not notes
    tr2, _, _ = first_look_indices(mnist.y_train, mnist.y_test, Config(), seed=1)
    assert not np.array_equal(tr, tr2)  # the seed draws the subset


def test_first_look_clamps_to_the_smallest_class_with_a_note():
    y = np.repeat(np.arange(3), [50, 40, 30])
    tr, te, notes = first_look_indices(
        y, y, replace(Config(), first_look_per_class=35, first_look_test_per_class=5), 0
    )
    assert np.array_equal(np.bincount(y[tr]), [30, 30, 30]) and np.array_equal(np.bincount(y[te]), [5, 5, 5])
    assert "smallest class allows 30" in notes[0]


def test_growth_subsets_have_the_exact_size_and_follow_the_class_proportions(mnist):
    share = np.bincount(mnist.y_train) / len(mnist.y_train)
    for n in (1000, 2500, 7777):
        idx = subset_indices(mnist.y_train, n, seed=3)
        counts = np.bincount(mnist.y_train[idx], minlength=10)
        assert len(np.unique(idx)) == n and counts.sum() == n
        assert np.all(np.abs(counts - share * n) < 1)  # largest-remainder stratification


def test_sizes_clamp_to_the_data_and_log_spacing_keeps_the_ends():
    sizes, notes = resolve_sizes(replace(Config(), sizes=[1000, 2000, 5000, 0]), 1347)
    assert sizes == [1000, 1347] and "1,347 exist" in notes[0]
    sizes, _ = resolve_sizes(replace(Config(), sizes=[1000, 0], log_sizes=8), 60000)
    assert len(sizes) == 8 and sizes[0] == 1000 and sizes[-1] == 60000
    assert np.all(np.diff(np.log(sizes)) > 0.4) and np.ptp(np.diff(np.log(sizes))) < 0.05  # evenly log-spaced


def test_seed_counts_per_model_and_at_the_full_set():
    kw = {"seed": 7, "slow_models": ["cnn"], "slow_seeds": 1, "full_seeds": 1}
    assert seeds_for("logreg", 5000, 60000, 3, **kw) == [7, 8, 9]
    assert seeds_for("cnn", 5000, 60000, 3, **kw) == [7]
    assert seeds_for("logreg", 60000, 60000, 3, **kw) == [7]
    assert seeds_for("cnn", 5000, 60000, 2, seed=0, slow_models=["cnn"], slow_seeds=3) == [
        0,
        1,
        2,
    ]  # may exceed seeds
    assert seeds_for("knn", 500, 60000, [4, 9]) == [4, 9]


def test_config_rejects_bad_values_naming_the_key():
    for over, key in (
        ({"models": ["nope"]}, "datasize.models"),
        ({"min_gain": 0.0}, "datasize.min_gain"),
        ({"log_sizes": 1}, "datasize.log_sizes"),
        ({"sizes": []}, "datasize.sizes"),
        ({"n_seeds": 0}, "datasize.n_seeds"),
        ({"slow_models": ["x"]}, "datasize.slow_models"),
    ):
        with pytest.raises(ConfigError, match=key):
            replace(Config(), **over).validate()


# ---------------------------------------------------------------------------------------------
# The power law and the adequate size
# ---------------------------------------------------------------------------------------------


def test_power_law_fit_recovers_known_parameters_from_a_noisy_curve():
    rng = np.random.default_rng(0)
    a, b, c = 0.06, 0.55, 0.012
    n = np.repeat([1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 60000], 3).astype(float)
    err = power_law(n, a, b, c) + rng.normal(0, 0.0008, len(n))
    fit = fit_power_law(n, err)
    assert fit.n_points == 30 and fit.n_sizes == 10 and not fit.at_bound
    for est, sd, true in ((fit.a, fit.a_sd, a), (fit.b, fit.b_sd, b), (fit.c, fit.c_sd, c)):
        assert 0 < sd < 0.2 * true
        assert abs(est - true) < 3 * sd
    assert fit.rmse == pytest.approx(0.0008, rel=0.35)
    assert fit.a_literal == pytest.approx(fit.a * 1000**fit.b)


def test_fit_needs_three_sizes_and_gives_no_covariance_without_spare_points():
    assert fit_power_law([1000, 1000, 2000], [0.1, 0.11, 0.08]) is None
    fit = fit_power_law([1000, 2000, 4000], power_law(np.array([1000, 2000, 4000]), 0.05, 0.5, 0.01))
    assert fit is not None and not fit.has_covariance and math.isnan(fit.b_sd)
    assert adequate_size_interval(fit) == (pytest.approx(math.nan, nan_ok=True),) * 2


def test_adequate_size_matches_the_analytic_answer():
    # b = 1: a*r/n - a*r/(n + p) = g  <=>  n^2 + p*n - a*r*p/g = 0
    a, c, r, p, g = 0.05, 0.01, 1000.0, 1000.0, 0.001
    fit = PowerLawFit(a, 1.0, c, 0, 0, 0, np.full((3, 3), np.nan), n_ref=r)
    exact = (-p + math.sqrt(p * p + 4 * a * r * p / g)) / 2
    assert adequate_size(fit, g, p) == math.ceil(exact)
    # any b: the answer is the first size whose gain falls to g
    fit = PowerLawFit(0.08, 0.7, 0.0, 0, 0, 0, np.full((3, 3), np.nan))
    n = adequate_size(fit, 0.001, 1000)
    assert fit.gain(n) <= 0.001 < fit.gain(n - 1)
    # and, for gain << error, about (a b r^b p / g)^(1/(1+b)) from the derivative
    assert n == pytest.approx((0.08 * 0.7 * 1000**0.7 * 1000 / 0.001) ** (1 / 1.7), rel=0.05)
    slow = PowerLawFit(
        0.5, 0.01, 0, 0, 0, 0, np.zeros((3, 3))
    )  # gain about a*b*p/n: 0.001 at about 4,400 images
    assert (
        4000 < adequate_size(slow, 0.001, 1000) < 5000
        and adequate_size(slow, 0.001, 1000, n_max=2000) == math.inf
    )
    assert adequate_size(PowerLawFit(1e-6, 1.0, 0, 0, 0, 0, np.zeros((3, 3))), 0.001, 1000) == 1


def test_adequate_size_interval_brackets_the_estimate():
    rng = np.random.default_rng(1)
    n = np.repeat([1000, 2000, 4000, 8000, 16000, 32000], 4).astype(float)
    fit = fit_power_law(n, power_law(n, 0.05, 0.6, 0.01) + rng.normal(0, 0.001, len(n)))
    low, high = adequate_size_interval(fit, 0.001, 1000, n_draws=1000)
    assert low < adequate_size(fit, 0.001, 1000) < high


# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------


def test_numpy_mlp_curve_points_are_prefixes_of_one_run(mnist):
    from digitlab.models.classic import make_model

    idx = stratified_subset(mnist.y_train, per_class=20, seed=0)
    x, y = mnist.x_train[idx], mnist.y_train[idx]
    short = make_model("numpy_mlp", epochs=3, hidden=(32,)).fit(x, y)[-1]
    long = make_model("numpy_mlp", epochs=5, hidden=(32,)).fit(x, y)[-1]
    np.testing.assert_allclose(
        short.loss_curve_, long.loss_curve_[:3], rtol=1e-6
    )  # what training_curve relies on
    curve = training_curve("numpy_mlp", x, y, x[:50], y[:50], None, epochs=4, hidden=(32,))
    assert (
        curve.x == [1, 2, 3, 4] and curve.train_loss[-1] < curve.train_loss[0] and curve.eval_name == "test"
    )


# ---------------------------------------------------------------------------------------------
# The task end to end
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_ds(mnist):
    tr = stratified_subset(mnist.y_train, total=600, seed=0)
    te = stratified_subset(mnist.y_test, total=300, seed=0)
    return mnist.subset(tr, te, "mnist-small")


def test_task_runs_end_to_end_and_reuses_classify(small_ds, tmp_path):
    models = ["gnb", "logreg", "knn", "random_forest", "cnn"]
    ccfg = replace(classify.Config(), **classify.PROFILES["quick"])
    ccfg = replace(
        ccfg, models=models[:4], n_train=0, n_boot=50, n_estimators=10
    )  # classify without its (slow) CNN
    (tmp_path / "classify").mkdir()
    cctx = TaskContext(
        dataset=small_ds, out_dir=tmp_path / "classify", profile="quick", n_jobs=1, progress=False
    )
    cres = classify.run(cctx, ccfg)
    cfg = replace(Config(), **datasize.PROFILES["quick"])
    cfg = replace(
        cfg,
        models=models,
        sizes=[150, 300, 450, 0],
        n_seeds=2,
        first_look_per_class=30,
        first_look_test_per_class=10,
        table_sizes=[150, 0],
        cnn_epochs=1,
        cnn_min_steps=20,
        slow_models=["cnn"],
        n_draws=200,
        n_estimators=8,
    )
    (tmp_path / "datasize").mkdir()
    ctx = TaskContext(
        dataset=small_ds,
        out_dir=tmp_path / "datasize",
        profile="quick",
        n_jobs=1,
        progress=False,
        inputs={"classify": Upstream(cres, tmp_path / "classify")},
    )
    res = datasize.run(ctx, cfg)

    assert [t.name for t in res.tables] == ["first_look", "convergence", "growth", "fits", "milestones"]
    conv = {r["model"]: r for r in res.tables[1].rows}
    assert set(conv) == {"logreg", "random_forest", "cnn"} and conv["cnn"]["held_out"] == "validation"
    assert conv["random_forest"]["run"] == 8 and conv["random_forest"]["unit"] == "tree"
    first = {r["model"]: r for r in res.tables[0].rows}
    assert set(first) == set(models) and all(
        r["n_train"] == 300 and r["n_test"] == 100 for r in first.values()
    )
    growth = res.tables[2].rows
    assert [(r["model"], r["n_train"]) for r in growth] == [
        (m, n) for m in models for n in (150, 300, 450, 600)
    ]
    seeds = {(r["model"], r["n_train"]): r["seeds"] for r in growth}
    assert seeds[("logreg", 150)] == 2 and seeds[("cnn", 150)] == 1 and seeds[("logreg", 600)] == 1
    # classify's full-data runs are reused (same subset, test set, seed, settings); the forest (other settings there)
    # and the CNN (absent there) are trained
    assert res.metrics["reused_from_classify"] == ["gnb@600", "knn@600", "logreg@600"]
    assert {r["model"]: r["source"] for r in growth if r["n_train"] == 600} == {
        "gnb": "classify",
        "logreg": "classify",
        "knn": "classify",
        "random_forest": "trained",
        "cnn": "trained",
    }
    assert any("random forest was set up differently in classify" in n for n in res.notes)
    for m in ("gnb", "logreg", "knn"):
        assert res.metrics["accuracy"][m]["600"] == pytest.approx(cres.metrics["accuracy"][m], abs=1e-5)
    # the CNN's budget grows with the data: at least min_steps steps everywhere
    cnn = [r for r in growth if r["model"] == "cnn"]
    assert all(r["budget"] for r in cnn)
    steps = [int(r["budget"].split(", ")[1].split()[0]) for r in cnn]
    assert min(steps) >= 20
    fits = {r["model"]: r for r in res.tables[3].rows}
    assert all(fits[m].get("b") is not None for m in models)
    assert set(res.metrics["adequate_size"]) == set(models)
    ms = res.tables[4].rows
    assert {(r["model"], r["n_train"]) for r in ms} == {(m, n) for m in models for n in (150, 600)}
    assert all(0 <= r["recall 3"] <= 1 and 0 <= r["f1_macro"] <= 1 for r in ms)
    assert {f.name for f in res.figures} == {
        "first_look",
        "convergence",
        "growth",
        "error_all",
        "fit_time",
        "class_gain",
    }
    for f in res.figures:
        assert (ctx.out_dir / f.file).stat().st_size > 1000
    assert (ctx.out_dir / "growth.csv").read_text().count("\n") == 1 + res.metrics["runs"]
    assert res.headline.startswith("From 150 to 600 training images") and len(res.findings) >= 6


def test_growth_points_are_stored_as_they_finish_and_reused_on_a_rerun(small_ds, tmp_path):
    """With the runner's points folder every (model, size, seed) is stored as it finishes: a killed
    standard run, rerun, trains again only the point in flight. Other settings or data get other keys."""
    cfg = replace(
        Config(),
        models=["gnb", "logreg"],
        sizes=[100, 200],
        n_seeds=2,
        slow_models=[],
        full_n_seeds=1,
        reuse_classify=False,
    )
    ctx = TaskContext(
        dataset=small_ds,
        out_dir=tmp_path,
        profile="quick",
        n_jobs=1,
        progress=False,
        points_dir=tmp_path / "points",
    )
    cfg = replace(cfg, n_test=100)
    rows = datasize.grow(ctx, cfg, [100, 200], {}).rows
    files = sorted((tmp_path / "points").glob("*.pkl"))
    assert len(rows) == len(files) == 2 * 2 * 2  # models x sizes x seeds
    again = datasize.grow(ctx, cfg, [100, 200], {}).rows
    assert [r["wall_seconds"] for r in again] == [r["wall_seconds"] for r in rows]  # read back, not retrained
    assert sorted((tmp_path / "points").glob("*.pkl")) == files
    # another model setting (the model's key changes through the shared ZooSettings) trains afresh
    other = replace(cfg, models=["logreg"], sizes=[100], n_seeds=1, mlp_epochs=3, n_estimators=7)
    datasize.grow(ctx, other, [100], {})
    assert len(list((tmp_path / "points").glob("*.pkl"))) == len(files) + 1


def test_growth_on_a_small_dataset_fits_the_pca_models(small_ds, tmp_path):
    """datasize on a few dozen images per size (a small fundus set, sklearn digits subsets): the models
    with a PCA-50 front end (k-NN, boosting, RBF SVM) train at 30 images instead of raising."""
    cfg = replace(
        Config(),
        models=["knn", "hgb", "rbf_svm"],
        sizes=[30, 60],
        n_seeds=1,
        slow_models=[],
        full_n_seeds=1,
        reuse_classify=False,
        hgb_max_iter=10,
        svm_search_size=40,
        svm_C=[5.0],
        svm_gamma=[0.02, 0.04],
    )
    ctx = TaskContext(dataset=small_ds, out_dir=tmp_path, profile="quick", n_jobs=1, progress=False)
    rows = datasize.grow(ctx, replace(cfg, n_test=100), [30, 60], {}).rows
    assert [(r["model"], r["n_train"]) for r in rows] == [(m, n) for m in cfg.models for n in (30, 60)]
    assert all(len(r["y_pred"]) == 100 for r in rows)
    assert max(r["accuracy"] for r in rows if r["model"] == "knn") > 0.5  # chance is 0.1


def test_learning_curve_experiment_gives_the_seed_rule_the_fits_and_known_runs(small_ds):
    """The experiment on its own: slow models get fewer seeds, the whole set its own count, a known
    run replaces the first seed's training, and the tables hold what the fits say."""
    lc = learning_curve(
        small_ds,
        {"gnb": "gnb", "LR": ("logreg", {"C": 0.5})},
        [100, 200, 400, 0],
        seeds=2,
        slow_models=["LR"],
        slow_seeds=1,
        full_seeds=1,
        n_test=100,
        n_draws=200,
        milestones=[100, 0, 5000],
    )
    counts = lc.runs.groupby(["model", "n_train"]).size()
    assert counts[("gnb", 100)] == 2 and counts[("LR", 100)] == 1 and counts[("gnb", 600)] == 1
    assert list(lc.fits.index) == ["gnb", "LR"] and (lc.fits["ceiling_accuracy"] == 1 - lc.fits["c"]).all()
    for m, f in lc.power_laws.items():
        g = lc.runs[lc.runs["model"] == m]
        assert f.c == pytest.approx(fit_power_law(g["n_train"], 1 - g["accuracy"]).c)
    assert sorted(set(lc.milestones["n_train"])) == [100, 600] and lc.class_gain.shape == (2, 10)
    assert [r["model"] for r in lc.tables["fits"]] == ["gnb", "LR"]
    known = {("gnb", 600): {**lc.rows[-1], "model": "gnb", "n_train": 600, "seed": 0, "source": "elsewhere"}}
    lc2 = learning_curve(small_ds, ["gnb"], [100, 0], seeds=1, n_test=100, known=known)
    assert list(lc2.runs["source"]) == ["trained", "elsewhere"]
