"""Accuracy against training-set size: models x sizes x seeds, with a saturating power law."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from digitlab.experiments.base import StudyResult, as_data, model_specs, zoo_settings
from digitlab.plots import single

# =============================================================================================
# Learning curve
# =============================================================================================


def _lc_point(point: dict, seed: int, threads: int, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
              zoo: Any, device: str, params: dict) -> dict[str, Any]:
    """One job: ``point["model"]`` on ``point["n_train"]`` training images drawn with ``seed``."""
    from sklearn.exceptions import ConvergenceWarning

    from digitlab.models.zoo import run_model
    from digitlab.data.subsets import subset_indices

    idx = subset_indices(y_train, point["n_train"], seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        run = run_model(point["name"], x_train[idx], y_train[idx], x_test, zoo, seed=seed, n_jobs=threads, device=device,
                        threads=threads, **params.get(point["model"], {}))
    tr = getattr(run.model, "train_result_", None)
    return {"y_pred": run.y_pred, "fit_s": run.fit_s, "n_fit": run.n_train,
            "epochs": getattr(tr, "epochs_run", None) if tr else None, "steps": getattr(tr, "steps", None) if tr else None}


@dataclass
class LearningCurve(StudyResult):
    """Accuracy against training-set size.

    ``runs`` (one row per model x size x seed: accuracy, fit seconds, the CNN's epochs and optimiser
    steps), ``summary`` (mean, SD, min, max over seeds per model and size), ``fits`` (the saturating
    power law ``error = a (n/1000)^-b + c`` per model: parameters with SDs, the error floor as an
    accuracy ceiling, and the size beyond which ``per`` more images gain less than ``gain``, with its
    95 % interval). ``power_laws`` holds the :class:`~digitlab.learning_curve.PowerLawFit` objects.
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    fits: pd.DataFrame
    power_laws: dict[str, Any]
    gain: float
    per: float

    def plot(self, ax=None):
        """Accuracy against training images (log x) per model: seed spread, fitted curve and its band,
        the adequate size dotted. Returns the Figure."""
        from digitlab.learning_curve import plot_learning_curve

        fig, ax = single(ax, (6, 4))
        for i, (m, g) in enumerate(self.runs.groupby("model", sort=False)):
            plot_learning_curve(g["n_train"], g["accuracy"], self.power_laws.get(m), ax=ax, label=m, color=f"C{i}",
                                gain=self.gain, per=self.per)
        ax.legend(fontsize=8)
        return fig


def learning_curve(data: Any, models: Sequence[str] | Mapping[str, Any], sizes: Sequence[int], *, seeds: int | Sequence[int] = 3,
                   n_test: int = 0, seed: int = 0, settings: Any = None, n_jobs: int = 1, device: str = "auto",
                   fit: bool = True, gain: float = 0.001, per: float = 1000.0, progress: bool = False,
                   backend: str = "loky") -> LearningCurve:
    """Every model at every training-set size with several seeds, scored on the same test images.

    ``seeds``: a count (``seed``, ``seed + 1``, ...) or a list; each seed draws its own stratified
    training subset (and the model's randomness). ``models`` as in :func:`compare_models`. The CNN
    trains with its recipe's step budget (``min_steps``), so small sets get enough optimiser steps;
    ``runs`` says how many each had. Sizes at least as large as the training set use all of it.
    Jobs run through :func:`digitlab.grid.run_grid` (``n_jobs`` in parallel, largest first).
    ``fit``: fit the power law (needs three sizes or more), read with ``gain`` and ``per``.
    """
    from digitlab.grid import run_grid
    from digitlab.learning_curve import (
        adequate_size,
        adequate_size_interval,
        fit_power_law,
    )

    specs = model_specs(models)
    seeds = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    d = as_data(data, 0, n_test, seed)
    zoo = zoo_settings(settings)
    sizes = sorted({min(int(n), len(d.y_train)) if n > 0 else len(d.y_train) for n in sizes}, reverse=True)
    points = [{"model": label, "name": name, "n_train": n} for n in sizes for label, name, _ in specs]
    params = {label: p for label, _, p in specs}
    rows = run_grid(_lc_point, points, seeds, args=(d.x_train, d.y_train, d.x_test, zoo, device, params), n_jobs=n_jobs,
                    backend=backend, device=device, progress=progress, description="learning curve")
    runs = pd.DataFrame([{"model": r["model"], "n_train": r["n_fit"], "seed": r["seed"], "accuracy": float(np.mean(r["y_pred"] == d.y_test)),
                          "fit_s": r["fit_s"], "epochs": r["epochs"], "steps": r["steps"]} for r in rows])
    order = {label: i for i, (label, _, _) in enumerate(specs)}
    runs = runs.sort_values(["model", "n_train", "seed"], key=lambda c: c.map(order) if c.name == "model" else c).reset_index(drop=True)
    summary = (runs.groupby(["model", "n_train"], sort=False)
               .agg(accuracy_mean=("accuracy", "mean"), accuracy_sd=("accuracy", "std"), accuracy_min=("accuracy", "min"),
                    accuracy_max=("accuracy", "max"), n_seeds=("accuracy", "size"), fit_s_mean=("fit_s", "mean"))
               .reset_index())
    summary["accuracy_sd"] = summary["accuracy_sd"].fillna(0.0)
    laws, fit_rows = {}, []
    for m, g in runs.groupby("model", sort=False):
        law = fit_power_law(g["n_train"], 1 - g["accuracy"]) if fit else None
        if law is None:
            continue
        laws[m] = law
        lo, hi = adequate_size_interval(law, gain, per, seed=seed)
        fit_rows.append({"model": m, "a": law.a, "b": law.b, "c": law.c, "a_sd": law.a_sd, "b_sd": law.b_sd, "c_sd": law.c_sd,
                         "ceiling_accuracy": 1 - law.c, "adequate_size": adequate_size(law, gain, per), "adequate_low": lo,
                         "adequate_high": hi, "rmse": law.rmse, "at_bound": ", ".join(law.at_bound)})
    fits = pd.DataFrame(fit_rows, columns=["model", "a", "b", "c", "a_sd", "b_sd", "c_sd", "ceiling_accuracy", "adequate_size",
                                           "adequate_low", "adequate_high", "rmse", "at_bound"]).set_index("model")
    return LearningCurve(runs, summary, fits, laws, gain, per)
