"""Build the HTML (interactive) and PDF reports of a run folder from its stored results only.

The report never trains or computes anything: it reads ``summary.json``, ``environment.json`` and
``results/<task>/result.json`` (plus the figure files beside them) and renders one template twice:
interactive for HTML (plotly fragments, plotly.js inlined once) and static for the PDF (WeasyPrint).
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import jinja2

from digitlab.data.idx import atomic_write_bytes
from digitlab.errors import DigitlabError
from digitlab.study.cache import result_from_json

TEMPLATES = Path(__file__).parent / "templates"
MAX_ROWS = 60  # longer tables are cut in the report; the full table stays in result.json


def fmt_cell(v: Any) -> str:
    """Format a table cell: floats to 4 significant decimals, big ints with separators."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.3g}"
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:,.2f}".rstrip("0").rstrip(".")
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt_cell(x) for x in v)
    return "" if v is None else str(v)


def fmt_duration(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def load_run(run_dir: Path) -> dict[str, Any]:
    """Read everything the report needs from a run folder."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        env = json.loads((run_dir / "environment.json").read_text())
    except (OSError, ValueError) as exc:
        raise DigitlabError(f"{run_dir}: not a finished digitlab run folder ({exc}); pass a folder written by `digitlab run`") from None
    sections = []
    for t in summary["tasks"]:
        folder = run_dir / "results" / t["task"]
        result = result_from_json((folder / "result.json").read_text())
        figures = [{"caption": f.caption, "src": _data_uri(folder / f.file),
                    "html": (folder / f.html_file).read_text() if f.html_file else None} for f in result.figures]
        tables = []
        for tb in result.tables:
            cols = tb.columns or (list(tb.rows[0].keys()) if tb.rows else [])
            extra = max(0, len(tb.rows) - MAX_ROWS)
            tables.append({"name": tb.name, "caption": tb.caption, "columns": cols, "rows": tb.rows[:MAX_ROWS], "truncated": extra})
        sections.append({"name": t["task"], "result": result, "cached": t["cached"], "figures": figures, "tables": tables})
    return {"summary": summary, "env": env, "sections": sections}


def render_html(data: dict[str, Any], interactive: bool) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["j2", "html"]))
    env.filters["cell"] = fmt_cell
    env.filters["dur"] = fmt_duration
    plotly_js = ""
    if interactive and any(f["html"] for s in data["sections"] for f in s["figures"]):
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    key = [s["result"].findings[0] for s in data["sections"] if s["result"].findings and s["name"] != "overview"]
    return env.get_template("report.html.j2").render(
        **data, interactive=interactive, plotly_js=jinja2.utils.markupsafe.Markup(plotly_js),
        css=jinja2.utils.markupsafe.Markup((TEMPLATES / "report.css").read_text()), key_findings=key)


def build_reports(run_dir: str | Path, pdf: bool = True) -> tuple[Path, Path | None]:
    """Write ``report.html`` (and ``report.pdf``) into ``run_dir``; return their paths."""
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    html_path = run_dir / "report.html"
    atomic_write_bytes(html_path, render_html(data, interactive=True).encode())
    pdf_path = None
    if pdf:
        import logging

        import weasyprint

        for noisy in ("weasyprint", "fontTools"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        static = render_html(data, interactive=False)
        pdf_path = run_dir / "report.pdf"
        atomic_write_bytes(pdf_path, weasyprint.HTML(string=static, base_url=str(run_dir)).write_pdf())
    return html_path, pdf_path
