"""array-api-compat's CuPy wrapper, serving the double: what real CuPy users get as ``xp``.

A private copy of the ``array_api_compat.cupy`` package is loaded under the name
:data:`MODULE` while ``sys.modules["cupy"]`` (and the submodules it imports) point at the
double; then ``sys.modules`` is put back, so the double is never visible as ``cupy`` to anything
else (``backend="auto"`` and tests of real CuPy are not fooled). compat's own functions
(``clip``, ``astype``, ``asarray``, ``zeros``, ...) then run exactly as they do over CuPy.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

import array_api_compat

__all__ = ["MODULE", "namespace"]

#: the private copy's module name (inside array_api_compat, so its relative imports resolve)
MODULE = "array_api_compat.cupy_double"

_lock = threading.Lock()


def namespace() -> ModuleType:
    """The wrapper (loaded once)."""
    loaded = sys.modules.get(MODULE)
    if loaded is not None:
        return loaded
    with _lock:
        return sys.modules.get(MODULE) or _load()


def _load() -> ModuleType:
    from . import cuda, fft, linalg

    double = sys.modules[__name__.rsplit(".", 1)[0]]
    shims = {
        "cupy": double,
        "cupy.linalg": linalg,
        "cupy.fft": fft,
        "cupy.cuda": cuda,
        "cupy.cuda.device": cuda,
    }
    source = Path(array_api_compat.__file__).parent / "cupy"
    spec = importlib.util.spec_from_file_location(
        MODULE, source / "__init__.py", submodule_search_locations=[str(source)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = {name: sys.modules.get(name) for name in shims}
    sys.modules.update(shims)
    sys.modules[MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for name in [n for n in sys.modules if n == MODULE or n.startswith(MODULE + ".")]:
            del sys.modules[name]
        raise
    finally:
        for name, value in saved.items():
            if value is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = value
    return module
