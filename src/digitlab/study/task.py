"""The contract between the study runner, the tasks and the report.

A task is a module in ``digitlab.study.tasks`` that defines

* ``NAME``: the task's key (also its config section, e.g. ``[features]``),
* ``TITLE``: the report section's heading,
* ``Config``: a dataclass of its settings, defaults = the ``standard`` profile,
* ``PROFILES``: ``{"quick": {...}, "full": {...}}`` field overrides per profile,
* ``run(ctx: TaskContext, cfg: Config) -> TaskResult``.

``run`` is a pure function of the data and its config section: it reads ``ctx.dataset``, writes
figure files into ``ctx.out_dir`` (a fresh folder that becomes the cache entry) and returns tables,
figures and findings. The report only reads stored results; it never trains anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitlab.data.registry import Dataset


@dataclass
class TaskContext:
    dataset: Dataset
    out_dir: Path  # write figures/artifacts here (file names relative to it go in Figure.file)
    profile: str = "standard"  # "quick" | "standard" | "full"
    seed: int = 0
    device: str = "cpu"  # resolved torch device string: "cpu", "cuda", "mps"
    n_jobs: int = 1  # parallel jobs for joblib / scikit-learn
    progress: bool = True  # show progress bars
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("digitlab"))
    shared: dict[str, Any] = field(default_factory=dict)  # results of earlier tasks in this run, by NAME


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
