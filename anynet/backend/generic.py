"""Any other Array API library, array-api-strict included: the base class as it is.

A library is served generically when it is importable by its module name and exposes the
standard's ``__array_namespace_info__``. Devices are named by their index among
``__array_namespace_info__().devices()`` or, where the library can build a device from a name
(``Device("device1")``), by that name.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Backend, BackendError

__all__ = ["INSTALL_HINTS", "GenericBackend"]

#: install commands for the compliant libraries anynet tests against
INSTALL_HINTS = {"array_api_strict": "pip install array-api-strict"}


class GenericBackend(Backend):
    """The generic Array API backend for library ``module`` (no overrides)."""

    @classmethod
    def for_library(cls, name: str, device: str | None) -> GenericBackend:
        """The backend for the library importable as ``name``, on ``device`` (default: the
        library's default device)."""
        module = _import_compliant(name)
        info = module.__array_namespace_info__()
        devices = list(info.devices())
        if device is None:
            return cls(module, info.default_device(), module, name=name)
        found = _find_device(module, devices, device)
        if found is None:
            raise BackendError(
                f"{name} has no device {device!r}; it has {len(devices)}: "
                f"{', '.join(str(i) for i in range(len(devices)))} ({devices})"
            )
        return cls(module, found, module, name=name)


def _import_compliant(name: str) -> Any:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        hint = INSTALL_HINTS.get(name)
        if hint is None:
            raise BackendError(f"unknown backend {name!r}") from None
        raise BackendError(f"backend {name!r} is not installed ({exc}); install it with: {hint}") from None
    if not hasattr(module, "__array_namespace_info__"):
        raise BackendError(
            f"unknown backend {name!r}: the module {name} does not implement "
            "the Array API standard (no __array_namespace_info__)"
        )
    return module


def _find_device(module: Any, devices: list, label: str) -> Any:
    if label.isdigit() and int(label) < len(devices):
        return devices[int(label)]
    make = getattr(module, "Device", None)
    if make is None:
        return None
    try:
        device = make(label)
    except (TypeError, ValueError):
        return None
    return device if device in devices else None
