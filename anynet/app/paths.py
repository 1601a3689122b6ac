"""Where ``anynet serve`` finds a model when none is given.

``anynet train`` records the file it saved with :func:`record_last_model`; the record is the
text file ``$ANYNET_HOME/last_model`` (``ANYNET_HOME`` defaults to ``~/.anynet``) holding one
path. Nothing here needs FastAPI.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..io.files import anynet_home, write_atomically

__all__ = ["NoModelError", "anynet_home", "default_model_path", "record_last_model"]


class NoModelError(FileNotFoundError):
    """No model was given and none is recorded (or the recorded file is gone)."""


def record_last_model(path: str | os.PathLike) -> Path:
    """Remember ``path`` as the model to serve by default; returns the record file."""
    record = anynet_home() / "last_model"
    write_atomically(record, (str(Path(path).expanduser().resolve()) + "\n").encode("utf-8"))
    return record


def default_model_path(command: str = "serve") -> Path:
    """The model recorded by the last ``anynet train``; :class:`NoModelError` with advice if none
    (``command`` is the ``anynet`` command the advice names)."""
    record = anynet_home() / "last_model"
    hint = (
        "train one with `anynet train` (it records the file it saves) "
        f"or pass a model file: `anynet {command} --model FILE`"
    )
    if not record.is_file():
        raise NoModelError(f"no model given and none recorded in {record}; {hint}")
    text = record.read_text(encoding="utf-8").strip()
    if not text:
        raise NoModelError(f"{record} is empty; {hint}")
    path = Path(text).expanduser()
    if not path.is_file():
        raise NoModelError(f"the last trained model {path} (named in {record}) no longer exists; {hint}")
    return path
