"""Content-addressed cache of task results, with atomic writes.

An entry lives in ``<cache_dir>/<task>/<key>/`` and holds ``result.json`` plus the files the task
wrote (figures, arrays). The key hashes the task name, its resolved config section, the seed, the
device kind, the dataset fingerprint, the code the task runs (its module and the digitlab modules it
imports), the versions of the third-party libraries that compute results (:data:`RESULT_PACKAGES`,
one environment hash shared by every task) and the keys of the tasks it reads, so a rerun with the same inputs reuses the entry and any
change that can alter the result recomputes. A task runs in a temporary sibling
folder that is renamed into place only when it finished: a killed run leaves no half entry.

Every entry carries ``manifest.json``, written last: the SHA-256 and size of each of its files.
:meth:`Cache.load` verifies it, so an edited ``result.json``, a damaged or deleted figure or array,
or a stray file is logged and the task recomputed, never shown or copied into a run. Entries are
replaced whole, never modified in place (run folders hard-link their files).

Orphans of killed runs are removed by :meth:`Cache.clean_orphans` at the start of the next run:
a ``.tmp-*`` work folder whose owner process (recorded in its ``.owner`` file) is gone on this host,
or, for one made on another host or without an owner file, older than :data:`ORPHAN_AGE_S`; a
``.points-*`` folder (finished grid points of an unfinished task, kept so the same command resumes)
older than :data:`POINTS_AGE_S`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from digitlab.study.task import Figure, Table, TaskResult

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = "manifest.json"
OWNER = ".owner"  # "<host> <pid>" of the process that writes a .tmp-* work folder
ORPHAN_AGE_S = 24 * 3600  # a .tmp-* folder of another host (or without owner) this old is an orphan
POINTS_AGE_S = 7 * 24 * 3600  # finished grid points of a task nobody resumed for a week are dropped
log = logging.getLogger("digitlab")
# The third-party libraries whose code computes results: upgrading any of them changes every task's key
# (one environment hash for all tasks), so a rerun after ``pip install -U`` recomputes instead of reusing
# results the old version computed. Report-only libraries (matplotlib, plotly, jinja2, weasyprint) change
# no number and are not part of the key; environment.json lists them all.
RESULT_PACKAGES = (
    "numpy",
    "scipy",
    "scikit-learn",
    "torch",
    "umap-learn",
    "openTSNE",
    "cleanlab",
    "pandas",
    "kornia",
    "scikit-image",
    "Pillow",
    "joblib",
    "numba",
    "skops",
)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of every .py file of the installed digitlab package (recorded in environment.json)."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE_ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or ``"not installed"``."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """The versions of :data:`RESULT_PACKAGES` (part of every cache key)."""
    return {pkg: package_version(pkg) for pkg in RESULT_PACKAGES}


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
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] == "digitlab"
            and not node.level
        ):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # "from digitlab.models import zoo"
    return found


@functools.cache
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


@functools.cache
def task_code_version(task_module: str) -> str:
    """Hash of the task's module and the digitlab modules it imports: editing the report, the CLI
    or an unrelated task leaves it unchanged, so cached results stay valid."""
    h = hashlib.sha256()
    for rel in module_closure(task_module):
        h.update(rel.encode())
        h.update((PACKAGE_ROOT / rel).read_bytes())
    return h.hexdigest()[:12]


def cache_key(
    task: str,
    section: dict[str, Any],
    seed: int,
    device: str,
    data_fingerprint: str,
    upstream: dict[str, str] | None = None,
) -> str:
    """The key of a task's result: its config section, seed, device kind, data, the code it runs, the
    versions of the libraries that compute results (:func:`library_versions`) and the keys of the
    tasks it reads (so a change upstream recomputes it). The device kind includes the
    precision networks train in there (bf16 on CPUs and GPUs that run it natively), so a cache moved
    between a bf16 machine and an fp32 one is not mistaken for the same results."""
    from digitlab.runtime import resolve_precision

    kind = device.split(":")[0]
    payload = json.dumps(
        {
            "task": task,
            "config": section,
            "seed": seed,
            "device": kind + ("-bf16" if resolve_precision("auto", kind) == "bf16" else ""),
            "data": data_fingerprint,
            "code": task_code_version(f"digitlab.study.tasks.{task}"),
            "libraries": library_versions(),
            "upstream": upstream or {},
        },
        sort_keys=True,
        default=str,
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


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def entry_files(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative POSIX paths, sorted), the manifest and owner file excepted."""
    rels = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_symlink() or not p.is_dir())
    return sorted(r for r in rels if r not in (MANIFEST, OWNER, f".{MANIFEST}.tmp"))


def write_manifest(folder: Path) -> dict[str, Any]:
    """Write ``manifest.json`` (SHA-256 and size of every file) into ``folder``, atomically; return it."""
    files = {
        rel: {"sha256": file_sha256(folder / rel), "bytes": (folder / rel).stat().st_size}
        for rel in entry_files(folder)
    }
    manifest = {"version": 1, "files": files}
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, folder / MANIFEST)
    return manifest


def verify_manifest(folder: Path) -> str | None:
    """None when every file of ``folder`` matches its manifest, else what is wrong (one phrase)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a mapping")
    except FileNotFoundError:
        return "no manifest.json (an entry from an older digitlab or an interrupted write)"
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return f"manifest.json is unreadable ({exc})"
    present = set(entry_files(folder))
    missing = sorted(set(files) - present)
    if missing:
        return f"{missing[0]} is missing" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    extra = sorted(present - set(files))
    if extra:
        return f"{extra[0]} is not in the manifest"
    for rel, want in sorted(files.items()):
        path = folder / rel
        try:
            if path.is_symlink() or path.stat().st_size != want.get("bytes"):
                return f"{rel} changed size"
            if file_sha256(path) != want.get("sha256"):
                return f"{rel} does not match its checksum"
        except (OSError, AttributeError) as exc:
            return f"{rel} cannot be read ({exc})"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return True
    return True


class Cache:
    """A folder of task results keyed by :func:`cache_key`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def entry(self, task: str, key: str) -> Path:
        return self.root / task / key

    def load(self, task: str, key: str) -> TaskResult | None:
        """The stored result, or None when absent, damaged or unreadable (then it is recomputed).

        A damaged entry (a file that does not match the manifest, a missing or extra file, no
        manifest) is logged as a warning; it is replaced whole when the task has been recomputed."""
        folder = self.entry(task, key)
        if not folder.is_dir():
            return None
        problem = verify_manifest(folder)
        if problem is None:
            try:
                return result_from_json((folder / "result.json").read_text())
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
                problem = f"result.json cannot be read ({exc})"
        log.warning("cache entry %s/%s is damaged: %s; recomputing %s", task, key, problem, task)
        return None

    def points_dir(self, task: str, key: str) -> Path:
        """Where the grid points of an unfinished task are kept (see :func:`digitlab.grid.run_grid`)."""
        return self.root / task / f".points-{key}"

    def clean_orphans(self, now: float | None = None) -> int:
        """Remove work folders of killed runs and stale grid points (rules in the module docstring);
        return how many folders were removed. Folders of live runs are left alone."""
        now = time.time() if now is None else now
        host = socket.gethostname()
        removed = 0
        if not self.root.is_dir():
            return 0
        for task_dir in self.root.iterdir():
            if not task_dir.is_dir() or task_dir.is_symlink():
                continue
            for folder in task_dir.iterdir():
                try:
                    if not folder.is_dir() or folder.is_symlink():
                        continue
                    age = now - folder.stat().st_mtime
                    if folder.name.startswith(".tmp-"):
                        try:
                            owner_host, pid = (folder / OWNER).read_text().split()
                            orphan = (not _pid_alive(int(pid))) if owner_host == host else age > ORPHAN_AGE_S
                        except (OSError, ValueError):
                            orphan = age > ORPHAN_AGE_S
                    elif folder.name.startswith(".points-"):
                        orphan = age > POINTS_AGE_S
                    else:
                        continue
                except OSError:
                    continue
                if orphan:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += not folder.exists()
        if removed:
            log.info("cache %s: removed %d folder(s) left by killed runs", self.root, removed)
        return removed

    def new_workdir(self, task: str, key: str) -> Path:
        """A fresh temporary folder beside the final entry for a task to write into."""
        work = self.root / task / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        try:
            work.mkdir(parents=True)
            (work / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
        except OSError as exc:
            from digitlab.exceptions import ConfigError

            raise ConfigError(
                f"cache folder {self.root}: cannot write {work.parent} ({exc.strerror or exc}); "
                "fix its permissions or choose another --cache-dir"
            ) from None
        return work

    def commit(self, task: str, key: str, workdir: Path, result: TaskResult) -> Path:
        """Write result.json into ``workdir`` and atomically rename it into place."""
        tmp = workdir / ".result.json.tmp"
        tmp.write_text(result_to_json(result))
        os.replace(tmp, workdir / "result.json")
        (workdir / OWNER).unlink(missing_ok=True)
        write_manifest(workdir)  # last: an entry without a valid manifest is never trusted
        final = self.entry(task, key)
        if final.exists():  # a concurrent or stale entry: replace it as a whole
            shutil.rmtree(final, ignore_errors=True)
        os.replace(workdir, final)
        return final

    @staticmethod
    def discard(workdir: Path) -> None:
        shutil.rmtree(workdir, ignore_errors=True)
