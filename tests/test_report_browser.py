"""The interactive HTML report in a real headless browser (Playwright driving Debian's chromium).

A run of overview and classify (three classic models on scikit-learn's 8x8 digits) gets an errors
folder holding the map file the explorer reads (``error_map.npz``: positions, 2-D coordinates,
images) and a label-issue list; the page must load without console errors, draw the explorer's
points, show an image when a point is hovered, and its "every model got wrong" filter must keep
exactly the images that every model's stored predictions get wrong. Skipped, with the command that
enables it, where chromium or Playwright is missing.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from digitlab.report.build import build_reports

CHROMIUM = os.environ.get("DIGITLAB_CHROMIUM", "/usr/bin/chromium")
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(
        sync_playwright is None, reason="browser test: pip install playwright (and apt-get install chromium)"
    ),
    pytest.mark.skipif(
        not shutil.which(CHROMIUM),
        reason=f"browser test: no chromium at {CHROMIUM}; apt-get install chromium "
        "(or set DIGITLAB_CHROMIUM)",
    ),
    pytest.mark.usefixtures("one_blas_thread"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from sklearn.decomposition import PCA

    from digitlab.data import load_dataset
    from digitlab.study.config import resolve
    from digitlab.study.runner import run_study

    tmp = tmp_path_factory.mktemp("browser")
    cfg = resolve(
        {
            "study": {
                "tasks": ["overview", "classify"],
                "dataset": "digits",
                "profile": "quick",
                "output_dir": str(tmp / "runs"),
                "cache_dir": str(tmp / "cache"),
            },
            "classify": {"models": ["logreg", "tree", "gnb"], "n_boot": 100},
        }
    )
    run = run_study(cfg, quiet=True).run_dir
    p = np.load(run / "results" / "classify" / "predictions.npz")
    y, index = p["y_true"], p["test_index"]
    wrong = np.stack([p[f"y_pred__{m}"] != y for m in p["models"]])
    images = load_dataset("digits").x_test[index]
    xy = PCA(2, random_state=0).fit_transform(images.reshape(len(y), -1).astype(float))
    errors = run / "results" / "errors"
    errors.mkdir()
    np.savez_compressed(
        errors / "error_map.npz", pos=np.arange(len(y)), xy=xy.astype(np.float32), images=images
    )
    (errors / "label_issues_test.csv").write_text(
        "index,given,suggested,score\n" + "".join(f"{i},0,1,0.1\n" for i in index[:5])
    )
    result = {
        "title": "Errors",
        "headline": "",
        "findings": [],
        "metrics": {"missed_by_all": int(wrong.all(0).sum())},
    }
    (errors / "result.json").write_text(json.dumps(result))
    html, _ = build_reports(run, pdf=False)
    return html, int(wrong.all(0).sum()), int(wrong[0].sum()), len(y)


def test_report_in_a_browser(report):
    html, all_wrong, first_wrong, n = report
    assert all_wrong > 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            problems = []
            page.on(
                "console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(html.as_uri())
            page.wait_for_load_state("load")
            assert problems == []
            # the explorer draws every mapped point
            assert page.locator("#explorer-canvas").get_attribute("data-visible") == str(n)
            assert page.evaluate("digitlabExplorer.count()") == n
            # hovering a point shows its image, its label and every model's prediction
            page.locator("#explorer-canvas").scroll_into_view_if_needed()
            box = page.locator("#explorer-canvas").bounding_box()
            x, y = page.evaluate("digitlabExplorer.screenPos(digitlabExplorer.visible()[0])")
            page.mouse.move(box["x"] + x, box["y"] + y)
            tip = page.locator("#explorer-tip")
            assert tip.is_visible() and tip.locator("img").count() == 1
            assert (
                tip.locator("img").evaluate("im => im.complete && im.naturalWidth") == 8
            )  # the 8x8 digit itself
            assert "logistic regression" in tip.inner_text() and "label" in tip.inner_text()
            # filters: every model wrong (the errors task's count), one model wrong, suspected label errors
            page.select_option("#explorer-filter", "allwrong")
            assert page.evaluate("digitlabExplorer.count()") == all_wrong
            assert f"showing {all_wrong} of {n}" in page.locator("#explorer-count").inner_text()
            page.select_option("#explorer-filter", "m0")
            assert page.evaluate("digitlabExplorer.count()") == first_wrong
            page.select_option("#explorer-filter", "issue")
            assert page.evaluate("digitlabExplorer.count()") == 5
            # sortable tables and zoomable figures
            table = page.locator("table.sortable").first
            table.locator("th").nth(1).click()
            assert table.locator("th.sorted-asc").count() == 1
            page.locator("img.zoomable").first.click()
            assert page.locator("#zoom").is_visible()
            page.keyboard.press("Escape")
            assert not page.locator("#zoom").is_visible()
            assert problems == []
        finally:
            browser.close()
