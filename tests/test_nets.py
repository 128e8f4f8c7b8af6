"""Network families: shapes, parameter counts, depth rules, errors, seeded initialisation."""

import pytest
import torch

from digitlab.exceptions import ModelError
from digitlab.models.nets import NET_NAMES, build_net, count_parameters, net_params


@pytest.mark.parametrize("name", NET_NAMES)
@pytest.mark.parametrize(
    "in_shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32), (3, 64, 64), (3, 32, 48), (4, 28, 28)]
)
def test_every_family_maps_images_to_logits(name, in_shape):
    net = build_net(name, in_shape, n_classes=7).eval()
    out = net(torch.randn(5, *in_shape))
    assert out.shape == (5, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("pool", ["max", "avg", "none"])
@pytest.mark.parametrize("n_blocks", [1, 2, 3, 4, 5, 6])
def test_cnn_depths_1_to_6_build_and_stop_downsampling_at_3_pixels(n_blocks, pool):
    net = build_net("cnn", n_blocks=n_blocks, width=8, pool=pool).eval()
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    fmap = net.features(torch.randn(1, 1, 28, 28))
    # 28 -> 14 -> 7 -> 3 (pooling) or 28 -> 14 -> 7 -> 4 -> 2 would vanish: stride-2 stops at 4.
    expected = {"max": [28, 14, 7, 3], "avg": [28, 14, 7, 3], "none": [28, 14, 7, 4]}[pool]
    assert fmap.shape[-1] == expected[min(n_blocks, 3)]
    assert len(net.widths) == n_blocks


def test_cnn_widths_double_with_each_downsampling_or_stay_fixed():
    assert build_net("cnn", n_blocks=6, width=8).widths == [8, 16, 32, 64, 64, 64]
    assert build_net("cnn", n_blocks=4, width=8, widen="fixed").widths == [8, 8, 8, 8]


def test_lenet5_has_the_classic_parameter_count():
    # LeCun et al. 1998 (with a dense C3): 156 + 2416 + 48120 + 10164 + 850 = 61,706.
    assert count_parameters(build_net("lenet5")) == 61_706


def test_count_parameters_matches_a_hand_count():
    # 1 block of 4 3x3 kernels with BN (no conv bias): 36 + 8 BN; head 4*14*14*10 + 10.
    net = build_net("cnn", n_blocks=1, width=4, batch_norm=True)
    assert count_parameters(net) == 36 + 8 + 4 * 14 * 14 * 10 + 10
    no_bn = build_net("cnn", n_blocks=1, width=4, batch_norm=False)
    assert count_parameters(no_bn) == 36 + 4 + 4 * 14 * 14 * 10 + 10
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in no_bn.modules())


def test_dropout_placement_and_gap_head():
    net = build_net("cnn", n_blocks=2, dropout_conv=0.1, dropout_fc=0.3, head="gap", hidden=32)
    rates = [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates == [0.1, 0.1, 0.3]
    assert isinstance(net.classifier[0], torch.nn.AdaptiveAvgPool2d)


def test_same_seed_gives_same_weights_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = build_net("resnet", seed=3), build_net("resnet", seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    c = build_net("resnet", seed=4)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_bad_names_and_values_raise_model_error():
    with pytest.raises(ModelError, match="unknown"):
        build_net("vgg")
    with pytest.raises(ModelError, match="depthh"):
        build_net("convmixer", depthh=3)
    with pytest.raises(ModelError, match="n_blocks"):
        build_net("cnn", n_blocks=7)
    with pytest.raises(ModelError, match="kernel_size"):
        build_net("cnn", kernel_size=4)
    with pytest.raises(ModelError, match="pool"):
        build_net("cnn", pool="median")
    assert set(net_params("convmixer")) == {"dim", "depth", "kernel_size", "patch_size"}


@pytest.mark.parametrize("name", NET_NAMES)
def test_first_layer_takes_the_input_channels(name):
    net = build_net(name, (3, 32, 32), 10)
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 3
