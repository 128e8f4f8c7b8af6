"""The NumPy MLP against PyTorch autograd (float64), and its accuracy on MNIST."""

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from digitlab.data import load_dataset, stratified_subset
from digitlab.exceptions import ModelError
from digitlab.models.numpy_mlp import (
    MLP,
    Linear,
    NumpyMLPClassifier,
    ReLU,
    SGDMomentum,
    SoftmaxCrossEntropy,
    learning_rate,
)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS/OpenMP thread: on a shared 2-core machine more threads spin and run several times slower."""
    with threadpool_limits(limits=1):
        yield


def _t(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_and_relu_gradients_match_autograd(seed):
    rng = np.random.default_rng(seed)
    x, upstream = rng.standard_normal((7, 5)), rng.standard_normal((7, 4))
    lin = Linear(5, 4, rng, dtype=np.float64)
    lin.b[:] = rng.standard_normal(4)
    dx = lin.backward(upstream) if lin.forward(x) is not None else None
    xt, wt, bt = _t(x), _t(lin.W), _t(lin.b)
    (xt @ wt + bt).backward(torch.tensor(upstream))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lin.dW, wt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lin.db, bt.grad.numpy(), rtol=1e-12, atol=1e-12)

    relu, xt = ReLU(), _t(x)
    np.testing.assert_allclose(relu.forward(x), torch.relu(xt).detach().numpy())
    torch.relu(xt).backward(torch.tensor(upstream[:, :1].repeat(5, axis=1)))
    np.testing.assert_allclose(relu.backward(upstream[:, :1].repeat(5, axis=1)), xt.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_softmax_cross_entropy_matches_autograd(seed):
    rng = np.random.default_rng(seed)
    logits, y = rng.standard_normal((9, 6)) * 5, rng.integers(0, 6, 9)
    head = SoftmaxCrossEntropy()
    loss = head.forward(logits, y)
    lt = _t(logits)
    ref = torch.nn.functional.cross_entropy(lt, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(head.backward(), lt.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 3])
def test_whole_network_gradients_match_autograd(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((16, 12)), rng.integers(0, 5, 16)
    net = MLP([12, 10, 8, 5], rng, dtype=np.float64)
    loss = net.loss_and_backward(x, y)
    lins = [layer for layer in net.layers if isinstance(layer, Linear)]
    ws = [(_t(lin.W), _t(lin.b)) for lin in lins]
    h = xt = _t(x)
    for i, (w, b) in enumerate(ws):
        h = h @ w + b
        h = torch.relu(h) if i < len(ws) - 1 else h
    ref = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(net.input_grad, xt.grad.numpy(), rtol=1e-9, atol=1e-13)
    for lin, (w, b) in zip(lins, ws):
        np.testing.assert_allclose(lin.dW, w.grad.numpy(), rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(lin.db, b.grad.numpy(), rtol=1e-9, atol=1e-13)


def test_sgd_momentum_weight_decay_matches_torch():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 6)), rng.integers(0, 3, 20)
    net = MLP([6, 5, 3], rng, dtype=np.float64)
    lins = [layer for layer in net.layers if isinstance(layer, Linear)]
    tw = [torch.nn.Parameter(torch.tensor(lin.W.copy())) for lin in lins]
    tb = [torch.nn.Parameter(torch.tensor(lin.b.copy())) for lin in lins]
    # our decay applies to weight matrices only: the torch reference puts biases in a no-decay group
    topt = torch.optim.SGD(
        [{"params": tw, "weight_decay": 0.01}, {"params": tb, "weight_decay": 0.0}], lr=0.1, momentum=0.9
    )
    opt = SGDMomentum(momentum=0.9, weight_decay=0.01)
    for _ in range(4):
        net.loss_and_backward(x, y)
        opt.step(net.params(), lr=0.1)
        topt.zero_grad()
        h = torch.relu(torch.tensor(x) @ tw[0] + tb[0]) @ tw[1] + tb[1]
        torch.nn.functional.cross_entropy(h, torch.tensor(y)).backward()
        topt.step()
    for lin, w, b in zip(lins, tw, tb):
        np.testing.assert_allclose(lin.W, w.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(lin.b, b.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_learning_rate_schedules():
    assert [learning_rate(0.1, e, "step", 0.5, 2) for e in range(5)] == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025]
    )
    assert learning_rate(0.1, 3, "exp", 0.9, 1) == pytest.approx(0.1 * 0.9**3)
    assert learning_rate(0.1, 7, "none", 0.5, 1) == 0.1
    with pytest.raises(ModelError, match="cosine"):
        NumpyMLPClassifier(lr_decay="cosine", epochs=1).fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_mlp_learns_mnist_and_is_seeded():
    ds = load_dataset("mnist")
    tr = stratified_subset(ds.y_train, total=10000, seed=0)
    te = stratified_subset(ds.y_test, total=2000, seed=0)
    x, xt = ds.x_train[tr].reshape(len(tr), -1) / 255.0, ds.x_test[te].reshape(len(te), -1) / 255.0
    clf = NumpyMLPClassifier(hidden=(256,), epochs=8, lr=0.1, batch_size=64, random_state=0).fit(
        x, ds.y_train[tr]
    )
    assert clf.score(xt, ds.y_test[te]) > 0.95
    assert clf.loss_curve_[-1] < 0.2 * clf.loss_curve_[0]
    proba = clf.predict_proba(xt[:50])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    again = NumpyMLPClassifier(hidden=(128,), epochs=2, random_state=0).fit(x[:500], ds.y_train[tr][:500])
    twice = NumpyMLPClassifier(hidden=(128,), epochs=2, random_state=0).fit(x[:500], ds.y_train[tr][:500])
    np.testing.assert_array_equal(again.predict_proba(xt), twice.predict_proba(xt))
