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
        n, c, h, w = x.shape
        p = self.pool_size
        ho, wo = h // p, w // p
        if (ho * p, wo * p) != (h, w):
            x = x[:, :, : ho * p, : wo * p]
        return self.xp.reshape(x, (n, c, ho, p, wo, p))

    def _uncrop(self, g: Array, shape: tuple) -> Array:
        """The gradient of the cropped input, put back in an array of the input's ``shape``."""
        _n, _c, _h, _w = shape
        if tuple(g.shape) == tuple(shape):
            return g
        out = self.xp.zeros(shape, dtype=g.dtype, device=self.backend.device)  # type: ignore[union-attr]
        out[:, :, : g.shape[2], : g.shape[3]] = g
        return out


class MaxPool2D(_Pool2D):
    """The maximum of each ``pool_size`` x ``pool_size`` window (stride = pool size).

    Backward: each window's gradient goes to its first maximum in row-major order, found by
    comparing the window's ``p*p`` positions with the maximum one after another (ties are
    common after a ReLU; routing to every tied input would multiply the gradient).
    """

    def forward(self, x: Array, training: bool = False) -> tuple[Array, Any]:
        # the maximum of the p*p strided slices, one elementwise maximum at a time: NumPy's
        # max over the two inner window axes is ~15x slower than this
        win = self._windows(x)
        p = self.pool_size
        y = win[:, :, :, 0, :, 0]
        for i, j in ((i, j) for i in range(p) for j in range(p) if i or j):
            y = self.xp.maximum(y, win[:, :, :, i, :, j])
        return y, ((win, y, tuple(x.shape)) if training else None)

    def backward(self, ctx: Any, grad: Array, need_input_grad: bool = True) -> tuple[Array, Grads]:
        xp = self.xp
        win, y, shape = ctx
        n, c, ho, p, wo, _ = win.shape
        out = xp.zeros(win.shape, dtype=grad.dtype, device=self.backend.device)  # type: ignore[union-attr]
        taken = xp.zeros(y.shape, dtype=xp.bool, device=self.backend.device)  # type: ignore[union-attr]
        for i in range(p):
            for j in range(p):
                first = xp.logical_and(win[:, :, :, i, :, j] == y, xp.logical_not(taken))
                out[:, :, :, i, :, j] = xp.astype(first, grad.dtype) * grad
                taken = xp.logical_or(taken, first)
        return self._uncrop(xp.reshape(out, (n, c, ho * p, wo * p)), shape), {}


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
