"""Issue 23: a complete wheel (configs, py.typed, LICENSE, one version source, declared dependencies)."""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the wheel from a copy of the source (nothing is written into the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "LICENSE", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".ruff_cache")
    )
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (whl,) = out.glob("digitlab-*.whl")
    return whl


def test_the_wheel_ships_configs_types_licence_and_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for want in (
        "digitlab/configs/quick.toml",
        "digitlab/configs/standard.toml",
        "digitlab/configs/fashion.toml",
        "digitlab/py.typed",
        "digitlab/report/templates/report.html.j2",
        "digitlab/data/bundled/mnist/LICENSE",
        "digitlab/data/bundled/mnist/train-images-idx3-ubyte.gz",
    ):
        assert want in names, want
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert (
        "MIT License" in (ROOT / "LICENSE").read_text()
        and "digitlab authors" in (ROOT / "LICENSE").read_text()
    )


def test_one_version_source_and_declared_dependencies(wheel):
    import digitlab

    meta = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert f"Version: {digitlab.__version__}" in text
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert (
        "version" not in project["project"] and "version" in project["project"]["dynamic"]
    )  # only digitlab.__version__
    requires = " ".join(re.findall(r"^Requires-Dist: (\S+)", text, re.M)).lower()
    for pkg in ("markupsafe", "tomli-w", "weasyprint", "jinja2", "cleanlab", "pandas"):
        assert pkg in requires, pkg
    weasy = re.search(r"^Requires-Dist: weasyprint(.*)$", text, re.M | re.I).group(1)
    assert "<71" in weasy


def test_an_installed_wheel_finds_its_configs_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-compile",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import digitlab, sys; from digitlab.study.config import load_toml; from digitlab.cli import main;"
        "assert digitlab.__file__.startswith(sys.argv[1]), digitlab.__file__;"
        "assert load_toml('configs/quick.toml')['study']['profile'] == 'quick';"
        "assert load_toml('standard')['study']['profile'] == 'standard';"
        "sys.exit(main(['config', '--profile', 'standard', '--tasks', 'overview']))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'profile = "standard"' in proc.stdout


def test_configs_from_the_repository_root_still_work(monkeypatch):
    from digitlab.study.config import load_toml

    monkeypatch.chdir(ROOT)
    assert load_toml("configs/quick.toml")["study"]["profile"] == "quick"
