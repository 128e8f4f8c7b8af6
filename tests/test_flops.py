"""FLOP counts of training and inference against the hand formula, and the engine's FLOP fields."""

import numpy as np
import pytest
import torch
from torch import nn

from digitlab.flops import format_flops, forward_flops, train_flops


def test_linear_layer_matches_hand_formula():
    n_in, n_out = 20, 30
    layer = nn.Linear(n_in, n_out)
    fwd = 2 * n_in * n_out  # one multiply-add = 2 FLOPs, per image
    assert forward_flops(layer, (n_in,), batch=4) == fwd
    # forward + input gradient + weight gradient: the textbook 3x
    assert train_flops(layer, (n_in,), batch=4, input_grad=True) == 3 * fwd
    # a training step never needs the gradient of the images: forward + weight gradient
    assert train_flops(layer, (n_in,), batch=4) == 2 * fwd


def test_conv_layer_matches_hand_formula():
    c_in, c_out, k, h, w = 3, 8, 3, 10, 12
    conv = nn.Conv2d(c_in, c_out, k, padding=1)  # "same" padding: h x w output positions
    fwd = 2 * (c_in * k * k) * c_out * h * w
    assert forward_flops(conv, (c_in, h, w), batch=2) == fwd
    assert train_flops(conv, (c_in, h, w), batch=2, input_grad=True) == 3 * fwd
    assert train_flops(conv, (c_in, h, w), batch=2) == 2 * fwd
    strided = nn.Conv2d(c_in, c_out, 5, stride=2)  # (10-5)//2+1 = 3 by (12-5)//2+1 = 4 positions
    assert forward_flops(strided, (c_in, 10, 12)) == 2 * (c_in * 25) * c_out * 3 * 4


@pytest.mark.parametrize("groups", [1, 4, 16])
def test_grouped_and_depthwise_conv_backward_is_not_overcounted(groups):
    c, k, h = 16, 3, 10
    conv = nn.Conv2d(c, c, k, padding=1, groups=groups, bias=False)
    fwd = 2 * (c // groups * k * k) * c * h * h
    assert forward_flops(conv, (c, h, h), batch=2) == fwd
    assert (
        train_flops(conv, (c, h, h), batch=2, input_grad=True) == 3 * fwd
    )  # torch's own counter: (2 + groups) x


def test_stack_counts_input_gradients_after_the_first_layer():
    a, b, c = 20, 30, 5
    net = nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, c))
    # first layer: forward + weight gradient; second: forward + weight gradient + input gradient
    assert train_flops(net, (a,), batch=8) == 2 * (2 * a * b) + 3 * (2 * b * c)
    assert forward_flops(net, (a,)) == 2 * a * b + 2 * b * c


def test_measuring_leaves_the_model_untouched():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    per_image = train_flops(net, (1, 8, 8), batch=16)
    assert per_image > 0 and not net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BN running stats too
    assert all(p.grad is None for p in net.parameters())
    # the count per image does not depend on the batch size
    assert train_flops(net, (1, 8, 8), batch=4) == pytest.approx(per_image)


def test_engine_reports_training_flops(digits_small):
    from digitlab.grid import fit_and_score
    from digitlab.models.nets import build_net
    from digitlab.train import TrainConfig

    x_tr, y_tr, x_te, y_te = digits_small
    cfg = TrainConfig(epochs=2, batch_size=64, lr=0.01, device="cpu", num_threads=1)
    out = fit_and_score("cnn", {"n_blocks": 1, "width": 4}, x_tr, y_tr, {"test": (x_te, y_te)}, cfg, seed=0)
    net = build_net("cnn", (1, 8, 8), 10, seed=0, n_blocks=1, width=4)
    assert out["flops_per_image"] == train_flops(net, (1, 8, 8), 64)
    images_seen = 2 * (len(y_tr) - round(len(y_tr) * cfg.val_fraction))  # two epochs over the training part
    assert out["train_flops"] == pytest.approx(out["flops_per_image"] * images_seen, rel=0.02)
    assert out["eval_flops_per_image"] == forward_flops(net, (1, 8, 8))
    assert out["eval_flops"] == out["eval_flops_per_image"] * len(y_te)
    assert out["flops_per_image"] > 2 * out["eval_flops_per_image"]  # backward costs more than the forward


def test_format_flops():
    assert format_flops(None) == ""
    assert format_flops(512) == "512 FLOP"
    assert format_flops(2.5e9) == "2.5 GFLOP"
    assert format_flops(1.234e15) == "1.23 PFLOP"


@pytest.fixture(scope="module")
def digits_small():
    from digitlab.data.registry import load_dataset

    ds = load_dataset("digits")
    rng = np.random.default_rng(0)
    tr, te = rng.choice(len(ds.y_train), 400, replace=False), rng.choice(len(ds.y_test), 100, replace=False)
    return ds.x_train[tr], ds.y_train[tr], ds.x_test[te], ds.y_test[te]
