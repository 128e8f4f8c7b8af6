"""Batched data augmentation for digit images, and measures of what each augmentation does.

Every augmentation works on a whole batch at once: a float tensor ``(B, C, H, W)`` with values in
``[0, 1]`` and a :class:`torch.Generator` from which every per-sample random parameter is drawn
(rotation angles, shifts, noise, masks), so the same generator state gives the same output and no
Python loop runs over samples. Geometric transforms build one sampling grid per sample
(``affine_grid`` / ``grid_sample``, kornia's homographies for perspective); pixel transforms use
masks and ``torch.where``.

Usage::

    aug = get_augmentation("rotate_small", degrees=10, p=0.8)
    x_aug = aug(x, torch.Generator().manual_seed(0))       # (B,1,H,W) float in [0,1]
    x8 = augment_images(ds.x_test, "elastic", seed=0)      # numpy uint8 convenience

Parameters are in pixels where they say so; the defaults suit 28x28 digits. Each augmentation also
takes ``p``: the probability that a sample is transformed at all (the others pass through unchanged).

Colour: every op works on any number of channels (``C = 3`` for RGB photographs); pixel masks
(salt-and-pepper) hit all channels of a pixel together. ``colour_jitter`` changes brightness,
contrast, saturation and hue (on greyscale only brightness and contrast); it is marked
``colour_only`` in the catalogue, since it adds nothing to ``brightness_contrast`` on greyscale.
The numpy helpers take greyscale ``(n, H, W)`` / ``(n, 1, H, W)`` and colour ``(n, H, W, C)``
(channels last, as :class:`~digitlab.data.registry.Dataset` stores them) uint8 arrays.

Sections: catalogue (ops and their defaults), the callable :class:`Augmentation`, numpy helpers,
the gallery figure, and distribution-shift measures (domain classifier, MMD, k-NN consistency).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from digitlab.exceptions import ConfigError

__all__ = [
    "AUGMENTATIONS",
    "ALIASES",
    "AugmentationSpec",
    "Augmentation",
    "Compose",
    "get_augmentation",
    "compose",
    "augment_images",
    "augment_tensor",
    "plot_gallery",
    "distribution_shift",
    "mmd_rbf",
    "shift_embedding",
    "plot_shift_embedding",
    "channels_last",
]

# =============================================================================================
# Random draws: always from the caller's generator, on the generator's device
# =============================================================================================


def _rand(gen: torch.Generator, shape: tuple[int, ...], device: torch.device) -> Tensor:
    """Uniform [0, 1) float32 draws on ``device`` (drawn on the generator's own device)."""
    return torch.rand(shape, generator=gen, device=gen.device).to(device)


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float, device: torch.device) -> Tensor:
    return lo + (hi - lo) * _rand(gen, (n,), device)


def _randint(gen: torch.Generator, n: int, high: int, device: torch.device) -> Tensor:
    """Integers uniform in ``0..high`` (inclusive)."""
    return torch.randint(0, high + 1, (n,), generator=gen, device=gen.device).to(device)


# =============================================================================================
# Geometry helpers
# =============================================================================================


def _warp_affine(x: Tensor, a: Tensor, t: Tensor) -> Tensor:
    """Apply per-sample forward affine maps ``out = a @ in + t`` in centred pixel coordinates.

    ``a`` is ``(B, 2, 2)`` and ``t`` ``(B, 2)`` (pixels, x first). ``affine_grid`` wants the inverse
    map in normalised coordinates, where (align_corners=False) ``x_n = 2 x_c / W``.
    """
    b, _, h, w = x.shape
    d = torch.tensor([2.0 / w, 2.0 / h], device=x.device)
    a_inv = torch.linalg.inv(a)
    lin = d[None, :, None] * a_inv / d[None, None, :]  # D A^-1 D^-1
    off = -d[None, :] * (a_inv @ t[:, :, None])[:, :, 0]
    theta = torch.cat([lin, off[:, :, None]], dim=2)
    return _sample(x, theta)


def _sample(x: Tensor, theta: Tensor) -> Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _affine_matrix(angle_deg: Tensor, scale: Tensor, shear_deg: Tensor) -> Tensor:
    """Rotation @ shear (along x) @ isotropic scale, ``(B, 2, 2)``."""
    th = torch.deg2rad(angle_deg)
    c, s = torch.cos(th), torch.sin(th)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    sh = torch.zeros_like(rot)
    sh[:, 0, 0] = 1.0
    sh[:, 1, 1] = 1.0
    sh[:, 0, 1] = torch.tan(torch.deg2rad(shear_deg))
    return rot @ sh * scale[:, None, None]


def _gauss_matrix(sigma: Tensor, size: int, radius: int) -> Tensor:
    """Per-sample Gaussian blur matrices ``(B, size, size)`` with zero padding outside the image.

    Row ``i`` holds the kernel centred on pixel ``i``, truncated at ``radius`` and normalised over
    the full (untruncated-by-the-border) kernel, i.e. exactly scipy's ``gaussian_filter(mode="constant")``.
    Blurring an image is then ``K @ x @ K.T``: two small matmuls, much faster on CPU than a long conv.
    """
    i = torch.arange(size, dtype=torch.float32, device=sigma.device)
    d2 = (i[:, None] - i[None, :]) ** 2
    t2 = torch.arange(-radius, radius + 1, dtype=torch.float32, device=sigma.device) ** 2
    s2 = 2 * sigma[:, None] ** 2
    norm = torch.exp(-t2[None, :] / s2).sum(1)
    k = torch.exp(-d2[None] / s2[:, :, None]) * (d2 <= radius**2)
    return k / norm[:, None, None]


def _blur(x: Tensor, sigma: Tensor, radius: int) -> Tensor:
    """Gaussian blur of ``(B, C, H, W)`` with one sigma per sample (pixels), zero padding."""
    kh = _gauss_matrix(sigma, x.shape[2], radius)[:, None]
    kw = _gauss_matrix(sigma, x.shape[3], radius)[:, None]
    return kh @ x @ kw.transpose(-1, -2)


# =============================================================================================
# The operations. Each takes (x float32 (B,C,H,W), generator, **params) and transforms EVERY sample;
# the probability p is applied by Augmentation around them.
# =============================================================================================


def _identity(x: Tensor, gen: torch.Generator) -> Tensor:
    return x


def _gaussian_noise(x: Tensor, gen: torch.Generator, std: float) -> Tensor:
    # Box-Muller from the generator's uniforms keeps the draw on the generator's device.
    u1 = _rand(gen, tuple(x.shape), x.device).clamp_min(1e-7)
    u2 = _rand(gen, tuple(x.shape), x.device)
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    return x + std * z


def _salt_pepper(x: Tensor, gen: torch.Generator, amount: float) -> Tensor:
    u = _rand(
        gen, (x.shape[0], 1, *x.shape[2:]), x.device
    )  # one draw per pixel: all its channels go black/white
    x = torch.where(u < amount / 2, torch.zeros_like(x), x)
    return torch.where(u > 1 - amount / 2, torch.ones_like(x), x)


def _hflip(x: Tensor, gen: torch.Generator) -> Tensor:
    return torch.flip(x, dims=(3,))


def _vflip(x: Tensor, gen: torch.Generator) -> Tensor:
    return torch.flip(x, dims=(2,))


def _rotate(x: Tensor, gen: torch.Generator, degrees: float, exact: bool) -> Tensor:
    b = x.shape[0]
    angle = (
        torch.full((b,), float(degrees), device=x.device)
        if exact
        else _uniform(gen, b, -degrees, degrees, x.device)
    )
    ones = torch.ones(b, device=x.device)
    return _warp_affine(
        x, _affine_matrix(angle, ones, torch.zeros(b, device=x.device)), torch.zeros(b, 2, device=x.device)
    )


def _translate(x: Tensor, gen: torch.Generator, shift: float) -> Tensor:
    b, _, h, w = x.shape
    t = torch.stack(
        [_uniform(gen, b, -shift, shift, x.device) * w, _uniform(gen, b, -shift, shift, x.device) * h], 1
    )
    eye = torch.eye(2, device=x.device).expand(b, 2, 2)
    return _warp_affine(x, eye, t)


def _affine(
    x: Tensor, gen: torch.Generator, degrees: float, shift: float, scale: tuple[float, float], shear: float
) -> Tensor:
    b, _, h, w = x.shape
    angle = _uniform(gen, b, -degrees, degrees, x.device)
    s = _uniform(gen, b, scale[0], scale[1], x.device)
    sh = _uniform(gen, b, -shear, shear, x.device)
    t = torch.stack(
        [_uniform(gen, b, -shift, shift, x.device) * w, _uniform(gen, b, -shift, shift, x.device) * h], 1
    )
    return _warp_affine(x, _affine_matrix(angle, s, sh), t)


def _pad_crop(x: Tensor, gen: torch.Generator, pad: int) -> Tensor:
    """Zero-pad by ``pad`` pixels and cut a random HxW window: integer shifts, no interpolation."""
    b, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy, dx = _randint(gen, b, 2 * pad, x.device), _randint(gen, b, 2 * pad, x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = dx[:, None] + torch.arange(w, device=x.device)  # (B, W)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return xp[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def _crop_resize(
    x: Tensor, gen: torch.Generator, scale: tuple[float, float], ratio: tuple[float, float]
) -> Tensor:
    """Random-resized crop: a box of random area fraction and aspect ratio, stretched to full size."""
    b = x.shape[0]
    area = _uniform(gen, b, scale[0], scale[1], x.device)
    log_r = _uniform(gen, b, math.log(ratio[0]), math.log(ratio[1]), x.device)
    r = torch.exp(log_r)
    bw = torch.sqrt(area * r).clamp(max=1.0)  # box size as a fraction of the image
    bh = torch.sqrt(area / r).clamp(max=1.0)
    cx = (2 * _rand(gen, (b,), x.device) - 1) * (1 - bw)  # box centre, normalised coordinates
    cy = (2 * _rand(gen, (b,), x.device) - 1) * (1 - bh)
    zero = torch.zeros_like(bw)
    theta = torch.stack([torch.stack([bw, zero, cx], 1), torch.stack([zero, bh, cy], 1)], 1)
    return _sample(x, theta)


def _elastic(x: Tensor, gen: torch.Generator, alpha: float, sigma: float) -> Tensor:
    """Simard et al. (2003): a uniform random displacement field, Gaussian-smoothed (sigma px), times alpha px.

    The smoothing is the reference implementation's (scipy ``gaussian_filter``, mode="constant",
    4-sigma kernel), so alpha and sigma mean what they mean in the literature. With the defaults
    (alpha=34, sigma=4 on 28x28) displacements are about 1 px (std), up to ~3-4 px.
    """
    b, _, h, w = x.shape
    field_ = 2 * _rand(gen, (b, 2, h, w), x.device) - 1
    disp = (
        _blur(field_, torch.full((b,), float(sigma), device=x.device), math.ceil(4.0 * sigma)) * alpha
    )  # pixels
    disp = disp * torch.tensor([2.0 / w, 2.0 / h], device=x.device)[None, :, None, None]
    eye = torch.eye(2, 3, device=x.device).expand(b, 2, 3)
    grid = F.affine_grid(eye, list(x.shape), align_corners=False) + disp.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _random_erasing(
    x: Tensor, gen: torch.Generator, scale: tuple[float, float], ratio: tuple[float, float], value: float
) -> Tensor:
    """Set a random rectangle (area fraction in ``scale``, aspect in ``ratio``) to ``value``."""
    b, _, h, w = x.shape
    area = _uniform(gen, b, scale[0], scale[1], x.device) * h * w
    r = torch.exp(_uniform(gen, b, math.log(ratio[0]), math.log(ratio[1]), x.device))
    eh = torch.sqrt(area / r).clamp(1, h)
    ew = torch.sqrt(area * r).clamp(1, w)
    y0 = _rand(gen, (b,), x.device) * (h - eh)
    x0 = _rand(gen, (b,), x.device) * (w - ew)
    rows = torch.arange(h, device=x.device)[None, :, None] + 0.5
    cols = torch.arange(w, device=x.device)[None, None, :] + 0.5
    inside = (
        (rows >= y0[:, None, None])
        & (rows < (y0 + eh)[:, None, None])
        & (cols >= x0[:, None, None])
        & (cols < (x0 + ew)[:, None, None])
    )
    return torch.where(inside[:, None], torch.full_like(x, value), x)


def _gaussian_blur(x: Tensor, gen: torch.Generator, sigma: tuple[float, float]) -> Tensor:
    """Blur with sigma uniform in ``sigma`` per sample; zero padding (the background of digits)."""
    s = _uniform(gen, x.shape[0], sigma[0], sigma[1], x.device).clamp_min(1e-3)
    return _blur(x, s, math.ceil(3.0 * sigma[1]))


def _brightness_contrast(x: Tensor, gen: torch.Generator, brightness: float, contrast: float) -> Tensor:
    """Scale the deviation from each image's mean by 1 +- contrast, then add +- brightness."""
    b = x.shape[0]
    c = _uniform(gen, b, 1 - contrast, 1 + contrast, x.device)[:, None, None, None]
    d = _uniform(gen, b, -brightness, brightness, x.device)[:, None, None, None]
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * c + m + d


def _colour_jitter(
    x: Tensor, gen: torch.Generator, brightness: float, contrast: float, saturation: float, hue: float
) -> Tensor:
    """torchvision-style colour jitter, batched: per sample a brightness factor ``1 +- brightness``
    (multiplicative: a black border stays black), a contrast factor ``1 +- contrast`` around the image's
    mean luminance, a saturation factor ``1 +- saturation`` (blend with the grey image) and a hue
    rotation of ``+- hue`` turns (fraction of the colour wheel, rotation in YIQ's chroma plane).
    Saturation and hue need 3 channels (RGB); on other images only brightness and contrast apply."""
    b, c = x.shape[:2]
    col = lambda lo, hi: _uniform(gen, b, lo, hi, x.device)[:, None, None, None]  # noqa: E731
    fb, fc = col(1 - brightness, 1 + brightness), col(1 - contrast, 1 + contrast)
    fs, turns = col(1 - saturation, 1 + saturation), col(-hue, hue)
    x = x * fb
    rgb = c == 3
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device)[None, :, None, None] if rgb else None
    lum = (x * w).sum(1, keepdim=True) if rgb else x
    x = (x - lum.mean(dim=(1, 2, 3), keepdim=True)) * fc + lum.mean(dim=(1, 2, 3), keepdim=True)
    if not rgb:
        return x
    grey = (x * w).sum(1, keepdim=True)
    x = (x - grey) * fs + grey
    yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device
    )
    q = torch.einsum("ij,bjhw->bihw", yiq, x)
    th = 2 * math.pi * turns[:, 0]  # (B, 1, 1)
    i2 = q[:, 1:2] * torch.cos(th)[:, None] - q[:, 2:3] * torch.sin(th)[:, None]
    q2 = q[:, 1:2] * torch.sin(th)[:, None] + q[:, 2:3] * torch.cos(th)[:, None]
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(yiq), torch.cat([q[:, :1], i2, q2], 1))


def _dilate(x: Tensor, gen: torch.Generator, kernel: int) -> Tensor:
    """Grey-level dilation with a kernel x kernel square: thicker strokes."""
    return F.max_pool2d(x, kernel, stride=1, padding=kernel // 2)


def _erode(x: Tensor, gen: torch.Generator, kernel: int) -> Tensor:
    """Grey-level erosion (min filter as -max(-x)): thinner strokes."""
    return -F.max_pool2d(-x, kernel, stride=1, padding=kernel // 2)


def _perspective(x: Tensor, gen: torch.Generator, distortion: float) -> Tensor:
    """Move each corner inwards by up to ``distortion`` x half the side, warp by that homography."""
    from kornia.geometry.transform import get_perspective_transform, warp_perspective

    b, _, h, w = x.shape
    src = torch.tensor([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=torch.float32, device=x.device)
    inward = torch.tensor([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=torch.float32, device=x.device)
    half = torch.tensor([w / 2, h / 2], device=x.device)
    off = _rand(gen, (b, 4, 2), x.device) * distortion * half * inward
    dst = src[None] + off
    m = get_perspective_transform(src.expand(b, 4, 2), dst)
    return warp_perspective(x, m, (h, w), align_corners=True)


# =============================================================================================
# Catalogue
# =============================================================================================


@dataclass(frozen=True)
class AugmentationSpec:
    """One catalogue entry: the batched op, its default parameters (``p`` included) and a description."""

    name: str
    op: Callable[..., Tensor]
    defaults: dict[str, Any]
    description: str
    random: bool = True  # False: with p=1 the output does not depend on the generator
    colour_only: bool = False  # meant for colour images (on greyscale it repeats another entry)


def _spec(
    name: str,
    op: Callable[..., Tensor],
    description: str,
    random: bool = True,
    colour_only: bool = False,
    **defaults: Any,
) -> AugmentationSpec:
    defaults.setdefault("p", 1.0)
    return AugmentationSpec(name, op, defaults, description, random, colour_only)


_SPECS = [
    _spec("identity", _identity, "No change (the baseline).", random=False),
    _spec(
        "gaussian_noise",
        _gaussian_noise,
        "Add N(0, std^2) noise to every pixel; std in intensity units (0..1).",
        std=0.2,
    ),
    _spec(
        "salt_pepper", _salt_pepper, "Set a fraction `amount` of pixels to 0 or 1 (half each).", amount=0.1
    ),
    _spec("hflip", _hflip, "Mirror left-right.", random=False, p=0.5),
    _spec("vflip", _vflip, "Mirror top-bottom.", random=False, p=0.5),
    _spec(
        "rotate_small",
        _rotate,
        "Rotate by an angle uniform in +-degrees (exact=True: exactly degrees).",
        degrees=15.0,
        exact=False,
    ),
    _spec(
        "rotate_large",
        _rotate,
        "Rotate by an angle uniform in +-degrees (exact=True: exactly degrees, e.g. 180).",
        degrees=180.0,
        exact=False,
    ),
    _spec(
        "translate",
        _translate,
        "Shift by up to +-shift x the image size in x and y, independently.",
        shift=0.1,
    ),
    _spec(
        "affine",
        _affine,
        "Random rotation (+-degrees), shift (+-shift x size), isotropic scale (range) and x-shear (+-shear degrees).",
        degrees=10.0,
        shift=0.08,
        scale=(0.9, 1.1),
        shear=10.0,
    ),
    _spec(
        "pad_crop",
        _pad_crop,
        "Zero-pad by `pad` pixels and crop a random window of the original size (integer shifts).",
        pad=2,
    ),
    _spec(
        "crop_resize",
        _crop_resize,
        "Random-resized crop: a box of area fraction in `scale` and aspect ratio in `ratio`, resized to full size.",
        scale=(0.6, 1.0),
        ratio=(0.75, 4 / 3),
    ),
    _spec(
        "elastic",
        _elastic,
        "Elastic deformation: uniform random displacement field smoothed by a Gaussian (sigma px), scaled by alpha px.",
        alpha=34.0,
        sigma=4.0,
    ),
    _spec(
        "random_erasing",
        _random_erasing,
        "Set a random rectangle (area fraction in `scale`, aspect in `ratio`) to `value`.",
        scale=(0.02, 0.2),
        ratio=(0.3, 3.3),
        value=0.0,
    ),
    _spec(
        "gaussian_blur",
        _gaussian_blur,
        "Gaussian blur with sigma (pixels) uniform in the `sigma` range.",
        sigma=(0.5, 1.5),
    ),
    _spec(
        "brightness_contrast",
        _brightness_contrast,
        "Scale contrast around the image mean by 1+-contrast, add +-brightness.",
        brightness=0.2,
        contrast=0.4,
    ),
    _spec(
        "dilate",
        _dilate,
        "Morphological dilation with a kernel x kernel square (thicker strokes).",
        random=False,
        kernel=3,
    ),
    _spec(
        "erode",
        _erode,
        "Morphological erosion with a kernel x kernel square (thinner strokes).",
        random=False,
        kernel=3,
    ),
    _spec(
        "perspective",
        _perspective,
        "Perspective warp: each corner moves inwards by up to distortion x half the side.",
        distortion=0.3,
    ),
    _spec(
        "colour_jitter",
        _colour_jitter,
        "Colour jitter: brightness x(1+-brightness), contrast x(1+-contrast), saturation "
        "x(1+-saturation), hue +-hue turns (saturation and hue on RGB only).",
        colour_only=True,
        brightness=0.2,
        contrast=0.2,
        saturation=0.3,
        hue=0.04,
    ),
]

AUGMENTATIONS: dict[str, AugmentationSpec] = {s.name: s for s in _SPECS}
"""The catalogue, by name. ``identity`` is included as the no-op baseline."""

ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    # the training recipes' random shift (STRONG_RECIPE): an integer shift of up to 2 pixels in x and y, zero fill
    "shift": ("pad_crop", {"pad": 2}),
}
"""Other names of catalogue entries with set parameters: ``get_augmentation("shift")`` is
``get_augmentation("pad_crop", pad=2)``. Not listed in :data:`AUGMENTATIONS` (so a comparison over
the catalogue does not run the same transform twice). ``digitlab.train`` resolves every augmentation
name here, so a name means one transform in training, galleries and shift measures alike."""


# =============================================================================================
# The callable
# =============================================================================================


def _check_params(name: str, defaults: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ConfigError(
            f"augmentation {name!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(defaults))}"
        )
    merged = {**defaults, **params}
    for key, default in defaults.items():
        value = merged[key]
        if isinstance(default, tuple):
            if not (
                isinstance(value, (list, tuple)) and len(value) == 2 and float(value[0]) <= float(value[1])
            ):
                raise ConfigError(
                    f"augmentation {name!r}: {key}={value!r} must be a [low, high] pair with low <= high"
                )
            merged[key] = (float(value[0]), float(value[1]))
        elif isinstance(default, bool):
            merged[key] = bool(value)
        elif isinstance(default, int):
            if int(value) != value or value < 0:
                raise ConfigError(f"augmentation {name!r}: {key}={value!r} must be a non-negative integer")
            merged[key] = int(value)
        elif isinstance(default, float):
            merged[key] = float(value)
    if not 0.0 <= merged["p"] <= 1.0:
        raise ConfigError(f"augmentation {name!r}: p={merged['p']} must lie in [0, 1]")
    return merged


@dataclass
class Augmentation:
    """A configured catalogue augmentation: ``aug(x, generator) -> x'`` on ``(B, C, H, W)`` in [0, 1].

    Each sample is transformed with probability ``p`` (drawn from the generator); the transformed
    samples get their own random parameters. Output is clamped to [0, 1]; shape, dtype, device and
    memory format are kept.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> AugmentationSpec:
        return AUGMENTATIONS[self.name]

    @property
    def p(self) -> float:
        return float(self.params["p"])

    @property
    def is_random(self) -> bool:
        """Whether the output depends on the generator for these parameters."""
        return 0.0 < self.p < 1.0 or (self.spec.random and not self.params.get("exact", False))

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.ndim != 4:
            raise ConfigError(
                f"augmentation {self.name!r}: input has shape {tuple(x.shape)}; pass a (B, C, H, W) batch"
            )
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        op_params = {k: v for k, v in self.params.items() if k != "p"}
        chosen = _rand(gen, (x.shape[0],), x.device) < self.p
        if not bool(chosen.any()):
            return x.clone()
        xf = x.float()
        # Transform only the chosen samples; the rest pass through bit-for-bit.
        every = bool(chosen.all())
        sub = xf if every else xf[chosen]
        y = self.spec.op(sub.contiguous(), gen, **op_params).clamp(0.0, 1.0)
        if every:  # no second copy of the batch when every sample is transformed (training with p=1)
            return y.to(x.dtype)
        out = xf.clone()
        out[chosen] = y
        return out.to(x.dtype)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Augmentation({self.name!r}, {args})"


@dataclass
class Compose:
    """Apply augmentations one after another with the same generator."""

    augs: list[Callable[[Tensor, torch.Generator], Tensor]]

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        for aug in self.augs:
            x = aug(x, gen)
        return x


def get_augmentation(name: str, **params: Any) -> Augmentation:
    """A configured augmentation from the catalogue.

    Parameters
    ----------
    name : str
        A key of :data:`AUGMENTATIONS` or of :data:`ALIASES` (e.g. ``"shift"``).
    **params
        Overrides of the entry's defaults (``p`` and the entry's own parameters; ranges as
        ``[low, high]`` pairs).

    Returns
    -------
    Augmentation
        A callable ``aug(x, generator) -> Tensor`` on ``(B, C, H, W)`` floats in [0, 1].

    Raises
    ------
    ConfigError
        For an unknown name or parameter, or an out-of-range value.
    """
    if name in ALIASES:
        base, preset = ALIASES[name]
        return get_augmentation(base, **{**preset, **params})
    if name not in AUGMENTATIONS:
        raise ConfigError(
            f"augmentation {name!r}: unknown name; choose one of {', '.join([*AUGMENTATIONS, *ALIASES])}"
        )
    return Augmentation(name, _check_params(name, AUGMENTATIONS[name].defaults, params))


def compose(*augs: Augmentation | str | Callable[[Tensor, torch.Generator], Tensor]) -> Compose:
    """Chain augmentations (objects, callables or catalogue names with default parameters)."""
    return Compose([get_augmentation(a) if isinstance(a, str) else a for a in augs])


# =============================================================================================
# numpy convenience
# =============================================================================================


def augment_tensor(
    x: Tensor, aug: Callable[[Tensor, torch.Generator], Tensor], seed: int = 0, batch_size: int = 4096
) -> Tensor:
    """Apply ``aug`` to a large ``(N, C, H, W)`` tensor in chunks, with one generator seeded by ``seed``."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return (
        torch.cat([aug(x[i : i + batch_size], gen) for i in range(0, len(x), batch_size)])
        if len(x)
        else x.clone()
    )


MAX_CHANNELS = 4  # a trailing axis this small is channels: (n, H, W, C) colour


def channels_last(x: np.ndarray) -> bool:
    """Whether a 4-D image batch is ``(n, H, W, C)`` (colour, channels last) rather than ``(n, C, H, W)``."""
    return x.ndim == 4 and x.shape[3] <= MAX_CHANNELS < x.shape[1]


def augment_images(x_uint8: np.ndarray, name: str, seed: int = 0, **params: Any) -> np.ndarray:
    """Augment a uint8 image array; returns uint8 of the same shape and layout.

    Accepts greyscale ``(n, H, W)``, channels-first ``(n, C, H, W)`` (``(n, 1, H, W)``) and colour
    channels-last ``(n, H, W, C)`` with ``C <= 4`` and ``H > 4`` (the Dataset layout).
    Sample ``i`` of the output is the augmented sample ``i`` of the input, so labels stay aligned.
    The same ``seed`` gives the same output.
    """
    aug = get_augmentation(name, **params)
    x_uint8 = np.asarray(x_uint8)
    if x_uint8.ndim not in (3, 4):
        raise ConfigError(
            f"augment_images: images of shape {x_uint8.shape}; pass (n, H, W), (n, C, H, W) or (n, H, W, C) uint8"
        )
    last = channels_last(x_uint8)
    x = torch.from_numpy(np.ascontiguousarray(x_uint8, dtype=np.uint8)).float().div_(255.0)
    x4 = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous() if last else x
    y = augment_tensor(x4, aug, seed)
    y = (y * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    return (y[:, 0] if x.ndim == 3 else y.permute(0, 2, 3, 1).contiguous() if last else y).numpy()


# =============================================================================================
# Gallery
# =============================================================================================


def plot_gallery(
    x_uint8: np.ndarray, names: Sequence[str], seed: int = 0, n_samples: int = 8, ax=None, **common: Any
):
    """One row per augmentation (the original first) over the same ``n_samples`` digits.

    Every augmentation is shown with ``p=1`` so each cell shows the transform (flips included).
    ``ax``: draw the grid in this Axes' area (default: a new figure). Returns the matplotlib Figure.
    """
    from digitlab.plots import panels

    x = np.asarray(x_uint8)[:n_samples]
    rows = [("original", x)] + [(n, augment_images(x, n, seed=seed, p=1.0, **common)) for n in names]
    own = ax is None
    fig, axes = panels(ax, len(rows), len(x), (0.9 * len(x) + 1.4, 0.9 * len(rows)))
    for r, (label, imgs) in enumerate(rows):
        for c in range(len(x)):
            ax = axes[r, c]
            if imgs[c].ndim == 3:  # colour (H, W, C): shown as is
                ax.imshow(imgs[c], interpolation="nearest")
            else:
                ax.imshow(imgs[c], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if own:
        fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


# =============================================================================================
# Distribution shift
# =============================================================================================


def mmd_rbf(a: np.ndarray, b: np.ndarray, bandwidth: float | None = None) -> tuple[float, float]:
    """Unbiased squared MMD between samples ``a`` and ``b`` with an RBF kernel.

    The bandwidth ``sigma`` (``k = exp(-d^2 / (2 sigma^2))``) defaults to the median pairwise
    distance of the pooled sample (the median heuristic). Returns ``(mmd2, sigma)``.
    """
    z = np.vstack([a, b]).astype(np.float64)
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    if bandwidth is None:
        off = d2[np.triu_indices(len(z), k=1)]
        bandwidth = float(np.sqrt(np.median(off))) or 1.0
    k = np.exp(-d2 / (2 * bandwidth**2))
    n, m = len(a), len(b)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    mmd2 = (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )
    return float(mmd2), float(bandwidth)


def _split_halves(y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint stratified halves (reference A, query B) of a stratified sample of ``n``."""
    from digitlab.data.subsets import stratified_subset

    n = min(n, len(y))
    pool = stratified_subset(y, total=n, seed=seed) if n < len(y) else np.arange(len(y))
    a_local = stratified_subset(y[pool], total=n // 2, seed=seed + 1)
    mask = np.zeros(len(pool), bool)
    mask[a_local] = True
    return pool[mask], pool[~mask]


def _one_blas_thread():
    """A context with BLAS limited to one thread (restored on exit).

    These matrices are small (a few thousand x 784); with several BLAS threads fighting torch's
    OpenMP threads for two busy cores, PCA and the logistic regression ran 3-6x slower (measured).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def distribution_shift(
    x_clean_uint8: np.ndarray,
    y: np.ndarray,
    name: str,
    seed: int = 0,
    n: int = 1000,
    n_pca: int = 50,
    k: int = 5,
    mmd_n: int = 500,
    cv: int = 5,
    n_jobs: int = 1,
    **params: Any,
) -> dict[str, Any]:
    """How far an augmentation moves the data, measured on a two-sample split.

    A stratified sample of ``n`` images is cut into two disjoint halves: the clean half A is the
    reference, the half B is augmented (with ``seed`` and ``params``; ``p`` defaults to 1 here, so
    the transform itself is measured, not its mixture with clean images). Both are projected on a
    PCA fitted to their union (``n_pca`` components), then:

    * ``domain_auc``: cross-validated ROC-AUC of a logistic regression telling clean A from
      augmented B (0.5 = indistinguishable, 1.0 = perfectly separable);
    * ``mmd2``: unbiased squared MMD, RBF kernel with the median-heuristic bandwidth, on up to
      ``mmd_n`` points of each half;
    * ``knn_consistency``: fraction of augmented B whose ``k`` nearest clean A neighbours vote
      for their true label; ``knn_consistency_clean`` is the same for the un-augmented B (the
      ceiling given this reference set).

    Using disjoint halves makes the identity augmentation the null case (AUC ~ 0.5, MMD ~ 0).

    Returns
    -------
    dict
        The measures above plus ``augmentation``, ``n_clean``, ``n_augmented``,
        ``mean_abs_pixel_change`` (mean |augmented - original| of B, intensity units) and
        ``mmd_bandwidth``; all plain Python numbers.
    """
    with _one_blas_thread():
        return _distribution_shift(
            np.asarray(x_clean_uint8), np.asarray(y), name, seed, n, n_pca, k, mmd_n, cv, n_jobs, params
        )


def _distribution_shift(x, y, name, seed, n, n_pca, k, mmd_n, cv, n_jobs, params) -> dict[str, Any]:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ia, ib = _split_halves(y, n, seed)
    xb_aug = augment_images(x[ib], name, seed=seed, **{"p": 1.0, **params})
    flat = lambda im: im.reshape(len(im), -1).astype(np.float32) / 255.0  # noqa: E731
    fa, fb, fb_clean = flat(x[ia]), flat(xb_aug), flat(x[ib])
    pca = PCA(n_components=min(n_pca, len(fa) + len(fb) - 1, fa.shape[1]), random_state=seed).fit(
        np.vstack([fa, fb])
    )
    za, zb, zb_clean = pca.transform(fa), pca.transform(fb), pca.transform(fb_clean)

    z = np.vstack([za, zb])
    dom = np.r_[np.zeros(len(za)), np.ones(len(zb))]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    score = cross_val_predict(clf, z, dom, cv=folds, method="predict_proba", n_jobs=n_jobs)[:, 1]
    auc = roc_auc_score(dom, score)

    rng = np.random.default_rng(seed)
    sa = rng.permutation(len(za))[:mmd_n]
    sb = rng.permutation(len(zb))[:mmd_n]
    mmd2, bw = mmd_rbf(za[sa], zb[sb])

    knn = KNeighborsClassifier(n_neighbors=k).fit(za, y[ia])
    return {
        "augmentation": name,
        "n_clean": int(len(ia)),
        "n_augmented": int(len(ib)),
        "domain_auc": float(auc),
        "mmd2": mmd2,
        "mmd_bandwidth": bw,
        "knn_consistency": float(np.mean(knn.predict(zb) == y[ib])),
        "knn_consistency_clean": float(np.mean(knn.predict(zb_clean) == y[ib])),
        "mean_abs_pixel_change": float(np.mean(np.abs(fb - fb_clean))),
    }


def _embed_2d(z: np.ndarray, method: str, seed: int, n_jobs: int) -> np.ndarray:
    """2-D embedding of PCA features ``z`` through :func:`digitlab.embed.embed` (PCA if it is absent)."""
    try:
        from digitlab.embed import embed
    except ImportError:
        embed = None
    if embed is not None:
        return np.asarray(embed(z, method, seed=seed, n_jobs=n_jobs, pca_dims=0))
    if method != "pca":
        raise ConfigError(f"embedding method {method!r}: needs digitlab.embed, which is missing; use 'pca'")
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(z)


def shift_embedding(
    x_clean_uint8: np.ndarray,
    names: Sequence[str],
    seed: int = 0,
    method: str = "pca",
    n_pca: int = 50,
    n_jobs: int = 1,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Embed clean images and every augmented version of them in ONE shared 2-D space.

    PCA to ``n_pca`` dimensions, then a 2-D ``method`` ("pca", or "tsne"/"umap" through
    :mod:`digitlab.embed`), both fitted on the union of clean and all augmented images (each
    applied with ``p=1``), so the panels share axes. Returns ``(clean_2d, {name: augmented_2d})``, rows aligned with the input.
    """
    from sklearn.decomposition import PCA

    x = np.asarray(x_clean_uint8)
    sets = [x] + [augment_images(x, name, seed=seed, p=1.0) for name in names]
    flat = np.vstack([s.reshape(len(s), -1) for s in sets]).astype(np.float32) / 255.0
    with _one_blas_thread():
        z = PCA(n_components=min(n_pca, flat.shape[0] - 1, flat.shape[1]), random_state=seed).fit_transform(
            flat
        )
    e = _embed_2d(z, method, seed, n_jobs)
    parts = np.split(e, len(sets))
    return parts[0], dict(zip(names, parts[1:]))


def plot_shift_embedding(
    clean_2d: np.ndarray,
    augmented_2d: dict[str, np.ndarray],
    y: np.ndarray | None = None,
    ncols: int = 6,
    stats: dict[str, dict[str, float]] | None = None,
    ax=None,
):
    """Small multiples: clean points in grey, one augmentation's points coloured by label per panel.

    ``stats`` (optional, by name) adds the domain AUC and k-NN consistency to each panel's title.
    ``ax``: draw the panels in this Axes' area (default: a new figure). Returns the matplotlib Figure.
    """
    from digitlab.plots import panels

    names = list(augmented_2d)
    nrows = max(1, math.ceil(len(names) / ncols))
    ncols = min(ncols, max(1, len(names)))
    own = ax is None
    fig, axes = panels(ax, nrows, ncols, (2.3 * ncols, 2.3 * nrows), sharex=True, sharey=True)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        ax.scatter(clean_2d[:, 0], clean_2d[:, 1], s=2, c="0.8", lw=0, rasterized=True)
        pts = augmented_2d[name]
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=2,
            lw=0,
            rasterized=True,
            c=y if y is not None else "tab:red",
            cmap="tab10" if y is not None else None,
            vmin=0,
            vmax=9,
        )
        title = name
        if stats and name in stats:
            title += f"\nAUC {stats[name]['domain_auc']:.2f}, kNN {stats[name]['knn_consistency']:.2f}"
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if own:
        fig.tight_layout()
    return fig
