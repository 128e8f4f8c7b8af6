"""A multi-layer perceptron written from scratch in NumPy: explicit forward and backward passes.

Layers (:class:`Linear`, :class:`ReLU`, :class:`SoftmaxCrossEntropy`) each cache what their
backward pass needs and return the gradient with respect to their input; :class:`MLP` chains
them. :class:`SGDMomentum` updates the parameters exactly as ``torch.optim.SGD`` does (momentum
buffer ``v = mu * v + g``, step ``w -= lr * v``, L2 decay added to the gradient of the weight
matrices only). :class:`NumpyMLPClassifier` wraps it all as a scikit-learn estimator.

The tests check every layer's gradients and the optimiser's steps against PyTorch autograd.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from digitlab.exceptions import ModelError

# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------


class Linear:
    """Affine layer ``y = x @ W + b`` with He-normal initialisation (std ``sqrt(2 / fan_in)``, for ReLU)."""

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float32):
        self.W = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype)
        self.b = np.zeros(n_out, dtype=dtype)
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return x @ self.W + self.b

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Store dL/dW, dL/db from ``grad`` = dL/dy; return dL/dx."""
        self.dW = self._x.T @ grad
        self.db = grad.sum(axis=0)
        return grad @ self.W.T

    def params(self) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """(parameter, gradient, decays) triples: weight decay applies to W only, not to b."""
        return [(self.W, self.dW, True), (self.b, self.db, False)]

    def clear(self) -> None:
        """Drop the cached input and gradients (memory, and a pickled model holds only W and b)."""
        self._x = self.dW = self.db = None


class ReLU:
    """Element-wise ``max(x, 0)``; its gradient passes where the input was positive."""

    def __init__(self):
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return x * self._mask

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self._mask

    def params(self) -> list:
        return []

    def clear(self) -> None:
        self._mask = None


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so ``exp`` cannot overflow."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels.

    Fusing softmax and the loss gives the simple, stable gradient ``(p - onehot(y)) / n``.
    """

    def __init__(self):
        self._p: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        z = logits - logits.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        self._p, self._y = np.exp(log_p), y
        return float(-log_p[np.arange(len(y)), y].mean())

    def backward(self) -> np.ndarray:
        grad = self._p.copy()
        grad[np.arange(len(self._y)), self._y] -= 1.0
        return grad / len(self._y)


# ---------------------------------------------------------------------------------------------
# Network and optimiser
# ---------------------------------------------------------------------------------------------


class MLP:
    """Linear -> ReLU -> ... -> Linear (logits), with a softmax cross-entropy head."""

    def __init__(self, sizes: list[int], rng: np.random.Generator, dtype=np.float32):
        self.layers: list = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.layers.append(Linear(n_in, n_out, rng, dtype))
            if i < len(sizes) - 2:
                self.layers.append(ReLU())
        self.head = SoftmaxCrossEntropy()

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits of a batch."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def loss_and_backward(self, x: np.ndarray, y: np.ndarray) -> float:
        """Forward pass, loss, and backward pass filling every layer's gradients; returns the loss."""
        loss = self.head.forward(self.forward(x), y)
        grad = self.head.backward()
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        self.input_grad = grad  # dL/dx, for gradient checks
        return loss

    def params(self) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        return [p for layer in self.layers for p in layer.params()]

    def clear(self) -> None:
        """Drop every cache of the last forward/backward pass."""
        for layer in self.layers:
            layer.clear()
        self.head = SoftmaxCrossEntropy()
        self.input_grad = None


class SGDMomentum:
    """SGD with momentum and L2 weight decay, ``torch.optim.SGD`` semantics (dampening 0)."""

    def __init__(self, momentum: float = 0.9, weight_decay: float = 0.0):
        self.momentum = momentum
        self.weight_decay = weight_decay
        self._v: dict[int, np.ndarray] = {}

    def step(self, params: list[tuple[np.ndarray, np.ndarray, bool]], lr: float) -> None:
        """Update parameters in place from their current gradients."""
        for i, (w, g, decays) in enumerate(params):
            if decays and self.weight_decay:
                g = g + self.weight_decay * w
            if self.momentum:
                v = self._v.get(i)
                v = g.copy() if v is None else self.momentum * v + g  # torch: the first step stores g
                self._v[i] = v
                g = v
            w -= (lr * g).astype(w.dtype, copy=False)


def learning_rate(lr: float, epoch: int, schedule: str, decay_rate: float, decay_step: int) -> float:
    """Learning rate of ``epoch`` (0-based): ``none``, ``step`` (x decay_rate every decay_step epochs) or ``exp``."""
    if schedule == "none":
        return lr
    if schedule == "step":
        return lr * decay_rate ** (epoch // decay_step)
    if schedule == "exp":
        return lr * decay_rate**epoch
    raise ModelError(f"lr_decay {schedule!r}: unknown schedule; use 'step', 'exp' or 'none'")


# ---------------------------------------------------------------------------------------------
# scikit-learn estimator
# ---------------------------------------------------------------------------------------------


class NumpyMLPClassifier(ClassifierMixin, BaseEstimator):
    """From-scratch NumPy MLP classifier with scikit-learn conventions.

    Parameters
    ----------
    hidden : widths of the hidden layers.
    lr : initial learning rate.
    momentum : SGD momentum coefficient.
    weight_decay : L2 coefficient on the weight matrices.
    lr_decay : "step" | "exp" | "none".
    decay_rate : factor per decay (per ``decay_step`` epochs for "step", per epoch for "exp").
    decay_step : epochs between decays of the "step" schedule.
    epochs : passes over the training data.
    batch_size : samples per update.
    random_state : seeds initialisation and shuffling.

    Input features are used as given (scale them first; the zoo's pipeline divides pixels by 255).
    Fitted attributes: ``classes_``, ``net_``, ``loss_curve_`` (mean training loss per epoch),
    ``lr_curve_``.
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (256, 128),
        lr: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        lr_decay: str = "step",
        decay_rate: float = 0.5,
        decay_step: int = 5,
        epochs: int = 20,
        batch_size: int = 128,
        random_state: int = 0,
    ):
        self.hidden = hidden
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_decay = lr_decay
        self.decay_rate = decay_rate
        self.decay_step = decay_step
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, X, y) -> NumpyMLPClassifier:
        """Train with mini-batch SGD; ``X`` (n, d) numeric, ``y`` (n,) labels of any hashable type."""
        X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
        self.classes_, y_idx = np.unique(np.asarray(y), return_inverse=True)
        learning_rate(
            self.lr, 0, self.lr_decay, self.decay_rate, self.decay_step
        )  # validate the schedule early
        rng = np.random.default_rng(self.random_state)
        self.net_ = MLP([X.shape[1], *self.hidden, len(self.classes_)], rng)
        opt = SGDMomentum(self.momentum, self.weight_decay)
        self.loss_curve_, self.lr_curve_ = [], []
        for epoch in range(self.epochs):
            lr = learning_rate(self.lr, epoch, self.lr_decay, self.decay_rate, self.decay_step)
            order = rng.permutation(len(X))
            total = 0.0
            for start in range(0, len(X), self.batch_size):
                idx = order[start : start + self.batch_size]
                total += self.net_.loss_and_backward(X[idx], y_idx[idx]) * len(idx)
                opt.step(self.net_.params(), lr)
            self.loss_curve_.append(total / len(X))
            self.lr_curve_.append(lr)
        self.net_.clear()
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Softmax class probabilities ``(n, n_classes)`` in the order of ``classes_``."""
        check_is_fitted(self, "net_")
        X = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
        proba = np.concatenate(
            [softmax(self.net_.forward(X[i : i + 4096]).astype(np.float64)) for i in range(0, len(X), 4096)]
        )
        self.net_.clear()
        return proba

    def predict(self, X) -> np.ndarray:
        """Most probable class per row."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
