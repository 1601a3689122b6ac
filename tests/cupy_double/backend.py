"""``cupy_double``: anynet's CuPy backend code (``CupyBackend``, ``CupyRandom``) on the double.

The spec names it a double everywhere (``cupy_double``, ``cupy_double:1``; its devices are
described as the double's fake GPUs): it is registered with
:func:`anynet.backend.register_backend`, so it is never listed as an available backend, never
picked by ``"auto"`` and never stands in for CuPy in a figure or benchmark.
"""

from __future__ import annotations

import sys
from typing import Any

from anynet.backend import register_backend
from anynet.backend.cupy import CupyBackend

from . import compat, ndarray

__all__ = ["CupyDoubleBackend", "register"]


class CupyDoubleBackend(CupyBackend):
    """CupyBackend with the CuPy test double for CuPy."""

    library = "cupy_double"
    install_hint = "the CuPy test double is part of anynet's tests (tests/cupy_double)"

    @classmethod
    def import_module(cls) -> Any:
        return sys.modules[__name__.rsplit(".", 1)[0]]

    @classmethod
    def namespace(cls) -> Any:
        return compat.namespace()

    @classmethod
    def handles(cls, a: Any) -> bool:
        return isinstance(a, ndarray)


def register() -> type[CupyDoubleBackend]:
    """Make ``get_backend("cupy_double[:i]")`` and ``backend_of`` know the double (idempotent)."""
    register_backend(CupyDoubleBackend)
    return CupyDoubleBackend
