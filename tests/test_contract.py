"""The task contract, checked for every task: it runs on a tiny dataset through the runner, returns a
result the report renders, and its config section round-trips through TOML."""

import html
import json

import pytest
import tomllib

from digitlab.report.build import build_reports
from digitlab.study.config import TASK_ORDER, resolve, task_module, to_toml
from digitlab.study.runner import run_study
from digitlab.study.task import TaskResult


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("contract-cache")  # shared: a required task runs once for all readers


@pytest.mark.parametrize("name", TASK_ORDER)
def test_task_runs_on_tiny_data_and_the_report_renders_it(name, cache_dir, tmp_path):
    cfg = resolve(
        {
            "study": {
                "dataset": "digits",
                "profile": "quick",
                "tasks": [name],
                "output_dir": str(tmp_path),
                "cache_dir": str(cache_dir),
                "pdf": False,
            }
        }
    )
    out = run_study(cfg, quiet=True)
    out.html, out.pdf = build_reports(out.run_dir, pdf=cfg.study.pdf)
    result = out.results[name]
    assert isinstance(result, TaskResult) and result.title and result.findings
    stored = json.loads((out.run_dir / "results" / name / "result.json").read_text())
    assert stored["title"] == result.title
    for fig in result.figures:
        assert (out.run_dir / "results" / name / fig.file).stat().st_size > 500, fig.file
    page = out.html.read_text()
    shown = [f.caption for f in result.figures if html.escape(f.caption, quote=False) in page]
    assert shown or not result.figures, f"no figure of {name} is in the report"
    assert "figure-missing" not in page and "run-problems" not in page  # nothing damaged or unreadable


@pytest.mark.parametrize("name", TASK_ORDER)
def test_config_round_trips_through_toml(name):
    for profile in ("quick", "standard", "full"):
        cfg = resolve({"study": {"tasks": [name], "profile": profile}})
        again = resolve(tomllib.loads(to_toml(cfg)))
        assert again.to_dict() == cfg.to_dict()


@pytest.mark.parametrize("name", TASK_ORDER)
def test_task_module_declares_the_contract(name):
    mod = task_module(name)
    assert mod.NAME == name and mod.TITLE and callable(mod.run)
    assert set(getattr(mod, "PROFILES", {})) <= {"quick", "full"}
    for req in getattr(mod, "REQUIRES", ()):
        assert TASK_ORDER.index(req) < TASK_ORDER.index(name), f"{name} requires {req}, which comes later"
