"""Array backends: the only module that knows the names of array libraries.

A :class:`Backend` bundles an Array API namespace ``xp`` (through array-api-compat), the
device arrays live on, and a random-number source. Everything else in anynet receives a
Backend and speaks only the standard through ``backend.xp``.

Names understood by :func:`get_backend` (an optional ``:device`` suffix picks the device):

- ``"numpy"``                          host CPU
- ``"cupy"``, ``"cupy:1"``             CUDA GPU through CuPy
- ``"torch"``, ``"torch:cuda"``, ``"torch:cuda:1"``  PyTorch tensors on CPU or CUDA
- ``"array_api_strict"``, ``"array_api_strict:device1"``  the reference implementation
  (with its fake second device, useful to catch device leaks on a CPU-only machine)
- ``"auto"``                           CuPy when a CUDA device is usable, else NumPy
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Backend",
    "BackendError",
    "available_backends",
    "get_backend",
    "backend_of",
    "is_native",
    "to_numpy",
]

KNOWN = ("numpy", "cupy", "torch", "array_api_strict")

_INSTALL_HINT = {
    "cupy": "pip install 'anynet[gpu]' (CuPy for CUDA 12; it also needs an NVIDIA GPU and driver)",
    "torch": "pip install torch",
    "array_api_strict": "pip install array-api-strict",
    "numpy": "pip install numpy",
}


class BackendError(RuntimeError):
    """A backend was asked for that is unknown, not installed or has no usable device."""


# --------------------------------------------------------------------------- random numbers


class HostRandom:
    """Random numbers drawn on the host with NumPy, then moved to the backend's device.

    The Array API standard has no random numbers; this is the portable fallback.
    """

    def __init__(self, backend: "Backend", seed: int | None):
        self.backend = backend
        self.generator = np.random.default_rng(seed)

    def permutation(self, n: int):
        """A random permutation of ``range(n)`` as an int64 index array on the device."""
        return self.backend.asarray(self.generator.permutation(n).astype(np.int64))

    def uniform(self, shape, low: float = 0.0, high: float = 1.0, dtype=None):
        host = self.generator.uniform(low, high, size=shape)
        return self.backend.asarray(host, dtype=dtype)

    def normal(self, shape, mean: float = 0.0, std: float = 1.0, dtype=None):
        host = self.generator.normal(mean, std, size=shape)
        return self.backend.asarray(host, dtype=dtype)


class CupyRandom:
    """CuPy's own generator: shuffles, masks and noise are made on the GPU."""

    def __init__(self, backend: "Backend", seed: int | None):
        self.backend = backend
        cp = backend.module
        with backend.module.cuda.Device(backend.device.id):
            self.generator = cp.random.RandomState(seed)

    def permutation(self, n: int):
        with self.backend.module.cuda.Device(self.backend.device.id):
            return self.generator.permutation(n).astype(self.backend.module.int64)

    def uniform(self, shape, low: float = 0.0, high: float = 1.0, dtype=None):
        with self.backend.module.cuda.Device(self.backend.device.id):
            out = self.generator.uniform(low, high, size=shape)
            return out.astype(self.backend.float_dtype(dtype), copy=False)

    def normal(self, shape, mean: float = 0.0, std: float = 1.0, dtype=None):
        with self.backend.module.cuda.Device(self.backend.device.id):
            out = self.generator.normal(mean, std, size=shape)
            return out.astype(self.backend.float_dtype(dtype), copy=False)


class TorchRandom:
    """PyTorch's own generator on the tensor's device (CPU or CUDA)."""

    def __init__(self, backend: "Backend", seed: int | None):
        torch = backend.module
        self.backend = backend
        self.generator = torch.Generator(device=backend.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    def permutation(self, n: int):
        torch = self.backend.module
        return torch.randperm(n, generator=self.generator, device=self.backend.device)

    def uniform(self, shape, low: float = 0.0, high: float = 1.0, dtype=None):
        torch = self.backend.module
        out = torch.rand(
            tuple(shape), generator=self.generator, device=self.backend.device,
            dtype=self.backend.float_dtype(dtype),
        )
        return out * (high - low) + low if (low, high) != (0.0, 1.0) else out

    def normal(self, shape, mean: float = 0.0, std: float = 1.0, dtype=None):
        torch = self.backend.module
        out = torch.randn(
            tuple(shape), generator=self.generator, device=self.backend.device,
            dtype=self.backend.float_dtype(dtype),
        )
        return out * std + mean if (mean, std) != (0.0, 1.0) else out


# --------------------------------------------------------------------------- the backend


@dataclass(frozen=True, eq=False)
class Backend:
    """An array namespace, a device and a way to make random numbers.

    Attributes:
        name: ``"numpy"``, ``"cupy"``, ``"torch"`` or ``"array_api_strict"``.
        xp: the Array API namespace (array-api-compat's wrapper where one is needed).
        device: the device object arrays are created on.
        module: the underlying library module (``cupy``, ``torch``, ...).
    """

    name: str
    xp: Any
    device: Any
    module: Any = field(repr=False)

    # ---- identity
    @property
    def spec(self) -> str:
        """A string that :func:`get_backend` turns back into this backend."""
        return f"{self.name}:{_device_label(self)}"

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy" or (self.name == "torch" and self.device.type == "cuda")

    def __eq__(self, other):
        return isinstance(other, Backend) and self.spec == other.spec

    def __hash__(self):
        return hash(self.spec)

    # ---- dtypes
    def float_dtype(self, dtype=None):
        """The namespace's float dtype for ``"float32"`` (default), ``"float64"`` or a dtype."""
        if dtype is None:
            return self.xp.float32
        if isinstance(dtype, str):
            if dtype not in ("float32", "float64"):
                raise ValueError(f"unsupported float dtype {dtype!r}: use 'float32' or 'float64'")
            return getattr(self.xp, dtype)
        if dtype in (np.float32, np.dtype("float32")):
            return self.xp.float32
        if dtype in (np.float64, np.dtype("float64")):
            return self.xp.float64
        return dtype

    # ---- moving data
    def asarray(self, a, dtype=None):
        """``a`` (host NumPy data or any array) as an array of this backend on its device.

        ``dtype`` may be a namespace dtype or ``"float32"`` / ``"float64"``; ``None`` keeps the
        kind of ``a`` (host float64 is *not* narrowed: pass the dtype you want).
        """
        if isinstance(dtype, str):
            dtype = self.float_dtype(dtype)
        if not is_native(self, a):
            a = to_numpy(a)
            if self.name == "torch" and isinstance(a, np.ndarray) and not a.flags.writeable:
                a = a.copy()  # torch refuses to wrap read-only memory (np.frombuffer, mmap)
        if self.name == "cupy":
            with self.module.cuda.Device(self.device.id):
                return self.xp.asarray(a, dtype=dtype)
        return self.xp.asarray(a, dtype=dtype, device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        """Copy an array of this backend to a host NumPy array."""
        return to_numpy(a)

    def random(self, seed: int | None = None):
        """A random-number source with ``permutation``, ``uniform`` and ``normal``.

        CuPy and PyTorch use their own generators on the device; others draw on the host.
        """
        if self.name == "cupy":
            return CupyRandom(self, seed)
        if self.name == "torch":
            return TorchRandom(self, seed)
        return HostRandom(self, seed)


# --------------------------------------------------------------------------- lookup


def is_native(backend: Backend, a) -> bool:
    """True when ``a`` is already an array of ``backend``'s library."""
    if backend.name == "numpy":
        return isinstance(a, np.ndarray)
    mod = type(a).__module__.split(".")[0]
    return mod == backend.module.__name__.split(".")[0]


def to_numpy(a) -> np.ndarray:
    """Any supported array (NumPy, CuPy, PyTorch, array-api-strict, lists) as host NumPy."""
    if isinstance(a, np.ndarray):
        return a
    mod = type(a).__module__.split(".")[0]
    if mod == "cupy":
        return a.get()
    if mod == "torch":
        return a.detach().cpu().numpy()
    if mod == "array_api_strict":
        import array_api_strict as strict

        return np.asarray(a.to_device(strict.Device("CPU_DEVICE")))
    return np.asarray(a)


def _device_label(backend: Backend) -> str:
    if backend.name == "numpy":
        return "cpu"
    if backend.name == "cupy":
        return str(backend.device.id)
    if backend.name == "torch":
        return str(backend.device)
    return str(backend.device).split("'")[1] if "'" in str(backend.device) else str(backend.device)


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise BackendError(
            f"backend {name!r} is not installed ({exc}); install it with: {_INSTALL_HINT[name]}. "
            f"Available here: {', '.join(available_backends()) or 'none'}"
        ) from None


def _cuda_device_count(cupy) -> int:
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no driver, no device, broken install: all mean "no GPU"
        return 0


def _make(name: str, device: str | None) -> Backend:
    if name == "numpy":
        if device not in (None, "cpu"):
            raise BackendError(f"the numpy backend runs on 'cpu' only, not {device!r}")
        from array_api_compat import numpy as xp

        return Backend("numpy", xp, "cpu", np)

    if name == "cupy":
        cupy = _import("cupy")
        count = _cuda_device_count(cupy)
        if count == 0:
            raise BackendError(
                "backend 'cupy' needs a CUDA GPU, and none is usable on this machine; "
                f"use one of: {', '.join(available_backends())} (or 'auto')"
            )
        index = int(device) if device not in (None, "", "cuda") else 0
        if not 0 <= index < count:
            raise BackendError(f"cupy device {index} does not exist; this machine has {count} GPU(s)")
        from array_api_compat import cupy as xp

        return Backend("cupy", xp, cupy.cuda.Device(index), cupy)

    if name == "torch":
        torch = _import("torch")
        dev = torch.device(device or "cpu")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(
                f"backend 'torch:{device}' needs a CUDA GPU, and PyTorch sees none here; "
                "use 'torch' (CPU) instead"
            )
        from array_api_compat import torch as xp

        return Backend("torch", xp, dev, torch)

    if name == "array_api_strict":
        strict = _import("array_api_strict")
        label = device or "CPU_DEVICE"
        devices = strict.__array_namespace_info__().devices()
        names = [str(d).split("'")[1] for d in devices]
        if label not in names:
            raise BackendError(f"array_api_strict has no device {label!r}; it has {names}")
        return Backend("array_api_strict", strict, strict.Device(label), strict)

    raise BackendError(
        f"unknown backend {name!r}; choose one of {', '.join(KNOWN)} or 'auto' "
        f"(available here: {', '.join(available_backends())})"
    )


def get_backend(spec: "str | Backend | None" = "auto") -> Backend:
    """Return the backend named by ``spec`` (``"numpy"``, ``"cupy:1"``, ``"auto"``, ...)."""
    if isinstance(spec, Backend):
        return spec
    if spec is None:
        spec = "auto"
    if not isinstance(spec, str):
        raise BackendError(f"a backend is named by a string such as 'numpy', not {spec!r}")
    name, _, device = spec.strip().partition(":")
    name = name.lower().replace("-", "_")
    if name == "auto":
        if device:
            raise BackendError("'auto' takes no device; name the backend, e.g. 'cupy:1'")
        try:
            return _make("cupy", None)
        except BackendError:
            return _make("numpy", None)
    return _make(name, device or None)


def available_backends() -> list[str]:
    """Backends that import and have a usable device on this machine."""
    found = []
    for name in KNOWN:
        try:
            module = importlib.import_module(name)
        except Exception:
            continue
        if name == "cupy" and _cuda_device_count(module) == 0:
            continue
        found.append(name)
        if name == "torch" and module.cuda.is_available():
            found.append("torch:cuda")
    return found


def backend_of(a) -> Backend:
    """The backend an array belongs to (its library and device)."""
    if isinstance(a, np.ndarray):
        return get_backend("numpy")
    mod = type(a).__module__.split(".")[0]
    if mod == "cupy":
        return get_backend(f"cupy:{a.device.id}")
    if mod == "torch":
        return get_backend(f"torch:{a.device}")
    if mod == "array_api_strict":
        return get_backend(f"array_api_strict:{str(a.device).split(chr(39))[1]}")
    raise BackendError(f"arrays of type {type(a).__name__} are not supported")
