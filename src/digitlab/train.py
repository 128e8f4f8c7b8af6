"""The PyTorch training engine: in-memory tensors, seeded shuffling, schedulers, best checkpoint.

The whole training set lives as one float tensor on the device (MNIST is 188 MB as float32), so a
batch is an index into it: no per-sample Python, no DataLoader workers. One call trains a model::

    net = build_net("cnn", seed=0)
    result = fit(net, ds.x_train, ds.y_train, TrainConfig(epochs=2))
    proba = predict_proba(result.model, ds.x_test, norm=result.norm)

``fit`` carves a stratified validation split from the training images (``val_fraction``), keeps the
checkpoint with the best validation accuracy and restores it at the end, records one history row
per epoch, and stops early on a patience or a wall-time budget. :class:`CNNClassifier` wraps it as
a scikit-learn estimator; :func:`cross_validate` runs k stratified folds.

Recipes (``(net_name, net_params, TrainConfig)``): :data:`FAST_RECIPE` (99.35 % MNIST test accuracy
in 2 epochs, about 25 CPU seconds) and :data:`STRONG_RECIPE` (99.58 %, 5 epochs with random shifts);
both have a budget of at least 200 optimiser steps (``min_steps``), so on small training sets they
run more epochs (the fast recipe on 1,000 images: 96.5 % instead of 72 %); measurements in the
comments above them and from ``benchmarks/bench_train.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from digitlab.exceptions import ConfigError, ModelError
from digitlab.models.nets import build_net
from digitlab.runtime import (
    DEVICES,
    PRECISIONS,
    autocast,
    limit_threads,
    progress_bar,
    resolve_device,
    resolve_precision,
)

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULERS = ("none", "step", "multistep", "exponential", "cosine", "onecycle", "plateau")
PER_BATCH = ("cosine", "onecycle")  # schedulers stepped after every batch; the others after every epoch


# =============================================================================================
# Configuration
# =============================================================================================


@dataclass
class TrainConfig:
    """How to train. Defaults are the fast recipe's (see :data:`FAST_RECIPE`), except ``min_steps`` (off).

    Budget: ``epochs`` passes over the training split, or more when ``min_steps`` is set and those
    passes would take fewer optimiser steps (``ceil(min_steps / steps_per_epoch)`` epochs): a recipe
    fixed in epochs shrinks with the data (2 epochs at batch 256 are 8 steps on 1,000 images), a step
    budget does not. :class:`TrainResult` records the epochs and steps a run actually had.

    Regularisation: ``l1`` and ``l2`` add the coupled penalties ``l1 * sum|w|`` and ``l2 * sum w^2``
    over the weight matrices and convolution kernels (not biases, not BatchNorm) to the loss, so their
    gradients (``l1 * sign(w)``, ``2 * l2 * w``) go through the optimiser like the data's. This is
    what "L2 regularisation" means in the textbook sense. ``weight_decay`` is the optimiser's own
    decay and is NOT the same thing under the default ``adamw``: AdamW's decay is decoupled
    (Loshchilov & Hutter 2019), ``w -= lr * weight_decay * w`` outside the adaptive step, applied to
    every parameter; under "sgd"/"momentum"/"adam" torch adds ``weight_decay * w`` to the gradient
    of every parameter (biases and BatchNorm included), i.e. a coupled L2 of ``weight_decay / 2``.
    To study L2 as L2, vary ``l2`` (with ``weight_decay=0`` to isolate it).
    """

    epochs: int = 2  # passes over the training split
    # optimiser-step budget: more epochs when epochs x steps-per-epoch falls short (0 = off)
    min_steps: int = 0
    batch_size: int = 256  # images per optimiser step
    lr: float = 0.02  # base learning rate (one-cycle: the peak)
    optimizer: str = "adamw"  # "sgd" | "momentum" (SGD with momentum) | "adam" | "adamw"
    momentum: float = 0.9  # for "momentum" (and SGD-based one-cycle cycling)
    nesterov: bool = False  # Nesterov momentum for "momentum"
    # the optimiser's decay: coupled L2 in sgd/momentum/adam, DECOUPLED decay in adamw
    weight_decay: float = 5e-4
    # coefficient of the L1 penalty l1 * sum |w| over weight matrices/kernels, added to the loss
    l1: float = 0.0
    # coefficient of the L2 penalty l2 * sum w^2 over weight matrices/kernels, added to the loss
    l2: float = 0.0
    scheduler: str = "onecycle"  # one of SCHEDULERS; onecycle and cosine step per batch, the others per epoch
    step_size: int = 1  # "step": epochs between decays
    gamma: float = 0.5  # "step"/"multistep"/"exponential": decay factor; "plateau": factor
    milestones: list[int] = field(default_factory=lambda: [2, 4])  # "multistep": epochs of decay
    min_lr: float = 0.0  # "cosine": final learning rate
    pct_start: float = 0.25  # "onecycle": fraction of steps spent warming up
    plateau_patience: int = 1  # "plateau": epochs without val-loss improvement before decaying
    val_fraction: float = 0.1  # stratified validation split carved from train (0 = none)
    early_stopping_patience: int = 0  # epochs without val-accuracy improvement before stopping (0 = off)
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    seed: int = 0  # seeds shuffling, augmentation, dropout and the validation split
    device: str = "auto"  # "auto" (cuda > mps > cpu) | "cpu" | "cuda" | "mps"
    max_seconds: float = 0.0  # wall-time budget of the training loop (0 = none)
    channels_last: bool = True  # NHWC memory layout (faster convolutions on CPU and GPU)
    precision: str = "auto"  # training forward pass: "fp32", "bf16" (autocast; fp32 weights, loss and evaluation) or "auto" (bf16 where the hardware runs it natively)
    num_threads: int = 0  # torch CPU threads during fit (0 = leave torch's setting)
    eval_batch_size: int = 1024  # images per forward pass when evaluating
    augment: str = ""  # augmentation by name from digitlab.augment's catalogue ("shift", "affine", ...; "" = none); fit(augment=...) overrides

    def validate(self) -> None:
        """Raise :class:`ConfigError` on a bad value (called by :func:`fit`)."""
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.optimizer!r}: unknown; use one of {list(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"scheduler {self.scheduler!r}: unknown; use one of {list(SCHEDULERS)}")
        if self.device not in DEVICES:
            raise ConfigError(f"device {self.device!r}: unknown; use one of {list(DEVICES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r}: unknown; use one of {list(PRECISIONS)}")
        for key in ("epochs", "batch_size", "eval_batch_size", "step_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train {key} = {getattr(self, key)}: must be at least 1")
        if self.min_steps < 0:
            raise ConfigError(
                f"train min_steps = {self.min_steps}: must be 0 (off) or a number of optimiser steps; e.g. 300"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"train val_fraction = {self.val_fraction}: must be in [0, 1); e.g. 0.1")
        if self.lr <= 0:
            raise ConfigError(f"train lr = {self.lr}: must be positive; e.g. 0.01")
        for key in ("l1", "l2", "weight_decay"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train {key} = {getattr(self, key)}: must be non-negative; e.g. 1e-4")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"train label_smoothing = {self.label_smoothing}: must be in [0, 1)")


@dataclass
class TrainResult:
    """What :func:`fit` returns. ``model`` holds the best checkpoint by validation accuracy."""

    model: nn.Module
    history: list[dict[str, float]]
    best_epoch: int
    train_seconds: float
    n_train_images_seen: int
    norm: Norm  # (mean, std) of the training split: floats (greyscale) or one per channel (colour)
    stopped_early: str = ""  # "", "patience" or "time"
    epochs_planned: int = 0  # epochs the run was set up for: cfg.epochs, or more to reach cfg.min_steps
    epochs_run: int = 0  # epochs actually run (fewer than planned after an early stop)
    steps: int = 0  # optimiser steps actually taken
    steps_per_epoch: int = 0  # ceil(training images / batch size)
    precision: str = "fp32"  # the precision the forward pass ran in ("fp32" or "bf16"; see resolve_precision)


def planned_epochs(cfg: TrainConfig, n_train: int) -> int:
    """Epochs a run of ``cfg`` on ``n_train`` training images (after the validation split) is set up for.

    ``cfg.epochs``, or, when ``cfg.min_steps`` is set and ``cfg.epochs`` passes would take fewer
    optimiser steps, ``ceil(min_steps / steps_per_epoch)``: a budget in steps does not shrink with the data.
    """
    steps = math.ceil(n_train / cfg.batch_size)
    if cfg.min_steps > 0 and cfg.epochs * steps < cfg.min_steps:
        return math.ceil(cfg.min_steps / max(steps, 1))
    return cfg.epochs


# =============================================================================================
# Data: uint8 arrays -> float tensors on the device, stratified split, batched augmentation
# =============================================================================================


MAX_CHANNELS = 4  # a trailing axis this small is channels ((n, H, W, C) colour); a larger one is not


def as_images(x: np.ndarray) -> np.ndarray:
    """Images as uint8 ``(n, H, W)`` (greyscale) or ``(n, H, W, C)`` (colour, channels last).

    Accepts greyscale ``(n, H, W)``, ``(n, 1, H, W)``, ``(n, H, W, 1)`` or square ``(n, H*W)``, and colour
    ``(n, H, W, C)`` or channels-first ``(n, C, H, W)`` with ``2 <= C <= 4`` (taken as channels first only
    when the last axis is too long to be channels). Non-uint8 input is taken to be on the 0..255 scale,
    or on 0..1 when its maximum is at most 1.
    """
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    elif x.ndim == 4 and x.shape[3] == 1:
        x = x[..., 0]
    elif x.ndim == 4 and x.shape[3] > MAX_CHANNELS and 1 < x.shape[1] <= MAX_CHANNELS:
        x = x.transpose(0, 2, 3, 1)  # (n, C, H, W) -> (n, H, W, C)
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ModelError(f"images of {x.shape[1]} features: not a square image; pass (n, H, W) arrays")
        x = x.reshape(len(x), side, side)
    if x.ndim == 4 and not 1 < x.shape[3] <= MAX_CHANNELS:
        raise ModelError(
            f"images of shape {x.shape}: a colour batch is (n, H, W, C) with 2 to {MAX_CHANNELS} channels"
        )
    if x.ndim not in (3, 4):
        raise ModelError(
            f"images of shape {x.shape}: expected (n, H, W) or (n, H, W, C) uint8 (or (n, H*W)); reshape them"
        )
    if x.dtype != np.uint8:
        scale = 255.0 if x.size and float(np.max(x)) <= 1.0 else 1.0
        x = np.clip(np.rint(x.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    return x


def image_shape(x: np.ndarray) -> tuple[int, int, int]:
    """``(C, H, W)`` of one image of the batch ``x`` (any layout :func:`as_images` accepts): a net's ``in_shape``."""
    x = as_images(x)
    return (1, *x.shape[1:3]) if x.ndim == 3 else (x.shape[3], x.shape[1], x.shape[2])


def to_tensor(x: np.ndarray, device: str) -> torch.Tensor:
    """uint8 ``(n, H, W)`` -> float ``(n, 1, H, W)``, ``(n, H, W, C)`` -> ``(n, C, H, W)``, in [0, 1] on ``device``."""
    x = as_images(x)
    if not x.flags.writeable:  # joblib hands workers read-only memory maps; torch wants writable memory
        x = x.copy()
    if x.ndim == 4:
        return torch.from_numpy(x).to(device).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    return torch.from_numpy(x).to(device).unsqueeze(1).float().div_(255.0)


Norm = tuple[Any, Any]  # (mean, std): floats for greyscale, tuples of C floats (one per channel) for colour


def image_norm(x: torch.Tensor) -> Norm:
    """Normalisation ``(mean, std)`` of float images ``(n, C, H, W)``: global floats when ``C == 1``, per channel otherwise."""
    if x.shape[1] == 1:
        return float(x.mean()), float(x.std()) or 1.0
    mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
    return tuple(float(m) for m in mean), tuple(float(s) or 1.0 for s in std)


def normalise(x: torch.Tensor, norm: Norm) -> torch.Tensor:
    """``(x - mean) / std`` with a :func:`image_norm` pair (per channel when it holds one value per channel)."""
    mean, std = norm
    if isinstance(mean, (int, float)):
        return (x - mean) / std
    shape = (1, len(mean), 1, 1)
    return (x - torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape)) / torch.tensor(
        std, dtype=x.dtype, device=x.device
    ).view(shape)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` with ``fraction`` of every class in ``val`` (at least one each)."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = min(max(1, int(round(fraction * len(idx)))), len(idx) - 1)
        val.append(idx[:k])
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(y)), val_idx), val_idx


def random_shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate every image by its own random integer offset in ``[-max_shift, max_shift]`` (zero fill).

    One gather on the padded batch: no per-sample Python. The name "shift" resolves to the catalogue's
    equal transform (``pad_crop``, ``pad=2``; see :func:`resolve_augment`), not to this function.
    """
    b, c, h, w = x.shape
    m = max_shift
    shifts = torch.randint(-m, m + 1, (2, b), generator=generator, device=generator.device).to(x.device)
    padded = F.pad(x, (m, m, m, m))
    rows = (torch.arange(h, device=x.device)[None, :] + m - shifts[0][:, None])[:, None, :, None]
    cols = (torch.arange(w, device=x.device)[None, :] + m - shifts[1][:, None])[:, None, None, :]
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows, cols]


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    degrees: float = 10.0,
    translate: float = 0.1,
    scale: float = 0.1,
) -> torch.Tensor:
    """Random rotation (+-``degrees``), scaling (1 +- ``scale``) and translation (+- ``translate`` of
    the size) per image, by one ``affine_grid``/``grid_sample`` call on the batch.

    Not what the name "affine" means (that is the catalogue's, with shear; see :func:`resolve_augment`);
    pass this function itself as ``augment=`` to train with it."""
    b = x.shape[0]
    u = torch.rand(4, b, generator=generator, device=generator.device).to(x.device) * 2 - 1
    angle = u[0] * math.radians(degrees)
    s = 1 + u[1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack(
        [torch.stack([cos, -sin, u[2] * translate * 2], 1), torch.stack([sin, cos, u[3] * translate * 2], 1)],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def resolve_augment(augment: str | Augment | None) -> Augment | None:
    """The augmentation a name means: :func:`digitlab.augment.get_augmentation` of it, with its
    catalogue defaults. ``None``, ``""`` and ``"none"`` mean no augmentation; a callable passes through.

    There is one catalogue, so a name means the same transform in training as in
    ``augment_images``, ``plot_gallery`` and ``distribution_shift``: "affine" is the catalogue's
    (rotation +-10 deg, shift +-8 %, scale 0.9-1.1, shear +-10 deg), "shift" its alias of
    ``pad_crop`` with ``pad=2`` (integer shifts of up to 2 pixels, zero fill; STRONG_RECIPE's).
    :func:`random_shift` and :func:`random_affine` above are not reached by name. Names joined by
    ``+`` apply in turn ("shift+hflip": a shift, then a horizontal flip for half the images).
    """
    if augment is None or callable(augment):
        return augment
    if augment in ("", "none"):
        return None
    from digitlab.augment import get_augmentation

    if "+" in augment:
        steps = [get_augmentation(part.strip()) for part in augment.split("+")]

        def composed(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            for step in steps:
                x = step(x, gen)
            return x

        return composed
    return get_augmentation(augment)


# =============================================================================================
# Optimiser, scheduler, loss
# =============================================================================================


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser named by ``cfg.optimizer``."""
    params, lr, wd = model.parameters(), cfg.lr, cfg.weight_decay
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if cfg.optimizer == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=wd)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """The learning-rate scheduler named by ``cfg.scheduler`` (``None`` for "none")."""
    s = cfg.scheduler
    if s == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    if s == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    if s == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)
    if s == "cosine":  # annealed per batch: smooth, and equal to the per-epoch formula at epoch starts
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.min_lr
        )
    if s == "onecycle":
        total = cfg.epochs * steps_per_epoch
        if total < 3:  # no room for a warm-up and an annealing phase: train at the peak rate
            return None
        # Torch needs at least one step in each phase; tiny runs stretch the warm-up to fit.
        pct = min(max(cfg.pct_start, 1.5 / total), 1 - 1.5 / total)
        cycle = cfg.optimizer == "momentum"  # cycle momentum only where there is one to cycle
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=total, pct_start=pct, cycle_momentum=cycle
        )
    if s == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=cfg.gamma, patience=cfg.plateau_patience
        )
    return None


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of |w| over weight matrices and kernels (biases and norm parameters excluded)."""
    return sum(p.abs().sum() for p in model.parameters() if p.ndim > 1)


def l2_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of w^2 over weight matrices and kernels (biases and norm parameters excluded).

    ``cfg.l2 * l2_penalty(model)`` is the coupled L2 term :func:`fit` adds to the loss; its gradient
    is ``2 * l2 * w`` on those weights and zero elsewhere.
    """
    return sum(p.pow(2).sum() for p in model.parameters() if p.ndim > 1)


def penalty(model: nn.Module, cfg: TrainConfig) -> torch.Tensor | float:
    """The regularisation term :func:`fit` adds to the mini-batch loss: ``l1 * sum|w| + l2 * sum w^2``."""
    total: torch.Tensor | float = 0.0
    if cfg.l1 > 0:
        total = total + cfg.l1 * l1_penalty(model)
    if cfg.l2 > 0:
        total = total + cfg.l2 * l2_penalty(model)
    return total


# =============================================================================================
# Training loop
# =============================================================================================


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    norm: Norm,
    batch_size: int = 1024,
    channels_last: bool = False,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on float images ``x`` in [0, 1] (eval mode)."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(_layout(normalise(x[i : i + batch_size], norm), channels_last))
        yb = y[i : i + batch_size]
        loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    model.train(was_training)
    return loss_sum / max(len(x), 1), correct / max(len(x), 1)


@dataclass
class _Split:
    x: torch.Tensor
    y: torch.Tensor


def _prepare(x_train, y_train, x_val, y_val, cfg: TrainConfig, device: str) -> tuple[_Split, _Split | None]:
    y_train = np.asarray(y_train, dtype=np.int64)
    x_train = as_images(x_train)
    if x_val is None and cfg.val_fraction > 0:
        tr, va = stratified_split(y_train, cfg.val_fraction, cfg.seed)
        x_train, y_train, x_val, y_val = x_train[tr], y_train[tr], x_train[va], y_train[va]
    train = _Split(to_tensor(x_train, device), torch.as_tensor(y_train, device=device))
    val = None
    if x_val is not None:
        val = _Split(
            to_tensor(x_val, device), torch.as_tensor(np.asarray(y_val, dtype=np.int64), device=device)
        )
    return train, val


def _train_epoch(
    model, opt, sched, train: _Split, norm, cfg: TrainConfig, gen, augment, deadline, step
) -> dict[str, Any]:
    """One pass over a seeded permutation of the training tensor. Returns sums and a time-out flag."""
    model.train()
    n = len(train.x)
    perm = torch.randperm(n, generator=gen, device=gen.device).to(train.x.device)
    # Sums stay on the device: a .item() per batch would stall a GPU on every step.
    loss_sum = torch.zeros((), device=train.x.device)
    correct = torch.zeros((), dtype=torch.long, device=train.x.device)
    seen, n_steps, timed_out = 0, 0, False
    for i in range(0, n, cfg.batch_size):
        idx = perm[i : i + cfg.batch_size]
        xb, yb = train.x[idx], train.y[idx]
        if augment is not None:
            xb = augment(xb, gen)
        with autocast(cfg.precision, str(train.x.device.type)):
            logits = model(_layout(normalise(xb, norm), cfg.channels_last))
        logits = logits.float()  # the loss, the penalty and the optimiser stay in fp32
        loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
        total = loss + penalty(model, cfg) if (cfg.l1 > 0 or cfg.l2 > 0) else loss
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if isinstance(sched, torch.optim.lr_scheduler.OneCycleLR):
            if sched.last_epoch + 1 < sched.total_steps:
                sched.step()
        elif isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR):
            sched.step()
        loss_sum += loss.detach() * len(idx)
        correct += (logits.argmax(1) == yb).sum()
        seen += len(idx)
        n_steps += 1
        step()
        if deadline and time.perf_counter() > deadline:
            timed_out = True
            break
    return {
        "train_loss": loss_sum.item() / max(seen, 1),
        "train_acc": correct.item() / max(seen, 1),
        "seen": seen,
        "steps": n_steps,
        "timed_out": timed_out,
    }


def fit(
    model: nn.Module,
    x_train: np.ndarray,
    y_train: np.ndarray,
    cfg: TrainConfig | None = None,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    augment: str | Augment | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train ``model`` on uint8 images and return the best checkpoint by validation accuracy.

    Parameters
    ----------
    model : a network taking normalised ``(B, C, H, W)`` floats; moved to the device and trained in place.
    x_train, y_train : uint8 images, greyscale ``(n, H, W)`` or colour ``(n, H, W, C)`` (see
        :func:`as_images`), and integer labels ``0..n_classes-1``. Greyscale images are normalised by
        the training split's global mean and std; colour images per channel (one mean and std each).
    cfg : :class:`TrainConfig` (defaults to the fast recipe's settings).
    x_val, y_val : a validation set; if absent, ``cfg.val_fraction`` of each class is carved from train.
        With neither, the last epoch is kept and the history's val columns are NaN.
    augment : ``augment(x, generator) -> x`` on float ``(B, C, H, W)`` in [0, 1], applied per batch
        before normalisation; or a name of :mod:`digitlab.augment`'s catalogue ("shift", "affine", ...;
        see :func:`resolve_augment`).
        ``None`` uses ``cfg.augment``.
    progress : show a rich progress bar per epoch.

    Returns
    -------
    TrainResult : the model (best checkpoint restored), per-epoch history, timings and the
        normalisation ``(mean, std)`` of the training split to reuse in :func:`predict_proba`.
    """
    cfg = cfg or TrainConfig()
    cfg.validate()
    device = resolve_device(cfg.device)
    augment = resolve_augment(augment if augment is not None else (cfg.augment or None))
    with limit_threads(cfg.num_threads):  # torch, BLAS and OpenMP threads (0 = unchanged)
        torch.manual_seed(cfg.seed)  # dropout masks; the weights were drawn when the model was built
        train, val = _prepare(x_train, y_train, x_val, y_val, cfg, device)
        norm = image_norm(train.x)
        model.to(device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        return _loop(model, train, val, norm, cfg, device, augment, progress)


def _loop(
    model, train: _Split, val: _Split | None, norm, cfg: TrainConfig, device: str, augment, progress: bool
) -> TrainResult:
    gen = torch.Generator(device="cuda" if device == "cuda" else "cpu").manual_seed(cfg.seed)
    steps = math.ceil(len(train.x) / cfg.batch_size)
    # The step budget becomes epochs here, so the schedulers (one-cycle, cosine) span the whole run.
    cfg = replace(
        cfg, epochs=planned_epochs(cfg, len(train.x)), precision=resolve_precision(cfg.precision, device)
    )
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, steps)
    history: list[dict[str, float]] = []
    best = (-1.0, math.inf, 0, None)  # (val acc, val loss, epoch, state)
    seen, n_steps, stop, since_best = 0, 0, "", 0
    start = time.perf_counter()
    deadline = start + cfg.max_seconds if cfg.max_seconds > 0 else 0.0
    with progress_bar(progress, f"epoch 1/{cfg.epochs}", steps * cfg.epochs) as step:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            lr = opt.param_groups[0]["lr"]
            step(
                0,
                description=f"epoch {epoch}/{cfg.epochs}"
                + (
                    f" (last: loss {history[-1]['train_loss']:.4f}, val acc {history[-1]['val_acc']:.4f})"
                    if history
                    else ""
                ),
            )
            stats = _train_epoch(model, opt, sched, train, norm, cfg, gen, augment, deadline, step)
            seen += stats["seen"]
            n_steps += stats["steps"]
            val_loss, val_acc = (
                evaluate(model, val.x, val.y, norm, cfg.eval_batch_size, cfg.channels_last)
                if val
                else (math.nan, math.nan)
            )
            _step_epoch_scheduler(sched, cfg, val_loss if val else stats["train_loss"])
            row = {
                "epoch": epoch,
                "train_loss": stats["train_loss"],
                "train_acc": stats["train_acc"],
                "val_loss": val_loss,
                "val_acc": val_acc,
                "lr": lr,
                "seconds": time.perf_counter() - t0,
                "elapsed": time.perf_counter() - start,
            }
            history.append(row)
            if val is None or (val_acc, -val_loss) > (best[0], -best[1]):
                best, since_best = (val_acc, val_loss, epoch, _snapshot(model)), 0
            else:
                since_best += 1
            if stats["timed_out"]:
                stop = "time"
                break
            if cfg.early_stopping_patience and since_best >= cfg.early_stopping_patience:
                stop = "patience"
                break
    train_seconds = time.perf_counter() - start
    model.load_state_dict(best[3])
    model.eval()
    return TrainResult(
        model,
        history,
        best[2],
        train_seconds,
        seen,
        norm,
        stop,
        epochs_planned=cfg.epochs,
        epochs_run=len(history),
        steps=n_steps,
        steps_per_epoch=steps,
        precision=cfg.precision,
    )


def _step_epoch_scheduler(sched, cfg: TrainConfig, monitored_loss: float) -> None:
    if sched is None or cfg.scheduler in PER_BATCH:
        return
    if cfg.scheduler == "plateau":
        sched.step(monitored_loss)
    else:
        sched.step()


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# =============================================================================================
# Prediction
# =============================================================================================


@torch.no_grad()
def predict_proba(
    model: nn.Module, x_uint8: np.ndarray, *, norm: Norm, batch_size: int = 1024, device: str = "auto"
) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` of uint8 images under ``model`` (eval mode).

    ``device="auto"`` runs where the model's parameters already are; a named device moves the model.
    """
    if device == "auto":
        dev = next(model.parameters()).device
    else:
        dev = torch.device(resolve_device(device))
        model.to(dev)
    was_training = model.training
    model.eval()
    x = as_images(x_uint8)
    out = []
    for i in range(0, len(x), batch_size):
        xb = to_tensor(x[i : i + batch_size], str(dev))
        out.append(torch.softmax(model(normalise(xb, norm)).float(), 1).cpu())
    model.train(was_training)
    n_out = out[0].shape[1] if out else 0
    return torch.cat(out).numpy() if out else np.zeros((0, n_out), dtype=np.float32)


# =============================================================================================
# Cross-validation
# =============================================================================================


def cross_validate(
    net_name: str,
    net_params: dict | None,
    x: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig | None = None,
    k: int = 5,
    *,
    augment: str | Augment | None = None,
) -> list[dict[str, Any]]:
    """Stratified k-fold cross-validation: train a fresh network per fold, test on the held-out fold.

    Each fold's training part still carves its own validation split (``cfg.val_fraction``) for
    checkpoint selection, so the held-out fold is never seen before it is scored.

    Returns
    -------
    list of dict : per fold ``fold``, ``accuracy``, ``loss``, ``best_epoch``, ``train_seconds``,
        ``n_train``, ``n_test``, ``history``.
    """
    from sklearn.model_selection import StratifiedKFold

    cfg = cfg or TrainConfig()
    x, y = as_images(x), np.asarray(y, dtype=np.int64)
    n_classes = int(y.max()) + 1
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=cfg.seed).split(np.zeros(len(y)), y)
    results = []
    for fold, (tr, te) in enumerate(folds):
        net = build_net(net_name, image_shape(x), n_classes, seed=cfg.seed + fold, **(net_params or {}))
        res = fit(net, x[tr], y[tr], replace(cfg, seed=cfg.seed + fold), augment=augment)
        proba = predict_proba(res.model, x[te], norm=res.norm)
        loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(te)), y[te]], 1e-12, None))))
        acc = float(np.mean(proba.argmax(1) == y[te]))
        results.append(
            {
                "fold": fold,
                "accuracy": acc,
                "loss": loss,
                "best_epoch": res.best_epoch,
                "train_seconds": res.train_seconds,
                "n_train": len(tr),
                "n_test": len(te),
                "history": res.history,
            }
        )
    return results


# =============================================================================================
# Recipes
# =============================================================================================

# Each recipe is (net_name, net_params, TrainConfig); train one with
#     net, params, cfg = FAST_RECIPE; fit(build_net(net, seed=cfg.seed, **params), x, y, cfg)
# or CNNClassifier.from_recipe(FAST_RECIPE). Measured on the full MNIST split (54,000 training images
# after the 10 % validation split, scored on the 10,000 test images), seed 0, on the 2-core CPU of
# the development machine while it was shared with other work (so wall times are upper bounds);
# "CPU s" is the single-threaded process time, the work itself.
#
# FAST_RECIPE: a 3-block BN CNN (16-32-64 channels, pool before BN, 29,178 parameters), AdamW
# with one-cycle at peak lr 0.02, batch 256, 2 epochs, channels_last.
#   test accuracy 99.35 % (99.34 % in bench_train.py); 24.6 CPU s single-threaded at best, 43 CPU s
#   when the machine was busy (1 epoch: 99.07 %, 13.3 CPU s). The engine's best measured throughput
#   here was 4,540 images/s (2 threads), i.e. about 25 s for the recipe's 108,000 images on a quiet
#   machine; on the busy shared machine it took 46 s with 1 thread (load 1.5) and 207 s with torch's
#   default 2 threads (load 3.4: two threads fighting other processes for 2 cores mostly wait, so set
#   num_threads=1 on a busy machine).
#
# min_steps=200 (both recipes): a training set too small for 200 optimiser steps in the recipe's
# epochs gets more epochs; full MNIST (211 steps per epoch) is untouched. Measured on 1,000
# stratified MNIST training images (900 after the validation split, 4 steps per epoch), scored on
# the 10,000 test images, seeds 0/1/2, one thread: without it (8 steps) 72.2 / 83.0 %; min_steps
# 100: 96.3 / 94.6 / 96.4 % (3.3 s); 200: 96.5 / 97.1 / 96.6 % (7 s); 300: 96.2 / 96.9 / 96.8 %
# (10.4 s); 400: 96.0 / 96.8 / 96.8 % (14-19 s). 200 is where the curve flattens. On 5,000 images
# (seed 0): 97.3 % in 36 steps -> 98.5 % in 216 steps (12 epochs, 10.6 s); on 300 images 92.4 %.
FAST_RECIPE: tuple[str, dict, TrainConfig] = (
    "cnn",
    {"n_blocks": 3, "width": 16},
    TrainConfig(epochs=2, batch_size=256, lr=0.02, min_steps=200),
)
# WIDE_RECIPE: STRONG_RECIPE's network at twice the width (32-64-128 channels, 298,410 parameters) for
# 10 epochs. On Fashion-MNIST (seed 0, bf16, with horizontal flips added since a mirrored garment keeps
# its class: augment "shift+hflip") 93.59 % test accuracy, against 92.27 % for STRONG_RECIPE (5 epochs)
# and 92.92 % for STRONG_RECIPE's network trained 10 epochs; about 4x STRONG_RECIPE's compute.
WIDE_RECIPE: tuple[str, dict, TrainConfig] = (
    "cnn",
    {"n_blocks": 3, "width": 32, "convs_per_block": 2},
    TrainConfig(epochs=10, batch_size=256, lr=0.02, augment="shift", min_steps=200),
)
ONE_EPOCH_RECIPE: tuple[str, dict, TrainConfig] = (
    "cnn",
    {"n_blocks": 3, "width": 16},
    TrainConfig(epochs=1, batch_size=256, lr=0.02, val_fraction=0.0, min_steps=200),
)
STRONG_RECIPE: tuple[str, dict, TrainConfig] = (
    "cnn",
    {"n_blocks": 3, "width": 16, "convs_per_block": 2},
    TrainConfig(epochs=5, batch_size=256, lr=0.02, augment="shift", min_steps=200),
)
# STRONG_RECIPE: the same CNN with two convs per block (77,786 parameters), random shifts of up to
# 2 pixels, 5 epochs: test accuracy 99.58 %; 242 CPU s single-threaded (about 2-3 minutes on 2 idle
# cores). Tried on the way: the fast CNN with shifts for 6 epochs 99.43 % (94 CPU s), with random
# affine for 6 epochs 99.48 % (102 CPU s): one conv per block falls just short of 99.5 %.
# Its min_steps=200 on 1,000 images (seeds 0/1): 93.2 / 91.0 % in 20 steps -> 97.3 / 98.1 % in 200 steps
# (24-31 s on a busy machine); 400 steps: 97.5 / 98.2 % in twice the time.


# =============================================================================================
# scikit-learn estimator
# =============================================================================================


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier that trains a network from :mod:`digitlab.models.nets` with :func:`fit`.

    ``X`` is uint8 images, greyscale ``(n, H, W)`` (or square ``(n, H*W)``) or colour ``(n, H, W, C)``;
    the network is built for their ``(C, H, W)`` (``in_shape_``). Defaults are the fast recipe's
    network and optimiser settings, but without its step budget (``min_steps=0``: exactly ``epochs``
    passes); :meth:`from_recipe` builds the estimator of a recipe (e.g. :data:`FAST_RECIPE`, with its
    ``min_steps``). ``train_params`` sets any other :class:`TrainConfig` field (e.g.
    ``{"label_smoothing": 0.1}``).

    ``augment``: a name of :mod:`digitlab.augment`'s catalogue (``"shift"``, ``"affine"``,
    ``"elastic"``, ...), a callable ``aug(x, generator)``, or ``None`` / ``"none"`` for no
    augmentation. (An ``"augment"`` key in ``train_params`` still counts when ``augment`` is None.)

    Regularisation: ``l1`` and ``l2`` are the coupled penalties ``l1 * sum|w| + l2 * sum w^2`` over
    weight matrices and kernels added to the loss (see :class:`TrainConfig`); ``weight_decay`` is the
    optimiser's, and with the default ``optimizer="adamw"`` it is decoupled decay, not an L2 penalty.
    ``min_steps`` is the optimiser-step budget (more epochs on small training sets).

    Fitted attributes: ``model_``, ``history_``, ``classes_``, ``train_result_``, ``in_shape_``.
    """

    def __init__(
        self,
        net: str = "cnn",
        net_params: dict | None = None,
        epochs: int = 2,
        batch_size: int = 256,
        lr: float = 0.02,
        optimizer: str = "adamw",
        scheduler: str = "onecycle",
        weight_decay: float = 5e-4,
        val_fraction: float = 0.1,
        max_seconds: float = 0.0,
        device: str = "auto",
        random_state: int = 0,
        progress: bool = False,
        augment: str | Augment | None = None,
        train_params: dict | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
        min_steps: int = 0,
    ):
        self.net = net
        self.net_params = net_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.max_seconds = max_seconds
        self.device = device
        self.random_state = random_state
        self.progress = progress
        self.augment = augment
        self.train_params = train_params
        self.l1 = l1
        self.l2 = l2
        self.min_steps = min_steps

    @classmethod
    def from_recipe(cls, recipe: tuple[str, dict, TrainConfig], **overrides) -> CNNClassifier:
        """An estimator that trains exactly like ``recipe`` (e.g. :data:`STRONG_RECIPE`), with ``overrides``.

        The recipe's augmentation becomes the ``augment`` argument, so ``augment=None`` (or ``"none"``)
        trains without it; every other :class:`TrainConfig` field the constructor has no argument for
        goes into ``train_params``. ``net_params={...}`` and ``train_params={...}`` are merged into the
        recipe's (``net_params={"width": 32}`` keeps ``convs_per_block=2`` of STRONG_RECIPE); with
        ``net=`` naming another network family the recipe's network settings are dropped.
        """
        net, net_params, tc = recipe
        own = {
            "epochs",
            "batch_size",
            "lr",
            "optimizer",
            "scheduler",
            "weight_decay",
            "val_fraction",
            "max_seconds",
            "device",
            "l1",
            "l2",
            "min_steps",
        }
        base = asdict(TrainConfig())
        rest = {k: v for k, v in asdict(tc).items() if k not in own | {"seed", "augment"} and v != base[k]}
        kwargs = {k: getattr(tc, k) for k in own} | {
            "net": net,
            "random_state": tc.seed,
            "augment": tc.augment or None,
        }
        same_net = overrides.get("net", net) == net
        kwargs["net_params"] = {
            **(dict(net_params) if same_net else {}),
            **(overrides.pop("net_params", None) or {}),
        }
        kwargs["train_params"] = {**rest, **(overrides.pop("train_params", None) or {})} or None
        return cls(**(kwargs | overrides))

    def _config(self) -> TrainConfig:
        extra = dict(self.train_params or {})
        cfg = replace(TrainConfig(), **extra)
        # l1/l2/min_steps were train_params before they became arguments: a value there still counts
        # when the argument is left at its default, and a conflicting pair is an error.
        direct = {}
        for key in ("l1", "l2", "min_steps"):
            value, default = getattr(self, key), getattr(TrainConfig, key)
            if key in extra and value != default and extra[key] != value:
                raise ConfigError(
                    f"CNNClassifier {key}={value} and train_params[{key!r}]={extra[key]}: set it in one place"
                )
            direct[key] = value if value != default else extra.get(key, default)
        if isinstance(self.augment, str):  # the augmentation by name (a callable goes to fit() as it is)
            named = extra.get("augment") or ""
            if named and self.augment != named:
                raise ConfigError(
                    f"CNNClassifier augment={self.augment!r} and train_params['augment']={named!r}: set it in one place"
                )
            direct["augment"] = self.augment
        return replace(
            cfg,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            weight_decay=self.weight_decay,
            val_fraction=self.val_fraction,
            max_seconds=self.max_seconds,
            device=self.device,
            seed=int(self.random_state or 0),
            **direct,
        )

    def fit(self, X, y) -> CNNClassifier:
        """Train on images ``X`` with labels ``y`` (any hashable labels; encoded internally)."""
        X = as_images(X)
        self.classes_, y_idx = np.unique(np.asarray(y), return_inverse=True)
        cfg = self._config()
        self.in_shape_ = image_shape(X)
        net = build_net(
            self.net, self.in_shape_, len(self.classes_), seed=cfg.seed, **(self.net_params or {})
        )
        augment = self.augment if callable(self.augment) else None  # None: the name in cfg.augment (or none)
        self.train_result_ = fit(net, X, y_idx, cfg, augment=augment, progress=self.progress)
        self.model_ = self.train_result_.model
        self.history_ = self.train_result_.history
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` in the order of ``classes_``."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        shape = getattr(self, "in_shape_", None)
        if shape is not None and image_shape(X) != tuple(shape):
            raise ModelError(
                f"images of shape (C, H, W) = {image_shape(X)}: this model was trained on {tuple(shape)}"
            )
        return predict_proba(self.model_, X, norm=self.train_result_.norm)

    def predict(self, X) -> np.ndarray:
        """Most probable class label per image."""
        return self.classes_[self.predict_proba(X).argmax(1)]

    def save(self, path_dir, name: str = "cnn"):
        """Save the fitted model in folder ``path_dir``: ``model.pt`` (the network's ``state_dict``) and
        ``model.json`` (network family and parameters, ``in_shape``, classes, normalisation, training
        configuration and summary, the estimator's parameters). See :mod:`digitlab.models.persist`."""
        from sklearn.utils.validation import check_is_fitted

        from digitlab.models.persist import save_net

        check_is_fitted(self, "model_")
        res = self.train_result_
        mean, std = res.norm
        params = self.get_params()
        if callable(params.get("augment")):
            params["augment"] = None  # a callable cannot be stored; the loaded estimator predicts the same
        meta = {
            "kind": "CNNClassifier",
            "name": name,
            "net": self.net,
            "net_params": dict(self.net_params or {}),
            "in_shape": list(self.in_shape_),
            "n_classes": len(self.classes_),
            "classes": self.classes_.tolist(),
            "classes_dtype": self.classes_.dtype.str if self.classes_.dtype != object else "object",
            "normalisation": {
                "mean": mean,
                "std": std,
                "per_channel": not isinstance(mean, (int, float)),
                "input": "uint8 pixels / 255, then (x - mean) / std",
            },
            "train_config": config_dict(self._config()),
            "estimator_params": params,
            "training": {
                "best_epoch": res.best_epoch,
                "epochs_run": res.epochs_run,
                "epochs_planned": res.epochs_planned,
                "steps": res.steps,
                "steps_per_epoch": res.steps_per_epoch,
                "train_seconds": res.train_seconds,
                "n_train_images_seen": res.n_train_images_seen,
                "stopped_early": res.stopped_early,
                "history": res.history,
            },
        }
        return save_net(path_dir, self.model_, meta)

    @classmethod
    def load(cls, path_dir, device: str = "cpu") -> CNNClassifier:
        """A fitted estimator from a folder written by :meth:`save` (weights read with ``weights_only=True``)."""
        from digitlab.models.persist import load_net

        model, meta = load_net(path_dir, device=resolve_device(device))
        params = {k: v for k, v in meta.get("estimator_params", {}).items() if k in cls._get_param_names()}
        est = cls(**params)
        if meta.get("train_config", {}).get("channels_last"):
            model.to(
                memory_format=torch.channels_last
            )  # as it was trained: the same kernels, the same numbers
        norm = meta["normalisation"]
        mean, std = norm["mean"], norm["std"]
        if isinstance(mean, list):
            mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        dtype = meta.get("classes_dtype", None)
        est.classes_ = np.asarray(meta["classes"], dtype=object if dtype == "object" else dtype)
        est.in_shape_ = tuple(int(v) for v in meta["in_shape"])
        tr = meta.get("training", {})
        history = [
            {k: (math.nan if v is None else v) for k, v in row.items()} for row in tr.get("history", [])
        ]
        est.train_result_ = TrainResult(
            model,
            history,
            int(tr.get("best_epoch", 0)),
            float(tr.get("train_seconds", 0.0)),
            int(tr.get("n_train_images_seen", 0)),
            (mean, std),
            tr.get("stopped_early", ""),
            epochs_planned=int(tr.get("epochs_planned", 0)),
            epochs_run=int(tr.get("epochs_run", 0)),
            steps=int(tr.get("steps", 0)),
            steps_per_epoch=int(tr.get("steps_per_epoch", 0)),
        )
        est.model_, est.history_ = model, history
        return est


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    """A JSON-serialisable copy of ``cfg`` (to store next to results)."""
    return asdict(cfg)


__all__ = [
    "TrainConfig",
    "TrainResult",
    "fit",
    "predict_proba",
    "evaluate",
    "cross_validate",
    "CNNClassifier",
    "FAST_RECIPE",
    "ONE_EPOCH_RECIPE",
    "STRONG_RECIPE",
    "WIDE_RECIPE",
    "random_shift",
    "random_affine",
    "resolve_augment",
    "planned_epochs",
    "l1_penalty",
    "l2_penalty",
    "penalty",
]
