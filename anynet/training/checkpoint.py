"""Checkpoint files: everything needed to continue a training run, in one directory.

``<dir>/checkpoint.safetensors`` holds every array (weights, optimizer moments, a callback's
best weights, generator states) as safetensors tensors, and everything else (epoch and step,
optimizer step count and rates, history, the model record ``net.info``, callback states, fit
settings) as JSON in its metadata. The file is written to a temporary name in the same folder,
flushed and renamed over the old one, so a crash leaves either the old or the new checkpoint,
never half of one. Nothing is pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..io import write_atomically

__all__ = [
    "CHECKPOINT_FILE",
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "checkpoint_exists",
    "read_checkpoint",
    "write_checkpoint",
]

CHECKPOINT_FORMAT = "anynet-checkpoint/1"
CHECKPOINT_FILE = "checkpoint.safetensors"
_KEY = "anynet-checkpoint"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the run that tries to resume from it."""


def checkpoint_exists(directory) -> bool:
    return (Path(directory) / CHECKPOINT_FILE).is_file()


def _split(obj: Any, key: str, tensors: dict) -> Any:
    """``obj`` with each NumPy array replaced by ``{"__tensor__": name}`` (stored in ``tensors``)."""
    if isinstance(obj, np.ndarray):
        tensors[key] = np.ascontiguousarray(obj)
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {str(k): _split(v, f"{key}/{k}", tensors) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split(v, f"{key}/{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join(obj: Any, tensors: dict) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        return {k: _join(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


def write_checkpoint(directory, state: dict) -> Path:
    """Write ``state`` (JSON-able data with NumPy arrays as leaves) atomically; returns the file."""
    from safetensors.numpy import save

    tensors: dict[str, np.ndarray] = {}
    meta = {"format": CHECKPOINT_FORMAT, **_split(state, "", tensors)}
    data = save(tensors, metadata={_KEY: json.dumps(meta)})
    path = Path(directory) / CHECKPOINT_FILE
    write_atomically(path, data)  # as model files: temporary, fsync, rename; the umask's mode
    return path


def read_checkpoint(directory) -> dict:
    """The state :func:`write_checkpoint` wrote into ``directory``."""
    from safetensors import SafetensorError, safe_open

    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no checkpoint there (train with checkpoint_dir={str(directory)!r} first)"
        )
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads((f.metadata() or {})[_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, KeyError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable anynet checkpoint ({exc})") from None
    if meta.pop("format", None) != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: unsupported checkpoint format (expected {CHECKPOINT_FORMAT!r})")
    return _join(meta, tensors)
