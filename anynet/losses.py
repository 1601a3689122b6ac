"""Losses: each is bound to a backend once (``bind``), then maps the network's raw outputs and
one-hot targets to ``(value, ctx)``: the mean loss (a 0-d array on the device, never read back
to the host here) and what ``backward(ctx)`` needs to give the gradient with respect to the
outputs. Nothing is stored on the loss, so one loss serves several threads.

- :class:`SoftmaxCrossEntropy`: softmax fused with cross-entropy; outputs are logits.
- :class:`MeanSquaredError`: mean of squared differences; outputs are used as they are.
- :class:`SoftmaxHalfSquaredError`: ``0.5 * sum((softmax(z) - t)^2)`` per sample, the loss of
  paper 000; outputs are logits.
"""

from __future__ import annotations

import math
from typing import Any

from .backend import Array, Backend, backend_of
from .layers.activations import softmax

__all__ = [
    "LOSSES",
    "Loss",
    "MeanSquaredError",
    "SoftmaxCrossEntropy",
    "SoftmaxHalfSquaredError",
    "get_loss",
    "one_hot",
]


def one_hot(labels: Array, num_classes: int, xp: Any = None, dtype: Any = None) -> Array:
    """``(n,)`` integer labels -> ``(n, num_classes)`` one-hot rows on the labels' device, by
    comparison with ``arange`` (the standard has no scatter); float32 unless ``dtype`` says.
    ``xp`` is the labels' namespace (looked up from them when not given)."""
    if xp is None:
        xp = backend_of(labels).xp
    classes = xp.arange(num_classes, dtype=labels.dtype, device=labels.device)
    hot = xp.reshape(labels, (-1, 1)) == xp.reshape(classes, (1, -1))
    return xp.astype(hot, xp.float32 if dtype is None else dtype)


class Loss:
    """Base class: ``forward(outputs, targets)`` -> ``(mean loss, ctx)``;
    ``backward(ctx)`` -> d loss / d outputs."""

    name = "loss"

    def __init__(self) -> None:
        self.xp: Any = None

    def bind(self, backend: Backend) -> Loss:
        """Run on ``backend`` from now on; returns the loss."""
        self.xp = backend.xp
        return self

    def forward(self, outputs: Array, targets: Array) -> tuple[Array, Any]:
        raise NotImplementedError

    def backward(self, ctx: Any) -> Array:
        raise NotImplementedError

    def probabilities(self, outputs: Array) -> Array:
        """Class scores from raw outputs (softmax for logit losses)."""
        return softmax(outputs, self.xp)

    def per_sample(self, outputs: Array, targets: Array) -> Array | None:
        """Each sample's loss, shape ``(n,)`` (for class weighting); None where not defined."""
        return None

    def get_config(self) -> dict:
        """The loss's options, saved with the model; empty when all are the defaults."""
        return {}

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({options})"


class SoftmaxCrossEntropy(Loss):
    """Mean over the batch of ``-log softmax(z)[label]``, computed with the log-sum-exp shift.

    The gradient is ``(softmax(z) - onehot) / batch``. With ``label_smoothing`` eps > 0 the
    targets become ``(1 - eps) * onehot + eps / classes`` (Szegedy et al. 2016, as in PyTorch's
    ``cross_entropy(label_smoothing=eps)``), and so does ``onehot`` in the gradient.
    """

    name = "cross_entropy"

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        eps = float(label_smoothing) if isinstance(label_smoothing, (int, float)) else math.nan
        if not 0.0 <= eps < 1.0:  # also rejects NaN and non-numbers
            raise ValueError(f"label_smoothing should be a number in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = eps

    def get_config(self) -> dict:
        return {"label_smoothing": self.label_smoothing} if self.label_smoothing else {}

    def smooth(self, targets: Array) -> Array:
        """The targets the loss trains towards: one-hot rows, label-smoothed when eps > 0."""
        eps = self.label_smoothing
        return targets * (1.0 - eps) + eps / targets.shape[1] if eps else targets

    def forward(self, logits, targets):
        xp = self.xp
        targets = self.smooth(targets)
        shifted = logits - xp.max(logits, axis=1, keepdims=True)
        exp = xp.exp(shifted)
        total = xp.sum(exp, axis=1, keepdims=True)
        exp /= total  # in place: exp becomes the probabilities
        # -sum log p_true = sum(log total) - sum(t * shifted) (t sums to 1 per row)
        shifted *= targets
        value = (xp.sum(xp.log(total)) - xp.sum(shifted)) / logits.shape[0]
        return value, (exp, targets)

    def per_sample(self, logits, targets):
        xp = self.xp
        shifted = logits - xp.max(logits, axis=1, keepdims=True)
        return xp.log(xp.sum(xp.exp(shifted), axis=1)) - xp.sum(self.smooth(targets) * shifted, axis=1)

    def backward(self, ctx):
        p, t = ctx
        g = p - t
        g *= 1.0 / g.shape[0]
        return g


class MeanSquaredError(Loss):
    """Mean over all elements of ``(y - t)^2`` (as in paper 004); outputs are used as scores."""

    name = "mse"

    def forward(self, outputs, targets):
        diff = outputs - targets
        return _sum_of_squares(diff, self.xp) / (diff.shape[0] * diff.shape[1]), diff

    def per_sample(self, outputs, targets):
        return self.xp.mean((outputs - targets) ** 2, axis=1)

    def backward(self, ctx):
        return ctx * (2.0 / (ctx.shape[0] * ctx.shape[1]))

    def probabilities(self, outputs):
        return outputs


class SoftmaxHalfSquaredError(Loss):
    """Paper 000's loss: ``0.5 * sum_k (softmax(z)_k - t_k)^2``, averaged over the batch.

    Its gradient goes through the softmax Jacobian:
    ``dz = p * (g - sum(g * p))`` with ``g = (p - t) / batch``.
    """

    name = "half_squared_error"

    def forward(self, logits, targets):
        p = softmax(logits, self.xp)
        diff = p - targets
        return 0.5 * _sum_of_squares(diff, self.xp) / logits.shape[0], (p, diff)

    def per_sample(self, logits, targets):
        return 0.5 * self.xp.sum((self.probabilities(logits) - targets) ** 2, axis=1)

    def backward(self, ctx):
        p, diff = ctx
        g = diff * (1.0 / p.shape[0])
        gp = g * p
        g -= self.xp.sum(gp, axis=1, keepdims=True)  # in place on our own temporaries
        g *= p
        return g


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls for cls in (SoftmaxCrossEntropy, MeanSquaredError, SoftmaxHalfSquaredError)
}


def get_loss(loss: Loss | str, options: dict | None = None) -> Loss:
    """A Loss from an instance, or from a name (``"cross_entropy"``, ``"mse"``,
    ``"half_squared_error"``) and the options its ``get_config`` gave."""
    if isinstance(loss, Loss):
        return loss
    try:
        cls = LOSSES[loss]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)}") from None
    try:
        return cls(**(options or {}))
    except TypeError:
        raise ValueError(f"loss {loss!r} takes no options {sorted(options or {})}") from None


def _sum_of_squares(a: Array, xp: Any) -> Array:
    """``sum(a * a)`` as one dot product of the flattened array (no temporary the size of a)."""
    flat = xp.reshape(a, (-1,))
    return xp.vecdot(flat, flat)
