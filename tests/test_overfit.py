"""The over-fitting study: dropout placement, the MLP family, penalties acting on the weights, the
validation split shared by curves and scores, config checks, and the task end to end on tiny data."""

import importlib

import pytest
import torch
from torch import nn

from digitlab.exceptions import ConfigError
from digitlab.models.nets import build_net, count_parameters
from digitlab.study.tasks import overfit as O

# the module (digitlab.experiments.regularisation is also the name of its function, exported by the package)
R = importlib.import_module("digitlab.experiments.regularisation")


def _dropouts(module: nn.Module) -> list[float]:
    return [m.p for m in module.modules() if isinstance(m, nn.Dropout)]


@pytest.mark.parametrize(
    "place, in_features, in_head", [("conv", True, False), ("head", False, True), ("both", True, True)]
)
def test_dropout_placement_changes_which_layers_drop(place, in_features, in_head):
    cfg = O.Config(cnn_blocks=3, cnn_width=8, cnn_hidden=32)
    net = build_net("cnn", (1, 28, 28), 10, seed=0, **R.cnn_params(cfg, **R.dropout_params(place, 0.5)))
    assert (_dropouts(net.features) == [0.5] * 3) is in_features  # one after every conv block
    assert (_dropouts(net.classifier) == [0.5]) is in_head
    if in_head:  # in the head it acts on the dense hidden layer, right before the output layer
        layers = list(net.classifier)
        assert isinstance(layers[-2], nn.Dropout) and isinstance(layers[-1], nn.Linear)
        assert layers[-1].in_features == 32
    # In training mode only the placed layers are random: the feature maps vary between two passes
    # exactly when dropout sits after the conv blocks.
    x = torch.randn(4, 1, 28, 28)
    net.train()
    assert (not torch.equal(net.features(x), net.features(x))) is in_features
    f = net.features(x).detach()
    assert (not torch.equal(net.classifier(f), net.classifier(f))) is in_head
    net.eval()
    assert torch.equal(net(x), net(x))


def test_rate_zero_builds_no_dropout_and_is_one_shared_point():
    cfg = O.Config()
    net = build_net("cnn", (1, 28, 28), 10, **R.cnn_params(cfg, **R.dropout_params("both", 0.0)))
    assert _dropouts(net) == []
    pts = R.dropout_points(cfg)
    zero = {R.key(p) for (place, r), p in pts.items() if r == 0.0}
    assert len(zero) == 1  # trained once, shown in every row of the heatmap
    with pytest.raises(ConfigError, match="placement"):
        R.dropout_params("input", 0.5)


def test_mlp_family_softmax_regression_and_dropout():
    soft = build_net("mlp", (1, 28, 28), 10, hidden=[])
    assert count_parameters(soft) == 785 * 10  # multinomial logistic regression
    mlp = build_net("mlp", (1, 28, 28), 10, hidden=[64, 32], dropout=0.3)
    assert count_parameters(mlp) == 785 * 64 + 65 * 32 + 33 * 10
    assert _dropouts(mlp) == [0.3, 0.3]
    assert not any(isinstance(m, nn.Conv2d) for m in mlp.modules())
    assert build_net("mlp", (3, 8, 8), 5, hidden=[4])(torch.randn(2, 3, 8, 8)).shape == (2, 5)


@pytest.fixture(scope="module")
def pool(mnist):
    from digitlab.data.subsets import subset_indices

    tr, te = subset_indices(mnist.y_train, 450, 0), subset_indices(mnist.y_test, 300, 0)
    return mnist.x_train[tr], mnist.y_train[tr], mnist.x_test[te], mnist.y_test[te]


def _train(cfg, pool, net, params, curves=False, **train):
    return R.train_point(R.point(cfg, net, params, curves=curves, **train), 0, 1, *pool, 1 / 3, 10, "cpu")


def test_penalties_shrink_the_weights_in_the_expected_direction(pool):
    cfg = O.Config(epochs=8, min_steps=0, batch_size=64, lr=0.01)
    params = {"hidden": [64]}
    free = _train(cfg, pool, "mlp", params)
    l2 = _train(cfg, pool, "mlp", params, l2=1e-2)
    l1 = _train(cfg, pool, "mlp", params, l1=1e-3)
    assert l2["l2_sum"] < 0.5 * free["l2_sum"]  # L2 shrinks the sum of squares
    assert l1["l1_sum"] < 0.5 * free["l1_sum"]  # L1 shrinks the sum of magnitudes ...
    assert l1["small_frac"] > free["small_frac"] + 0.2  # ... and drives many weights to (near) zero
    assert free["train_acc"] == 1.0 and free["gap"] > 0.05  # 300 images: the unregularised MLP over-fits
    assert l2["train_loss"] > free["train_loss"]  # the penalty pulls away from the training data
    assert sum(free["w_hist"]) == free["n_weights"] == 784 * 64 + 64 * 10


def test_curves_run_carves_the_same_validation_images_it_is_scored_on(pool):
    cfg = O.Config(epochs=4, min_steps=0, batch_size=64, lr=0.01)
    params = R.cnn_params(O.Config(cnn_width=4, cnn_hidden=16))
    res = _train(cfg, pool, "cnn", params, curves=True)
    best = res["history"][res["best_epoch"] - 1]
    # fit's own validation split and the task's are the same images: the kept epoch's recorded validation
    # accuracy and loss are those of the separately scored validation set.
    assert res["val_acc"] == pytest.approx(best["val_acc"], abs=1e-9)
    assert res["val_loss"] == pytest.approx(best["val_loss"], rel=1e-4)
    assert len(res["history"]) == 4 and res["steps"] == 4 * 5  # 300 training images, batches of 64


def test_config_errors_name_the_key():
    for bad, key in (
        ({"dropout_rates": [0.0]}, "dropout_rates"),
        ({"dropout_places": ["input"]}, "dropout_places"),
        ({"l2_values": [-1.0]}, "l2_values"),
        ({"ladder": ["resnet"]}, "ladder"),
        ({"n_train": 0}, "n_train"),
        ({"augment": "warp-drive"}, "augment"),
        ({"mlp_hidden": []}, "mlp_hidden"),
    ):
        with pytest.raises(ConfigError, match=f"overfit.{key}"):
            O.Config(**bad).validate()
    O.Config(**O.PROFILES["quick"]).validate()
    O.Config(**O.PROFILES["full"]).validate()


def test_task_end_to_end_on_tiny_data(tmp_path, monkeypatch):
    # every grid (networks, logistic regression) stores its finished points in the runner's points folder,
    # so a killed standard run, rerun, loses at most the points in flight
    import digitlab.grid
    from digitlab.data import load_dataset
    from digitlab.study.task import TaskContext

    seen, real_grid = [], digitlab.grid.run_grid

    def spy(fn, points, seeds, **kw):
        seen.append((fn.__name__, kw.get("cache_dir"), len(points) * len(seeds)))
        return real_grid(fn, points, seeds, **kw)

    monkeypatch.setattr(digitlab.grid, "run_grid", spy)

    cfg = O.Config(
        **(
            O.PROFILES["quick"]
            | {
                "n_train": 150,
                "n_val": 100,
                "n_test": 200,
                "epochs": 3,
                "min_steps": 0,
                "batch_size": 32,
                "cnn_width": 4,
                "cnn_hidden": 16,
                "mlp_hidden": [32],
                "deep_mlp_hidden": [32, 32],
                "logreg_max_iter": 10,
            }
        )
    )
    ctx = TaskContext(
        dataset=load_dataset("digits"),
        out_dir=tmp_path,
        profile="quick",
        progress=False,
        points_dir=tmp_path / "points",
    )
    res = O.run(ctx, cfg)
    assert [(name, folder) for name, folder, _ in seen] == [
        ("train_point", tmp_path / "points"),
        ("fit_logreg", tmp_path / "points"),
    ]
    assert len(list((tmp_path / "points").glob("*.pkl"))) == sum(n for *_, n in seen)
    assert res.headline and len(res.findings) >= 8
    assert {t.name for t in res.tables} == {"penalties", "logreg", "dropout", "ladder", "remedies", "curves"}
    assert [f.name for f in res.figures] == [
        "penalties_cnn",
        "weights_cnn",
        "penalties_mlp",
        "weights_mlp",
        "logreg",
        "dropout",
        "ladder",
        "remedies",
    ]
    for f in res.figures:
        assert (tmp_path / f.file).stat().st_size > 500
    tab = {t.name: t.rows for t in res.tables}
    strengths = {(r["net"], r["penalty"]): [] for r in tab["penalties"]}
    for r in tab["penalties"]:
        strengths[(r["net"], r["penalty"])].append(r["strength"])
    assert all(v[0] == 0.0 and len(v) == 2 for v in strengths.values())  # 0 is always in the grid
    zero = [r for r in tab["dropout"] if r["rate"] == 0.0]
    assert len(zero) == 3 and len({r["test_acc"] for r in zero}) == 1
    base = tab["remedies"][0]
    assert (
        base["test_acc"] == next(r for r in tab["ladder"] if r["model"] == "small CNN")["test_acc"]
    )  # one run, one number
    assert [r["remedy"] for r in tab["remedies"]] == [
        "none (over-fitting setting)",
        "early stopping",
        "L2 penalty",
        "dropout",
        "augmentation",
    ]
    assert len(tab["curves"]) == 3 and res.metrics["n_train"] == 150 and res.metrics["n_val"] == 100
    assert any("coupled penalty" in n for n in res.notes)


def test_regularisation_experiment_directly_on_arrays(pool):
    """The library function a notebook calls: tidy DataFrames, choices made on validation, ax= plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = R.regularisation(
        pool,
        n_train=200,
        n_val=100,
        n_test=0,
        epochs=2,
        min_steps=0,
        batch_size=64,
        cnn_width=4,
        cnn_hidden=16,
        mlp_hidden=[16],
        deep_mlp_hidden=[16, 16],
        penalty_nets=["mlp"],
        l2_values=[1e-2],
        l1_values=[1e-4],
        logreg_C=[1.0],
        logreg_penalties=["l2"],
        logreg_max_iter=5,
        dropout_rates=[0.5],
        dropout_places=["head"],
        ladder=["softmax", "cnn"],
    )
    assert res.n_train == 200 and res.n_val == 100 and res.n_test == 300
    assert set(res.penalties["strength"]) == {0.0, 1e-2, 1e-4} and set(res.penalties["net"]) == {"mlp"}
    assert list(res.logreg["penalty"]) == ["none", "l2"] and list(res.ladder["model"]) == ["softmax", "cnn"]
    assert list(res.remedies["remedy"]) == list(R.REMEDY_WORDS) and res.remedies["d_test"].iloc[0] == 0.0
    assert (
        res.l2_best == 1e-2
        and res.dropout_best == ("head", 0.5)
        and len(res.curves) == 2
        and 1 <= res.kept <= 2
    )
    # the unregularised CNN is one point: ladder rung, rate-0 dropout and the remedies' baseline agree
    cnn = res.ladder_results()["cnn"]
    assert (
        res.dropout_results()[("head", 0.0)]["test_acc"]
        == cnn["test_acc"]
        == res.remedies["test_acc"].iloc[0]
    )
    assert ((res.penalties["train_acc"] >= 0) & (res.penalties["train_acc"] <= 1)).all()
    fig, axes = plt.subplots(1, 2)
    assert res.plot_ladder(ax=axes[0]) is fig
    for f in (
        res.plot_penalties("mlp"),
        res.plot_weights("mlp"),
        res.plot_logreg(),
        res.plot_dropout(),
        res.plot_remedies(),
    ):
        assert f.axes
        plt.close(f)
    plt.close(fig)


def test_classify_draws_the_cnn_training_curves(tmp_path):
    from digitlab.study.tasks.classify import (
        cnn_curve_rows,  # the figure: ModelComparison.plot_history (classify's tests)
    )

    history = [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "train_acc": 0.5 + 0.1 * e,
            "val_loss": 0.8 / e + 0.05 * e,
            "val_acc": a,
            "lr": 0.01,
            "seconds": 1.0,
            "elapsed": float(e),
        }
        for e, a in ((1, 0.6), (2, 0.8), (3, 0.75))
    ]
    rows = cnn_curve_rows(history)
    assert (
        [r["epoch"] for r in rows] == [1, 2, 3]
        and rows[1]["val_acc"] == 80.0
        and rows[0]["train_acc"] == 60.0
    )
