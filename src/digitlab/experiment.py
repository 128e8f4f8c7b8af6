"""The experiment engine: run a grid of independent points, collect tidy rows, summarise over seeds.

A point is a plain dict of settings (``{"model": "cnn", "n_train": 1000, "l2": 1e-4}``); a grid is a
list of points times a list of seeds. :func:`run_grid` calls ``fn(point, seed, threads)`` for each
pair as an independent joblib job (``backend`` = "loky", "threading", or any backend registered
with joblib, e.g. Dask's or Ray's) and returns one flat row per call: the point's settings, the
seed and whatever ``fn`` returned. :func:`summarise` turns rows into mean, standard deviation,
minimum and maximum per metric over seeds. :func:`fit_and_score` is the one build-fit-predict-score
path for a network, used by every task that trains one::

    rows = run_grid(lambda p, seed, threads: fit_and_score("cnn", {}, *data, TrainConfig(...), seed=seed),
                    [{"lr": lr} for lr in (0.003, 0.01)], seeds=[0, 1], n_jobs=2)
    table = summarise(rows, by=["lr"], metrics=["test_acc"])
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Callable, Iterator, Sequence

import numpy as np

# =============================================================================================
# CPU budget and progress
# =============================================================================================


def cpu_budget(n_jobs: int = 1, device: str = "cpu", threads_per_job: int = 0, n_tasks: int | None = None) -> tuple[int, int]:
    """``(jobs, threads per job)`` so that jobs x threads never exceeds the cores.

    ``n_jobs`` follows joblib (-1 = all cores, -2 = all but one); ``n_tasks`` caps the jobs at the
    number of things to run. On an accelerator one job runs at a time (jobs would only queue on it).
    The threads apply to torch, BLAS and OpenMP alike (see :func:`limit_threads`).
    """
    cores = os.cpu_count() or 1
    if device == "auto":  # a TaskContext made by hand defaults to "auto"; the runner passes a resolved device
        from digitlab.train import resolve_device

        device = resolve_device(device)
    if device != "cpu":
        return 1, threads_per_job or cores
    jobs = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)
    jobs = max(1, min(jobs, cores, n_tasks if n_tasks else jobs))
    threads = threads_per_job or max(1, cores // jobs)
    return jobs, max(1, min(threads, cores))


@contextmanager
def limit_threads(threads: int) -> Iterator[None]:
    """Cap torch, BLAS and OpenMP threads inside the block (0 = leave them), restoring them after."""
    if threads <= 0:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(old)


@contextmanager
def progress_bar(enabled: bool, description: str, total: int) -> Iterator[Callable[..., None]]:
    """A transient rich progress bar; yields ``step(advance=1, description=None)`` (a no-op when off)."""
    if not enabled:
        yield lambda advance=1, description=None: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as bar:
        task = bar.add_task(description, total=total)

        def step(advance: int = 1, description: str | None = None) -> None:
            bar.update(task, advance=advance, **({"description": description} if description else {}))

        yield step


# =============================================================================================
# Grids
# =============================================================================================


def _call(fn: Callable, point: dict, seed: int, threads: int, *args: Any) -> dict:
    with limit_threads(threads):
        t0, cpu0 = time.perf_counter(), time.process_time()
        out = fn(point, seed, threads, *args)
        return {**point, "seed": seed, **out, "wall_seconds": time.perf_counter() - t0,
                "cpu_seconds": time.process_time() - cpu0}


def run_grid(fn: Callable[..., dict], points: Sequence[dict], seeds: Sequence[int] = (0,), *, args: tuple = (),
             n_jobs: int = 1, backend: str = "loky", device: str = "cpu", threads_per_job: int = 0,
             progress: bool = False, description: str = "experiment") -> list[dict]:
    """Run ``fn(point, seed, threads, *args)`` for every point and seed; one tidy row per call, in grid order.

    Pass large shared inputs (the training arrays) in ``args``: joblib hands them to workers as
    memory maps instead of pickling them for every call. ``fn`` must be a module-level function
    (picklable) when more than one job runs.

    Points that are equal are run once (``fn`` must be deterministic given point and seed). Each
    row holds the point's settings, ``seed``, what ``fn`` returned, and ``wall_seconds`` and
    ``cpu_seconds`` of the call. With one job the calls run in this process (no pickling).
    """
    from joblib import Parallel, delayed, parallel_config

    unique: list[tuple[dict, int]] = []
    seen: set = set()
    for p in points:
        for s in seeds:
            key = (_freeze(p), s)
            if key not in seen:
                seen.add(key)
                unique.append((p, s))
    jobs, threads = cpu_budget(n_jobs, device, threads_per_job, len(unique))
    with progress_bar(progress, description, len(unique)) as step:
        if jobs == 1:
            out = []
            for p, s in unique:
                out.append(_call(fn, p, s, threads, *args))
                step()
        else:
            with parallel_config(backend=backend, n_jobs=jobs):
                gen = Parallel(return_as="generator")(delayed(_call)(fn, p, s, threads, *args) for p, s in unique)
                out = []
                for row in gen:
                    out.append(row)
                    step()
    by_key = {(_freeze(p), s): row for (p, s), row in zip(unique, out)}
    return [by_key[(_freeze(p), s)] for p in points for s in seeds]


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def summarise(rows: Sequence[dict], by: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """Per distinct combination of ``by`` (first-seen order): ``n`` and, per metric, mean, sample SD
    (0 with one row), min and max. Metrics missing or None in a row are skipped for that row."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(_freeze(r.get(k)) for k in by), []).append(r)
    out = []
    for _, rs in groups.items():
        row: dict[str, Any] = {k: rs[0].get(k) for k in by}
        row["n"] = len(rs)
        for m in metrics:
            v = np.array([r[m] for r in rs if r.get(m) is not None], dtype=float)
            if not len(v):
                continue
            row[f"{m}_mean"] = float(v.mean())
            row[f"{m}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            row[f"{m}_min"], row[f"{m}_max"] = float(v.min()), float(v.max())
        out.append(row)
    return out


def input_shape(x: np.ndarray) -> tuple[int, int, int]:
    """``(C, H, W)`` of uint8 images ``(n, H, W)`` (C = 1), ``(n, H, W, C)`` or square ``(n, H*W)``."""
    if x.ndim == 2:
        side = int(round(np.sqrt(x.shape[1])))
        return (1, side, side)
    return (1, *x.shape[1:3]) if x.ndim == 3 else (x.shape[3], x.shape[1], x.shape[2])


# =============================================================================================
# One network: build, fit, predict, score
# =============================================================================================


def fit_and_score(net: str, net_params: dict, x_train: np.ndarray, y_train: np.ndarray,
                  eval_sets: dict[str, tuple[np.ndarray, np.ndarray]], train_cfg: Any, *, seed: int = 0,
                  augment: Any = None, n_classes: int | None = None, keep_model: bool = False,
                  keep_proba: bool = False, progress: bool = False) -> dict[str, Any]:
    """Build network ``net`` (seeded), train it with ``train_cfg`` (a :class:`~digitlab.train.TrainConfig`;
    its seed is replaced by ``seed``) and score it on every ``eval_sets[name] = (x, y)`` (``y`` None: predictions only).

    Returns ``{"<name>_acc", "<name>_loss", "<name>_pred"}`` per evaluation set, plus ``params``,
    ``train_seconds``, ``best_epoch``, ``epochs_run``, ``steps``, ``history`` (per-epoch dicts),
    ``flops_per_image`` (FLOPs of one training step per image, :func:`digitlab.flops.train_flops`),
    ``train_flops`` (that times the training images seen), ``eval_flops_per_image`` (forward only) and
    ``eval_flops`` (that times the images of every evaluation set),
    and with ``keep_model`` the fitted ``model`` and ``norm``; with ``keep_proba`` ``<name>_proba``.
    """
    from digitlab.flops import forward_flops, train_flops
    from digitlab.models.nets import build_net, count_parameters
    from digitlab.train import fit, predict_proba

    k = n_classes or int(np.max(y_train)) + 1
    cfg = replace(train_cfg, seed=seed)
    model = build_net(net, input_shape(x_train), k, seed=seed, **(net_params or {}))
    res = fit(model, x_train, y_train, cfg, augment=augment, progress=progress)
    out: dict[str, Any] = {"params": count_parameters(model), "train_seconds": res.train_seconds,
                           "best_epoch": res.best_epoch, "epochs_run": len(res.history),
                           "steps": getattr(res, "steps", None), "history": res.history}
    shape = input_shape(x_train)
    out["flops_per_image"] = train_flops(res.model, shape, min(cfg.batch_size, max(2, len(y_train))))
    out["train_flops"] = out["flops_per_image"] * res.n_train_images_seen
    out["eval_flops_per_image"] = forward_flops(res.model, shape)
    out["eval_flops"] = out["eval_flops_per_image"] * sum(len(x) for x, _ in eval_sets.values())
    for name, (x, y) in eval_sets.items():
        proba = predict_proba(res.model, x, norm=res.norm, device=cfg.device)
        out[f"{name}_pred"] = proba.argmax(1)
        if keep_proba:
            out[f"{name}_proba"] = proba
        if y is None:  # predictions only
            continue
        y = np.asarray(y)
        out[f"{name}_acc"] = float(np.mean(out[f"{name}_pred"] == y))
        out[f"{name}_loss"] = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None))))
    if keep_model:
        out["model"], out["norm"] = res.model, res.norm
    return out


__all__ = ["run_grid", "summarise", "fit_and_score", "cpu_budget", "limit_threads", "progress_bar", "input_shape"]
