"""Content-addressed cache of task results, with atomic writes.

An entry lives in ``<cache_dir>/<task>/<key>/`` and holds ``result.json`` plus the files the task
wrote (figures, arrays). The key hashes the task name, its resolved config section, the seed, the
device kind, the dataset fingerprint, the code the task runs (its module and the digitlab modules it
imports) and the keys of the tasks it reads, so a rerun with the same inputs reuses the entry and any
change that can alter the result recomputes. A task runs in a temporary sibling
folder that is renamed into place only when it finished: a killed run leaves no half entry.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from digitlab.study.task import Figure, Table, TaskResult


PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of every .py file of the installed digitlab package (recorded in environment.json)."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE_ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _module_file(name: str) -> Path | None:
    """The source file of digitlab module ``name`` (a package's ``__init__.py``), or None."""
    parts = name.split(".")[1:]
    if not parts:
        return PACKAGE_ROOT / "__init__.py"
    rel = Path(*parts)
    for cand in (PACKAGE_ROOT / rel.with_suffix(".py"), PACKAGE_ROOT / rel / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imports(path: Path) -> set[str]:
    """digitlab modules imported anywhere in ``path`` (top level or inside functions)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "digitlab"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "digitlab" and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # "from digitlab.models import zoo"
    return found


@functools.lru_cache(maxsize=None)
def module_closure(module: str) -> tuple[str, ...]:
    """``module`` and every digitlab module it imports, transitively (sorted file paths)."""
    todo, files = [module], {}
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None or name in files:
            continue
        files[name] = path
        todo.extend(_imports(path))
        parts = name.split(".")  # importing a.b.c also runs a/__init__ and a/b/__init__
        todo.extend(".".join(parts[:i]) for i in range(2, len(parts)))
    return tuple(sorted({str(p.relative_to(PACKAGE_ROOT)) for p in files.values()}))


@functools.lru_cache(maxsize=None)
def task_code_version(task_module: str) -> str:
    """Hash of the task's module and the digitlab modules it imports: editing the report, the CLI
    or an unrelated task leaves it unchanged, so cached results stay valid."""
    h = hashlib.sha256()
    for rel in module_closure(task_module):
        h.update(rel.encode())
        h.update((PACKAGE_ROOT / rel).read_bytes())
    return h.hexdigest()[:12]


def cache_key(task: str, section: dict[str, Any], seed: int, device: str, data_fingerprint: str,
              upstream: dict[str, str] | None = None) -> str:
    """The key of a task's result: its config section, seed, device kind, data, the code it runs and
    the keys of the tasks it reads (so a change upstream recomputes it)."""
    payload = json.dumps(
        {"task": task, "config": section, "seed": seed, "device": device.split(":")[0],
         "data": data_fingerprint, "code": task_code_version(f"digitlab.study.tasks.{task}"),
         "upstream": upstream or {}},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def result_to_json(result: TaskResult) -> str:
    return json.dumps(dataclasses.asdict(result), indent=1, default=_jsonable)


def _jsonable(obj: Any) -> Any:
    """Last-resort conversion of numpy scalars/arrays that slipped into a result."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def result_from_json(text: str) -> TaskResult:
    d = json.loads(text)
    d["tables"] = [Table(**t) for t in d.get("tables", [])]
    d["figures"] = [Figure(**f) for f in d.get("figures", [])]
    return TaskResult(**d)


class Cache:
    """A folder of task results keyed by :func:`cache_key`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def entry(self, task: str, key: str) -> Path:
        return self.root / task / key

    def load(self, task: str, key: str) -> TaskResult | None:
        """The stored result, or None when absent or unreadable (then it is recomputed)."""
        path = self.entry(task, key) / "result.json"
        try:
            return result_from_json(path.read_text())
        except (OSError, ValueError, TypeError):
            return None

    def new_workdir(self, task: str, key: str) -> Path:
        """A fresh temporary folder beside the final entry for a task to write into."""
        work = self.root / task / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        work.mkdir(parents=True)
        return work

    def commit(self, task: str, key: str, workdir: Path, result: TaskResult) -> Path:
        """Write result.json into ``workdir`` and atomically rename it into place."""
        tmp = workdir / ".result.json.tmp"
        tmp.write_text(result_to_json(result))
        os.replace(tmp, workdir / "result.json")
        final = self.entry(task, key)
        if final.exists():  # a concurrent or stale entry: replace it as a whole
            shutil.rmtree(final, ignore_errors=True)
        os.replace(workdir, final)
        return final

    @staticmethod
    def discard(workdir: Path) -> None:
        shutil.rmtree(workdir, ignore_errors=True)
