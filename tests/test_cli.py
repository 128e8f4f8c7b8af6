import subprocess
import sys

import pytest

from digitlab.cli import main


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "--tasks", "overview", "--dataset", "cifar11"], "dataset 'cifar11': unknown name"),
        (["run", "--tasks", "warp_drive"], "task 'warp_drive': unknown task"),
        (
            ["run", "--tasks", "overview", "--set", "overview.samples_per_class=abc"],
            "overview.samples_per_class: expected int",
        ),
        (["run", "--tasks", "overview", "--set", "study.n_jobs=1.5"], "study.n_jobs: expected int"),
        (["run", "--config", "/no/such/file.toml"], "not found"),
        (["data", "info", "nope"], "unknown name"),
        (["report", "/no/such/run"], "pass a run folder"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1 and err.startswith("digitlab: error:")


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--profile", "enormous"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "digitlab.cli", "run", "--dataset", "nope", "--tasks", "overview"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "unknown name" in proc.stderr


def test_data_commands(capsys):
    assert main(["data", "list"]) == 0
    assert "fashion-mnist" in capsys.readouterr().out
    assert main(["data", "verify", "mnist"]) == 0
    assert "all files verified" in capsys.readouterr().out
    assert main(["data", "info", "digits"]) == 0
    assert '"n_train": 1347' in capsys.readouterr().out


def test_config_show(capsys):
    assert main(["config", "--tasks", "overview", "--profile", "quick"]) == 0
    out = capsys.readouterr().out
    assert 'profile = "quick"' in out and "samples_per_class = 8" in out
