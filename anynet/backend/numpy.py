"""NumPy on the host CPU, with ``out=`` buffers for the hot kernels.

A handful of inner-loop operations allocate several temporaries per step when written against
the standard, and NumPy (unlike a GPU library with a caching allocator, or a fused optimizer
kernel) pays for each one with a fresh pass over memory. These overrides compute the same
operations in the same order with ufunc ``out=`` arguments and scratch buffers allocated once,
so they are bit-identical to the generic versions (``tests/test_backend_kernels.py``).
"""

from __future__ import annotations

import numpy as np
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
        from array_api_compat import numpy as xp

        return cls(xp, "cpu", np)

    @property
    def device_label(self) -> str:
        return "cpu"

    def owns(self, a) -> bool:
        return isinstance(a, np.ndarray)

    def make_array(self, a, dtype) -> Array:
        return np.asarray(a, dtype=dtype)

    def to_host(self, a) -> np.ndarray:
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

    def flush_small(self, a, threshold):
        np.copyto(a, 0.0, where=np.abs(a) < threshold)

    def im2col(self, x, kh, kw, stride):
        """The same columns from a strided view of ``x`` (one copy, no index array)."""
        n, c = x.shape[:2]
        windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
        ho, wo = windows.shape[2:4]
        return windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo)
