"""Checkpoint files: everything needed to continue a training run, in one directory.

``<dir>/checkpoint.safetensors`` holds every array (weights, optimizer moments, a callback's
best weights, generator states) as safetensors tensors, and everything else (epoch and step,
optimizer step count and rates, history, the model record ``net.info``, callback states, the
settings that decide the run) as JSON in its metadata. The file is written to a temporary name
in the same folder, flushed and renamed over the old one, so a crash leaves either the old or
the new checkpoint, never half of one. Nothing is pickled.

A checkpoint is checked as a model file is: a SHA-256 of every tensor (``tensors_sha256``;
checkpoints written before it had none), finite float tensors, and the types of every field
the resume reads. A failure is a :class:`CheckpointError` that says the checkpoint is damaged.
"""

from __future__ import annotations

import hashlib
import json
import typing
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

from ..io.files import check_writable_folder, write_atomically
from ..io.untrusted import matches, parse_json
from .errors import CheckpointError
from .seeding import RANDOM_MODES

__all__ = [
    "CHECKPOINT_FILE",
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "check_checkpoint_dir",
    "checkpoint_exists",
    "read_checkpoint",
    "write_checkpoint",
]

CHECKPOINT_FORMAT = "anynet-checkpoint/1"
CHECKPOINT_FILE = "checkpoint.safetensors"
_KEY = "anynet-checkpoint"

#: the fields a resume reads, and their JSON types
_SCHEMA: dict[str, Any] = {
    "config": dict,
    "weights": list[dict],
    "optimizer": dict,
    "epoch": int,
    "step": int,
    "epochs": int,
    "steps_per_epoch": int,
    "samples": int,
    "batch_size": int,
    "seed": int,
    "shuffle": bool,
    "random": typing.Literal[RANDOM_MODES],
    "history": dict[str, list[float | None]],
    "info": dict,
    "guard": dict,
    "callbacks": list[dict],
}
_OPTIONAL: dict[str, Any] = {"sums": tuple[float, float], "random_state": dict, "settings": dict}


def checkpoint_exists(directory) -> bool:
    return (Path(directory) / CHECKPOINT_FILE).is_file()


def check_checkpoint_dir(directory) -> None:
    """Fail before training when checkpoints could not be written into ``directory``: it is
    not a folder, cannot be created, or is not writable (nothing is left behind)."""
    try:
        check_writable_folder(Path(directory), "checkpoint")
    except OSError as exc:
        raise CheckpointError(f"checkpoint_dir: {exc}; choose another checkpoint folder") from None


# --------------------------------------------------------------------------- arrays <-> JSON


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


def _join(obj: Any, tensors: dict, path: Path) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            name = obj["__tensor__"]
            if not isinstance(name, str) or name not in tensors:
                raise _damaged(path, f"it refers to a tensor {str(name)[:60]!r} it does not hold")
            return tensors[name]
        return {k: _join(v, tensors, path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors, path) for v in obj]
    return obj


def tensors_digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 (hex) of the tensors by name: ``"<name> <dtype> <d1,d2,...>\\n"`` then the
    little-endian C-order bytes of each."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        w = np.asarray(tensors[name])
        h.update(f"{name} {w.dtype.str.lstrip('<>|=')} {','.join(map(str, w.shape))}\n".encode())
        h.update(np.ascontiguousarray(w, dtype=w.dtype.newbyteorder("<")).reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    return h.hexdigest()


def _non_finite(tensors: dict[str, np.ndarray]) -> list[str]:
    return [name for name, t in sorted(tensors.items()) if t.dtype.kind in "fc" and not np.isfinite(t).all()]


# --------------------------------------------------------------------------- writing and reading


def write_checkpoint(directory, state: dict) -> Path:
    """Write ``state`` (JSON-able data with NumPy arrays as leaves) atomically; returns the file.
    Non-finite weights or moments are refused: such a run cannot be continued."""
    tensors: dict[str, np.ndarray] = {}
    meta = {"format": CHECKPOINT_FORMAT, **_split(state, "", tensors)}
    path = Path(directory) / CHECKPOINT_FILE
    if bad := _non_finite(tensors):
        raise CheckpointError(f"not writing {path}: {', '.join(bad[:3])} hold non-finite values (NaN or inf)")
    meta["tensors_sha256"] = tensors_digest(tensors)
    data = save(tensors, metadata={_KEY: json.dumps(meta)})
    write_atomically(path, data)  # as model files: temporary, fsync, rename; the umask's mode
    return path


def read_checkpoint(directory) -> dict:
    """The state :func:`write_checkpoint` wrote into ``directory``, checked (see the module)."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no checkpoint there (train with checkpoint_dir={str(directory)!r} first)"
        )
    text, tensors = _read_file(path)
    meta = parse_json(text, lambda why: _damaged(path, f"its metadata is {why}"))
    if not isinstance(meta, dict):
        raise _damaged(path, "its metadata is not a JSON object")
    if meta.pop("format", None) != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: unsupported checkpoint format (expected {CHECKPOINT_FORMAT!r})")
    digest = meta.pop("tensors_sha256", None)
    if digest is not None and digest != tensors_digest(tensors):
        raise _damaged(path, "its tensors do not match their checksum (tensors_sha256)")
    if bad := _non_finite(tensors):
        raise _damaged(path, f"{', '.join(bad[:3])} hold non-finite values (NaN or inf)")
    _check_fields(meta, path)
    return _join(meta, tensors, path)


def _read_file(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    try:
        with safe_open(str(path), framework="numpy") as f:
            text = (f.metadata() or {}).get(_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (SafetensorError, ValueError, TypeError) as exc:
        raise _damaged(path, f"not a readable safetensors file ({exc})") from None
    if not isinstance(text, str):
        raise CheckpointError(f"{path}: a safetensors file, but not an anynet checkpoint")
    return text, tensors


def _check_fields(meta: dict, path: Path) -> None:
    """Every field the resume reads is there, with its type and a sensible value."""
    for key, hint in (*_SCHEMA.items(), *_OPTIONAL.items()):
        if key not in meta:
            if key in _SCHEMA:
                raise _damaged(path, f"it has no {key!r} field")
            continue
        value = meta[key]
        tensor = isinstance(value, dict) and set(value) == {"__tensor__"}
        if not tensor and not matches(value, hint):
            raise _damaged(path, f"its {key!r} field is not {_name(hint)}: {str(value)[:60]}")
    counts = {k: meta[k] for k in ("epoch", "step", "epochs", "steps_per_epoch", "samples", "batch_size")}
    if min(counts.values()) < 0 or min(counts["epochs"], counts["steps_per_epoch"], counts["samples"]) < 1:
        raise _damaged(path, f"it holds impossible counts {counts}")
    if counts["step"] > counts["steps_per_epoch"] or ("sums" in meta) != (counts["step"] > 0):
        raise _damaged(path, f"step {counts['step']} of {counts['steps_per_epoch']} does not fit its sums")


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _damaged(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: the checkpoint is damaged ({why}); delete it to start afresh, or resume from a copy"
    )
