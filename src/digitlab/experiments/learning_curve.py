"""Accuracy against training-set size: the first look, the growth over sizes and seeds, the fitted
saturating power law, the adequate size and its interval, and the training (convergence) curves.

The curve fitted is a saturating power law in the number of training images ``n``::

    error(n) = a * (n / n_ref) ** -b + c

``c`` is the error floor the model tends to with unlimited data, ``b`` how fast it gets there and
``a`` the error above the floor at ``n_ref`` images (1,000 by default; with ``n_ref = 1`` this is
the textbook ``a * n**-b + c``, whose ``a`` is :attr:`PowerLawFit.a_literal`). Measuring ``n`` in
units of ``n_ref`` keeps the three parameters of similar size, which the least-squares fit needs.

:func:`fit_power_law` fits it (``scipy.optimize.curve_fit`` with bounds, several starts) and keeps
the parameters' covariance; :func:`adequate_size` reads from a fit the size beyond which another
``per`` images lower the error by less than ``gain`` (0.001 = 0.1 accuracy points per 1,000
images); :func:`adequate_size_interval` and :func:`curve_band` carry the parameters' uncertainty
through by drawing parameters from the fit's covariance::

    fit = fit_power_law(sizes, 1 - accuracy)           # one point per (size, seed)
    fit.c, fit.c_sd                                    # the error floor and its standard deviation
    adequate_size(fit, gain=0.001, per=1000)           # images
    adequate_size_interval(fit, 0.001, 1000)           # (low, high), 95 %

The experiments a notebook and the ``datasize`` task both call: :func:`learning_curve` (every model
at every size with several seeds, the fits, milestones and per-class gains) and :func:`first_look`
(every model on exactly k images per class, with its training curve)::

    lc = learning_curve(ds, ["logreg", "knn"], [1000, 2000, 5000], seeds=2)
    lc.summary, lc.fits, lc.plot()
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from digitlab import metrics as M
from digitlab.experiments.base import StudyResult, as_data, model_specs, zoo_settings
from digitlab.names import model_name
from digitlab.plots import panels, plain_log_ticks, single

B_BOUNDS = (
    0.01,
    4.0,
)  # the exponent b is kept in this range (outside it the "power law" is a step or a flat line)


# =============================================================================================
# The curve and its fit
# =============================================================================================


# the columns of one trained (model, size, seed) run, as the runs table and growth.csv list them
RUN_COLUMNS = (
    "model",
    "n_train",
    "seed",
    "source",
    "accuracy",
    "fit_s",
    "predict_s",
    "epochs",
    "steps",
    "iterations",
    "wall_seconds",
)


def power_law(n: np.ndarray | float, a: float, b: float, c: float, n_ref: float = 1000.0) -> np.ndarray:
    """``a * (n / n_ref) ** -b + c``, element-wise."""
    return a * (np.asarray(n, dtype=float) / n_ref) ** -b + c


@dataclass
class PowerLawFit:
    """A fitted ``error(n) = a * (n / n_ref) ** -b + c`` with the parameters' uncertainty.

    ``cov`` is the 3x3 covariance of ``(a, b, c)`` (NaN where the data cannot determine it, e.g.
    three points for three parameters); ``*_sd`` are the square roots of its diagonal.
    ``at_bound`` names parameters that ended on a bound of the fit (their SD then means little).
    """

    a: float
    b: float
    c: float
    a_sd: float
    b_sd: float
    c_sd: float
    cov: np.ndarray = field(repr=False)
    n_ref: float = 1000.0
    rmse: float = math.nan  # root-mean-square residual of the fitted points (error units)
    n_points: int = 0  # points fitted (sizes x seeds)
    n_sizes: int = 0  # distinct sizes among them
    size_range: tuple[float, float] = (math.nan, math.nan)  # smallest and largest size fitted
    at_bound: tuple[str, ...] = ()

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        """Fitted error at ``n`` training images."""
        return power_law(n, self.a, self.b, self.c, self.n_ref)

    def gain(self, n: np.ndarray | float, per: float = 1000.0) -> np.ndarray:
        """Error reduction (accuracy gain, as a fraction) that ``per`` more images buy at ``n`` images."""
        n = np.asarray(n, dtype=float)
        return self.predict(n) - self.predict(n + per)

    @property
    def a_literal(self) -> float:
        """``a`` of the textbook form ``a * n ** -b + c`` (``n`` in images)."""
        return self.a * self.n_ref**self.b

    @property
    def has_covariance(self) -> bool:
        return bool(np.all(np.isfinite(self.cov)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable parameters, SDs and fit diagnostics."""

        def num(v: float) -> float | None:
            return None if not math.isfinite(v) else float(v)

        return {
            "a": num(self.a),
            "b": num(self.b),
            "c": num(self.c),
            "a_sd": num(self.a_sd),
            "b_sd": num(self.b_sd),
            "c_sd": num(self.c_sd),
            "n_ref": self.n_ref,
            "a_literal": num(self.a_literal),
            "rmse": num(self.rmse),
            "n_points": self.n_points,
            "n_sizes": self.n_sizes,
            "size_range": [num(v) for v in self.size_range],
            "at_bound": list(self.at_bound),
        }


def fit_power_law(
    n, error, *, sigma=None, n_ref: float = 1000.0, b_bounds: tuple[float, float] = B_BOUNDS
) -> PowerLawFit | None:
    """Least-squares fit of ``error = a * (n / n_ref) ** -b + c`` to measured points.

    Parameters
    ----------
    n : training-set sizes, one per point (repeat a size for every seed measured at it).
    error : test error (1 - accuracy, a fraction) of each point.
    sigma : optional standard deviation of each point's error (weights; then absolute).
    n_ref : the size the parameter ``a`` refers to.
    b_bounds : allowed range of the exponent ``b``; ``a >= 0`` and ``0 <= c <= 1`` always.

    Returns
    -------
    The :class:`PowerLawFit` with the smallest squared error over a few starting points, or ``None``
    when fewer than three distinct sizes are given (three parameters need three sizes). With
    exactly as many points as parameters the covariance is NaN (nothing is left to estimate it).
    """
    from scipy.optimize import OptimizeWarning, curve_fit

    n, e = np.asarray(n, dtype=float).ravel(), np.asarray(error, dtype=float).ravel()
    keep = np.isfinite(n) & np.isfinite(e) & (n > 0)
    s = None if sigma is None else np.maximum(np.asarray(sigma, dtype=float).ravel()[keep], 1e-12)
    n, e = n[keep], e[keep]
    if len(np.unique(n)) < 3:
        return None
    lo, hi = [0.0, b_bounds[0], 0.0], [np.inf, b_bounds[1], 1.0]
    small = e[n == n.min()].mean()
    best = None
    for b0 in (0.3, 0.7, 1.5):
        for c_frac in (0.0, 0.5, 0.9):
            c0 = c_frac * e.min()
            p0 = [max(small - c0, 1e-6), b0, c0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                try:
                    popt, pcov = curve_fit(
                        lambda x, a, b, c: power_law(x, a, b, c, n_ref),
                        n,
                        e,
                        p0=p0,
                        sigma=s,
                        absolute_sigma=s is not None,
                        bounds=(lo, hi),
                        maxfev=20000,
                    )
                except RuntimeError:  # no convergence from this start
                    continue
            sse = float(np.sum(((power_law(n, *popt, n_ref) - e) / (1.0 if s is None else s)) ** 2))
            if best is None or sse < best[0] - 1e-15:
                best = (sse, popt, pcov)
    if best is None:
        return None
    _, popt, pcov = best
    pcov = np.asarray(pcov, dtype=float)
    if not np.all(np.isfinite(pcov)) or len(e) <= 3:
        pcov = np.full((3, 3), np.nan)
    sd = np.sqrt(np.clip(np.diag(pcov), 0, None))
    names = ("a", "b", "c")
    at_bound = tuple(
        nm
        for nm, v, low, h in zip(names, popt, lo, hi)
        if abs(v - low) <= 1e-6 * max(1.0, abs(low))
        or (np.isfinite(h) and abs(v - h) <= 1e-6 * max(1.0, abs(h)))
    )
    rmse = float(np.sqrt(np.mean((power_law(n, *popt, n_ref) - e) ** 2)))
    return PowerLawFit(
        float(popt[0]),
        float(popt[1]),
        float(popt[2]),
        float(sd[0]),
        float(sd[1]),
        float(sd[2]),
        pcov,
        n_ref,
        rmse,
        int(len(e)),
        int(len(np.unique(n))),
        (float(n.min()), float(n.max())),
        at_bound,
    )


# =============================================================================================
# Reading the fit: where more data stops paying
# =============================================================================================


def _adequate(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, n_ref: float, gain: float, per: float, n_max: float
) -> np.ndarray:
    """Vectorised :func:`adequate_size` for arrays of parameters (bisection on log n; the gain of
    ``per`` more images falls monotonically with n for a, b > 0)."""
    a, b = np.asarray(a, float), np.asarray(b, float)

    def g(n):
        return a * ((n / n_ref) ** -b - ((n + per) / n_ref) ** -b)

    lo, hi = np.zeros_like(a), np.full_like(a, math.log(n_max))
    out = np.full_like(a, np.nan)
    out[g(np.ones_like(a)) <= gain] = 1.0
    out[g(np.full_like(a, n_max)) > gain] = np.inf
    todo = np.isnan(out)
    for _ in range(100):
        mid = (lo + hi) / 2
        above = g(np.exp(mid)) > gain
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    out[todo] = np.ceil(np.exp(hi[todo]) - 1e-9)
    return out


def adequate_size(fit: PowerLawFit, gain: float = 0.001, per: float = 1000.0, n_max: float = 1e12) -> float:
    """The smallest training-set size ``n`` at which ``per`` more images lower the fitted error by at
    most ``gain`` (a fraction: 0.001 = 0.1 accuracy points), i.e. ``error(n) - error(n + per) <= gain``.

    Beyond it, by the fit, more data is not worth collecting. ``inf`` when even ``n_max`` images are
    not enough (a nearly flat exponent); 1 when the first images already gain less.
    """
    if gain <= 0 or per <= 0:
        raise ValueError(f"adequate_size: gain ({gain}) and per ({per}) must be positive")
    return float(
        _adequate(np.array([fit.a]), np.array([fit.b]), np.array([fit.c]), fit.n_ref, gain, per, n_max)[0]
    )


def sample_parameters(
    fit: PowerLawFit, n_draws: int = 2000, seed: int = 0, b_bounds: tuple[float, float] = B_BOUNDS
) -> np.ndarray | None:
    """``(n, 3)`` parameter draws from the fit's normal approximation truncated to the fit's bounds
    (draws outside them are rejected, so a parameter at a bound does not pile up draws there), or None
    when the fit has no covariance or the bounds reject almost every draw."""
    if not fit.has_covariance:
        return None
    rng = np.random.default_rng(seed)
    cov = (fit.cov + fit.cov.T) / 2
    draws = rng.multivariate_normal(
        [fit.a, fit.b, fit.c], cov, size=4 * n_draws, method="eigh", check_valid="ignore"
    )
    ok = (
        (draws[:, 0] >= 0)
        & (draws[:, 1] >= b_bounds[0])
        & (draws[:, 1] <= b_bounds[1])
        & (draws[:, 2] >= 0)
        & (draws[:, 2] <= 1)
    )
    draws = draws[ok][:n_draws]
    return draws if len(draws) >= max(20, n_draws // 20) else None


def adequate_size_interval(
    fit: PowerLawFit,
    gain: float = 0.001,
    per: float = 1000.0,
    level: float = 0.95,
    n_draws: int = 2000,
    seed: int = 0,
    n_max: float = 1e12,
) -> tuple[float, float]:
    """A ``level`` interval of :func:`adequate_size` over parameter draws from the fit's covariance
    (``(nan, nan)`` without a covariance; an end may be ``inf``)."""
    draws = sample_parameters(fit, n_draws, seed)
    if draws is None:
        return (math.nan, math.nan)
    sizes = _adequate(draws[:, 0], draws[:, 1], draws[:, 2], fit.n_ref, gain, per, n_max)
    q = (1 - level) / 2
    lo, hi = np.quantile(sizes, [q, 1 - q], method="inverted_cdf")
    return (float(lo), float(hi))


def curve_band(
    fit: PowerLawFit, n: np.ndarray, level: float = 0.95, n_draws: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray] | None:
    """Pointwise ``level`` band of the fitted error at sizes ``n`` (None without a covariance)."""
    draws = sample_parameters(fit, n_draws, seed)
    if draws is None:
        return None
    curves = power_law(np.asarray(n, float)[None, :], draws[:, :1], draws[:, 1:2], draws[:, 2:3], fit.n_ref)
    q = (1 - level) / 2
    return np.quantile(curves, q, axis=0), np.quantile(curves, 1 - q, axis=0)


def scaling_exponent(n, seconds) -> float:
    """Slope of log(seconds) against log(n): fit time grows like ``n ** slope`` (NaN with < 2 sizes)."""
    n, t = np.asarray(n, float), np.asarray(seconds, float)
    ok = (n > 0) & (t > 0) & np.isfinite(t)
    if len(np.unique(n[ok])) < 2:
        return math.nan
    return float(np.polyfit(np.log(n[ok]), np.log(t[ok]), 1)[0])


# =============================================================================================
# Training curves: accuracy and loss against iterations, for the zoo's iterative models
# =============================================================================================


@dataclass
class TrainingCurve:
    """How one model's accuracy (and loss) moved during training.

    ``x`` counts ``unit`` (epoch, iteration, boosting round, tree); ``eval_*`` are measured on
    ``eval_name`` images: the CNN's own validation split, else the evaluation images given.
    """

    model: str
    unit: str
    x: list[int]
    train_acc: list[float]
    eval_acc: list[float]
    eval_name: str
    train_loss: list[float] | None = None
    eval_loss: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("model", "unit", "x", "train_acc", "eval_acc", "eval_name", "train_loss", "eval_loss")
        }


ITERATIVE = (
    "cnn",
    "numpy_mlp",
    "logreg",
    "hgb",
    "random_forest",
    "extra_trees",
)  # models training_curve follows


def training_curve(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    settings: Any = None,
    *,
    seed: int = 0,
    n_jobs: int = 1,
    device: str = "cpu",
    run: Any = None,
    **extra: Any,
) -> TrainingCurve | None:
    """Accuracy (and loss) per training iteration of zoo model ``name`` (None for a model that has no
    iterations to follow; see :data:`ITERATIVE`). Labels must be ``0..k-1``.

    * ``cnn``: per epoch, training and validation loss and accuracy from the network's own history
      (validation = the images it holds out; ``run`` may pass an already fitted
      :class:`~digitlab.models.zoo.ModelRun`).
    * ``numpy_mlp``: per epoch. Training with ``e`` epochs repeats the first ``e`` epochs of a longer
      run exactly (same seed, shuffles and step schedule), so each point is the model after ``e`` epochs.
    * ``logreg``: per L-BFGS iteration cap (fits with ``max_iter`` = 1, 2, 5, ...).
    * ``hgb``: per boosting round (staged predictions of one fit).
    * ``random_forest`` / ``extra_trees``: per number of trees averaged (the first ``t`` trees of one fit).

    Every fit goes through :func:`digitlab.models.zoo.run_model` with ``settings`` and ``extra``.
    """
    import inspect

    from sklearn.exceptions import ConvergenceWarning

    from digitlab.models.classic import CLASSIC_MODELS
    from digitlab.models.zoo import ZooSettings, model_params, run_model

    s = settings or ZooSettings()
    y_train, y_eval = np.asarray(y_train), np.asarray(y_eval)

    def fit(**over):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return run_model(
                name,
                x_train,
                y_train,
                x_eval,
                s,
                seed=seed,
                n_jobs=n_jobs,
                device=device,
                **{**extra, **over},
            )

    if name == "cnn":
        hist = (run or fit()).model.history_
        return TrainingCurve(
            name,
            "epoch",
            [int(h["epoch"]) for h in hist],
            [float(h["train_acc"]) for h in hist],
            [float(h["val_acc"]) for h in hist],
            "validation",
            [float(h["train_loss"]) for h in hist],
            [float(h["val_loss"]) for h in hist],
        )
    if name in ("numpy_mlp", "logreg"):
        if name == "numpy_mlp":
            last = int(extra.get("epochs") or model_params(name, s)["epochs"])
            xs = list(range(1, last + 1))
        else:
            last = int(
                extra.get("max_iter")
                or inspect.signature(CLASSIC_MODELS["logreg"].build).parameters["max_iter"].default
            )
            xs = [k for k in (1, 2, 3, 5, 10, 20, 50, 100, 200, 500) if k < last] + [last]
        key = "epochs" if name == "numpy_mlp" else "max_iter"
        curve = TrainingCurve(
            name, "epoch" if name == "numpy_mlp" else "iteration", [], [], [], "test", [], []
        )
        for k in xs:
            r = fit(**{key: k})
            done = (
                name == "logreg" and int(np.max(r.model[-1].n_iter_)) < k
            )  # converged: later caps change nothing
            p_tr = r.model.predict_proba(x_train)
            curve.x.append(int(k))
            curve.train_acc.append(float(np.mean(p_tr.argmax(1) == y_train)))
            curve.eval_acc.append(float(np.mean(r.y_pred == y_eval)))
            curve.train_loss.append(M.log_loss(y_train, p_tr))
            curve.eval_loss.append(M.log_loss(y_eval, r.proba))
            if done:
                break
        return curve
    if name in ("hgb", "random_forest", "extra_trees"):
        r = run or fit()
        front, clf = r.model[:-1], r.model[-1]
        z_tr, z_ev = front.transform(x_train), front.transform(x_eval)
        if name == "hgb":
            stages_tr, stages_ev = clf.staged_predict_proba(z_tr), clf.staged_predict_proba(z_ev)
            unit = "boosting round"
        else:
            stages_tr, stages_ev = _cumulative_trees(clf, z_tr), _cumulative_trees(clf, z_ev)
            unit = "tree"
        curve = TrainingCurve(name, unit, [], [], [], "test", [], [])
        for i, (p_tr, p_ev) in enumerate(zip(stages_tr, stages_ev), start=1):
            curve.x.append(i)
            curve.train_acc.append(float(np.mean(p_tr.argmax(1) == y_train)))
            curve.eval_acc.append(float(np.mean(p_ev.argmax(1) == y_eval)))
            curve.train_loss.append(M.log_loss(y_train, p_tr))
            curve.eval_loss.append(M.log_loss(y_eval, p_ev))
        return curve
    return None


def _cumulative_trees(forest: Any, z: np.ndarray):
    """Class probabilities of the average of the first 1, 2, ... trees of a fitted forest."""
    total = np.zeros((len(z), len(forest.classes_)))
    for t, tree in enumerate(forest.estimators_, start=1):
        total += tree.predict_proba(z)
        yield total / t


# =============================================================================================
# Plotting
# =============================================================================================


def plot_learning_curve(
    n,
    accuracy,
    fit: PowerLawFit | None = None,
    *,
    ax=None,
    label: str | None = None,
    color=None,
    gain: float | None = None,
    per: float = 1000.0,
    band: bool = True,
    n_max: float | None = None,
):
    """Accuracy (%) against training-set size (log x): the mean and min-max spread over seeds per
    size, the fitted curve (1 - error) over them with its 95 % band, and the adequate size (dotted)
    when ``gain`` is given. ``n``/``accuracy`` are one value per (size, seed). Returns the Figure."""
    _, ax = single(ax, (5, 3.5))
    n, acc = np.asarray(n, float), np.asarray(accuracy, float)
    sizes = np.unique(n)
    mean = np.array([acc[n == s].mean() for s in sizes])
    lo, hi = np.array([acc[n == s].min() for s in sizes]), np.array([acc[n == s].max() for s in sizes])
    line = ax.errorbar(
        sizes,
        100 * mean,
        yerr=100 * np.vstack([mean - lo, hi - mean]),
        fmt="o",
        ms=3.5,
        capsize=2,
        color=color,
        label=label,
        zorder=3,
    )
    color = line[0].get_color()
    if fit is not None:
        grid = np.geomspace(sizes.min(), max(sizes.max(), n_max or 0), 200)
        ax.plot(grid, 100 * (1 - fit.predict(grid)), "-", color=color, lw=1.2, alpha=0.9)
        b = curve_band(fit, grid) if band else None
        if b is not None:
            ax.fill_between(grid, 100 * (1 - b[1]), 100 * (1 - b[0]), color=color, alpha=0.15, lw=0)
        if gain:
            size = adequate_size(fit, gain, per)
            if math.isfinite(size) and size <= grid.max():
                ax.axvline(size, color=color, ls=":", lw=1)
    pad = max(
        0.3, 0.15 * 100 * (hi.max() - lo.min())
    )  # the band may be wide where the fit is loose: frame the data
    ax.set_ylim(100 * lo.min() - pad, min(100.5, 100 * hi.max() + pad))
    ax.set_xscale("log")
    size_ticks(ax.xaxis)
    ax.set(xlabel="training images (log scale)", ylabel="test accuracy %")
    return ax.figure


def size_ticks(axis) -> None:
    """Log-axis ticks at 1-2-5 steps labelled as plain sizes ("500", "2k", "60k") instead of 2x10^3."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = sorted(axis.get_view_interval())
    ticks = [m * 10.0**e for e in range(0, 8) for m in (1, 2, 5) if lo <= m * 10.0**e <= hi]
    if len(ticks) < 2:
        ticks = sorted(set(ticks) | {lo, hi})
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"))


# =============================================================================================
# One training run: its budget, the grid job of the growth
# =============================================================================================

CNN = "cnn"


def budget(run: Any) -> dict[str, Any]:
    """The training budget a fitted :class:`~digitlab.models.zoo.ModelRun` had: epochs and optimiser
    steps for networks, rounds or iterations for iterative classic models (None where a model has none)."""
    model = run.model
    out: dict[str, Any] = {"epochs": None, "steps": None, "iterations": None}
    if run.name == CNN:
        tr = model.train_result_
        out["epochs"] = int(getattr(tr, "epochs_run", 0) or len(tr.history))
        out["steps"] = int(getattr(tr, "steps", 0)) or None
        return out
    clf = model[-1] if hasattr(model, "steps") else model
    clf = getattr(clf, "best_estimator_", clf)
    if run.name == "numpy_mlp":
        out["epochs"] = len(clf.loss_curve_)
        out["steps"] = out["epochs"] * math.ceil(run.n_train / clf.batch_size)
    elif hasattr(clf, "n_iter_"):
        out["iterations"] = int(np.max(clf.n_iter_))
    return out


def budget_text(model: str, b: dict) -> str:
    """A run's training budget as a table cell ("6 epochs, 60 steps"; "" for models without one)."""
    if b.get("steps") and b.get("epochs"):
        return f"{b['epochs']} epochs, {b['steps']} steps"
    if b.get("epochs"):
        return f"{b['epochs']} epochs"
    if b.get("iterations"):
        return f"{b['iterations']} {'rounds' if model == 'hgb' else 'iterations'}"
    return ""


def planned_cnn_budget(zoo: Any, extra: dict, n_train: int) -> dict[str, Any]:
    """The epochs and steps the zoo's CNN is set up for on ``n_train`` images (for runs made elsewhere)."""
    from digitlab.models.zoo import build_model
    from digitlab.train import planned_epochs

    tc = build_model(CNN, zoo, **extra)._config()
    n_fit = n_train - int(round(n_train * tc.val_fraction))
    epochs = planned_epochs(tc, n_fit)
    return {"epochs": epochs, "steps": epochs * math.ceil(n_fit / tc.batch_size), "iterations": None}


def fit_point(
    point: dict,
    seed: int,
    threads: int,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    zoo: Any,
    device: str,
    params: dict,
) -> dict[str, Any]:
    """One grid job: zoo model ``point["name"]`` on ``point["n_train"]`` images drawn with ``seed`` (the
    shared subset rule), predicting the test images; ``params[point["model"]]`` are its extra settings."""
    from sklearn.exceptions import ConvergenceWarning

    from digitlab.data.subsets import subset_indices
    from digitlab.models.zoo import run_model

    idx = subset_indices(y_train, point["n_train"], seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the iterations a model ran are recorded instead
        run = run_model(
            point["name"],
            x_train[idx],
            y_train[idx],
            x_test,
            zoo,
            seed=seed,
            n_jobs=threads,
            device=device,
            threads=threads,
            **params.get(point["model"], {}),
        )
    return {
        "y_pred": run.y_pred.astype(np.int16),
        "fit_s": run.fit_s,
        "predict_s": run.predict_s,
        "source": "trained",
        **budget(run),
    }


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def _size(v: float) -> int | str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return "beyond 1e12" if math.isinf(v) else int(v)


# =============================================================================================
# First look: k images per class, every model, how its training converged
# =============================================================================================


def first_look_indices(
    y_train: np.ndarray, y_test: np.ndarray, per_class: int, test_per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Exactly ``per_class`` training and ``test_per_class`` test images per class (fewer, with a
    note, when the smallest class has fewer)."""
    from digitlab.data.subsets import stratified_subset

    k_tr = min(per_class, int(np.bincount(y_train).min()))
    k_te = min(test_per_class, int(np.bincount(y_test).min()))
    notes = []
    if (k_tr, k_te) != (per_class, test_per_class):
        notes.append(
            f"The first look asks for {per_class} training and {test_per_class} test "
            f"images per class; the smallest class allows {k_tr} and {k_te}, which are used."
        )
    return (
        stratified_subset(y_train, per_class=k_tr, seed=seed),
        stratified_subset(y_test, per_class=k_te, seed=seed),
        notes,
    )


@dataclass
class FirstLook(StudyResult):
    """Every model trained on exactly ``per_class`` images per class.

    ``scores``: one row per model (training and test images, accuracy, fit seconds, budget);
    ``convergence``: per iterative model where its held-out accuracy peaked and came within 0.5
    points of the peak, and its final accuracies and cross-entropies; ``curves``: the
    :class:`TrainingCurve` of each iterative model as a dict.
    """

    scores: pd.DataFrame
    convergence: pd.DataFrame
    curves: dict[str, dict]
    notes: list[str]
    rows: list[dict] = field(repr=False, default_factory=list)
    convergence_rows: list[dict] = field(repr=False, default_factory=list)
    _main = "scores"

    def plot(self, ax=None):
        """Test accuracy per model with its binomial 95 % interval. Returns the Figure."""
        rows = sorted(self.rows, key=lambda r: r["accuracy"])
        fig, ax = single(ax, (6.5, 0.32 * len(rows) + 1.2))
        acc = np.array([r["accuracy"] for r in rows])
        n_te = rows[0]["n_test"]
        se = np.sqrt(acc * (1 - acc) / n_te)
        ax.barh(
            [model_name(r["model"]) for r in rows],
            100 * acc,
            xerr=196 * se,
            color="tab:blue",
            alpha=0.8,
            capsize=3,
        )
        for i, a in enumerate(acc):
            ax.text(100 * a + 0.3, i, f"{100 * a:.1f} %", va="center", fontsize=8)
        ax.set(
            xlabel=f"test accuracy % on {n_te} images (bars: binomial 95 % interval)",
            xlim=(max(0, 100 * acc.min() - 15), 103),
            title=f"First look: {rows[0]['n_train']:,} training images",
        )
        return fig

    def plot_convergence(self, ax=None):
        """Per iterative model: training and held-out accuracy (solid) and cross-entropy (dashed, log)
        per epoch, iteration, boosting round or tree. Returns the Figure."""
        names = list(self.curves)
        cols = min(3, len(names))
        nrow = math.ceil(len(names) / cols)
        fig, axes = panels(ax, nrow, cols, (4.2 * cols, 3.1 * nrow), layout="constrained")
        for ax, m in zip(axes.ravel(), names):
            c = self.curves[m]
            ax.plot(c["x"], 100 * np.array(c["train_acc"]), "-", color="tab:blue", label="train accuracy")
            ax.plot(
                c["x"],
                100 * np.array(c["eval_acc"]),
                "-",
                color="tab:orange",
                label=f"{c['eval_name']} accuracy",
            )
            ax.set(
                xlabel=c["unit"] + ("s" if not c["unit"].endswith("s") else ""),
                ylabel="accuracy %",
                title=model_name(m),
            )
            if c["unit"] in ("iteration", "tree") or len(c["x"]) > 60:
                ax.set_xscale("log")
            handles = ax.get_lines()
            if c.get("train_loss"):
                ax2 = ax.twinx()
                ax2.plot(c["x"], c["train_loss"], "--", color="tab:blue", alpha=0.6, label="train loss")
                ax2.plot(
                    c["x"],
                    c["eval_loss"],
                    "--",
                    color="tab:orange",
                    alpha=0.6,
                    label=f"{c['eval_name']} loss",
                )
                ax2.set_ylabel("cross-entropy (dashed, log)")
                ax2.set_yscale("log")
                handles = [*handles, *ax2.get_lines()]
            ax.legend(handles=handles, fontsize=6.5, loc="center right")
        for ax in axes.ravel()[len(names) :]:
            ax.axis("off")
        return fig


def _convergence_rows(curves: dict[str, dict]) -> list[dict]:
    out = []
    for m, c in curves.items():
        ev, tr = np.array(c["eval_acc"]), np.array(c["train_acc"])
        best, near = int(np.argmax(ev)), int(np.argmax(ev >= ev.max() - 0.005))
        out.append(
            {
                "model": m,
                "unit": c["unit"],
                "held_out": c["eval_name"],
                "run": c["x"][-1],
                "best_at": c["x"][best],
                "best_acc": _r(ev[best]),
                "within_half_point_at": c["x"][near],
                "final_train_acc": _r(tr[-1]),
                "final_held_out_acc": _r(ev[-1]),
                "final_train_loss": _r((c.get("train_loss") or [math.nan])[-1]),
                "final_held_out_loss": _r((c.get("eval_loss") or [math.nan])[-1]),
            }
        )
    return out


def first_look(
    data: Any,
    models: Sequence[str] | Mapping[str, Any],
    *,
    per_class: int = 100,
    test_per_class: int = 20,
    seed: int = 0,
    settings: Any = None,
    n_jobs: int = 1,
    device: str = "auto",
) -> FirstLook:
    """Every model trained on exactly ``per_class`` training images per class and scored on
    ``test_per_class`` test images per class, with the training curve of each iterative model
    (:data:`ITERATIVE`, :func:`training_curve`). ``models`` as in :func:`learning_curve`."""
    from digitlab.models.zoo import run_model

    d = as_data(data)
    specs, zoo = model_specs(models), zoo_settings(settings)
    tr, te, notes = first_look_indices(d.y_train, d.y_test, per_class, test_per_class, seed)
    x_tr, y_tr, x_te, y_te = d.x_train[tr], d.y_train[tr], d.x_test[te], d.y_test[te]
    rows, curves = [], {}
    for label, name, extra in specs:
        run = run_model(name, x_tr, y_tr, x_te, zoo, seed=seed, n_jobs=n_jobs, device=device, **extra)
        rows.append(
            {
                "model": label,
                "n_train": len(y_tr),
                "n_test": len(y_te),
                "accuracy": round(float(np.mean(run.y_pred == y_te)), 4),
                "fit_s": round(run.fit_s, 2),
                "budget": budget_text(name, budget(run)),
            }
        )
        if name in ITERATIVE:
            curve = training_curve(
                name,
                x_tr,
                y_tr,
                x_te,
                y_te,
                zoo,
                seed=seed,
                n_jobs=n_jobs,
                device=device,
                run=run if name in (CNN, "hgb", "random_forest", "extra_trees") else None,
                **extra,
            )
            curves[label] = curve.to_dict()
    conv = _convergence_rows(curves)
    return FirstLook(pd.DataFrame(rows), pd.DataFrame(conv), curves, notes, rows, conv)


# =============================================================================================
# Growth: every model at every size with several seeds, the fitted curves
# =============================================================================================


def seeds_for(
    model: str,
    n: int,
    available: int,
    seeds: int | Sequence[int],
    *,
    seed: int = 0,
    slow_models: Sequence[str] = (),
    slow_seeds: int | None = None,
    full_seeds: int | None = None,
) -> list[int]:
    """The seeds :func:`learning_curve` trains ``model`` with at ``n`` of ``available`` training images:
    ``seeds`` (a count from ``seed``, or a list), ``slow_seeds`` of them for ``slow_models``, at most
    ``full_seeds`` on the whole training set."""
    k = len(seeds) if not isinstance(seeds, int) else seeds
    if model in slow_models and slow_seeds is not None:
        k = slow_seeds
    if n >= available and full_seeds is not None:
        k = min(k, full_seeds)
    return [seed + i for i in range(k)] if isinstance(seeds, int) else list(seeds)[:k]


def fit_time_exponent(summary: list[dict], model: str, min_seconds: float = 0.5) -> float:
    """How fit time scales with size (``n ** exponent``); NaN when the model fits in under
    ``min_seconds`` even at its largest size (its times are then timer noise)."""
    s = [r for r in summary if r["model"] == model and math.isfinite(r.get("fit_s_mean", math.nan))]
    if not s or max(r["fit_s_mean"] for r in s) < min_seconds:
        return math.nan
    return scaling_exponent([r["n_train"] for r in s], [r["fit_s_mean"] for r in s])


@dataclass
class LearningCurve(StudyResult):
    """Accuracy against training-set size.

    ``runs``: one row per model x size x seed (where it came from, accuracy, fit and predict
    seconds, the training budget: epochs, optimiser steps, iterations; recall per class);
    ``summary``: per model and size ``n`` seeds and the mean, SD, min and max accuracy and fit time
    (:func:`digitlab.grid.summarise`); ``fits``: the saturating power law ``error = a (n/1000)^-b + c``
    per model (parameters with SDs, the error floor as an accuracy ceiling, fit RMSE, the size beyond
    which ``per`` more images gain less than ``gain`` with its 95 % interval, the gain at the largest
    size); ``milestones``: accuracy, macro precision / recall / F1 and recall per class at the
    ``milestones`` sizes; ``class_gain``: recall points gained per class between the smallest and
    largest size. ``power_laws`` holds the :class:`PowerLawFit` objects (None: too few sizes),
    ``adequate`` the adequate sizes, ``time_exponents`` how fit time grows with n.
    """

    runs: pd.DataFrame
    summary: pd.DataFrame
    fits: pd.DataFrame
    milestones: pd.DataFrame
    class_gain: pd.DataFrame
    power_laws: dict[str, Any]
    adequate: dict[str, dict]
    time_exponents: dict[str, float]
    sizes: list[int]
    classes: list[str]
    gain: float
    per: float
    n_available: int
    rows: list[dict] = field(repr=False, default_factory=list)  # the runs with their predictions (y_pred)
    grid_summary: list[dict] = field(repr=False, default_factory=list)
    tables: dict[str, list[dict]] = field(
        repr=False, default_factory=dict
    )  # growth / fits / milestones rows, JSON-ready

    def plot(self, ax=None):
        """Small multiples: accuracy against size per model (log x), the seed spread, the fitted
        curve and its band, the adequate size dotted. Returns the Figure."""
        models = list(self.power_laws)
        cols = min(4, len(models))
        nrow = math.ceil(len(models) / cols)
        fig, axes = panels(ax, nrow, cols, (3.6 * cols, 2.9 * nrow), layout="constrained")
        for i, (ax, m) in enumerate(zip(axes.ravel(), models)):
            rs = [r for r in self.rows if r["model"] == m]
            plot_learning_curve(
                [r["n_train"] for r in rs],
                [r["accuracy"] for r in rs],
                self.power_laws[m],
                ax=ax,
                color=f"C{i % 10}",
                gain=self.gain,
                per=self.per,
            )
            ax.set_title(model_name(m), fontsize=10)
            ax.set_xlabel("training images (log)" if i >= len(models) - cols else "")
        for ax in axes.ravel()[len(models) :]:
            ax.axis("off")
        return fig

    def plot_error(self, ax=None):
        """Every model's test error against size, both axes logarithmic (power laws become straight
        lines bending towards their floor). Returns the Figure."""
        fig, ax = single(ax, (7, 4.5))
        for i, m in enumerate(self.power_laws):
            s = [r for r in self.grid_summary if r["model"] == m]
            n = np.array([r["n_train"] for r in s])
            err = 100 * (1 - np.array([r["accuracy_mean"] for r in s]))
            ax.plot(n, err, "o", ms=3.5, color=f"C{i % 10}", label=model_name(m))
            if self.power_laws[m] is not None:
                grid = np.geomspace(n.min(), n.max(), 100)
                ax.plot(grid, 100 * self.power_laws[m].predict(grid), "-", lw=1, color=f"C{i % 10}")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="training images (log)",
            ylabel="test error % (log)",
            title="Test error against training-set size (points: mean over seeds; lines: fitted power law)",
        )
        size_ticks(ax.xaxis)
        plain_log_ticks(ax.yaxis)
        ax.legend(fontsize=7, ncol=2)
        return fig

    def plot_fit_time(self, ax=None):
        """Fit time against size per model, both axes logarithmic. Returns the Figure."""
        fig, ax = single(ax, (7, 4.2))
        for i, m in enumerate(self.power_laws):
            s = [
                r
                for r in self.grid_summary
                if r["model"] == m and r.get("fit_s_mean") and math.isfinite(r["fit_s_mean"])
            ]
            if s:
                ax.plot(
                    [r["n_train"] for r in s],
                    [max(r["fit_s_mean"], 1e-3) for r in s],
                    "o-",
                    ms=3,
                    lw=1,
                    color=f"C{i % 10}",
                    label=model_name(m),
                )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="training images (log)",
            ylabel="fit time, s (log)",
            title="Fit time against training-set size (mean over seeds)",
        )
        size_ticks(ax.xaxis)
        plain_log_ticks(ax.yaxis)
        ax.legend(fontsize=7, ncol=2)
        return fig

    def plot_class_gain(self, ax=None):
        """Recall points gained per class (columns) and model (rows) from the smallest to the largest
        size, as a heat map. Returns the Figure."""
        gain, models, classes = (
            self.class_gain.to_numpy(float),
            list(self.class_gain.index),
            list(self.class_gain.columns),
        )
        n0, n1 = self.sizes[0], self.sizes[-1]
        fig, ax = single(ax, (0.55 * len(classes) + 3, 0.38 * len(models) + 1.6))
        lim = max(1e-9, float(np.abs(gain).max()))
        im = ax.imshow(gain, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        for i, j in np.ndindex(gain.shape):
            ax.text(
                j,
                i,
                f"{gain[i, j]:+.1f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(gain[i, j]) > 0.6 * lim else "black",
            )
        ax.set(
            xticks=range(len(classes)),
            xticklabels=classes,
            yticks=range(len(models)),
            yticklabels=[model_name(m) for m in models],
            xlabel="class",
            title=f"Recall gain per class, {n0:,} -> {n1:,} training images (points)",
        )
        fig.colorbar(im, ax=ax, fraction=0.03)
        return fig


def _growth_rows(rows: list[dict], summary: list[dict]) -> list[dict]:
    out = []
    for s in summary:
        rs = [r for r in rows if r["model"] == s["model"] and r["n_train"] == s["n_train"]]
        out.append(
            {
                "model": s["model"],
                "n_train": s["n_train"],
                "seeds": s["n"],
                "accuracy_mean": _r(s["accuracy_mean"]),
                "accuracy_sd": _r(s["accuracy_sd"]),
                "accuracy_min": _r(s["accuracy_min"]),
                "accuracy_max": _r(s["accuracy_max"]),
                "fit_s": _r(s.get("fit_s_mean"), 2),
                "budget": budget_text(s["model"], rs[0]),
                "source": "+".join(sorted({r["source"] for r in rs})),
            }
        )
    return out


FIT_COLUMNS = [
    "model",
    "a",
    "a_sd",
    "b",
    "b_sd",
    "c_error_floor",
    "c_sd",
    "accuracy_ceiling",
    "rmse_points",
    "adequate_size",
    "adequate_low",
    "adequate_high",
    "gain_at_full_points",
    "note",
]  # the fits table (note: the task's words)


def _fit_rows(fits: dict[str, PowerLawFit | None], adequate: dict[str, dict], available: int) -> list[dict]:
    """Rounded power-law parameters with SDs, the error floor, the adequate size and its interval per model."""
    out = []
    for m, f in fits.items():
        if f is None:
            out.append({"model": m})
            continue
        a = adequate[m]
        out.append(
            {
                "model": m,
                "a": _r(f.a, 5),
                "a_sd": _r(f.a_sd, 5),
                "b": _r(f.b, 3),
                "b_sd": _r(f.b_sd, 3),
                "c_error_floor": _r(f.c, 5),
                "c_sd": _r(f.c_sd, 5),
                "accuracy_ceiling": _r(1 - f.c),
                "rmse_points": _r(100 * f.rmse, 3),
                "adequate_size": _size(a["size"]),
                "adequate_low": _size(a["low"]),
                "adequate_high": _size(a["high"]),
                "gain_at_full_points": _r(100 * float(f.gain(available, a["per"])), 3),
            }
        )
    return out


def _milestone_rows(
    rows: list[dict], y_test: np.ndarray, sizes: list[int], classes: list[str], k: int
) -> list[dict]:
    out = []
    for m in dict.fromkeys(r["model"] for r in rows):
        for n in sizes:
            rs = [r for r in rows if r["model"] == m and r["n_train"] == n]
            if not rs:
                continue
            macro = np.array(
                [M.precision_recall_f1(y_test, r["y_pred"], k, average="macro")[:3] for r in rs]
            ).mean(0)
            rec = np.mean([r["recall"] for r in rs], axis=0)
            out.append(
                {
                    "model": m,
                    "n_train": n,
                    "seeds": len(rs),
                    "accuracy": _r(np.mean([r["accuracy"] for r in rs])),
                    "precision_macro": _r(macro[0]),
                    "recall_macro": _r(macro[1]),
                    "f1_macro": _r(macro[2]),
                    **{f"recall {c}": _r(v, 3) for c, v in zip(classes, rec)},
                }
            )
    return out


def learning_curve(
    data: Any,
    models: Sequence[str] | Mapping[str, Any],
    sizes: Sequence[int],
    *,
    seeds: int | Sequence[int] = 3,
    slow_models: Sequence[str] = (),
    slow_seeds: int | None = None,
    full_seeds: int | None = None,
    n_test: int = 0,
    seed: int = 0,
    settings: Any = None,
    n_jobs: int = 1,
    device: str = "auto",
    gain: float = 0.001,
    per: float = 1000.0,
    n_draws: int = 2000,
    milestones: Sequence[int] = (),
    known: Mapping[tuple[str, int], dict] | None = None,
    threads_per_job: int = 0,
    progress: bool = False,
    backend: str = "loky",
    cache_dir: Any = None,
    cache_key: str = "",
) -> LearningCurve:
    """Every model at every training-set size with several seeds, scored on the same test images.

    Parameters
    ----------
    data : a Dataset or ``(x_train, y_train, x_test, y_test)``; sizes are drawn from all its training
        images, ``n_test`` test images of it are scored (0 = all; the study's subset rule with ``seed``).
    models : zoo names, or ``{label: name | (name, params)}`` (e.g. ``{"CNN": ("cnn", {"min_steps": 200})}``).
    sizes : training-set sizes (0 or more than there are = all of them).
    seeds : a count (``seed``, ``seed + 1``, ...) or a list; a seed draws both the stratified subset
        and the model's randomness. ``slow_models`` get only the first ``slow_seeds`` of them, and on
        the whole training set every model gets at most ``full_seeds`` (only the model's own randomness
        varies there).
    gain, per, n_draws : the adequate size is where ``per`` more images buy less than ``gain``
        accuracy by the fitted power law (needs three sizes); its 95 % interval comes from ``n_draws``
        parameter draws (seeded with ``seed``).
    milestones : sizes of the ``milestones`` table (0 = all; sizes not grown are left out).
    known : runs made elsewhere, ``{(label, n_train): row}`` with ``y_pred`` (and ``fit_s``, ``source``,
        budget fields): used for the first seed of that point instead of training it.

    Every other (model, size, seed) is one job of :func:`digitlab.grid.run_grid` (largest sizes first;
    ``cache_dir`` stores each as it finishes), trained by :func:`digitlab.models.zoo.run_model`.
    """
    from digitlab.grid import run_grid, summarise

    specs = model_specs(models)
    seed_list = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    d = as_data(data, 0, n_test, seed)
    zoo = zoo_settings(settings)
    available = len(d.y_train)
    sizes = sorted({min(int(n), available) if n > 0 else available for n in sizes})
    known = dict(known or {})
    params = {label: p for label, _, p in specs}

    def seeds_of(label: str, n: int) -> list[int]:
        return seeds_for(
            label,
            n,
            available,
            seeds,
            seed=seed,
            slow_models=slow_models,
            slow_seeds=slow_seeds,
            full_seeds=full_seeds,
        )

    groups: dict[tuple[int, ...], list[dict]] = {}
    for label, name, _ in specs:
        for n in sorted(sizes, reverse=True):  # large points first: better load balance across jobs
            todo = tuple(s for s in seeds_of(label, n) if not (s == seed_list[0] and (label, n) in known))
            if todo:
                groups.setdefault(todo, []).append({"model": label, "name": name, "n_train": n})
    rows = list(known.values())
    for todo, points in groups.items():
        rows += run_grid(
            fit_point,
            points,
            list(todo),
            args=(d.x_train, d.y_train, d.x_test, zoo, device, params),
            n_jobs=n_jobs,
            backend=backend,
            device=device,
            threads_per_job=threads_per_job,
            progress=progress,
            description=f"learning curve: {len(points)} points x {len(todo)} seeds",
            cache_dir=cache_dir,
            cache_key=cache_key,
        )
    order = {label: i for i, (label, _, _) in enumerate(specs)}
    rows.sort(key=lambda r: (order[r["model"]], r["n_train"], r["seed"]))
    for r in rows:
        r["accuracy"] = float(np.mean(r["y_pred"] == d.y_test))
        r["recall"] = M.precision_recall_f1(d.y_test, r["y_pred"], d.n_classes)[1]

    summary = summarise(rows, by=["model", "n_train"], metrics=["accuracy", "fit_s"])
    labels = [s[0] for s in specs]
    fits = {
        m: fit_power_law(
            [r["n_train"] for r in rows if r["model"] == m],
            [1 - r["accuracy"] for r in rows if r["model"] == m],
        )
        for m in labels
    }
    adequate = {}
    for m, f in fits.items():
        if f is not None:
            low, high = adequate_size_interval(f, gain, per, n_draws=n_draws, seed=seed)
            adequate[m] = {"size": adequate_size(f, gain, per), "low": low, "high": high, "per": per}
    time_exp = {m: fit_time_exponent(summary, m) for m in labels}
    table_sizes = sorted({min(available if s == 0 else s, available) for s in milestones} & set(sizes))
    n0, n1 = sizes[0], sizes[-1]
    rec: dict[tuple, list] = {(r["model"], r["n_train"]): [] for r in rows}
    for r in rows:
        rec[(r["model"], r["n_train"])].append(r["recall"])
    gain_models = [m for m in labels if (m, n0) in rec and (m, n1) in rec]
    low_recall = np.array([np.mean(rec[(m, n0)], axis=0) for m in gain_models]).reshape(
        len(gain_models), d.n_classes
    )
    class_gain = 100 * (
        np.array([np.mean(rec[(m, n1)], axis=0) for m in gain_models]).reshape(low_recall.shape) - low_recall
    )

    growth, fit_rows = _growth_rows(rows, summary), _fit_rows(fits, adequate, available)
    milestone_rows = _milestone_rows(rows, d.y_test, table_sizes, list(d.classes), d.n_classes)
    keys = list(RUN_COLUMNS)
    runs = pd.DataFrame(
        [
            {
                **{k: r.get(k) for k in keys},
                **{f"recall_{c}": float(v) for c, v in zip(d.classes, r["recall"])},
            }
            for r in rows
        ]
    )
    fit_frame = pd.DataFrame(
        [
            {
                "model": m,
                "a": f.a,
                "a_sd": f.a_sd,
                "b": f.b,
                "b_sd": f.b_sd,
                "c": f.c,
                "c_sd": f.c_sd,
                "ceiling_accuracy": 1 - f.c,
                "rmse": f.rmse,
                "adequate_size": adequate[m]["size"],
                "adequate_low": adequate[m]["low"],
                "adequate_high": adequate[m]["high"],
                "gain_at_full": float(f.gain(available, per)),
                "at_bound": ", ".join(f.at_bound),
            }
            for m, f in fits.items()
            if f is not None
        ],
        columns=[
            "model",
            "a",
            "a_sd",
            "b",
            "b_sd",
            "c",
            "c_sd",
            "ceiling_accuracy",
            "rmse",
            "adequate_size",
            "adequate_low",
            "adequate_high",
            "gain_at_full",
            "at_bound",
        ],
    ).set_index("model")
    return LearningCurve(
        runs,
        pd.DataFrame(summary),
        fit_frame,
        pd.DataFrame(milestone_rows),
        pd.DataFrame(class_gain, index=gain_models, columns=list(d.classes)),
        fits,
        adequate,
        time_exp,
        sizes,
        list(d.classes),
        gain,
        per,
        available,
        rows,
        summary,
        {"growth": growth, "fits": fit_rows, "milestones": milestone_rows, "low_recall": low_recall.tolist()},
    )


__all__ = [
    "power_law",
    "PowerLawFit",
    "fit_power_law",
    "adequate_size",
    "adequate_size_interval",
    "sample_parameters",
    "curve_band",
    "scaling_exponent",
    "plot_learning_curve",
    "size_ticks",
    "B_BOUNDS",
    "TrainingCurve",
    "training_curve",
    "ITERATIVE",
    "seeds_for",
    "budget",
    "budget_text",
    "planned_cnn_budget",
    "fit_point",
    "first_look_indices",
    "first_look",
    "FirstLook",
    "learning_curve",
    "LearningCurve",
    "fit_time_exponent",
]


def reused_run(model: str, n_train: int, seed: int, y_pred: np.ndarray, fit_s: float) -> dict:
    """A growth run made elsewhere (the classify task's predictions of the same point), as a run row."""
    return {
        "model": model,
        "n_train": n_train,
        "seed": seed,
        "y_pred": np.asarray(y_pred).astype(np.int16),
        "fit_s": fit_s,
        "predict_s": math.nan,
        "source": "classify",
        "epochs": None,
        "steps": None,
        "iterations": None,
        "wall_seconds": 0.0,
        "cpu_seconds": 0.0,
    }


def write_runs_csv(rows: list[dict], classes: list[str], out_dir) -> str:
    """Write ``growth.csv``: one row per trained (model, size, seed) with accuracy, times, budget, recall per class."""
    import csv
    from pathlib import Path

    keys = list(RUN_COLUMNS)
    with open(Path(out_dir) / "growth.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(keys + [f"recall_{c}" for c in classes])
        for r in rows:
            w.writerow([r.get(k) for k in keys] + [round(float(v), 5) for v in r["recall"]])
    return "growth.csv"
