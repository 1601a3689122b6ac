"""Hot kernels: the few operations where NumPy needs ``out=`` buffers to be fast.

Everything in anynet is written once against the Array API standard. A handful of inner-loop
operations allocate several temporaries per step when written that way, and NumPy (unlike a
GPU library with a caching allocator, or a fused optimizer kernel) pays for each one with a
fresh pass over memory. Following thinc's ``Ops`` / ``NumpyOps`` split:

- :class:`Kernels` holds the generic Array API formulas; it is what every backend uses
  (CuPy, PyTorch, array-api-strict, and NumPy too when asked for it explicitly).
- :class:`NumpyKernels` overrides the same methods with ufunc ``out=`` arguments and scratch
  buffers allocated once. It is the only NumPy-specific fast path in anynet.

Both compute the same operations in the same order, so they give the same results (bit for
bit on NumPy; ``tests/test_kernels.py`` compares them on every backend). Callers get the
kernels for a namespace with :func:`kernels_for` and never test for a library themselves.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Kernels", "NumpyKernels", "kernels_for"]


class Kernels:
    """Generic Array API versions of the hot operations (in-place updates on the arrays the
    caller owns; no ``out=``, which the standard does not have)."""

    name = "generic"

    def __init__(self, xp):
        self.xp = xp

    def scratch_like(self, param):
        """A work buffer for :meth:`adam_update` (the generic path needs none)."""
        return None

    def adam_update(self, param, grad, m, v, scratch, beta1: float, beta2: float,
                    step_size: float, eps: float) -> None:
        """One Adam step, in place on ``param``, ``m`` and ``v``::

            m <- beta1 m + (1 - beta1) g
            v <- beta2 v + (1 - beta2) g^2
            param <- param - step_size * (m / (sqrt(v) + eps))

        ``step_size`` and ``eps`` already carry the bias corrections (see ``Adam.step``).
        """
        xp = self.xp
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        g2 = grad * grad
        g2 *= 1.0 - beta2
        v += g2
        d = xp.sqrt(v)
        d += eps
        d = m / d
        d *= step_size
        param -= d

    def flush_small(self, a, threshold: float) -> None:
        """Set entries of ``a`` with ``|a| < threshold`` to zero, in place (keeps Adam's
        moments out of the float subnormal range; see ``anynet.optimizers.FLUSH_BELOW``)."""
        xp = self.xp
        a[...] = xp.where(xp.abs(a) < threshold, 0.0, a)


class NumpyKernels(Kernels):
    """The same operations with NumPy ufuncs writing into preallocated buffers."""

    name = "numpy"

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


_CACHE: dict = {}


def kernels_for(xp, fast: bool = True) -> Kernels:
    """The kernels for namespace ``xp``: :class:`NumpyKernels` for NumPy (unless ``fast`` is
    false), the generic :class:`Kernels` for every other namespace."""
    key = (id(xp), bool(fast))
    found = _CACHE.get(key)
    if found is None or found.xp is not xp:
        from array_api_compat import is_numpy_namespace

        cls = NumpyKernels if fast and is_numpy_namespace(xp) else Kernels
        found = _CACHE[key] = cls(xp)
    return found
