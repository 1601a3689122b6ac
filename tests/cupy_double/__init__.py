"""A CuPy test double: CuPy's names and refusals over NumPy, on fake GPUs, for a machine without one.

It is *not* CuPy and is never importable as ``cupy``: anynet serves it as the backend
``cupy_double`` (``cupy_double:1`` for the second fake GPU) through ``CupyBackend``'s code, with
array-api-compat's CuPy wrapper as its namespace (see :mod:`.compat` and :mod:`.backend`). What
it holds to, as CuPy 13/14 do:

- :class:`ndarray` wraps NumPy data and the device it lives on; it is no ``numpy.ndarray``.
  Implicit host conversion (``numpy.asarray(a)``) raises CuPy's TypeError; ``.get()`` and
  :func:`asnumpy` are the way home. NumPy arrays given to its functions raise TypeError
  (``Unsupported type``), except where CuPy takes host data (``asarray``, ``array``, index
  arrays, ``take``).
- Two fake devices (:data:`cuda.DEVICE_COUNT`); a kernel runs on the *current* device
  (``with cuda.Device(i)``, per thread): inputs on another device raise ValueError, outputs land
  on the current device.
- ``random.RandomState`` without ``get_state``/``set_state``; draws are logged with their dtype.
- Every device-to-host sync is logged (``.get()``, ``asnumpy``, ``float()``/``int()``/
  ``bool()``/``item()``/``tolist()``, boolean-mask get and set, data-dependent shapes such as
  ``nonzero`` or one-argument ``where``): ``w = watch(); ...; w.syncs``.
- dtypes are NumPy's, as in CuPy.
- :class:`ElementwiseKernel` runs a kernel's CUDA C ``operation`` by translating it (a small
  subset of C, evaluated with C's types and one rounding per operation, as NVRTC compiles it with
  ``--fmad=false``), writing outputs in place, one operation per launch (see :mod:`._kernel`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _names
from . import cuda as cuda
from . import random as random
from ._core import UFUNCS, call, ndarray, ufunc
from ._core import Watch as Watch
from ._core import watch as watch
from ._kernel import ElementwiseKernel as ElementwiseKernel
from ._namespace import functions

__version__ = "14.0.0+double"

for _name in _names.NUMPY_OBJECTS.split():
    globals()[_name] = getattr(np, _name)
for _name in _names.UFUNCS.split():
    _np_ufunc = getattr(np, _name)
    globals()[_name] = UFUNCS.setdefault(_np_ufunc.__name__, ufunc(_np_ufunc))
for _kind, _names_of_kind in _names.FUNCTIONS.items():
    globals().update(functions(np, _names_of_kind, _kind, __name__))

from . import fft as fft  # noqa: E402  (they use the namespace above)
from . import linalg as linalg  # noqa: E402


def where(condition: Any, x: Any = None, y: Any = None) -> ndarray:
    """``where(c)`` is ``nonzero(c)`` (a sync); ``where(c, x, y)`` an elementwise kernel."""
    if x is None and y is None:
        return call(np.where, "where", "sync", (condition,), {})
    return call(np.where, "where", "compute", (condition, x, y), {})


def asnumpy(
    a: Any, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True
) -> np.ndarray:
    """A host copy of ``a`` (a sync when ``a`` is on a device)."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out)
    return np.asarray(a, order=order)


def get_array_module(*args: Any) -> Any:
    """This module when any argument is one of its arrays, else NumPy."""
    import sys

    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else np


def is_available() -> bool:
    return True


#: what ``from cupy import *`` gives (array-api-compat's wrapper does it): CuPy's names only,
#: not the double's own helpers (``watch``, ``Watch``)
__all__ = sorted(
    name
    for name in globals()
    if not name.startswith("_")
    and name not in ("annotations", "Any", "np", "functions", "call", "watch", "Watch")
)
