"""NumPy on the host CPU, with ``out=`` buffers for the hot kernels.

A handful of inner-loop operations allocate several temporaries per step when written against
the standard, and NumPy (unlike a GPU library with a caching allocator, or a fused optimizer
kernel) pays for each one with a fresh pass over memory. These overrides compute the same
operations in the same order with ufunc ``out=`` arguments and scratch buffers allocated once,
so they are bit-identical to the generic versions (``tests/test_backend_kernels.py``).

Large arrays of the training kernels (convolution columns, activations, their gradients) come
from a :class:`Workspace`: buffers kept from one step to the next while the backend is active
(``fit``, ``evaluate``, ``predict``), each reused only once nothing refers to it any more. A
fresh large array is memory the operating system maps and zeroes page by page on first touch;
without the workspace that was about a fifth of a CNN training step's CPU time.

Convolutions of stride 1 with "same" padding make their columns by shifted copies of each
channel's contiguous run of pixels (no padded copy, no index array) and sum them back the same
way; batch normalisation and max pooling build each result in place in one new array laid out
like the input (a convolution's output is a (C, N, H, W)-major view), with per-channel sums by
BLAS and max pooling's winner found once, in the forward pass: the convolution, the pooled
values and the gradients agree with the generic ones bit for bit (up to the sign of zeros),
batch normalisation to rounding.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import numpy as xp
from numpy.lib.stride_tricks import sliding_window_view

from .base import Array, Backend, BackendError

__all__ = ["NumpyBackend", "Workspace"]


class Workspace:
    """Large host buffers reused across training steps.

    :meth:`empty` hands out a view of a kept buffer that nothing else refers to (its reference
    count says so: every view of a NumPy array holds a reference to the array that owns the
    memory), or of a new one. Buffers are kept only while a scope is open (:meth:`enter` /
    :meth:`exit`, nested; ``NumpyBackend.activate``), and forgotten when the outermost one
    closes: arrays still in use keep their memory, the rest is freed. Arrays below
    ``min_bytes`` come from NumPy as usual (malloc serves them from its free lists).
    """

    def __init__(self, min_bytes: int = 1 << 18, limit_bytes: int = 1 << 31):
        self.min_bytes, self.limit_bytes = min_bytes, limit_bytes
        self._bases: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._depth = 0
        self._free_refs = -1
        for probe in [np.empty(8, np.uint8)]:  # a base nobody else refers to, seen as below
            self._free_refs = self._refs(probe)

    @staticmethod
    def _refs(base: np.ndarray) -> int:
        return sys.getrefcount(base)

    def enter(self) -> None:
        with self._lock:
            self._depth += 1

    def exit(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._bases = []

    @property
    def held_bytes(self) -> int:
        """Bytes of the buffers kept (in use or free)."""
        return sum(b.nbytes for b in self._bases)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype``."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < self.min_bytes or not self._depth:
            return np.empty(shape, dtype)
        need = nbytes + 64  # room to start on a cache line
        with self._lock:
            best = None
            for base in self._bases:
                size = base.nbytes
                # a free buffer at most twice the size asked for, the smallest such
                fits = need <= size <= 2 * need and (best is None or size < best.nbytes)
                if fits and self._refs(base) <= self._free_refs:
                    best = base
            if best is None:
                if self.held_bytes + need > self.limit_bytes:
                    return np.empty(shape, dtype)
                best = np.empty(need, np.uint8)
                self._bases.append(best)
            start = -best.ctypes.data % 64
            return best[start : start + nbytes].view(dtype).reshape(shape)


class _Scope:
    """``with backend.activate():`` for NumPy: the workspace's lifetime."""

    __slots__ = ("workspace",)

    def __init__(self, workspace: Workspace):
        self.workspace = workspace

    def __enter__(self) -> None:
        self.workspace.enter()

    def __exit__(self, *exc: object) -> None:
        self.workspace.exit()


def _inverse(order: list[int] | tuple[int, ...]) -> list[int]:
    """The permutation that undoes ``order`` (``numpy.argsort`` costs more for four axes)."""
    back = [0] * len(order)
    for i, axis in enumerate(order):
        back[axis] = i
    return back


class _ShiftedConv(NamedTuple):
    """What NumPy's stride-1 "same" convolution keeps for its backward pass."""

    cols: np.ndarray  # (C*k*k, N*H*W)
    shape: tuple[int, int, int, int]  # the input's (N, C, H, W)
    pad: int


class NumpyBackend(Backend):
    library = "numpy"
    install_hint = "pip install numpy"
    on_host = True

    @classmethod
    def create(cls, device: str | None = None) -> NumpyBackend:
        if device not in (None, "cpu"):
            raise BackendError(f"the numpy backend runs on 'cpu' only, not {device!r}")
        return cls(xp, "cpu", np)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.workspace = Workspace()
        self._scope = _Scope(self.workspace)

    def activate(self) -> _Scope:
        """The workspace's lifetime: large buffers are reused while a scope is open."""
        return self._scope

    @property
    def device_label(self) -> str:
        return "cpu"

    def _empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return self.workspace.empty(shape, dtype)

    def _empty_like(self, x: np.ndarray, dtype: Any = None) -> np.ndarray:
        """An uninitialised array of ``x``'s shape, its memory laid out in ``x``'s axis order
        (a (C, N, H, W)-major view stays one), from the workspace."""
        dtype = x.dtype if dtype is None else dtype
        if x.flags.c_contiguous:
            return self._empty(x.shape, dtype)
        order = sorted(range(x.ndim), key=lambda axis: -abs(x.strides[axis]))
        buf = self._empty(tuple(x.shape[axis] for axis in order), dtype)
        return buf.transpose(_inverse(order))

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

    # ------------------------------------------------------------------ convolution
    def _channel_rows(self, x: np.ndarray) -> np.ndarray:
        """``x`` (N, C, H, W) as (C, N*H*W): a view when its memory is (C, N, H, W)-major (a
        convolution's output, or a single channel), else a copy into the workspace."""
        n, c, h, w = x.shape
        t = x.transpose(1, 0, 2, 3)
        if not t.flags.c_contiguous:
            out = self._empty((c, n, h, w), x.dtype)
            np.copyto(out, t)
            t = out
        return t.reshape(c, n * h * w)

    @staticmethod
    def _zero_outside(a: np.ndarray, di: int, dj: int, h: int, w: int) -> None:
        """Zero the positions of ``a`` (rows of N*H*W pixels) whose pixel shifted by (di, dj)
        falls outside its image."""
        v = a.reshape(a.shape[0], -1, h, w)  # a view (merging the row axis would copy)
        if di > 0:
            v[:, :, h - di :, :] = 0
        elif di < 0:
            v[:, :, :-di, :] = 0
        if dj > 0:
            v[:, :, :, w - dj :] = 0
        elif dj < 0:
            v[:, :, :, :-dj] = 0

    def conv2d_forward(self, x, w, bias, stride, pad, training):
        """The same columns and product for stride 1 and "same" padding: each row of the
        columns is a channel's pixels shifted by ``di * W + dj`` (one contiguous copy per
        channel and offset), with the pixels whose source lies outside the image zeroed; the
        columns and the product go into workspace buffers. Other convolutions: the generic
        path (with NumPy's ``pad2d`` and ``im2col``)."""
        f, c, kh, kw = w.shape
        n, _, h, wd = x.shape
        if stride != 1 or kh != kw or 2 * pad != kh - 1 or pad >= min(h, wd) or x.dtype != w.dtype:
            return super().conv2d_forward(x, w, bias, stride, pad, training)
        size = n * h * wd
        src = self._channel_rows(x)
        cols = self._empty((c, kh, kw, size), x.dtype)
        for i in range(kh):
            for j in range(kw):
                di, dj = i - pad, j - pad
                shift, dst = di * wd + dj, cols[:, i, j]
                if shift >= 0:
                    dst[:, : size - shift] = src[:, shift:]
                    dst[:, size - shift :] = 0
                else:
                    dst[:, -shift:] = src[:, : size + shift]
                    dst[:, :-shift] = 0
                self._zero_outside(dst, di, dj, h, wd)
        cols = cols.reshape(c * kh * kw, size)
        y = self._empty((f, size), x.dtype)
        np.matmul(w.reshape(f, -1), cols, out=y)
        if bias is not None:
            y += bias.reshape(f, 1)
        y = y.reshape(f, n, h, wd).transpose(1, 0, 2, 3)
        return y, (_ShiftedConv(cols, (n, c, h, wd), pad) if training else None)

    def conv2d_backward(self, ctx, grad, w, bias, need_input_grad):
        """The same gradients for the shifted columns: ``dx`` is their shifted rows of
        ``W2^T @ g`` (positions read from outside the image zeroed) summed back, one contiguous
        add per channel and offset, in the generic ``col2im``'s order (the same bits); ``dW``
        to rounding."""
        if not isinstance(ctx, _ShiftedConv):
            return super().conv2d_backward(ctx, grad, w, bias, need_input_grad)
        cols, (n, c, h, wd), pad = ctx
        f, _, kh, kw = w.shape
        size = n * h * wd
        g = self._channel_rows(grad)  # (F, N*H*W)
        # with more columns rows than filters, (cols @ g^T)^T: OpenBLAS runs that orientation
        # ~10% faster at a CNN's shapes (the sum over the pixels in another order: the same to
        # rounding); with fewer (a first layer's 9), g @ cols^T
        if cols.shape[0] > f:
            dw = np.ascontiguousarray((cols @ g.T).T).reshape(w.shape)
        else:
            dw = (g @ cols.T).reshape(w.shape)
        db = np.sum(g, axis=1) if bias else None
        if not need_input_grad:
            return None, dw, db
        dcols = self._empty((c * kh * kw, size), grad.dtype)
        np.matmul(w.reshape(f, -1).T, g, out=dcols)
        parts = dcols.reshape(c, kh, kw, size)
        dx = self._empty((c, size), grad.dtype)
        for i in range(kh):
            for j in range(kw):
                di, dj = i - pad, j - pad
                shift, part = di * wd + dj, parts[:, i, j]
                self._zero_outside(part, di, dj, h, wd)
                if i == 0 and j == 0:  # the first term: a copy, zeros where it adds nothing
                    if shift >= 0:
                        dx[:, shift:] = part[:, : size - shift]
                        dx[:, :shift] = 0
                    else:
                        dx[:, : size + shift] = part[:, -shift:]
                        dx[:, size + shift :] = 0
                elif shift >= 0:
                    dx[:, shift:] += part[:, : size - shift]
                else:
                    dx[:, : size + shift] += part[:, -shift:]
        return dx.reshape(c, n, h, wd).transpose(1, 0, 2, 3), dw, db

    # ------------------------------------------------------------------ activations
    def relu_forward(self, x, training):
        """The same operations, into workspace buffers laid out like ``x`` for large arrays."""
        if x.nbytes < self.workspace.min_bytes:  # a dense layer's: fewer calls
            mask = (x > 0.0).astype(x.dtype)
            return x * mask, (mask if training else None)
        mask = self._empty_like(x)
        np.greater(x, 0.0, out=mask)
        y = self._empty_like(x)
        np.multiply(x, mask, out=y)
        return y, (mask if training else None)

    def relu_backward(self, ctx, grad):
        if grad.nbytes < self.workspace.min_bytes:
            return grad * ctx
        dx = self._empty_like(grad)
        np.multiply(grad, ctx, out=dx)
        return dx

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
        y = self._empty_like(x)
        np.subtract(x, mean.reshape(shape), out=y)  # centred, for now
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
        dx = self._empty_like(x)
        np.subtract(x, mean.reshape(shape), out=dx)  # centred
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
        y = self._empty_like(x)
        np.subtract(x, mean.reshape(shape), out=y)
        y *= (gamma / np.sqrt(var + eps)).reshape(shape)
        y += beta.reshape(shape)
        return y

    def max_pool_forward(self, x, p, training):
        """The same maxima, in place in one buffer; for training also ``first``, the position
        ``k = i*p + j`` of each window's first maximum (uint8). Position ``k`` takes over only
        where it is strictly greater, and it exceeds every earlier position, so ``first`` is
        ``maximum(first, k * greater)`` (~50x faster than a masked assignment). Each strided
        slice is copied once into a contiguous buffer: NumPy's loops are several times slower
        on strided operands (a loop per row of the window grid) than on contiguous ones. The
        context keeps the input's shape and layout, not the input."""
        ho, wo = x.shape[2] // p, x.shape[3] // p
        windows = [x[:, :, i : ho * p : p, j : wo * p : p] for i in range(p) for j in range(p)]
        y = self._empty_like(windows[0])
        np.copyto(y, windows[0])
        if training:
            first = self._empty_like(y, np.uint8 if p < 16 else np.int32)
            first.fill(0)
            greater, step = self._empty_like(y, bool), self._empty_like(first)
        w = self._empty_like(y)
        for k, window in enumerate(windows[1:], start=1):
            np.copyto(w, window)
            if training:
                np.greater(w, y, out=greater)
                np.multiply(greater, first.dtype.type(k), out=step)
                np.maximum(first, step, out=first)
            np.maximum(y, w, out=y)
        if not training:
            return y, None
        order = tuple(sorted(range(4), key=lambda axis: -abs(x.strides[axis])))
        return y, (tuple(x.shape), order, first, p)

    def max_pool_backward(self, ctx, grad):
        """``grad`` scattered onto the first maxima: ``dx`` (laid out like the input) is zeroed
        and each window's gradient written at the flat position of its winner, the window's
        corner (a table made once per shape and layout) plus the offset of ``first``. One pass
        of contiguous writes and one indexed store, where ``p*p`` products into strided views of
        ``dx`` took ~3x as long."""
        shape, order, first, p = ctx
        corners, offsets = self._pool_corners(shape, order, p)
        buf = self._empty(tuple(shape[axis] for axis in order), grad.dtype)
        buf.fill(0)
        # the winners' flat positions and their gradients, in the input's axis order (views
        # when first and grad are laid out like the input, as they are after a convolution)
        winners = np.take(offsets, first.transpose(order).reshape(-1))
        winners += corners
        buf.reshape(-1)[winners] = grad.transpose(order).reshape(-1)
        return buf.transpose(_inverse(order))

    def _pool_corners(self, shape: tuple, order: tuple, p: int) -> tuple[np.ndarray, np.ndarray]:
        """The flat position of each window's top-left input in a contiguous array of
        ``shape`` laid out in axis ``order`` (listed with the pooled output's axes in that
        order), and the offset of each window position ``k = i*p + j`` from it."""
        key = (shape, order, p)
        cache = self.__dict__.setdefault("_pool_corner_cache", {})
        if key not in cache:
            strides, step = [0, 0, 0, 0], 1
            for axis in reversed(order):
                strides[axis], step = step, step * shape[axis]
            n, c, h, w = shape
            grid = (
                np.arange(n)[:, None, None, None] * strides[0]
                + np.arange(c)[None, :, None, None] * strides[1]
                + (p * np.arange(h // p))[None, None, :, None] * strides[2]
                + (p * np.arange(w // p))[None, None, None, :] * strides[3]
            )
            corners = np.ascontiguousarray(grid.transpose(order)).reshape(-1)
            offsets = np.array([i * strides[2] + j * strides[3] for i in range(p) for j in range(p)])
            if len(cache) >= 16:
                cache.clear()
            cache[key] = (corners.astype(np.int64), offsets.astype(np.int64))
        return cache[key]
