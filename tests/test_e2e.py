"""The README's main command, end to end: a quick study of the bundled MNIST writes both reports."""

import json
from html import escape as html_escape

import pytest
from pypdf import PdfReader

from digitlab.cli import main
from digitlab.study.config import TASK_ORDER


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    argv = [
        "run",
        "--profile",
        "quick",
        "--output",
        str(root / "runs"),
        "--cache-dir",
        str(root / "cache"),
        "--quiet",
    ]
    assert main(argv) == 0
    (run_dir,) = (root / "runs").iterdir()
    return root, argv, run_dir


def test_quick_study_writes_both_reports(quick_run):
    _, _, run_dir = quick_run
    html = (run_dir / "report.html").read_text()
    for name in TASK_ORDER:
        result = json.loads((run_dir / "results" / name / "result.json").read_text())
        assert result["findings"], f"{name} states no findings"
        captions = [html_escape(f["caption"], quote=False) for f in result["figures"]]
        assert not captions or any(c in html for c in captions), f"no figure of {name} in the report"
    assert "figure-missing" not in html and "run-problems" not in html
    assert "data:image/png;base64," in html
    pdf = PdfReader(run_dir / "report.pdf")
    assert len(pdf.pages) >= len(TASK_ORDER)
    text = " ".join(page.extract_text() for page in pdf.pages[:3])
    assert "mnist" in text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [t["task"] for t in summary["tasks"]] == list(TASK_ORDER)
    assert not any(t["cached"] for t in summary["tasks"])


def test_rerun_reuses_every_task(quick_run, capsys):
    root, argv, _ = quick_run
    assert main(argv + ["--no-pdf"]) == 0
    assert f"{len(TASK_ORDER)} of {len(TASK_ORDER)} tasks from cache" in capsys.readouterr().out
