"""Loading a model file into a :class:`~anynet.network.Network` on any backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..backend import get_backend
from ..network import Network
from .format import ModelFileError, read_model

__all__ = ["load_model"]


def load_model(path: Any, backend: Any = "cpu", dtype: str | None = None) -> Network:
    """Load a model saved by :func:`~anynet.io.save_model` onto ``backend`` (any backend,
    whatever it was trained on); ``dtype`` overrides the stored one. The file is checked first
    (see :mod:`anynet.io.format`)."""
    backend = get_backend(backend)
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    file = read_model(path)
    model = _build(file.config, backend, dtype, file.path)
    model.set_weights(file.weights)
    model.info = file.info
    return model


def _build(config: dict, backend: Any, dtype: str | None, path: Path) -> Network:
    try:
        return Network.from_config(config, backend=backend, dtype=dtype)
    except (KeyError, ValueError, TypeError, IndexError, OverflowError) as exc:
        raise ModelFileError(f"{path}: invalid architecture: {exc}") from None
