"""Learning curves: how test error falls with training-set size, and where more data stops paying.

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
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

B_BOUNDS = (0.01, 4.0)  # the exponent b is kept in this range (outside it the "power law" is a step or a flat line)


# =============================================================================================
# The curve and its fit
# =============================================================================================


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

        return {"a": num(self.a), "b": num(self.b), "c": num(self.c), "a_sd": num(self.a_sd), "b_sd": num(self.b_sd),
                "c_sd": num(self.c_sd), "n_ref": self.n_ref, "a_literal": num(self.a_literal), "rmse": num(self.rmse),
                "n_points": self.n_points, "n_sizes": self.n_sizes, "size_range": [num(v) for v in self.size_range],
                "at_bound": list(self.at_bound)}


def fit_power_law(n, error, *, sigma=None, n_ref: float = 1000.0, b_bounds: tuple[float, float] = B_BOUNDS) -> PowerLawFit | None:
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
                    popt, pcov = curve_fit(lambda x, a, b, c: power_law(x, a, b, c, n_ref), n, e, p0=p0, sigma=s,
                                           absolute_sigma=s is not None, bounds=(lo, hi), maxfev=20000)
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
    at_bound = tuple(nm for nm, v, l, h in zip(names, popt, lo, hi)
                     if abs(v - l) <= 1e-6 * max(1.0, abs(l)) or (np.isfinite(h) and abs(v - h) <= 1e-6 * max(1.0, abs(h))))
    rmse = float(np.sqrt(np.mean((power_law(n, *popt, n_ref) - e) ** 2)))
    return PowerLawFit(float(popt[0]), float(popt[1]), float(popt[2]), float(sd[0]), float(sd[1]), float(sd[2]), pcov, n_ref,
                       rmse, int(len(e)), int(len(np.unique(n))), (float(n.min()), float(n.max())), at_bound)


# =============================================================================================
# Reading the fit: where more data stops paying
# =============================================================================================


def _adequate(a: np.ndarray, b: np.ndarray, c: np.ndarray, n_ref: float, gain: float, per: float,
              n_max: float) -> np.ndarray:
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
    return float(_adequate(np.array([fit.a]), np.array([fit.b]), np.array([fit.c]), fit.n_ref, gain, per, n_max)[0])


def sample_parameters(fit: PowerLawFit, n_draws: int = 2000, seed: int = 0,
                      b_bounds: tuple[float, float] = B_BOUNDS) -> np.ndarray | None:
    """``(n, 3)`` parameter draws from the fit's normal approximation truncated to the fit's bounds
    (draws outside them are rejected, so a parameter at a bound does not pile up draws there), or None
    when the fit has no covariance or the bounds reject almost every draw."""
    if not fit.has_covariance:
        return None
    rng = np.random.default_rng(seed)
    cov = (fit.cov + fit.cov.T) / 2
    draws = rng.multivariate_normal([fit.a, fit.b, fit.c], cov, size=4 * n_draws, method="eigh", check_valid="ignore")
    ok = (draws[:, 0] >= 0) & (draws[:, 1] >= b_bounds[0]) & (draws[:, 1] <= b_bounds[1]) & (draws[:, 2] >= 0) & (draws[:, 2] <= 1)
    draws = draws[ok][:n_draws]
    return draws if len(draws) >= max(20, n_draws // 20) else None


def adequate_size_interval(fit: PowerLawFit, gain: float = 0.001, per: float = 1000.0, level: float = 0.95,
                           n_draws: int = 2000, seed: int = 0, n_max: float = 1e12) -> tuple[float, float]:
    """A ``level`` interval of :func:`adequate_size` over parameter draws from the fit's covariance
    (``(nan, nan)`` without a covariance; an end may be ``inf``)."""
    draws = sample_parameters(fit, n_draws, seed)
    if draws is None:
        return (math.nan, math.nan)
    sizes = _adequate(draws[:, 0], draws[:, 1], draws[:, 2], fit.n_ref, gain, per, n_max)
    q = (1 - level) / 2
    lo, hi = np.quantile(sizes, [q, 1 - q], method="inverted_cdf")
    return (float(lo), float(hi))


def curve_band(fit: PowerLawFit, n: np.ndarray, level: float = 0.95, n_draws: int = 2000,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
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
        return {k: getattr(self, k) for k in ("model", "unit", "x", "train_acc", "eval_acc", "eval_name", "train_loss", "eval_loss")}


ITERATIVE = ("cnn", "numpy_mlp", "logreg", "hgb", "random_forest", "extra_trees")  # models training_curve follows


def _log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None))))


def training_curve(name: str, x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray,
                   settings: Any = None, *, seed: int = 0, n_jobs: int = 1, device: str = "cpu", run: Any = None,
                   **extra: Any) -> TrainingCurve | None:
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
            return run_model(name, x_train, y_train, x_eval, s, seed=seed, n_jobs=n_jobs, device=device, **{**extra, **over})

    if name == "cnn":
        hist = (run or fit()).model.history_
        return TrainingCurve(name, "epoch", [int(h["epoch"]) for h in hist], [float(h["train_acc"]) for h in hist],
                             [float(h["val_acc"]) for h in hist], "validation", [float(h["train_loss"]) for h in hist],
                             [float(h["val_loss"]) for h in hist])
    if name in ("numpy_mlp", "logreg"):
        if name == "numpy_mlp":
            last = int(extra.get("epochs") or model_params(name, s)["epochs"])
            xs = list(range(1, last + 1))
        else:
            last = int(extra.get("max_iter") or inspect.signature(CLASSIC_MODELS["logreg"].build).parameters["max_iter"].default)
            xs = [k for k in (1, 2, 3, 5, 10, 20, 50, 100, 200, 500) if k < last] + [last]
        key = "epochs" if name == "numpy_mlp" else "max_iter"
        curve = TrainingCurve(name, "epoch" if name == "numpy_mlp" else "iteration", [], [], [], "test", [], [])
        for k in xs:
            r = fit(**{key: k})
            done = name == "logreg" and int(np.max(r.model[-1].n_iter_)) < k  # converged: later caps change nothing
            p_tr = r.model.predict_proba(x_train)
            curve.x.append(int(k))
            curve.train_acc.append(float(np.mean(p_tr.argmax(1) == y_train)))
            curve.eval_acc.append(float(np.mean(r.y_pred == y_eval)))
            curve.train_loss.append(_log_loss(p_tr, y_train))
            curve.eval_loss.append(_log_loss(r.proba, y_eval))
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
            curve.train_loss.append(_log_loss(p_tr, y_train))
            curve.eval_loss.append(_log_loss(p_ev, y_eval))
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


def plot_learning_curve(n, accuracy, fit: PowerLawFit | None = None, *, ax=None, label: str | None = None,
                        color=None, gain: float | None = None, per: float = 1000.0, band: bool = True,
                        n_max: float | None = None):
    """Accuracy (%) against training-set size (log x): the mean and min-max spread over seeds per
    size, the fitted curve (1 - error) over them with its 95 % band, and the adequate size (dotted)
    when ``gain`` is given. ``n``/``accuracy`` are one value per (size, seed). Returns the Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    n, acc = np.asarray(n, float), np.asarray(accuracy, float)
    sizes = np.unique(n)
    mean = np.array([acc[n == s].mean() for s in sizes])
    lo, hi = np.array([acc[n == s].min() for s in sizes]), np.array([acc[n == s].max() for s in sizes])
    line = ax.errorbar(sizes, 100 * mean, yerr=100 * np.vstack([mean - lo, hi - mean]), fmt="o", ms=3.5, capsize=2,
                       color=color, label=label, zorder=3)
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
    pad = max(0.3, 0.15 * 100 * (hi.max() - lo.min()))  # the band may be wide where the fit is loose: frame the data
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


__all__ = ["power_law", "PowerLawFit", "fit_power_law", "adequate_size", "adequate_size_interval", "sample_parameters",
           "curve_band", "scaling_exponent", "plot_learning_curve", "size_ticks", "B_BOUNDS", "TrainingCurve", "training_curve",
           "ITERATIVE"]
