"""Settings of the cnn_sweeps task (its ``[cnn_sweeps]`` config section): types, defaults = the standard profile,
ranges checked by ``validate()`` when the config is resolved."""

from __future__ import annotations

from dataclasses import dataclass, field

from digitlab.exceptions import ConfigError
from digitlab.models.nets import NET_NAMES
from digitlab.study.prose.cnn_sweeps import LABELS, sweep_finding  # noqa: F401  (re-exported)
from digitlab.train import FAST_RECIPE, OPTIMIZERS, SCHEDULERS

_NET, _NET_PARAMS, _CFG = FAST_RECIPE  # the base point of every sweep


SWEEPS = (
    "lr",
    "batch_size",
    "optimizer",
    "epochs",
    "scheduler",
    "depth",
    "width",
    "kernel_size",
    "batch_norm",
    "family",
)


def _parse_optimizer(value: str) -> tuple[str, float | None, bool]:
    """``"nesterov:0.05"`` -> ("momentum", 0.05, True); ``"adam"`` -> ("adam", None, False)."""
    name, _, lr = str(value).partition(":")
    nesterov = name == "nesterov"
    return ("momentum" if nesterov else name), (float(lr) if lr else None), nesterov


@dataclass
class Config:
    """Settings of the sweeps; defaults are the standard profile."""

    sweeps: list[str] = field(default_factory=lambda: list(SWEEPS))  # which sweeps to run, in order
    n_train: int = 10_000  # training images (stratified subset; 0 = all)
    n_test: int = 0  # test images scored (stratified subset; 0 = all)
    # seeds per point (the spread in the error bars); standard: 3 since bf16 training left the time
    n_seeds: int = 3
    # The base point (defaults: the fast recipe), changed one setting at a time by the sweeps.
    epochs: int = 2
    batch_size: int = _CFG.batch_size
    lr: float = _CFG.lr
    optimizer: str = _CFG.optimizer
    scheduler: str = _CFG.scheduler
    n_blocks: int = _NET_PARAMS.get("n_blocks", 3)
    width: int = _NET_PARAMS.get("width", 16)
    kernel_size: int = 3
    batch_norm: bool = True
    # The values of each sweep.
    lr_values: list[float] = field(default_factory=lambda: [0.001, 0.003, 0.01, 0.02, 0.05, 0.1])
    batch_size_values: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    # "name" or "name:lr" (each optimiser at a learning rate that suits it); "nesterov" = momentum + Nesterov.
    optimizer_values: list[str] = field(
        default_factory=lambda: ["sgd:0.1", "momentum:0.05", "nesterov:0.05", "adam", "adamw"]
    )
    epochs_values: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    # ("exponential" is "step" with step_size 1, so it is left out of the default sweep.)
    scheduler_values: list[str] = field(
        default_factory=lambda: ["none", "step", "cosine", "onecycle", "plateau"]
    )
    depth_values: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6])
    width_values: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    kernel_size_values: list[int] = field(default_factory=lambda: [3, 5, 7])
    batch_norm_values: list[bool] = field(default_factory=lambda: [False, True])
    family_values: list[str] = field(default_factory=lambda: list(NET_NAMES))
    threads_per_job: int = 0  # torch threads per job (0 = cores / jobs)

    def validate(self) -> None:
        """Raise :class:`ConfigError` on an unknown sweep or a bad value."""
        bad = [s for s in self.sweeps if s not in SWEEPS]
        if bad:
            raise ConfigError(
                f"config key cnn_sweeps.sweeps: unknown sweep(s) {bad}; use some of {list(SWEEPS)}"
            )
        if self.n_seeds < 1 or self.n_train < 0 or self.n_test < 0:
            raise ConfigError("config keys cnn_sweeps.n_seeds/n_train/n_test: must be >= 1 / >= 0 / >= 0")
        for key in ("epochs", "batch_size", "n_blocks", "width", "kernel_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"config key cnn_sweeps.{key}: {getattr(self, key)} must be at least 1")
        if self.lr <= 0 or any(v <= 0 for v in self.lr_values):
            raise ConfigError(
                "config key cnn_sweeps.lr / lr_values: learning rates must be positive, e.g. 0.01"
            )
        for opt in self.optimizer_values:
            if _parse_optimizer(opt)[0] not in OPTIMIZERS:
                raise ConfigError(
                    f"config key cnn_sweeps.optimizer_values: {opt!r} unknown; use name or name:lr with name in "
                    f"{list(OPTIMIZERS) + ['nesterov']}"
                )
        for s in self.scheduler_values + [self.scheduler]:
            if s not in SCHEDULERS:
                raise ConfigError(
                    f"config key cnn_sweeps scheduler {s!r}: unknown; use one of {list(SCHEDULERS)}"
                )
        for f in self.family_values:
            if f not in NET_NAMES:
                raise ConfigError(
                    f"config key cnn_sweeps.family_values: {f!r} unknown; use some of {list(NET_NAMES)}"
                )
        if any(not 1 <= d <= 6 for d in self.depth_values):
            raise ConfigError("config key cnn_sweeps.depth_values: depths must be 1 to 6 conv blocks")


PROFILES: dict[str, dict] = {
    # Quick: batch 64 so that 1,800 images still give ~30 optimiser steps.
    "quick": {
        "sweeps": ["lr", "depth"],
        "lr_values": [0.003, 0.03],
        "depth_values": [1, 3],
        "n_train": 2000,
        "n_test": 1000,
        "epochs": 1,
        "batch_size": 64,
        "n_seeds": 2,
    },
    "full": {
        "n_train": 0,
        "n_test": 0,
        "n_seeds": 3,
        "epochs": 3,
        "epochs_values": [1, 2, 3, 5, 8],
        "lr_values": [0.0003, 0.001, 0.003, 0.01, 0.02, 0.05, 0.1, 0.3],
        "width_values": [4, 8, 16, 32, 64],
        "batch_size_values": [16, 32, 64, 128, 256, 512, 1024],
        "kernel_size_values": [3, 5, 7, 9],
    },
}
