"""Settings of the fundus task (its ``[fundus]`` config section): types, defaults = the standard profile,
ranges checked by ``validate()`` when the config is resolved."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from digitlab.exceptions import ConfigError
from digitlab.experiments.fundus import (
    BALANCE,
    INPUTS,
    NET_FAMILIES,
)


def compare_file(compare_run: str) -> Path | None:
    """The augment result of a run folder (or of ``results/augment`` or the file itself), None if absent."""
    p = Path(compare_run).expanduser()
    for cand in (p / "results" / "augment" / "result.json", p / "result.json", p):
        if cand.is_file() and cand.name == "result.json":
            return cand
    return None


@dataclass
class Config:
    """Settings of the grading study; defaults are the standard profile."""

    n_train: int = 0  # training images (stratified subset; 0 = all)
    n_test: int = 0  # test images scored (stratified subset; 0 = all)
    balance: str = "oversample"  # "oversample": every grade drawn (with replacement) up to the largest grade's count; "none"
    models: list[str] = field(
        default_factory=lambda: ["logreg", "random_forest", "hgb", "knn"]
    )  # classic zoo models
    inputs: list[str] = field(
        default_factory=lambda: list(INPUTS)
    )  # classic-model inputs: "pixels" (downsampled), "features"
    # side in pixels of the downsampled images the classic models see (x3 colour channels)
    pixel_size: int = 32
    n_estimators: int = 200  # trees of the random forest / extra trees
    hgb_max_iter: int = 200  # boosting rounds cap (early stopping)
    nets: list[str] = field(
        default_factory=lambda: list(NET_FAMILIES)
    )  # network families trained (cnn, resnet, convmixer)
    # side in pixels the networks see (0 = as loaded: the dataset's image_size, 128 by default)
    net_size: int = 0
    width: int = 16  # channels of the first block of the CNN; ResNet gets half, ConvMixer's width is 4x this
    steps: int = 400  # optimiser steps per network (the budget: epochs follow from the training-set size)
    batch_size: int = 32  # images per step
    lr: float = 0.003  # peak learning rate (AdamW, one-cycle: the engine's defaults)
    net_augment: list[str] = field(
        default_factory=lambda: ["hflip", "rotate_large"]
    )  # augmentations of every family net ([] = none)
    train_p: float = 0.5  # probability that a training image gets each augmentation
    augmentations: list[str] = field(
        default_factory=lambda: ["none", "hflip", "rotate_large", "colour_jitter", "elastic"]
    )  # compared on the base CNN ("none" first)
    n_seeds: int = 1  # seeds per network (mean over seeds in the tables)
    # torch/BLAS threads while the networks train (0 = leave torch's setting); see the note below
    threads: int = 1
    compare_run: str = ""  # run folder of an MNIST study whose results/augment/result.json goes beside the fundus results ("" = explain from metadata)
    gallery_n: int = 6  # test images in the augmentation gallery

    def validate(self) -> None:
        from digitlab.augment import AUGMENTATIONS
        from digitlab.models.classic import CLASSIC_MODELS

        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key fundus.{key}: {problem}; {fix}")

        for key in ("n_train", "n_test"):
            if getattr(self, key) < 0:
                raise bad(key, f"{getattr(self, key)} is negative", "use 0 (= all) or a number of images")
        if self.balance not in BALANCE:
            raise bad("balance", f"{self.balance!r} unknown", f"use one of {', '.join(BALANCE)}")
        unknown = [m for m in self.models if m not in CLASSIC_MODELS]
        if unknown:
            raise bad("models", f"{unknown} unknown", f"choose from {', '.join(CLASSIC_MODELS)}")
        if [i for i in self.inputs if i not in INPUTS]:
            raise bad("inputs", f"{self.inputs} not valid", f"use any of {', '.join(INPUTS)}")
        if [n for n in self.nets if n not in NET_FAMILIES]:
            raise bad("nets", f"{self.nets} not valid", f"use any of {', '.join(NET_FAMILIES)}")
        if not self.nets and not (self.models and self.inputs):
            raise bad(
                "nets",
                "no grader to train (no nets, and no classic models or inputs)",
                "name at least one network or model",
            )
        aug_unknown = [
            a
            for a in list(self.net_augment) + list(self.augmentations)
            if a != "none" and a not in AUGMENTATIONS
        ]
        if aug_unknown:
            raise bad(
                "augmentations",
                f"{aug_unknown} unknown",
                f"use 'none' or names of {', '.join(AUGMENTATIONS)}",
            )
        if self.augmentations and self.augmentations[0] != "none":
            raise bad(
                "augmentations", "the first entry must be 'none'", "start the list with 'none' (the baseline)"
            )
        if not 8 <= self.pixel_size <= 128:
            raise bad("pixel_size", f"{self.pixel_size} out of range", "use 8 to 128 pixels")
        if self.net_size and not 16 <= self.net_size <= 1024:
            raise bad("net_size", f"{self.net_size} out of range", "use 0 (as loaded) or 16 to 1024 pixels")
        if self.threads < 0:
            raise bad(
                "threads",
                f"{self.threads} is negative",
                "use 0 (torch's default) or a number of threads, e.g. 1",
            )
        for key in ("width", "steps", "batch_size", "n_seeds", "n_estimators", "hgb_max_iter", "gallery_n"):
            if getattr(self, key) < 1:
                raise bad(key, f"{getattr(self, key)} must be at least 1", "use a positive number")
        if not self.lr > 0:
            raise bad("lr", f"{self.lr} must be positive", "e.g. 0.003")
        if not 0.0 < self.train_p <= 1.0:
            raise bad("train_p", f"{self.train_p} must be in (0, 1]", "e.g. 0.5")
        if self.compare_run and compare_file(self.compare_run) is None:
            raise bad(
                "compare_run",
                f"no results/augment/result.json under {self.compare_run!r}",
                "name the run folder of a study that ran the augment task (e.g. runs/<stamp>-mnist-quick) or leave it empty",
            )


# quick: for a synthetic set of a few hundred images at 64 px: the classic zoo on 16-px pixels and on
# the features, three small nets at 48 px and the CNN with two augmentations, 100 steps each (six
# trainings). Measured on 256 training / 109 test images at 64 px: 12 s with torch's 2 threads on
# near-idle cores; while another process kept the 2 cores busy, 168 s with 2 threads and 16 s with
# 1 (hence ``threads = 1``).
# On a non-fundus dataset the task returns at once.
PROFILES: dict[str, dict] = {
    "quick": {
        "models": ["logreg", "random_forest", "hgb"],
        "pixel_size": 16,
        "n_estimators": 100,
        "hgb_max_iter": 100,
        "net_size": 48,
        "width": 8,
        "steps": 100,
        "augmentations": ["none", "hflip", "colour_jitter"],
        "gallery_n": 4,
    },
    "full": {
        "models": ["logreg", "random_forest", "extra_trees", "hgb", "knn", "rbf_svm"],
        "n_estimators": 300,
        "steps": 1200,
        "n_seeds": 3,
        "augmentations": [
            "none",
            "hflip",
            "vflip",
            "rotate_large",
            "colour_jitter",
            "elastic",
            "gaussian_blur",
            "brightness_contrast",
        ],
    },
}


EXPERIMENT_KEYS = (
    "n_train",
    "n_test",
    "balance",
    "models",
    "inputs",
    "pixel_size",
    "n_estimators",
    "hgb_max_iter",
    "nets",
    "net_size",
    "width",
    "steps",
    "batch_size",
    "lr",
    "net_augment",
    "train_p",
    "augmentations",
    "n_seeds",
    "threads",
    "gallery_n",
)
