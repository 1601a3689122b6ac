"""Making the double's functions from NumPy's."""

from __future__ import annotations

from typing import Any

from ._core import call

__all__ = ["functions"]


def function(source: Any, name: str, kind: str, module: str) -> Any:
    """``source.name`` run as CuPy runs it (see :func:`._core.call` for the kinds)."""
    np_func = getattr(source, name)

    def run(*args: Any, **kwargs: Any) -> Any:
        return call(np_func, name, kind, args, kwargs)

    run.__name__ = run.__qualname__ = name
    run.__module__ = module
    run.__doc__ = f"``cupy.{name}`` ({kind}): NumPy's ``{name}`` on the current fake device."
    return run


def functions(source: Any, names: str, kind: str, module: str) -> dict[str, Any]:
    """The functions ``names`` (whitespace-separated) of ``source``, all of one ``kind``."""
    return {name: function(source, name, kind, module) for name in names.split()}
