"""The model zoo: ONE registry of every model a study trains, and running any of them by name.

A model is one :class:`ModelSpec` entry, registered with :func:`register_model`: its identifier, the
words the report uses for it (short name and long description), its builder and default parameters,
which of the zoo's size settings apply to it, the studies it takes part in and whether it is a
network. :mod:`digitlab.models.classic` registers the scikit-learn models (and the NumPy MLP) beside
their builders; the CNN is registered here. :func:`model_names`, :func:`check_models`,
:func:`describe_model`, :func:`build_model`, :func:`run_model`, :func:`digitlab.names.model_name` and
every task's list of models read this registry, so adding a model touches nothing else::

    from digitlab.models.zoo import ModelSpec, register_model
    register_model(ModelSpec("centroid", "nearest centroid", "nearest class mean on pixels/255", build=my_builder))

:class:`ZooSettings` holds the few size settings a study varies (trees, boosting rounds, the SVM's
search grid, epochs); :func:`run_model` fits one model, predicts, times both and returns a
:class:`ModelRun`::

    from digitlab.models.zoo import ZooSettings, run_model
    run = run_model("random_forest", x_train, y_train, x_test, ZooSettings(n_estimators=100))
    run.y_pred, run.proba, run.fit_s
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.exceptions import ConfigError, ModelError
from digitlab.models import persist as P

CNN = "cnn"
STUDIES = ("classify", "datasize")  # the studies a model takes part in unless its entry says otherwise


@dataclass
class ZooSettings:
    """Size settings of the zoo's models (defaults: the standard profile). The one settings type of the
    zoo: a task whose Config repeats some of these keys builds it with :meth:`from_config`."""

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
    # the CNN's training augmentation ("" = the recipe's; "shift+hflip" adds mirror images)
    cnn_augment: str = ""
    cnn_epochs: int = 0  # override the recipe's epochs (0 = keep)
    cnn_max_seconds: float = 0.0  # wall-time cap of CNN training (0 = none)

    @classmethod
    def from_config(cls, cfg: Any) -> ZooSettings:
        """The settings of any config object that has (some of) these fields under the same names."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: getattr(cfg, k) for k in names if hasattr(cfg, k)})


# =============================================================================================
# The registry
# =============================================================================================


def _no_settings(s: ZooSettings) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo: how to build it and how the report speaks of it."""

    name: str  # identifier in configs, tables and file names ("random_forest")
    words: str  # short name in words for prose, table cells and headings ("random forest")
    # long: one line for tables, a template filled with the settings, or values -> str
    description: str | Callable[[dict], str]
    # build(random_state, n_jobs, **params) -> unfitted estimator; a network also gets device=
    build: Callable[..., Any]
    # "linear", "kernel", "neighbours", "tree", "ensemble", "probabilistic", "neural", ...
    family: str = "other"
    params: Mapping[str, Any] = field(default_factory=dict)  # default parameters passed to build
    settings: Callable[[ZooSettings], dict] = _no_settings  # the ZooSettings that apply -> build parameters
    studies: tuple[str, ...] = STUDIES  # the studies whose default model lists include it
    network: bool = False  # a torch network (trained on the device; listed after the classic models)
    words_zh: str = ""  # the short name in Chinese (the report's --lang zh); "" = the English words
    # replace the identifier inside sentences (False where it is an ordinary word, e.g. "tree")
    in_prose: bool = True
    # the builder's settings for the description (None: its defaults)
    defaults: Callable[[], dict] | None = None
    # fit on a stratified subset of at most this many images (0 = all)
    train_cap: Callable[[ZooSettings], int] = lambda s: 0

    def values(self, **params: Any) -> dict[str, Any]:
        """The builder's settings with ``params`` applied (what the description is filled with)."""
        if self.defaults is not None:
            values = dict(self.defaults())
        else:
            values = {
                k: p.default
                for k, p in inspect.signature(self.build).parameters.items()
                if p.default is not inspect.Parameter.empty
            }
        return {**values, **self.params, **params}

    def describe(self, **params: Any) -> str:
        """The long description filled with the builder's settings and ``params``."""
        values = self.values(**params)
        if callable(self.description):
            return self.description(values)
        values["input"] = f"PCA-{values['pca']}" if values.get("pca") else "pixels/255"
        return self.description.format(**values)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec, replace: bool = False) -> ModelSpec:
    """Add ``spec`` to the zoo (every list of models, the report's words and the builders read it)."""
    if not replace and spec.name in _REGISTRY:
        raise ModelError(
            f"register_model: a model named {spec.name!r} is already registered; pass replace=True to redefine it"
        )
    _REGISTRY[spec.name] = spec
    return spec


def unregister_model(name: str) -> None:
    """Remove model ``name`` from the zoo (tests use it to undo :func:`register_model`)."""
    _REGISTRY.pop(name, None)


def registered_models(study: str | None = None) -> list[ModelSpec]:
    """The registered models (classic ones first, networks last), those of ``study`` only when given."""
    specs = [s for s in _REGISTRY.values() if not s.network] + [s for s in _REGISTRY.values() if s.network]
    return [s for s in specs if study is None or study in s.studies]


def model_spec(name: str) -> ModelSpec:
    """The registry entry of model ``name`` (:class:`ModelError` naming the known ones otherwise)."""
    if name not in _REGISTRY:
        raise ModelError(f"model {name!r}: unknown name; choose one of {', '.join(model_names())}")
    return _REGISTRY[name]


def model_names(study: str | None = None) -> list[str]:
    """Identifiers of the registered models (of ``study`` only when given), classic first, networks last."""
    return [s.name for s in registered_models(study)]


def model_words(lang: str = "en") -> dict[str, str]:
    """Identifier -> short name in words of every registered model (``lang="zh"``: Chinese where known)."""
    return {s.name: (s.words_zh or s.words) if lang == "zh" else s.words for s in _REGISTRY.values()}


class _ClassicModels(Mapping):
    """Live read-only view of the registered models that are not networks (name -> :class:`ModelSpec`)."""

    def __getitem__(self, name: str) -> ModelSpec:
        spec = _REGISTRY.get(name)
        if spec is None or spec.network:
            raise KeyError(name)
        return spec

    def __iter__(self) -> Iterator[str]:
        return iter([s.name for s in registered_models() if not s.network])

    def __len__(self) -> int:
        return sum(not s.network for s in _REGISTRY.values())


CLASSIC_MODELS: Mapping[str, ModelSpec] = _ClassicModels()


def check_models(models: list[str], key: str) -> None:
    """Raise a one-line :class:`ConfigError` naming config key ``key`` on unknown or no models."""
    unknown = [m for m in models if m not in _REGISTRY]
    if unknown or not models:
        raise ConfigError(
            f"config key {key}: {unknown or 'empty list'} unknown; choose from {', '.join(model_names())}"
        )


def model_params(name: str, s: ZooSettings) -> dict[str, Any]:
    """The build parameters model ``name`` takes from its entry and from these zoo settings."""
    spec = model_spec(name)
    return {**spec.params, **spec.settings(s)}


def recipe(s: ZooSettings) -> tuple:
    from digitlab.train import FAST_RECIPE, STRONG_RECIPE, WIDE_RECIPE, resolve_augment

    recipes = {"fast": FAST_RECIPE, "strong": STRONG_RECIPE, "wide": WIDE_RECIPE}
    if s.cnn_recipe not in recipes:
        raise ConfigError(f"cnn_recipe {s.cnn_recipe!r}: unknown; use 'fast', 'strong' or 'wide'")
    if s.cnn_augment:
        try:
            resolve_augment(s.cnn_augment)
        except Exception as exc:
            raise ConfigError(
                f"cnn_augment {s.cnn_augment!r}: {exc}; use catalogue names joined by '+', e.g. 'shift+hflip'"
            ) from None
    return recipes[s.cnn_recipe]


def build_model(
    name: str, s: ZooSettings, seed: int = 0, n_jobs: int = 1, device: str = "cpu", **extra
) -> Any:
    """The unfitted estimator for ``name`` with these settings (``extra`` overrides zoo parameters)."""
    spec = model_spec(name)
    where = {"device": device} if spec.network else {}
    try:
        return spec.build(seed, n_jobs, **where, **{**model_params(name, s), **extra})
    except TypeError as exc:
        raise ModelError(
            f"model {name!r}: bad parameter ({exc}); see its builder {spec.build.__module__}.{spec.build.__name__}"
        ) from None


def describe_model(name: str, s: ZooSettings | None = None, **params: Any) -> str:
    """One line: what the model is and how it was set up (``params`` override the settings' parameters)."""
    return model_spec(name).describe(**{**model_params(name, s or ZooSettings()), **params})


# ---------------------------------------------------------------------------------------------
# The CNN (the classic models register in digitlab.models.classic)
# ---------------------------------------------------------------------------------------------


def _cnn_settings(s: ZooSettings) -> dict[str, Any]:
    return {
        "recipe_name": s.cnn_recipe,
        "augment": s.cnn_augment,
        "epochs": s.cnn_epochs,
        "max_seconds": s.cnn_max_seconds,
    }


def _cnn(
    random_state: int = 0,
    n_jobs: int = 1,
    device: str = "cpu",
    recipe_name: str = "strong",
    augment: str = "",
    epochs: int = 0,
    max_seconds: float = 0.0,
    **extra,
) -> Any:
    """A :class:`~digitlab.train.CNNClassifier` from a training recipe ("fast", "strong", "wide")."""
    from digitlab.train import CNNClassifier

    over: dict[str, Any] = {"random_state": random_state, "device": device}
    if epochs:
        over["epochs"] = epochs
    if max_seconds:
        over["max_seconds"] = max_seconds
    if augment:
        over["augment"] = augment
    return CNNClassifier.from_recipe(
        recipe(ZooSettings(cnn_recipe=recipe_name, cnn_augment=augment)), **over, **extra
    )


def _describe_cnn(v: dict) -> str:
    net, _, tc = recipe(ZooSettings(cnn_recipe=v["recipe_name"], cnn_augment=v["augment"]))
    augment = v["augment"] or getattr(tc, "augment", "")
    aug = f", {augment.replace('+', ' + ')} augmentation" if augment else ""
    cap = f", capped at {v['max_seconds']:g} s" if v["max_seconds"] else ""
    return (
        f"PyTorch {net} net, {v['recipe_name']} recipe: {v['epochs'] or tc.epochs} epochs, {tc.optimizer}, "
        f"{tc.scheduler} schedule, batch {tc.batch_size}{aug}{cap}"
    )


register_model(
    ModelSpec(CNN, "CNN", _describe_cnn, _cnn, "neural", settings=_cnn_settings, network=True, words_zh="CNN")
)


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


def run_model(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    s: ZooSettings | None = None,
    *,
    seed: int = 0,
    n_jobs: int = 1,
    device: str = "cpu",
    threads: int = 0,
    **extra,
) -> ModelRun:
    """Fit model ``name`` on the training images, predict ``x_test``, time both.

    A model whose entry caps its training set (the RBF SVM: ``s.svm_n_train``) trains on a stratified subset. BLAS/torch threads
    are capped at ``threads`` (default: ``n_jobs``; more oversubscribe a shared machine).
    """
    from digitlab import metrics as M
    from digitlab.data.subsets import stratified_subset
    from digitlab.runtime import cpu_budget, limit_threads

    s = s or ZooSettings()
    x_fit, y_fit = x_train, y_train
    cap = model_spec(name).train_cap(s)
    if cap and cap < len(y_train):
        idx = stratified_subset(y_train, total=cap, seed=seed)
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
    return ModelRun(
        name, model, np.asarray(y_pred, np.int64), proba, scores, fit_s, predict_s, int(len(y_fit)), size
    )


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
        raise ModelError(
            f"save_model {name!r}: a {type(estimator).__name__} is not an estimator (no predict)"
        )
    return P.save_skops(path_dir, estimator, {"name": name})


def load_model(path_dir: str | Path, device: str = "cpu"):
    """Load what :func:`save_model` wrote: a fitted estimator (``device`` places a network's weights)."""
    meta = P.read_meta(path_dir)
    if meta["format"] == P.NET_FORMAT:
        from digitlab.train import CNNClassifier

        return CNNClassifier.load(path_dir, device=device)
    return P.load_skops(Path(path_dir) / Path(str(meta.get("file", P.SKOPS_FILE))).name)


__all__ = [
    "ModelSpec",
    "register_model",
    "unregister_model",
    "model_spec",
    "registered_models",
    "model_words",
    "CLASSIC_MODELS",
    "save_model",
    "load_model",
    "ZooSettings",
    "ModelRun",
    "run_model",
    "build_model",
    "describe_model",
    "model_params",
    "model_names",
    "check_models",
    "probabilities",
    "recipe",
    "CNN",
]
