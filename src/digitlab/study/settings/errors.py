"""Settings of the errors task (its ``[errors]`` config section): types, defaults = the standard profile,
ranges checked by ``validate()`` when the config is resolved."""

from __future__ import annotations

from dataclasses import dataclass, field

from digitlab import embed as E
from digitlab.exceptions import ConfigError
from digitlab.experiments.error_analysis import CV_MODELS
from digitlab.models.zoo import check_models

# probabilistic classify models whose mean probabilities score the test labels, best-calibrated kinds
# first; models a run lacks are skipped (a single decision tree's 0/1 probabilities and naive Bayes'
# overconfident ones are left out on purpose)
DEFAULT_TEST_MODELS = ["cnn", "numpy_mlp", "random_forest", "extra_trees", "hgb", "knn", "logreg"]


@dataclass
class Config:
    """Settings of the errors task; defaults are the standard profile."""

    map_method: str = "umap"  # 2-D map of the test images: pca, tsne or umap
    map_points: int = 5000  # test images on the map (0 = all): the hard images (up to 10 %), then a stratified sample of the rest
    pca_dims: int = 50  # principal components of pixels/255 (fitted on the training images) for the map, class centres and k-NN
    # an image is hard when at least this share of the models gets it wrong (0 < value <= 1)
    hard_fraction: float = 0.5
    gallery_size: int = 24  # images in each gallery
    top_intersections: int = 15  # bars of the UpSet plot
    # most confident mistakes listed per model in the report (every mistake is in misclassified.csv)
    list_per_model: int = 5
    n_train: int = 20000  # training images scanned for label issues (stratified subset; 0 = all)
    # k-NN is the default: with 1 % planted flips in 3,000 / 10,000 MNIST training images it put 57 % / 66 % planted
    # flips among its first candidates against 50 % / 63 % for logistic regression, in 3 s against 68-96 s (busy 2 cores)
    # fast model for out-of-fold probabilities: knn or logreg, both on the PCA components
    cv_model: str = "knn"
    cv_folds: int = 5  # folds of the cross-validation
    cv_k: int = 10  # neighbours of the k-NN model (distance-weighted)
    # classify models whose probabilities are averaged for the test set; [] = the cv_model fitted on the training images
    test_models: list[str] = field(
        default_factory=lambda: list(DEFAULT_TEST_MODELS)
    )  # names of classify models
    # share of training labels flipped on purpose to measure the detector (0 = skip)
    planted_fraction: float = 0.01
    top_candidates: int = 20  # label candidates shown (flagged first, then the lowest self-confidence)
    # correctly classified test images per class measured for the trait comparison (0 = all)
    reference_per_class: int = 500

    def validate(self) -> None:
        def bad(key: str, fix: str) -> ConfigError:
            return ConfigError(f"config key errors.{key}: {getattr(self, key)!r} is out of range; {fix}")

        if self.map_method not in E.METHODS:
            raise ConfigError(
                f"config key errors.map_method: {self.map_method!r} unknown; choose from {', '.join(E.METHODS)}"
            )
        if self.cv_model not in CV_MODELS:
            raise ConfigError(
                f"config key errors.cv_model: {self.cv_model!r} unknown; choose from {', '.join(CV_MODELS)}"
            )
        if self.test_models:
            check_models(self.test_models, "errors.test_models")
        for key in ("map_points", "n_train", "reference_per_class"):
            if getattr(self, key) < 0:
                raise bad(key, "use 0 (all) or a positive count")
        if 0 < self.map_points < 50:
            raise bad("map_points", "use 0 (all) or at least 50")
        if self.pca_dims < 2:
            raise bad("pca_dims", "use at least 2 components, e.g. 50")
        for key in ("gallery_size", "top_intersections", "list_per_model", "cv_k", "top_candidates"):
            if getattr(self, key) < 1:
                raise bad(key, "use a count of at least 1")
        if self.cv_folds < 2:
            raise bad("cv_folds", "use at least 2 folds, e.g. 5")
        if not 0.0 < self.hard_fraction <= 1.0:
            raise bad("hard_fraction", "use a share in (0, 1], e.g. 0.5")
        if not 0.0 <= self.planted_fraction < 0.5:
            raise bad("planted_fraction", "use a share in [0, 0.5), e.g. 0.01")


# quick: ~20 s on MNIST on 2 cores (UMAP of 1,500 points after embed compiled numba; k-NN label scan of
# 5,000 training images twice, once with planted flips); see the closing note of issue 8.
PROFILES = {
    "quick": {
        "map_points": 1500,
        "n_train": 5000,
        "gallery_size": 16,
        "top_intersections": 12,
        "reference_per_class": 200,
    },
    "full": {"map_points": 0, "n_train": 0, "map_method": "tsne"},
}
