"""Plumbing every task shares: which images a task uses, progress, the CPU budget, figures.

One rule decides which images a task sees (:func:`split`): a size of 0 (or one at least as large
as the data) means every image, any other size an exact stratified subset drawn with the study's
seed. Every task of one run that asks for the same sizes therefore scores **the same test images**,
and a size larger than the data is clamped, with a note the task puts in its section.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.data.subsets import subset_indices
from digitlab.runtime import cpu_budget, progress_bar  # noqa: F401  (cpu_budget re-exported for tasks)
from digitlab.study.task import Figure, TaskContext, save_png

# =============================================================================================
# Which images: the one subset rule
# =============================================================================================


@dataclass
class Split:
    """The training and test images a task uses, with their indices into the official split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray
    test_index: np.ndarray
    notes: list[str] = field(
        default_factory=list
    )  # e.g. "asked for 2,000 training images; the data has 1,347"

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        return len(self.y_test)


def clamp_note(what: str, asked: int, available: int) -> str | None:
    """The sentence a section shows when a configured size exceeds the data (None when it fits)."""
    if asked > available:
        return f"The configuration asks for {asked:,} {what}; {available:,} exist, so all of them are used."
    return None


def split(ctx: TaskContext, n_train: int = 0, n_test: int = 0) -> Split:
    """The task's images under the shared rule: the study seed draws both subsets, so two tasks given
    the same sizes get identical indices."""
    ds = ctx.dataset
    tr = subset_indices(ds.y_train, n_train, ctx.seed)
    te = subset_indices(ds.y_test, n_test, ctx.seed)
    notes = [
        n
        for n in (
            clamp_note("training images", n_train, len(ds.y_train)),
            clamp_note("test images", n_test, len(ds.y_test)),
        )
        if n
    ]
    return Split(ds.x_train[tr], ds.y_train[tr], ds.x_test[te], ds.y_test[te], tr, te, notes)


# =============================================================================================
# Progress
# =============================================================================================


def status(enabled: bool, text: str):
    """A spinner on stderr while a slow step without sub-steps runs (a no-op when progress is off)."""
    if not enabled:
        return nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(text)


@contextmanager
def progress(ctx: TaskContext, description: str, total: int) -> Iterator[Callable[..., None]]:
    """``with progress(ctx, "classify", n) as step: ... step(description=...)`` : one rich bar."""
    with progress_bar(ctx.progress, description, total) as step:
        yield step


# =============================================================================================
# Figures
# =============================================================================================


def add_figure(
    figures: list[Figure], fig: Any, out_dir: Path, name: str, caption: str, html_file: str | None = None
) -> Figure:
    """Save matplotlib ``fig`` as ``<name>.png`` in ``out_dir``, append its :class:`Figure` to
    ``figures`` (a list, or a TaskResult's ``figures``) and return it."""
    figure = Figure(name, save_png(fig, out_dir, name), caption, html_file)
    figures.append(figure)
    return figure


__all__ = ["subset_indices", "split", "Split", "clamp_note", "status", "progress", "add_figure", "cpu_budget"]
