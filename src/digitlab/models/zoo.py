"""Train and score any model of the zoo by name: the classic models of :mod:`digitlab.models.classic`
and ``"cnn"`` (a :class:`~digitlab.train.CNNClassifier` built from a recipe).

:class:`ZooSettings` holds the few size settings a study varies (trees, boosting rounds, the SVM's
search grid, epochs); :func:`run_model` fits one model, predicts, times both and returns a
:class:`ModelRun`. Every task that trains "the models of the zoo" calls it::

    from digitlab.models.zoo import ZooSettings, run_model
    run = run_model("random_forest", x_train, y_train, x_test, ZooSettings(n_estimators=100))
    run.y_pred, run.proba, run.fit_s
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitlab.exceptions import ConfigError, ModelError
from digitlab.models import persist as P

CNN = "cnn"


@dataclass
class ZooSettings:
    """Size settings of the zoo's models (defaults: the standard profile)."""

    n_estimators: int = 100  # trees of the random forest and extra trees
    hgb_max_iter: int = 200  # boosting rounds cap (early stopping usually stops sooner)
    hgb_pca: int = 50  # PCA components in front of boosting (0 = raw pixels: ~40x slower)
    svm_n_train: int = 0  # cap on the RBF SVM's training images (its fit is quadratic); 0 = no cap
    svm_search_size: int = 4000  # images per C/gamma candidate in the SVM's validation search
    svm_C: list[float] = field(default_factory=lambda: [2.0, 5.0, 10.0])
    svm_gamma: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.04])
    svm_pca: int = 50  # PCA components in front of the RBF SVM (0 = raw pixels)
    mlp_epochs: int = 15  # epochs of the NumPy MLP
    cnn_recipe: str = "strong"  # "fast", "strong" or "wide" (digitlab.train's recipes)
    cnn_augment: str = ""  # the CNN's training augmentation ("" = the recipe's; "shift+hflip" adds mirror images)
    cnn_epochs: int = 0  # override the recipe's epochs (0 = keep)
    cnn_max_seconds: float = 0.0  # wall-time cap of CNN training (0 = none)

    @classmethod
    def from_config(cls, cfg: Any) -> "ZooSettings":
        """The settings of any config object that has (some of) these fields under the same names."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: getattr(cfg, k) for k in names if hasattr(cfg, k)})


def model_names() -> list[str]:
    from digitlab.models.classic import CLASSIC_MODELS

    return [*CLASSIC_MODELS, CNN]


def check_models(models: list[str], key: str) -> None:
    """Raise a one-line :class:`ConfigError` naming config key ``key`` on unknown or no models."""
    unknown = [m for m in models if m not in model_names()]
    if unknown or not models:
        raise ConfigError(f"config key {key}: {unknown or 'empty list'} unknown; choose from {', '.join(model_names())}")


def model_params(name: str, s: ZooSettings) -> dict[str, Any]:
    """The zoo parameters these settings override for classic model ``name``."""
    if name in ("random_forest", "extra_trees"):
        return {"n_estimators": s.n_estimators}
    if name == "hgb":
        return {"max_iter": s.hgb_max_iter, "pca": s.hgb_pca}
    if name == "rbf_svm":
        return {"search_size": s.svm_search_size, "C": list(s.svm_C), "gamma": list(s.svm_gamma), "pca": s.svm_pca}
    if name == "numpy_mlp":
        return {"epochs": s.mlp_epochs}
    return {}


def recipe(s: ZooSettings) -> tuple:
    from digitlab.train import FAST_RECIPE, STRONG_RECIPE, WIDE_RECIPE, resolve_augment

    recipes = {"fast": FAST_RECIPE, "strong": STRONG_RECIPE, "wide": WIDE_RECIPE}
    if s.cnn_recipe not in recipes:
        raise ConfigError(f"cnn_recipe {s.cnn_recipe!r}: unknown; use 'fast', 'strong' or 'wide'")
    if s.cnn_augment:
        try:
            resolve_augment(s.cnn_augment)
        except Exception as exc:
            raise ConfigError(f"cnn_augment {s.cnn_augment!r}: {exc}; use catalogue names joined by '+', e.g. 'shift+hflip'") from None
    return recipes[s.cnn_recipe]


def build_model(name: str, s: ZooSettings, seed: int = 0, n_jobs: int = 1, device: str = "cpu", **extra) -> Any:
    """The unfitted estimator for ``name`` with these settings (``extra`` overrides zoo parameters)."""
    if name == CNN:
        from digitlab.train import CNNClassifier

        over: dict[str, Any] = {"random_state": seed, "device": device}
        if s.cnn_epochs:
            over["epochs"] = s.cnn_epochs
        if s.cnn_max_seconds:
            over["max_seconds"] = s.cnn_max_seconds
        if s.cnn_augment:
            over["augment"] = s.cnn_augment
        return CNNClassifier.from_recipe(recipe(s), **over, **extra)
    from digitlab.models.classic import make_model

    return make_model(name, random_state=seed, n_jobs=n_jobs, **{**model_params(name, s), **extra})


def describe_model(name: str, s: ZooSettings) -> str:
    """One line: what the model is and how it was set up."""
    if name == CNN:
        net, _, tc = recipe(s)
        augment = s.cnn_augment or getattr(tc, "augment", "")
        aug = f", {augment.replace('+', ' + ')} augmentation" if augment else ""
        cap = f", capped at {s.cnn_max_seconds:g} s" if s.cnn_max_seconds else ""
        return (f"PyTorch {net} net, {s.cnn_recipe} recipe: {s.cnn_epochs or tc.epochs} epochs, {tc.optimizer}, "
                f"{tc.scheduler} schedule, batch {tc.batch_size}{aug}{cap}")
    from digitlab.models.classic import describe

    return describe(name, **model_params(name, s))


def probabilities(model: Any, x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(proba, scores)``: class probabilities when the model has them, else decision scores."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(x), dtype=np.float64), None
    if hasattr(model, "decision_function"):
        return None, np.asarray(model.decision_function(x), dtype=np.float64)
    return None, None


@dataclass
class ModelRun:
    """One fitted model and its test predictions."""

    name: str
    model: Any
    y_pred: np.ndarray
    proba: np.ndarray | None
    scores: np.ndarray | None
    fit_s: float
    predict_s: float
    n_train: int
    size: dict[str, int]

    def __getitem__(self, key: str) -> Any:  # runs read like the dicts tasks used before
        return getattr(self, key)


def run_model(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, s: ZooSettings | None = None, *,
              seed: int = 0, n_jobs: int = 1, device: str = "cpu", threads: int = 0, **extra) -> ModelRun:
    """Fit model ``name`` on the training images, predict ``x_test``, time both.

    The RBF SVM trains on a stratified subset when ``s.svm_n_train`` caps it. BLAS/torch threads
    are capped at ``threads`` (default: ``n_jobs``; more oversubscribe a shared machine).
    """
    from digitlab import metrics as M
    from digitlab.data.subsets import stratified_subset
    from digitlab.runtime import cpu_budget, limit_threads

    s = s or ZooSettings()
    x_fit, y_fit = x_train, y_train
    if name == "rbf_svm" and s.svm_n_train and s.svm_n_train < len(y_train):
        idx = stratified_subset(y_train, total=s.svm_n_train, seed=seed)
        x_fit, y_fit = x_train[idx], y_train[idx]
    model = build_model(name, s, seed, n_jobs, device, **extra)
    with limit_threads(threads or cpu_budget(n_jobs)[0]):
        t0 = time.perf_counter()
        model.fit(x_fit, y_fit)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        proba, scores = probabilities(model, x_test)
        ranked = proba if proba is not None else scores
        y_pred = np.asarray(model.classes_)[ranked.argmax(1)] if ranked is not None else model.predict(x_test)
        predict_s = time.perf_counter() - t0
    size = M.model_size(getattr(model, "model_", model))  # the torch module for the CNN
    return ModelRun(name, model, np.asarray(y_pred, np.int64), proba, scores, fit_s, predict_s, int(len(y_fit)), size)


# =============================================================================================
# Saving and loading any zoo model
# =============================================================================================


def save_model(path_dir: str | Path, name: str, estimator) -> Path:
    """Save a fitted model under ``path_dir``: a :class:`~digitlab.train.CNNClassifier` as a network
    (``model.pt`` + ``model.json``), anything else (the classic zoo) as ``model.skops`` + ``model.json``.

    ``name`` is the model's name in the study (e.g. ``"cnn"``, ``"random_forest"``), kept in ``model.json``.
    """
    from digitlab.train import CNNClassifier

    if isinstance(estimator, CNNClassifier):
        return estimator.save(path_dir, name=name)
    if not hasattr(estimator, "predict"):
        raise ModelError(f"save_model {name!r}: a {type(estimator).__name__} is not an estimator (no predict)")
    return P.save_skops(path_dir, estimator, {"name": name})


def load_model(path_dir: str | Path, device: str = "cpu"):
    """Load what :func:`save_model` wrote: a fitted estimator (``device`` places a network's weights)."""
    meta = P.read_meta(path_dir)
    if meta["format"] == P.NET_FORMAT:
        from digitlab.train import CNNClassifier

        return CNNClassifier.load(path_dir, device=device)
    return P.load_skops(Path(path_dir) / Path(str(meta.get("file", P.SKOPS_FILE))).name)


__all__ = ["save_model", "load_model", "ZooSettings", "ModelRun", "run_model", "build_model", "describe_model", "model_params", "model_names",
           "check_models", "probabilities", "recipe", "CNN"]
