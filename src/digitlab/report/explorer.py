"""The embedding explorer of the HTML report: the test images on a 2-D map, each model's prediction.

It reads two stored files and computes nothing:

* ``results/classify/predictions.npz``: ``y_true``, ``test_index``, ``models`` and ``y_pred__<model>``
  for every test image, in one order ("test order");
* ``results/errors/error_map.npz``: ``pos`` (int, rows of that test order drawn on the map), ``xy``
  (float, ``(m, 2)`` map coordinates) and ``images`` (uint8 ``(m, H, W)``, the mapped test images);
  optionally ``label_issue`` (bool ``(m,)``, the suspected label errors). Without ``label_issue`` the
  ``index`` column of ``results/errors/label_issues_test.csv`` (official test indices) marks them.

The browser draws the points on a canvas (``report.js``): hovering shows the image, its label and
every model's prediction; filters keep the images a chosen model got wrong or that all models got
wrong; suspected label errors are ringed.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.names import model_name

MAX_POINTS = 5000  # more points would make the HTML heavy (each carries its image)


def _png(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, "PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


def _label_issues(errors_dir: Path, official: np.ndarray) -> np.ndarray:
    flags = np.zeros(len(official), bool)
    try:
        with open(errors_dir / "label_issues_test.csv", newline="", encoding="utf-8") as f:
            idx = {
                int(r["index"])
                for r in csv.DictReader(f)
                if str(r.get("index", "")).strip().lstrip("-").isdigit()
            }
    except (OSError, ValueError, KeyError, csv.Error):
        return flags
    return np.isin(official, list(idx))


def explorer_data(run_dir: str | Path, classes: list[str] | None = None) -> tuple[dict[str, Any] | None, str]:
    """``(data for the page, "")`` or ``(None, why the explorer is not shown)``."""
    run_dir = Path(run_dir)
    pred_file = run_dir / "results" / "classify" / "predictions.npz"
    map_file = run_dir / "results" / "errors" / "error_map.npz"
    if not pred_file.is_file():
        return None, "the explorer needs results/classify/predictions.npz (run the classify task)"
    if not map_file.is_file():
        if (run_dir / "results" / "errors").is_dir():
            return None, (
                "the errors task of this run stored no map file (results/errors/error_map.npz with pos, xy "
                "and images); a digitlab version whose errors task writes it is needed"
            )
        return None, "the explorer needs results/errors/error_map.npz (run the errors task)"
    try:
        with np.load(pred_file, allow_pickle=False) as p, np.load(map_file, allow_pickle=False) as m:
            y = np.asarray(p["y_true"]).astype(int)
            official = np.asarray(p["test_index"]).astype(int) if "test_index" in p else np.arange(len(y))
            models = [str(n) for n in p["models"]]
            preds = np.stack([np.asarray(p[f"y_pred__{n}"]).astype(int) for n in models])
            pos, xy, images = (
                np.asarray(m["pos"]).astype(int),
                np.asarray(m["xy"], float),
                np.asarray(m["images"]),
            )
            issue = np.asarray(m["label_issue"]).astype(bool) if "label_issue" in m else None
    except (OSError, ValueError, KeyError) as exc:
        return None, f"the explorer's files are damaged ({exc.__class__.__name__}: {str(exc)[:80]})"
    n = len(pos)
    if not (
        xy.shape == (n, 2)
        and len(images) == n
        and images.dtype == np.uint8
        and n
        and pos.min() >= 0
        and pos.max() < len(y)
        and preds.shape[1] == len(y)
        and np.isfinite(xy).all()
    ):
        return (
            None,
            "the explorer's files do not match each other (map positions, coordinates, images, predictions)",
        )
    if issue is None or len(issue) != n:
        issue = _label_issues(run_dir / "results" / "errors", official)[pos]
    keep = np.arange(n)[:MAX_POINTS]
    pos, xy, images, issue = pos[keep], xy[keep], images[keep], issue[keep]
    lo, hi = xy.min(0), xy.max(0)
    unit = (xy - lo) / np.where(hi > lo, hi - lo, 1)
    labels = classes or [str(c) for c in range(int(max(y.max(), preds.max())) + 1)]
    wrong = preds[:, pos] != y[pos]
    data = {
        "models": [model_name(n) for n in models],
        "classes": labels,
        "x": np.round(unit[:, 0], 4).tolist(),
        "y": np.round(unit[:, 1], 4).tolist(),
        "label": y[pos].tolist(),
        "index": official[pos].tolist(),
        "pred": preds[:, pos].T.tolist(),
        "issue": issue.astype(int).tolist(),
        "img": [_png(im) for im in images],
        "n_test": int(len(y)),
        "n_all_wrong_total": int(np.all(preds != y, axis=0).sum()),
        "n_all_wrong_map": int(wrong.all(0).sum()),
    }
    return data, ""


def explorer_json(data: dict[str, Any]) -> str:
    """The data as JSON safe to embed in a ``<script type="application/json">`` element: ``<``, ``>`` and
    ``&`` (which class or file names from outside may hold) become JSON escapes, so no ``</script>``,
    ``<!--`` or tag can end or alter the element; ``JSON.parse`` reads the same strings back."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


__all__ = ["explorer_data", "explorer_json", "MAX_POINTS"]
