"""The training engine: checkpoint restore, schedulers against closed forms, determinism, budgets,
learning on real MNIST, scikit-learn compatibility, augmentation."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from digitlab.data import load_dataset, stratified_subset
from digitlab.errors import ConfigError
from digitlab.models.nets import build_net
from digitlab.train import (
    CNNClassifier,
    TrainConfig,
    cross_validate,
    fit,
    predict_proba,
    random_affine,
    random_shift,
    resolve_device,
    stratified_split,
)

# Small, fast defaults: every test trains a tiny net on a few hundred images on the CPU.
TINY = {"n_blocks": 2, "width": 8}
# One thread: the tests run beside other work, where a second thread only waits for a busy core.
BASE = TrainConfig(epochs=2, batch_size=64, lr=0.01, device="cpu", val_fraction=0.2, channels_last=False, num_threads=1)


@pytest.fixture(autouse=True)
def one_thread():
    # The estimator tests use torch's global thread count; keep it at one beside other work.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


@pytest.fixture(scope="module")
def small(mnist):
    idx = stratified_subset(mnist.y_train, total=600, seed=1)
    return mnist.x_train[idx], mnist.y_train[idx]


def lrs(history):
    return [row["lr"] for row in history]


def test_short_fit_on_a_few_thousand_images_is_far_above_chance(mnist):
    idx = stratified_subset(mnist.y_train, total=2000, seed=0)
    net = build_net("cnn", n_blocks=2, width=16, seed=0)
    res = fit(net, mnist.x_train[idx], mnist.y_train[idx], replace(BASE, epochs=2, batch_size=64, val_fraction=0.1))
    proba = predict_proba(res.model, mnist.x_test[:1000], norm=res.norm)
    assert proba.shape == (1000, 10)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert (proba.argmax(1) == mnist.y_test[:1000]).mean() > 0.9  # chance is 0.1
    n_val = sum(round(0.1 * c) for c in np.bincount(mnist.y_train[idx]))
    assert res.n_train_images_seen == 2 * (2000 - n_val)
    assert [row["epoch"] for row in res.history] == [1, 2]


def test_best_checkpoint_is_restored_when_the_last_epoch_is_worse(small, mnist):
    x, y = small
    x_val, y_val = mnist.x_test[:300], mnist.y_test[:300]
    # SGD learns for two epochs, then a x1000 learning-rate jump at epoch 3 wrecks the weights.
    cfg = replace(BASE, epochs=3, optimizer="sgd", lr=0.05, scheduler="multistep", milestones=[2], gamma=1000.0)
    res = fit(build_net("lenet5", seed=0), x, y, cfg, x_val=x_val, y_val=y_val)
    accs = [row["val_acc"] for row in res.history]
    assert accs[2] < max(accs[:2])  # the construction worked: the last epoch is worse
    assert res.best_epoch == int(np.argmax(accs)) + 1
    restored = (predict_proba(res.model, x_val, norm=res.norm).argmax(1) == y_val).mean()
    assert restored == pytest.approx(accs[res.best_epoch - 1], abs=1e-9)


def test_early_stopping_stops_after_patience_epochs_without_improvement(small):
    x, y = small
    cfg = replace(BASE, epochs=6, optimizer="sgd", lr=0.05, scheduler="multistep", milestones=[2], gamma=1000.0,
                  early_stopping_patience=1)  # fmt: skip
    res = fit(build_net("lenet5", seed=0), x, y, cfg)
    assert res.stopped_early == "patience"
    assert len(res.history) == res.best_epoch + 1


def _lenet_history(small, **cfg):
    x, y = small
    cfg = replace(BASE, optimizer="sgd", **cfg)
    return fit(build_net("lenet5", seed=0), x, y, cfg).history


def test_step_exponential_multistep_and_cosine_follow_their_closed_forms(small):
    lr = 0.04
    assert lrs(_lenet_history(small, epochs=4, lr=lr, scheduler="step", step_size=2, gamma=0.5)) == pytest.approx(
        [lr, lr, lr / 2, lr / 2])
    assert lrs(_lenet_history(small, epochs=3, lr=lr, scheduler="exponential", gamma=0.7)) == pytest.approx(
        [lr, lr * 0.7, lr * 0.49])
    assert lrs(_lenet_history(small, epochs=4, lr=lr, scheduler="multistep", milestones=[1, 3], gamma=0.1)) == pytest.approx(
        [lr, lr * 0.1, lr * 0.1, lr * 0.01])
    T, lo = 4, 0.001
    cosine = [lo + (lr - lo) * (1 + math.cos(math.pi * e / T)) / 2 for e in range(T)]
    assert lrs(_lenet_history(small, epochs=T, lr=lr, scheduler="cosine", min_lr=lo)) == pytest.approx(cosine)
    assert lrs(_lenet_history(small, epochs=2, lr=lr, scheduler="none")) == [lr, lr]


def test_onecycle_matches_torch_and_is_stepped_per_batch(small):
    cfg = replace(BASE, epochs=3, lr=0.02, optimizer="sgd", scheduler="onecycle", pct_start=0.3)
    history = _lenet_history(small, **{k: getattr(cfg, k) for k in ("epochs", "lr", "scheduler", "pct_start")})
    steps = math.ceil(480 / cfg.batch_size)  # 600 images minus the 20 % validation split
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, epochs=3, steps_per_epoch=steps, pct_start=0.3,
                                              cycle_momentum=False)  # fmt: skip
    expected = []
    for _ in range(3):
        expected.append(opt.param_groups[0]["lr"])
        for _ in range(steps):
            opt.step()
            ref.step()
    assert lrs(history) == pytest.approx(expected)
    assert lrs(history)[0] == pytest.approx(cfg.lr / 25)  # torch's default div_factor


def test_reduce_on_plateau_cuts_the_rate_when_validation_loss_stalls(small):
    # A learning rate this small cannot move the validation loss, so the plateau fires after epoch 2.
    hist = _lenet_history(small, epochs=4, lr=1e-6, scheduler="plateau", plateau_patience=0, gamma=0.5)
    assert lrs(hist) == pytest.approx([1e-6, 1e-6, 5e-7, 2.5e-7])


def test_same_seed_gives_identical_history_and_a_new_seed_does_not(small):
    x, y = small
    cfg = replace(BASE, epochs=2, seed=7)
    params = dict(TINY, dropout_fc=0.2)

    def run(seed):
        res = fit(build_net("cnn", seed=seed, **params), x, y, replace(cfg, seed=seed), augment="shift")
        return [{k: v for k, v in row.items() if k not in ("seconds", "elapsed")} for row in res.history]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_time_budget_stops_after_the_first_batch(small):
    x, y = small
    res = fit(build_net("cnn", seed=0, **TINY), x, y, replace(BASE, epochs=5, max_seconds=1e-6))
    assert res.stopped_early == "time"
    assert len(res.history) == 1
    assert res.n_train_images_seen == BASE.batch_size


def test_l1_penalty_shrinks_the_weights(small):
    x, y = small

    def l1_norm(l1):
        res = fit(build_net("cnn", seed=0, **TINY), x, y, replace(BASE, optimizer="sgd", lr=0.05, l1=l1))
        return sum(p.abs().sum().item() for p in res.model.parameters() if p.ndim > 1)

    assert l1_norm(0.05) < 0.5 * l1_norm(0.0)


def test_stratified_split_keeps_class_proportions():
    y = np.repeat(np.arange(4), [100, 50, 30, 20])
    tr, va = stratified_split(y, 0.1, seed=0)
    assert np.bincount(y[va]).tolist() == [10, 5, 3, 2]
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(y)


def test_random_shift_is_a_zero_filled_integer_translation():
    x = torch.rand(16, 1, 9, 9)
    out = random_shift(x, torch.Generator().manual_seed(0), max_shift=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(16):
        candidates = [padded[i, :, 2 - dy : 11 - dy, 2 - dx : 11 - dx] for dy in range(-2, 3) for dx in range(-2, 3)]
        assert any(torch.equal(out[i], c) for c in candidates)
    assert not torch.equal(out, x)  # 16 draws of 25 offsets: some image moved


def test_random_affine_keeps_shape_and_range_and_is_seeded():
    x = torch.rand(8, 1, 28, 28)
    a = random_affine(x, torch.Generator().manual_seed(1))
    b = random_affine(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


def test_classifier_works_with_clone_and_cross_val_score(small):
    x, y = small
    clf = CNNClassifier(net_params=TINY, epochs=3, batch_size=32, device="cpu", val_fraction=0.1)
    scores = cross_val_score(clone(clf), x.reshape(len(x), -1)[:300], y[:300], cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.4  # chance is 0.1


def test_classifier_keeps_arbitrary_labels_and_fitted_attributes(small):
    x, y = small
    labels = np.array(list("abcdefghij"))[y]
    clf = CNNClassifier(net="lenet5", epochs=1, batch_size=32, device="cpu").fit(x, labels)
    assert list(clf.classes_) == list("abcdefghij")
    assert set(clf.predict(x[:50])) <= set(clf.classes_)
    assert clf.predict_proba(x[:5]).shape == (5, 10)
    assert len(clf.history_) == 1 and clf.model_ is clf.train_result_.model


def test_cross_validate_returns_one_scored_result_per_fold(small):
    x, y = small
    folds = cross_validate("cnn", TINY, x[:400], y[:400], replace(BASE, epochs=1), k=2)
    assert [f["fold"] for f in folds] == [0, 1]
    assert sum(f["n_test"] for f in folds) == 400
    assert all(0.1 < f["accuracy"] <= 1.0 and f["loss"] > 0 for f in folds)


def test_bad_settings_raise_config_error(small):
    x, y = small
    with pytest.raises(ConfigError, match="optimizer"):
        fit(build_net("lenet5"), x, y, replace(BASE, optimizer="lbfgs"))
    with pytest.raises(ConfigError, match="scheduler"):
        fit(build_net("lenet5"), x, y, replace(BASE, scheduler="warm"))
    with pytest.raises(ConfigError, match="device"):
        resolve_device("tpu")
    assert resolve_device("cpu") == "cpu"


def test_classifier_from_recipe_carries_every_setting():
    net, params, tc = "cnn", {"n_blocks": 2}, TrainConfig(epochs=3, lr=0.005, augment="shift", label_smoothing=0.1, seed=4)
    clf = CNNClassifier.from_recipe((net, params, tc), device="cpu")
    assert clf.train_params == {"augment": "shift", "label_smoothing": 0.1}
    assert clf._config() == replace(tc, device="cpu")
    assert clone(clf).get_params() == clf.get_params()
