"""Settings of the classify task (its ``[classify]`` config section): types, defaults = the standard profile,
ranges checked by ``validate()`` when the config is resolved."""

from __future__ import annotations

from dataclasses import dataclass, field

from digitlab.exceptions import ConfigError
from digitlab.models.zoo import ZooSettings, check_models, model_names, recipe


def settings(cfg: Config) -> ZooSettings:
    return ZooSettings.from_config(cfg)


@dataclass
class Config:
    """Settings of the classify task; defaults are the standard profile."""

    models: list[str] = field(
        default_factory=lambda: model_names("classify")
    )  # registered zoo models (digitlab.models.zoo)
    n_train: int = 0  # training images (stratified subset); 0 = the full official training set
    n_test: int = 0  # test images (stratified subset); 0 = the full official test set
    svm_n_train: int = 0  # cap on the RBF SVM's training images (its fit is quadratic); 0 = no cap
    svm_search_size: int = 4000  # images per C/gamma candidate in the SVM's validation search
    svm_C: list[float] = field(default_factory=lambda: [2.0, 5.0, 10.0])  # RBF SVM C candidates
    svm_gamma: list[float] = field(
        default_factory=lambda: [0.01, 0.02, 0.04]
    )  # RBF SVM gamma candidates (PCA-50 of pixels/255)
    svm_pca: int = 50  # PCA components in front of the RBF SVM (0 = raw pixels)
    n_estimators: int = 100  # trees of the random forest and extra trees (the zoo's default 300 adds ~0.1 point for 3x the time)
    hgb_max_iter: int = 200  # boosting rounds cap (early stopping usually stops sooner)
    hgb_pca: int = 50  # PCA components in front of boosting (0 = raw pixels: ~40x slower)
    mlp_epochs: int = 15  # epochs of the NumPy MLP (learning rate halves every 5)
    # "strong" (digitlab.train.STRONG_RECIPE), "fast" (FAST_RECIPE) or "wide" (WIDE_RECIPE)
    cnn_recipe: str = "strong"
    cnn_augment: str = ""  # the CNN's training augmentation: "" = the recipe's; catalogue names joined by "+", e.g. "shift+hflip"
    cnn_epochs: int = 0  # override the recipe's epochs (0 = keep)
    cnn_max_seconds: float = 0.0  # wall-time cap of CNN training (0 = none)
    n_boot: int = 2000  # bootstrap resamples of the accuracy confidence interval
    ece_bins: int = 15  # equal-width confidence bins of the calibration error
    alpha: float = 0.05  # significance level of the pairwise McNemar tests (Holm-corrected)
    save_models: bool = True  # save every trained model under models/<name>/ (digitlab predict loads them)
    save_max_mb: float = 100.0  # skip saving a model whose serialised size exceeds this (MB; big forests)

    def validate(self) -> None:
        check_models(self.models, "classify.models")
        recipe(settings(self))
        for key in ("n_boot", "ece_bins", "n_estimators", "hgb_max_iter", "svm_search_size", "mlp_epochs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"config key classify.{key}: {getattr(self, key)} must be at least 1")
        for key in ("svm_pca", "hgb_pca", "svm_n_train", "cnn_epochs"):
            if getattr(self, key) < 0:
                raise ConfigError(
                    f"config key classify.{key}: {getattr(self, key)} must be at least 0 (0 = the default)"
                )
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"config key classify.alpha: {self.alpha} must be in (0, 1); e.g. 0.05")
        if self.save_max_mb <= 0:
            raise ConfigError(
                f"config key classify.save_max_mb: {self.save_max_mb} must be positive; e.g. 100"
            )


PROFILES = {
    "quick": {
        "n_train": 5000,
        "n_estimators": 60,
        "hgb_max_iter": 30,
        "svm_search_size": 1500,
        "svm_C": [5.0],
        "svm_gamma": [0.02, 0.04],
        "mlp_epochs": 8,
        "cnn_recipe": "fast",
        "cnn_epochs": 6,
        "n_boot": 500,
    },
    "full": {
        "n_estimators": 500,
        "hgb_max_iter": 500,
        "hgb_pca": 0,
        "svm_search_size": 10000,
        "svm_C": [1.0, 2.0, 5.0, 10.0, 20.0],
        "svm_gamma": [0.01, 0.015, 0.02, 0.03, 0.04],
        "mlp_epochs": 30,
        "n_boot": 5000,
    },
}


# Fashion-MNIST: the wide recipe with mirrored garments, the RBF SVM on PCA-100 with the benchmark's C and gamma
FASHION = {
    "cnn_recipe": "wide",
    "cnn_augment": "shift+hflip",
    "svm_pca": 100,
    "svm_C": [10.0],
    "svm_gamma": [0.016],
}


DATASET_PROFILES = {"fashion-mnist": {"standard": FASHION, "full": FASHION}}
