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

Clusters: ``backend="dask"`` or ``"ray"`` runs the jobs on a cluster through joblib's own backends
(:func:`backend_context` sets them up in one place: a ``distributed.Client`` for a scheduler address,
or a ``LocalCluster`` when none is given; ``ray.init(address=...)`` or a local Ray). Threads per job
are chosen so that the jobs on a worker never use more threads than its host has cores.

Resuming: with ``cache_dir`` every finished (point, seed) is stored as one small file as soon as it
finishes, so a killed run repeats at most the points that were in flight.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from digitlab import metrics as M
from digitlab.io import atomic_write
from digitlab.runtime import cpu_budget, limit_threads, progress_bar

# =============================================================================================
# Grids
# =============================================================================================


CLUSTER_BACKENDS = ("dask", "ray")
log = logging.getLogger("digitlab")


@dataclass
class WorkerPool:
    """A cluster that :func:`backend_context` connected to: ``slots`` jobs run at once, each with
    ``threads`` threads, so that no worker host runs more threads than it has cores."""

    backend: str
    address: str
    slots: int
    threads: int
    client: Any = None  # the distributed.Client (dask)


_ACTIVE: list[WorkerPool] = []
CONNECT_TIMEOUT_S = 20  # how long to try to reach a scheduler given by address
WORKER_WAIT_S = 60  # how long to wait for the first worker to join it


def _host_cpus() -> int:
    """Cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _dask_budget(client: Any) -> tuple[int, int]:
    """``(slots, threads per job)`` of a dask cluster: slots = worker threads in all; threads per job =
    the smallest, over hosts, of the host's cores divided by the worker threads on that host."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cpus = client.run(_host_cpus)
    per_host: dict[str, list[int]] = {}
    for addr, info in workers.items():
        host = info.get("host") or addr.rsplit(":", 1)[0]
        per_host.setdefault(host, [0, 0])
        per_host[host][0] += int(info.get("nthreads", 1))
        per_host[host][1] = max(per_host[host][1], int(cpus.get(addr, 1)))
    slots = sum(n for n, _ in per_host.values())
    threads = min(max(1, c // max(1, n)) for n, c in per_host.values())
    return max(1, slots), threads


@contextmanager
def _dask_cluster(scheduler: str, n_jobs: int) -> Iterator[WorkerPool]:
    from digitlab.exceptions import ConfigError

    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(
            "study.backend 'dask': dask.distributed is not installed; pip install -e \".[dask]\" "
            "(on every worker too)"
        ) from None

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"study.scheduler {scheduler}: cannot connect to a dask scheduler ({exc}); start one with "
                f"`dask scheduler` and workers with `dask worker {scheduler}`, or leave study.scheduler "
                "empty for a local cluster"
            ) from None
    else:
        jobs, _ = cpu_budget(n_jobs, "cpu")
        cluster = LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster, set_as_default=False)
    try:
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except (TimeoutError, OSError) as exc:
            raise ConfigError(
                f"study.scheduler {scheduler}: no dask worker joined within {WORKER_WAIT_S} s ({exc}); start "
                f"`dask worker {scheduler}` on the worker machines"
            ) from None
        slots, threads = _dask_budget(client)
        yield WorkerPool("dask", str(client.scheduler.address), slots, threads, client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def _ray_cluster(address: str, n_jobs: int) -> Iterator[WorkerPool]:
    from digitlab.exceptions import ConfigError

    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        raise ConfigError(
            "study.backend 'ray': ray is not installed; pip install -e \".[ray]\" (on every node too)"
        ) from None

    register_ray()
    started = not ray.is_initialized()
    if started:
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=cpu_budget(n_jobs, "cpu")[0], include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"study.scheduler {address}: cannot connect to a Ray cluster ({exc}); start one with "
                "`ray start --head`, or leave study.scheduler empty for a local Ray"
            ) from None
    try:
        # Ray's joblib backend reserves one CPU per job: one thread per job fills the cores exactly.
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        yield WorkerPool("ray", address or "local", slots, 1)
    finally:
        if started:
            ray.shutdown()


@contextmanager
def backend_context(
    backend: str = "loky", scheduler: str = "", n_jobs: int = 1
) -> Iterator[WorkerPool | None]:
    """Connect to (or start) the cluster of a cluster ``backend`` for the block; yields its :class:`WorkerPool`.

    ``backend`` "dask": ``scheduler`` is a dask scheduler address (``tcp://host:8786``); empty starts a
    ``LocalCluster`` of ``n_jobs`` single-threaded worker processes. ``backend`` "ray": ``scheduler`` is a
    Ray address (``auto``, ``ray://host:10001``); empty starts a local Ray. Any other backend yields None
    (local joblib). Nested calls reuse the cluster of the enclosing block (the runner opens one per study)."""
    if backend not in CLUSTER_BACKENDS:
        yield None
        return
    if _ACTIVE and _ACTIVE[-1].backend == backend:
        yield _ACTIVE[-1]
        return
    with (_dask_cluster if backend == "dask" else _ray_cluster)(scheduler, n_jobs) as cluster:
        _ACTIVE.append(cluster)
        try:
            yield cluster
        finally:
            _ACTIVE.pop()


def _call(fn: Callable, point: dict, seed: int, threads: int, *args: Any) -> dict:
    with limit_threads(threads):
        t0, cpu0 = time.perf_counter(), time.process_time()
        out = fn(point, seed, threads, *args)
        return {
            **point,
            "seed": seed,
            **out,
            "wall_seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - cpu0,
        }


def _call_indexed(
    i: int, keep_going: bool, fn: Callable, point: dict, seed: int, threads: int, *args: Any
) -> tuple[int, dict | BaseException]:
    """``(i, row)``; with ``keep_going`` a failure comes back as ``(i, exception)`` so that the points
    finishing alongside it are still stored before it is raised."""
    if not keep_going:
        return i, _call(fn, point, seed, threads, *args)
    try:
        return i, _call(fn, point, seed, threads, *args)
    except Exception as exc:  # noqa: BLE001 - re-raised by run_grid once the other points are stored
        return i, exc


def point_key(fn: Callable, point: dict, seed: int, key: str = "", args_hash: str = "") -> str:
    """The file name stem of one (point, seed) in a point cache: a hash of ``fn``'s qualified name, the
    point, the seed, the caller's key and a hash of the shared arguments."""
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    payload = pickle.dumps((name, _freeze(point), int(seed), key, args_hash), protocol=4)
    return hashlib.sha256(payload).hexdigest()[:24]


def _load_point(path: Path) -> dict | None:
    import joblib

    try:
        row = joblib.load(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged file of our own folder: recompute the point
        log.warning("grid point %s is unreadable (%s); recomputing it", path.name, exc)
        path.unlink(missing_ok=True)
        return None
    return row if isinstance(row, dict) else None


def _save_point(path: Path, row: dict) -> None:
    """Store one finished point atomically."""
    import joblib

    atomic_write(path, lambda tmp: joblib.dump(row, tmp))


def run_grid(
    fn: Callable[..., dict],
    points: Sequence[dict],
    seeds: Sequence[int] = (0,),
    *,
    args: tuple = (),
    n_jobs: int = 1,
    backend: str = "loky",
    device: str = "cpu",
    threads_per_job: int = 0,
    progress: bool = False,
    description: str = "experiment",
    cache_dir: str | os.PathLike | None = None,
    cache_key: str = "",
    scheduler: str = "",
) -> list[dict]:
    """Run ``fn(point, seed, threads, *args)`` for every point and seed; one tidy row per call, in grid order.

    Pass large shared inputs (the training arrays) in ``args``: joblib hands them to workers as
    memory maps instead of pickling them for every call. ``fn`` must be a module-level function
    (picklable) when more than one job runs.

    Points that are equal are run once (``fn`` must be deterministic given point and seed). Each
    row holds the point's settings, ``seed``, what ``fn`` returned, and ``wall_seconds`` and
    ``cpu_seconds`` of the call. With one job the calls run in this process (no pickling).

    ``cache_dir``: a folder where each finished (point, seed) is stored at once (one small pickle,
    written atomically; ``fn``'s results must be picklable) and from which it is reused. Its key hashes
    ``fn``'s qualified name, the point, the seed, ``cache_key`` (the caller's: e.g. a task's cache key)
    and ``args``, so a killed run, rerun, repeats only the points in flight; when a point fails, the
    points running beside it are finished and stored before its error is raised. ``backend`` "dask" or
    "ray" runs the jobs on a cluster (``scheduler``: its address; see :func:`backend_context`).
    """
    unique: list[tuple[dict, int]] = []
    seen: set = set()
    for p in points:
        for s in seeds:
            key = (_freeze(p), s)
            if key not in seen:
                seen.add(key)
                unique.append((p, s))
    out: list[dict | None] = [None] * len(unique)
    files: list[Path | None] = [None] * len(unique)
    if cache_dir is not None:
        import joblib

        args_hash = joblib.hash(args) if args else ""
        for i, (p, s) in enumerate(unique):
            files[i] = Path(cache_dir) / f"{point_key(fn, p, s, cache_key, args_hash)}.pkl"
            out[i] = _load_point(files[i])
        reused = sum(r is not None for r in out)
        if reused:
            log.info("%s: %d of %d grid points from the point cache", description, reused, len(unique))
    todo = [i for i, r in enumerate(out) if r is None]

    def done(i: int, row: dict) -> None:
        out[i] = row
        if files[i] is not None:
            _save_point(files[i], row)

    cluster_cm = backend_context(backend, scheduler, n_jobs) if todo else nullcontext()
    with cluster_cm as cluster, progress_bar(progress, description, len(unique)) as step:
        step(len(unique) - len(todo))
        if cluster is not None:
            jobs = min(cluster.slots, max(1, len(todo)))
            threads = min(threads_per_job or cluster.threads, cluster.threads)
        else:
            jobs, threads = cpu_budget(n_jobs, device, threads_per_job, max(1, len(todo)))
        if jobs == 1 and cluster is None:
            for i in todo:
                p, s = unique[i]
                done(i, _call(fn, p, s, threads, *args))
                step()
        elif todo:
            failed: BaseException | None = None
            for i, row in _dispatch(
                fn, unique, todo, threads, args, backend, cluster, jobs, keep_going=cache_dir is not None
            ):
                if isinstance(row, BaseException):
                    failed = failed or row
                    continue
                done(i, row)
                step()
            if failed is not None:
                raise failed
    rows = {(_freeze(p), s): row for (p, s), row in zip(unique, out)}
    return [rows[(_freeze(p), s)] for p in points for s in seeds]


def _dispatch(
    fn: Callable,
    unique: list,
    todo: list[int],
    threads: int,
    args: tuple,
    backend: str,
    cluster: WorkerPool | None,
    jobs: int,
    keep_going: bool = False,
) -> Iterator[tuple[int, dict | BaseException]]:
    """Run the ``todo`` calls through joblib (on ``cluster`` when given), yielding ``(index, row)`` as each
    finishes. The joblib backend is set for these calls only (scikit-learn's own parallel calls elsewhere
    stay local). Backends without result generators (Ray's) run in chunks of ``2 * jobs`` calls so that
    finished points are still handed back (and stored) along the way."""
    from joblib import Parallel, delayed, parallel_config

    def calls(idx: list[int]):
        return (delayed(_call_indexed)(i, keep_going, fn, *unique[i], threads, *args) for i in idx)

    extra = {"client": cluster.client} if cluster is not None and cluster.backend == "dask" else {}
    with parallel_config(backend=cluster.backend if cluster else backend, n_jobs=jobs, **extra):
        try:
            parallel = Parallel(return_as="generator_unordered")
        except ValueError as exc:  # "does not support return_as" (Ray's and the multiprocessing backend)
            if "return_as" not in str(exc):
                raise
            for start in range(0, len(todo), 2 * jobs):
                yield from Parallel()(calls(todo[start : start + 2 * jobs]))
            return
        yield from parallel(calls(todo))


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


def fit_and_score(
    net: str,
    net_params: dict,
    x_train: np.ndarray,
    y_train: np.ndarray,
    eval_sets: dict[str, tuple[np.ndarray, np.ndarray]],
    train_cfg: Any,
    *,
    seed: int = 0,
    augment: Any = None,
    n_classes: int | None = None,
    keep_model: bool = False,
    keep_proba: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
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
    out: dict[str, Any] = {
        "params": count_parameters(model),
        "train_seconds": res.train_seconds,
        "best_epoch": res.best_epoch,
        "epochs_run": len(res.history),
        "steps": getattr(res, "steps", None),
        "history": res.history,
    }
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
        out[f"{name}_loss"] = M.log_loss(y, proba)
    if keep_model:
        out["model"], out["norm"] = res.model, res.norm
    return out


__all__ = [
    "run_grid",
    "backend_context",
    "WorkerPool",
    "point_key",
    "summarise",
    "fit_and_score",
    "input_shape",
]
