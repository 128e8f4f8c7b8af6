"""Hand-crafted features: known answers on synthetic shapes, scikit-image/scikit-learn references, MNIST sanity, the task."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from digitlab import features as F
from digitlab.data import stratified_subset
from digitlab.exceptions import ConfigError, DatasetError

# ---------------------------------------------------------------------------------------------
# Synthetic shapes
# ---------------------------------------------------------------------------------------------


def blank(n: int = 1, size: int = 28) -> np.ndarray:
    return np.zeros((n, size, size), dtype=np.uint8)


def square() -> np.ndarray:
    img = blank()
    img[0, 8:18, 10:20] = 255  # 10 x 10, rows 8..17, cols 10..19
    return img


def ring() -> np.ndarray:
    img = square()
    img[0, 11:15, 13:17] = 0  # a 4 x 4 hole in the middle
    return img


def figure_eight() -> np.ndarray:
    img = blank()
    img[0, 4:24, 9:19] = 255
    img[0, 7:12, 12:16] = 0  # upper hole
    img[0, 16:21, 12:16] = 0  # lower hole
    return img


def bar(horizontal: bool) -> np.ndarray:
    img = blank()
    if horizontal:
        img[0, 13:15, 4:24] = 255  # 2 rows x 20 columns
    else:
        img[0, 4:24, 13:15] = 255
    return img


def features_of(img: np.ndarray, **kw) -> dict[str, float]:
    X, names = F.extract_features(img, **kw)
    return dict(zip(names, X[0].astype(float)))


def test_filled_square_known_answers():
    f = features_of(square())
    assert f["ink_fixed"] == pytest.approx(100 / 784)
    assert f["ink_otsu"] == pytest.approx(100 / 784)
    assert f["mean_intensity"] == pytest.approx(100 / 784, rel=1e-5)
    assert (f["bbox_width"], f["bbox_height"], f["aspect_ratio"]) == (10, 10, 1)
    assert (f["centroid_row"], f["centroid_col"]) == pytest.approx((12.5, 14.5))
    assert f["mu20"] == pytest.approx((10**2 - 1) / 12, rel=1e-4)  # variance of 10 consecutive integers
    assert f["mu02"] == pytest.approx(f["mu20"], rel=1e-4)
    assert f["mu11"] == pytest.approx(0, abs=1e-4)
    assert f["eccentricity"] == pytest.approx(0, abs=1e-2)
    assert f["symmetry_lr"] == pytest.approx(1) and f["symmetry_tb"] == pytest.approx(1)
    assert (f["holes"], f["n_components"], f["euler_number"]) == (0, 1, 1)
    assert (f["row_n_peaks"], f["col_n_peaks"]) == (1, 1)


def test_ring_has_one_hole_and_eight_has_two():
    r, e = features_of(ring()), features_of(figure_eight())
    assert (r["holes"], r["euler_number"], r["n_components"]) == (1, 0, 1)
    assert (e["holes"], e["euler_number"], e["n_components"]) == (2, -1, 1)
    assert r["symmetry_lr"] == pytest.approx(1) and r["symmetry_tb"] == pytest.approx(1)


def test_bars_orientation_aspect_and_moments():
    h, v = features_of(bar(True)), features_of(bar(False))
    assert h["orientation_deg"] == pytest.approx(0, abs=1e-3)
    assert v["orientation_deg"] == pytest.approx(90, abs=1e-3)
    assert h["aspect_ratio"] == pytest.approx(10) and v["aspect_ratio"] == pytest.approx(0.1)
    assert h["mu11"] == pytest.approx(0, abs=1e-4) and v["mu11"] == pytest.approx(0, abs=1e-4)
    assert h["mu20"] > 30 * h["mu02"] and v["mu02"] > 30 * v["mu20"]
    assert h["eccentricity"] > 0.99 and v["eccentricity"] > 0.99
    assert h["mu20"] == pytest.approx(v["mu02"], rel=1e-4)  # a transposed shape swaps the moments
    assert h["stroke_width"] == pytest.approx(2, rel=0.15)  # 40 ink pixels on a ~20-pixel skeleton


def test_diagonal_line_angle_and_slant_sign():
    img = blank()
    i = np.arange(6, 22)
    img[0, i, 27 - i] = 255  # '/' as displayed: going down a row moves one column left
    f = features_of(img)
    assert f["orientation_deg"] == pytest.approx(45, abs=1e-3)
    assert f["mu11"] < 0
    img2 = img[:, :, ::-1].copy()  # '\'
    assert features_of(img2)["orientation_deg"] == pytest.approx(135, abs=1e-3)


def test_asymmetric_shape_and_empty_image():
    img = blank()
    img[0, 5:20, 5:8] = 255
    img[0, 17:20, 5:20] = 255  # an L
    f = features_of(img)
    assert f["symmetry_lr"] < 0.7 and f["symmetry_tb"] < 0.7
    X, _ = F.extract_features(blank(2))
    assert np.isfinite(X).all()


def test_zoning_grid_matches_block_means():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    X, names = F.extract_features(imgs, zoning=4)
    got = X[:, [names.index(f"zone_r{i}_c{j}") for i in range(4) for j in range(4)]]
    ref = (imgs / 255.0).reshape(5, 4, 7, 4, 7).mean((2, 4)).reshape(5, 16)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    X3, names3 = F.extract_features(imgs, zoning=3)
    assert sum(n.startswith("zone_") for n in names3) == 9 and len(set(names3)) == len(names3)
    # uneven cells still cover every pixel once: the area-weighted cell means give the image mean
    cells = F.zoning_means(imgs / 255.0, 3)
    edges = np.diff(np.linspace(0, 28, 4).astype(int))
    area = np.outer(edges, edges).ravel()
    np.testing.assert_allclose(cells @ area / 784, (imgs / 255.0).mean((1, 2)))


def test_bad_input_is_an_error():
    with pytest.raises(DatasetError):
        F.extract_features(np.zeros((2, 28, 28), dtype=np.float32))
    with pytest.raises(ConfigError):
        F.extract_features(blank(), threshold=0)


# ---------------------------------------------------------------------------------------------
# Against scikit-image / scipy references
# ---------------------------------------------------------------------------------------------


def random_binary(n: int = 60, size: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    density = rng.uniform(0.2, 0.8, (n, 1, 1))
    noisy = rng.random((n, size, size)) < density
    smooth = ndi.uniform_filter(rng.random((n, size, size)), size=(1, 3, 3)) > 0.5  # blobs with holes
    return np.concatenate([noisy, smooth])


def test_euler_numbers_match_skimage():
    from skimage.measure import euler_number

    b = random_binary()
    for conn, sk_conn in ((8, 2), (4, 1)):
        ref = np.array([euler_number(im, connectivity=sk_conn) for im in b])
        np.testing.assert_array_equal(F.euler_numbers(b, conn), ref)


def test_components_match_per_image_labelling():
    b = random_binary()
    ref = np.array([ndi.label(im, structure=np.ones((3, 3)))[1] for im in b])
    np.testing.assert_array_equal(F.count_components(b), ref)


def test_skeleton_lengths_match_per_image_skeletonize():
    from skimage.morphology import skeletonize

    b = random_binary(20, seed=1)
    ref = np.array([skeletonize(np.pad(im, 1)).sum() for im in b])
    np.testing.assert_array_equal(F.skeleton_lengths(b), ref)


def test_otsu_matches_skimage(mnist):
    from skimage.filters import threshold_otsu

    rng = np.random.default_rng(0)
    imgs = np.concatenate(
        [
            mnist.x_test[:100],
            rng.integers(0, 256, (20, 28, 28)).astype(np.uint8),
            rng.integers(40, 60, (5, 28, 28)).astype(np.uint8),
            np.full((2, 28, 28), 7, np.uint8),
        ]
    )
    ref = np.array([threshold_otsu(im) for im in imgs])
    np.testing.assert_array_equal(F.otsu_thresholds(imgs), ref)


def test_class_mean_images_match_numpy(mnist):
    x, y = mnist.x_test[:500], mnist.y_test[:500]
    means, variances = F.class_mean_images(x, y, 11)  # class 10 is empty
    np.testing.assert_allclose(means[3], x[y == 3].mean(0) / 255, rtol=1e-5)
    np.testing.assert_allclose(variances[7], (x[y == 7] / 255.0).var(0), rtol=1e-4, atol=1e-7)
    assert not means[10].any()


# ---------------------------------------------------------------------------------------------
# Discriminability
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_feats(mnist):
    idx = stratified_subset(mnist.y_test, per_class=100, seed=0)
    X, names = F.extract_features(mnist.x_test[idx])
    return X, mnist.y_test[idx], names, idx


def test_holes_on_mnist_zero_vs_one(mnist_feats):
    X, y, names, _ = mnist_feats
    holes = X[:, names.index("holes")]
    assert 0.8 <= holes[y == 0].mean() <= 1.2
    assert holes[y == 1].mean() <= 0.1
    assert holes[y == 8].mean() > 1.4  # most eights close both loops


def test_f_scores_equal_sklearn_and_mi_is_seeded(mnist_feats):
    from sklearn.feature_selection import f_classif

    X, y, names, _ = mnist_feats
    rows = F.feature_scores(X, y, names, seed=3)
    ref = f_classif(X.astype(np.float64), y)[0]
    np.testing.assert_allclose([r["F"] for r in rows], ref, rtol=1e-10)
    assert [r["MI"] for r in rows] == [r["MI"] for r in F.feature_scores(X, y, names, seed=3)]
    assert sorted(r["rank_F"] for r in rows) == list(range(1, len(names) + 1))
    best = min(rows, key=lambda r: r["rank_F"])
    assert best["F"] == max(r["F"] for r in rows)
    by_name = {r["feature"]: r for r in rows}
    assert (
        by_name["holes"]["MI"] > 5 * by_name["centroid_col"]["MI"]
    )  # topology carries class information, centring not


def test_pairwise_auc_matches_roc_auc_score():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    X = np.c_[rng.normal(size=600) + y, rng.integers(0, 3, 600), np.zeros(600)]
    auc = F.pairwise_auc(X, y, 3)
    for k in range(3):
        for a in range(3):
            for b in range(3):
                if a != b:
                    m = (y == a) | (y == b)
                    assert auc[k, a, b] == pytest.approx(roc_auc_score(y[m] == a, X[m, k]))
    np.testing.assert_allclose(auc + auc.transpose(0, 2, 1), 1.0)


def test_pairwise_separation_finds_the_planted_pair():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 200)
    X = rng.normal(size=(800, 2))
    X[y == 2, 0] += 6  # feature 0 separates class 2 from everything
    rows = F.pairwise_separation(X, y, ["planted", "noise"], ["a", "b", "c", "d"])
    assert rows[0]["best_pair"].split(" vs ").count("c") == 1 and rows[0]["higher"] == "c"
    assert rows[0]["auc"] > 0.99 and rows[0]["cohen_d"] > 4
    assert rows[1]["mean_pair_auc"] < 0.6


# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------


def test_task_runs_small_and_writes_its_outputs(tmp_path, mnist):
    from digitlab.study.task import TaskContext
    from digitlab.study.tasks import features as task

    tr = stratified_subset(mnist.y_train, total=600, seed=0)
    te = stratified_subset(mnist.y_test, total=200, seed=0)
    ds = mnist.subset(tr, te, "mnist-tiny")
    cfg = dataclasses.replace(task.Config(), **task.PROFILES["quick"])
    cfg = dataclasses.replace(
        cfg, n_train=500, n_test=0, extract_all=True, rf_trees=20, classifiers=["logreg", "rf"]
    )
    cfg.validate()
    res = task.run(TaskContext(ds, tmp_path, profile="quick", progress=False), cfg)

    assert {t.name for t in res.tables} == {"feature_scores", "class_means", "accuracy"}
    assert {f.name for f in res.figures} == {
        "class_means",
        "feature_scores",
        "distributions",
        "pair_separation",
    }
    assert all((tmp_path / f.file).is_file() for f in res.figures)
    acc = next(t for t in res.tables if t.name == "accuracy").rows
    assert len(acc) == 6 and all(
        0.6 < r["accuracy"] <= 1 for r in acc if r["input"] != f"top-{cfg.top_k} features"
    )
    assert res.metrics["n_train"] == 500 and res.metrics["n_test"] == 200
    assert len(res.findings) >= 6 and any("hole" in s for s in res.findings)
    json.dumps([t.rows for t in res.tables]), json.dumps(res.metrics)  # plain JSON types only


def test_config_rejects_bad_values():
    from digitlab.study.tasks import features as task

    for bad in ({"rank_by": "chi2"}, {"classifiers": ["svm"]}, {"threshold": 300}, {"classifiers": []}):
        with pytest.raises(ConfigError):
            dataclasses.replace(task.Config(), **bad).validate()


def test_feature_study_scores_ranks_and_compares_with_pixels(mnist):
    from digitlab.experiments.feature_study import feature_study

    fs = feature_study(mnist, n_train=400, n_test=200, top_k=4, n_plot=3, classifiers=["logreg"], seed=0)
    names = fs.names
    assert list(fs.scores["feature"]) == names and sorted(fs.scores["rank_F"]) == list(
        range(1, len(names) + 1)
    )
    assert (fs.scores["pair_auc"] >= 0.5).all() and fs.X_train.shape == (400, len(names)) and fs.n_test == 200
    assert list(fs.accuracy["input"]) == ["all features", "top-4 features", "raw pixels"]
    assert (fs.accuracy["accuracy"] > 0.5).all()
    assert len(fs.shown) == 3 and list(fs.class_means["feature"]) == fs.shown
    assert fs.timing["n_images"] == 600 and set(fs.step_seconds) == {"extract", "scores", "classifiers"}
    holes = fs.class_mean("holes")
    assert holes["8"] > holes["1"]  # an eight has two loops, a one none
    with pytest.raises(ConfigError, match="rank_by"):
        feature_study(mnist, n_train=100, rank_by="chi2")
    import matplotlib.pyplot as plt

    for fig in (fs.plot(), fs.plot_class_means(), fs.plot_distributions(), fs.plot_pair_separation()):
        assert isinstance(fig, plt.Figure)
        plt.close(fig)
