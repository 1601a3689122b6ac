"""Finding backends: by name (:func:`get_backend`), by array (:func:`backend_of`), and which
ones this machine can use (:func:`available_backends`)."""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from .base import Backend, BackendError, host_copy
from .cupy import CupyBackend
from .generic import INSTALL_HINTS, GenericBackend
from .jax import JaxBackend
from .numpy import NumpyBackend
from .torch import TorchBackend

__all__ = [
    "ALIASES",
    "KNOWN",
    "PACKAGES",
    "available_backends",
    "backend_of",
    "get_backend",
    "gpu_spec_for_rank",
    "package_versions",
    "register_backend",
    "to_numpy",
]

#: libraries with a backend class of their own; any other compliant library is served generically
_CLASSES: dict[str, type[Backend]] = {
    cls.library: cls for cls in (NumpyBackend, CupyBackend, TorchBackend, JaxBackend)
}
#: the libraries anynet is tested with, in the order ``available_backends`` lists them
KNOWN = ("numpy", "cupy", "torch", "jax", "array_api_strict")
#: names that stand for a backend: ``"cpu"`` is the host backend, whatever library serves it;
#: ``"jax.numpy"`` (the Array API namespace's name) is JAX
ALIASES = {"cpu": "numpy", "jax.numpy": "jax"}
#: backend classes added with :func:`register_backend` (test doubles), by name
_REGISTERED: dict[str, type[Backend]] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Serve the specs ``cls.library`` and ``cls.library:<device>`` with ``cls``: a Backend
    subclass with a ``create(device)`` classmethod whose ``handles(array)`` tells its arrays
    (for :func:`backend_of`). Meant for test doubles: a registered backend is never listed by
    :func:`available_backends` nor picked by ``"auto"``, and it cannot replace a known one."""
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"register_backend takes a Backend subclass with create(device), not {cls!r}")
    name = cls.library
    if not name.isidentifier() or name in (*KNOWN, *ALIASES, "auto"):
        raise ValueError(f"cannot register a backend named {name!r}: pick a new name (e.g. 'mylib_double')")
    _CLASSES[name] = _REGISTERED[name] = cls
    _cached.cache_clear()
    return cls


def _create(name: str, device: str | None) -> Backend:
    cls = _CLASSES.get(name)
    if cls is None:
        return GenericBackend.for_library(name, device)
    try:
        return cls.create(device)
    except ImportError as exc:
        raise BackendError(
            f"backend {name!r} is not installed ({exc}); install it with: {cls.install_hint}"
        ) from None


@functools.lru_cache(maxsize=64)
def _cached(name: str, device: str | None) -> Backend:
    return _create(name, device)


def get_backend(spec: str | Backend | None = "auto") -> Backend:
    """The backend named by ``spec``: ``"numpy"``, ``"cupy"``, ``"cupy:1"``, ``"torch"``,
    ``"torch:cuda"``, ``"array_api_strict:device1"``, any other installed Array API library by
    its module name, ``"cpu"`` (the host backend) or ``"auto"`` (CuPy when a CUDA GPU is
    usable, else the host backend)."""
    if isinstance(spec, Backend):
        return spec
    if spec is None:
        spec = "auto"
    if not isinstance(spec, str):
        raise BackendError(f"a backend is named by a string such as 'numpy', not {spec!r}")
    name, _, device = spec.strip().partition(":")
    name = name.lower().replace("-", "_")
    name = ALIASES.get(name, name)
    if name == "auto":
        if device:
            raise BackendError("'auto' takes no device; name the backend, e.g. 'cupy:1'")
        return _cached(CupyBackend.library, None) if CupyBackend.device_count() else get_backend("cpu")
    try:
        return _cached(name, device or None)
    except BackendError as exc:
        raise BackendError(
            f"{exc}; choose one of {', '.join(KNOWN)}, 'cpu' or 'auto' "
            f"(usable here: {', '.join(available_backends()) or 'none'})"
        ) from None


def available_backends() -> list[str]:
    """Backends that import and have a usable device on this machine."""
    found = []
    for name in KNOWN:
        try:
            backend = _cached(name, None)
        except BackendError:
            continue
        found.append(name)
        if isinstance(backend, TorchBackend) and backend.module.cuda.is_available():
            found.append("torch:cuda")
    return found


#: the array libraries ``anynet info`` reports, with the distributions that provide them
PACKAGES = {
    "numpy": ("numpy",),
    "torch": ("torch",),
    "cupy": ("cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x", "cupy"),
    "array-api-strict": ("array-api-strict",),
    "array-api-compat": ("array-api-compat",),
}


def package_versions() -> dict[str, str | None]:
    """The installed version of every array library anynet knows (``None``: not installed)."""
    found: dict[str, str | None] = {}
    for name, dists in PACKAGES.items():
        found[name] = None
        for dist in dists:
            try:
                found[name] = version(dist)
                break
            except PackageNotFoundError:
                continue
    return found


def gpu_spec_for_rank(spec: str, local_rank: int) -> str:
    """The backend spec of one process among several on a machine: ``"auto"`` (and a GPU
    library named without a device) becomes GPU ``local_rank % device_count`` when GPUs are
    usable; any other spec is kept."""
    name = spec.strip().lower()
    if name not in ("auto", CupyBackend.library):
        return spec
    count = CupyBackend.device_count()
    return f"{CupyBackend.library}:{local_rank % count}" if count else spec


def unavailable_backends() -> dict[str, str]:
    """Why each known backend that is not usable here is not (``anynet info`` shows this)."""
    reasons = {}
    for name in KNOWN:
        try:
            _create(name, None)
        except BackendError as exc:
            reasons[name] = str(exc)
    return reasons


def backend_of(a: Any) -> Backend:
    """The backend an array belongs to: its library and its device."""
    if isinstance(a, np.ndarray):
        return get_backend("cpu")
    for cls in (*_REGISTERED.values(), *_CLASSES.values()):
        if cls.handles(a):
            return _with_device(cls, a)
    namespace = getattr(a, "__array_namespace__", None)
    if namespace is None:
        raise BackendError(f"arrays of type {type(a).__name__} are not supported")
    module = namespace()
    return GenericBackend(module, a.device, module, name=module.__name__)


def _with_device(cls: type[Backend], a: Any) -> Backend:
    backend = _cached(cls.library, None)
    if backend.device == a.device:
        return backend
    twin = backend.reference()
    return type(backend)(twin.xp, a.device, twin.module)


#: any supported array (NumPy, CuPy, PyTorch, array-api-strict, ...) or nested list as host
#: NumPy data (the backend class that handles the array brings it home)
to_numpy = host_copy


def install_hint(name: str) -> str:
    """How to install the library behind backend ``name``."""
    cls = _CLASSES.get(name)
    return cls.install_hint if cls is not None else INSTALL_HINTS.get(name, f"pip install {name}")
