"""Read a run folder for the report, tolerating damage.

A report must render whatever is left of a run: a missing or corrupt ``result.json`` becomes a task
with an ``error`` (the section shows it), a deleted or damaged figure file becomes a figure with an
``error``, and an unreadable ``summary.json`` or ``environment.json`` is replaced by what the
``results/`` folder holds, with a note. Only a folder that holds no results at all is refused.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitlab.exceptions import DigitlabError
from digitlab.study.task import TaskResult

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_FIGURE_BYTES = 40 * 2**20  # a larger "figure" is not one of ours


@dataclass
class LoadedFigure:
    name: str
    file: str
    caption: str
    src: str = ""  # data: URI of the PNG ("" when missing)
    html: str | None = None  # interactive fragment (HTML report only)
    error: str = ""  # why the figure cannot be shown
    width_mm: float = 0.0  # printed size at the PNG's own resolution (0 when unknown)
    height_mm: float = 0.0


@dataclass
class LoadedTask:
    name: str
    folder: Path
    result: TaskResult | None = None
    figures: list[LoadedFigure] = field(default_factory=list)
    cached: bool = False
    seconds: float | None = None
    error: str = ""  # why the result cannot be shown ("" when fine)


@dataclass
class RunData:
    run_dir: Path
    summary: dict[str, Any]
    env: dict[str, Any]
    tasks: dict[str, LoadedTask]  # in run order
    problems: list[str] = field(default_factory=list)  # damaged run-level files, shown at the top


def _read_json(path: Path) -> tuple[Any, str]:
    """(parsed JSON, "") or (None, a short reason)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), ""
    except FileNotFoundError:
        return None, "missing"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({exc.__class__.__name__})"
    except ValueError as exc:
        return None, f"not valid JSON ({str(exc)[:80]})"


def png_size_mm(data: bytes) -> tuple[float, float]:
    """Printed (width, height) in mm of a PNG at its recorded resolution (matplotlib writes it; 96 dpi if absent)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            dpi = im.info.get("dpi", (96, 96))[0] or 96
    except Exception:  # noqa: BLE001 - a PNG Pillow cannot parse still shows, at the page width
        return 0.0, 0.0
    dpi = float(dpi) if 30 <= float(dpi) <= 1200 else 96.0
    return w / dpi * 25.4, h / dpi * 25.4


def _png(path: Path) -> tuple[str, str]:
    """(data URI, "") or ("", reason) for a figure file."""
    try:
        if path.stat().st_size > MAX_FIGURE_BYTES:
            return "", "too large to be a figure"
        data = path.read_bytes()
    except FileNotFoundError:
        return "", "missing"
    except OSError as exc:
        return "", f"unreadable ({exc.__class__.__name__})"
    if not data.startswith(PNG_MAGIC):
        return "", "not a PNG image"
    return "data:image/png;base64," + base64.b64encode(data).decode(), ""


def _safe_child(folder: Path, name: str) -> Path | None:
    """``folder/name`` when ``name`` is a plain relative file name inside ``folder`` (no '..', no absolute)."""
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        return None
    return folder / name


def _check_result(r: TaskResult) -> None:
    """Raise TypeError when a parsed result does not have the shapes the report reads."""

    def strings(value: Any, what: str) -> None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"{what} is not a list of strings")

    for key in ("title", "summary", "headline"):
        if not isinstance(getattr(r, key), str):
            raise TypeError(f"{key} is not a string")
    strings(r.findings, "findings")
    strings(r.notes, "notes")
    if not isinstance(r.metrics, dict):
        raise TypeError("metrics is not an object")
    for tb in r.tables:
        if not isinstance(tb.rows, list) or not all(isinstance(row, dict) for row in tb.rows):
            raise TypeError(f"table {tb.name!r} has rows that are not objects")
        if tb.columns is not None:
            strings(tb.columns, f"table {tb.name!r} columns")
    for fig in r.figures:
        if not isinstance(fig.file, str) or not isinstance(fig.caption, str):
            raise TypeError(f"figure {fig.name!r} has no file name or caption")
    if not isinstance(r.seconds, (int, float)):
        r.seconds = 0.0


def load_task(name: str, folder: Path, interactive: bool = True) -> LoadedTask:
    """Read one task's ``result.json`` and figure files; damage becomes ``error`` fields, never an exception."""
    from digitlab.study.cache import result_from_json

    task = LoadedTask(name, folder)
    rel = f"results/{name}/result.json"
    if not folder.is_dir():
        task.error = f"{rel} is missing (the folder results/{name} does not exist)"
        return task
    try:
        task.result = result_from_json((folder / "result.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        task.error = f"{rel} is missing"
    except (OSError, UnicodeDecodeError) as exc:
        task.error = f"{rel} is unreadable ({exc.__class__.__name__})"
    except Exception as exc:  # noqa: BLE001 - any damage to the stored JSON is reported, never raised
        task.error = f"{rel} is damaged ({exc.__class__.__name__}: {str(exc)[:80]})"
    if task.result is not None:
        try:
            _check_result(task.result)
        except (TypeError, ValueError) as exc:
            task.result, task.error = None, f"{rel} is damaged ({exc})"
    if task.result is None:
        return task
    for fig in task.result.figures:
        path = _safe_child(folder, fig.file)
        src, why = _png(path) if path else ("", "has an unsafe file name")
        lf = LoadedFigure(
            fig.name,
            str(fig.file),
            str(fig.caption or ""),
            src=src,
            error=f"figure file results/{name}/{fig.file} is {why}" if why else "",
        )
        if src:
            lf.width_mm, lf.height_mm = png_size_mm(base64.b64decode(src.split(",", 1)[1]))
        if interactive and fig.html_file:
            hpath = _safe_child(folder, fig.html_file)
            try:
                lf.html = hpath.read_text(encoding="utf-8") if hpath else None
            except (OSError, UnicodeDecodeError):
                lf.html = None  # the static PNG stands in
        task.figures.append(lf)
    return task


def load_run(run_dir: str | Path, interactive: bool = True) -> RunData:
    """Read everything the report needs from a run folder (see the module docstring for damage)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DigitlabError(
            f"{run_dir}: not a folder; pass a run folder written by `digitlab run` (runs/<time>-<name>)"
        )
    problems: list[str] = []
    summary, why = _read_json(run_dir / "summary.json")
    if not isinstance(summary, dict) or not isinstance(summary.get("tasks"), list):
        problems.append(
            f"summary.json is {why or 'incomplete'}: the task list, timings and dataset summary below are "
            "taken from the results/ folder instead"
        )
        summary = summary if isinstance(summary, dict) else {}
        summary["tasks"] = []
    env, why = _read_json(run_dir / "environment.json")
    if not isinstance(env, dict):
        problems.append(f"environment.json is {why or 'not an object'}: the run's environment is unknown")
        env = {}
    entries: list[dict[str, Any]] = []
    for t in summary["tasks"]:
        if isinstance(t, dict) and isinstance(t.get("task"), str) and _safe_child(run_dir, t["task"]):
            entries.append(t)
    listed = {t["task"] for t in entries}
    results = run_dir / "results"
    if results.is_dir():
        for folder in sorted(p for p in results.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if folder.name not in listed:
                entries.append({"task": folder.name})
    if not entries:
        raise DigitlabError(
            f"{run_dir}: no task results (summary.json lists none and results/ is empty or missing); "
            "pass a folder written by `digitlab run`"
        )
    tasks: dict[str, LoadedTask] = {}
    for t in entries:
        task = load_task(t["task"], results / t["task"], interactive)
        task.cached = bool(t.get("cached", False))
        secs = t.get("seconds")
        task.seconds = (
            float(secs) if isinstance(secs, (int, float)) else (task.result.seconds if task.result else None)
        )
        tasks[task.name] = task
    return RunData(run_dir, summary, env, tasks, problems)


__all__ = ["LoadedFigure", "LoadedTask", "RunData", "load_run", "load_task"]
