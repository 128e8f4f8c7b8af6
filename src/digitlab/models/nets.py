"""Network families for small images: LeNet-5, a configurable CNN, a small ResNet, ConvMixer.

Every network takes a float tensor ``(B, C, H, W)`` that is already normalised and returns logits
``(B, n_classes)``; ``in_shape = (C, H, W)`` may have any number of channels (1 for greyscale, 3 for
RGB) and any size from 8x8 up (28x28 MNIST, 32x32 or 64x64 colour, non-square too): the first layer
takes ``C`` channels and the head is sized by a dry run. Build one by name::

    net = build_net("cnn", (1, 28, 28), 10, n_blocks=4, width=16, batch_norm=False)
    count_parameters(net)

Families and their parameters (defaults in brackets):

* ``lenet5``: LeCun et al. (1998), adapted to 28x28 by padding the first convolution (the original
  took 32x32). ``activation`` ["tanh"], ``pool`` ["avg"].
* ``cnn``: ``n_blocks`` conv blocks (1..6) then a classifier. A block is ``convs_per_block`` times
  [conv ``kernel_size`` -> BatchNorm (``batch_norm``) -> activation] then a 2x2 downsampling
  (``pool``: "max", "avg", or "none" = the block's last conv has stride 2) and ``dropout_conv``.
  With ``pool_first`` (default) the 2x2 pool comes right after the block's last conv, before
  BatchNorm and the activation (as in Keller Jordan's airbench): the same function class up to the
  order of BN and pooling, at about a third less compute.
  Widths follow the VGG rule with ``widen="double"``: a block has ``width`` times 2 to the number of
  downsamplings before it, so the work per block stays about constant while the resolution halves;
  ``widen="fixed"`` keeps every block at ``width``. A block only downsamples while the map stays at
  least 3 pixels wide (28 -> 14 -> 7 -> 3), so depths beyond that keep the resolution (and width)
  rather than fail. The head is ``head="flatten"`` (flatten -> optional ``hidden`` units ->
  ``dropout_fc`` -> linear) or ``"gap"`` (global average pooling -> ``dropout_fc`` -> linear).
  The defaults are the fast recipe's network (see :data:`digitlab.train.FAST_RECIPE`).
* ``resnet``: a small ResNet of basic blocks (He et al. 2016): a 3x3 stem of ``width`` [16]
  channels, ``n_stages`` [3] stages of ``blocks_per_stage`` [1] blocks, each stage after the first
  halving the resolution and doubling the width, global average pooling, linear.
* ``convmixer``: ConvMixer (Trockman & Kolter 2022): a patch embedding (``patch_size`` [2]) to
  ``dim`` [64] channels, ``depth`` [4] layers of a residual depthwise conv (``kernel_size`` [5]) and a
  pointwise conv, global average pooling, linear.
* ``mlp``: a fully connected network (:data:`DENSE_NAMES`, kept apart from the convolutional
  :data:`NET_NAMES`): flatten, then one [linear -> activation -> dropout] layer per entry of
  ``hidden`` [(256,)], then linear. ``hidden=()`` is softmax (multinomial logistic) regression;
  ``activation`` ["relu"], ``dropout`` [0.0] after every hidden layer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from digitlab.exceptions import ModelError

NET_NAMES: tuple[str, ...] = ("lenet5", "cnn", "resnet", "convmixer")  # convolutional families
DENSE_NAMES: tuple[str, ...] = (
    "mlp",
)  # fully connected families (no conv layers), for complexity/regularisation studies
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}
MIN_POOLED_SIZE = 3  # a block downsamples only if the map stays at least this many pixels wide


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ModelError(f"activation {name!r}: unknown; use one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ModelError(f"{what} {value!r}: unknown; use one of {list(allowed)}")


def _check_range(what: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ModelError(f"{what} = {value}: out of range; use a value between {low} and {high}")


def _out_size(module: nn.Module, in_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """Output shape (without batch) of ``module`` for one input of ``in_shape`` (a dry run)."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(1, *in_shape))
    module.train(was_training)
    return tuple(out.shape[1:])


# ---------------------------------------------------------------------------------------------
# LeNet-5
# ---------------------------------------------------------------------------------------------


class LeNet5(nn.Module):
    """LeNet-5: conv(6, 5x5) -> pool -> conv(16, 5x5) -> pool -> 120 -> 84 -> classes."""

    def __init__(
        self, in_shape: tuple[int, int, int], n_classes: int, activation: str = "tanh", pool: str = "avg"
    ):
        super().__init__()
        _check_choice("lenet5 pool", pool, ("avg", "max"))
        _activation(activation)
        c, h, _ = in_shape
        pool_cls = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
        # Padding 2 on the first conv makes 28x28 behave like the original 32x32 input; tiny
        # inputs (8x8 digits) also pad the second conv so the map does not vanish.
        pad2 = 0 if h >= 12 else 2
        self.features = nn.Sequential(
            nn.Conv2d(c, 6, 5, padding=2),
            _activation(activation),
            pool_cls(2),
            nn.Conv2d(6, 16, 5, padding=pad2),
            _activation(activation),
            pool_cls(2),
        )
        n_flat = int(torch.tensor(_out_size(self.features, in_shape)).prod())
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_flat, 120),
            _activation(activation),
            nn.Linear(120, 84),
            _activation(activation),
            nn.Linear(84, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ---------------------------------------------------------------------------------------------
# Configurable CNN
# ---------------------------------------------------------------------------------------------


def _conv_bn_act(
    c_in: int, c_out: int, k: int, stride: int, batch_norm: bool, activation: str
) -> list[nn.Module]:
    # A conv followed by BatchNorm needs no bias: BN's shift replaces it.
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(_activation(activation))
    return layers


def _downsampled(size: int, pool: str, k: int) -> int:
    """Map size after a block's downsampling (2x2 pool or stride-2 conv with padding k//2)."""
    if pool == "none":
        return (size + 2 * (k // 2) - k) // 2 + 1
    return size // 2


class ConvNet(nn.Module):
    """The configurable CNN (see the module docstring for the parameters)."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_classes: int,
        n_blocks: int = 3,
        width: int = 16,
        kernel_size: int = 3,
        batch_norm: bool = True,
        pool: str = "max",
        dropout_conv: float = 0.0,
        dropout_fc: float = 0.0,
        convs_per_block: int = 1,
        widen: str = "double",
        head: str = "flatten",
        hidden: int = 0,
        activation: str = "relu",
        pool_first: bool = True,
    ):
        super().__init__()
        _check_range("cnn n_blocks", n_blocks, 1, 6)
        _check_range("cnn width", width, 1, 4096)
        _check_range("cnn convs_per_block", convs_per_block, 1, 4)
        _check_range("cnn dropout_conv", dropout_conv, 0.0, 0.95)
        _check_range("cnn dropout_fc", dropout_fc, 0.0, 0.95)
        _check_range("cnn hidden", hidden, 0, 65536)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ModelError(f"cnn kernel_size = {kernel_size}: must be odd and positive (e.g. 3, 5, 7)")
        _check_choice("cnn pool", pool, ("max", "avg", "none"))
        _check_choice("cnn widen", widen, ("double", "fixed"))
        _check_choice("cnn head", head, ("flatten", "gap"))
        _activation(activation)
        c_in, size = in_shape[0], min(in_shape[1:])
        blocks: list[nn.Module] = []
        self.widths: list[int] = []
        n_down = 0
        for _ in range(n_blocks):
            c_out = width * 2**n_down if widen == "double" else width
            down = _downsampled(size, pool, kernel_size) >= MIN_POOLED_SIZE
            layers: list[nn.Module] = []
            for j in range(convs_per_block):
                last = j == convs_per_block - 1
                stride = 2 if (down and pool == "none" and last) else 1
                conv = _conv_bn_act(
                    c_in if j == 0 else c_out, c_out, kernel_size, stride, batch_norm, activation
                )
                if last and down and pool != "none":
                    pooling = nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)
                    # Pooling right after the conv (airbench's order) runs BN and the activation on
                    # a map 4x smaller: about a third less compute per block at the same accuracy.
                    conv = conv[:1] + [pooling] + conv[1:] if pool_first else conv + [pooling]
                layers += conv
            if dropout_conv > 0:
                layers.append(nn.Dropout(dropout_conv))
            blocks.append(nn.Sequential(*layers))
            self.widths.append(c_out)
            c_in, n_down = c_out, n_down + int(down)
            size = _downsampled(size, pool, kernel_size) if down else size
        self.features = nn.Sequential(*blocks)
        self.classifier = self._head(in_shape, n_classes, head, hidden, dropout_fc, activation)

    def _head(
        self, in_shape, n_classes: int, head: str, hidden: int, dropout_fc: float, activation: str
    ) -> nn.Sequential:
        c, h, w = _out_size(self.features, in_shape)
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1)] if head == "gap" else []
        layers.append(nn.Flatten())
        n_in = c if head == "gap" else c * h * w
        if hidden > 0:
            layers += [nn.Linear(n_in, hidden), _activation(activation)]
            n_in = hidden
        if dropout_fc > 0:
            layers.append(nn.Dropout(dropout_fc))
        layers.append(nn.Linear(n_in, n_classes))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ---------------------------------------------------------------------------------------------
# Small ResNet
# ---------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """A small ResNet: stem, ``n_stages`` stages of basic blocks, global average pooling, linear."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_classes: int,
        width: int = 16,
        n_stages: int = 3,
        blocks_per_stage: int = 1,
        dropout_fc: float = 0.0,
    ):
        super().__init__()
        _check_range("resnet width", width, 1, 1024)
        _check_range("resnet n_stages", n_stages, 1, 4)
        _check_range("resnet blocks_per_stage", blocks_per_stage, 1, 8)
        _check_range("resnet dropout_fc", dropout_fc, 0.0, 0.95)
        layers: list[nn.Module] = [
            nn.Conv2d(in_shape[0], width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        c_in = width
        for stage in range(n_stages):
            c_out = width * 2**stage
            for b in range(blocks_per_stage):
                layers.append(BasicBlock(c_in, c_out, stride=2 if (stage > 0 and b == 0) else 1))
                c_in = c_out
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout_fc > 0:
            head.append(nn.Dropout(dropout_fc))
        self.classifier = nn.Sequential(*head, nn.Linear(c_in, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ---------------------------------------------------------------------------------------------
# ConvMixer
# ---------------------------------------------------------------------------------------------


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fn(x)


class ConvMixer(nn.Module):
    """ConvMixer: patch embedding, ``depth`` x (residual depthwise conv, pointwise conv), GAP, linear."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_classes: int,
        dim: int = 64,
        depth: int = 4,
        kernel_size: int = 5,
        patch_size: int = 2,
    ):
        super().__init__()
        _check_range("convmixer dim", dim, 1, 4096)
        _check_range("convmixer depth", depth, 1, 64)
        _check_range("convmixer patch_size", patch_size, 1, min(in_shape[1:]))
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ModelError(
                f"convmixer kernel_size = {kernel_size}: must be odd and positive (e.g. 5, 7, 9)"
            )
        layers: list[nn.Module] = [
            nn.Conv2d(in_shape[0], dim, patch_size, stride=patch_size),
            nn.GELU(),
            nn.BatchNorm2d(dim),
        ]
        for _ in range(depth):
            depthwise = nn.Sequential(
                nn.Conv2d(dim, dim, kernel_size, groups=dim, padding=kernel_size // 2),
                nn.GELU(),
                nn.BatchNorm2d(dim),
            )
            layers += [Residual(depthwise), nn.Conv2d(dim, dim, 1), nn.GELU(), nn.BatchNorm2d(dim)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(dim, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ---------------------------------------------------------------------------------------------
# Fully connected network (MLP; softmax regression with no hidden layer)
# ---------------------------------------------------------------------------------------------


class MLP(nn.Module):
    """Flatten, ``hidden`` x [linear -> activation -> dropout], linear. ``hidden=()``: softmax regression."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_classes: int,
        hidden: tuple[int, ...] | list[int] = (256,),
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__()
        _check_range("mlp dropout", dropout, 0.0, 0.95)
        for h in hidden:
            _check_range("mlp hidden units", h, 1, 65536)
        _activation(activation)
        n_in = in_shape[0] * in_shape[1] * in_shape[2]
        layers: list[nn.Module] = [nn.Flatten()]
        for h in hidden:
            layers += [nn.Linear(n_in, int(h)), _activation(activation)] + (
                [nn.Dropout(dropout)] if dropout > 0 else []
            )
            n_in = int(h)
        layers.append(nn.Linear(n_in, n_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

_FAMILIES: dict[str, type[nn.Module]] = {
    "lenet5": LeNet5,
    "cnn": ConvNet,
    "resnet": ResNet,
    "convmixer": ConvMixer,
    "mlp": MLP,
}


def net_params(name: str) -> dict[str, object]:
    """The parameters of family ``name`` with their defaults."""
    if name not in _FAMILIES:
        raise ModelError(f"network {name!r}: unknown; use one of {list(NET_NAMES + DENSE_NAMES)}")
    sig = inspect.signature(_FAMILIES[name].__init__)
    return {k: p.default for k, p in sig.parameters.items() if k not in ("self", "in_shape", "n_classes")}


def build_net(
    name: str,
    in_shape: tuple[int, int, int] = (1, 28, 28),
    n_classes: int = 10,
    *,
    seed: int | None = None,
    **params,
) -> nn.Module:
    """Build a network of family ``name``.

    Parameters
    ----------
    name : one of :data:`NET_NAMES` or :data:`DENSE_NAMES`.
    in_shape : ``(channels, height, width)`` of one input image.
    n_classes : number of output logits.
    seed : if given, the weights are initialised under ``torch.manual_seed(seed)`` without
        disturbing the global random state; otherwise from the global state.
    **params : the family's parameters (see the module docstring and :func:`net_params`).

    Raises
    ------
    ModelError : unknown family, unknown parameter or a bad value.
    """
    allowed = net_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ModelError(f"network {name!r}: unknown parameter(s) {unknown}; use some of {sorted(allowed)}")
    if len(in_shape) != 3:
        raise ModelError(f"in_shape {in_shape}: must be (channels, height, width)")
    if seed is None:
        return _FAMILIES[name](tuple(in_shape), n_classes, **params)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _FAMILIES[name](tuple(in_shape), n_classes, **params)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
