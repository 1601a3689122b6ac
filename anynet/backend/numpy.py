"""NumPy on the host CPU, with ``out=`` buffers for the hot kernels.

A handful of inner-loop operations allocate several temporaries per step when written against
the standard, and NumPy (unlike a GPU library with a caching allocator, or a fused optimizer
kernel) pays for each one with a fresh pass over memory. These overrides compute the same
operations in the same order with ufunc ``out=`` arguments and scratch buffers allocated once,
so they are bit-identical to the generic versions (``tests/test_backend_kernels.py``).

Batch normalisation and max pooling build each result in place in one new array laid out like
the input (a convolution's output is a (C, N, H, W)-major view), with per-channel sums by BLAS
and max pooling's winner found once, in the forward pass: the pooled values and gradients are
bit-identical to the generic ones, batch normalisation agrees to rounding.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import numpy as xp
from numpy.lib.stride_tricks import sliding_window_view

from .base import Array, Backend, BackendError

__all__ = ["NumpyBackend"]


class NumpyBackend(Backend):
    library = "numpy"
    install_hint = "pip install numpy"
    on_host = True

    @classmethod
    def create(cls, device: str | None = None) -> NumpyBackend:
        if device not in (None, "cpu"):
            raise BackendError(f"the numpy backend runs on 'cpu' only, not {device!r}")
        return cls(xp, "cpu", np)

    @property
    def device_label(self) -> str:
        return "cpu"

    def owns(self, a) -> bool:
        return isinstance(a, np.ndarray)

    def make_array(self, a, dtype) -> Array:
        return np.asarray(a, dtype=dtype)

    @staticmethod
    def array_to_host(a) -> np.ndarray:
        return np.asarray(a)

    def scratch_like(self, param):
        return np.empty_like(param)

    def adam_update(self, param, grad, m, v, scratch, beta1, beta2, step_size, eps):
        s = scratch if scratch is not None else np.empty_like(param)
        np.multiply(m, beta1, out=m)
        np.multiply(grad, 1.0 - beta1, out=s)
        np.add(m, s, out=m)
        np.multiply(v, beta2, out=v)
        np.multiply(grad, grad, out=s)
        np.multiply(s, 1.0 - beta2, out=s)
        np.add(v, s, out=v)
        np.sqrt(v, out=s)
        np.add(s, eps, out=s)
        np.divide(m, s, out=s)
        np.multiply(s, step_size, out=s)
        np.subtract(param, s, out=param)
        return param, m, v

    def flush_small(self, a, threshold):
        np.copyto(a, 0.0, where=np.abs(a) < threshold)
        return a

    def pad2d(self, x, pad):
        """The same zeros around ``x``, in one allocation and one copy."""
        if pad == 0:
            return x
        n, c, h, w = x.shape
        out = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype)
        out[:, :, pad : pad + h, pad : pad + w] = x
        return out

    def im2col(self, x, kh, kw, stride):
        """The same columns from a strided view of ``x`` (one copy, no index array)."""
        n, c = x.shape[:2]
        windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
        ho, wo = windows.shape[2:4]
        return windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo)

    # ------------------------------------------------------------------ normalisation and pooling
    @staticmethod
    def _channel_sums(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        """Per-channel sums of ``a`` (or of ``a * b``) over every axis but 1, as float64 (C,):
        BLAS sums over each sample's positions (a view for both layouts a convolution's output
        comes in, (N, C, H, W) and (C, N, H, W)), then a float64 sum over the batch."""
        n, c = a.shape[:2]
        rows = a.reshape(n, c, -1)
        if b is None:
            part = rows @ np.ones(rows.shape[2], dtype=a.dtype)
        else:
            part = np.vecdot(rows, b.reshape(n, c, -1))
        return part.sum(axis=0, dtype=np.float64)

    def batch_norm_train(self, x, gamma, beta, eps):
        """The same statistics, one pass each, and ``y = centred * (gamma * inv_std) + beta``
        made in place in one buffer laid out like ``x``. The context keeps ``x`` itself (alive
        anyway) instead of a new ``xhat``."""
        _, shape = self._per_channel_shape(x)
        m = x.size // x.shape[1]
        mean = (self._channel_sums(x) / m).astype(x.dtype)
        y = x - mean.reshape(shape)  # centred, for now
        var = (self._channel_sums(y, y) / m).astype(x.dtype)
        inv_std = 1.0 / np.sqrt(var + eps)
        y *= (gamma * inv_std).reshape(shape)
        y += beta.reshape(shape)
        return y, mean, var, (x, mean, inv_std)

    def batch_norm_backward(self, ctx, grad, gamma):
        """The same gradients, ``dx`` built in place in one buffer (the centred input made
        again) as ``gamma * inv_std * (g - dbeta / m - centred * (inv_std * dgamma / m))``."""
        x, mean, inv_std = ctx
        _, shape = self._per_channel_shape(x)
        m = x.size // x.shape[1]
        dx = x - mean.reshape(shape)  # centred
        dbeta = self._channel_sums(grad)
        dgamma = self._channel_sums(grad, dx) * inv_std
        dx *= (-inv_std * (dgamma / m)).astype(x.dtype).reshape(shape)
        dx -= (dbeta / m).astype(x.dtype).reshape(shape)
        dx += grad
        dx *= (gamma * inv_std).reshape(shape)
        return dx, dgamma.astype(x.dtype), dbeta.astype(x.dtype)

    def batch_norm_inference(self, x, gamma, beta, mean, var, eps):
        """The same operations, in place in the output's buffer."""
        _, shape = self._per_channel_shape(x)
        y = x - mean.reshape(shape)
        y *= (gamma / np.sqrt(var + eps)).reshape(shape)
        y += beta.reshape(shape)
        return y

    def max_pool_forward(self, x, p, training):
        """The same maxima, in place in one buffer; for training also ``first``, the position
        ``k = i*p + j`` of each window's first maximum (uint8). Position ``k`` takes over only
        where it is strictly greater, and it exceeds every earlier position, so ``first`` is
        ``maximum(first, k * greater)`` (~50x faster than a masked assignment). Each strided
        slice is copied once into a contiguous buffer: NumPy's loops are ~15x slower on strided
        operands than on contiguous ones."""
        ho, wo = x.shape[2] // p, x.shape[3] // p
        windows = [x[:, :, i : ho * p : p, j : wo * p : p] for i in range(p) for j in range(p)]
        y = windows[0].copy(order="K")
        if training:
            first = np.zeros_like(y, dtype=np.uint8 if p < 16 else np.int32)
            greater, step = np.empty_like(y, dtype=bool), np.empty_like(first)
        w = np.empty_like(y)
        for k, window in enumerate(windows[1:], start=1):
            np.copyto(w, window)
            if training:
                np.greater(w, y, out=greater)
                np.multiply(greater, first.dtype.type(k), out=step)
                np.maximum(first, step, out=first)
            np.maximum(y, w, out=y)
        return y, ((x, first, p) if training else None)

    def max_pool_backward(self, ctx, grad):
        """``grad`` times "is the first maximum" into each of the ``p*p`` strided views of
        ``dx`` (laid out like the input; zeros only where it was cropped)."""
        x, first, p = ctx
        ho, wo = first.shape[2:]
        cropped = (ho * p, wo * p) != x.shape[2:]
        dx = (np.zeros_like if cropped else np.empty_like)(x, dtype=grad.dtype)
        here = np.empty_like(first, dtype=bool)
        for k in range(p * p):
            i, j = divmod(k, p)
            np.equal(first, k, out=here)
            np.multiply(grad, here, out=dx[:, :, i : ho * p : p, j : wo * p : p])
        return dx
