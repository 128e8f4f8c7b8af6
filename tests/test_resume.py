"""Resumable, deterministic runs (issue 11): a real `digitlab run` killed with SIGKILL in the middle of a
task, run again with the same command, finishes, reuses the finished tasks and grid points, cleans up
after the killed run, and gives the same results as an uninterrupted run (same seed and profile give
identical metrics on the CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digitlab.grid import run_grid

# cnn_sweeps on digits, shrunk: 4 learning rates x 1 seed of a one-block CNN, each a second or two.
SETS = [
    'cnn_sweeps.sweeps=["lr"]',
    "cnn_sweeps.lr_values=[0.003, 0.01, 0.03, 0.1]",
    "cnn_sweeps.n_seeds=1",
    "cnn_sweeps.n_blocks=1",
    "cnn_sweeps.width=8",
    "cnn_sweeps.n_train=800",
    "cnn_sweeps.n_test=300",
    "cnn_sweeps.epochs=2",
    "cnn_sweeps.threads_per_job=1",
]


def _cmd(root: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "digitlab.cli",
        "run",
        "--dataset",
        "digits",
        "--profile",
        "quick",
        "--tasks",
        "overview,cnn_sweeps",
        "--no-pdf",
        "-q",
        "--device",
        "cpu",
        "--output",
        str(root / "runs"),
        "--cache-dir",
        str(root / "cache"),
    ]
    for s in SETS:
        cmd += ["--set", s]
    return cmd


def _run(root: Path) -> Path:
    proc = subprocess.run(_cmd(root), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = [p for p in (root / "runs").iterdir() if (p / "summary.json").exists()]
    return run_dir


def _timeless(value):
    """``value`` without the keys that hold times (they differ from run to run)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if "second" not in k and "time" not in k}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _results(run_dir: Path, task: str) -> dict:
    r = json.loads((run_dir / "results" / task / "result.json").read_text())
    return _timeless(
        {
            "metrics": r["metrics"],
            "headline": r["headline"],
            "findings": r["findings"],
            "tables": [t["rows"] for t in r["tables"]],
        }
    )


def test_killed_run_resumes_with_the_same_results(tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    points, t0 = [], time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - t0 < 400:
            points = list((killed / "cache" / "cnn_sweeps").glob(".points-*/*.pkl"))
            if points:  # overview is cached and at least one grid point of cnn_sweeps is done: kill it
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (
        f"the run ended before a grid point was stored: {proc.stderr.read()[-2000:]}"
    )
    assert 1 <= len(points) < 4
    leftovers = list((killed / "cache" / "cnn_sweeps").glob(".tmp-*"))
    assert leftovers, "the killed task's work folder should be there for the next run to clean"
    assert not any(p.joinpath("summary.json").exists() for p in (killed / "runs").iterdir())

    resumed = _run(killed)  # the same command again
    summary = json.loads((resumed / "summary.json").read_text())
    assert {t["task"]: t["cached"] for t in summary["tasks"]} == {"overview": True, "cnn_sweeps": False}
    log = (resumed / "log.txt").read_text()
    reused = [line for line in log.splitlines() if "grid points from the point cache" in line]
    assert reused and int(reused[0].split(": ")[-1].split()[0]) >= len(points)
    cache = killed / "cache" / "cnn_sweeps"
    assert not list(cache.glob(".tmp-*")) and not list(cache.glob(".points-*"))  # cleaned, finished

    fresh = _run(tmp_path / "fresh")  # uninterrupted, in an empty cache
    for task in ("overview", "cnn_sweeps"):
        assert _results(resumed, task) == _results(fresh, task), task
    acc = json.loads((fresh / "results" / "cnn_sweeps" / "result.json").read_text())["metrics"]
    assert acc, "cnn_sweeps stored no metrics to compare"


def _slow_square(point: dict, seed: int, threads: int) -> dict:
    return {"y": point["x"] ** 2 + seed, "pid": os.getpid()}


def test_point_cache_reuses_finished_points_and_keys_on_everything(tmp_path):
    points = [{"x": x} for x in range(5)]
    first = run_grid(_slow_square, points, [0, 1], cache_dir=tmp_path, cache_key="k")
    files = sorted(tmp_path.glob("*.pkl"))
    assert len(files) == 10
    files[3].write_bytes(b"garbage")  # a damaged point is recomputed
    files[4].unlink()  # a missing one too
    again = run_grid(_slow_square, points, [0, 1], cache_dir=tmp_path, cache_key="k")
    assert [r["y"] for r in again] == [r["y"] for r in first]
    assert (
        sum(r["wall_seconds"] == f["wall_seconds"] for r, f in zip(again, first)) == 8
    )  # 8 reused as stored
    other = run_grid(_slow_square, points, [0, 1], cache_dir=tmp_path, cache_key="another task key")
    assert len(list(tmp_path.glob("*.pkl"))) == 20 and [r["y"] for r in other] == [r["y"] for r in first]
    run_grid(
        _slow_square,
        points,
        [0, 1],
        args=(),
        cache_dir=tmp_path,
        cache_key="k",
        n_jobs=2,
        backend="threading",
    )
    assert len(list(tmp_path.glob("*.pkl"))) == 20  # parallel runs read the same files
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_points_are_stored_as_they_finish(tmp_path, n_jobs):
    """A failure in one point keeps the points that finished before it."""
    points = [{"x": x} for x in range(4)] + [{"x": "boom"}]
    with pytest.raises(TypeError):
        run_grid(_slow_square, points, [0], cache_dir=tmp_path, n_jobs=n_jobs, backend="threading")
    assert len(list(tmp_path.glob("*.pkl"))) == 4
