"""JAX arrays (``jax.numpy``, an Array API namespace) on a JAX device: ``backend="jax"``.

JAX arrays are immutable: anynet's kernels return the arrays they change, indexed updates go
through array-api-extra's ``at`` (``x.at[idx].set(...)`` on JAX), and every owner of state
(optimizers, layers, callbacks) stores the new arrays back, so training on JAX is the same code
as everywhere else. float64 needs JAX's x64 mode (``jax.config.update("jax_enable_x64",
True)``, before any array is made); random numbers are drawn on the host (PCG64) and copied to
the device, as on NumPy, so a seed gives the same run on both.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np

from .base import Array, Backend, BackendError, Shape

__all__ = ["JaxBackend", "KeyRandom"]


class JaxBackend(Backend):
    library = "jax"
    install_hint = "pip install 'anynet[jax]' (JAX for the CPU; jax.readthedocs.io for GPUs)"

    @classmethod
    def create(cls, device: str | None = None) -> JaxBackend:
        jax = cls.import_module()
        xp = importlib.import_module("jax.numpy")
        devices = jax.devices()
        if device is None:
            return cls(xp, devices[0], jax, name="jax")
        if not (device.isdigit() and int(device) < len(devices)):
            raise BackendError(f"jax has no device {device!r}; it has {len(devices)}: {devices}")
        return cls(xp, devices[int(device)], jax, name="jax")

    @property
    def device_label(self) -> str:
        return str(self.module.devices().index(self.device))

    @property
    def accelerator(self) -> bool:
        return self.device.platform != "cpu"

    def describe_devices(self) -> list[str]:
        if not self.accelerator:
            return []
        return [f"jax:{i}  {d.device_kind}" for i, d in enumerate(self.module.devices())]

    def float_dtype(self, dtype=None):
        try:
            return super().float_dtype(dtype)
        except BackendError as exc:
            raise BackendError(
                f"{exc}; JAX makes float64 arrays only in x64 mode: "
                "jax.config.update('jax_enable_x64', True) before any array is made"
            ) from None

    def owns(self, a: Any) -> bool:
        return isinstance(a, self.module.Array)

    @classmethod
    def handles(cls, a: Any) -> bool:
        jax = sys.modules.get("jax")  # a JAX array exists only once JAX is imported
        return jax is not None and isinstance(a, jax.Array)

    def make_array(self, a: Any, dtype) -> Array:
        return self.module.device_put(self.xp.asarray(a, dtype=dtype), self.device)

    @staticmethod
    def array_to_host(a: Any) -> np.ndarray:
        return np.asarray(a)

    def synchronize(self) -> None:
        self.module.effects_barrier()

    # ------------------------------------------------------------------ compiled steps
    def jit(self, function: Any) -> Any:
        return self.module.jit(function)

    def step_keys(self, seeds: list[int], step: int) -> Any:
        random = self.module.random
        keys = [random.fold_in(random.key(int(seed) % 2**32), int(step)) for seed in seeds]
        return self.module.device_put(keys, self.device)

    def keyed_random(self, key: Any) -> KeyRandom:
        return KeyRandom(self, key)


class KeyRandom:
    """JAX's counter-based generator inside a compiled step: each draw splits the key, so the
    numbers are a function of the key (from the run's seed, the epoch, the layer and the step)."""

    def __init__(self, backend: JaxBackend, key: Any):
        self.backend, self.key = backend, key

    def _next(self) -> Any:
        self.key, key = self.backend.module.random.split(self.key)
        return key

    def permutation(self, n: int) -> Array:
        return self.backend.module.random.permutation(self._next(), int(n))

    def uniform(self, shape: Shape, low: float = 0.0, high: float = 1.0, dtype=None) -> Array:
        dtype = self.backend.float_dtype(dtype)
        return self.backend.module.random.uniform(self._next(), tuple(shape), dtype, low, high)

    def normal(self, shape: Shape, mean: float = 0.0, std: float = 1.0, dtype=None) -> Array:
        dtype = self.backend.float_dtype(dtype)
        return self.backend.module.random.normal(self._next(), tuple(shape), dtype) * std + mean

    def get_state(self) -> dict:
        raise BackendError("a compiled step's random source has no position: it is derived from the step")

    def set_state(self, state: dict) -> None:
        raise BackendError("a compiled step's random source has no position: it is derived from the step")
