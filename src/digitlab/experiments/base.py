"""Data in, results out: the Data every experiment takes, the result base class, shared plot pieces."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from digitlab.exceptions import ConfigError
from digitlab.plots import plain_log_ticks, single

# =============================================================================================
# Data in, results out
# =============================================================================================


@dataclass
class Data:
    """The images a study uses: training and test arrays, class names, indices into the given split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    train_index: np.ndarray
    test_index: np.ndarray
    name: str = "data"
    meta: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def as_data(data: Any, n_train: int = 0, n_test: int = 0, seed: int = 0) -> Data:
    """A :class:`Data` from a Dataset (anything with ``x_train``, ``y_train``, ``x_test``, ``y_test``),
    a :class:`Data`, or a tuple ``(x_train, y_train, x_test, y_test)``, cut to ``n_train`` / ``n_test``
    images by the study's subset rule (0 = all; otherwise an exact stratified subset drawn with ``seed``)."""
    from digitlab.data.subsets import subset_indices

    if hasattr(data, "x_train"):
        parts = (data.x_train, data.y_train, data.x_test, data.y_test)
        classes, name, meta = (
            getattr(data, "classes", None),
            getattr(data, "name", "data"),
            dict(getattr(data, "meta", {}) or {}),
        )
    elif isinstance(data, (tuple, list)) and len(data) == 4:
        parts, classes, name, meta = tuple(data), None, "data", {}
    else:
        raise ConfigError(
            f"data: got {type(data).__name__}; pass a Dataset (digitlab.data.load_dataset) or a tuple "
            "(x_train, y_train, x_test, y_test)"
        )
    x_tr, y_tr, x_te, y_te = parts
    y_tr, y_te = np.asarray(y_tr, dtype=np.int64), np.asarray(y_te, dtype=np.int64)
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise ConfigError(
            f"data: {len(x_tr)} training images with {len(y_tr)} labels, {len(x_te)} test images with "
            f"{len(y_te)} labels; pass one label per image"
        )
    if classes is None:
        classes = [str(c) for c in range(int(max(y_tr.max(initial=0), y_te.max(initial=0))) + 1)]
    base_tr = np.asarray(getattr(data, "train_index", np.arange(len(y_tr))))
    base_te = np.asarray(getattr(data, "test_index", np.arange(len(y_te))))
    tr, te = subset_indices(y_tr, n_train, seed), subset_indices(y_te, n_test, seed)
    return Data(
        np.asarray(x_tr)[tr],
        y_tr[tr],
        np.asarray(x_te)[te],
        y_te[te],
        list(classes),
        base_tr[tr],
        base_te[te],
        name,
        meta,
    )


class StudyResult:
    """What every study function returns: DataFrames as attributes, ``plot(ax=None) -> Figure``.

    :meth:`tables` lists the DataFrames by name; in Jupyter the result shows its main table.
    """

    _main = "summary"

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every DataFrame of the result, by attribute name."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if isinstance(getattr(self, f.name), pd.DataFrame)
        }

    def _repr_html_(self) -> str:
        return getattr(self, self._main)._repr_html_()

    def plot(self, ax=None):  # pragma: no cover - every result overrides it
        raise NotImplementedError


# =============================================================================================
# Shared plot pieces
# =============================================================================================


def plot_accuracy(
    models: Sequence[str], accuracy: Sequence[float], low: Sequence[float], high: Sequence[float], ax=None
):
    """Test error (%, log scale) per model with its confidence interval as error bars and the
    accuracy written beside each bar; models drawn bottom to top in the order given. Returns the Figure."""
    fig, ax = single(ax, (7, 0.35 * len(models) + 1.2))
    acc, lo, hi = (np.asarray(v, dtype=float) for v in (accuracy, low, high))
    err = np.vstack([acc - lo, hi - acc])
    ax.barh(list(models), 100 * (1 - acc), xerr=100 * err[::-1], color="tab:blue", alpha=0.8, capsize=3)
    ax.set_xscale("log")
    ax.set_xlabel("test error % (log scale), bars: bootstrap 95 % CI")
    for i, (a, hi_err) in enumerate(zip(acc, 100 * (1 - acc + err[0]))):
        ax.text(hi_err * 1.04, i, f"{100 * a:.2f} %", va="center", fontsize=8)
    ax.set_xlim(right=ax.get_xlim()[1] * 1.35)  # room for the labels
    plain_log_ticks(ax.xaxis)
    return fig


def model_specs(models: Sequence[str] | Mapping[str, Any]) -> list[tuple[str, str, dict]]:
    """``(label, zoo name, extra parameters)`` per entry: a name, ``(name, params)``, or ``{label: name |
    (name, params)}`` (a mapping lets one model appear twice, e.g. two penalties of logistic regression)."""
    from digitlab.models.zoo import check_models

    items = (
        list(models.items())
        if isinstance(models, Mapping)
        else [(None, m) for m in ([models] if isinstance(models, str) else models)]
    )
    specs = []
    for label, spec in items:
        name, params = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
        specs.append((label or name, name, params))
    check_models([s[1] for s in specs], "models")
    labels = [s[0] for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(
            f"models: {labels} has repeated names; pass a mapping {{label: (model, params)}} to compare "
            "one model under several settings"
        )
    return specs


def zoo_settings(settings: Any):
    from digitlab.models.zoo import ZooSettings

    if settings is None or isinstance(settings, ZooSettings):
        return settings or ZooSettings()
    if isinstance(settings, Mapping):
        known = {f.name for f in dataclasses.fields(ZooSettings)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"settings: unknown key(s) {unknown}; use some of {sorted(known)}")
        return ZooSettings(**settings)
    return ZooSettings.from_config(settings)
