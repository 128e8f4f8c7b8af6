"""Run a study: resolve config -> load data -> run (or reuse) each task -> write the run folder.

The reports are built from that folder by the caller (the CLI), never by the runner."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digitlab.data.registry import Dataset, load_dataset
from digitlab.exceptions import ConfigError
from digitlab.grid import backend_context
from digitlab.io import atomic_write_bytes
from digitlab.runtime import precision_override, resolve_device, resolve_precision
from digitlab.study.cache import (
    RESULT_PACKAGES,
    Cache,
    cache_key,
    code_version,
    package_version,
    result_to_json,
)
from digitlab.study.config import ResolvedConfig, data_options, requirements, task_module, to_toml
from digitlab.study.task import TaskContext, TaskResult, Upstream

# Every runtime dependency: the libraries that compute results (also part of each cache key) and the
# ones that draw and write the reports.
PACKAGES = (
    "digitlab",
    *RESULT_PACKAGES,
    "threadpoolctl",
    "matplotlib",
    "plotly",
    "jinja2",
    "markupsafe",
    "weasyprint",
    "rich",
    "tomli-w",
)


@dataclass
class RunOutcome:
    run_dir: Path
    results: dict[str, TaskResult]
    cached: dict[str, bool]
    seconds: float
    html: Path | None = None
    pdf: Path | None = None


def environment(device: str, seed: int, n_jobs: int) -> dict:
    """What the run ran on: versions, device, threads, seed (written to environment.json)."""
    import torch

    versions = {pkg: package_version(pkg) for pkg in PACKAGES}
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else ""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device + (f" ({gpu})" if gpu else ""),
        "torch_cpu_capability": _cpu_capability(
            torch
        ),  # the SIMD level torch's CPU kernels use (e.g. AVX512)
        "train_precision": resolve_precision(
            "auto", device
        ),  # networks' forward pass (digitlab.train.TrainConfig.precision)
        "seed": seed,
        "n_jobs": n_jobs,
        "code_version": code_version(),
        "packages": versions,
    }


def _cpu_capability(torch) -> str:
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # older torch
        return "unknown"


def make_run_dir(output_dir: str | Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(output_dir) / f"{stamp}-{name}"
    run_dir, i = base, 1
    while run_dir.exists():
        run_dir, i = Path(f"{base}-{i}"), i + 1
    (run_dir / "results").mkdir(parents=True)
    return run_dir


def _logger(run_dir: Path, quiet: bool) -> logging.Logger:
    log = logging.getLogger("digitlab")
    log.setLevel(logging.INFO)
    for h in list(log.handlers):
        log.removeHandler(h)
    fh = logging.FileHandler(run_dir / "log.txt")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(fh)
    if not quiet:
        from rich.logging import RichHandler

        log.addHandler(RichHandler(show_path=False, markup=False))
    log.propagate = False
    return log


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link a cached file into the run folder (no second copy of large arrays and models); copy
    where links are impossible (another file system). Cache entries are never modified in place."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def run_task(
    name: str,
    cfg,
    dataset: Dataset,
    study,
    device: str,
    cache: Cache,
    log: logging.Logger,
    done: dict[str, tuple[Upstream, str]],
    progress: bool,
) -> tuple[TaskResult, Path, bool, str]:
    """Return (result, entry folder, cached?, cache key) for one task, computing it only on a cache miss.

    ``done`` maps each finished task to (its stored result and folder, its cache key); the tasks this
    one REQUIRES are handed to it and their keys are part of its key.
    """
    mod = task_module(name)
    section = dataclasses.asdict(cfg)
    required = requirements(name)
    missing = [r for r in required if r not in done]
    if missing:
        raise ConfigError(
            f"task {name!r}: needs {', '.join(missing)} first; add them to study.tasks before it"
        )
    key = cache_key(
        name, section, study.seed, device, dataset.fingerprint(), {r: done[r][1] for r in required}
    )
    if study.use_cache:
        hit = cache.load(name, key)
        if hit is not None:
            log.info("%s: reused cached result %s", name, key)
            return hit, cache.entry(name, key), True, key
    work = cache.new_workdir(name, key)
    points = cache.points_dir(name, key) if study.use_cache else None
    ctx = TaskContext(
        dataset=dataset,
        out_dir=work,
        profile=study.profile,
        seed=study.seed,
        device=device,
        n_jobs=study.n_jobs,
        progress=progress,
        log=log,
        inputs={r: done[r][0] for r in required},
        backend=study.backend,
        points_dir=points,
    )
    log.info("%s: running (%s profile)", name, study.profile)
    t0 = time.perf_counter()
    try:
        result = mod.run(ctx, cfg)
    except BaseException:
        cache.discard(work)  # nothing half-written survives a failure or Ctrl-C
        raise
    result.seconds = round(time.perf_counter() - t0, 2)
    log.info("%s: done in %.1f s", name, result.seconds)
    entry = cache.commit(name, key, work, result)
    if points is not None:
        shutil.rmtree(
            points, ignore_errors=True
        )  # the entry holds the result now; a failure above keeps them to resume
    return result, entry, False, key


def run_study(cfg: ResolvedConfig, quiet: bool = False) -> RunOutcome:
    """Run every task of a resolved config and write the run folder. The runner never builds the
    reports: the CLI (or the caller) does, with :func:`digitlab.report.build.build_reports`."""
    import matplotlib

    matplotlib.use("Agg")  # figures go to files; only the runner and the CLI choose the backend
    t0 = time.perf_counter()
    study = cfg.study
    dataset = load_dataset(study.dataset, study.data_dir or None, **data_options(study))
    device = resolve_device(study.device)
    try:
        run_dir = make_run_dir(study.output_dir, study.name)
    except OSError as exc:  # checked when the config was resolved; this is the race after that check
        raise ConfigError(
            f"config key study.output_dir: cannot create a run folder in {study.output_dir} "
            f"({exc.strerror or exc}); fix its permissions or name another folder"
        ) from None
    log = _logger(run_dir, quiet)
    atomic_write_bytes(run_dir / "config.toml", to_toml(cfg).encode())
    with precision_override(study.precision):
        env = environment(device, study.seed, study.n_jobs)
    atomic_write_bytes(run_dir / "environment.json", json.dumps(env, indent=1).encode())
    log.info(
        "run folder %s; dataset %s (%d train / %d test); device %s",
        run_dir,
        dataset.name,
        len(dataset.y_train),
        len(dataset.y_test),
        device,
    )
    cache = Cache(study.cache_dir)
    cache.clean_orphans()  # work folders of killed runs (see study.cache)
    results, cached, done = {}, {}, {}
    # precision first: the cluster's local workers inherit it
    with precision_override(study.precision), backend_context(study.backend, study.scheduler, study.n_jobs):
        for name, task_cfg in cfg.tasks.items():
            result, entry, hit, key = run_task(
                name, task_cfg, dataset, study, device, cache, log, done, not quiet
            )
            shutil.copytree(entry, run_dir / "results" / name, copy_function=_link_or_copy)
            results[name], cached[name] = result, hit
            done[name] = (Upstream(result, run_dir / "results" / name), key)
    seconds = round(time.perf_counter() - t0, 2)
    summary = {
        "name": study.name,
        "dataset": {**dataset.summary(), "fingerprint": dataset.fingerprint()},
        "profile": study.profile,
        "seconds": seconds,
        "finished": datetime.now().isoformat(timespec="seconds"),
        "tasks": [{"task": n, "seconds": results[n].seconds, "cached": cached[n]} for n in results],
    }
    atomic_write_bytes(run_dir / "summary.json", json.dumps(summary, indent=1).encode())
    outcome = RunOutcome(run_dir, results, cached, seconds)
    log.info("study finished in %.1f s: %s", time.perf_counter() - t0, run_dir)
    return outcome


__all__ = ["run_study", "run_task", "RunOutcome", "environment", "result_to_json"]
