"""Clustering: scores against scikit-learn, purity and Hungarian matching by hand, layer activations of every
network family, and the cluster task end to end on small MNIST data (and on colour images)."""

import logging

import numpy as np
import pytest
from sklearn import metrics as M

from digitlab.data.dataset import Dataset
from digitlab.exceptions import ConfigError
from digitlab.experiments import clustering as C
from digitlab.models.nets import NET_NAMES, build_net
from digitlab.study.task import TaskContext, Upstream

# ---------------------------------------------------------------------------------------------
# Agreement scores
# ---------------------------------------------------------------------------------------------

PARTITIONS = {
    "identical up to renaming": (np.repeat([0, 1, 2, 3], 25), np.repeat([7, 2, 9, 0], 25)),
    "two classes merged": (np.repeat([0, 1, 2, 3], 25), np.repeat([0, 0, 1, 2], 25)),
    "a class split in two": (np.repeat([0, 1, 2], 30), np.r_[np.repeat([0, 1], 15), np.repeat([2, 3], 30)]),
    "random": (np.random.default_rng(0).integers(0, 5, 200), np.random.default_rng(1).integers(0, 7, 200)),
    "with noise": (
        np.repeat([0, 1, 2], 20),
        np.r_[np.repeat(0, 17), [-1] * 3, np.repeat(1, 20), np.repeat(2, 15), [-1] * 5],
    ),
}


@pytest.mark.parametrize("name", PARTITIONS)
def test_scores_equal_scikit_learn(name):
    y, lab = PARTITIONS[name]
    s = C.agreement(y, lab)
    assert s["ari"] == pytest.approx(M.adjusted_rand_score(y, lab))
    assert s["nmi"] == pytest.approx(M.normalized_mutual_info_score(y, lab))
    assert s["homogeneity"] == pytest.approx(M.homogeneity_score(y, lab))
    assert s["completeness"] == pytest.approx(M.completeness_score(y, lab))
    table = M.cluster.contingency_matrix(y, lab)  # scikit-learn's contingency table (noise as a cluster)
    assert s["purity"] == pytest.approx(table.max(0).sum() / table.sum())
    ours, ids = C.contingency(y, lab)
    assert np.array_equal(ours, table) and list(ids) == sorted(set(lab))


def test_identical_partitions_score_one_and_noise_is_reported():
    y, lab = PARTITIONS["identical up to renaming"]
    s = C.agreement(y, lab)
    assert all(
        s[k] == pytest.approx(1.0)
        for k in ("ari", "nmi", "homogeneity", "completeness", "purity", "matched_accuracy")
    )
    y, lab = PARTITIONS["with noise"]
    s = C.agreement(y, lab)
    assert s["noise"] == pytest.approx(8 / 60) and s["n_clusters"] == 3
    assert s["ari_clustered"] == pytest.approx(1.0) and s["ari"] < 1
    assert np.allclose(C.noise_by_class(y, lab), [3 / 20, 0, 5 / 20])


def test_purity_and_hungarian_matching_on_a_constructed_case():
    # class 0: 4 in cluster 5, 1 in cluster 8; class 1: 2 in cluster 5, 3 in cluster 8; class 2: 5 in cluster 5.
    # Cluster 5 is the largest cluster of classes 0 and 2; one-to-one, it goes to class 2 (5 + 3 = 8 matched
    # images with 8 -> 1) rather than to class 0 (4 + 3 = 7), and class 0 is left without a cluster.
    y = np.array([0] * 5 + [1] * 5 + [2] * 5)
    lab = np.array([5, 5, 5, 5, 8] + [8, 8, 8, 5, 5] + [5] * 5)
    # purity: cluster 5 holds 4+2+5 = 11 images, majority 5 (class 2); cluster 8 holds 1+3, majority 3 -> 8/15
    assert C.purity(y, lab) == pytest.approx(8 / 15)
    mapping = C.hungarian_match(y, lab, 3)
    assert mapping == {5: 2, 8: 1}  # 5 + 3 = 8 matched images beats 4 + 3 = 7 (5 -> 0, 8 -> 1)
    assert C.matched_accuracy(y, lab, 3) == pytest.approx(8 / 15)
    table, names = C.matched_contingency(y, lab, 3)
    assert names == ["-", "8", "5"]  # class 0 has no cluster; class 1's is 8, class 2's is 5
    assert np.array_equal(np.diag(table), [0, 3, 5]) and table.sum() == 15


def test_hungarian_with_more_clusters_than_classes_and_noise():
    y = np.array([0] * 6 + [1] * 6)
    lab = np.array([0, 0, 0, 1, 1, -1, 2, 2, 2, 2, 3, -1])
    mapping = C.hungarian_match(y, lab, 2)
    assert mapping == {0: 0, 2: 1}  # clusters 1 and 3 stay unmatched; noise is never matched
    table, names = C.matched_contingency(y, lab, 2)
    assert names == ["0", "2", "1", "3", "noise"] and table.sum() == 12
    assert C.matched_accuracy(y, lab, 2) == pytest.approx(7 / 12)


@pytest.mark.parametrize("method", C.METHODS)
def test_every_method_finds_well_separated_blobs(method):
    from sklearn.datasets import make_blobs

    x, y = make_blobs(600, n_features=5, centers=4, cluster_std=0.5, random_state=0)
    lab = C.cluster(x, method, 4, seed=0)
    assert lab.shape == (600,) and M.adjusted_rand_score(y, lab) > 0.9


def test_unknown_method_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown"):
        C.cluster(np.zeros((10, 2)), "dbscan", 2)


# ---------------------------------------------------------------------------------------------
# Layers of the networks
# ---------------------------------------------------------------------------------------------

EXPECTED_BLOCKS = {
    "cnn": 3,
    "lenet5": 2,
    "resnet": 4,
    "convmixer": 5,
}  # defaults: 3 blocks; 2 stages; stem+3; patch+4


@pytest.mark.parametrize("net_name", NET_NAMES)
@pytest.mark.parametrize("in_shape", [(1, 28, 28), (1, 8, 8), (3, 16, 16)])
def test_layer_activation_shapes(net_name, in_shape):
    import torch

    net = build_net(net_name, in_shape, 10, seed=0)
    hwc = (in_shape[1], in_shape[2]) if in_shape[0] == 1 else (in_shape[1], in_shape[2], in_shape[0])
    x = np.random.default_rng(0).integers(0, 256, (7, *hwc), dtype=np.uint8)
    out = C.layer_activations(net, x, (0.1, 0.3), batch_size=3, keep_maps=2)
    blocks = C.conv_blocks(net)
    assert len(blocks) == EXPECTED_BLOCKS[net_name] and out["layers"] == [n for n, _ in blocks] + [
        "penultimate"
    ]
    # each block's recorded shape is its module's real output shape, taken independently of the hooks
    feats = net.features
    h = C.images_to_tensor(x[:1], (0.1, 0.3))
    real = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, o, n=n: real.__setitem__(n, tuple(o.shape[1:])))
        for n, m in blocks
    ]
    with torch.no_grad():
        feats.eval()(h)
    for hk in hooks:
        hk.remove()
    for name, _ in blocks:
        c, hh, ww = out["shapes"][name]
        assert (c, hh, ww) == real[name]
        assert out["features"][name]["gap"].shape == (7, c)
        assert out["features"][name]["flatten"].shape == (7, c * hh * ww)
        assert out["maps"][name].shape == (2, c, hh, ww)
        assert np.allclose(out["features"][name]["gap"][:2], out["maps"][name].mean((2, 3)), atol=1e-5)
    last = C.penultimate_module(net)
    assert out["features"]["penultimate"]["gap"].shape == (7, last.in_features)
    # the penultimate layer, fed through the last linear layer, gives the network's logits
    with torch.no_grad():
        logits = net.eval()(C.images_to_tensor(x, (0.1, 0.3))).numpy()
        again = last(torch.from_numpy(out["features"]["penultimate"]["flatten"])).numpy()
    assert np.allclose(logits, again, atol=1e-4)
    assert C.first_conv_weights(net).shape[1] == in_shape[0]


def test_linear_probe_reads_separable_features_and_not_noise():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 100)
    x = rng.normal(size=(400, 20)) + 4 * np.eye(20)[y]
    assert C.linear_probe(x, y, seed=0) > 0.95
    assert C.linear_probe(rng.normal(size=(400, 20)), y, seed=0) < 0.45


# ---------------------------------------------------------------------------------------------
# The task end to end
# ---------------------------------------------------------------------------------------------


def _ctx(ds, out_dir, inputs=None):
    return TaskContext(
        dataset=ds,
        out_dir=out_dir,
        profile="quick",
        seed=0,
        progress=False,
        log=logging.getLogger("test"),
        inputs=inputs or {},
    )


def _small(ds, n_train, n_test):
    from digitlab.data.subsets import subset_indices

    return ds.subset(subset_indices(ds.y_train, n_train, 0), subset_indices(ds.y_test, n_test, 0))


def _embedded(ds, tmp_path, methods=("pca", "tsne"), n_points=400):
    from digitlab.study.tasks import embed

    folder = tmp_path / "embed"
    folder.mkdir()
    cfg = embed.Config(methods=list(methods), n_points=n_points, interactive_points=0, quality_points=200)
    return Upstream(embed.run(_ctx(ds, folder), cfg), folder)


def test_task_end_to_end_on_small_mnist(mnist, tmp_path):
    from digitlab.study.tasks import cluster

    ds = _small(mnist, 1200, 400)
    up = _embedded(ds, tmp_path)
    out = tmp_path / "cluster"
    out.mkdir()
    cfg = cluster.Config(
        spaces=["pixels", "pca", "tsne"],
        draw_on="tsne",
        n_points=300,
        n_train=600,
        n_test=300,
        min_steps=30,
        layer_methods=["kmeans"],
        kmeans_n_init=1,
    )
    res = cluster.run(_ctx(ds, out, {"embed": up}), cfg)
    methods = {t.name: t for t in res.tables}["methods"]
    assert len(methods.rows) == 3 * len(C.METHODS)
    assert all(-0.5 <= r["ARI"] <= 1 and 0 <= r["NMI"] <= 1 for r in methods.rows)
    # pixel-space k-means on MNIST is far better than chance
    km = next(r for r in methods.rows if r["space"] == "raw pixels" and r["method"] == "k-means")
    assert km["ARI"] > 0.15 and km["NMI"] > 0.3
    layers = {t.name: t for t in res.tables}["layers"].rows
    trained = {r["layer"]: r for r in layers if r["net"] == "trained" and r["merge"] in ("-", "flattened")}
    untrained = {
        r["layer"]: r for r in layers if r["net"] == "untrained" and r["merge"] in ("-", "flattened")
    }
    assert list(trained) == ["input", "block 1", "block 2", "block 3", "penultimate"]
    assert trained["penultimate"]["probe accuracy"] > untrained["penultimate"]["probe accuracy"]
    assert trained["penultimate"]["ARI kmeans"] > untrained["penultimate"]["ARI kmeans"]
    assert res.headline and len(res.findings) >= 5 and "HDBSCAN" in " ".join(res.findings)
    from PIL import Image

    for fig in res.figures:
        assert (out / fig.file).stat().st_size > 500, fig.file
        # saved at 110 dpi: no wider than the report prints legibly (7.5 in, with bbox slack)
        assert Image.open(out / fig.file).size[0] / 110 <= 7.7, (fig.file, Image.open(out / fig.file).size)
    assert {f.name for f in res.figures} >= {
        "contingency",
        "assignments_pixels",
        "layer_scores",
        "filters",
        "feature_maps_1",
    }


def test_task_on_colour_images_clusters_every_channel(tmp_path):
    from digitlab.study.tasks import cluster

    rng = np.random.default_rng(0)
    colours = np.array([[220, 30, 30], [30, 220, 30], [30, 30, 220]], dtype=np.uint8)

    def images(n):
        y = np.repeat(np.arange(3), n // 3)
        x = np.clip(colours[y][:, None, None, :] + rng.normal(0, 25, (len(y), 6, 6, 3)), 0, 255).astype(
            np.uint8
        )
        return x, y

    (xtr, ytr), (xte, yte) = images(240), images(60)
    ds = Dataset("colours", xtr, ytr, xte, yte, ["red", "green", "blue"])
    up = _embedded(ds, tmp_path, methods=("pca",), n_points=200)
    out = tmp_path / "cluster"
    out.mkdir()
    cfg = cluster.Config(
        spaces=["pixels", "pca"],
        draw_on="pca",
        methods=["kmeans", "ward"],
        n_points=0,
        n_train=0,
        n_test=0,
        min_steps=5,
        layer_methods=["kmeans"],
        feature_map_channels=2,
    )
    res = cluster.run(_ctx(ds, out, {"embed": up}), cfg)
    rows = res.tables[0].rows
    assert rows[0]["dims"] == 6 * 6 * 3 and all(
        r["ARI"] > 0.99 for r in rows
    )  # the colour alone separates them
    layers = res.tables[-1].rows
    assert layers[0]["layer"] == "input" and layers[0]["dims"] == 6 * 6 * 3
    assert {r["layer"] for r in layers} == {"input", "block 1", "block 2", "block 3", "penultimate"}


def test_missing_map_and_bad_keys_are_config_errors(tmp_path, mnist):
    from digitlab.study.tasks import cluster

    with pytest.raises(ConfigError, match="cluster.methods"):
        cluster.Config(methods=["kmeans", "dbscan"]).validate()
    with pytest.raises(ConfigError, match="cluster.merge"):
        cluster.Config(merge=["max"]).validate()
    with pytest.raises(ConfigError, match="cluster.net"):
        cluster.Config(net="vgg").validate()
    ds = _small(mnist, 300, 100)
    up = _embedded(ds, tmp_path, methods=("pca",), n_points=200)
    out = tmp_path / "c"
    out.mkdir()
    with pytest.raises(ConfigError, match="cluster.spaces.*embed.methods"):
        cluster.run(
            _ctx(ds, out, {"embed": up}),
            cluster.Config(spaces=["pixels", "umap"], methods=["kmeans"], layers=False),
        )


# ---------------------------------------------------------------------------------------------
# The experiment functions, called directly
# ---------------------------------------------------------------------------------------------


def test_cluster_images_scores_every_method_in_every_space_with_a_passed_map():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    images = np.clip(rng.normal(40, 10, (120, 8, 8)) + (y * 80)[:, None, None], 0, 255).astype(np.uint8)
    xy = np.c_[y * 10.0, np.zeros(120)] + rng.normal(0, 0.5, (120, 2))  # a 2-D "map" with three tight groups
    img = C.cluster_images(
        images,
        y,
        classes=["a", "b", "c"],
        spaces=["pixels", "pca", "umap"],
        maps={"umap": xy},
        methods=["kmeans", "ward"],
        pca_dims=5,
        n_init=1,
    )
    assert list(img.names.values()) == ["raw pixels", "PCA-5", "UMAP map"]
    assert len(img.scores) == 6 and list(img.scores.columns[:3]) == ["space", "method", "dims"]
    assert all(r["ARI"] > 0.99 for r in img.rows) and img.k == 3
    assert img.best("umap")["_space"] == "umap"
    table, cols = img.matched("umap", "kmeans")
    assert np.array_equal(np.diag(table), [40, 40, 40]) and "-" not in cols
    assert len(img.plot_contingency().axes) >= 3 and img.plot_assignments("pca", xy, "map").axes
    with pytest.raises(ConfigError, match="tsne"):
        C.cluster_images(images, y, spaces=["tsne"], methods=["kmeans"])
