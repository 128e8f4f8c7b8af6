"""Issue 23: the resolved config is written by tomli-w and round-trips whatever its strings hold."""

import dataclasses
import sys

import pytest

from digitlab.study.config import ResolvedConfig, StudyConfig, resolve, to_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NASTY = [
    "line one\nline two",
    "tab\tand\rreturn",
    "bell\x07 nul-free \x1f and \x7f",
    'quote " and \\ backslash',
    "'''triple'''",
    '"""',
    "unicode é 中文 \u2028 sep",
    "",
]


@pytest.mark.parametrize("text", NASTY)
def test_any_string_round_trips(text):
    @dataclasses.dataclass
    class Fake:
        label: str = text
        labels: list = dataclasses.field(default_factory=lambda: [text, "plain"])
        none: object = None

    cfg = ResolvedConfig(StudyConfig(name=text, data_dir=text, scheduler=text), {"fake": Fake()})
    back = tomllib.loads(to_toml(cfg))
    assert (
        back["study"]["name"] == text
        and back["study"]["data_dir"] == text
        and back["study"]["scheduler"] == text
    )
    assert back["fake"] == {"label": text, "labels": [text, "plain"], "none": ""}


def test_a_resolved_config_reads_back_the_same():
    cfg = resolve({"study": {"tasks": ["overview"], "data_dir": ""}})
    assert resolve(tomllib.loads(to_toml(cfg))).to_dict() == cfg.to_dict()
    assert 'tasks = ["overview"]' in to_toml(cfg)  # lists stay on one line
