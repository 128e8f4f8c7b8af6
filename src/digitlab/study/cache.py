"""Content-addressed cache of task results, with atomic writes.

An entry lives in ``<cache_dir>/<task>/<key>/`` and holds ``result.json`` plus the files the task
wrote (figures, arrays). The key hashes the task name, its resolved config section, the seed, the
device kind, the dataset fingerprint and the code version (a hash of digitlab's source), so a rerun
with the same inputs reuses the entry and any change recomputes. A task runs in a temporary sibling
folder that is renamed into place only when it finished: a killed run leaves no half entry.
"""

from __future__ import annotations

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


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of every .py file of the installed digitlab package (changes whenever code changes)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def cache_key(task: str, section: dict[str, Any], seed: int, device: str, data_fingerprint: str) -> str:
    payload = json.dumps(
        {"task": task, "config": section, "seed": seed, "device": device.split(":")[0],
         "data": data_fingerprint, "code": code_version()},
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
