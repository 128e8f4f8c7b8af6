"""Adding a model is one registry entry: a model registered through digitlab.models.zoo.register_model
takes part in the classify task, its tables and the report, by its registered words."""

import json

import pytest

from digitlab.models import zoo


def _nearest_centroid(random_state: int, n_jobs: int, shrink_threshold: float | None = None):
    from sklearn.neighbors import NearestCentroid
    from sklearn.pipeline import Pipeline

    from digitlab.models.classic import pixels_step

    return Pipeline([pixels_step(), ("clf", NearestCentroid(shrink_threshold=shrink_threshold))])


SPEC = zoo.ModelSpec(
    "centroid",
    "nearest centroid",
    "nearest class mean on pixels/255 (shrink threshold {shrink_threshold})",
    _nearest_centroid,
    "neighbours",
    studies=("classify",),
)


@pytest.fixture
def centroid():
    zoo.register_model(SPEC)
    try:
        yield SPEC
    finally:
        zoo.unregister_model(SPEC.name)


def test_one_entry_reaches_every_list_of_models(centroid):
    from digitlab.models.classic import CLASSIC_MODELS
    from digitlab.names import cell_name, humanize, model_name
    from digitlab.study.tasks import classify

    assert "centroid" in zoo.model_names() and "centroid" in zoo.model_names("classify")
    assert "centroid" not in zoo.model_names("datasize")
    assert zoo.model_names()[-1] == "cnn"  # networks stay last
    assert "centroid" in CLASSIC_MODELS and "centroid" in classify.Config().models
    zoo.check_models(["centroid"], "classify.models")
    assert model_name("centroid") == cell_name("centroid") == "nearest centroid"
    assert humanize("centroid beats gnb") == "nearest centroid beats Gaussian naive Bayes"
    assert (
        zoo.describe_model("centroid", zoo.ZooSettings())
        == "nearest class mean on pixels/255 (shrink threshold None)"
    )
    with pytest.raises(Exception, match="already registered"):
        zoo.register_model(SPEC)


def test_unregistered_afterwards():
    from digitlab.names import model_name

    assert "centroid" not in zoo.model_names() and model_name("centroid") == "centroid"


def test_registered_model_in_classify_scores_and_report(centroid, tmp_path):
    from digitlab.report.build import build_reports
    from digitlab.study.config import resolve
    from digitlab.study.runner import run_study

    cfg = resolve(
        {
            "study": {
                "tasks": ["classify"],
                "dataset": "digits",
                "profile": "quick",
                "output_dir": str(tmp_path / "runs"),
                "cache_dir": str(tmp_path / "cache"),
                "pdf": False,
            },
            "classify": {"models": ["gnb", "centroid"], "n_train": 300, "n_test": 200, "n_boot": 50},
        }
    )
    res = run_study(cfg, quiet=True)
    result = json.loads((res.run_dir / "results" / "classify" / "result.json").read_text())
    scores = next(t for t in result["tables"] if t["name"] == "scores")
    row = next(r for r in scores["rows"] if r["model"] == "centroid")
    assert 0.5 < row["accuracy"] <= 1.0
    cost = next(t for t in result["tables"] if t["name"] == "cost")
    assert next(r for r in cost["rows"] if r["model"] == "centroid")["setup"].startswith("nearest class mean")
    build_reports(res.run_dir, pdf=False)
    html = (res.run_dir / "report.html").read_text()
    assert "nearest centroid" in html
