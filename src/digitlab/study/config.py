"""Study configuration: a TOML file plus CLI overrides, resolved against profiles, validated once.

Resolution order (later wins): the task's ``Config`` defaults (= the ``standard`` profile) ->
the task's ``PROFILES[profile]`` overrides -> the task's ``DATASET_PROFILES[dataset][profile]``
overrides (settings a dataset needs, e.g. classify's wider CNN for Fashion-MNIST) -> the TOML file's
section -> ``--set`` overrides.
Unknown sections or keys and values of the wrong type are :class:`ConfigError`\\ s naming the key.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import math
import os
import re
import sys
import tempfile
import types
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from digitlab.exceptions import ConfigError

PROFILES = ("quick", "standard", "full")
TASK_ORDER = (
    "overview",
    "features",
    "embed",
    "augment",
    "classify",
    "cnn_sweeps",
    "datasize",
    "errors",
    "overfit",
    "cluster",
    "fundus",
)
# Old key names that still work, with a deprecation message: one vocabulary across every task.
ALIASES = {"train_size": "n_train", "test_size": "n_test", "seeds": "n_seeds"}


@dataclass
class StudyConfig:
    """The ``[study]`` section: what to run and where."""

    name: str = ""  # run name; defaults to "<dataset>-<profile>"
    dataset: str = "mnist"  # a registry name: mnist, fashion-mnist, digits
    data_dir: str = ""  # folder with the dataset's files (for datasets not bundled)
    # image-folder datasets (ddr, folder): side in pixels after resizing (0 = the dataset's default)
    image_size: int = 0
    graham: bool = False  # ddr: Graham's local-average colour subtraction
    # image-folder datasets: skip (log and count) unreadable images instead of stopping
    skip_bad_files: bool = False
    profile: str = "standard"  # quick | standard | full
    seed: int = 0  # every task derives its randomness from this
    tasks: list[str] = field(default_factory=lambda: list(TASK_ORDER))
    device: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "auto"  # networks' forward pass: auto (bf16 where the CPU/GPU runs it natively, else fp32) | fp32 | bf16
    n_jobs: int = (
        -1
    )  # parallel jobs (joblib / scikit-learn); -1 = all cores (the default), -2 = all but one, 1 = serial
    # joblib backend of the experiment engine: loky | threading | multiprocessing | dask | ray
    backend: str = "loky"
    # dask: scheduler address (tcp://host:8786), ray: cluster address (auto); "" = a local cluster
    scheduler: str = ""
    output_dir: str = "runs"  # run folders land in <output_dir>/<timestamp>-<name>/
    cache_dir: str = ".digitlab-cache"  # content-addressed task results
    use_cache: bool = True
    pdf: bool = True  # also write report.pdf


@dataclass
class ResolvedConfig:
    study: StudyConfig
    tasks: dict[str, Any]  # task NAME -> its Config instance, in run order

    def to_dict(self) -> dict[str, Any]:
        out = {"study": dataclasses.asdict(self.study)}
        out.update({k: dataclasses.asdict(v) for k, v in self.tasks.items()})
        return out


def task_module(name: str) -> types.ModuleType:
    """Import the module of task ``name``; unknown names are a ConfigError listing the choices."""
    if name not in TASK_ORDER:
        raise ConfigError(f"task {name!r}: unknown task; choose from {', '.join(TASK_ORDER)}")
    return importlib.import_module(f"digitlab.study.tasks.{name}")


def requirements(name: str) -> tuple[str, ...]:
    """The tasks task ``name`` reads (its ``REQUIRES``), checked against the known tasks."""
    req = tuple(getattr(task_module(name), "REQUIRES", ()))
    for r in req:
        task_module(r)
    return req


def with_requirements(tasks: list[str]) -> list[str]:
    """``tasks`` plus every task they require, transitively, each required task before its readers
    (in TASK_ORDER where the order is free)."""
    out: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ConfigError(
                f"task {name!r}: its REQUIRES form a cycle ({' -> '.join(path + (name,))}); break it"
            )
        for r in requirements(name):
            visit(r, path + (name,))
        if name not in out:
            out.append(name)

    for name in tasks:
        visit(name, ())
    return out


def _check_type(key: str, value: Any, hint: Any) -> Any:
    """Check (and gently coerce int->float) one value against a dataclass field's type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arm in typing.get_args(hint):
            if arm is type(None) and value is None:
                return None
            try:
                return _check_type(key, value, arm)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key {key}: expected a list, got {value!r}; write it as [a, b, ...]")
        (item,) = typing.get_args(hint) or (Any,)
        return [_check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {key}: {value!r} is not a finite number; give a finite value")
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        name = getattr(hint, "__name__", str(hint))
        raise ConfigError(
            f"config key {key}: expected {name}, got {value!r}; fix the value in the config or --set"
        )
    return value


def _apply(obj: Any, section: str, values: dict[str, Any]) -> Any:
    """Return a copy of dataclass ``obj`` with ``values`` applied, each key and type checked."""
    hints = typing.get_type_hints(type(obj))
    names = [f.name for f in dataclasses.fields(obj)]
    clean = {}
    for key, value in values.items():
        if key not in names and ALIASES.get(key) in names:
            new = ALIASES[key]
            warnings.warn(
                f"config key {section}.{key} is deprecated; call it {section}.{new}",
                DeprecationWarning,
                stacklevel=2,
            )
            logging.getLogger("digitlab").warning(
                "config key %s.%s is deprecated; call it %s.%s", section, key, section, new
            )
            key = new
        if key not in names:
            raise ConfigError(f"config key {section}.{key}: unknown key; valid keys are {', '.join(names)}")
        clean[key] = _check_type(f"{section}.{key}", value, hints[key])
    new = dataclasses.replace(obj, **clean)
    if section != "study":
        _check_signs(new, section, hints, clean)
    check = getattr(new, "validate", None)
    if callable(check):
        check()  # a task's own range checks raise ConfigError
    return new


def _check_signs(obj: Any, section: str, hints: dict[str, Any], values: dict[str, Any]) -> None:
    """No task key has a meaning for a negative number (counts, sizes, epochs, rates, seconds, threads):
    refuse one, in a list too, unless the Config lists the key in ``SIGNED_KEYS``."""
    signed = set(getattr(type(obj), "SIGNED_KEYS", ()))
    for key, value in values.items():
        if key in signed or typing.get_origin(hints[key]) not in (None, list):
            continue
        items = value if isinstance(value, list) else [value]
        for v in items:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
                raise ConfigError(
                    f"config key {section}.{key}: {v!r} is negative; give 0 or more "
                    "(see `digitlab config` for what the key means)"
                )


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``section.key=value`` (value in TOML syntax; bare words are strings)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. --set classify.n_train=5000")
    lhs, raw = text.split("=", 1)
    section, key = lhs.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    except RecursionError:
        raise ConfigError(
            f"override {section}.{key}: the value is nested too deeply to parse; "
            f"give at most {MAX_DEPTH} levels of lists"
        ) from None
    _check_depth(f"{section}.{key}", value)
    return section, key, value


MAX_DEPTH = 16  # deepest list/table nesting a config value may have


def _check_depth(key: str, value: Any) -> None:
    """Refuse values nested deeper than MAX_DEPTH (checked without recursion)."""
    todo = [(value, 0)]
    while todo:
        v, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"config key {key}: nested more than {MAX_DEPTH} levels deep; give a flat list or value"
            )
        if isinstance(v, dict):
            todo.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            todo.extend((x, depth + 1) for x in v)


BUNDLED_CONFIGS = (
    Path(__file__).resolve().parents[1] / "configs"
)  # shipped in the wheel: quick.toml, standard.toml, ...


def bundled_config(path: str | Path) -> Path | None:
    """The config shipped with digitlab that ``path`` names (``quick``, ``quick.toml`` or
    ``configs/quick.toml``), or None: ``--config configs/quick.toml`` works outside the checkout too."""
    p = Path(path)
    if len(p.parts) > 2 or (len(p.parts) == 2 and p.parts[0] != "configs"):
        return None
    cand = BUNDLED_CONFIGS / (p.name if p.suffix == ".toml" else f"{p.name}.toml")
    return cand if cand.is_file() else None


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        bundled = bundled_config(path)
        if bundled is None:
            names = ", ".join(sorted(p.name for p in BUNDLED_CONFIGS.glob("*.toml")))
            raise ConfigError(
                f"config file {path}: not found; check the path (digitlab ships configs/{{{names}}})"
            )
        path = bundled
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: not valid TOML ({exc}); fix the syntax") from None
    except RecursionError:
        raise ConfigError(
            f"config file {path}: a value is nested too deeply to parse; give at most {MAX_DEPTH} levels"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"config file {path}: cannot be read ({exc.strerror or exc}); fix its permissions"
        ) from None
    for section, values in data.items():
        _check_depth(section, values)
    return data


BACKENDS = ("loky", "threading", "multiprocessing", "dask", "ray")
NEEDS_DATA_DIR = ("ddr", "folder")  # datasets that exist only in a folder the user names
NO_DATA_DIR = ("digits",)  # bundled with a package: a data folder would be silently ignored
NAME_CHARS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


def _check_study(study: StudyConfig) -> None:
    """Range checks of the [study] section (types were checked by _apply)."""

    def bad(key: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"config key study.{key}: {problem}; {fix}")

    if study.image_size and not 8 <= study.image_size <= 1024:
        raise bad(
            "image_size",
            f"{study.image_size} is out of range",
            "use 0 (the dataset's default) or 8 to 1024 pixels",
        )
    if not 0 <= study.seed < 2**32:
        raise bad("seed", f"{study.seed} is out of range", "use an integer from 0 to 4294967295")
    if study.n_jobs == 0 or study.n_jobs < -64:
        raise bad("n_jobs", f"{study.n_jobs} is not a job count", "use 1, 2, ... or -1 for all cores")
    if study.backend not in BACKENDS:
        raise bad("backend", f"{study.backend!r} is unknown", f"use one of {', '.join(BACKENDS)}")
    if study.name and not NAME_CHARS.match(study.name):
        raise bad(
            "name",
            f"{study.name[:40]!r} is not a safe folder name",
            "use up to 100 letters, digits, '.', '_', '+' or '-', starting with a letter or digit",
        )
    for key in ("output_dir", "cache_dir"):
        _check_writable_dir(key, Path(getattr(study, key)), bad)
    from digitlab.data.registry import REGISTRY

    if study.dataset not in REGISTRY:
        raise bad(
            "dataset", f"dataset {study.dataset!r}: unknown name", f"choose one of {', '.join(REGISTRY)}"
        )
    if study.dataset in NEEDS_DATA_DIR and not study.data_dir:
        raise bad("data_dir", f"dataset {study.dataset!r} needs a data folder", "pass --data-dir DIR")
    if study.dataset in NO_DATA_DIR and study.data_dir:
        raise bad("data_dir", f"dataset {study.dataset!r} is bundled and reads no folder", "drop --data-dir")
    if study.data_dir:
        folder = Path(study.data_dir).expanduser()
        if not folder.exists():
            raise bad(
                "data_dir",
                f"{folder} does not exist",
                "check the path (an explicit data folder is used or refused, never replaced)",
            )
        if not folder.is_dir():
            raise bad(
                "data_dir",
                f"{folder} is a file, not a folder",
                "pass the folder that holds the dataset's files",
            )
        try:
            next(os.scandir(folder), None)
        except OSError as exc:
            raise bad(
                "data_dir", f"{folder} cannot be read ({exc.strerror or exc})", "fix its permissions"
            ) from None
    if study.scheduler and study.backend not in ("dask", "ray"):
        raise bad(
            "scheduler",
            f"{study.scheduler!r} is set but study.backend is {study.backend!r}",
            "set study.backend to dask or ray, or leave study.scheduler empty",
        )
    if (
        study.backend == "dask"
        and study.scheduler
        and not re.match(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$|^[\w.\-\[\]:]+:\d+$", study.scheduler)
    ):
        raise bad(
            "scheduler", f"{study.scheduler!r} is not a dask scheduler address", "write it as tcp://host:8786"
        )
    needs = {"dask": ("distributed", "dask"), "ray": ("ray", "ray")}.get(study.backend)
    if needs and importlib.util.find_spec(needs[0]) is None:
        raise bad(
            "backend",
            f"{study.backend!r} needs {needs[0]}, which is not installed",
            f'pip install -e ".[{needs[1]}]" (on every worker too) or use study.backend = "loky"',
        )


def _check_writable_dir(key: str, path: Path, bad: Callable[[str, str, str], ConfigError]) -> None:
    """``path`` must be a folder this process can write into, or creatable: its nearest existing
    ancestor must be a writable folder. Checked by creating (and dropping) a temporary file."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():  # a dangling link
            raise bad(key, f"{probe} is a broken link", "name a folder (it is created if missing)")
        probe = probe.parent
    if not probe.is_dir():
        raise bad(key, f"{probe} is a file, not a folder", "name a folder (it is created if missing)")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise bad(
            key,
            f"{probe} is not writable ({exc.strerror or exc})",
            "fix its permissions or name another folder",
        ) from None


def data_options(study: StudyConfig) -> dict[str, Any]:
    """The loader options of the [study] section that apply to its dataset (image folders only)."""
    if study.dataset == "ddr":
        return {
            "graham": study.graham,
            "skip_bad_files": study.skip_bad_files,
            **({"size": study.image_size} if study.image_size else {}),
        }
    if study.dataset == "folder":
        return {
            "skip_bad_files": study.skip_bad_files,
            **({"size": study.image_size} if study.image_size else {}),
        }
    return {}


def resolve(
    data: dict[str, Any] | None = None, overrides: list[str] | None = None, **study_overrides: Any
) -> ResolvedConfig:
    """Resolve a config dict (from TOML), ``--set`` overrides and study-level keyword overrides."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in (data or {}).items()}
    for text in overrides or []:
        section, key, value = parse_override(text)
        data.setdefault(section, {})[key] = value
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(
                f"config key {section}: top-level keys must be sections like [study] or [classify]; move it into a section"
            )
    study_values = {**data.pop("study", {}), **{k: v for k, v in study_overrides.items() if v is not None}}
    study = _apply(StudyConfig(), "study", study_values)
    if study.profile not in PROFILES:
        raise ConfigError(
            f"config key study.profile: {study.profile!r} is not a profile; choose quick, standard or full"
        )
    if study.device not in ("auto", "cpu", "cuda", "mps"):
        raise ConfigError(
            f"config key study.device: {study.device!r} is not a device; choose auto, cpu, cuda or mps"
        )
    if study.precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(
            f"config key study.precision: {study.precision!r} is not a precision; choose auto, fp32 or bf16"
        )
    _check_study(study)
    if not study.tasks:
        raise ConfigError(
            'config key study.tasks: empty; list at least one task, e.g. ["overview", "classify"]'
        )
    study.tasks = with_requirements(study.tasks)
    tasks = {}
    for name in study.tasks:
        mod = task_module(name)
        cfg = _apply(mod.Config(), name, getattr(mod, "PROFILES", {}).get(study.profile, {}))
        # a task's settings for this dataset and profile (e.g. classify's for Fashion-MNIST), before the file's
        cfg = _apply(
            cfg, name, getattr(mod, "DATASET_PROFILES", {}).get(study.dataset, {}).get(study.profile, {})
        )
        tasks[name] = _apply(cfg, name, data.pop(name, {}))
    for section in data:
        task_module(section)  # unknown section -> error; a known task not in study.tasks is checked too
        mod = task_module(section)
        _apply(mod.Config(), section, data[section])
    if not study.name:
        study.name = f"{study.dataset}-{study.profile}"
    return ResolvedConfig(study, tasks)


def to_toml(cfg: ResolvedConfig) -> str:
    """Write the resolved config back as TOML (for the run folder and `digitlab config show`). Every value
    is written by tomli-w, so any string (quotes, newlines, control characters) round-trips through
    :func:`tomllib.loads`; lists of values stay on one line."""
    lines = []
    for section, values in cfg.to_dict().items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(f'{section}.{key}', value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(key: str, v: Any) -> str:
    """One TOML value, written by tomli-w (None, which TOML cannot hold, as ""; tuples as lists)."""
    import tomli_w

    if v is None:
        v = ""
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(key, x) for x in v) + "]"
    if not isinstance(v, (bool, int, float, str)):
        raise ConfigError(f"config key {key}: value {v!r} cannot be written as TOML")
    return tomli_w.dumps({"v": v}, multiline_strings=False).removeprefix("v = ").rstrip("\n")
