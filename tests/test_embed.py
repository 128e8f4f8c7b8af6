"""2-D embeddings: behaviour of PCA/t-SNE/UMAP on data with known structure, the quality measures
against scikit-learn, the plots, the interactive HTML, and the ``embed`` task end to end."""

import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from digitlab import embed as E
from digitlab.data.subsets import stratified_subset
from digitlab.exceptions import ConfigError


def gaussian_clusters(n_per: int = 60, n_clusters: int = 5, dim: int = 20, seed: int = 0):
    """Clusters whose centres lie on a circle of radius 12 in a random 2-D plane of R^dim; noise std 1."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(n_clusters) / n_clusters
    plane = np.linalg.qr(rng.normal(size=(dim, 2)))[0].T  # 2 orthonormal directions
    centres = 12 * np.stack([np.cos(angles), np.sin(angles)], 1) @ plane
    y = np.repeat(np.arange(n_clusters), n_per)
    x = centres[y] + rng.normal(size=(len(y), dim))
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def clusters():
    return gaussian_clusters()


# ---- embeddings ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", E.METHODS)
def test_separated_clusters_stay_separated(clusters, method):
    x, y = clusters
    emb = E.embed(x, method, seed=0, pca_dims=10)
    assert emb.shape == (len(x), 2) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert E.knn_accuracy_2d(emb, y, k=10) > 0.95


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_same_seed_same_embedding(clusters, method):
    x, _ = clusters
    np.testing.assert_array_equal(E.embed(x, method, seed=3), E.embed(x, method, seed=3))


def test_pca_2d_matches_sklearn(clusters):
    from sklearn.decomposition import PCA

    x, _ = clusters
    ref = PCA(2, svd_solver="full").fit_transform(x)
    ours = E.pca_2d(x)
    # principal axes are defined up to sign
    np.testing.assert_allclose(np.abs(ours), np.abs(ref), atol=1e-3)


def test_unknown_method_and_parameter_raise_config_error(clusters):
    x, _ = clusters
    with pytest.raises(ConfigError, match="isomap"):
        E.embed(x, "isomap")
    with pytest.raises(ConfigError, match="perplexityy"):
        E.embed(x, "tsne", perplexityy=10)
    with pytest.raises(ConfigError, match="pca"):
        E.embed(x, "pca", n_neighbors=5)


def test_to_features_scales_uint8_and_passes_floats():
    img = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    np.testing.assert_allclose(E.to_features(img), [[0, 1, 0.2, 0.4]], atol=1e-7)
    f = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(E.to_features(f), f)


# ---- quality measures ----------------------------------------------------------------------


def test_trustworthiness_of_identity_is_one_and_of_noise_low():
    rng = np.random.default_rng(0)
    x2 = rng.normal(size=(400, 2))
    assert E.trustworthiness(x2, x2, n_neighbors=10) == pytest.approx(1.0)
    assert E.trustworthiness(x2, rng.normal(size=(400, 2)), n_neighbors=10) < 0.7


def test_trustworthiness_matches_sklearn_and_subsamples_reproducibly(clusters):
    from sklearn.manifold import trustworthiness as sk_trust

    x, _ = clusters
    emb = E.pca_2d(x)
    assert E.trustworthiness(x, emb, 7) == pytest.approx(sk_trust(x, emb, n_neighbors=7))
    sub = E.trustworthiness(x, emb, 7, max_points=100, seed=1)
    assert sub == E.trustworthiness(x, emb, 7, max_points=100, seed=1)
    idx = np.sort(np.random.default_rng(1).choice(len(x), 100, replace=False))
    assert sub == pytest.approx(sk_trust(x[idx], emb[idx], n_neighbors=7))


def test_silhouette_high_for_separated_and_zero_for_random_labels(clusters):
    x, y = clusters
    emb = E.pca_2d(x)
    assert E.silhouette_by_class(emb, y) > 0.7
    shuffled = np.random.default_rng(0).permutation(y)
    assert abs(E.silhouette_by_class(emb, shuffled)) < 0.1


def test_knn_accuracy_of_random_labels_is_chance():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(1000, 2))
    y = rng.integers(0, 4, 1000)
    assert abs(E.knn_accuracy_2d(emb, y) - 0.25) < 0.05


def test_neighbour_class_fractions_and_overlapping_pairs():
    # classes 0 and 1 interleaved on a line, class 2 far away
    emb = np.stack([np.r_[np.arange(40.0), 1000 + np.arange(20.0)], np.zeros(60)], 1)
    y = np.r_[np.arange(40) % 2, np.full(20, 2)]
    f = E.neighbour_class_fractions(emb, y, k=2)
    np.testing.assert_allclose(f.sum(1), 1)
    assert f[2, 2] == 1 and f[0, 2] == 0
    assert f[0, 1] > 0.45 and f[1, 0] > 0.45  # neighbours on a line alternate between 0 and 1
    pairs = E.overlapping_pairs(f, ["a", "b", "c"], top=2)
    assert pairs[0]["pair"] == "a/b" and pairs[0]["overlap %"] > 45 and pairs[1]["overlap %"] == 0


# ---- plots and HTML ------------------------------------------------------------------------


def test_plot_embedding_draws_points_labels_and_highlight(clusters):
    x, y = clusters
    fig = E.plot_embedding(E.pca_2d(x), y, list("abcde"), "t", highlight=np.arange(7))
    ax = fig.axes[0]
    assert len(ax.collections[0].get_offsets()) == len(x)
    assert len(ax.collections[1].get_offsets()) == 7
    assert sorted(t.get_text() for t in ax.texts) == list("abcde")
    assert "(7)" in ax.get_legend().get_texts()[0].get_text()


def _plotly_traces(html: str) -> list[dict]:
    """The traces passed to Plotly.newPlot in a fragment (typed arrays decoded)."""
    start = re.search(r'Plotly\.newPlot\(\s*"[^"]+",\s*', html).end()
    traces, _ = json.JSONDecoder().raw_decode(html, start)

    def arr(v):
        if isinstance(v, dict) and "bdata" in v:
            a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
            return a.reshape([int(d) for d in str(v["shape"]).split(",")]) if "shape" in v else a
        return np.asarray(v)

    return [{k: arr(t[k]) for k in ("x", "y", "customdata")} | {"name": t["name"]} for t in traces]


def test_interactive_html_has_every_point_and_its_image(mnist):
    idx = stratified_subset(mnist.y_train, total=120, seed=0)
    images, y = mnist.x_train[idx], mnist.y_train[idx]
    emb = np.random.default_rng(0).normal(size=(120, 2)).astype(np.float32)
    html = E.interactive_embedding_html(emb, y, images, mnist.classes, idx, "test map", max_points=500)
    assert "plotly_hover" in html and 'class="dl-thumb"' in html and "<script src" not in html
    thumbs = json.loads(re.search(r"var thumbs = (\[.*?\]);", html).group(1))
    traces = _plotly_traces(html)
    assert sorted(t["name"] for t in traces) == mnist.classes
    seen = 0
    for t in traces:
        for (ds_index, pos), px, py in zip(t["customdata"].astype(int), t["x"], t["y"]):
            row = int(np.flatnonzero(idx == ds_index)[0])
            assert mnist.classes[y[row]] == t["name"]
            assert (px, py) == pytest.approx(tuple(emb[row]))
            png = np.asarray(Image.open(io.BytesIO(base64.b64decode(thumbs[pos]))))
            np.testing.assert_array_equal(png, 255 - images[row])  # the hovered point's own image
            seen += 1
    assert seen == 120


def test_interactive_html_subsamples_to_max_points(mnist):
    idx = np.arange(300)
    emb = np.zeros((300, 2), np.float32)
    html = E.interactive_embedding_html(
        emb, mnist.y_train[idx], mnist.x_train[idx], mnist.classes, idx, "m", max_points=100
    )
    assert sum(len(t["x"]) for t in _plotly_traces(html)) == 100
    assert len(json.loads(re.search(r"var thumbs = (\[.*?\]);", html).group(1))) == 100


def test_save_and_load_embedding(tmp_path):
    emb = np.arange(10, dtype=np.float32).reshape(5, 2)
    E.save_embedding(tmp_path, "tsne", np.array([3, 1, 4, 1, 5]), emb)
    idx, back = E.load_embedding(tmp_path, "tsne")
    np.testing.assert_array_equal(back, emb)
    np.testing.assert_array_equal(idx, [3, 1, 4, 1, 5])


# ---- the task ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(mnist):
    tr = stratified_subset(mnist.y_train, per_class=30, seed=0)
    te = stratified_subset(mnist.y_test, per_class=10, seed=0)
    return mnist.subset(tr, te, "mnist-tiny")


def test_task_yields_tables_figures_and_embeddings(tiny, tmp_path):
    from digitlab.study.task import TaskContext
    from digitlab.study.tasks import embed as task

    cfg = task.Config(n_points=300, interactive_points=100, quality_points=200)
    cfg.validate()
    res = task.run(TaskContext(dataset=tiny, out_dir=tmp_path, progress=False), cfg)
    assert [t.name for t in res.tables] == ["methods", "overlaps", "own_class"]
    assert [r["method"] for r in res.tables[0].rows] == ["PCA", "t-SNE", "UMAP"]
    assert all(
        0 <= r["k-NN accuracy (2-D)"] <= 1 and 0 <= r["trustworthiness"] <= 1 for r in res.tables[0].rows
    )
    assert len(res.tables[1].rows) == 3 * cfg.top_pairs
    assert len(res.figures) == 4 and all((tmp_path / f.file).is_file() for f in res.figures)
    assert all((tmp_path / f.html_file).is_file() for f in res.figures[1:])
    for m in ("pca", "tsne", "umap"):
        idx, emb = E.load_embedding(tmp_path, m)
        assert emb.shape == (300, 2)
    np.testing.assert_array_equal(idx, res.metrics["indices"])
    assert len(res.findings) >= 5 and any("4" in f or "9" in f for f in res.findings)
    json.dumps(res.metrics), json.dumps([t.rows for t in res.tables])  # plain JSON types only


def test_task_all_points_uses_train_and_test(tiny, tmp_path):
    from digitlab.study.task import TaskContext
    from digitlab.study.tasks import embed as task

    cfg = task.Config(methods=["pca"], n_points="all", interactive_points=0, quality_points=100)
    res = task.run(TaskContext(dataset=tiny, out_dir=tmp_path, progress=False), cfg)
    assert res.metrics["n_points"] == 400 and res.metrics["indices"] == list(range(400))
    assert res.figures[1].html_file is None


@pytest.mark.parametrize(
    "bad",
    [
        {"methods": ["isomap"]},
        {"methods": []},
        {"n_points": "some"},
        {"n_points": 10},
        {"min_dist": 2.0},
        {"pca_dims": 1},
    ],
)
def test_task_config_rejects_bad_values(bad):
    from digitlab.study.config import resolve

    with pytest.raises(ConfigError, match="embed"):
        resolve({"study": {"tasks": ["embed"]}, "embed": bad})


def test_task_profiles_resolve():
    from digitlab.study.config import resolve

    assert resolve({"study": {"tasks": ["embed"], "profile": "full"}}).tasks["embed"].n_points == "all"
    assert resolve({"study": {"tasks": ["embed"], "profile": "quick"}}).tasks["embed"].n_points == 1500


def test_best_method_finding_reports_ties_and_winners():
    from digitlab.study.prose.embed import best_sentence as _best_sentence

    rows = [
        {"method": "PCA", "k-NN accuracy (2-D)": 0.43, "trustworthiness": 0.73, "silhouette": 0.02},
        {"method": "t-SNE", "k-NN accuracy (2-D)": 0.9471, "trustworthiness": 0.968, "silhouette": 0.34},
        {"method": "UMAP", "k-NN accuracy (2-D)": 0.9467, "trustworthiness": 0.952, "silhouette": 0.44},
    ]
    text = _best_sentence(rows)
    assert text.startswith("The best map depends on the measure")
    assert "t-SNE and UMAP tie (0.947/0.947; PCA 0.430)" in text
    assert "by silhouette UMAP (0.440;" in text and "by trustworthiness t-SNE (0.968;" in text
    rows[2]["silhouette"] = 0.30
    assert _best_sentence(rows).startswith("t-SNE separates the classes best by all three measures")


def test_embedding_study_measures_every_map_of_the_same_points(tiny):
    from digitlab.experiments.embedding import embedding_study

    res = embedding_study(tiny, ["pca", "tsne"], n_points=200, quality_points=100, top_pairs=3, k=5)
    assert list(res.methods["method"]) == ["PCA", "t-SNE"] and set(res.methods["points"]) == {200}
    assert res.methods[["k-NN accuracy (2-D)", "trustworthiness"]].to_numpy().min() >= 0
    assert len(res.overlaps) == 2 * 3 and len(res.own_class) == tiny.n_classes
    assert {m: e.shape for m, e in res.embeddings.items()} == {"pca": (200, 2), "tsne": (200, 2)}
    assert res.space_name == "50-D PCA space" and len(res.pred) == 200
    np.testing.assert_array_equal(res.hard, np.flatnonzero(res.pred != res.y))
    assert np.allclose(np.diag(res.ink), 1.0) and 0 < res.pca_variance_kept < 100
    assert set(res.ink_rho) == {"pca", "tsne"} and all(-1 <= r <= 1 for r in res.ink_rho.values())
    again = embedding_study(tiny, ["pca"], n_points=200, quality_points=100, k=5)
    np.testing.assert_array_equal(again.embeddings["pca"], res.embeddings["pca"])  # seeded: the same map
    import matplotlib.pyplot as plt

    for fig in (res.plot(), res.plot_map("tsne", "t-SNE")):
        assert isinstance(fig, plt.Figure)
        plt.close(fig)
