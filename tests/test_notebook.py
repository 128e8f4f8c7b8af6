"""notebooks/study.ipynb runs top to bottom (nbclient), on small subsets, and prints its results.

Skipped, with the command that enables it, where nbclient or ipykernel is not installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="notebook test: pip install nbclient nbformat ipykernel")
nbclient = pytest.importorskip("nbclient", reason="notebook test: pip install nbclient nbformat ipykernel")
pytest.importorskip("ipykernel", reason="notebook test: pip install ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "study.ipynb"


def test_notebook_runs_top_to_bottom(monkeypatch):
    # smaller than the notebook's defaults so the suite stays fast; the code path is the same
    monkeypatch.setenv("DIGITLAB_NOTEBOOK_N_TRAIN", "600")
    monkeypatch.setenv("DIGITLAB_NOTEBOOK_N_TEST", "300")
    monkeypatch.setenv("DIGITLAB_NOTEBOOK_CNN_STEPS", "60")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "600 training and 300 test images" in text
    assert "misclassified by every model" in text and "adjusted Rand index" in text
    assert images >= 6  # figures inline
    assert os.environ["DIGITLAB_NOTEBOOK_N_TRAIN"] == "600"
