"""The report: the brief's order, computed answers, names in words, a PDF that is a document, damage tolerance.

One real run (overview, features and three classic models on scikit-learn's 8x8 digits) is made once
per module; a synthetic task with a wide and a long table is added to its folder to exercise the
page layout. The PDF is laid out once and measured (tables inside the text box, no near-empty pages).
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from digitlab.cli import main
from digitlab.names import humanize, model_name
from digitlab.report import build as B
from digitlab.report.load import load_run
from digitlab.report.outline import OUTLINE, outline_tasks
from digitlab.study.cache import result_to_json
from digitlab.study.task import Figure, Table, TaskResult

pytestmark = pytest.mark.usefixtures("one_blas_thread")

MODELS = ["logreg", "tree", "random_forest"]


def _text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _wide_long_task(folder) -> None:
    """A task result with a 16-column table and a 40-row table (and a figure) stored like a real one."""
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(np.arange(10), np.arange(10) ** 2)
    fig.savefig(folder / "curve.png", dpi=80)
    plt.close(fig)
    wide = [{"model": m, **{f"metric_number_{k}": 0.9 + k / 1000 for k in range(15)}} for m in MODELS]
    long = [
        {"pair": f"model {i} vs model {i + 1}", "p_value": 1.0 / (i + 2), "significant": i % 2 == 0}
        for i in range(40)
    ]
    res = TaskResult(
        title="Synthetic layout check",
        summary="A table too wide and one too long for a page.",
        headline="The synthetic task took 3 s.",
        findings=["The wide table has 16 columns."],
        tables=[Table("wide", wide, "Sixteen columns."), Table("long", long, "Forty rows.")],
        figures=[Figure("curve", "curve.png", "A parabola.")],
        metrics={"n": 3},
    )
    (folder / "result.json").write_text(result_to_json(res))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from digitlab.study.config import resolve
    from digitlab.study.runner import run_study

    tmp = tmp_path_factory.mktemp("report")
    cfg = resolve(
        {
            "study": {
                "tasks": ["overview", "features", "classify"],
                "dataset": "digits",
                "profile": "quick",
                "output_dir": str(tmp / "runs"),
                "cache_dir": str(tmp / "cache"),
            },
            "classify": {"models": MODELS, "n_boot": 200},
        }
    )
    out = run_study(cfg, quiet=True)
    _wide_long_task(out.run_dir / "results" / "synthetic")
    return out.run_dir


@pytest.fixture(scope="module")
def pdf_layout(run_dir):
    """Render the static report once: (layout measures, PDF text per page)."""
    import io

    import pypdf

    from digitlab.report.check import measure

    run = load_run(run_dir, interactive=False)
    doc = B.document(
        run, B.report_meta(run, {"author": "Ada Lovelace", "course": "Pattern Recognition 2026"})
    )
    rendered = B.layout_pdf(doc, run_dir)
    pages = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(rendered.write_pdf())).pages]
    return measure(rendered), pages


def test_sections_follow_the_brief_with_computed_answers(run_dir):
    run = load_run(run_dir)
    doc = B.document(run, B.report_meta(run))
    html = B.render_html(doc, interactive=True)
    # the brief's sections, in its order
    positions = [html.index(f'id="{s.key}"') for s in OUTLINE]
    assert positions == sorted(positions)
    assert len(set(outline_tasks())) == len(outline_tasks())
    text = _text(html)
    for label in (
        "Task 1 · Data preprocessing",
        "Task 4 · How much training data is needed",
        "Bonus 2 ·",
        "Conclusions",
    ):
        assert label in text
    # tasks that did not run say so, with the command that adds them
    assert "digitlab run --tasks datasize" in text
    # answers are computed from the stored metrics
    classify = run.tasks["classify"].result
    acc = classify.metrics["accuracy"]
    best = max(acc, key=acc.get)
    answer_32 = next(pv.answer for sv in doc["sections"] for pv in sv.parts if pv.part.number == "3.2")
    assert f"the {model_name(best)} is the most accurate ({100 * acc[best]:.2f} %)" in answer_32
    n_train = run.tasks["overview"].result.metrics["n_train"]
    assert f"{n_train:,} training" in text
    # key findings are scientific: the synthetic task's timing headline is not among them
    assert doc["key_findings"] and not any("took" in k["text"] for k in doc["key_findings"])
    # model names in words in prose and table cells; identifiers only where they are code
    assert "random forest" in text and "logistic regression" in text
    assert not re.search(r"\b(random_forest|logreg)\b", text)
    # the metric definitions of 3.1 come from digitlab.metrics, and are not repeated in 3.2's notes
    from digitlab.metrics import METRIC_DEFINITIONS

    assert text.count("Matthews correlation") == 1 and len(METRIC_DEFINITIONS) > 10
    # interactive features: sortable tables, zoomable figures, sidebar contents
    assert 'class="data sortable"' in html and "img.zoomable" in html and 'class="sidebar"' in html
    # the synthetic task, not in the brief's outline, lands in "Other results"
    assert 'id="other"' in html and "Synthetic layout check" in text


def test_pdf_is_a_document(run_dir, pdf_layout):
    lay, pages = pdf_layout
    first = pages[0]
    assert "Ada Lovelace" in first and "Pattern Recognition 2026" in first and "digits" in first
    # contents with page numbers that point at the right pages
    toc = pages[1]
    assert "Contents" in toc
    m = re.search(r"3\.2 Classic models\s*\.*\s*(\d+)", toc)
    assert m, toc[:800]
    assert "3.2 Classic models" in pages[int(m.group(1)) - 1]
    # page numbers in the footer, figures and tables numbered with captions
    n = len(pages)
    assert f"2 / {n}" in pages[1] and f"{n} / {n}" in pages[-1]
    body = "\n".join(pages)
    assert "Figure 1." in body and re.search(r"Table \d+\. ", body)
    # the PDF is concise: what it leaves out is named, and stays in the HTML report
    assert "In report.html only: " in body
    # every table fits the text box (the 16-column table is split into column groups), no near-empty pages
    assert lay.wide_tables() == [], [(p.number, p.table_overflow_pt) for p in lay.wide_tables()]
    assert "continued: more columns" in body
    assert lay.near_empty(0.2) == [], [(p.number, round(p.fill, 2)) for p in lay.near_empty(0.2)]
    # the 40-row table is printed in the appendix, referenced with its page
    assert re.search(r"\(40 rows\).*printed in Appendix A, page \d+", body, flags=re.S)
    assert "Appendix A · Long tables" in body


def test_damaged_run_still_reports_and_keeps_previous_files(run_dir, tmp_path, monkeypatch, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    assert main(["report", str(damaged), "--no-pdf"]) == 0
    before = (damaged / "report.html").read_bytes()
    (damaged / "results" / "classify" / "result.json").unlink()
    (damaged / "results" / "features" / "result.json").write_text("{not json")
    (damaged / "results" / "synthetic" / "result.json").write_text('{"title": 3}')
    figure = json.loads((damaged / "results" / "overview" / "result.json").read_text())["figures"][0]["file"]
    (damaged / "results" / "overview" / figure).unlink()
    (damaged / "summary.json").write_text("{}")
    # a failure while rendering leaves the previous report untouched
    monkeypatch.setattr(B, "render_html", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        B.build_reports(damaged, pdf=False)
    assert (damaged / "report.html").read_bytes() == before
    monkeypatch.undo()
    assert main(["report", str(damaged), "--no-pdf"]) == 0
    text = _text((damaged / "report.html").read_text())
    assert "results/classify/result.json is missing" in text
    assert "results/features/result.json is damaged" in text
    assert "results/synthetic/result.json is damaged" in text
    assert f"results/overview/{figure} is missing" in text
    assert "summary.json is incomplete" in text
    # a folder without results, or no folder at all: one line, exit code 2
    empty = tmp_path / "empty"
    empty.mkdir()
    capsys.readouterr()
    assert main(["report", str(empty)]) == 2
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("digitlab: error:") for line in err)


def test_title_page_options_are_kept_for_rebuilds(run_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    assert (
        main(["report", str(copy), "--no-pdf", "--title", "Digits, compared", "--author", "A. Student"]) == 0
    )
    assert json.loads((copy / "summary.json").read_text())["report"]["author"] == "A. Student"
    assert main(["report", str(copy), "--no-pdf"]) == 0
    text = _text((copy / "report.html").read_text())
    assert "Digits, compared" in text and "A. Student" in text


def test_names_in_words():
    assert model_name("random_forest") == "random forest" and model_name("rbf_svm") == "RBF SVM"
    assert model_name("something_new") == "something new"
    assert (
        humanize("cnn beats rbf_svm; see proba__cnn and results/cnn_sweeps")
        == "CNN beats RBF SVM; see proba__cnn and results/cnn_sweeps"
    )


def test_chinese_report_embeds_a_cjk_font(run_dir, tmp_path):
    import pypdf

    from digitlab.exceptions import DigitlabError
    from digitlab.report.i18n import cjk_font

    small = tmp_path / "zh"
    shutil.copytree(run_dir, small, ignore=shutil.ignore_patterns("features", "synthetic", "classify"))
    summary = json.loads((small / "summary.json").read_text())
    summary["tasks"] = [t for t in summary["tasks"] if t["task"] == "overview"]
    (small / "summary.json").write_text(json.dumps(summary))
    try:
        font = cjk_font()
    except DigitlabError as exc:  # no CJK font on this machine: the error says how to install one
        assert "apt-get install fonts-wqy-microhei" in str(exc)
        pytest.skip(f"no CJK font: {exc}")
    html, pdf = B.build_reports(small, lang="zh", author="张三")
    text = _text(html.read_text())
    assert (
        "任务一 · 数据预处理" in text and "主要发现" in text and "训练图像" in text
    )  # headings and an answer template
    reader = pypdf.PdfReader(pdf)
    body = "".join(p.extract_text() for p in reader.pages)
    assert "目录" in body and "张三" in body and re.search(r"[\u4e00-\u9fff]{4}", body)
    fonts = {
        f["/BaseFont"]
        for p in reader.pages
        for f in (p["/Resources"].get("/Font") or {}).values()
        for f in [f.get_object()]
    }
    assert any(font.replace(" ", "-").split("-")[0] in str(f) for f in fonts), (font, fonts)
    assert json.loads((small / "summary.json").read_text())["report"]["lang"] == "zh"
    with pytest.raises(SystemExit):  # argparse refuses other languages
        main(["report", str(small), "--no-pdf", "--lang", "fr"])


def test_title_and_classify_answer_follow_the_dataset_kind():
    """A fundus run's report is not titled or worded for handwritten digits: the default title and the
    classify answer's nouns come from the dataset's meta (kind, item noun) stored in summary.json."""
    from digitlab.data.fundus import FUNDUS_META
    from digitlab.data.registry import MNIST_META
    from digitlab.report import answers as A
    from digitlab.report.i18n import default_title

    fundus = {"name": "ddr", "meta": dict(FUNDUS_META)}
    res = TaskResult(
        title="Classification",
        summary="",
        headline="",
        findings=[],
        tables=[],
        figures=[],
        metrics={"accuracy": {"logreg": 0.55, "linear_svm": 0.5, "random_forest": 0.7, "hgb": 0.72}},
    )
    for lang in ("en", "zh"):
        title = default_title(fundus, lang)
        text = A.answer("classify", res, {"classify": res}, lang, fundus)
        assert "digit" not in title.lower() and "数字" not in title and title, title
        assert "digit" not in text.lower() and "数字" not in text, text
    assert "fundus photographs" in A.answer("classify", res, {"classify": res}, "en", fundus)
    assert default_title(fundus) == "Diabetic-retinopathy grading of fundus photographs: a complete study"
    # digits (and runs stored before the dataset had a meta) keep the digits title and wording
    mnist = {"name": "mnist", "meta": dict(MNIST_META)}
    assert default_title(mnist) == default_title(None) == "Handwritten-digit classification: a complete study"
    assert A.answer("classify", res, {"classify": res}, "en", mnist).endswith("too simple for digits.")
    assert A.answer("classify", res, {"classify": res}, "en").endswith("too simple for digits.")
    # the document's title uses it when none is given
    import types

    run = types.SimpleNamespace(
        summary={"dataset": fundus}, tasks={}, run_dir=__import__("pathlib").Path("run"), env={}, problems=[]
    )
    doc = B.document(run, {"title": "", "author": "", "course": "", "lang": "en"})
    assert doc["meta"]["title"] == default_title(fundus)


def test_pdf_prints_the_first_findings_and_the_html_all(run_dir):
    """A section with many findings: the PDF prints the first PDF_FINDINGS and says how many more the HTML holds."""
    from digitlab.report.outline import PDF_FINDINGS

    run = load_run(run_dir)
    findings = [f"Finding number {i:02d} of the synthetic task." for i in range(30)]
    run.tasks["features"].result.findings = findings
    doc = B.document(run, B.report_meta(run))
    from html import unescape

    static, interactive = (unescape(_text(B.render_html(doc, interactive=i))) for i in (False, True))
    assert all(f in interactive for f in findings)
    assert [f in static for f in findings] == [i < PDF_FINDINGS for i in range(30)]
    assert f"{30 - PDF_FINDINGS} more of this section's 30 findings are in report.html." in static
    assert "more of this section's" not in interactive
    # a section with few findings prints them all, without the line
    few = run.tasks["overview"].result.findings
    assert 0 < len(few) <= PDF_FINDINGS and all(humanize(f) in static for f in few)
    assert static.count("more of this section's") == sum(
        len(t.result.findings) > PDF_FINDINGS for t in run.tasks.values() if t.result is not None
    )


def test_a_row_of_figures_that_does_not_fit_leaves_the_rows_before_it(tmp_path):
    """Figures sit in line boxes: a second row that does not fit the page must not drag the first row (and
    leave a near-empty page behind), so the first figure stays on the page where the text ends."""
    import weasyprint

    css = (B.TEMPLATES / "report.css").read_text(encoding="utf-8")
    box = '<figure style="width: 150mm"><div style="height: 95mm; background: #888"></div><figcaption>{}</figcaption></figure>'
    html = (
        f'<html><head><style>{css}</style></head><body class="static"><main>'
        '<div style="height: 120mm">text that fills about half of the page</div><h4>Results</h4>'
        f'<div class="figures">{box.format("first")}{box.format("second")}</div></main></body></html>'
    )
    pages = weasyprint.HTML(string=html).render().pages
    assert len(pages) == 2

    def texts(box):
        out = [getattr(box, "text", "") or ""]
        for child in getattr(box, "children", []) or []:
            out += texts(child)
        return out

    first = " ".join(texts(pages[0]._page_box))
    assert "RESULTS" in first.upper() and "first" in first and "second" not in first
