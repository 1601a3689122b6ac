"""Element-wise activations and the row-wise softmax.

Each keeps, for its backward pass, either a 0/1 (or slope) array of the input's dtype, so the
backward pass is one multiply (``where`` with a data-dependent mask is ~7x slower on a CPU), or
its own output where the derivative is a function of it (sigmoid, tanh, softmax).
"""

from __future__ import annotations

from typing import Any

from ..backend import Array
from .base import Grads, Layer

__all__ = ["LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Tanh", "softmax"]


def softmax(x: Array, xp: Any) -> Array:
    """Row-wise softmax of a 2-D array, shifted by the row maximum for stability."""
    z = xp.exp(x - xp.max(x, axis=1, keepdims=True))
    z /= xp.sum(z, axis=1, keepdims=True)  # in place on our own temporary
    return z


class _Elementwise(Layer):
    """An activation whose backward pass multiplies the gradient by its ``ctx``."""

    def backward(self, ctx: Array, grad: Array, need_input_grad: bool = True) -> tuple[Array, Grads]:
        return grad * ctx, {}


class ReLU(_Elementwise):
    """``max(x, 0)``, computed as ``x * (x > 0)``: the 0/1 array is also the derivative (the
    backend's ``relu_forward`` and ``relu_backward``; NumPy's write into reused buffers)."""

    def forward(self, x, training=False):
        assert self.backend is not None
        return self.backend.relu_forward(x, training)

    def backward(self, ctx, grad, need_input_grad=True):
        assert self.backend is not None
        return self.backend.relu_backward(ctx, grad), {}


class LeakyReLU(_Elementwise):
    """``x`` for positive inputs, ``alpha * x`` otherwise."""

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        self.alpha = float(alpha)

    def get_config(self):
        return {"alpha": self.alpha}

    def forward(self, x, training=False):
        # slope: 1 for positive inputs, alpha otherwise; y = x * slope, dy/dx = slope
        slope = self.xp.astype(x > 0.0, x.dtype)
        slope *= 1.0 - self.alpha
        slope += self.alpha
        return x * slope, (slope if training else None)


class Sigmoid(Layer):
    """``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``; ``dy/dx = y (1 - y)``."""

    def forward(self, x, training=False):
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        y = xp.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
        return y, (y if training else None)

    def backward(self, ctx, grad, need_input_grad=True):
        return grad * ctx * (1.0 - ctx), {}


class Tanh(Layer):
    """Hyperbolic tangent; ``dy/dx = 1 - y^2``."""

    def forward(self, x, training=False):
        y = self.xp.tanh(x)
        return y, (y if training else None)

    def backward(self, ctx, grad, need_input_grad=True):
        return grad * (1.0 - ctx * ctx), {}


class Softmax(Layer):
    """Row-wise softmax; ``dx = y * (g - sum(g * y))``. For classification, prefer a final Dense
    layer with the fused :class:`~anynet.losses.SoftmaxCrossEntropy`, faster and more stable."""

    def forward(self, x, training=False):
        y = softmax(x, self.xp)
        return y, (y if training else None)

    def backward(self, ctx, grad, need_input_grad=True):
        return ctx * (grad - self.xp.sum(grad * ctx, axis=1, keepdims=True)), {}
