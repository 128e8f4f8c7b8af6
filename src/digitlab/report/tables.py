"""Tables for the report: cell formatting, names in words, and a layout that fits an A4 page.

The PDF has about 180 mm of text width. A table is typeset at a font size that depends on its number
of columns; beyond :data:`MAX_PDF_COLUMNS` columns it is split into column groups that repeat the
first (key) column; beyond :data:`MAX_INLINE_ROWS` rows it moves to the PDF's appendix (the HTML keeps
it in place, sortable); beyond :data:`MAX_PDF_ROWS` rows it is in the HTML report only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from digitlab.names import cell_name, column_name, humanize

MAX_PDF_COLUMNS = 11  # more columns are split into groups (the key column repeats)
MAX_INLINE_ROWS = 25  # longer tables go to the PDF's appendix
MAX_PDF_ROWS = 120  # longer tables are in the HTML report only (and in result.json)
MAX_HTML_ROWS = 400  # the HTML shows at most this many rows (the rest stay in result.json)
LONG_TEXT = 40  # characters: a column holding longer text is a "text" column (left-aligned, wraps)


def fmt_cell(v: Any) -> str:
    """Format a table cell: floats to 4 significant decimals, big ints with separators, model ids in words."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞" if v > 0 else "-∞"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.3g}"
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:,.2f}".rstrip("0").rstrip(".")
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt_cell(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {fmt_cell(x)}" for k, x in v.items())
    if v is None:
        return ""
    return humanize(cell_name(str(v)))


def sort_key(v: Any) -> str:
    """A value the HTML's sortable tables order by (numbers as numbers)."""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
        return repr(float(v))
    return ""


@dataclass
class PreparedTable:
    """A task's table, ready for the template."""

    name: str
    number: int  # global "Table n"
    caption: str
    columns: list[str]  # keys
    headers: list[str]  # the keys in words
    rows: list[list[str]]  # formatted cells, in column order
    sort: list[list[str]]  # numeric sort keys per cell ("" for text)
    numeric: list[bool]  # per column: right-aligned numbers
    text_cols: list[bool]  # per column: long text that wraps
    n_rows: int  # rows in the stored table
    placement: str = "inline"  # "inline" | "appendix" | "html-only" (PDF placement)
    size: str = "normal"  # "normal" | "small" | "tiny": PDF font class
    groups: list[list[int]] = field(
        default_factory=list
    )  # PDF column groups (indices), first column repeated
    task: str = ""

    @property
    def anchor(self) -> str:
        return f"table-{self.number}"


def _columns(rows: list[dict], columns: list[str] | None) -> list[str]:
    if columns:
        return list(columns)
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def prepare_table(tb: Any, number: int, task: str) -> PreparedTable:
    """Format a :class:`~digitlab.study.task.Table` and decide how the PDF lays it out."""
    rows = list(tb.rows)[:MAX_HTML_ROWS]
    cols = _columns(rows, tb.columns)
    cells = [[fmt_cell(r.get(c)) for c in cols] for r in rows]
    sort = [[sort_key(r.get(c)) for c in cols] for r in rows]
    numeric = [
        all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows)
        and any(isinstance(r.get(c), (int, float)) for r in rows)
        for c in cols
    ]
    text_cols = [any(len(row[i]) > LONG_TEXT for row in cells) for i in range(len(cols))]
    n = len(tb.rows)
    placement = "inline" if n <= MAX_INLINE_ROWS else ("appendix" if n <= MAX_PDF_ROWS else "html-only")
    # width estimate in characters: widest of header and cells per column, long text capped
    widths = [
        min(max([len(column_name(c))] + [len(row[i]) for row in cells]), 28) for i, c in enumerate(cols)
    ]
    total = sum(widths) + 2 * len(cols)
    size = "normal" if total <= 95 and len(cols) <= 8 else ("small" if total <= 125 else "tiny")
    groups = [list(range(len(cols)))]
    if len(cols) > MAX_PDF_COLUMNS:
        rest = list(range(1, len(cols)))
        per = MAX_PDF_COLUMNS - 1
        k = math.ceil(len(rest) / per)
        per = math.ceil(len(rest) / k)  # even groups
        groups = [[0] + rest[i : i + per] for i in range(0, len(rest), per)]
    if placement == "appendix":
        size = "tiny"
    return PreparedTable(
        name=str(tb.name),
        number=number,
        caption=humanize(str(tb.caption or "")),
        columns=cols,
        headers=[column_name(c) for c in cols],
        rows=cells,
        sort=sort,
        numeric=numeric,
        text_cols=text_cols,
        n_rows=n,
        placement=placement,
        size=size,
        groups=groups,
        task=task,
    )


__all__ = ["PreparedTable", "prepare_table", "fmt_cell", "MAX_INLINE_ROWS", "MAX_PDF_ROWS", "MAX_PDF_COLUMNS"]
