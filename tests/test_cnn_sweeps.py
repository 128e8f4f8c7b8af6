"""The cnn_sweeps task: a tiny sweep yields its tables, figures and computed findings; the
experiment it calls (digitlab.experiments.cnn_sweep) trains explicit points once each."""

from dataclasses import replace

import numpy as np
import pytest

from digitlab.data import stratified_subset
from digitlab.exceptions import ConfigError
from digitlab.experiments.cnn_sweep import cnn_sweep
from digitlab.study.prose.cnn_sweeps import sweep_finding
from digitlab.study.settings.cnn_sweeps import SWEEPS
from digitlab.study.task import TaskContext
from digitlab.study.tasks import cnn_sweeps
from digitlab.study.tasks.cnn_sweeps import PROFILES, Config, base_point, settings_of, sweep_point


@pytest.fixture(scope="module")
def small_ds(mnist):
    tr = stratified_subset(mnist.y_train, total=500, seed=0)
    te = stratified_subset(mnist.y_test, total=300, seed=0)
    return mnist.subset(tr, te, "mnist-small")


def test_quick_profile_sweep_yields_tables_figures_and_findings(small_ds, tmp_path):
    cfg = replace(Config(), **PROFILES["quick"])
    cfg = replace(
        cfg,
        sweeps=["depth", "optimizer"],
        depth_values=[1, 2],
        optimizer_values=["sgd:0.1", "adamw"],
        n_train=400,
        n_test=200,
        n_blocks=2,
        width=4,
        threads_per_job=1,
    )
    ctx = TaskContext(dataset=small_ds, out_dir=tmp_path, profile="quick", n_jobs=1, progress=False)
    res = cnn_sweeps.run(ctx, cfg)
    assert [t.name for t in res.tables] == ["sweep_depth", "sweep_optimizer", "params_vs_accuracy"]
    depth = res.tables[0].rows
    assert [r["value"] for r in depth] == [1, 2]
    assert all(r["seeds"] == 2 and 0 <= r["test_acc_std"] and 10 < r["test_acc_mean"] <= 100 for r in depth)
    assert depth[0]["params"] != depth[1]["params"]
    # The base point (depth 2 = adamw) is shared by both sweeps and trained only once.
    assert res.metrics["distinct_configs"] == 3 and res.metrics["runs"] == 6
    assert len(res.tables[2].rows) == 2  # the architectures: depth 1 and 2; the optimiser points share one
    for fig in res.figures:
        assert (tmp_path / fig.file).stat().st_size > 1000
    assert [f.name for f in res.figures] == ["sweep_depth", "sweep_optimizer", "params_vs_accuracy"]
    assert len(res.findings) == 3
    best = max(depth, key=lambda r: r["test_acc_mean"])
    assert f"best {best['value']} ({best['test_acc_mean']:.2f} %)" in res.findings[0]


def test_sweep_points_change_exactly_one_setting():
    cfg = Config()
    net, params, train = base_point(cfg)
    p = sweep_point(cfg, "depth", 5)
    assert dict(p.net_params) == dict(params, n_blocks=5) and dict(p.train) == train
    p = sweep_point(cfg, "optimizer", "nesterov:0.05")
    assert dict(p.train) == dict(train, optimizer="momentum", lr=0.05, nesterov=True)
    p = sweep_point(cfg, "family", "resnet")
    assert p.net == "resnet" and p.net_params == ()
    assert sweep_point(cfg, "lr", cfg.lr) == sweep_point(cfg, "width", cfg.width)  # both are the base point


def test_finding_compares_the_effect_with_the_seed_spread():
    rows = [
        {"value": 1, "test_acc_mean": 97.0, "test_acc_std": 0.1},
        {"value": 2, "test_acc_mean": 98.0, "test_acc_std": 0.1},
        {"value": 3, "test_acc_mean": 97.95, "test_acc_std": 0.1},
    ]
    text = sweep_finding("depth", rows)
    assert "best 2 (98.00 %)" in text and "worst 1 (97.00 %)" in text and "range of 1.00 points" in text
    assert "10.0x" in text and "does not exceed" in text


def test_unknown_sweep_or_value_is_a_config_error():
    with pytest.raises(ConfigError, match="depthh"):
        replace(Config(), sweeps=["depthh"]).validate()
    with pytest.raises(ConfigError, match="lbfgs"):
        replace(Config(), optimizer_values=["lbfgs"]).validate()
    assert np.all([s in SWEEPS for s in Config().sweeps])


def test_explicit_points_train_once_and_compare_by_seed(small_ds):
    """cnn_sweep with ``points``: equal points train once; compare / architectures read the runs back per point."""
    base = {"net": "cnn", "n_blocks": 1, "width": 4, "epochs": 1, "batch_size": 64, "min_steps": 0}
    pts = [
        base,
        {**base, "lr": 0.003},
        dict(base),
        {"net": "lenet5", "epochs": 1, "batch_size": 64, "min_steps": 0},
    ]
    sw = cnn_sweep(small_ds, points=pts, seeds=2, n_train=300, n_test=100, n_jobs=1, device="cpu")
    assert len(sw.rows) == 3 * 2 and sw.seeds == [0, 1]
    rows = sw.compare({"base": base, "slow": pts[1]})
    assert [r["value"] for r in rows] == ["base", "slow"] and all(r["seeds"] == 2 for r in rows)
    assert rows[0]["test_acc_mean"] == round(100 * sum(r["test_acc"] for r in sw.runs_of(base)) / 2, 3)
    arch = sw.architectures([("a", base), ("b", pts[1]), ("c", pts[3])])
    assert len(arch) == 3 and arch == sorted(arch, key=lambda r: r["params"])
    assert settings_of(sweep_point(Config(), "family", "resnet")) == {
        "net": "resnet",
        **dict(sweep_point(Config(), "family", "resnet").train),
    }
