"""The classic-model zoo: scikit-learn pipelines (and the NumPy MLP) tuned for 28x28 digit images.

Every model is a scikit-learn estimator that takes uint8 images ``(n, H, W)`` (or already
flattened ``(n, H*W)``) and does its own scaling (pixels / 255, plus PCA where that makes the
model fast or better). Each is one entry of the zoo's registry (:func:`digitlab.models.zoo.register_model`,
at the end of this file); ``make_model(name)`` builds one and :data:`CLASSIC_MODELS` is the registry's
view of the models that are not networks.

Defaults are chosen to give each model class a fair showing on MNIST at a cost this 2-core
machine can afford on the full 60k training set (see each entry's description).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.decomposition import PCA
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterGrid, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.metaestimators import available_if

from digitlab.exceptions import ModelError
from digitlab.models.zoo import CLASSIC_MODELS, ModelSpec, register_model

# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def unit_pixels(x: np.ndarray) -> np.ndarray:
    """Flatten images to rows and scale uint8 pixels to float32 in [0, 1]."""
    x = np.asarray(x)
    return x.reshape(len(x), -1).astype(np.float32) / 255.0


def pixels_step() -> tuple[str, FunctionTransformer]:
    """The pipeline step every model starts with (a module-level function keeps it picklable)."""
    return ("pixels", FunctionTransformer(unit_pixels))


class CappedPCA(PCA):
    """:class:`~sklearn.decomposition.PCA` whose integer ``n_components`` is a cap, not a demand.

    scikit-learn refuses more components than ``min(n_samples, n_features)``; the zoo's PCA-50 front
    ends then crash on small training sets (the datasize task's smallest sizes, a validation search's
    subset, 8x8 images of 64 pixels, a few hundred fundus photographs). Here each fit keeps
    ``min(n_components, n_samples, n_features)`` components; ``n_components_`` says how many it kept
    and the ``n_components`` parameter itself is left as set (so ``clone`` and ``get_params`` see it).
    """

    def _capped(self, X) -> int | float | str | None:
        """The component count to fit ``X`` with (integer settings capped at the data's rank bound)."""
        n = self.n_components
        if isinstance(n, (int, np.integer)) and not isinstance(n, bool):
            return int(min(n, *np.shape(X)[:2]))
        return n

    def fit(self, X, y=None):
        return self._with_cap(X, lambda: super(CappedPCA, self).fit(X, y))

    def fit_transform(self, X, y=None):
        return self._with_cap(X, lambda: super(CappedPCA, self).fit_transform(X, y))

    def _with_cap(self, X, call):
        asked = self.n_components
        self.n_components = self._capped(X)
        try:
            return call()
        finally:
            self.n_components = asked


def pca_step(n_components: int, random_state: int) -> tuple[str, PCA]:
    """PCA front end: randomized SVD is fast on 60k x 784 and seeded for reproducibility. Keeps at
    most ``n_components`` (fewer when the training set has fewer images or pixels; see :class:`CappedPCA`)."""
    return (
        "pca",
        CappedPCA(
            n_components=n_components, svd_solver="randomized", whiten=False, random_state=random_state
        ),
    )


def stratified_split_possible(y: np.ndarray, test_size: int | float, train_size: int | None = None) -> bool:
    """Whether scikit-learn's stratified ``train_test_split`` can split labels ``y`` this way: every
    class needs two images, and both parts at least one image per class (it raises otherwise)."""
    counts = np.unique(np.asarray(y), return_counts=True)[1]
    n = int(counts.sum())
    n_test = math.ceil(test_size * n) if isinstance(test_size, float) else int(test_size)
    n_train = n - n_test if train_size is None else int(train_size)
    return bool(len(counts) and counts.min() >= 2 and min(n_test, n_train) >= len(counts))


class HGBClassifier(HistGradientBoostingClassifier):
    """:class:`~sklearn.ensemble.HistGradientBoostingClassifier` that also fits on very small sets.

    Its early stopping carves a stratified validation split (``validation_fraction``) that needs at
    least one image per class on each side; on a set too small for that (a few dozen images of ten
    classes, a class with one image) this fit runs without early stopping, up to ``max_iter`` rounds,
    instead of raising. ``early_stopping_used_`` records which happened.
    """

    def fit(self, X, y, sample_weight=None, **kwargs):
        frac = self.validation_fraction
        small = bool(
            self.early_stopping is True
            and frac is not None
            and kwargs.get("X_val") is None
            and not stratified_split_possible(y, frac)
        )
        if small:
            self.early_stopping = False
        try:
            super().fit(X, y, sample_weight=sample_weight, **kwargs)
        finally:
            if small:
                self.early_stopping = True
        self.early_stopping_used_ = bool(self.do_early_stopping_)
        return self


def _delegate_has(attr: str) -> Callable[[Any], bool]:
    """True when the (refitted, else template) estimator offers ``attr`` (for ``available_if``)."""
    return lambda self: hasattr(getattr(self, "best_estimator_", self.estimator), attr)


class ValidationSearch(ClassifierMixin, BaseEstimator):
    """Pick hyper-parameters on a held-out validation subset, then refit on all the data.

    A cheap, seeded alternative to cross-validated grid search: each grid point is fitted on a
    stratified subset of ``search_size`` training images and scored on ``val_size`` other ones;
    the best setting is refitted on the full training set.

    Attributes
    ----------
    best_params_ : dict, the chosen setting.
    search_results_ : list of dicts (params and validation accuracy) for every grid point.
    best_estimator_ : the refitted estimator.
    """

    def __init__(
        self,
        estimator=None,
        param_grid=None,
        search_size: int = 4000,
        val_size: int = 2000,
        random_state: int = 0,
    ):
        self.estimator = estimator
        self.param_grid = param_grid
        self.search_size = search_size
        self.val_size = val_size
        self.random_state = random_state

    def fit(self, X, y):
        y = np.asarray(y)
        n_search = min(self.search_size, int(0.7 * len(y)))
        n_val = min(self.val_size, len(y) - n_search)
        # stratified when every class fits on both sides (on a few dozen images it cannot: a plain split then)
        strat = y if stratified_split_possible(y, n_val, n_search) else None
        xs, xv, ys, yv = train_test_split(
            X, y, train_size=n_search, test_size=n_val, stratify=strat, random_state=self.random_state
        )
        self.search_results_ = []
        for params in ParameterGrid(self.param_grid or {}):
            est = clone(self.estimator).set_params(**params).fit(xs, ys)
            self.search_results_.append({**params, "val_accuracy": float(np.mean(est.predict(xv) == yv))})
        best = max(self.search_results_, key=lambda r: r["val_accuracy"])
        self.best_params_ = {k: v for k, v in best.items() if k != "val_accuracy"}
        self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_).fit(X, y)
        self.classes_ = self.best_estimator_.classes_
        return self

    def predict(self, X):
        return self.best_estimator_.predict(X)

    @available_if(_delegate_has("decision_function"))
    def decision_function(self, X):
        return self.best_estimator_.decision_function(X)

    @available_if(_delegate_has("predict_proba"))
    def predict_proba(self, X):
        return self.best_estimator_.predict_proba(X)


# ---------------------------------------------------------------------------------------------
# The zoo
# ---------------------------------------------------------------------------------------------


PENALTIES = ("l2", "l1", "elasticnet", "none")
# scikit-learn 1.8 deprecated LogisticRegression(penalty=...): the penalty is l1_ratio (0 = L2, 1 = L1) and C=inf
_PENALTY_DEPRECATED = inspect.signature(LogisticRegression).parameters["penalty"].default == "deprecated"


def _logreg_solver(penalty: str, solver: str | None) -> str:
    """lbfgs for L2 and no penalty (smooth objectives); saga, the one multinomial solver for L1 and elastic net."""
    return solver or ("saga" if penalty in ("l1", "elasticnet") else "lbfgs")


def logistic_regression(
    penalty: str = "l2", C: float = 1.0, l1_ratio: float = 0.5, solver: str | None = None, **kwargs
) -> LogisticRegression:
    """A multinomial :class:`~sklearn.linear_model.LogisticRegression` with an L2, L1, elastic-net or no penalty.

    ``penalty``: "l2" (lbfgs), "l1" (saga), "elasticnet" (saga, ``l1_ratio`` of L1 in the mix) or "none"
    (lbfgs, ``C`` ignored); ``C`` is the inverse strength (smaller = stronger). Written for both
    scikit-learn's old ``penalty=`` argument and its 1.8+ ``l1_ratio``/``C=inf`` spelling.
    """
    if penalty not in PENALTIES:
        raise ModelError(f"logreg penalty {penalty!r}: unknown; use one of {list(PENALTIES)}")
    if not 0.0 <= l1_ratio <= 1.0:
        raise ModelError(f"logreg l1_ratio = {l1_ratio}: must be between 0 (L2) and 1 (L1)")
    if C <= 0:
        raise ModelError(f"logreg C = {C}: must be positive (smaller = stronger penalty)")
    solver = _logreg_solver(penalty, solver)
    ratio = {"l2": 0.0, "l1": 1.0, "elasticnet": float(l1_ratio), "none": 0.0}[penalty]
    C = float("inf") if penalty == "none" else float(C)
    if _PENALTY_DEPRECATED:
        return LogisticRegression(C=C, l1_ratio=ratio, solver=solver, **kwargs)
    if penalty == "none":
        return LogisticRegression(penalty=None, solver=solver, **kwargs)
    return LogisticRegression(
        penalty=penalty, C=C, l1_ratio=ratio if penalty == "elasticnet" else None, solver=solver, **kwargs
    )


def _logreg(
    random_state: int,
    n_jobs: int,
    C: float = 0.1,
    max_iter: int = 200,
    tol: float = 1e-4,
    penalty: str = "l2",
    l1_ratio: float = 0.5,
    solver: str | None = None,
) -> Pipeline:
    # multinomial softmax regression; mild L2 (C=0.1) helps a little on 784 raw pixels. L1 and elastic
    # net use saga (lbfgs needs a smooth objective); saga is slower per iteration and its tolerance is
    # on the coefficients' change. Measured on this 2-core machine, one thread, C=0.1: on 500 images L2
    # 0.25 s (85.0 % on 2,000 test images), L1 6.7 s to converge at tol 1e-3 (71.8 %, 98 % zero
    # coefficients); on 5,000 images L2 1.6 s (91.0 %), L1 12.7 s for 30 saga epochs (88.5 %, 90 % zeros,
    # not converged) and 86 s for 200. Give L1/elastic net a smaller max_iter (30-50) on large sets.
    if penalty == "l2" and solver is None:  # the zoo's default, exactly as before
        return Pipeline(
            [
                pixels_step(),
                ("clf", LogisticRegression(C=C, max_iter=max_iter, tol=tol, random_state=random_state)),
            ]
        )
    clf = logistic_regression(
        penalty, C, l1_ratio, solver, max_iter=max_iter, tol=tol, random_state=random_state
    )
    return Pipeline([pixels_step(), ("clf", clf)])


def _linear_svm(random_state: int, n_jobs: int, C: float = 0.05, max_iter: int = 2000) -> Pipeline:
    # squared-hinge one-vs-rest, primal solver (n_samples >> n_features); tol 1e-3 gives the same
    # test accuracy as 1e-4 (91.11 % on 15k images) in two thirds of the time
    return Pipeline(
        [
            pixels_step(),
            ("clf", LinearSVC(C=C, dual=False, tol=1e-3, max_iter=max_iter, random_state=random_state)),
        ]
    )


def _rbf_svm(
    random_state: int,
    n_jobs: int,
    pca: int = 50,
    C: list | float = (2.0, 5.0, 10.0),
    gamma: list | float = (0.01, 0.02, 0.04),
    search_size: int = 4000,
    val_size: int = 2000,
) -> Any:
    steps = (
        [pixels_step()]
        + ([pca_step(pca, random_state)] if pca else [])
        + [("clf", SVC(kernel="rbf", cache_size=1000))]
    )
    base = Pipeline(steps)
    grid = {
        "clf__C": [float(c) for c in np.atleast_1d(C)],
        "clf__gamma": [float(g) for g in np.atleast_1d(gamma)],
    }
    if len(grid["clf__C"]) * len(grid["clf__gamma"]) == 1:
        return base.set_params(clf__C=grid["clf__C"][0], clf__gamma=grid["clf__gamma"][0])
    return ValidationSearch(base, grid, search_size=search_size, val_size=val_size, random_state=random_state)


def _knn(random_state: int, n_jobs: int, k: int = 3, pca: int = 50, weights: str = "distance") -> Pipeline:
    # PCA-50 keeps ~83 % of the pixel variance, removes noise and makes distances 15x cheaper
    steps = [pixels_step()] + ([pca_step(pca, random_state)] if pca else [])
    return Pipeline(steps + [("clf", KNeighborsClassifier(n_neighbors=k, weights=weights, n_jobs=n_jobs))])


def _tree(
    random_state: int,
    n_jobs: int,
    max_depth: int | None = None,
    min_samples_leaf: int = 1,
    criterion: str = "entropy",
) -> Pipeline:
    return Pipeline(
        [
            pixels_step(),
            (
                "clf",
                DecisionTreeClassifier(
                    criterion=criterion,
                    max_depth=max_depth,
                    min_samples_leaf=min_samples_leaf,
                    random_state=random_state,
                ),
            ),
        ]
    )


def _forest(
    random_state: int, n_jobs: int, n_estimators: int = 300, max_features: str | float = "sqrt"
) -> Pipeline:
    return Pipeline(
        [
            pixels_step(),
            (
                "clf",
                RandomForestClassifier(
                    n_estimators=n_estimators,
                    max_features=max_features,
                    n_jobs=n_jobs,
                    random_state=random_state,
                ),
            ),
        ]
    )


def _extra_trees(
    random_state: int, n_jobs: int, n_estimators: int = 300, max_features: str | float = "sqrt"
) -> Pipeline:
    return Pipeline(
        [
            pixels_step(),
            (
                "clf",
                ExtraTreesClassifier(
                    n_estimators=n_estimators,
                    max_features=max_features,
                    n_jobs=n_jobs,
                    random_state=random_state,
                ),
            ),
        ]
    )


def _hgb(
    random_state: int,
    n_jobs: int,
    max_iter: int = 200,
    learning_rate: float = 0.2,
    max_leaf_nodes: int = 31,
    pca: int = 50,
    l2_regularization: float = 1.0,
) -> Pipeline:
    # early stopping on a 10 % validation split stops when 10 rounds bring no improvement;
    # PCA-50 front end: on the raw 784 pixels each of the 10 trees per round costs ~15x more
    # (10k images: 420 s raw against 10 s on PCA-50 on this 2-core machine, 95.6 % vs 94.0 %)
    steps = [pixels_step()] + ([pca_step(pca, random_state)] if pca else [])
    return Pipeline(
        steps
        + [
            (
                "clf",
                HGBClassifier(
                    max_iter=max_iter,
                    learning_rate=learning_rate,
                    max_leaf_nodes=max_leaf_nodes,
                    l2_regularization=l2_regularization,
                    early_stopping=True,
                    validation_fraction=0.1,
                    n_iter_no_change=10,
                    random_state=random_state,
                ),
            )
        ]
    )


def _gnb(random_state: int, n_jobs: int, var_smoothing: float = 0.1) -> Pipeline:
    # var_smoothing adds a fraction of the largest pixel variance to every variance; the
    # default 1e-9 lets near-constant border pixels dominate the likelihood (~56 % accuracy)
    return Pipeline([pixels_step(), ("clf", GaussianNB(var_smoothing=var_smoothing))])


def _numpy_mlp(random_state: int, n_jobs: int, **params) -> Pipeline:
    from digitlab.models.numpy_mlp import NumpyMLPClassifier

    return Pipeline([pixels_step(), ("clf", NumpyMLPClassifier(random_state=random_state, **params))])


def _logreg_text(v: dict) -> str:
    pen = v["penalty"]
    text = {
        "l2": "L2 penalty",
        "l1": "L1 penalty",
        "none": "no penalty",
        "elasticnet": f"elastic net, {v['l1_ratio']:g} L1",
    }.get(pen, f"{pen} penalty")
    return (
        f"multinomial logistic regression ({text}, {_logreg_solver(pen, v.get('solver'))}, "
        f"C={'inf' if pen == 'none' else v['C']}) on pixels/255"
    )


def _mlp_defaults() -> dict:
    from digitlab.models.numpy_mlp import NumpyMLPClassifier

    return NumpyMLPClassifier().get_params()


# The classic zoo's registry entries (digitlab.models.zoo.ModelSpec), in the order the studies list
# them; a description template is filled with the builder's settings and the zoo settings that apply.
for _spec in (
    ModelSpec("logreg", "logistic regression", _logreg_text, _logreg, "linear", words_zh="逻辑回归"),
    ModelSpec(
        "linear_svm",
        "linear SVM",
        "linear SVM (squared hinge, one-vs-rest, C={C}) on pixels/255",
        _linear_svm,
        "linear",
        words_zh="线性 SVM",
    ),
    ModelSpec(
        "gnb",
        "Gaussian naive Bayes",
        "Gaussian naive Bayes on pixels/255, var_smoothing {var_smoothing}",
        _gnb,
        "probabilistic",
        words_zh="高斯朴素贝叶斯",
    ),
    ModelSpec(
        "tree",
        "decision tree",
        "decision tree ({criterion}, max_depth={max_depth}) on pixels/255",
        _tree,
        "tree",
        words_zh="决策树",
        in_prose=False,
    ),
    ModelSpec(
        "knn", "k-NN", "k-NN, k={k}, {weights}-weighted, on {input}", _knn, "neighbours", words_zh="k 近邻"
    ),
    ModelSpec(
        "random_forest",
        "random forest",
        "random forest, {n_estimators} trees, {max_features} of the pixels per split",
        _forest,
        "ensemble",
        settings=lambda s: {"n_estimators": s.n_estimators},
        words_zh="随机森林",
    ),
    ModelSpec(
        "extra_trees",
        "extra trees",
        "extremely randomised trees, {n_estimators} trees, {max_features} of the pixels per split",
        _extra_trees,
        "ensemble",
        settings=lambda s: {"n_estimators": s.n_estimators},
        words_zh="极端随机树",
    ),
    ModelSpec(
        "hgb",
        "gradient boosting",
        "histogram gradient boosting on {input}, up to {max_iter} rounds with early stopping, "
        "lr {learning_rate}, {max_leaf_nodes} leaves",
        _hgb,
        "ensemble",
        settings=lambda s: {"max_iter": s.hgb_max_iter, "pca": s.hgb_pca},
        words_zh="梯度提升树",
    ),
    ModelSpec(
        "rbf_svm",
        "RBF SVM",
        "RBF-kernel SVM on {input}, C and gamma picked on a {search_size}-image validation search",
        _rbf_svm,
        "kernel",
        settings=lambda s: {
            "search_size": s.svm_search_size,
            "C": list(s.svm_C),
            "gamma": list(s.svm_gamma),
            "pca": s.svm_pca,
        },
        train_cap=lambda s: s.svm_n_train,
        words_zh="RBF 核 SVM",
    ),
    ModelSpec(
        "numpy_mlp",
        "NumPy MLP",
        "from-scratch NumPy MLP, hidden {hidden}, SGD momentum {momentum}, lr {lr} "
        "({lr_decay} decay), {epochs} epochs",
        _numpy_mlp,
        "neural",
        settings=lambda s: {"epochs": s.mlp_epochs},
        defaults=_mlp_defaults,
        words_zh="NumPy 多层感知机",
    ),
):
    register_model(_spec, replace=True)


def describe(name: str, **params) -> str:
    """One line saying what model ``name`` is with these parameter overrides (for tables)."""
    return CLASSIC_MODELS[name].describe(**params)


def make_model(name: str, random_state: int = 0, n_jobs: int = 1, **params) -> Any:
    """Build an unfitted model of the classic zoo.

    Parameters
    ----------
    name : a key of :data:`CLASSIC_MODELS` (the registered models that are not networks).
    random_state : seed of every random step (PCA, trees, search split, initialisation).
    n_jobs : parallel jobs for models that support them (forests, k-NN).
    **params : overrides of the builder's keyword arguments (e.g. ``n_estimators=50``).

    Returns
    -------
    A scikit-learn estimator taking uint8 images ``(n, H, W)`` or ``(n, H*W)``.
    """
    if name not in CLASSIC_MODELS:
        raise ModelError(f"model {name!r}: unknown name; choose one of {', '.join(CLASSIC_MODELS)}")
    spec = CLASSIC_MODELS[name]
    try:
        return spec.build(random_state, n_jobs, **{**spec.params, **params})
    except TypeError as exc:
        raise ModelError(
            f"model {name!r}: bad parameter ({exc}); see digitlab.models.classic for its settings"
        ) from None
