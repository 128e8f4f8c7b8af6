import json

import pytest

from digitlab.report.build import build_reports
from digitlab.study import runner
from digitlab.study.cache import Cache
from digitlab.study.config import resolve


def _cfg(tmp_path, **study):
    return resolve(
        {
            "study": {
                "tasks": ["overview"],
                "dataset": "digits",
                "output_dir": str(tmp_path / "runs"),
                "cache_dir": str(tmp_path / "cache"),
                "pdf": False,
                **study,
            }
        }
    )


def test_run_folder_contents_and_cache_reuse(tmp_path):
    first = runner.run_study(_cfg(tmp_path), quiet=True)
    build_reports(first.run_dir, pdf=False)
    for name in ("config.toml", "environment.json", "summary.json", "log.txt", "report.html"):
        assert (first.run_dir / name).is_file(), name
    assert (first.run_dir / "results" / "overview" / "result.json").is_file()
    assert (first.run_dir / "results" / "overview" / "samples.png").is_file()
    env = json.loads((first.run_dir / "environment.json").read_text())
    assert env["seed"] == 0 and env["device"] == "cpu" and "torch" in env["packages"]
    assert first.cached == {"overview": False}
    second = runner.run_study(_cfg(tmp_path), quiet=True)
    assert second.cached == {"overview": True}
    assert second.results["overview"].findings == first.results["overview"].findings
    third = runner.run_study(_cfg(tmp_path, seed=1), quiet=True)  # a different seed is a different entry
    assert third.cached == {"overview": False}


def test_failed_task_leaves_no_cache_entry(tmp_path, monkeypatch):
    from digitlab.study.tasks import overview

    def boom(ctx, cfg):
        (ctx.out_dir / "partial.png").write_bytes(b"half")
        raise RuntimeError("killed")

    monkeypatch.setattr(overview, "run", boom)
    with pytest.raises(RuntimeError):
        runner.run_study(_cfg(tmp_path), quiet=True)
    task_dir = tmp_path / "cache" / "overview"
    assert not any(task_dir.iterdir())  # neither a final entry nor a temporary folder survives


def test_unreadable_entry_is_recomputed(tmp_path):
    first = runner.run_study(_cfg(tmp_path), quiet=True)
    entry = next((tmp_path / "cache" / "overview").iterdir())
    (entry / "result.json").write_text("{ truncated")
    assert Cache(tmp_path / "cache").load("overview", entry.name) is None
    again = runner.run_study(_cfg(tmp_path), quiet=True)
    assert again.cached == {"overview": False}
    assert again.results["overview"].findings == first.results["overview"].findings
