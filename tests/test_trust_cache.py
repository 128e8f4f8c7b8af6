"""Issue 23: the cache key knows which library versions computed a result; environment.json lists them."""

import json

from test_runner import _cfg as runner_cfg  # the one overview-on-digits study config of the runner tests

from digitlab.study import cache as C
from digitlab.study import runner


def _cfg(tmp_path):
    return runner_cfg(tmp_path, n_jobs=1)


def test_every_result_library_is_part_of_the_key(monkeypatch):
    for pkg in (
        "numpy",
        "scipy",
        "scikit-learn",
        "torch",
        "umap-learn",
        "openTSNE",
        "cleanlab",
        "pandas",
        "kornia",
        "scikit-image",
        "Pillow",
        "joblib",
        "numba",
        "skops",
    ):
        assert pkg in C.RESULT_PACKAGES
    before = C.cache_key("classify", {}, 0, "cpu", "d")
    real = C.library_versions()
    for pkg in C.RESULT_PACKAGES:
        monkeypatch.setattr(C, "library_versions", lambda pkg=pkg: {**real, pkg: "999.0"})
        assert C.cache_key("classify", {}, 0, "cpu", "d") != before, pkg
    monkeypatch.setattr(C, "library_versions", lambda: dict(real))
    assert C.cache_key("classify", {}, 0, "cpu", "d") == before


def test_a_faked_upgrade_recomputes_and_environment_lists_the_versions(tmp_path, monkeypatch):
    first = runner.run_study(_cfg(tmp_path), quiet=True)
    assert first.cached == {"overview": False}
    assert runner.run_study(_cfg(tmp_path), quiet=True).cached == {"overview": True}
    real = C.library_versions()
    monkeypatch.setattr(
        C, "library_versions", lambda: {**real, "scikit-learn": "99.0"}
    )  # "pip install -U scikit-learn"
    upgraded = runner.run_study(_cfg(tmp_path), quiet=True)
    assert upgraded.cached == {"overview": False}
    assert upgraded.results["overview"].findings == first.results["overview"].findings
    assert len([p for p in (tmp_path / "cache" / "overview").iterdir() if not p.name.startswith(".")]) == 2
    env = json.loads((upgraded.run_dir / "environment.json").read_text())
    for pkg in (*C.RESULT_PACKAGES, "matplotlib", "weasyprint", "markupsafe", "jinja2"):
        assert pkg in env["packages"], pkg
    assert env["packages"]["cleanlab"] != "not installed" and env["packages"]["Pillow"] != "not installed"
    assert env["torch_cpu_capability"]
