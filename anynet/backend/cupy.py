"""CuPy on a CUDA GPU: arrays made inside the device's context, CuPy's own generator (so
shuffles, dropout masks and noise never cross the bus; resumable, see :class:`CupyRandom`), a
fused Adam kernel, and the GPUs' names for ``anynet info``.

Batch normalisation stays generic: CuPy 14 dropped cuDNN (``cupy.cuda.cudnn``, ``cupyx.cudnn``)
and has no other public fused batch norm (see docs/backends.md).
"""

from __future__ import annotations

import functools
import secrets
from typing import Any

import numpy as np

from .base import Array, Backend, BackendError, Shape

__all__ = ["CupyBackend", "CupyRandom"]


def _cuda_devices(cupy: Any) -> tuple[int, str]:
    """The number of usable CUDA devices, and why there are none."""
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
        cupy.cuda.runtime.getDeviceProperties(0)  # a driver too old for CuPy's runtime fails here
    except Exception as exc:  # no driver, no device, broken install: all mean "no GPU"
        return 0, f"{type(exc).__name__}: {exc}"
    return count, "no CUDA device"


class CupyBackend(Backend):
    library = "cupy"
    install_hint = "pip install 'anynet[gpu]' (CuPy for CUDA 12; it also needs an NVIDIA GPU and driver)"

    @classmethod
    def device_count(cls) -> int:
        """Usable CUDA devices (0 when CuPy is missing or no GPU is usable)."""
        try:
            return _cuda_devices(cls.import_module())[0]
        except ImportError:
            return 0

    @classmethod
    def namespace(cls) -> Any:
        """The Array API namespace: array-api-compat's CuPy wrapper."""
        from array_api_compat import cupy as xp

        return xp

    @classmethod
    def create(cls, device: str | None = None) -> CupyBackend:
        cupy = cls.import_module()
        count, reason = _cuda_devices(cupy)
        if count == 0:
            raise BackendError(
                f"backend {cls.library!r} needs a CUDA GPU, and none is usable on this machine ({reason})"
            )
        try:
            index = int(device) if device not in (None, "", "cuda") else 0
        except ValueError:
            raise BackendError(f"{cls.library} devices are numbered 0..{count - 1}, not {device!r}") from None
        if not 0 <= index < count:
            raise BackendError(
                f"{cls.library} device {index} does not exist; this machine has {count} GPU(s)"
            )
        return cls(cls.namespace(), cupy.cuda.Device(index), cupy)

    @property
    def device_label(self) -> str:
        return str(self.device.id)

    def describe_devices(self) -> list[str]:
        runtime = self.module.cuda.runtime
        names = [runtime.getDeviceProperties(i)["name"] for i in range(runtime.getDeviceCount())]
        return [f"{self.name}:{i}  {n.decode() if isinstance(n, bytes) else n}" for i, n in enumerate(names)]

    def activate(self) -> Any:
        """The device's context (``with cupy.cuda.Device(i)``): CuPy computes on the current
        device, and array-api-compat ignores ``device=`` for CuPy."""
        return self.device

    @property
    def accelerator(self) -> bool:
        return True

    def synchronize(self) -> None:
        self.module.cuda.get_current_stream().synchronize()

    # ------------------------------------------------------------------ NCCL (anynet.distributed)
    @classmethod
    def nccl(cls) -> Any:
        """CuPy's NCCL module; :class:`BackendError` saying what is missing."""
        try:
            cupy = cls.import_module()
            from cupy.cuda import nccl
        except ImportError as exc:
            raise BackendError(f"NCCL needs CuPy with NCCL ({exc}); {cls.install_hint}") from None
        if not getattr(nccl, "available", True):
            raise BackendError("CuPy was built without NCCL")
        count, reason = _cuda_devices(cupy)
        if count < 1:
            raise BackendError(f"NCCL needs a CUDA GPU, and none is usable here ({reason})")
        return nccl

    @staticmethod
    def buffer_pointer(buffer: Array) -> int:
        """The device address of a CuPy array (what NCCL calls take)."""
        return int(buffer.data.ptr)

    def stream_handle(self) -> int:
        """The current CUDA stream of this backend's device."""
        with self.device:
            return int(self.module.cuda.get_current_stream().ptr)

    def owns(self, a) -> bool:
        return isinstance(a, self.module.ndarray)

    def make_array(self, a, dtype) -> Array:
        with self.device:
            return self.xp.asarray(a, dtype=dtype)

    @staticmethod
    def array_to_host(a) -> np.ndarray:
        return a.get()

    def zeros(self, shape: Shape, dtype=None) -> Array:
        with self.device:
            return self.xp.zeros(shape, dtype=self.float_dtype(dtype))

    def random(self, seed: int | None = None) -> CupyRandom:
        return CupyRandom(self, seed)

    # ------------------------------------------------------------------ hot kernels
    @functools.cached_property
    def _adam_kernel(self) -> Any:
        """One elementwise kernel for the whole Adam update (compiled by CuPy at its first call,
        per device and dtype). ``--fmad=false``: no multiply-add is fused, so every operation is
        rounded as the generic reference's separate kernels round it."""
        return self.module.ElementwiseKernel(*_ADAM_UPDATE, options=("--fmad=false",))

    def adam_update(self, param, grad, m, v, scratch, beta1, beta2, step_size, eps):
        """The reference's update, operation for operation, in one pass over each parameter
        (one launch instead of about a dozen); needs no scratch buffer."""
        self._adam_kernel(grad, beta1, 1.0 - beta1, beta2, 1.0 - beta2, step_size, eps, param, m, v)
        return param, m, v

    @classmethod
    def handles(cls, a: Any) -> bool:
        return type(a).__module__.startswith("cupy") and isinstance(a, cls.import_module().ndarray)


#: ``ElementwiseKernel`` arguments for :meth:`CupyBackend.adam_update`: the generic reference's
#: operations in its order (``Backend.adam_update``), scalars cast to the parameter's type
_ADAM_UPDATE = (
    "T grad, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T step_size, T eps",
    "T param, T m, T v",
    """
    m = m * beta1 + one_minus_beta1 * grad;
    v = v * beta2 + (grad * grad) * one_minus_beta2;
    param = param - (m / (sqrt(v) + eps)) * step_size;
    """,
    "anynet_adam_update",
)


def _draw_seed(seed: int, draw: int) -> int:
    """The 64-bit cuRAND seed of draw number ``draw`` of a source seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, draw]).generate_state(1, np.uint64)[0])


def _counter(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value < 2**64:
        raise ValueError(f"{what} must be an integer in [0, 2**64), got {value!r}")
    return int(value)


class CupyRandom:
    """CuPy's own generator on the backend's GPU, resumable although cuRAND generators have no
    state to save: draw number ``k`` (``permutation``, ``uniform`` or ``normal``) comes from the
    generator seeded afresh with a seed derived from ``(seed, k)``, so the position is just
    ``(seed, k)`` (``get_state``/``set_state``, for checkpoints). Seeding is host work
    (Philox4x32-10 keeps its state in the seed and offset): numbers are still drawn on the
    device, in the requested dtype, with no host sync.
    """

    def __init__(self, backend: CupyBackend, seed: int | None):
        self.backend = backend
        self.seed = secrets.randbits(64) if seed is None else _counter(seed, "seed")
        self.draws = 0
        philox = backend.module.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10
        with backend.device:
            self.generator = backend.module.random.RandomState(self.seed, method=philox)

    def get_state(self) -> dict:
        """The position: the seed and how many draws were made (JSON-able)."""
        return {"kind": "counter", "seed": self.seed, "draws": self.draws}

    def set_state(self, state: dict) -> None:
        if not isinstance(state, dict) or state.get("kind") != "counter":
            raise ValueError(f"not a CuPy generator position: {str(state)[:80]}")
        self.seed, self.draws = _counter(state.get("seed"), "seed"), _counter(state.get("draws"), "draws")

    def _next(self) -> Any:
        """The generator, seeded for the next draw."""
        self.generator.seed(_draw_seed(self.seed, self.draws))
        self.draws += 1
        return self.generator

    def permutation(self, n: int) -> Array:
        with self.backend.device:
            # a Python int: CuPy takes anything else (a NumPy integer too) for an array to shuffle
            return self._next().permutation(int(n)).astype(self.backend.module.int64, copy=False)

    def uniform(self, shape: Shape, low: float = 0.0, high: float = 1.0, dtype=None) -> Array:
        """Drawn in ``dtype`` (cuRAND draws float32 natively: no float64 draw and cast)."""
        with self.backend.device:
            return self._next().uniform(low, high, size=shape, dtype=self.backend.float_dtype(dtype))

    def normal(self, shape: Shape, mean: float = 0.0, std: float = 1.0, dtype=None) -> Array:
        with self.backend.device:
            return self._next().normal(mean, std, size=shape, dtype=self.backend.float_dtype(dtype))
