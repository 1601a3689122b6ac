"""Layers that only change the shape of their input."""

from __future__ import annotations

import math

from .base import Layer

__all__ = ["Flatten"]


class Flatten(Layer):
    """Reshape ``(batch, d1, d2, ...)`` to ``(batch, d1 * d2 * ...)``."""

    def output_shape(self, input_shape):
        return (int(math.prod(input_shape)),)

    def forward(self, x, training=False):
        # the batch size may be symbolic (an ONNX trace): only the per-sample size is needed
        return (self.xp.reshape(x, (-1, math.prod(x.shape[1:]))) if x.ndim != 2 else x), None

    def backward(self, ctx, grad, need_input_grad=True):
        return self.xp.reshape(grad, (-1, *self.input_shape)), {}
