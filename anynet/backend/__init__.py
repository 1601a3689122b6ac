"""Array backends: the only package that knows the names of array libraries.

A :class:`Backend` is one array library on one device: its Array API namespace ``xp``, the
device arrays live on, a random-number source and the few hot kernels a library does faster.
Everything else in anynet receives a Backend and speaks only the standard through it.

- :mod:`.base`     :class:`Backend`, the generic Array API implementation (the reference)
- :mod:`.numpy`    NumPy on the CPU, ``out=`` buffers for the hot kernels
- :mod:`.cupy`     CuPy on a CUDA GPU, its own generator on the device
- :mod:`.torch`    PyTorch tensors on the CPU or CUDA, its own generator on the device
- :mod:`.generic`  any other compliant library (array-api-strict included)
- :mod:`.registry` :func:`get_backend`, :func:`backend_of`, :func:`available_backends`,
  :func:`register_backend` (test doubles, such as the CuPy double in ``tests/cupy_double``)

Names understood by :func:`get_backend` (an optional ``:device`` suffix picks the device):
``"numpy"``; ``"cupy"``, ``"cupy:1"``; ``"torch"``, ``"torch:cuda"``, ``"torch:cuda:1"``;
``"array_api_strict"``, ``"array_api_strict:device1"`` (its fake second device catches device
leaks on a CPU-only machine); any other installed Array API library by module name; ``"cpu"``
(the host backend); ``"auto"`` (CuPy when a CUDA device is usable, else the host backend).
"""

from .base import Array, Backend, BackendError, HostRandom, RandomSource, Shape
from .registry import (
    ALIASES,
    KNOWN,
    available_backends,
    backend_of,
    get_backend,
    gpu_spec_for_rank,
    install_hint,
    package_versions,
    register_backend,
    to_numpy,
    unavailable_backends,
)

__all__ = [
    "ALIASES",
    "KNOWN",
    "Array",
    "Backend",
    "BackendError",
    "HostRandom",
    "RandomSource",
    "Shape",
    "available_backends",
    "backend_of",
    "get_backend",
    "gpu_spec_for_rank",
    "install_hint",
    "package_versions",
    "register_backend",
    "to_numpy",
    "unavailable_backends",
]
