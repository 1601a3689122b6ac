"""Two-dimensional convolution, NCHW, forward and backward by hand.

Forward (one matmul for the whole batch after im2col)::

    cols = im2col(pad(x))                 (C*kh*kw, N*Ho*Wo): a column per output position
    y    = W2 @ cols + b                  W2 = W reshaped (F, C*kh*kw)  ->  (F, N*Ho*Wo) -> NCHW

Backward, with ``g`` the output gradient laid out (F, N*Ho*Wo) like ``y``::

    dW = g @ cols^T                       (F, C*kh*kw), reshaped like W
    db = sum of g over its columns        (F,)
    dx = unpad(col2im(W2^T @ g))          col2im sums each column back onto the pixels it read

The arithmetic is the backend's (``conv2d_forward`` and ``conv2d_backward``, made of ``pad2d``,
``im2col`` and ``col2im``: the generic versions use ``xp.take`` with an index array and a sum of
shifted slices; NumPy makes the columns of a stride-1 "same" convolution by shifted copies of
each channel, into reused buffers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import Array
from .base import Grads, Layer

__all__ = ["MAX_COLUMNS", "Conv2D"]

#: im2col buffers above this many elements are made a slice of the batch at a time (inference;
#: a training batch keeps its columns for the backward pass; the backend decides the slices:
#: ``Backend.batch_slices``)
MAX_COLUMNS = 1 << 24


def _padding(padding: str | int, kernel: int) -> int:
    if padding == "valid":
        return 0
    if padding == "same":
        if kernel % 2 == 0:
            raise ValueError(f"padding='same' needs an odd kernel size, got {kernel}")
        return kernel // 2
    if isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        return padding
    raise ValueError(f"padding must be 'valid', 'same' or a number of pixels >= 0, got {padding!r}")


class Conv2D(Layer):
    """``filters`` learned ``kernel_size`` x ``kernel_size`` filters over inputs (C, H, W).

    Args:
        filters: output channels.
        kernel_size: the filters' height and width.
        stride: step between receptive fields.
        padding: ``"valid"`` (none), ``"same"`` (``kernel_size // 2`` zeros: the output keeps the
            input's size at stride 1; odd kernels only) or a number of zero pixels on each side.
        use_bias: add a bias per filter.
        init: ``"he"`` (normal, std sqrt(2/fan_in)) or ``"glorot"`` (uniform); fan_in = C*k*k.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: str | int = "valid",
        use_bias: bool = True,
        init: str = "he",
    ):
        super().__init__()
        if int(filters) < 1 or int(kernel_size) < 1 or int(stride) < 1:
            raise ValueError(
                f"Conv2D needs filters, kernel_size and stride >= 1, got {filters}, {kernel_size}, {stride}"
            )
        if init not in ("he", "glorot"):
            raise ValueError(f"unknown init {init!r}: use 'he' or 'glorot'")
        self.filters, self.kernel_size, self.stride = int(filters), int(kernel_size), int(stride)
        self.padding, self.use_bias, self.init = padding, bool(use_bias), init
        self.pad = _padding(padding, self.kernel_size)

    def get_config(self) -> dict:
        return {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "use_bias": self.use_bias,
            "init": self.init,
        }

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"Conv2D expects inputs (channels, height, width), got per-sample shape "
                f"{input_shape}; images are (1, 28, 28)"
            )
        _, h, w = input_shape
        k, s, p = self.kernel_size, self.stride, self.pad
        if h + 2 * p < k or w + 2 * p < k:
            raise ValueError(f"a {k}x{k} kernel does not fit inputs of {h}x{w} with padding {p}")
        return (self.filters, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)

    decayed = frozenset({"W"})

    def param_shapes(self, input_shape):
        k, f = self.kernel_size, self.filters
        weights = {"W": (f, input_shape[0], k, k)}
        return {**weights, "b": (f,)} if self.use_bias else weights

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        assert self.input_shape is not None
        c, k, f = self.input_shape[0], self.kernel_size, self.filters
        fan_in, fan_out = c * k * k, f * k * k
        if self.init == "he":
            w = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(f, c, k, k))
        else:
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=(f, c, k, k))
        return {"W": w, "b": np.zeros(f)} if self.use_bias else {"W": w}

    def forward(self, x: Array, training: bool = False) -> tuple[Array, Any]:
        assert self.backend is not None
        per_sample = math.prod(self.output_shape(tuple(x.shape[1:]))[1:]) * x.shape[1] * self.kernel_size**2
        parts = None if training else self.backend.batch_slices(x.shape[0], per_sample, MAX_COLUMNS)
        if parts is None:
            return self._forward(x, training)
        return self.xp.concat([self._forward(x[part, ...], False)[0] for part in parts], axis=0), None

    def _forward(self, x: Array, training: bool) -> tuple[Array, Any]:
        assert self.backend is not None
        bias = self.params["b"] if self.use_bias else None
        return self.backend.conv2d_forward(x, self.params["W"], bias, self.stride, self.pad, training)

    def backward(self, ctx: Any, grad: Array, need_input_grad: bool = True) -> tuple[Array | None, Grads]:
        assert self.backend is not None
        dx, dw, db = self.backend.conv2d_backward(ctx, grad, self.params["W"], self.use_bias, need_input_grad)
        return dx, ({"W": dw, "b": db} if self.use_bias else {"W": dw})
