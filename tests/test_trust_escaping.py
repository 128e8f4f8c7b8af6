"""Issue 23: every string from outside (folder, class and file names, titles, config values) is escaped
wherever it lands in report.html: the HTML, the explorer's JSON, notes, plotly fragments."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from digitlab.report import build as B
from digitlab.report.explorer import explorer_json
from digitlab.study import runner
from digitlab.study.config import resolve

FOLDER = "x<svg onload=alert(15)>"
CLASSES = ["<img src=x onerror=alert(1)>", "<!--<script>", "b&\"'quote", "plain"]
PAYLOADS = ("<svg onload", "<img src=x", "<!--<script", "<script>alert", "onerror=alert(1)>")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xss")
    root = tmp / FOLDER
    rng = np.random.default_rng(0)
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (10, 10), dtype=np.uint8)).save(root / name / f"{i}.png")
    cfg = resolve(
        {
            "study": {
                "tasks": ["overview"],
                "dataset": "folder",
                "data_dir": str(root),
                "image_size": 8,
                "output_dir": str(tmp / "runs"),
                "cache_dir": str(tmp / "cache"),
                "pdf": False,
                "n_jobs": 1,
            }
        }
    )
    out = runner.run_study(cfg, quiet=True)
    html, _ = B.build_reports(
        out.run_dir,
        pdf=False,
        title="<svg onload=alert(9)>",
        author="<script>alert(2)</script>",
        course="</title><img src=x onerror=alert(3)>",
    )
    return html.read_text(encoding="utf-8")


def _unescaped(text):
    return [p for p in PAYLOADS if p in text] + re.findall(r"</script><script>alert", text)


def test_a_hostile_folder_and_class_names_are_escaped_in_the_report(report):
    assert "x&lt;svg onload=alert(15)&gt;" in report  # the folder's name is shown, as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in report  # so is a class name
    assert _unescaped(report) == []
    assert "&lt;svg onload=alert(9)&gt;" in report and "&lt;script&gt;alert(2)" in report


def test_explorer_json_cannot_end_its_script_element():
    data = {"classes": CLASSES + ["</script><script>alert(4)</script>"], "folder": FOLDER}
    text = explorer_json(data)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == data  # the browser's JSON.parse reads the same names back


def test_task_notes_are_escaped_but_the_metric_definitions_keep_their_markup():
    from markupsafe import escape

    from digitlab.metrics import metric_notes

    hostile = B._note(f"skipped 2 unreadable files in {FOLDER}/a.png")
    assert "<svg" not in str(escape(hostile))
    trusted = metric_notes()[0]
    assert str(escape(B._note(trusted))) == trusted  # digitlab's own <b>/<i> stay markup
