"""Losses: each takes the network's raw outputs and one-hot targets, returns a scalar
(a 0-d array on the device, never read back to the host here) and the gradient with respect to
the outputs.

- :class:`SoftmaxCrossEntropy`: softmax fused with cross-entropy; outputs are logits.
- :class:`MeanSquaredError`: mean of squared differences; outputs are used as they are.
- :class:`SoftmaxHalfSquaredError`: ``0.5 * sum((softmax(z) - t)^2)`` per sample, the loss of
  paper 000; outputs are logits.
"""

from __future__ import annotations

from .layers import softmax

__all__ = [
    "Loss",
    "SoftmaxCrossEntropy",
    "MeanSquaredError",
    "SoftmaxHalfSquaredError",
    "one_hot",
    "get_loss",
    "LOSSES",
]


def one_hot(labels, num_classes: int, xp, dtype):
    """``(n,)`` integer labels -> ``(n, num_classes)`` one-hot rows, by comparison with
    ``arange`` (the standard has no scatter)."""
    classes = xp.arange(num_classes, dtype=labels.dtype, device=labels.device)
    return xp.astype(labels[:, None] == classes[None, :], dtype)


class Loss:
    """Base class. ``forward(outputs, targets)`` -> mean loss; ``backward()`` -> d loss / d outputs."""

    name = "loss"
    xp = None  # set once by the Network that owns the loss; looked up from the array otherwise

    def forward(self, outputs, targets):
        raise NotImplementedError

    def backward(self):
        raise NotImplementedError

    def probabilities(self, outputs, xp):
        """Class scores from raw outputs (softmax for logit losses)."""
        return softmax(outputs, xp)

    def __repr__(self):
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(Loss):
    """Mean over the batch of ``-log softmax(z)[label]``, computed with the log-sum-exp shift.

    The gradient is ``(softmax(z) - onehot) / batch``.
    """

    name = "cross_entropy"

    def forward(self, logits, targets):
        xp = self._xp = self.xp or _namespace(logits)
        shifted = logits - xp.max(logits, axis=1, keepdims=True)
        exp = xp.exp(shifted)
        total = xp.sum(exp, axis=1, keepdims=True)
        exp /= total  # in place: exp becomes the probabilities
        self._p = exp
        self._t = targets
        # -sum log p_true = sum(log total) - sum(t * shifted) (t sums to 1 per row)
        shifted *= targets
        return (xp.sum(xp.log(total)) - xp.sum(shifted)) / logits.shape[0]

    def backward(self):
        g = self._p - self._t
        g *= 1.0 / g.shape[0]
        return g


class MeanSquaredError(Loss):
    """Mean over all elements of ``(y - t)^2`` (as in paper 004); outputs are used as scores."""

    name = "mse"

    def forward(self, outputs, targets):
        xp = self.xp or _namespace(outputs)
        self._diff = outputs - targets
        return _sum_of_squares(self._diff, xp) / (self._diff.shape[0] * self._diff.shape[1])

    def backward(self):
        d = self._diff
        return d * (2.0 / (d.shape[0] * d.shape[1]))

    def probabilities(self, outputs, xp):
        return outputs


class SoftmaxHalfSquaredError(Loss):
    """Paper 000's loss: ``0.5 * sum_k (softmax(z)_k - t_k)^2``, averaged over the batch.

    Its gradient goes through the softmax Jacobian:
    ``dz = p * (g - sum(g * p))`` with ``g = (p - t) / batch``.
    """

    name = "half_squared_error"

    def forward(self, logits, targets):
        xp = self._xp = self.xp or _namespace(logits)
        p = softmax(logits, xp)
        self._p, self._diff = p, p - targets
        return 0.5 * _sum_of_squares(self._diff, xp) / logits.shape[0]

    def backward(self):
        xp, p = self._xp, self._p
        g = self._diff * (1.0 / p.shape[0])
        gp = g * p
        g -= xp.sum(gp, axis=1, keepdims=True)  # in place on our own temporaries
        g *= p
        return g


LOSSES = {cls.name: cls for cls in (SoftmaxCrossEntropy, MeanSquaredError, SoftmaxHalfSquaredError)}


def get_loss(loss) -> Loss:
    """A Loss from an instance or a name (``"cross_entropy"``, ``"mse"``, ``"half_squared_error"``)."""
    if isinstance(loss, Loss):
        return loss
    try:
        return LOSSES[loss]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)}") from None


def _sum_of_squares(a, xp):
    """``sum(a * a)`` as one dot product of the flattened array (no temporary the size of a)."""
    flat = xp.reshape(a, (-1,))
    return xp.vecdot(flat, flat)


def _namespace(a):
    from array_api_compat import array_namespace

    return array_namespace(a)
