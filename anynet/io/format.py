"""The model file: weights in safetensors (a format that cannot run code) with the architecture,
class table, preprocessing and anynet version as JSON in its metadata. Nothing is pickled.

A model file is treated as hostile until checked. :func:`read_model` reads the safetensors
header itself and, before anything is allocated for the weights, checks:

- the path: a regular file (not a folder, not a save's temporary) of at most
  :data:`MAX_FILE_BYTES`; a header of at most :data:`MAX_HEADER_BYTES` of JSON nested at most
  :data:`~anynet.io.untrusted.MAX_JSON_DEPTH` deep;
- the metadata: a JSON object, format ``anynet-model/1`` (a newer one is named as such), and
  the types of every field it uses;
- the architecture (:mod:`.architecture`): known layers and their settings, and the
  parameters' names and shapes, without allocating them;
- the tensors: names ``layers.<i>.<param>``, float dtypes only (F16, F32, F64), offsets that tile
  the data exactly, exactly the architecture's parameters with their shapes.

Then it reads the weights, checks the ``weights_sha256`` checksum (files from 0.1.0 have none)
and refuses non-finite values. Every failure is a :class:`ModelFileError` (a ``ValueError``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save

from .._version import __version__
from ..record import FORMAT, ModelInfo, Preprocessing, TrainingSummary
from .architecture import check_architecture
from .files import temporaries, temporary_of, write_atomically
from .untrusted import hint_name, kind_of, matches, parse_json, short

__all__ = [
    "FORMAT",
    "MAX_FILE_BYTES",
    "MAX_HEADER_BYTES",
    "ModelFile",
    "ModelFileError",
    "ModelFileNotFoundError",
    "looks_like_model",
    "model_file",
    "read_metadata",
    "read_model",
    "save_model",
    "weights_digest",
]

#: the largest model file read (100 M float64 parameters and a header fit)
MAX_FILE_BYTES = 2**30

#: the largest safetensors header (JSON: tensor table and anynet metadata)
MAX_HEADER_BYTES = 16 * 2**20

_DTYPES: dict[str, np.dtype] = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8")}

_CODES = {(kind, size): code for code, dt in _DTYPES.items() for kind, size in [(dt.kind, dt.itemsize)]}

_NAME = re.compile(r"layers\.(0|[1-9][0-9]{0,5})\.([A-Za-z_][A-Za-z0-9_]{0,63})")

_FORMAT = re.compile(r"anynet-model/([1-9][0-9]{0,5})")

_RESERVED = ("format", "anynet_version", "config", "weights_sha256")


class ModelFileError(ValueError):
    """A model file is missing, corrupt, truncated, hostile, or not an anynet model."""


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """There is no model file at the path given."""


@dataclass
class ModelFile:
    """A checked model file: its metadata (``config`` is the architecture) and its weights, one
    ``{name: host array}`` per layer."""

    path: Path
    meta: dict
    weights: list[dict[str, np.ndarray]]

    @property
    def config(self) -> dict:
        return self.meta["config"]

    @property
    def info(self) -> ModelInfo:
        return ModelInfo.from_metadata(self.meta, path=str(self.path))


# --------------------------------------------------------------------------- saving


def save_model(model: Any, path, **extra) -> Path:
    """Write ``model`` (a built :class:`~anynet.network.Network`) to ``path``
    (``.safetensors`` is the usual suffix); returns the path.

    ``extra`` (JSON-able) is stored beside the architecture, e.g. ``preprocessing`` or metrics.
    The metadata also holds ``weights_sha256`` (see :func:`weights_digest`). Non-finite weights
    are refused: such a model could not be loaded back.
    """
    if not model.built:
        raise ValueError("cannot save a network without weights: fit or build it first")
    if clash := [k for k in extra if k in _RESERVED]:
        raise ValueError(f"save_model: {', '.join(clash)} cannot be given as extra metadata")
    tensors = {
        f"layers.{i}.{name}": np.ascontiguousarray(w)
        for i, layer in enumerate(model.get_weights())
        for name, w in layer.items()
    }
    if bad := [name for name, w in tensors.items() if not np.isfinite(w).all()]:
        raise ValueError(f"cannot save a network with non-finite weights (NaN or inf) in {', '.join(bad)}")
    meta = {
        "format": FORMAT,
        "anynet_version": __version__,
        "config": model.get_config(),
        **model.info.to_metadata(),
        **extra,
        "weights_sha256": weights_digest(tensors),
    }
    path = Path(path)
    write_atomically(path, save(tensors, metadata={"anynet": json.dumps(meta)}))
    return path


def weights_digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 (hex) of the tensors in canonical order (layer index, then parameter name): for
    each, ``"<name> <F32|F64|F16> <d1,d2,...>\\n"`` then its little-endian C-order bytes."""
    h = hashlib.sha256()
    for name in sorted(tensors, key=_sort_key):
        w = np.asarray(tensors[name])
        code = _CODES.get((w.dtype.kind, w.dtype.itemsize), w.dtype.str)
        h.update(f"{name} {code} {','.join(map(str, w.shape))}\n".encode())
        h.update(np.ascontiguousarray(w, dtype=w.dtype.newbyteorder("<")).reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    return h.hexdigest()


def _sort_key(name: str) -> tuple[int, str]:
    index, _, param = name.removeprefix("layers.").partition(".")
    return (int(index) if index.isdigit() else -1, param)


# --------------------------------------------------------------------------- reading


def model_file(path) -> Path:
    """``path`` checked as a model file to open: a regular file, not a save's temporary, not
    above :data:`MAX_FILE_BYTES`; otherwise a :class:`ModelFileError` that says what to do."""
    path = Path(path).expanduser()
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.safetensors"))[:3]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise ModelFileError(f"{path} is a folder, not a model file; give the .safetensors file{hint}")
    parsed = temporary_of(path.name)
    if parsed:
        raise ModelFileError(
            f"{path} is a temporary file left by an interrupted save of "
            f"{path.with_name(parsed[0])}, not a model; save the model again"
        )
    if not path.exists():
        temps = temporaries(path)
        hint = (
            (
                f" ({temps[0][0].name} is there: a temporary file left by an interrupted save, "
                "not a model; save the model again)"
            )
            if temps
            else ""
        )
        raise ModelFileNotFoundError(f"no such model file: {path}{hint}")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a regular file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _too_big(path, size)
    return path


def looks_like_model(path) -> bool:
    """Whether ``path`` is a regular file whose safetensors header holds anynet model metadata
    (of any format version): a quick look at the header, not the checks of :func:`read_metadata`."""
    path = Path(path)
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as f:
            header, _ = _read_header(f, path, os.fstat(f.fileno()).st_size)
        section = header.get("__metadata__")
        text = section.get("anynet") if isinstance(section, dict) else None
        meta = parse_json(text, ModelFileError) if isinstance(text, str) else None
    except (OSError, ModelFileError):
        return False
    fmt = meta.get("format") if isinstance(meta, dict) else None
    return isinstance(fmt, str) and _FORMAT.fullmatch(fmt) is not None


def _too_big(path: Path, size: int) -> ModelFileError:
    return ModelFileError(
        f"{path} is {size:,} bytes, above the {MAX_FILE_BYTES:,}-byte limit "
        "for a model file (anynet.io.MAX_FILE_BYTES)"
    )


def read_metadata(path) -> dict:
    """The checked JSON metadata of a model file (architecture, classes, version, ...)."""
    path = model_file(path)
    with _open(path) as f:
        header, _ = _read_header(f, path, path.stat().st_size)
    meta = _metadata(header, path)
    check_architecture(meta["config"], _invalid(path))
    return meta


def read_model(path: Any) -> ModelFile:
    """The checked contents of a model file (see the module for the checks)."""
    path = model_file(path)
    with _open(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_FILE_BYTES:  # it grew since model_file() looked
            raise _too_big(path, size)
        header, start = _read_header(f, path, size)
        meta = _metadata(header, path)
        expected = check_architecture(meta["config"], _invalid(path))
        table = _tensor_table(header, path, size - start)
        _match(table, expected, path)
        tensors = _read_tensors(f, table, size - start, path)
    _verify(tensors, meta, path)
    weights: list[dict[str, np.ndarray]] = [{} for _ in meta["config"]["layers"]]
    for name, value in tensors.items():
        _, index, param = name.split(".")
        weights[int(index)][param] = value
    return ModelFile(path, meta, weights)


def _invalid(path: Path):
    return lambda why: ModelFileError(f"{path}: invalid architecture: {why}")


def _open(path: Path):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _unreadable(path: Path, why: str) -> ModelFileError:
    return ModelFileError(f"{path}: not a readable safetensors file (corrupt or truncated: {why})")


def _read_header(f, path: Path, size: int) -> tuple[dict, int]:
    """The safetensors header (JSON object) and where the tensor data starts."""
    head = f.read(8)
    if len(head) < 8:
        raise _unreadable(path, f"{len(head)} bytes, shorter than a safetensors header")
    n = int.from_bytes(head, "little")
    if n > MAX_HEADER_BYTES:
        raise _unreadable(path, f"the header claims {n:,} bytes, above the {MAX_HEADER_BYTES:,}-byte limit")
    if 8 + n > size:
        raise _unreadable(path, f"the header claims {n:,} bytes, the file has {size - 8:,} after the length")
    header = parse_json(f.read(n), lambda why: _unreadable(path, why))
    if not isinstance(header, dict):
        raise _unreadable(path, f"the header is a JSON {kind_of(header)}, not an object")
    return header, 8 + n


def _metadata(header: dict, path: Path) -> dict:
    """The anynet metadata of a safetensors header, checked against the record's schema."""
    section = header.get("__metadata__")
    text = section.get("anynet") if isinstance(section, dict) else None
    if text is None:
        raise ModelFileError(f"{path}: a safetensors file, but not an anynet model (no 'anynet' metadata)")

    def fail(why):
        return ModelFileError(f"{path}: the anynet metadata is {why}")

    meta = parse_json(text if isinstance(text, str) else "", fail)
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: the anynet metadata must be a JSON object (got: {kind_of(meta)})")
    _check_format(meta.get("format"), path)
    _check_record(meta, path)
    return meta


def _check_format(fmt, path: Path) -> None:
    match = _FORMAT.fullmatch(fmt) if isinstance(fmt, str) else None
    current = int(FORMAT.rsplit("/", 1)[1])
    if match and int(match[1]) > current:
        raise ModelFileError(
            f"{path} was written by a newer anynet (model format {fmt!r}; anynet "
            f"{__version__} reads {FORMAT!r}): upgrade anynet to load it"
        )
    if not match or int(match[1]) != current:
        raise ModelFileError(f"{path}: unsupported model format {short(fmt)} (expected {FORMAT!r})")


def _check_record(meta: dict, path: Path) -> None:
    """The types of the fields :meth:`ModelInfo.from_metadata` reads (unknown keys are kept)."""
    for key, hint in (
        ("anynet_version", str | None),
        ("weights_sha256", str | None),
        ("preprocessing", dict | None),
        ("info", dict | None),
        ("config", dict),
    ):
        if not matches(meta.get(key), hint):
            raise ModelFileError(
                f"{path}: metadata {key!r} should be {hint_name(hint)}, got {short(meta.get(key))}"
            )
    _check_fields(Preprocessing, meta.get("preprocessing") or {}, "preprocessing", path)
    info = meta.get("info") or {}
    _check_fields(ModelInfo, {k: v for k, v in info.items() if v is not None}, "info", path)
    _check_fields(TrainingSummary, info.get("training") or {}, "info.training", path)


def _check_fields(cls, data: dict, where: str, path: Path) -> None:
    """Every key of ``data`` that is a field of dataclass ``cls`` has that field's type."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in data and not matches(data[f.name], hints[f.name]):
            raise ModelFileError(
                f"{path}: metadata {where}.{f.name} should be "
                f"{hint_name(hints[f.name])}, got {short(data[f.name])}"
            )


def _tensor_table(header: dict, path: Path, data_len: int) -> dict[str, tuple]:
    """``name -> (dtype, shape, begin, end)`` for every tensor; offsets must tile the data."""
    table = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not _NAME.fullmatch(name):
            raise ModelFileError(
                f"{path}: the weights do not match the stored architecture "
                f"(tensor name {short(name)} is not layers.<index>.<parameter>)"
            )
        table[name] = _tensor_entry(name, entry, path, data_len)
    end = 0
    for name, (_, _, begin, stop) in sorted(table.items(), key=lambda item: item[1][2:]):
        if begin != end:
            raise _unreadable(path, f"tensor {name} starts at byte {begin:,} of the data, expected {end:,}")
        end = stop
    if end != data_len:
        raise _unreadable(path, f"the tensors end at byte {end:,} of {data_len:,} bytes of data")
    return table


def _tensor_entry(name: str, entry, path: Path, data_len: int) -> tuple:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _unreadable(path, f"tensor {name}: expected dtype, shape and data_offsets, got {short(entry)}")
    dtype = _DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    if dtype is None:
        raise ModelFileError(
            f"{path}: tensor {name} has dtype {short(entry['dtype'])}; anynet "
            f"weights are float tensors ({', '.join(_DTYPES)})"
        )
    shape, offsets = entry["shape"], entry["data_offsets"]
    if not matches(shape, list[int]) or len(shape) > 8 or any(d < 0 for d in shape):
        raise _unreadable(path, f"tensor {name} has shape {short(shape)}")
    if not matches(offsets, tuple[int, int]) or not 0 <= offsets[0] <= offsets[1]:
        raise _unreadable(path, f"tensor {name} has data_offsets {short(offsets)}")
    if offsets[1] > data_len:
        raise _unreadable(path, f"tensor {name} lies beyond the end of the file")
    if math.prod(shape) * dtype.itemsize != offsets[1] - offsets[0]:
        raise _unreadable(
            path, f"tensor {name} of shape {shape} does not fill its {offsets[1] - offsets[0]:,} bytes"
        )
    return dtype, tuple(shape), offsets[0], offsets[1]


def _match(table: dict, want: dict[str, tuple[int, ...]], path: Path) -> None:
    """The file holds exactly the architecture's parameters and buffers, with their shapes."""
    missing, extra = sorted(set(want) - set(table)), sorted(set(table) - set(want))
    wrong = [
        f"{n} is {list(table[n][1])}, expected {list(want[n])}"
        for n in sorted(set(want) & set(table))
        if table[n][1] != want[n]
    ]
    problems = (
        ([f"missing tensors {', '.join(missing[:5])}"] if missing else [])
        + ([f"unexpected tensors {', '.join(map(short, extra[:5]))}"] if extra else [])
        + wrong[:5]
    )
    if problems:
        raise ModelFileError(
            f"{path}: the weights do not match the stored architecture ({'; '.join(problems)})"
        )


def _read_tensors(f, table: dict, data_len: int, path: Path) -> dict[str, np.ndarray]:
    data = bytearray(data_len)  # writable, so the arrays can become the network's parameters
    if f.readinto(data) != data_len:
        raise _unreadable(path, "the file ends before its tensor data")
    tensors = {}
    for name, (dtype, shape, begin, _) in table.items():
        array = np.frombuffer(data, dtype, math.prod(shape), begin).reshape(shape)
        tensors[name] = array if array.flags.aligned else array.copy()
    return tensors


def _verify(tensors: dict[str, np.ndarray], meta: dict, path: Path) -> None:
    """The stored checksum (when there is one) and finite values."""
    digest = meta.get("weights_sha256")
    if digest is not None and weights_digest(tensors) != digest:
        raise ModelFileError(
            f"{path}: the weights do not match their checksum (weights_sha256): "
            "the file was damaged or changed after it was saved"
        )
    for name in sorted(tensors, key=_sort_key):
        bad = int(np.count_nonzero(~np.isfinite(tensors[name])))
        if bad:
            raise ModelFileError(
                f"{path}: tensor {name} holds {bad:,} non-finite values (NaN or inf); "
                "the model cannot be used"
            )
