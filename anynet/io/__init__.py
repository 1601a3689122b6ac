"""Files: the model format, checks on untrusted files, and the one atomic writer.

- :mod:`.files`         :func:`write_atomically` (temporary, fsync, rename; only regular files
  replaced; stale temporaries removed) and :func:`anynet_home`
- :mod:`.untrusted`     JSON from files, parsed with limits and checked against type hints
- :mod:`.architecture`  a file's declared architecture, checked without allocating it
- :mod:`.format`        the model file (safetensors + JSON): :func:`save_model`,
  :func:`read_model`, :func:`read_metadata`, :func:`model_file`

A model file becomes a network with :func:`anynet.load_model` (:mod:`anynet.network`, which
stands above this package: nothing here imports the network).
"""

from ..record import FORMAT
from .architecture import MAX_FEATURES, MAX_LAYERS, MAX_PARAMETERS
from .files import (
    STALE_TMP_SECONDS,
    WriteTargetError,
    anynet_home,
    check_writable_folder,
    check_write_target,
    write_atomically,
)
from .format import (
    MAX_FILE_BYTES,
    MAX_HEADER_BYTES,
    ModelFile,
    ModelFileError,
    ModelFileNotFoundError,
    looks_like_model,
    model_file,
    read_metadata,
    read_model,
    save_model,
    weights_digest,
)
from .untrusted import MAX_JSON_DEPTH

__all__ = [
    "FORMAT",
    "MAX_FEATURES",
    "MAX_FILE_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_LAYERS",
    "MAX_PARAMETERS",
    "STALE_TMP_SECONDS",
    "ModelFile",
    "ModelFileError",
    "ModelFileNotFoundError",
    "WriteTargetError",
    "anynet_home",
    "check_writable_folder",
    "check_write_target",
    "looks_like_model",
    "model_file",
    "read_metadata",
    "read_model",
    "save_model",
    "weights_digest",
    "write_atomically",
]
