"""notebooks/study.ipynb runs top to bottom (nbclient), on small subsets, prints its results and shows
every figure inline.

Skipped, with the command that enables it, where nbclient or ipykernel is not installed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="notebook test: pip install nbclient nbformat ipykernel")
nbclient = pytest.importorskip("nbclient", reason="notebook test: pip install nbclient nbformat ipykernel")
pytest.importorskip("ipykernel", reason="notebook test: pip install ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "study.ipynb"

# smaller than the notebook's defaults so the suite stays fast; the code path is the same
SMALL = {
    "N_TRAIN": "600",
    "N_TEST": "300",
    "CNN_STEPS": "30",
    "SEEDS": "1",
    "MAPS": "pca,tsne",
    "SIZES_11": "300,600",
    "DDR_IMAGES": "150",
}


def test_notebook_runs_top_to_bottom(monkeypatch):
    for key, value in SMALL.items():
        monkeypatch.setenv(f"DIGITLAB_NOTEBOOK_{key}", value)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") for c in code), "commit the notebook without outputs"
    plotting = [i for i, c in enumerate(code) if "plot" in c.metadata.get("tags", [])]
    assert len(plotting) >= 15, "tag every cell that draws a figure with 'plot'"
    t0 = time.perf_counter()
    nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    print(f"notebook executed in {time.perf_counter() - t0:.0f} s")
    text = "".join(o.get("text", "") for c in code for o in c.outputs)
    assert "600 training and 300 test images" in text
    assert "misclassified by every model" in text and "best adjusted Rand index" in text
    assert "notebook finished in" in text
    # every cell that plots shows its figure inline (an image output), and no cell shows a bare repr of a figure only
    no_image = [i for i in plotting if not any("image/png" in o.get("data", {}) for o in code[i].outputs)]
    assert not no_image, f"code cells {no_image} are tagged 'plot' but show no image"
    untagged = [
        i
        for i, c in enumerate(code)
        if i not in plotting and any("image/png" in o.get("data", {}) for o in c.outputs)
    ]
    assert not untagged, f"code cells {untagged} draw a figure: tag them 'plot'"
    assert os.environ["DIGITLAB_NOTEBOOK_N_TRAIN"] == "600"
