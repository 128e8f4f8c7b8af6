"""Settings of the augment task (its ``[augment]`` config section): types, defaults = the standard profile,
ranges checked by ``validate()`` when the config is resolved."""

from __future__ import annotations

from dataclasses import dataclass, field

from digitlab.augment import AUGMENTATIONS
from digitlab.exceptions import ConfigError

ALL_AUGMENTATIONS = [n for n in AUGMENTATIONS if n != "identity" and not AUGMENTATIONS[n].colour_only]


COLOUR_AUGMENTATIONS = [n for n in AUGMENTATIONS if AUGMENTATIONS[n].colour_only]  # added on colour images


@dataclass
class Config:
    augmentations: list[str] = field(
        default_factory=lambda: list(ALL_AUGMENTATIONS)
    )  # catalogue names compared
    n_train: int = 10000  # stratified training subset for every CNN (0 = the whole training set)
    n_test: int = 0  # stratified test subset for clean accuracy and the flip analysis (0 = all)
    n_test_corrupt: int = 1000  # stratified test subset for the corruption suite (0 = all)
    train_p: float = 0.5  # probability that a training image is augmented (the same for every augmentation)
    net: str = "cnn"  # network family (digitlab.models.nets)
    # channels of the first block ("cnn"/"resnet"): a small, fast net (~97.5% after 2 epochs on 10k)
    width: int = 8
    n_blocks: int = 3  # conv blocks ("cnn" only)
    epochs: int = 2  # passes over the training subset per run
    batch_size: int = 128  # images per step
    lr: float = 0.01  # peak learning rate (one-cycle, AdamW: the engine's fast recipe)
    n_seeds: int = 2  # training seeds per augmentation (study seed, +1, ...)
    max_seconds: float = 0.0  # wall-time cap per training run (0 = none)
    shift_n: int = 1000  # images per distribution-shift measurement (half clean, half augmented)
    # images in the shared-embedding figure (each shown clean and under every augmentation)
    embed_n: int = 200
    # "pca" | "tsne" | "umap": the shared 2-D embedding (t-SNE: ~15 s for 3,600 points)
    embed_method: str = "tsne"
    gallery_n: int = 8  # images per gallery row

    def validate(self) -> None:
        unknown = [a for a in self.augmentations if a not in AUGMENTATIONS]
        if unknown or not self.augmentations:
            raise ConfigError(
                f"config key augment.augmentations: unknown or empty ({', '.join(unknown)}); "
                f"use names from {', '.join(ALL_AUGMENTATIONS + COLOUR_AUGMENTATIONS)}"
            )
        for key in ("n_train", "n_test", "n_test_corrupt"):
            if getattr(self, key) < 0:
                raise ConfigError(
                    f"config key augment.{key}: {getattr(self, key)} is negative; use 0 (= all) or a size"
                )
        for key in ("epochs", "n_seeds", "batch_size", "width", "n_blocks", "gallery_n"):
            if getattr(self, key) < 1:
                raise ConfigError(f"config key augment.{key}: {getattr(self, key)} must be at least 1")
        if not 0.0 < self.train_p <= 1.0:
            raise ConfigError(f"config key augment.train_p: {self.train_p} must be in (0, 1]")
        if self.shift_n < 40 or self.embed_n < 10:
            raise ConfigError("config keys augment.shift_n / embed_n: too small; use at least 40 / 10")
        if self.embed_method not in ("pca", "tsne", "umap"):
            raise ConfigError(
                f"config key augment.embed_method: {self.embed_method!r} unknown; use pca, tsne or umap"
            )


PROFILES: dict[str, dict] = {
    "quick": {
        "augmentations": ["hflip", "rotate_small", "rotate_large", "elastic", "gaussian_noise"],
        "n_train": 2000,
        "n_test": 1000,
        "n_test_corrupt": 500,
        "width": 8,
        "n_blocks": 2,
        "epochs": 1,
        "batch_size": 64,
        "n_seeds": 1,
        "shift_n": 300,
        "embed_n": 150,
        "embed_method": "pca",
    },
    "full": {
        "n_train": 0,
        "n_test": 0,
        "n_test_corrupt": 0,
        "width": 32,
        "epochs": 3,
        "n_seeds": 3,
        "shift_n": 4000,
        "embed_n": 1000,
        "embed_method": "tsne",
    },
}
