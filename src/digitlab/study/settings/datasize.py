"""Settings of the datasize task (its ``[datasize]`` config section): types, defaults = the standard profile,
ranges checked by ``validate()`` when the config is resolved."""

from __future__ import annotations

from dataclasses import dataclass, field

from digitlab.exceptions import ConfigError
from digitlab.models.zoo import ZooSettings, check_models, model_names, recipe
from digitlab.study.tasks.classify import DEFAULT_MODELS


@dataclass
class Config:
    """Settings of the datasize task; defaults are the standard profile."""

    models: list[str] = field(
        default_factory=lambda: list(DEFAULT_MODELS)
    )  # zoo models (classify's names), first look and growth
    # -- first look
    first_look_per_class: int = 100  # training images per class in the first look (x 10 classes = 1,000)
    first_look_test_per_class: int = 20  # test images per class in the first look (x 10 classes = 200)
    # -- growth
    sizes: list[int] = field(
        default_factory=lambda: [1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 0]
    )  # training images; 0 = all
    # > 0: that many log-spaced sizes from the smallest to the largest of `sizes`, instead of the list
    log_sizes: int = 0
    n_test: int = 0  # test images of the growth (stratified subset); 0 = the full official test set
    n_seeds: int = 3  # seeds per size (subset and model randomness) for models not in slow_models
    slow_models: list[str] = field(
        default_factory=lambda: ["rbf_svm", "cnn"]
    )  # models trained with slow_n_seeds seeds
    # seeds per size of the slow models (2: the CNN and RBF SVM curves get a spread too)
    slow_n_seeds: int = 2
    full_n_seeds: int = 1  # seeds on the whole training set (only the model's own randomness varies there; seed 0 = classify's run)
    table_sizes: list[int] = field(
        default_factory=lambda: [1000, 10000, 0]
    )  # sizes of the milestone table; 0 = all
    # adequate size: where gain_per more images buy less than this accuracy (0.001 = 0.1 points)
    min_gain: float = 0.001
    gain_per: int = 1000  # images the gain is counted per
    n_draws: int = 2000  # parameter draws (from the fit's covariance) for the adequate size's 95 % interval
    reuse_classify: bool = True  # read points classify already trained instead of retraining them
    # BLAS/torch threads per job (0 = cores / jobs); 1: parallelism comes from jobs (study.n_jobs)
    threads_per_job: int = 1
    # -- model settings: the same names and defaults as classify's (so its runs can be reused)
    svm_n_train: int = 0  # cap on the RBF SVM's training images; 0 = no cap
    svm_search_size: int = 4000  # images per C/gamma candidate in the SVM's validation search
    svm_C: list[float] = field(default_factory=lambda: [2.0, 5.0, 10.0])  # RBF SVM C candidates
    svm_gamma: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.04])  # RBF SVM gamma candidates
    svm_pca: int = 50  # PCA components in front of the RBF SVM (0 = raw pixels)
    n_estimators: int = 100  # trees of the random forest and extra trees
    hgb_max_iter: int = 200  # boosting rounds cap (early stopping usually stops sooner)
    hgb_pca: int = 50  # PCA components in front of boosting (0 = raw pixels)
    mlp_epochs: int = 15  # epochs of the NumPy MLP
    # "strong" (digitlab.train.STRONG_RECIPE), "fast" (FAST_RECIPE) or "wide" (WIDE_RECIPE)
    cnn_recipe: str = "strong"
    cnn_augment: str = ""  # the CNN's training augmentation: "" = the recipe's; catalogue names joined by "+", e.g. "shift+hflip"
    cnn_epochs: int = 0  # override the recipe's epochs (0 = keep)
    cnn_max_seconds: float = 0.0  # wall-time cap of CNN training (0 = none)
    # CNN optimiser-step budget (more epochs on small sets); 0 = the recipe's own (200)
    cnn_min_steps: int = 0

    def validate(self) -> None:
        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key datasize.{key}: {problem}; {fix}")

        check_models(self.models, "datasize.models")
        unknown = [m for m in self.slow_models if m not in model_names()]
        if unknown:
            raise bad("slow_models", f"{unknown} unknown", f"choose from {', '.join(model_names())}")
        recipe(ZooSettings.from_config(self))
        for key in (
            "first_look_per_class",
            "first_look_test_per_class",
            "n_seeds",
            "slow_n_seeds",
            "full_n_seeds",
            "gain_per",
            "n_draws",
            "n_estimators",
            "hgb_max_iter",
            "svm_search_size",
            "mlp_epochs",
        ):
            if getattr(self, key) < 1:
                raise bad(key, f"{getattr(self, key)} must be at least 1", "e.g. 1")
        for key in (
            "n_test",
            "log_sizes",
            "svm_n_train",
            "svm_pca",
            "hgb_pca",
            "cnn_epochs",
            "cnn_min_steps",
            "threads_per_job",
        ):
            if getattr(self, key) < 0:
                raise bad(key, f"{getattr(self, key)} must be at least 0", "0 means the default")
        if not self.sizes or any(s < 0 for s in self.sizes) or any(s < 0 for s in self.table_sizes):
            raise bad(
                "sizes",
                f"{self.sizes} must be a non-empty list of sizes >= 0",
                "e.g. [1000, 5000, 0] (0 = all)",
            )
        if self.log_sizes == 1:
            raise bad("log_sizes", "1 size is no curve", "use 0 (the list) or at least 2")
        if not 0.0 < self.min_gain < 1.0:
            raise bad("min_gain", f"{self.min_gain} must be in (0, 1)", "e.g. 0.001 (0.1 accuracy points)")
        if self.cnn_max_seconds < 0:
            raise bad("cnn_max_seconds", f"{self.cnn_max_seconds} must be >= 0", "0 = no cap")


# The zoo settings of the quick and full profiles are classify's, so its runs can be reused. Quick: the
# CNN gets 100 optimiser steps at least instead of the recipe's 200 (on 1,000 MNIST images 96.3 / 94.6 /
# 96.4 % against 96.5 / 97.1 / 96.6 %, in half the time; see digitlab.train's recipe notes).
# Every profile: one thread per job. The grid is many small independent fits, so parallelism belongs to
# the jobs (study.n_jobs); two threads per fit on a busy 2-core machine ran a 200-step CNN on 8x8 images
# in 64-75 s against 5 s with one thread (measured), as the threads' spin-waits fight other processes.
PROFILES = {
    "quick": {
        "models": ["gnb", "logreg", "knn", "random_forest", "cnn"],
        "sizes": [1000, 2000, 5000],
        "n_seeds": 2,
        "slow_n_seeds": 1,
        "slow_models": ["cnn"],
        "table_sizes": [1000, 5000],
        "n_draws": 500,
        "n_estimators": 60,
        "hgb_max_iter": 30,
        "svm_search_size": 1500,
        "svm_C": [5.0],
        "svm_gamma": [0.02, 0.04],
        "mlp_epochs": 8,
        "cnn_recipe": "fast",
        "cnn_epochs": 6,
        "cnn_min_steps": 100,
    },
    "full": {
        "sizes": [500, 1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 45000, 0],
        "n_seeds": 5,
        "slow_n_seeds": 3,
        "full_n_seeds": 3,
        "n_draws": 5000,
        "n_estimators": 500,
        "hgb_max_iter": 500,
        "hgb_pca": 0,
        "svm_search_size": 10000,
        "svm_C": [1.0, 2.0, 5.0, 10.0, 20.0],
        "svm_gamma": [0.01, 0.015, 0.02, 0.03, 0.04],
        "mlp_epochs": 30,
    },
}
