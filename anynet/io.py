"""Saving and loading models: weights in safetensors (a format that cannot run code) with the
architecture, class table, preprocessing and anynet version as JSON in its metadata.

Files are written atomically (a temporary file in the same folder, then ``os.replace``), so a
crash never leaves half a model behind. Loading never uses pickle.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .network import Network
from .record import FORMAT, ModelInfo

__all__ = ["FORMAT", "ModelFileError", "load_model", "read_metadata", "save_model"]


class ModelFileError(ValueError):
    """A model file is missing, corrupt, truncated, or not an anynet model."""


def save_model(model: Network, path, **extra) -> Path:
    """Write ``model`` to ``path`` (``.safetensors`` is the usual suffix); returns the path.

    ``extra`` (JSON-able) is stored beside the architecture, e.g. ``preprocessing`` or metrics.
    """
    from safetensors.numpy import save

    if not model.built:
        raise ValueError("cannot save a network without weights: fit or build it first")
    path = Path(path)
    tensors = {
        f"layers.{i}.{name}": np.ascontiguousarray(w)
        for i, layer in enumerate(model.get_weights())
        for name, w in layer.items()
    }
    from . import __version__

    meta = {"format": FORMAT, "anynet_version": __version__, "config": model.get_config(),
            **model.info.to_metadata(), **extra}
    data = save(tensors, metadata={"anynet": json.dumps(meta)})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read(path) -> tuple[dict, dict]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    raw = path.read_bytes()
    try:
        tensors = load(raw)
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + header_len])
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise ModelFileError(f"{path}: not a readable safetensors file (corrupt or truncated: {exc})") from None
    text = (header.get("__metadata__") or {}).get("anynet")
    if text is None:
        raise ModelFileError(f"{path}: a safetensors file, but not an anynet model (no 'anynet' metadata)")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: the anynet metadata is not valid JSON ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: unsupported model format {meta.get('format')!r} (expected {FORMAT!r})")
    return tensors, meta


def read_metadata(path) -> dict:
    """The JSON metadata of a model file (architecture, classes, version, ...)."""
    return _read(path)[1]


def load_model(path, backend="cpu", dtype=None) -> Network:
    """Load a model saved by :func:`save_model` onto ``backend`` (any backend, whatever it was
    trained on)."""
    tensors, meta = _read(path)
    try:
        model = Network.from_config(meta["config"], backend=backend, dtype=dtype)
        n_layers = len(model.layers)
        weights = [{} for _ in range(n_layers)]
        for key, value in tensors.items():
            _, index, name = key.split(".")
            weights[int(index)][name] = value
        model.set_weights(weights)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise ModelFileError(f"{path}: the weights do not match the stored architecture ({exc})") from None
    model.info = ModelInfo.from_metadata(meta, path=str(path))
    return model
