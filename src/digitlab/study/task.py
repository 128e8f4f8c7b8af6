"""The contract between the study runner, the tasks and the report.

A task is a module in ``digitlab.study.tasks`` that defines

* ``NAME``: the task's key (also its config section, e.g. ``[features]``),
* ``TITLE``: the report section's heading,
* ``Config``: a dataclass of its settings, defaults = the ``standard`` profile,
* ``PROFILES``: ``{"quick": {...}, "full": {...}}`` field overrides per profile,
* ``run(ctx: TaskContext, cfg: Config) -> TaskResult``,
* optionally ``REQUIRES = ("classify", "embed")``: tasks whose stored results it reads. The runner
  runs (or loads) them first, hands them over as ``ctx.inputs[name]`` (result and folder) and folds
  their cache keys into this task's key, so a change upstream recomputes this task.

``Config`` may define ``validate()``; it runs when the config is resolved, before any task runs.

``run`` is a pure function of the data and its config section: it reads ``ctx.dataset``, writes
figure files into ``ctx.out_dir`` (a fresh folder that becomes the cache entry) and returns tables,
figures and findings. The report only reads stored results; it never trains anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitlab.data.dataset import Dataset


@dataclass
class TaskContext:
    dataset: Dataset
    out_dir: Path  # write figures/artifacts here (file names relative to it go in Figure.file)
    profile: str = "standard"  # "quick" | "standard" | "full"
    seed: int = 0
    device: str = "auto"  # torch device: "auto" (cuda > mps > cpu, resolved where used) or "cpu", "cuda", "mps"; the runner passes a resolved one
    n_jobs: int = 1  # parallel jobs for joblib / scikit-learn
    backend: str = "loky"  # joblib backend of the experiment engine (study.backend)
    progress: bool = True  # show progress bars
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("digitlab"))
    inputs: dict[str, Upstream] = field(default_factory=dict)  # the tasks named in REQUIRES, by NAME
    # Folder for finished grid points of this task (pass it as run_grid(..., cache_dir=ctx.points_dir)): a
    # killed run, rerun, repeats only the points in flight. None: no point cache (--no-cache, library use).
    points_dir: Path | None = None

    @property
    def shared(self) -> dict[str, Upstream]:  # the name before REQUIRES existed
        return self.inputs

    def upstream(self, name: str) -> Upstream:
        """The stored result of required task ``name`` (a ConfigError if the task did not declare it)."""
        if name not in self.inputs:
            from digitlab.exceptions import ConfigError

            raise ConfigError(f"task input {name!r}: not available; add {name!r} to the task's REQUIRES")
        return self.inputs[name]


@dataclass
class Upstream:
    """What a task receives of a task it REQUIRES: the stored result and the folder of its files."""

    result: TaskResult
    dir: Path

    def __getitem__(self, key: str) -> Any:  # {"result": ..., "dir": ...} access, as before
        return getattr(self, key)

    def file(self, name: str) -> Path:
        return self.dir / name


@dataclass
class Figure:
    """A figure of a task: a static PNG (HTML and PDF) and optionally an interactive HTML fragment."""

    name: str
    file: str  # PNG file name relative to the task's out_dir
    caption: str
    html_file: str | None = None  # optional self-contained HTML fragment (e.g. plotly), HTML report only


@dataclass
class Table:
    """A table: rows of JSON-serialisable dicts; ``columns`` fixes the order shown."""

    name: str
    rows: list[dict[str, Any]]
    caption: str = ""
    columns: list[str] | None = None


@dataclass
class TaskResult:
    """What a task hands to the cache and the report."""

    title: str
    summary: str = ""  # one paragraph: what this section does
    headline: str = ""  # the section's one key finding for the report's summary (computed, not typed)
    findings: list[str] = field(default_factory=list)  # sentences computed from the numbers
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # explanatory text (definitions, method notes)
    metrics: dict[str, Any] = field(default_factory=dict)  # headline numbers (JSON-serialisable)
    seconds: float = 0.0  # wall time of run(), filled in by the runner


def save_png(fig, out_dir: Path, name: str, dpi: int = 110) -> str:
    """Save a matplotlib figure as ``<name>.png`` in ``out_dir``, close it, return the file name."""
    import matplotlib.pyplot as plt

    file = f"{name}.png"
    fig.savefig(Path(out_dir) / file, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return file
