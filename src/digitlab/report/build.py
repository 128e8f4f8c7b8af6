"""Build the HTML (interactive) and PDF reports of a run folder from its stored results only.

The report never trains or computes anything: it reads ``summary.json``, ``environment.json`` and
``results/<task>/result.json`` (plus the figure files beside them), arranges them in the course brief's
order (:mod:`digitlab.report.outline`), adds short answers, key findings and conclusions computed from
the stored numbers (:mod:`digitlab.report.answers`), and renders one template twice: interactive for
HTML (plotly fragments, sortable tables, sidebar contents) and static for the PDF (WeasyPrint: title
page, contents with page numbers, numbered figures and tables, appendix for long tables).

A damaged run still gets a report: a missing or corrupt result or figure shows as a visible note in
its section. The outputs are independent: ``report.html`` is rendered and written (atomically) first, then
the PDF is rendered and written (atomically too), so a PDF failure (a missing font, a bad image, a
WeasyPrint bug) keeps the HTML report and every result, and is reported as one :class:`PdfError` line
naming the cause and the fix. WeasyPrint is used through its public API (``HTML(...).render()``, the
pages' ``anchors``, ``write_pdf``); the only internal it touches is the page boxes that
:func:`digitlab.report.check.measure` reads to avoid near-empty pages, and a WeasyPrint without them
only loses that refinement.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from digitlab.exceptions import DigitlabError
from digitlab.io import atomic_write_bytes
from digitlab.names import humanize
from digitlab.report import answers as A
from digitlab.report.i18n import cjk_font, default_title, outline_text, question, strings
from digitlab.report.load import LoadedTask, RunData, load_run
from digitlab.report.outline import OUTLINE, PDF_FINDINGS, Part, Section, in_pdf, outline_tasks
from digitlab.report.tables import PreparedTable, fmt_cell, prepare_table

TEMPLATES = Path(__file__).parent / "templates"
META_KEYS = ("title", "author", "course", "lang")


class PdfError(DigitlabError):
    """The PDF report could not be rendered or written; ``html`` is the HTML report, which was written."""

    def __init__(self, message: str, html: Path):
        super().__init__(message)
        self.html = html


def fmt_duration(s: Any) -> str:
    if not isinstance(s, (int, float)):
        return "–"
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


# ---------------------------------------------------------------------------------------------
# The document model the template renders
# ---------------------------------------------------------------------------------------------


TEXT_WIDTH_MM = 180.0  # A4 minus the page margins of report.css and the figures" own side margins
FIGURE_SCALE = 0.72  # figures print at this share of their saved size (matplotlib's 10 pt labels -> ~8 pt)
FIGURE_MAX_HEIGHT_MM = 100.0


@dataclass
class FigureView:
    number: int
    caption: str
    src: str
    html: str | None
    error: str
    task: str
    width_mm: float = 0.0
    height_mm: float = 0.0
    in_pdf: bool = True

    @property
    def print_width_mm(self) -> float:
        """Width in the PDF: the saved size scaled, within the text width and the height cap.
        Figures narrower than half the text width sit side by side."""
        if self.width_mm <= 0 or self.height_mm <= 0:
            return TEXT_WIDTH_MM
        w = min(self.width_mm * FIGURE_SCALE, TEXT_WIDTH_MM)
        h = w * self.height_mm / self.width_mm
        if h > FIGURE_MAX_HEIGHT_MM:
            w *= FIGURE_MAX_HEIGHT_MM / h
        return round(max(w, 60.0), 1)

    @property
    def anchor(self) -> str:
        return f"figure-{self.number}"


@dataclass
class TaskBlock:
    """One task's results inside a part of the brief."""

    name: str
    title: str
    status: str  # "ok" | "error" | "absent"
    message: str = ""  # the error or absence note
    summary: str = ""
    notes: list[str] = field(default_factory=list)
    figures: list[FigureView] = field(default_factory=list)
    tables: list[PreparedTable] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    cached: bool = False
    seconds: float | None = None

    @property
    def pdf_findings(self) -> list[str]:
        """The findings the PDF prints (the first :data:`~digitlab.report.outline.PDF_FINDINGS`); the HTML shows all."""
        return self.findings[:PDF_FINDINGS]


@dataclass
class PartView:
    part: Part
    anchor: str
    blocks: list[TaskBlock]
    answer: str = ""
    title: str = ""  # in the report's language
    question: str = ""
    metrics_table: PreparedTable | None = None  # part 3.1 only
    metric_rows: list[dict] = field(default_factory=list)


@dataclass
class SectionView:
    section: Section
    parts: list[PartView]
    present: bool  # at least one of its tasks is in the run
    label: str = ""  # in the report's language
    title: str = ""


@dataclass
class Numbering:
    figure: int = 0
    table: int = 0

    def next_figure(self) -> int:
        self.figure += 1
        return self.figure

    def next_table(self) -> int:
        self.table += 1
        return self.table


def _metric_note_names() -> tuple[str, ...]:
    from digitlab.metrics import METRIC_DEFINITIONS

    return tuple(f"<b>{d['name']}</b>" for d in METRIC_DEFINITIONS)


def _registered_tasks() -> tuple[str, ...]:
    from digitlab.study.config import TASK_ORDER

    return tuple(TASK_ORDER)


@functools.lru_cache(maxsize=1)
def _trusted_notes() -> frozenset[str]:
    """The notes digitlab itself writes with markup (the metric definitions): the only ones not escaped."""
    from digitlab.metrics import metric_notes

    return frozenset(metric_notes())


def _note(text: Any) -> Any:
    """A task's note for the template: escaped (it may quote class, file or folder names), except digitlab's own."""
    return Markup(text) if isinstance(text, str) and text in _trusted_notes() else humanize(text)


def task_block(
    name: str,
    task: LoadedTask | None,
    num: Numbering,
    drop_notes: tuple[str, ...] = (),
    T: dict[str, str] | None = None,
) -> TaskBlock:
    """The view of one task: absent, damaged, or its numbered figures and tables."""
    T = T or strings("en")
    if task is None:
        how = f"digitlab run --tasks {name}"
        key = "task_absent" if name in _registered_tasks() else "task_unknown"
        return TaskBlock(name, name, "absent", Markup(T[key].format(name=escape(name), how=escape(how))))
    if task.result is None:
        return TaskBlock(
            name,
            name,
            "error",
            T["section_missing"].format(error=task.error),
            cached=task.cached,
            seconds=task.seconds,
        )
    r = task.result
    if is_skipped(r):
        return TaskBlock(
            name,
            humanize(r.title),
            "skipped",
            str(r.metrics.get("reason") or r.summary or r.headline),
            cached=task.cached,
            seconds=task.seconds,
        )
    block = TaskBlock(
        name,
        humanize(r.title),
        "ok",
        summary=humanize(r.summary),
        cached=task.cached,
        seconds=task.seconds,
        findings=[humanize(f) for f in r.findings],
        notes=[_note(n) for n in r.notes if not n.startswith(drop_notes)],
    )
    fig_pdf = in_pdf(name, "figures", [f.name for f in task.figures])
    for f, pdf in zip(task.figures, fig_pdf):
        block.figures.append(
            FigureView(
                num.next_figure(),
                humanize(f.caption),
                f.src,
                f.html,
                f.error,
                name,
                f.width_mm,
                f.height_mm,
                pdf,
            )
        )
    tab_pdf = in_pdf(name, "tables", [str(t.name) for t in r.tables])
    for tb, pdf in zip(r.tables, tab_pdf):
        t = prepare_table(tb, num.next_table(), name)
        if not pdf:
            t.placement = "html-only"
        block.tables.append(t)
    return block


def is_skipped(result: Any) -> bool:
    """A task that did not apply to this run's data (``metrics["skipped"]``, e.g. fundus grading on MNIST)."""
    return result is not None and isinstance(result.metrics, dict) and result.metrics.get("skipped") is True


def metric_definitions_table(num: Numbering, T: dict[str, str]) -> tuple[PreparedTable, list[dict]]:
    """Part 3.1's table of metric definitions (from digitlab.metrics, the code that computes them)."""
    from digitlab.metrics import METRIC_DEFINITIONS

    rows = [
        {
            "metric": d["name"],
            "definition": d["formula"],
            "meaning": d["meaning"],
            "misleads": d["misleads"],
            "computed": d["computed"],
        }
        for d in METRIC_DEFINITIONS
    ]
    table = PreparedTable(
        name="metric_definitions",
        number=num.next_table(),
        caption=T["metrics_caption"],
        columns=["metric", "definition", "meaning", "misleads"],
        headers=T["metric_headers"].split("|"),
        rows=[],
        sort=[],
        numeric=[False] * 4,
        text_cols=[True] * 4,
        n_rows=len(rows),
        size="small",
        groups=[[0, 1, 2, 3]],
        task="classify",
    )
    return table, rows


def build_sections(run: RunData, num: Numbering, lang: str = "en") -> list[SectionView]:
    T = strings(lang)
    results = {n: t.result for n, t in run.tasks.items() if t.result is not None and not is_skipped(t.result)}
    dataset = run.summary.get("dataset") if isinstance(run.summary.get("dataset"), dict) else None
    drop = _metric_note_names()
    views = []
    for sec in OUTLINE:
        parts = []
        for part in sec.parts:
            pv = PartView(
                part,
                "part-" + part.number.replace(".", "-").lower(),
                [],
                title=outline_text(part.title, lang),
                question=question(part.number, part.question, lang),
            )
            if part.special == "metrics":
                pv.metrics_table, pv.metric_rows = metric_definitions_table(num, T)
                pv.answer = A.metrics_answer(results, lang)
            for name in part.tasks:
                pv.blocks.append(
                    task_block(name, run.tasks.get(name), num, drop if name == "classify" else (), T)
                )
            if part.tasks:
                pv.answer = " ".join(
                    x for x in (A.answer(n, results.get(n), results, lang, dataset) for n in part.tasks) if x
                )
            parts.append(pv)
        present = (
            any(b.status in ("ok", "error") for pv in parts for b in pv.blocks)
            or sec.key == "task3"
            and any(n in run.tasks for n in sec.tasks)
        )
        views.append(
            SectionView(sec, parts, present, outline_text(sec.label, lang), outline_text(sec.title, lang))
        )
    return views


def other_blocks(run: RunData, num: Numbering, lang: str = "en") -> list[TaskBlock]:
    placed = set(outline_tasks())
    return [task_block(n, t, num, (), strings(lang)) for n, t in run.tasks.items() if n not in placed]


def key_findings(sections: list[SectionView]) -> list[dict[str, str]]:
    """One scientific finding per answered part of the brief: the task's headline, else the computed answer."""
    out = []
    for sv in sections:
        for pv in sv.parts:
            if pv.part.special == "metrics":
                continue
            line = pv.answer
            if line:
                out.append({"label": f"{sv.label} · {pv.part.number}", "anchor": pv.anchor, "text": line})
    return out


def conclusions(sections: list[SectionView], lang: str = "en") -> list[dict[str, str]]:
    """A paragraph per section of the brief, assembled from its parts' answers (every number from the run)."""
    out = []
    for sv in sections:
        answered = [pv.answer for pv in sv.parts if pv.answer]
        if answered:
            out.append({"label": sv.label, "title": sv.title, "text": " ".join(answered)})
        elif not sv.section.optional:
            out.append({"label": sv.label, "title": sv.title, "text": strings(lang)["not_answered"]})
    return out


# ---------------------------------------------------------------------------------------------
# Title, author, course: stored with the run so `digitlab report` keeps them
# ---------------------------------------------------------------------------------------------


def report_meta(run: RunData, overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    """Title, author, course and language: the given overrides, else those stored in summary.json, else defaults."""
    stored = run.summary.get("report") if isinstance(run.summary.get("report"), dict) else {}
    meta = {k: str(stored.get(k) or "") for k in META_KEYS}
    for k, v in (overrides or {}).items():
        if k in META_KEYS and v is not None:
            meta[k] = str(v).strip()
    meta["lang"] = meta.get("lang") or "en"
    strings(meta["lang"])  # an unknown language is a one-line error
    return meta


def store_meta(run_dir: Path, meta: dict[str, str]) -> None:
    """Record the report's title/author/course in summary.json (atomically; skipped if it is unreadable)."""
    path = run_dir / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(summary, dict) or summary.get("report") == meta:
        return
    summary["report"] = meta
    atomic_write_bytes(path, json.dumps(summary, indent=1).encode())


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["j2", "html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = fmt_cell
    env.filters["dur"] = fmt_duration
    return env


def document(run: RunData, meta: dict[str, str]) -> dict[str, Any]:
    """Everything the template needs, numbered in reading order (in ``meta["lang"]``, default English)."""
    lang = meta.get("lang") or "en"
    T = strings(lang)
    num = Numbering()
    sections = build_sections(run, num, lang)
    others = other_blocks(run, num, lang)
    s = run.summary
    dataset = s.get("dataset") if isinstance(s.get("dataset"), dict) else {}
    tables = [t for sv in sections for pv in sv.parts for b in pv.blocks for t in b.tables] + [
        t for b in others for t in b.tables
    ]
    timings = [
        {"task": n, "seconds": t.seconds, "cached": t.cached, "status": "ok" if t.result else "missing"}
        for n, t in run.tasks.items()
    ]
    return {
        "meta": {**meta, "title": meta["title"] or default_title(dataset, lang)},
        "lang": lang,
        "T": T,
        "run": {
            "name": s.get("name") or run.run_dir.name,
            "dataset": dataset.get("name") or "unknown dataset",
            "profile": s.get("profile") or "unknown",
            "finished": str(s.get("finished") or "unknown").replace("T", " "),
            "seconds": s.get("seconds"),
            "device": run.env.get("device", "unknown"),
            "seed": run.env.get("seed", "–"),
            "code": run.env.get("code_version", "–"),
            "version": (run.env.get("packages") or {}).get("digitlab", "–"),
            "folder": run.run_dir.name,
        },
        "today": datetime.now().strftime("%Y-%m-%d"),
        "run_dir": run.run_dir,
        "dataset": dataset,
        "problems": run.problems,
        "sections": sections,
        "others": others,
        "key_findings": key_findings(sections),
        "conclusions": conclusions(sections, lang),
        "appendix_tables": [t for t in tables if t.placement == "appendix"],
        "html_only_tables": [t for t in tables if t.placement == "html-only"],
        "timings": timings,
        "env": run.env,
        "env_keys": [
            "python",
            "platform",
            "machine",
            "cpu_count",
            "torch_threads",
            "device",
            "seed",
            "n_jobs",
            "code_version",
        ],
        "n_figures": num.figure,
        "n_tables": num.table,
    }


def _explorer(doc: dict[str, Any], run_dir: Path) -> tuple[dict | None, str, str]:
    from digitlab.report.explorer import explorer_data, explorer_json

    classes = (doc.get("dataset") or {}).get("classes")
    data, note = explorer_data(run_dir, [str(c) for c in classes] if isinstance(classes, list) else None)
    return data, note, (explorer_json(data) if data else "")


def render_html(doc: dict[str, Any], interactive: bool, flow: set[str] | frozenset[str] = frozenset()) -> str:
    """The report as HTML: ``interactive`` for the browser, static for WeasyPrint (``flow``: sections that
    do not start a new page)."""
    env = _environment()
    plotly_js = ""
    if interactive and any(
        f.html for sv in doc["sections"] for pv in sv.parts for b in pv.blocks for f in b.figures
    ):
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    if doc.get("lang") == "zh":
        font = cjk_font() if not interactive else ""
        family = f'"{font}", ' if font else ""
        css += (
            f'\nbody.lang-zh {{ font-family: {family}"Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", '
            '"PingFang SC", "DejaVu Sans", sans-serif; }\n'
        )
    script = (TEMPLATES / "report.js").read_text(encoding="utf-8") if interactive else ""
    explorer, note, data = _explorer(doc, doc["run_dir"]) if interactive else (None, "", "")
    return env.get_template("report.html.j2").render(
        **doc,
        interactive=interactive,
        plotly_js=Markup(plotly_js),
        explorer=explorer,
        explorer_note=note,
        explorer_json=Markup(data),
        css=Markup(css),
        script=Markup(script),
        flow=flow,
    )


NEAR_EMPTY = 0.25  # a page filled less than this before a forced page break is avoided


def render_pdf(doc: dict[str, Any], base_url: Path) -> bytes:
    """The PDF of ``doc`` (see :func:`layout_pdf`)."""
    return layout_pdf(doc, base_url).write_pdf()


def layout_pdf(doc: dict[str, Any], base_url: Path, max_passes: int = 3):
    """The laid-out WeasyPrint document of ``doc``. Sections start on a new page, except where that would leave the page before
    nearly empty: the layout is measured and such a section flows on instead (a second pass)."""
    import weasyprint

    from digitlab.report.check import measure

    for noisy in ("weasyprint", "fontTools", "fontTools.subset", "fontTools.ttLib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    flow: set[str] = set()
    keys = [sv.section.key for sv in doc["sections"]] + ["other", "conclusions", "appendix", "environment"]
    for _ in range(max_passes):
        rendered = weasyprint.HTML(
            string=render_html(doc, interactive=False, flow=flow), base_url=str(base_url)
        ).render()
        try:
            fills = measure(rendered).pages
        except (
            AttributeError,
            ImportError,
            TypeError,
        ):  # a WeasyPrint whose internals moved: keep the page breaks as they are
            break
        more = set()
        for i in range(1, len(rendered.pages) - 1):
            starts = [k for k in keys if k in rendered.pages[i + 1].anchors and k not in flow]
            if fills[i].fill < NEAR_EMPTY and starts:
                more.add(starts[0])
        if not more:
            break
        flow |= more
    return rendered


def build_reports(
    run_dir: str | Path,
    pdf: bool = True,
    *,
    title: str | None = None,
    author: str | None = None,
    course: str | None = None,
    lang: str | None = None,
) -> tuple[Path, Path | None]:
    """Write ``report.html`` (and ``report.pdf``) into ``run_dir``; return their paths.

    ``title``, ``author`` and ``course`` go on the title page; given ones are stored in ``summary.json``
    so that a later ``digitlab report`` keeps them.
    """
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    meta = report_meta(run, {"title": title, "author": author, "course": course, "lang": lang})
    doc = document(run, meta)
    html = render_html(doc, interactive=True).encode()
    html_path, pdf_path = run_dir / "report.html", None
    _write(run_dir, html_path, html)  # first: a PDF failure below keeps the HTML report
    if any(v is not None for v in (title, author, course, lang)):
        _write(run_dir, None, meta)
    if pdf:
        try:
            pdf_bytes = render_pdf(doc, run_dir)
        except (
            Exception
        ) as exc:  # WeasyPrint raises many kinds (fonts, images, layout): one line, the HTML stays
            (run_dir / "report.pdf").unlink(
                missing_ok=True
            )  # an older PDF would not match the new report.html
            cause = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise PdfError(
                f"{run_dir}: report.pdf not written ({type(exc).__name__}: {cause}); report.html and every "
                "result are kept; check WeasyPrint's system libraries and fonts (pango, a CJK font for "
                "--lang zh), or skip the PDF with --no-pdf",
                html_path,
            ) from None
        pdf_path = run_dir / "report.pdf"
        try:
            _write(run_dir, pdf_path, pdf_bytes)
        except DigitlabError as exc:
            raise PdfError(str(exc), html_path) from None
    return html_path, pdf_path


def _write(run_dir: Path, path: Path | None, data: bytes | dict[str, str]) -> None:
    """Write one output atomically (``path`` None: store the title-page ``data`` in summary.json)."""
    try:
        if path is None:
            store_meta(run_dir, data)
        else:
            atomic_write_bytes(path, data)
    except OSError as exc:
        raise DigitlabError(
            f"{run_dir}: cannot write the report ({exc.strerror or exc}); check the folder's permissions "
            "and free space"
        ) from None


__all__ = ["build_reports", "PdfError", "document", "render_html", "render_pdf", "load_run", "fmt_cell"]
