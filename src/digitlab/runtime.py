"""The runtime: which device and precision, how many jobs and threads, progress bars.

Every choice about the machine a study runs on is made here, once: :func:`resolve_device` (cuda > mps >
cpu), :func:`resolve_precision` and :func:`precision_override` (bf16 autocast where the hardware runs
it natively), :func:`cpu_budget` (jobs x threads never above the cores), :func:`limit_threads` (torch,
BLAS and OpenMP together) and :func:`progress_bar` (rich, transient; a no-op when off).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from digitlab.exceptions import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")


# =============================================================================================
# Device and precision
# =============================================================================================


def resolve_device(name: str = "auto") -> str:
    """Turn ``"auto"`` into the best available device; check that a named one exists."""
    if name not in DEVICES:
        raise ConfigError(f"device {name!r}: unknown; use one of {list(DEVICES)}")
    has_mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda': no CUDA GPU is visible to torch; use device = 'auto' or 'cpu'")
    if name == "mps" and not has_mps:
        raise ConfigError("device 'mps': Apple MPS is not available; use device = 'auto' or 'cpu'")
    return name


def native_bf16(device: str) -> bool:
    """Whether ``device`` runs bfloat16 matrix products natively (not emulated, hence faster than fp32).

    CUDA: ``torch.cuda.is_bf16_supported()`` (Ampere and later). CPU: the AMX or AVX512-BF16
    instructions (Linux ``/proc/cpuinfo`` flags ``amx_bf16`` / ``avx512_bf16``); without them
    oneDNN emulates bf16 and it is slower than fp32. Other devices: no.
    """
    if device == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return device == "cpu" and _cpu_has_bf16()


@functools.lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


# "fp32" or "bf16": what "auto" means in this process and the workers it starts
PRECISION_ENV = "DIGITLAB_PRECISION"


def resolve_precision(precision: str, device: str) -> str:
    """``"fp32"`` or ``"bf16"``: ``"auto"`` becomes bf16 where :func:`native_bf16` holds, else fp32.

    A study's ``study.precision`` (see :func:`precision_override`) sets what ``"auto"`` means for
    every network the study trains, in this process and in the worker processes it starts.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r}: unknown; use one of {list(PRECISIONS)}")
    if precision == "auto":
        forced = os.environ.get(PRECISION_ENV, "")
        if forced in ("fp32", "bf16"):
            return forced if device in ("cpu", "cuda") else "fp32"
        return "bf16" if native_bf16(device) else "fp32"
    return precision


@contextmanager
def precision_override(precision: str) -> Iterator[None]:
    """Inside the block, ``precision="auto"`` means ``precision`` ("auto" leaves it to the hardware).

    Set through the environment so that joblib/loky and local Dask workers started inside the block
    inherit it; restored on exit.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r}: unknown; use one of {list(PRECISIONS)}")
    old = os.environ.get(PRECISION_ENV)
    if precision == "auto":
        os.environ.pop(PRECISION_ENV, None)
    else:
        os.environ[PRECISION_ENV] = precision
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(PRECISION_ENV, None)
        else:
            os.environ[PRECISION_ENV] = old


def autocast(precision: str, device: str):
    """The forward pass's autocast context: bf16 matmuls/convolutions, fp32 master weights (a no-op for fp32)."""
    dev = "cuda" if device == "cuda" else "cpu"
    return torch.autocast(
        dev, dtype=torch.bfloat16, enabled=precision == "bf16" and device in ("cpu", "cuda")
    )


# =============================================================================================
# CPU budget and progress
# =============================================================================================


def cpu_budget(
    n_jobs: int = 1, device: str = "cpu", threads_per_job: int = 0, n_tasks: int | None = None
) -> tuple[int, int]:
    """``(jobs, threads per job)`` so that jobs x threads never exceeds the cores.

    ``n_jobs`` follows joblib (-1 = all cores, -2 = all but one); ``n_tasks`` caps the jobs at the
    number of things to run. On an accelerator one job runs at a time (jobs would only queue on it).
    The threads apply to torch, BLAS and OpenMP alike (see :func:`limit_threads`).
    """
    cores = os.cpu_count() or 1
    if device == "auto":  # a TaskContext made by hand defaults to "auto"; the runner passes a resolved device
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

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def step(advance: int = 1, description: str | None = None) -> None:
            bar.update(task, advance=advance, **({"description": description} if description else {}))

        yield step


__all__ = [
    "resolve_device",
    "native_bf16",
    "resolve_precision",
    "precision_override",
    "autocast",
    "cpu_budget",
    "limit_threads",
    "progress_bar",
    "DEVICES",
    "PRECISIONS",
    "PRECISION_ENV",
]
