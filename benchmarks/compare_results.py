"""Compare the result tables of two run folders: did a refactor move any number?

Usage::

    python benchmarks/compare_results.py BEFORE_RUN AFTER_RUN [--rtol 0] [--atol 0] [--ignore-text]

Both arguments are run folders (``runs/<time>-<name>``). For every task present in both, the
``results/<task>/result.json`` files are compared: every table (by name; rows and cells), every headline
metric, and (unless ``--ignore-text``) the findings, notes and captions. Numbers match when
``|a - b| <= atol + rtol * |b|``; wall times (``seconds`` fields and columns named like a time) are
ignored. It prints one line per task (``same``, or the differences found) and exits 1 when a number
differs beyond the tolerance, so it can gate a refactor. The run pair the closing note of issue 20
compared was made with::

    digitlab run --profile quick --precision fp32 -j 1 --no-cache --no-pdf --output /tmp/before   # old code
    digitlab run --profile quick --precision fp32 -j 1 --no-cache --no-pdf --output /tmp/after    # new code
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

TIME_KEY = re.compile(r"(^|_)(seconds|time|secs|wall|fit_s|predict_s|duration)(_|$)|\(s\)|seconds", re.I)
NUMBER = re.compile(r"-?\d[\d,]*\.?\d*(?:e-?\d+)?")
# timings inside prose ("took 4.8 s", "23,065 images per second", "12 CPU seconds", fit time "n^1.15")
TIME_IN_TEXT = re.compile(
    r"-?\d[\d,]*\.?\d*\s*(?:s\b|ms\b|min\b|seconds?\b|CPU seconds|images per second|img/s)|n\^-?\d[\d.]*|\(\d[\d.]*\s*s,"
)


def _is_time(key: str) -> bool:
    return bool(TIME_KEY.search(str(key))) or "per_second" in str(key)


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= atol + rtol * abs(b)


def diff(a: Any, b: Any, path: str, rtol: float, atol: float, out: list[str], text: bool) -> None:
    """Append to ``out`` every difference between two JSON values (recursively)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if _is_time(k):
                continue
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'after' if k not in a else 'before'}")
                continue
            diff(a[k], b[k], f"{path}.{k}", rtol, atol, out, text)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items before, {len(b)} after")
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", rtol, atol, out, text)
    elif isinstance(a, bool) or isinstance(b, bool):
        if a != b:
            out.append(f"{path}: {a!r} -> {b!r}")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if not _close(float(a), float(b), rtol, atol):
            out.append(f"{path}: {a!r} -> {b!r}")
    elif isinstance(a, str) and isinstance(b, str):
        if a == b:
            return
        a, b = TIME_IN_TEXT.sub("<time>", a), TIME_IN_TEXT.sub("<time>", b)
        if a == b:
            return
        # numbers inside text are compared with the tolerance; the words must match when text is compared
        na, nb = NUMBER.findall(a), NUMBER.findall(b)
        if text and NUMBER.sub("#", a) != NUMBER.sub("#", b):
            out.append(f"{path}: text differs: {a[:90]!r} -> {b[:90]!r}")
        elif len(na) == len(nb):
            for x, y in zip(na, nb):
                try:
                    fx, fy = float(x.replace(",", "")), float(y.replace(",", ""))
                except ValueError:
                    continue
                if not _close(fx, fy, rtol, atol):
                    out.append(f"{path}: {a[:90]!r} -> {b[:90]!r}")
                    break
        elif text:
            out.append(f"{path}: numbers in text differ: {a[:90]!r} -> {b[:90]!r}")
    elif a != b:
        out.append(f"{path}: {a!r} -> {b!r}")


def compare_task(before: dict, after: dict, rtol: float, atol: float, text: bool) -> list[str]:
    out: list[str] = []
    tables_a = {t["name"]: t for t in before.get("tables", [])}
    tables_b = {t["name"]: t for t in after.get("tables", [])}
    for name in sorted(set(tables_a) | set(tables_b)):
        if name not in tables_a or name not in tables_b:
            out.append(f"table {name}: only in {'after' if name not in tables_a else 'before'}")
            continue
        ta, tb = tables_a[name], tables_b[name]
        if not _is_time(name):
            diff(ta["rows"], tb["rows"], f"table {name}", rtol, atol, out, text)
        if text:
            diff(ta.get("caption", ""), tb.get("caption", ""), f"table {name}.caption", rtol, atol, out, text)
    diff(before.get("metrics", {}), after.get("metrics", {}), "metrics", rtol, atol, out, text)
    keys = ("headline", "findings", "notes", "summary") if text else ()
    for key in keys:
        diff(before.get(key), after.get(key), key, rtol, atol, out, text)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument(
        "--rtol", type=float, default=0.0, help="relative tolerance for numbers (default 0: exact)"
    )
    ap.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for numbers (default 0)")
    ap.add_argument(
        "--ignore-text", action="store_true", help="compare numbers only, not the words around them"
    )
    ap.add_argument(
        "--tasks", default="", help="comma-separated tasks to compare (default: every task of either run)"
    )
    ap.add_argument("--show", type=int, default=8, help="differences printed per task (default 8)")
    args = ap.parse_args(argv)
    moved = 0
    tasks_a = {p.parent.name: p for p in (args.before / "results").glob("*/result.json")}
    tasks_b = {p.parent.name: p for p in (args.after / "results").glob("*/result.json")}
    wanted = [t for t in args.tasks.split(",") if t]
    for task in wanted or sorted(set(tasks_a) | set(tasks_b)):
        if task not in tasks_a or task not in tasks_b:
            print(f"{task:12s} only in {'after' if task not in tasks_a else 'before'}")
            moved += 1
            continue
        a = json.loads(tasks_a[task].read_text())
        b = json.loads(tasks_b[task].read_text())
        out = compare_task(a, b, args.rtol, args.atol, not args.ignore_text)
        print(f"{task:12s} {'same' if not out else f'{len(out)} differences'}")
        for line in out[: args.show]:
            print(f"    {line}")
        moved += bool(out)
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
