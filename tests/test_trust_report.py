"""Issue 23: report outputs are independent (a PDF failure keeps report.html and every result)."""

import json

import pytest

from digitlab import cli
from digitlab.report import build as B
from digitlab.study import runner
from digitlab.study.config import resolve


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trust-report")
    cfg = resolve(
        {
            "study": {
                "tasks": ["overview"],
                "dataset": "digits",
                "output_dir": str(tmp / "runs"),
                "cache_dir": str(tmp / "cache"),
                "pdf": False,
                "n_jobs": 1,
            }
        }
    )
    return runner.run_study(cfg, quiet=True).run_dir


def _results(run_dir):
    return {
        p.relative_to(run_dir).as_posix(): p.read_bytes()
        for p in (run_dir / "results").rglob("*")
        if p.is_file()
    }


def test_a_pdf_failure_keeps_the_html_and_every_result(run_dir, monkeypatch, capsys):
    before = _results(run_dir)
    (run_dir / "report.pdf").write_bytes(b"%PDF stale")

    def broken(doc, base_url):
        raise RuntimeError("Fontconfig error: no fonts\nsecond line")

    monkeypatch.setattr(B, "render_pdf", broken)
    with pytest.raises(B.PdfError) as err:
        B.build_reports(run_dir, pdf=True)
    assert "\n" not in str(err.value) and "RuntimeError" in str(err.value) and "--no-pdf" in str(err.value)
    assert (run_dir / "report.html").stat().st_size > 1000 and err.value.html == run_dir / "report.html"
    assert not (run_dir / "report.pdf").exists()  # no stale PDF that does not match the new HTML
    assert _results(run_dir) == before
    (run_dir / "report.html").unlink()
    assert cli.main(["report", str(run_dir), "--title", "T"]) == 2
    out, errtext = capsys.readouterr()
    assert "HTML report:" in out and (run_dir / "report.html").is_file()
    assert len(errtext.strip().splitlines()) == 1 and errtext.startswith("digitlab: error:")
    assert (
        json.loads((run_dir / "summary.json").read_text())["report"]["title"] == "T"
    )  # the title is kept too


def test_html_is_written_before_the_pdf_is_rendered(run_dir, monkeypatch):
    seen = []

    def spy(doc, base_url):
        seen.append((run_dir / "report.html").is_file())
        return b"%PDF-1.7 fake"

    (run_dir / "report.html").unlink(missing_ok=True)
    monkeypatch.setattr(B, "render_pdf", spy)
    html, pdf = B.build_reports(run_dir, pdf=True)
    assert seen == [True] and pdf.read_bytes() == b"%PDF-1.7 fake" and html.is_file()


def test_layout_survives_a_weasyprint_without_page_boxes(run_dir, monkeypatch):
    import digitlab.report.check as check

    def moved(rendered):
        raise AttributeError("'Page' object has no attribute '_page_box'")

    monkeypatch.setattr(check, "measure", moved)
    doc = B.document(B.load_run(run_dir), B.report_meta(B.load_run(run_dir), dict.fromkeys(B.META_KEYS)))
    assert B.layout_pdf(doc, run_dir).pages  # one pass, no near-empty-page refinement, but a PDF
