"""Pooling over non-overlapping windows, NCHW, and global average pooling.

The windows are made by a reshape: (N, C, H, W) -> (N, C, H/p, p, W/p, p) (rows and columns
that do not fill a window are dropped, as with ``floor`` in other libraries). Max pooling
routes the gradient to one input per window: the first maximum in row-major order, so ties
are broken the same way on every backend.
"""

from __future__ import annotations

from typing import Any

from ..backend import Array
from .base import Grads, Layer

__all__ = ["AveragePool2D", "GlobalAveragePooling2D", "MaxPool2D"]


class _Pool2D(Layer):
    """Shared shape handling of the window poolings."""

    def __init__(self, pool_size: int = 2):
        super().__init__()
        if int(pool_size) < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        self.pool_size = int(pool_size)

    def get_config(self) -> dict:
        return {"pool_size": self.pool_size}

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects inputs (channels, height, width), "
                f"got per-sample shape {input_shape}"
            )
        c, h, w = input_shape
        p = self.pool_size
        if h < p or w < p:
            raise ValueError(f"a {p}x{p} pool does not fit inputs of {h}x{w}")
        return (c, h // p, w // p)

    def _windows(self, x: Array) -> Array:
        """(N, C, Ho, p, Wo, p): the windows of ``x``, cropped to whole windows."""
        assert self.backend is not None
        return self.backend.pool_windows(x, self.pool_size)

    def _uncrop(self, g: Array, shape: tuple) -> Array:
        """The gradient of the cropped input, put back in an array of the input's ``shape``."""
        assert self.backend is not None
        return self.backend.uncrop(g, shape)


class MaxPool2D(_Pool2D):
    """The maximum of each ``pool_size`` x ``pool_size`` window (stride = pool size).

    Backward: each window's gradient goes to its first maximum in row-major order (ties are
    common after a ReLU; routing to every tied input would multiply the gradient). The
    arithmetic is the backend's (``max_pool_forward`` and ``max_pool_backward``).
    """

    def forward(self, x: Array, training: bool = False) -> tuple[Array, Any]:
        assert self.backend is not None
        return self.backend.max_pool_forward(x, self.pool_size, training)

    def backward(self, ctx: Any, grad: Array, need_input_grad: bool = True) -> tuple[Array, Grads]:
        assert self.backend is not None
        return self.backend.max_pool_backward(ctx, grad), {}


class AveragePool2D(_Pool2D):
    """The mean of each ``pool_size`` x ``pool_size`` window (stride = pool size)."""

    def forward(self, x: Array, training: bool = False) -> tuple[Array, Any]:
        y = self.xp.mean(self._windows(x), axis=(3, 5))
        return y, (tuple(x.shape) if training else None)

    def backward(self, ctx: Any, grad: Array, need_input_grad: bool = True) -> tuple[Array, Grads]:
        xp, p = self.xp, self.pool_size
        n, c, ho, wo = grad.shape
        share = grad[:, :, :, None, :, None] * (1.0 / (p * p))
        spread = xp.broadcast_to(share, (n, c, ho, p, wo, p))
        return self._uncrop(xp.reshape(spread, (n, c, ho * p, wo * p)), ctx), {}


class GlobalAveragePooling2D(Layer):
    """The mean of each channel over all positions: (C, H, W) -> (C,)."""

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"GlobalAveragePooling2D expects inputs (channels, height, width), "
                f"got per-sample shape {input_shape}"
            )
        return (input_shape[0],)

    def forward(self, x: Array, training: bool = False) -> tuple[Array, Any]:
        return self.xp.mean(x, axis=(2, 3)), (tuple(x.shape) if training else None)

    def backward(self, ctx: Any, grad: Array, need_input_grad: bool = True) -> tuple[Array, Grads]:
        n, c, h, w = ctx
        share = grad[:, :, None, None] * (1.0 / (h * w))
        return self.xp.broadcast_to(share, (n, c, h, w)), {}
