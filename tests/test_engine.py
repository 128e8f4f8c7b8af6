"""The shared engine: one subset rule, the grid runner, the zoo runner, task dependencies, cache keys."""

import dataclasses
import sys
import types

import numpy as np
import pytest

from digitlab.exceptions import ConfigError
from digitlab.grid import fit_and_score, run_grid, summarise
from digitlab.models.zoo import ZooSettings, run_model
from digitlab.runtime import cpu_budget
from digitlab.study import cache as C
from digitlab.study.common import split, subset_indices
from digitlab.study.config import resolve, with_requirements
from digitlab.study.task import TaskContext


@pytest.fixture(scope="module")
def small(mnist):
    from digitlab.data import stratified_subset

    return mnist.subset(
        stratified_subset(mnist.y_train, total=600, seed=3),
        stratified_subset(mnist.y_test, total=300, seed=3),
        "mnist-small",
    )


def test_subset_rule_zero_means_all_and_sizes_are_exact_and_stratified(mnist):
    assert len(subset_indices(mnist.y_test, 0, 0)) == len(mnist.y_test)
    assert len(subset_indices(mnist.y_test, 10**9, 0)) == len(mnist.y_test)
    idx = subset_indices(mnist.y_train, 1000, 0)
    assert len(idx) == 1000 and len(np.unique(idx)) == 1000
    counts = np.bincount(mnist.y_train[idx], minlength=10)
    share = np.bincount(mnist.y_train, minlength=10) / len(mnist.y_train) * 1000
    assert np.all(np.abs(counts - share) < 1)


def test_two_tasks_with_the_same_sizes_and_seed_score_the_same_test_images(mnist, tmp_path):
    """classify, cnn_sweeps, features and augment all draw through study.common: same sizes, same images."""
    from digitlab.study.tasks import augment, classify, cnn_sweeps, features

    ctx = TaskContext(mnist, tmp_path, seed=7, progress=False)
    a = split(ctx, classify.Config(n_train=2000, n_test=500).n_train, 500)
    b = split(ctx, cnn_sweeps.Config(n_train=2000).n_train, 500)
    np.testing.assert_array_equal(a.test_index, b.test_index)
    np.testing.assert_array_equal(a.train_index, b.train_index)
    assert features.subset_indices is augment.subset_indices is subset_indices  # no private copies
    other = split(TaskContext(mnist, tmp_path, seed=8, progress=False), 2000, 500)
    assert not np.array_equal(a.test_index, other.test_index)


def test_sizes_beyond_the_data_are_clamped_with_a_note(small, tmp_path):
    part = split(TaskContext(small, tmp_path, progress=False), 5000, 0)
    assert part.n_train == 600 and part.n_test == 300
    assert "5,000 training images; 600 exist" in part.notes[0]


def _square(point, seed, threads, offset):
    return {"value": point["x"] ** 2 + offset + seed}


def test_run_grid_rows_are_tidy_deduplicated_and_parallel_equals_serial():
    points = [{"x": 1}, {"x": 2}, {"x": 1}]
    serial = run_grid(_square, points, seeds=[0, 10], args=(0.5,))
    assert [(r["x"], r["seed"], r["value"]) for r in serial] == [
        (1, 0, 1.5),
        (1, 10, 11.5),
        (2, 0, 4.5),
        (2, 10, 14.5),
        (1, 0, 1.5),
        (1, 10, 11.5),
    ]
    parallel = run_grid(_square, points, seeds=[0, 10], args=(0.5,), n_jobs=2, backend="threading")
    assert [r["value"] for r in parallel] == [r["value"] for r in serial]
    table = summarise(serial[:4], by=["x"], metrics=["value"])
    assert table[0] == {
        "x": 1,
        "n": 2,
        "value_mean": 6.5,
        "value_sd": pytest.approx(np.std([1.5, 11.5], ddof=1)),
        "value_min": 1.5,
        "value_max": 11.5,
    }


def test_cpu_budget_never_oversubscribes():
    import os

    cores = os.cpu_count() or 1
    for n_jobs in (1, 2, 4, -1, -2, 64):
        jobs, threads = cpu_budget(n_jobs)
        assert 1 <= jobs <= cores and jobs * threads <= max(cores, 1)
    assert cpu_budget(8, n_tasks=1)[0] == 1
    assert cpu_budget(4, device="cuda")[0] == 1


def test_fit_and_score_matches_its_own_predictions(small):
    from digitlab.train import TrainConfig

    cfg = TrainConfig(epochs=2, batch_size=64, val_fraction=0.0, device="cpu")
    out = fit_and_score(
        "cnn",
        {"width": 4, "n_blocks": 2},
        small.x_train,
        small.y_train,
        {"test": (small.x_test, small.y_test)},
        cfg,
        seed=1,
        keep_model=True,
    )
    assert out["test_acc"] == pytest.approx(np.mean(out["test_pred"] == small.y_test))
    assert out["test_acc"] > 0.5 and out["params"] > 0 and len(out["history"]) == out["epochs_run"]
    again = fit_and_score(
        "cnn",
        {"width": 4, "n_blocks": 2},
        small.x_train,
        small.y_train,
        {"test": (small.x_test, small.y_test)},
        cfg,
        seed=1,
    )
    np.testing.assert_array_equal(out["test_pred"], again["test_pred"])  # seeded end to end


def test_zoo_runs_any_model_by_name(small):
    run = run_model(
        "random_forest", small.x_train, small.y_train, small.x_test, ZooSettings(n_estimators=10), seed=0
    )
    assert run.n_train == 600 and run.proba.shape == (300, 10) and run["y_pred"].shape == (300,)
    assert np.mean(run.y_pred == small.y_test) > 0.7
    svm = run_model("linear_svm", small.x_train, small.y_train, small.x_test)
    assert svm.proba is None and svm.scores.shape == (300, 10)


def test_unknown_model_is_rejected_when_the_config_is_resolved():
    with pytest.raises(ConfigError, match="bogus"):
        resolve({}, ["classify.models=['bogus']"], tasks=["classify"])


def test_old_key_names_still_work_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="cnn_sweeps.n_train"):
        cfg = resolve({}, ["cnn_sweeps.train_size=1234"], tasks=["cnn_sweeps"])
    assert cfg.tasks["cnn_sweeps"].n_train == 1234


def test_non_finite_floats_are_rejected():
    with pytest.raises(ConfigError, match="classify.alpha"):
        resolve({}, ["classify.alpha=nan"], tasks=["classify"])


def test_required_tasks_run_first(monkeypatch):
    from digitlab.study import config

    fake = types.ModuleType("digitlab.study.tasks.fake_reader")
    fake.REQUIRES = ("classify", "embed")
    monkeypatch.setattr(config, "TASK_ORDER", config.TASK_ORDER + ("fake_reader",))
    monkeypatch.setitem(sys.modules, "digitlab.study.tasks.fake_reader", fake)
    assert with_requirements(["fake_reader", "overview"]) == ["classify", "embed", "fake_reader", "overview"]


def test_code_key_covers_the_task_and_its_imports_not_the_report():
    files = C.module_closure("digitlab.study.tasks.classify")
    assert "study/tasks/classify.py" in files and "models/zoo.py" in files and "metrics.py" in files
    assert not any(f.startswith("report/") or f == "cli.py" or f.endswith("cnn_sweeps.py") for f in files)


def test_editing_a_module_changes_only_the_keys_of_tasks_that_import_it(tmp_path, monkeypatch):
    """Copy the package, edit report/ and then classify.py, and compare keys computed over the copy."""
    import shutil

    root = tmp_path / "digitlab"
    shutil.copytree(C.PACKAGE_ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "bundled"))
    monkeypatch.setattr(C, "PACKAGE_ROOT", root)

    def keys():
        C.module_closure.cache_clear()
        C.task_code_version.cache_clear()
        return {t: C.cache_key(t, {}, 0, "cpu", "data") for t in ("overview", "classify")}

    before = keys()
    (root / "report" / "build.py").write_text((root / "report" / "build.py").read_text() + "\n# edited\n")
    (root / "cli.py").write_text((root / "cli.py").read_text() + "\n# edited\n")
    assert keys() == before
    (root / "study" / "tasks" / "classify.py").write_text(
        (root / "study" / "tasks" / "classify.py").read_text() + "\n# x\n"
    )
    after = keys()
    assert after["overview"] == before["overview"] and after["classify"] != before["classify"]
    C.module_closure.cache_clear()
    C.task_code_version.cache_clear()


def test_upstream_keys_are_part_of_the_key():
    a = C.cache_key("classify", {}, 0, "cpu", "d", {"embed": "k1"})
    assert a != C.cache_key("classify", {}, 0, "cpu", "d", {"embed": "k2"})
    assert a == C.cache_key("classify", {}, 0, "cpu", "d", {"embed": "k1"})


def test_config_sections_are_dataclasses_with_validate():
    from digitlab.study.config import TASK_ORDER, task_module

    for name in TASK_ORDER:
        mod = task_module(name)
        assert dataclasses.is_dataclass(mod.Config)
