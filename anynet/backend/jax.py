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

from .base import Array, Backend, BackendError

__all__ = ["JaxBackend"]


class JaxBackend(Backend):
    library = "jax"
    install_hint = "pip install 'anynet[jax]' (JAX for the CPU; jax.readthedocs.io for GPUs)"

    @classmethod
    def import_module(cls) -> Any:
        return importlib.import_module("jax")

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
