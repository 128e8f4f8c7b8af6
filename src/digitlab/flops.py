"""Training and inference cost in floating-point operations (FLOPs), counted by PyTorch.

Seconds depend on the machine; FLOPs do not. :func:`train_flops` runs one training step (forward,
loss, backward) of a copy of the network on one batch under
:class:`torch.utils.flop_counter.FlopCounterMode` and returns the FLOPs per training image;
multiplied by the images a run has seen it is the run's training cost. :func:`forward_flops` is the
same for inference (forward only, evaluation mode).

What is counted: the matrix multiplications and convolutions (``mm``, ``addmm``, ``bmm``,
convolution and its backward, attention), i.e. PyTorch's FLOP counter, with one multiply-add = 2
FLOPs. Element-wise work (activations, batch-norm, pooling, the loss, the optimiser update, data
augmentation) is not counted; for the networks here it is a few per cent of the total. A linear
layer of ``in`` inputs and ``out`` outputs costs ``2 x in x out`` FLOPs per image forward and the
same again for each gradient it computes: the weight gradient always, the input gradient only when
something upstream needs it. The first layer's input (the images) needs no gradient, so a real
training step costs ``2x`` the forward FLOPs for the first layer and ``3x`` for every later one;
``input_grad=True`` counts the textbook ``3x`` everywhere.

Grouped (e.g. depthwise) convolutions: PyTorch up to at least 2.13 counts their weight gradient
``groups`` times over (fixed upstream in pytorch/pytorch#183405), which made a ConvMixer's backward
pass look 20x its forward. The backward formula here counts each requested gradient at the cost of
the forward convolution, which is exact for grouped, strided and transposed convolutions alike.

Classic (scikit-learn) models have no such counter: their cost stays in seconds.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count


def _conv_backward_flop(
    grad_out_shape,
    x_shape,
    w_shape,
    _bias,
    _stride,
    _padding,
    _dilation,
    transposed,
    _output_padding,
    _groups,
    output_mask,
    out_shape=None,
    **kwargs,
) -> int:
    """FLOPs of a convolution's backward: each requested gradient (input, weight) costs as much as the forward."""
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def _counter() -> FlopCounterMode:
    return FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flop}
    )


def _device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def train_flops(
    model: nn.Module, in_shape: Sequence[int], batch: int = 32, *, input_grad: bool = False
) -> float:
    """FLOPs of one training step per image: forward, cross-entropy loss and backward of a batch.

    Parameters
    ----------
    model : the network (left untouched: a deep copy in training mode is measured on the model's device).
    in_shape : ``(C, H, W)`` of one input image.
    batch : images in the measured batch (the run's batch size; the count per image does not depend on it
        for these networks, but batch-norm needs more than one image).
    input_grad : also count the gradient with respect to the input images (the textbook 3x forward);
        a training step does not compute it.

    Returns
    -------
    float : FLOPs per training image (total of the batch / ``batch``).
    """
    if batch < 1:
        raise ValueError(f"batch {batch}: must be at least 1")
    net = copy.deepcopy(model)
    net.train()
    dev = _device(net)
    for p in net.parameters():
        p.grad = None
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, *in_shape, generator=gen).to(dev).requires_grad_(input_grad)
    with _counter() as counter:
        out = net(x)
        if out.ndim == 2:
            loss = nn.functional.cross_entropy(out.float(), torch.zeros(batch, dtype=torch.long, device=dev))
        else:
            loss = out.float().sum()
        loss.backward()
    return counter.get_total_flops() / batch


@torch.no_grad()
def forward_flops(model: nn.Module, in_shape: Sequence[int], batch: int = 32) -> float:
    """FLOPs of inference per image (forward pass in evaluation mode, no gradients)."""
    if batch < 1:
        raise ValueError(f"batch {batch}: must be at least 1")
    net = copy.deepcopy(model)
    net.eval()
    x = torch.randn(batch, *in_shape, generator=torch.Generator(device="cpu").manual_seed(0)).to(_device(net))
    with _counter() as counter:
        net(x)
    return counter.get_total_flops() / batch


def format_flops(flops: float | None) -> str:
    """``1.23 GFLOP``-style text (k, M, G, T, P, E prefixes); empty for None."""
    if flops is None:
        return ""
    value, prefix = float(flops), ""
    for p in ("k", "M", "G", "T", "P", "E"):
        if abs(value) < 1000:
            break
        value, prefix = value / 1000, p
    return f"{value:.3g} {prefix}FLOP"


__all__ = ["train_flops", "forward_flops", "format_flops"]
