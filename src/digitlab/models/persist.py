"""Saved models that load back without unpickling arbitrary code.

A saved model is a folder:

* a network (:class:`digitlab.train.CNNClassifier`, or any net of :mod:`digitlab.models.nets`):
  ``model.pt``, the ``state_dict`` written by ``torch.save`` (tensors only), and ``model.json``, what is
  needed to rebuild it: the family and its parameters, ``in_shape`` ``(C, H, W)``, the number of
  classes and their labels, the input normalisation and the training configuration. Loading rebuilds
  the net with :func:`~digitlab.models.nets.build_net` and reads the weights with
  ``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
* a classic model (a scikit-learn pipeline of :mod:`digitlab.models.classic`, the NumPy MLP):
  ``model.skops``, written by :mod:`skops.io`, and ``model.json``. skops rebuilds objects from a
  schema and refuses every type it does not trust; beyond its own safe list, digitlab trusts exactly
  the types in :data:`TRUSTED_TYPES` (its own estimator classes and pixel-scaling function, and two
  scikit-learn tree internals). A file naming any other type is refused with a :class:`ModelError`
  before anything in it is built.

::

    save_model("runs/x/models/cnn", "cnn", clf)      # dispatches on the estimator's type
    clf = load_model("runs/x/models/cnn")             # a fitted estimator again
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.exceptions import ModelError
from digitlab.io import atomic_write

META_FILE = "model.json"
WEIGHTS_FILE = "model.pt"
SKOPS_FILE = "model.skops"
NET_FORMAT = "digitlab-net"
SKOPS_FORMAT = "digitlab-skops"
FORMAT_VERSION = 1

# Types a skops file of ours may name beyond skops' own trusted defaults: listed one by one, never
# "trust everything". Our estimator classes and the pipelines' pixel-scaling function, and the two
# compiled scikit-learn classes that hold fitted trees (decision tree, forests) and boosted trees (HGB).
TRUSTED_TYPES: tuple[str, ...] = (
    "digitlab.models.classic.unit_pixels",
    "digitlab.models.classic.ValidationSearch",
    "digitlab.models.classic.CappedPCA",
    "digitlab.models.classic.HGBClassifier",
    "digitlab.models.numpy_mlp.NumpyMLPClassifier",
    "digitlab.models.numpy_mlp.MLP",
    "digitlab.models.numpy_mlp.Linear",
    "digitlab.models.numpy_mlp.ReLU",
    "digitlab.models.numpy_mlp.SoftmaxCrossEntropy",
    "digitlab.models.numpy_mlp.SGDMomentum",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


# ---------------------------------------------------------------------------------------------
# Small helpers: atomic writes, JSON that stays JSON
# ---------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays, tuples and paths made JSON types; NaN and inf become None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if callable(value):
        return f"<callable {getattr(value, '__qualname__', type(value).__name__)}>"
    return repr(value)


def _write_meta(path_dir: Path, meta: dict) -> None:
    text = json.dumps(_jsonable(meta), indent=2, allow_nan=False)
    atomic_write(path_dir / META_FILE, lambda p: p.write_text(text + "\n", encoding="utf-8"))


def read_meta(path_dir: str | Path) -> dict:
    """The ``model.json`` of a saved model folder (raises :class:`ModelError` when absent or unreadable)."""
    path = Path(path_dir) / META_FILE
    if not path.is_file():
        raise ModelError(
            f"{path}: no saved model here (expected {META_FILE} written by digitlab's save_model)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"{path}: unreadable model description ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") not in (NET_FORMAT, SKOPS_FORMAT):
        raise ModelError(
            f"{path}: not a digitlab model description (no 'format' of {NET_FORMAT!r} or {SKOPS_FORMAT!r})"
        )
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(
            f"{path}: format version {meta.get('format_version')} is newer than this digitlab reads ({FORMAT_VERSION})"
        )
    return meta


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("digitlab", "torch", "scikit-learn", "skops", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


# ---------------------------------------------------------------------------------------------
# Networks: state_dict + JSON
# ---------------------------------------------------------------------------------------------

NET_KEYS = ("net", "net_params", "in_shape", "n_classes")  # what save_net needs in meta to rebuild the net


def save_net(path_dir: str | Path, model, meta: dict) -> Path:
    """Save a network of :mod:`digitlab.models.nets` as ``model.pt`` (its ``state_dict``) and ``model.json``.

    Parameters
    ----------
    path_dir : folder to write (created if needed; files already there are replaced).
    model : the ``torch.nn.Module`` built by :func:`~digitlab.models.nets.build_net`.
    meta : at least ``net`` (family name), ``net_params`` (dict), ``in_shape`` ``(C, H, W)`` and
        ``n_classes``; anything else JSON-like is kept as is (classes, normalisation, training config).

    Returns
    -------
    Path : ``path_dir``.
    """
    import torch

    missing = [k for k in NET_KEYS if k not in meta]
    if missing:
        raise ModelError(f"save_net: meta lacks {missing}; it needs {list(NET_KEYS)} to rebuild the network")
    path_dir = Path(path_dir)
    path_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(path_dir / WEIGHTS_FILE, lambda p: torch.save(state, p))
    full = {
        "format": NET_FORMAT,
        "format_version": FORMAT_VERSION,
        "weights": WEIGHTS_FILE,
        **meta,
        "in_shape": [int(v) for v in meta["in_shape"]],
        "n_classes": int(meta["n_classes"]),
        "net_params": dict(meta["net_params"] or {}),
        "versions": _versions(),
    }
    _write_meta(path_dir, full)
    return path_dir


def load_net(path_dir: str | Path, device: str = "cpu"):
    """Rebuild a network saved by :func:`save_net`; returns ``(model, meta)`` with the model in eval mode.

    The weights are read with ``torch.load(weights_only=True)`` (tensors only, no code).
    """
    import torch

    from digitlab.models.nets import build_net

    path_dir = Path(path_dir)
    meta = read_meta(path_dir)
    if meta["format"] != NET_FORMAT:
        raise ModelError(f"{path_dir}: holds a {meta['format']!r} model, not a network; use load_model")
    missing = [k for k in NET_KEYS if k not in meta]
    if missing:
        raise ModelError(f"{path_dir / META_FILE}: lacks {missing}; cannot rebuild the network")
    model = build_net(meta["net"], tuple(meta["in_shape"]), int(meta["n_classes"]), **meta["net_params"])
    weights = path_dir / Path(str(meta.get("weights", WEIGHTS_FILE))).name  # a plain name inside the folder
    try:
        state = torch.load(weights, map_location=device, weights_only=True)
        model.load_state_dict(state)
    except FileNotFoundError:
        raise ModelError(f"{weights}: missing; the saved network has no weights") from None
    except Exception as exc:  # an unpickling refusal, a truncated file, mismatched shapes
        raise ModelError(
            f"{weights}: cannot load the weights ({type(exc).__name__}: {str(exc).strip().splitlines()[0]})"
        ) from None
    return model.to(device).eval(), meta


# ---------------------------------------------------------------------------------------------
# Classic models: skops
# ---------------------------------------------------------------------------------------------


def _untrusted(path: Path) -> list[str]:
    import skops.io as sio

    try:
        types = sio.get_untrusted_types(file=path)
    except Exception as exc:  # not a zip, no schema, bad JSON
        raise ModelError(
            f"{path}: not a readable skops file ({type(exc).__name__}: {str(exc).strip().splitlines()[0]})"
        ) from None
    return sorted(set(types))


def save_skops(path_dir: str | Path, estimator, meta: dict | None = None) -> Path:
    """Save a scikit-learn estimator as ``model.skops`` + ``model.json``; refuse one that would not load back."""
    import skops.io as sio

    path_dir = Path(path_dir)
    path_dir.mkdir(parents=True, exist_ok=True)
    path = path_dir / SKOPS_FILE
    atomic_write(path, lambda p: sio.dump(estimator, p))
    unknown = [t for t in _untrusted(path) if t not in TRUSTED_TYPES]
    if unknown:
        path.unlink()
        raise ModelError(
            f"cannot save {type(estimator).__name__}: it holds type(s) {unknown} that load_model would refuse "
            "(add them to digitlab.models.persist.TRUSTED_TYPES only if they are safe)"
        )
    full = {
        "format": SKOPS_FORMAT,
        "format_version": FORMAT_VERSION,
        "file": SKOPS_FILE,
        "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        **(meta or {}),
        "versions": _versions(),
    }
    _write_meta(path_dir, full)
    return path_dir


def load_skops(path: str | Path):
    """Load a skops file, trusting exactly :data:`TRUSTED_TYPES` beyond skops' defaults.

    Raises
    ------
    ModelError : one line naming the types of the file that are not trusted (a tampered or foreign
        file), or saying why the file cannot be read. Nothing in the file is built before the check.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: missing; the saved model has no skops file")
    untrusted = _untrusted(path)
    refused = [t for t in untrusted if t not in TRUSTED_TYPES]
    if refused:
        raise ModelError(
            f"{path}: refused to load untrusted type(s) {', '.join(refused)}; digitlab trusts only its own "
            "estimators and scikit-learn's (digitlab.models.persist.TRUSTED_TYPES)"
        )
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise ModelError(
            f"{path}: cannot load ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
        ) from None


# ---------------------------------------------------------------------------------------------
# One entry point for any model of a run
# ---------------------------------------------------------------------------------------------


__all__ = ["save_net", "load_net", "save_skops", "load_skops", "read_meta", "TRUSTED_TYPES"]
