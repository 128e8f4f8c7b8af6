"""Settings of the overfit task (its ``[overfit]`` config section): types, defaults = the standard profile,
ranges checked by ``validate()`` when the config is resolved."""

from __future__ import annotations

from dataclasses import dataclass, field

from digitlab.exceptions import ConfigError
from digitlab.experiments.regularisation import (
    LOGREG_PENALTIES,
    PENALTY_NETS,
    PLACES,
    RUNGS,
)


@dataclass
class Config:
    """Settings of the over-fitting study; defaults are the standard profile."""

    n_train: int = 2000  # training images (stratified subset of the official training set)
    # validation images, drawn from the other official training images (choose settings here)
    n_val: int = 1000
    n_test: int = 0  # test images (stratified subset; 0 = the whole official test set)
    n_seeds: int = 1  # seeds per point (weights, batches, the train/validation draw)
    # -- the training budget of every network (AdamW, one-cycle, weight_decay 0)
    epochs: int = 15  # passes over the training images
    min_steps: int = 200  # at least this many optimiser steps (more epochs on smaller sets; 0 = off)
    batch_size: int = 128  # images per optimiser step
    lr: float = 0.01  # peak learning rate of the one-cycle schedule
    # -- the networks
    cnn_blocks: int = 3  # conv blocks of the small CNN (each: conv 3x3, ReLU, 2x2 max-pool)
    cnn_width: int = 16  # channels of the first block (doubling per block)
    # units of the dense hidden layer in the CNN's head (dropout "in the head" acts on it)
    cnn_hidden: int = 128
    cnn_batch_norm: bool = False  # off: with BatchNorm a kernel's scale does not matter, so L1/L2 on it only changes the step size
    deeper_cnn_convs: int = 2  # convs per block of the ladder's deeper CNN (the small CNN has 1)
    mlp_hidden: list[int] = field(
        default_factory=lambda: [256]
    )  # the one-hidden-layer MLP (penalties and ladder)
    deep_mlp_hidden: list[int] = field(default_factory=lambda: [256, 256, 256])  # the ladder's deep MLP
    # -- penalties (0, the unregularised point, is always included)
    penalty_nets: list[str] = field(default_factory=lambda: ["cnn", "mlp"])  # networks of the L1/L2 study
    l2_values: list[float] = field(
        default_factory=lambda: [1e-4, 1e-3, 1e-2, 1e-1]
    )  # L2 strengths (coefficient of sum w^2)
    l1_values: list[float] = field(
        default_factory=lambda: [1e-6, 1e-5, 1e-4, 1e-3]
    )  # L1 strengths (coefficient of sum |w|)
    # -- logistic regression (scikit-learn; strength = 1/C; a no-penalty fit is the strength-0 point)
    logreg_C: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])  # inverse strengths
    logreg_penalties: list[str] = field(default_factory=lambda: ["l1", "l2"])  # l1 (saga) and/or l2 (lbfgs)
    logreg_max_iter: int = 50  # solver iterations (saga epochs for L1: it may stop before converging)
    # -- dropout (rate 0 is always included)
    dropout_rates: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.7])  # dropout probabilities
    dropout_places: list[str] = field(default_factory=lambda: list(PLACES))  # conv | head | both
    # -- complexity ladder and remedies
    ladder: list[str] = field(default_factory=lambda: list(RUNGS))  # rungs, simplest first
    augment: str = "shift"  # augmentation of the remedies ("shift", "affine", or one of digitlab.augment's)
    # epochs without validation improvement at which patience-based early stopping would stop
    patience: int = 3
    # torch/BLAS threads per training job (1: two threads on a busy 2-core box mostly wait)
    threads_per_job: int = 1

    def validate(self) -> None:
        """Raise a one-line :class:`ConfigError` on a bad value."""

        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key overfit.{key}: {problem}; {fix}")

        for key in (
            "n_train",
            "n_val",
            "n_seeds",
            "epochs",
            "batch_size",
            "cnn_blocks",
            "cnn_width",
            "deeper_cnn_convs",
            "logreg_max_iter",
            "patience",
        ):
            if getattr(self, key) < 1:
                raise bad(key, f"{getattr(self, key)} must be at least 1", "e.g. the default")
        for key in ("n_test", "min_steps", "cnn_hidden", "threads_per_job"):
            if getattr(self, key) < 0:
                raise bad(key, f"{getattr(self, key)} must be >= 0", "use 0 for the default behaviour")
        if not self.lr > 0:
            raise bad("lr", f"{self.lr} must be positive", "e.g. 0.01")
        if self.cnn_blocks > 6:
            raise bad("cnn_blocks", f"{self.cnn_blocks} is more than 6", "use 1 to 6")
        for key in ("mlp_hidden", "deep_mlp_hidden"):
            if not getattr(self, key) or any(h < 1 for h in getattr(self, key)):
                raise bad(key, f"{getattr(self, key)} needs at least one layer of >= 1 units", "e.g. [256]")
        for key in ("l2_values", "l1_values", "logreg_C"):
            vals = getattr(self, key)
            if not vals or any(not v > 0 for v in vals):
                raise bad(
                    key,
                    f"{vals} must be a non-empty list of positive numbers",
                    "e.g. [1e-4, 1e-3]; 0 is always added",
                )
        for key, allowed in (
            ("penalty_nets", PENALTY_NETS),
            ("logreg_penalties", LOGREG_PENALTIES),
            ("dropout_places", PLACES),
            ("ladder", RUNGS),
        ):
            vals = getattr(self, key)
            if not vals or any(v not in allowed for v in vals):
                raise bad(key, f"{vals} has unknown or no entries", f"use some of {list(allowed)}")
        if not self.dropout_rates or any(not 0.0 < r < 1.0 for r in self.dropout_rates):
            raise bad(
                "dropout_rates",
                f"{self.dropout_rates} must be rates in (0, 1)",
                "e.g. [0.25, 0.5, 0.7]; 0 is always added",
            )
        from digitlab.train import resolve_augment

        try:
            resolve_augment(self.augment)
        except Exception as exc:  # noqa: BLE001  (any lookup failure is a config error)
            raise bad("augment", f"{self.augment!r} is unknown ({exc})", "use 'shift' or 'affine'") from None


PROFILES: dict[str, dict] = {
    # Quick: 500 training images, a narrower CNN, one strength / rate per sweep (still every part).
    "quick": {
        "n_train": 500,
        "n_val": 250,
        "n_test": 1000,
        "epochs": 10,
        "min_steps": 100,
        "batch_size": 64,
        "cnn_width": 8,
        "cnn_hidden": 64,
        "mlp_hidden": [128],
        "deep_mlp_hidden": [128, 128, 128],
        "l2_values": [1e-2],
        "l1_values": [1e-4],
        "logreg_C": [1.0],
        "logreg_max_iter": 30,
        "dropout_rates": [0.5],
    },
    "full": {
        "n_seeds": 3,
        "epochs": 30,
        "l2_values": [1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
        "l1_values": [1e-7, 1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3],
        "logreg_C": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
        "logreg_max_iter": 200,
        "dropout_rates": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    },
}
