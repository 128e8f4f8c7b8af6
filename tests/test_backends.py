"""Clusters (issue 11): the experiment engine's jobs run on a Dask cluster (a LocalCluster of two worker
processes here; a scheduler address in production) or on Ray, through joblib's own backends, with the
same results as the local loky run, and without more threads per host than it has cores."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import cloudpickle
import numpy as np
import pytest

from digitlab.exceptions import ConfigError
from digitlab.grid import _dask_budget, backend_context, run_grid
from digitlab.study.config import resolve

try:
    import distributed
except ImportError:  # pragma: no cover - CI installs .[test], which includes dask[distributed]
    distributed = None

needs_dask = pytest.mark.skipif(
    distributed is None, reason='dask.distributed is not installed (pip install -e ".[dask]")'
)
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import this test module


def _seeded(point: dict, seed: int, threads: int, x: np.ndarray) -> dict:
    rng = np.random.default_rng([seed, point["k"]])
    return {"value": float(x @ rng.normal(size=len(x))), "pid": os.getpid(), "threads": threads}


@pytest.fixture(scope="module")
def cluster():
    if distributed is None:
        pytest.skip("dask.distributed is not installed")
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def sweep():
    """cnn_sweeps' own grid function and a small digits split: two learning rates x two seeds."""
    from digitlab.data import load_dataset, stratified_subset
    from digitlab.study.tasks import cnn_sweeps

    ds = load_dataset("digits")
    tr = stratified_subset(ds.y_train, per_class=40, seed=0)
    te = stratified_subset(ds.y_test, per_class=20, seed=0)
    from digitlab.experiments.cnn_sweep import _sweep_point
    from digitlab.train import TrainConfig

    cfg = cnn_sweeps.Config(n_blocks=1, width=8, epochs=1, batch_size=64)
    points = [cnn_sweeps.settings_of(cnn_sweeps.sweep_point(cfg, "lr", lr)) for lr in (0.003, 0.03)]
    return (
        _sweep_point,
        points,
        (
            ds.x_train[tr],
            ds.y_train[tr],
            ds.x_test[te],
            ds.y_test[te],
            ("cnn", {}, TrainConfig()),
            {},
            "cpu",
            10,
        ),
    )


KEYS = ("test_acc", "test_loss", "params", "val_curve", "best_epoch")


@needs_dask
def test_dask_local_cluster_of_two_workers_gives_the_loky_results(cluster, sweep):
    fn, points, args = sweep
    loky = run_grid(fn, points, [0, 1], args=args, n_jobs=2, backend="loky", threads_per_job=1)
    dask = run_grid(
        fn, points, [0, 1], args=args, backend="dask", scheduler=cluster.scheduler_address, threads_per_job=1
    )
    assert [[r[k] for k in KEYS] for r in dask] == [[r[k] for k in KEYS] for r in loky]
    assert len({r["test_acc"] for r in loky}) > 1  # the points differ: a real comparison


@needs_dask
def test_jobs_run_on_the_workers_with_threads_that_fit_their_cores(cluster):
    x = np.arange(5.0)
    points = [{"k": k} for k in range(6)]
    serial = run_grid(_seeded, points, [0, 1], args=(x,))
    on_dask = run_grid(
        _seeded, points, [0, 1], args=(x,), backend="dask", scheduler=cluster.scheduler_address
    )
    assert [r["value"] for r in on_dask] == [r["value"] for r in serial]
    pids = {r["pid"] for r in on_dask}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # on the two worker processes
    with backend_context("dask", cluster.scheduler_address) as info:
        cores = len(os.sched_getaffinity(0))
        assert info.slots == 2 and info.threads == max(1, cores // 2)
    assert {r["threads"] for r in on_dask} == {max(1, cores // 2)}


@needs_dask
def test_no_scheduler_starts_a_local_cluster():
    x = np.arange(3.0)
    points = [{"k": k} for k in range(4)]
    rows = run_grid(_seeded, points, [0], args=(x,), backend="dask", n_jobs=2)
    assert [r["value"] for r in rows] == [r["value"] for r in run_grid(_seeded, points, [0], args=(x,))]
    assert os.getpid() not in {r["pid"] for r in rows}


@needs_dask
def test_a_whole_study_on_dask_equals_the_loky_study(cluster, tmp_path):
    from digitlab.study.runner import run_study

    sets = {
        "sweeps": ["lr"],
        "lr_values": [0.003, 0.03],
        "n_seeds": 2,
        "n_blocks": 1,
        "width": 8,
        "n_train": 400,
        "n_test": 200,
        "epochs": 1,
        "threads_per_job": 1,
    }
    out = {}
    for backend, extra in (("loky", {"n_jobs": 2}), ("dask", {"scheduler": cluster.scheduler_address})):
        cfg = resolve(
            {
                "study": {
                    "dataset": "digits",
                    "profile": "quick",
                    "tasks": ["cnn_sweeps"],
                    "backend": backend,
                    "output_dir": str(tmp_path / backend),
                    "cache_dir": str(tmp_path / f"cache-{backend}"),
                    "pdf": False,
                    "device": "cpu",
                    **extra,
                },
                "cnn_sweeps": sets,
            }
        )
        out[backend] = run_study(cfg, quiet=True).results["cnn_sweeps"]
    for table_l, table_d in zip(out["loky"].tables, out["dask"].tables):
        strip = lambda rows: [{k: v for k, v in r.items() if "second" not in k} for r in rows]  # noqa: E731
        assert strip(table_l.rows) == strip(table_d.rows)
    assert out["loky"].headline == out["dask"].headline


def test_threads_per_job_never_oversubscribe_a_host():
    """Two hosts: A runs two 2-thread workers on 4 cores (1 thread per job), B one 1-thread worker on 8."""
    workers = {
        "tcp://a:1": {"host": "a", "nthreads": 2},
        "tcp://a:2": {"host": "a", "nthreads": 2},
        "tcp://b:1": {"host": "b", "nthreads": 1},
    }
    client = SimpleNamespace(
        scheduler_info=lambda n_workers=-1: {"workers": workers},
        run=lambda fn: {"tcp://a:1": 4, "tcp://a:2": 4, "tcp://b:1": 8},
    )
    assert _dask_budget(client) == (5, 1)
    workers["tcp://a:2"]["nthreads"] = 1
    client.run = lambda fn: {"tcp://a:1": 12, "tcp://a:2": 12, "tcp://b:1": 8}
    assert _dask_budget(client) == (4, 4)  # 12 cores / 3 threads on a; 8 / 1 on b


@needs_dask
def test_an_unreachable_scheduler_is_one_config_error(monkeypatch):
    from digitlab import grid

    monkeypatch.setattr(grid, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(ConfigError, match="cannot connect to a dask scheduler") as err:
        with backend_context("dask", "tcp://127.0.0.1:9"):
            pass
    assert "\n" not in str(err.value)


def test_cluster_settings_are_checked_when_the_config_is_resolved(monkeypatch):
    import importlib.util

    assert resolve({"study": {"backend": "loky"}}).study.scheduler == ""
    with pytest.raises(
        ConfigError, match="study.scheduler: 'tcp://h:8786' is set but study.backend is 'loky'"
    ):
        resolve({"study": {"scheduler": "tcp://h:8786"}})
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("distributed", "ray") else real(name, *a),
    )
    for backend, extra in (("dask", "dask"), ("ray", "ray")):
        with pytest.raises(
            ConfigError, match=rf"study.backend: '{backend}' needs .* pip install -e \"\.\[{extra}\]\""
        ):
            resolve({"study": {"backend": backend}})


def test_ray_gives_the_serial_results():
    pytest.importorskip("ray", reason='ray is not installed (pip install -e ".[ray]"; the test extra has it)')
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray pickles with its own copy
    x = np.arange(4.0)
    points = [{"k": k} for k in range(4)]
    rows = run_grid(_seeded, points, [0, 1], args=(x,), backend="ray", n_jobs=2)
    assert [r["value"] for r in rows] == [r["value"] for r in run_grid(_seeded, points, [0, 1], args=(x,))]
    assert os.getpid() not in {r["pid"] for r in rows} and {r["threads"] for r in rows} == {1}


@pytest.mark.parametrize("backend", ["threading", "multiprocessing"])
def test_local_backends_without_result_generators_work_too(backend, tmp_path):
    """joblib's multiprocessing backend hands results back only as a list: run_grid runs it in chunks."""
    x = np.arange(3.0)
    points = [{"k": k} for k in range(5)]
    rows = run_grid(_seeded, points, [0, 1], args=(x,), backend=backend, n_jobs=2, cache_dir=tmp_path)
    assert [r["value"] for r in rows] == [r["value"] for r in run_grid(_seeded, points, [0, 1], args=(x,))]
    assert len(list(tmp_path.glob("*.pkl"))) == 10
