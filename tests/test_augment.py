"""Tests of the augmentation catalogue, the shift measures and the ``augment`` task (bundled MNIST)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from digitlab.augment import (
    AUGMENTATIONS,
    _blur,
    augment_images,
    compose,
    distribution_shift,
    get_augmentation,
    mmd_rbf,
    plot_gallery,
)
from digitlab.exceptions import ConfigError

NAMES = list(AUGMENTATIONS)


@pytest.fixture(scope="module")
def batch(mnist) -> torch.Tensor:
    return torch.from_numpy(mnist.x_test[:32]).float().div(255.0)[:, None]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Catalogue contract
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_range_kept(batch, name, dtype):
    x = batch.to(dtype)
    y = get_augmentation(name, p=1.0)(x, gen())
    assert y.shape == x.shape and y.dtype == dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_seed(batch, name):
    aug = get_augmentation(name, p=1.0)
    assert torch.equal(aug(batch, gen(3)), aug(batch, gen(3)))
    other = aug(batch, gen(4))
    if aug.is_random:
        assert not torch.equal(aug(batch, gen(3)), other)
    else:
        assert torch.equal(aug(batch, gen(3)), other)


@pytest.mark.parametrize("name", NAMES)
def test_p_zero_is_identity(batch, name):
    assert torch.equal(get_augmentation(name, p=0.0)(batch, gen()), batch)


def test_p_selects_that_fraction_and_leaves_the_rest_untouched(mnist):
    x = torch.from_numpy(mnist.x_test[:2000]).float().div(255.0)[:, None]
    y = get_augmentation("vflip", p=0.3)(x, gen())
    flipped = torch.flip(x, (2,))
    same = (y == x).flatten(1).all(1)
    is_flip = (y == flipped).flatten(1).all(1)
    assert bool((same | is_flip).all())
    frac = float((is_flip & ~same).float().mean())
    assert 0.25 < frac < 0.35


def test_hflip_twice_is_identity(batch):
    aug = get_augmentation("hflip", p=1.0)
    assert torch.equal(aug(aug(batch, gen(0)), gen(1)), batch)
    assert torch.equal(compose(aug, aug)(batch, gen()), batch)


def test_rotate_180_equals_flip_on_both_axes(batch):
    y = get_augmentation("rotate_large", degrees=180.0, exact=True, p=1.0)(batch, gen())
    torch.testing.assert_close(y, torch.flip(batch, (2, 3)), atol=1e-4, rtol=0)


def test_rotate_90_equals_rot90(batch):
    # Checks the pixel-coordinate handling of the affine maps (a 90-degree turn is exact on the grid).
    y = get_augmentation("rotate_small", degrees=90.0, exact=True, p=1.0)(batch, gen())
    err = min(float((y - torch.rot90(batch, k, (2, 3))).abs().max()) for k in (1, 3))
    assert err < 1e-4


@pytest.mark.parametrize(
    "name,params",
    [
        ("affine", {"degrees": 0.0, "shift": 0.0, "scale": [1.0, 1.0], "shear": 0.0}),
        ("pad_crop", {"pad": 0}),
        ("crop_resize", {"scale": [1.0, 1.0], "ratio": [1.0, 1.0]}),
        ("perspective", {"distortion": 0.0}),
        ("brightness_contrast", {"brightness": 0.0, "contrast": 0.0}),
        ("translate", {"shift": 0.0}),
    ],
)
def test_zero_strength_is_identity(batch, name, params):
    torch.testing.assert_close(
        get_augmentation(name, p=1.0, **params)(batch, gen()), batch, atol=1e-4, rtol=0
    )


def test_pad_crop_is_an_integer_shift(batch):
    y = get_augmentation("pad_crop", pad=2, p=1.0)(batch, gen())
    for i in range(4):  # each output is the input shifted by some (dy, dx) in -2..2 with zero fill
        padded = torch.nn.functional.pad(batch[i, 0], (2, 2, 2, 2))
        windows = [padded[dy : dy + 28, dx : dx + 28] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(y[i, 0], w) for w in windows)


def test_blur_matches_scipy_gaussian_filter():
    x = torch.rand(3, 2, 20, 20, generator=gen())
    sigmas = [4.0, 1.0, 0.7]
    out = _blur(x, torch.tensor(sigmas), 16)
    for b, s in enumerate(sigmas):
        ref = ndimage.gaussian_filter(x[b].double().numpy(), (0, s, s), mode="constant", truncate=16 / s)
        np.testing.assert_allclose(out[b].numpy(), ref, atol=1e-5)


def test_gaussian_blur_matches_scipy(batch):
    y = get_augmentation("gaussian_blur", sigma=[1.0, 1.0], p=1.0)(batch, gen())
    ref = ndimage.gaussian_filter(batch[:, 0].double().numpy(), (0, 1.0, 1.0), mode="constant", truncate=3.0)
    np.testing.assert_allclose(y[:, 0].numpy(), ref, atol=1e-5)


def test_dilate_erode_match_scipy_morphology(batch):
    x = batch[:, 0].numpy()
    dil = get_augmentation("dilate", p=1.0)(batch, gen())[:, 0].numpy()
    ero = get_augmentation("erode", p=1.0)(batch, gen())[:, 0].numpy()
    np.testing.assert_allclose(dil, ndimage.grey_dilation(x, size=(1, 3, 3), mode="nearest"), atol=1e-6)
    np.testing.assert_allclose(ero, ndimage.grey_erosion(x, size=(1, 3, 3), mode="nearest"), atol=1e-6)


def test_noise_and_salt_pepper_have_their_stated_strength():
    grey = torch.full((64, 1, 28, 28), 0.5)
    noisy = get_augmentation("gaussian_noise", std=0.1, p=1.0)(grey, gen())
    assert abs(float((noisy - grey).std()) - 0.1) < 0.005
    assert abs(float((noisy - grey).mean())) < 0.005
    sp = get_augmentation("salt_pepper", amount=0.2, p=1.0)(grey, gen())
    assert abs(float((sp == 0).float().mean()) - 0.1) < 0.01
    assert abs(float((sp == 1).float().mean()) - 0.1) < 0.01


def test_random_erasing_area_within_scale():
    ones = torch.ones(200, 1, 28, 28)
    y = get_augmentation("random_erasing", scale=[0.05, 0.2], p=1.0)(ones, gen())
    erased = (y == 0).flatten(1).float().mean(1)
    assert float(erased.min()) >= 0.03 and float(erased.max()) <= 0.23


def test_elastic_moves_pixels_by_a_few_pixels(batch):
    y = get_augmentation("elastic", p=1.0)(batch, gen())
    # Mass is roughly conserved (a smooth warp), but the image changes.
    assert float((y - batch).abs().mean()) > 0.02
    assert abs(float(y.sum() / batch.sum()) - 1.0) < 0.1


# ---------------------------------------------------------------------------------------------
# numpy helper, errors
# ---------------------------------------------------------------------------------------------


def test_augment_images_keeps_order_so_labels_stay_aligned(mnist):
    x = mnist.x_test[:200]
    y = augment_images(x, "hflip", seed=1, p=0.5)
    assert y.dtype == np.uint8 and y.shape == x.shape
    same = (y == x).all(axis=(1, 2))
    flipped = (y == x[:, :, ::-1]).all(axis=(1, 2))
    assert (same | flipped).all() and 0 < flipped.sum() < 200
    np.testing.assert_array_equal(augment_images(x, "elastic", seed=5), augment_images(x, "elastic", seed=5))


def test_augment_images_matches_tensor_path(mnist):
    x = mnist.x_test[:16]
    t = get_augmentation("rotate_small", p=1.0)(torch.from_numpy(x).float().div(255)[:, None], gen(2))
    np.testing.assert_array_equal(
        augment_images(x, "rotate_small", seed=2), (t[:, 0] * 255).round().to(torch.uint8).numpy()
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: get_augmentation("mirror"),
        lambda: get_augmentation("rotate_small", angle=3),
        lambda: get_augmentation("hflip", p=1.5),
        lambda: get_augmentation("crop_resize", scale=[0.9, 0.5]),
        lambda: augment_images(np.zeros((2, 8, 8), np.uint8), "nope"),
    ],
)
def test_bad_names_and_params_raise_config_error(call):
    with pytest.raises(ConfigError):
        call()


def test_gallery_has_a_row_per_augmentation_plus_original(mnist):
    fig = plot_gallery(mnist.x_test[:5], ["hflip", "elastic"], seed=0)
    assert len(fig.axes) == 3 * 5
    assert fig.axes[0].get_ylabel() == "original"


# ---------------------------------------------------------------------------------------------
# Distribution shift
# ---------------------------------------------------------------------------------------------


def test_mmd_matches_naive_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 3)), rng.normal(1.0, size=(5, 3))
    mmd2, sigma = mmd_rbf(a, b, bandwidth=1.3)
    k = lambda u, v: np.exp(-np.sum((u - v) ** 2) / (2 * 1.3**2))  # noqa: E731
    kxx = np.mean([k(a[i], a[j]) for i in range(7) for j in range(7) if i != j])
    kyy = np.mean([k(b[i], b[j]) for i in range(5) for j in range(5) if i != j])
    kxy = np.mean([k(u, v) for u in a for v in b])
    assert sigma == 1.3
    assert mmd2 == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-10)


def test_distribution_shift_null_and_vflip(mnist):
    null = distribution_shift(mnist.x_train, mnist.y_train, "identity", seed=0, n=600)
    flip = distribution_shift(mnist.x_train, mnist.y_train, "vflip", seed=0, n=600)
    assert abs(null["domain_auc"] - 0.5) < 0.12
    assert abs(null["mmd2"]) < 0.002
    assert null["knn_consistency"] == null["knn_consistency_clean"] > 0.7
    assert flip["domain_auc"] > 0.85
    assert flip["mmd2"] > 5 * abs(null["mmd2"])
    assert flip["knn_consistency"] < null["knn_consistency"] - 0.2
    json.dumps(flip)


# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------


def test_task_runs_tiny_and_yields_tables_and_figures(mnist, tmp_path):
    from digitlab.data.subsets import stratified_subset
    from digitlab.study.task import TaskContext
    from digitlab.study.tasks import augment as task

    tr = stratified_subset(mnist.y_train, total=600, seed=0)
    te = stratified_subset(mnist.y_test, total=300, seed=0)
    ds = mnist.subset(tr, te, "mnist-tiny")
    cfg = task.Config(**task.PROFILES["quick"])
    cfg = dataclasses.replace(
        cfg,
        augmentations=["hflip", "rotate_large", "gaussian_noise"],
        n_train=500,
        n_test_corrupt=100,
        width=4,
        n_blocks=1,
        shift_n=200,
        embed_n=40,
        gallery_n=4,
    )
    ctx = TaskContext(dataset=ds, out_dir=tmp_path, seed=0, progress=False)
    res = task.run(ctx, cfg)

    tables = {t.name: t for t in res.tables}
    assert {
        "catalogue",
        "distribution_shift",
        "effectiveness",
        "robustness",
        "flip_confusions",
        "flip_per_digit",
    } <= set(tables)
    assert [r["train_augmentation"] for r in tables["effectiveness"].rows] == [
        "none",
        "hflip",
        "rotate_large",
        "gaussian_noise",
    ]
    assert [r["augmentation"] for r in tables["distribution_shift"].rows][0] == "identity"
    assert {r["transform"] for r in tables["flip_confusions"].rows} == {"hflip", "vflip", "rot180"}
    assert len(tables["flip_per_digit"].rows) == 10
    for f in res.figures:
        assert (tmp_path / f.file).is_file(), f.file
    assert {"gallery", "shift_embedding", "robustness_heatmap", "clean_delta", "flip_confusions"} <= {
        f.name for f in res.figures
    }
    assert len(res.findings) >= 5 and any("6" in s and "9" in s for s in res.findings)
    json.dumps([dataclasses.asdict(t) for t in res.tables])
    json.dumps(res.metrics)


def test_config_rejects_unknown_augmentation():
    from digitlab.study.tasks import augment as task

    with pytest.raises(ConfigError, match="augment.augmentations"):
        task.Config(augmentations=["hflip", "mirror"]).validate()


def test_augmentation_effect_scores_clean_corrupted_and_flipped(mnist):
    """The one augmentation experiment: corruptions on a subset of the clean test images, flips on the reference model."""
    from digitlab.experiments.augmentation import FLIP_TRANSFORMS, augmentation_effect, augmentation_shift

    recipe = ("cnn", {"width": 4, "n_blocks": 1}, {"epochs": 1, "batch_size": 64, "lr": 0.01})
    eff = augmentation_effect(
        mnist,
        ["vflip", "rotate_small"],
        recipe=recipe,
        n_train=600,
        n_test=200,
        n_test_corrupt=100,
        seed=0,
        device="cpu",
    )
    assert list(eff.summary.index) == ["none", "vflip", "rotate_small"] and eff.corruptions == [
        "vflip",
        "rotate_small",
    ]
    assert (eff.n_train, eff.n_test, eff.n_test_corrupt) == (600, 200, 100)
    assert eff.summary.loc["none", "verdict"] == "baseline" and eff.summary.loc["none", "delta_clean"] == 0.0
    assert set(eff.summary["verdict"].iloc[1:]) <= {"helps", "hurts", "within noise"}
    none = eff.runs.set_index("augmentation").loc["none"]
    assert none["vflip"] < none["clean"] - 0.2  # a network never shown upside-down digits fails on them
    assert set(eff.flip_cms) == set(FLIP_TRANSFORMS) and list(eff.flips["transform"]) == list(FLIP_TRANSFORMS)
    assert np.allclose(eff.flip_cms["hflip"].sum(1), 1.0) and len(eff.flip_per_class) == 10
    assert eff.swap_pair == ("6", "9") and set(eff.swaps) == {"none", "vflip", "rotate_small"}
    assert eff.train_config.epochs == 1 and eff.train_config.augment == ""
    # the same seed gives the same numbers
    again = augmentation_effect(
        mnist,
        ["vflip"],
        recipe=recipe,
        n_train=600,
        n_test=200,
        n_test_corrupt=100,
        seed=0,
        device="cpu",
        flips={},
    )
    assert again.runs.loc[0, "clean"] == eff.runs.loc[0, "clean"] and not again.flip_cms
    sh = augmentation_shift(mnist, ["hflip"], n=200, embed_n=30, seed=0)
    assert list(sh.shift["augmentation"]) == ["identity", "hflip"] and sh.clean_2d.shape == (30, 2)
    import matplotlib.pyplot as plt

    for fig in (
        eff.plot(),
        eff.plot_matrix(),
        eff.plot_clean_delta(),
        eff.plot_flips(),
        sh.plot_map(),
        sh.plot_embedding(),
    ):
        assert isinstance(fig, plt.Figure)
        plt.close(fig)
