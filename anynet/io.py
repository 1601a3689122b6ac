"""Saving and loading models: weights in safetensors (a format that cannot run code) with the
architecture, class table, preprocessing and anynet version as JSON in its metadata.

Files are written atomically (a temporary ``.<name>.<pid>@<host>.XXXXXXXX.tmp`` in the same
folder, then ``os.replace``), so a crash never leaves half a model behind. Only a regular file
(or nothing) at the path is replaced: a folder, FIFO, device, socket or symbolic link there is
refused with a :class:`WriteTargetError`. Write errors name the file and keep their ``errno``.
Each write first removes the temporaries earlier writes of the same file left behind when they
were killed (their process is gone; see :func:`write_atomically`). Loading never uses pickle.

A model file is treated as hostile until checked. :func:`load_model` reads the safetensors
header itself and, before anything is allocated for the network, checks:

- the path: a regular file (not a folder, not a save's temporary) of at most
  :data:`MAX_FILE_BYTES`; a header of at most :data:`MAX_HEADER_BYTES` of JSON nested at most
  :data:`MAX_JSON_DEPTH` deep;
- the metadata: a JSON object, format ``anynet-model/1`` (a newer one is named as such), and
  the types of every field it uses;
- the architecture: known layer kinds (``anynet.layers.LAYERS``), each layer's config against
  its class's constructor (parameter names and annotated types), per-sample shapes of at most
  :data:`MAX_FEATURES` values, and at most :data:`MAX_PARAMETERS` parameters in all, counted
  from the shapes each layer's ``init_params`` declares (drawn from a generator that allocates
  nothing);
- the tensors: names ``layers.<i>.<param>``, float dtypes only (F16, F32, F64), offsets that tile
  the data exactly.

Then it builds the network, requires exactly its parameters with their shapes, reads the
weights, checks the ``weights_sha256`` checksum (files from 0.1.0 have none) and refuses
non-finite values. Every failure is a :class:`ModelFileError` (a ``ValueError``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import operator
import os
import re
import socket
import stat
import tempfile
import time
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .network import Network
from .record import FORMAT, ModelInfo, Preprocessing, TrainingSummary

__all__ = [
    "FORMAT",
    "MAX_FILE_BYTES",
    "MAX_PARAMETERS",
    "ModelFileError",
    "ModelFileNotFoundError",
    "WriteTargetError",
    "check_write_target",
    "load_model",
    "looks_like_model",
    "model_file",
    "read_metadata",
    "save_model",
    "weights_digest",
    "write_atomically",
]

#: the largest model file read (100 M float64 parameters and a header fit)
MAX_FILE_BYTES = 2**30
#: the largest safetensors header (JSON: tensor table and anynet metadata)
MAX_HEADER_BYTES = 16 * 2**20
#: the most parameters a model file may declare
MAX_PARAMETERS = 100_000_000
#: the most values per sample at any layer's input or output
MAX_FEATURES = 2**24
#: the most layers, and the deepest JSON nesting, a model file may have
MAX_LAYERS = 1_000
MAX_JSON_DEPTH = 32
#: temporaries of interrupted saves whose writer cannot be checked (another host, or an old
#: name without the writer's process id) are removed by the next save once this old
STALE_TMP_SECONDS = 60.0

_DTYPES: dict[str, np.dtype] = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_CODES = {(kind, size): code for code, dt in _DTYPES.items() for kind, size in [(dt.kind, dt.itemsize)]}
_NAME = re.compile(r"layers\.(0|[1-9][0-9]{0,5})\.([A-Za-z_][A-Za-z0-9_]{0,63})")
_FORMAT = re.compile(r"anynet-model/([1-9][0-9]{0,5})")
# a write's temporary: ``.<target>.<pid>@<host>.<8 random characters of mkstemp>.tmp``, or
# ``.<target>.<8 random>.tmp`` as anynet 0.1.0 named them, before the process id was added
_TMP = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")
_TMP_PID = re.compile(
    r"\.(?P<target>.+)\.(?P<pid>[1-9][0-9]{0,9})@(?P<host>[A-Za-z0-9._-]{1,64})\.[a-z0-9_]{8}\.tmp"
)
_RESERVED = ("format", "anynet_version", "config", "weights_sha256")


class ModelFileError(ValueError):
    """A model file is missing, corrupt, truncated, hostile, or not an anynet model."""


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """There is no model file at the path given."""


class WriteTargetError(OSError):
    """The path to write holds something anynet will not replace: not a regular file."""


# --------------------------------------------------------------------------- saving


def save_model(model: Network, path, **extra) -> Path:
    """Write ``model`` to ``path`` (``.safetensors`` is the usual suffix); returns the path.

    ``extra`` (JSON-able) is stored beside the architecture, e.g. ``preprocessing`` or metrics.
    The metadata also holds ``weights_sha256`` (see :func:`weights_digest`). Non-finite weights
    are refused: such a model could not be loaded back.
    """
    from safetensors.numpy import save

    from . import __version__

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


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary in the same folder, flushed to disk and
    renamed over the old file: a crash leaves the old file or the new one, never half of one.

    Only a regular file (or nothing) at ``path`` is replaced; anything else there is refused
    with a :class:`WriteTargetError`, checked before the temporary is written and again right
    before the rename. Other failures raise an ``OSError`` that names ``path`` and keeps the
    ``errno`` (e.g. ``errno.ENOSPC`` for a full disk); the old file stays as it was. Before
    writing, temporaries of earlier writes of ``path`` whose process is gone are removed.
    """
    path = Path(path)
    try:
        check_write_target(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in _stale_temporaries(path):
            stale.unlink(missing_ok=True)
        _write_and_rename(path, data)
    except WriteTargetError:
        raise
    except OSError as exc:
        raise _naming(exc, path) from exc


def _write_and_rename(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make the model private
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        check_write_target(path)  # again: something else may have been put there meanwhile
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` as an ``OSError`` (of the same subclass and ``errno``) that names ``path``."""
    if exc.errno is None:
        return OSError(f"cannot write {path}: {exc}")
    return OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}")


def check_write_target(path) -> None:
    """Raise :class:`WriteTargetError` unless ``path`` is a regular file or absent (a symbolic
    link is refused, whatever it points to: :func:`write_atomically` would replace the link)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode):
        return
    raise WriteTargetError(
        f"{path} is {_file_kind(path, st.st_mode)}, not a regular file; anynet replaces only regular files"
    )


def _file_kind(path, mode: int) -> str:
    if stat.S_ISLNK(mode):
        try:
            return f"a symbolic link (to {os.readlink(path)})"
        except OSError:
            return "a symbolic link"
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _host() -> str:
    """This machine's name as it goes into temporaries' names."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64] or "localhost"


def _temporary_prefix(path: Path) -> str:
    """``.<name>.<pid>@<host>.`` (just ``.<name>.`` for a name too long to take more)."""
    prefix = f".{path.name}.{os.getpid()}@{_host()}."
    return prefix if len(os.fsencode(prefix)) + 12 <= 255 else f".{path.name}."


def _temporary_of(name: str) -> tuple[str, int | None, str | None] | None:
    """The target, writer's process id and host of a temporary's file name (``None`` for
    the two of an old-style name), or ``None`` when ``name`` is no temporary of ours."""
    match = _TMP_PID.fullmatch(name)
    if match:
        return match["target"], int(match["pid"]), match["host"]
    match = _TMP.fullmatch(name)
    return (match["target"], None, None) if match else None


def _temporaries(path: Path) -> list[tuple[Path, int | None, str | None]]:
    """The temporaries written for ``path`` (by this or another process), with their
    writer's process id and host where the name has them."""
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    found = []
    for name in sorted(names):
        parsed = _temporary_of(name)
        if parsed and parsed[0] == path.name:
            found.append((path.parent / name, parsed[1], parsed[2]))
    return found


def _stale_temporaries(path: Path) -> list[Path]:
    """The temporaries of ``path`` left by writes that will never finish: their process is
    gone; where that cannot be checked (another host, an old-style name), older than
    :data:`STALE_TMP_SECONDS`."""
    stale, now = [], time.time()
    for tmp, pid, host in _temporaries(path):
        alive = _process_alive(pid) if pid is not None and host == _host() else None
        if alive is None:
            try:
                alive = now - tmp.lstat().st_mtime < STALE_TMP_SECONDS
            except OSError:
                continue
        if not alive:
            stale.append(tmp)
    return stale


def _process_alive(pid: int) -> bool | None:
    """Whether process ``pid`` exists on this machine (``None``: cannot tell)."""
    if os.name == "nt":  # os.kill would terminate it there
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    except (OSError, OverflowError):
        return None
    return True


# --------------------------------------------------------------------------- loading


def model_file(path) -> Path:
    """``path`` checked as a model file to open: a regular file, not a save's temporary, not
    above :data:`MAX_FILE_BYTES`; otherwise a :class:`ModelFileError` that says what to do."""
    path = Path(path).expanduser()
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.safetensors"))[:3]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise ModelFileError(f"{path} is a folder, not a model file; give the .safetensors file{hint}")
    parsed = _temporary_of(path.name)
    if parsed:
        raise ModelFileError(
            f"{path} is a temporary file left by an interrupted save of "
            f"{path.with_name(parsed[0])}, not a model; save the model again"
        )
    if not path.exists():
        temps = _temporaries(path)
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
        meta = _json(text, ModelFileError) if isinstance(text, str) else None
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
    _plan(meta["config"], path)
    return meta


def load_model(path, backend="cpu", dtype=None) -> Network:
    """Load a model saved by :func:`save_model` onto ``backend`` (any backend, whatever it was
    trained on); ``dtype`` overrides the stored one. See the module docstring for the checks."""
    from .backend import get_backend

    backend = get_backend(backend)
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    path = model_file(path)
    with _open(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_FILE_BYTES:  # it grew since model_file() looked
            raise _too_big(path, size)
        header, start = _read_header(f, path, size)
        meta = _metadata(header, path)
        _plan(meta["config"], path)
        table = _tensor_table(header, path, size - start)
        model = _build(meta["config"], backend, dtype, path)
        _match(table, model, path)
        tensors = _read_tensors(f, table, size - start, path)
    _verify(tensors, meta, path)
    weights: list[dict] = [{} for _ in model.layers]
    for name, value in tensors.items():
        _, index, param = name.split(".")
        weights[int(index)][param] = value
    model.set_weights(weights)
    model.info = ModelInfo.from_metadata(meta, path=str(path))
    return model


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
    header = _json(f.read(n), lambda why: _unreadable(path, why))
    if not isinstance(header, dict):
        raise _unreadable(path, f"the header is a JSON {_kind(header)}, not an object")
    return header, 8 + n


def _json(raw, fail) -> Any:
    """Parse untrusted JSON: UTF-8, no duplicate keys, nested at most MAX_JSON_DEPTH deep."""

    def unique(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
        return dict(pairs)

    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, object_pairs_hook=unique)
    except RecursionError:
        raise fail(f"JSON nested more than {MAX_JSON_DEPTH} deep") from None
    except ValueError as exc:  # also UnicodeDecodeError, JSONDecodeError, over-long integers
        raise fail(f"not valid JSON: {exc}") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise fail(f"JSON nested more than {MAX_JSON_DEPTH} deep")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return value


def _kind(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------- metadata schema


def _metadata(header: dict, path: Path) -> dict:
    """The anynet metadata of a safetensors header, checked against the record's schema."""
    section = header.get("__metadata__")
    text = section.get("anynet") if isinstance(section, dict) else None
    if text is None:
        raise ModelFileError(f"{path}: a safetensors file, but not an anynet model (no 'anynet' metadata)")

    def fail(why):
        return ModelFileError(f"{path}: the anynet metadata is {why}")

    meta = _json(text if isinstance(text, str) else "", fail)
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: the anynet metadata must be a JSON object (got: {_kind(meta)})")
    _check_format(meta.get("format"), path)
    _check_record(meta, path)
    return meta


def _check_format(fmt, path: Path) -> None:
    from . import __version__

    match = _FORMAT.fullmatch(fmt) if isinstance(fmt, str) else None
    current = int(FORMAT.rsplit("/", 1)[1])
    if match and int(match[1]) > current:
        raise ModelFileError(
            f"{path} was written by a newer anynet (model format {fmt!r}; anynet "
            f"{__version__} reads {FORMAT!r}): upgrade anynet to load it"
        )
    if not match or int(match[1]) != current:
        raise ModelFileError(f"{path}: unsupported model format {_short(fmt)} (expected {FORMAT!r})")


def _check_record(meta: dict, path: Path) -> None:
    """The types of the fields :meth:`ModelInfo.from_metadata` reads (unknown keys are kept)."""
    for key, hint in (
        ("anynet_version", str | None),
        ("weights_sha256", str | None),
        ("preprocessing", dict | None),
        ("info", dict | None),
        ("config", dict),
    ):
        if not _matches(meta.get(key), hint):
            raise ModelFileError(
                f"{path}: metadata {key!r} should be {_hint_name(hint)}, got {_short(meta.get(key))}"
            )
    _check_fields(Preprocessing, meta.get("preprocessing") or {}, "preprocessing", path)
    info = meta.get("info") or {}
    _check_fields(ModelInfo, {k: v for k, v in info.items() if v is not None}, "info", path)
    _check_fields(TrainingSummary, info.get("training") or {}, "info.training", path)


def _check_fields(cls, data: dict, where: str, path: Path) -> None:
    """Every key of ``data`` that is a field of dataclass ``cls`` has that field's type."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in data and not _matches(data[f.name], hints[f.name]):
            raise ModelFileError(
                f"{path}: metadata {where}.{f.name} should be "
                f"{_hint_name(hints[f.name])}, got {_short(data[f.name])}"
            )


def _matches(value, hint) -> bool:
    """Whether JSON ``value`` fits type ``hint`` (int / float / str / bool, ``X | None``,
    ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``, ``Literal``); other hints pass."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None) or hint is None:
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(type(value) is type(a) and value == a for a in args)
    if hint in (list, tuple) or origin in (list, tuple):
        if not isinstance(value, list):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(_matches, value, args))
        return not args or all(_matches(v, args[0]) for v in value)
    if hint is dict or origin is dict:
        return isinstance(value, dict) and (
            not args or all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
        )
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    simple = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}.get(hint)
    if simple is None:
        return True
    return isinstance(value, simple) and (hint is bool or not isinstance(value, bool))


def _hint_name(hint) -> str:
    if typing.get_origin(hint) is None and isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("anynet.record.", "")


# --------------------------------------------------------------------------- architecture


def _plan(config: dict, path: Path) -> int:
    """Check the declared architecture without allocating it; returns its parameter count."""

    def fail(why):
        return ModelFileError(f"{path}: invalid architecture: {why}")

    layers = config.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise fail(f"'layers' should be a list of 1 to {MAX_LAYERS} layers, got {_short(layers)}")
    _check_settings(config, fail)
    shape, total = _check_shape(config.get("input_shape"), "input_shape", fail), 0
    for i, entry in enumerate(layers):
        layer = _layer(i, entry, fail)
        name = f"layer {i} ({type(layer).__name__})"
        try:
            layer.input_shape = shape
            out = tuple(operator.index(d) for d in layer.output_shape(shape))
        except Exception as exc:
            raise fail(f"{name} cannot take inputs of shape {shape}: {exc}") from None
        out = _check_shape(out, f"{name} output", fail)
        total += _count_parameters(layer, shape, MAX_PARAMETERS - total, name, fail)
        shape = out
    if len(shape) != 1:
        raise fail(f"the last layer must give flat outputs (classes), got per-sample shape {shape}")
    classes = config.get("classes")
    if classes is not None and len(classes) != shape[0]:
        raise fail(f"{len(classes)} class names for a network with {shape[0]} outputs")
    return total


def _check_settings(config: dict, fail) -> None:
    from .losses import get_loss

    checks = (
        ("loss", str),
        ("loss_options", dict[str, float]),
        ("classes", list[str] | None),
        ("dtype", typing.Literal["float32", "float64"]),
        ("seed", int),
    )
    for key, hint in checks:
        if key in config and not _matches(config[key], hint):
            raise fail(f"{key!r} should be {_hint_name(hint)}, got {_short(config[key])}")
    if not 0 <= config.get("seed", 0) < 2**64:
        raise fail(f"'seed' should be in [0, 2**64), got {_short(config['seed'])}")
    try:
        get_loss(config.get("loss", ""), config.get("loss_options"))
    except ValueError as exc:
        raise fail(str(exc)) from None


def _check_shape(shape, what: str, fail) -> tuple[int, ...]:
    """A per-sample shape: 1 to 8 positive integers, at most MAX_FEATURES values in all."""
    shape = list(shape) if isinstance(shape, tuple) else shape
    if not _matches(shape, list[int]) or not 1 <= len(shape) <= 8 or min(shape) < 1:
        raise fail(f"{what} should be 1 to 8 positive integers, got {_short(shape)}")
    if math.prod(shape) > MAX_FEATURES:
        raise fail(
            f"{what} {_short(list(shape))} has {math.prod(shape):,} values per sample, "
            f"above the limit of {MAX_FEATURES:,} (anynet.io.MAX_FEATURES)"
        )
    return tuple(shape)


def _layer(i: int, entry, fail):
    """A layer from ``{"type", "config"}``, its config checked against its class's constructor."""
    from .layers import LAYERS

    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("type"), str)
        and isinstance(entry.get("config", {}), dict)
    ):
        raise fail(f"layer {i} should be {{'type': name, 'config': {{...}}}}, got {_short(entry)}")
    kind, config = entry["type"], entry.get("config", {})
    cls = LAYERS.get(kind)
    if cls is None:
        raise fail(f"layer {i}: unknown layer type {_short(kind)}; known: {', '.join(sorted(LAYERS))}")
    signature = inspect.signature(cls)
    try:
        signature.bind(**config)
    except TypeError as exc:
        raise fail(
            f"layer {i} ({kind}): config {_short(config)} does not fit {kind}{signature}: {exc}"
        ) from None
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:
        hints = {}
    for key, value in config.items():
        if key in hints and not _matches(value, hints[key]):
            raise fail(f"layer {i} ({kind}): {key}={_short(value)} should be {_hint_name(hints[key])}")
        if not _finite(value):
            raise fail(f"layer {i} ({kind}): {key}={_short(value)} is not finite")
    try:
        return cls(**config)
    except Exception as exc:
        raise fail(f"layer {i} ({kind}): {exc}") from None


def _finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(map(_finite, value))
    return not isinstance(value, dict) or all(map(_finite, value.values()))


def _count_parameters(layer, shape: tuple, budget: int, name: str, fail) -> int:
    """The parameters ``layer.init_params`` declares for ``shape``, drawn from a generator that
    allocates nothing and refuses a draw beyond ``budget``, and the buffers it keeps."""
    from .backend import get_backend

    backend = get_backend("cpu")
    layer.backend, layer.xp, layer.dtype = backend, backend.xp, backend.float_dtype("float32")
    try:
        params = layer.init_params(_ShapeProbe(budget))
        buffers = layer.init_buffers() if hasattr(layer, "init_buffers") else {}
        count = sum(math.prod(np.shape(p)) for p in [*params.values(), *buffers.values()])
    except _OverBudget:
        count = budget + 1
    except Exception as exc:
        raise fail(f"{name} cannot make its parameters for inputs of shape {shape}: {exc}") from None
    if count > budget:
        raise fail(f"more than {MAX_PARAMETERS:,} parameters (at {name}; anynet.io.MAX_PARAMETERS)")
    return count


class _OverBudget(Exception):
    pass


class _ShapeProbe:
    """Stands in for ``numpy.random.Generator`` in ``init_params``: a draw of ``size`` values
    is a writable zero-stride view of that shape (nothing allocated), after checking the budget."""

    #: where each sampling method takes ``size`` when it is given positionally
    _SIZE_AT: typing.ClassVar[dict[str, int]] = {
        "normal": 2,
        "uniform": 2,
        "integers": 2,
        "laplace": 2,
        "lognormal": 2,
        "gamma": 2,
        "beta": 2,
        "binomial": 2,
        "standard_normal": 0,
        "random": 0,
        "standard_exponential": 0,
        "standard_cauchy": 0,
        "exponential": 1,
        "poisson": 1,
        "standard_t": 1,
        "choice": 1,
    }

    def __init__(self, budget: int):
        self.budget, self._rng = budget, np.random.default_rng(0)

    def __getattr__(self, name):
        method, at = getattr(self._rng, name), self._SIZE_AT.get(name)
        if at is None:
            return method

        def draw(*args, **kwargs):
            size = kwargs.pop("size", args[at] if len(args) > at else None)
            value = method(*args[:at], **kwargs)
            if size is None:
                return value
            shape = tuple(int(d) for d in np.atleast_1d(size))
            self.budget -= math.prod(shape)
            if self.budget < 0:
                raise _OverBudget
            return as_strided(np.array(value), shape, (0,) * len(shape), writeable=True)

        return draw


def _build(config: dict, backend, dtype, path: Path) -> Network:
    try:
        return Network.from_config(config, backend=backend, dtype=dtype)
    except (KeyError, ValueError, TypeError, IndexError, OverflowError) as exc:
        raise ModelFileError(f"{path}: invalid architecture: {exc}") from None


# --------------------------------------------------------------------------- tensors


def _tensor_table(header: dict, path: Path, data_len: int) -> dict[str, tuple]:
    """``name -> (dtype, shape, begin, end)`` for every tensor; offsets must tile the data."""
    table = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not _NAME.fullmatch(name):
            raise ModelFileError(
                f"{path}: the weights do not match the stored architecture "
                f"(tensor name {_short(name)} is not layers.<index>.<parameter>)"
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
        raise _unreadable(path, f"tensor {name}: expected dtype, shape and data_offsets, got {_short(entry)}")
    dtype = _DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    if dtype is None:
        raise ModelFileError(
            f"{path}: tensor {name} has dtype {_short(entry['dtype'])}; anynet "
            f"weights are float tensors ({', '.join(_DTYPES)})"
        )
    shape, offsets = entry["shape"], entry["data_offsets"]
    if not _matches(shape, list[int]) or len(shape) > 8 or any(d < 0 for d in shape):
        raise _unreadable(path, f"tensor {name} has shape {_short(shape)}")
    if not _matches(offsets, tuple[int, int]) or not 0 <= offsets[0] <= offsets[1]:
        raise _unreadable(path, f"tensor {name} has data_offsets {_short(offsets)}")
    if offsets[1] > data_len:
        raise _unreadable(path, f"tensor {name} lies beyond the end of the file")
    if math.prod(shape) * dtype.itemsize != offsets[1] - offsets[0]:
        raise _unreadable(
            path, f"tensor {name} of shape {shape} does not fill its {offsets[1] - offsets[0]:,} bytes"
        )
    return dtype, tuple(shape), offsets[0], offsets[1]


def _match(table: dict, model: Network, path: Path) -> None:
    """The file holds exactly the built network's parameters, with their shapes."""
    want = {
        f"layers.{i}.{name}": tuple(p.shape)
        for i, layer in enumerate(model.layers)
        for name, p in getattr(layer, "state", layer.params).items()
    }
    missing, extra = sorted(set(want) - set(table)), sorted(set(table) - set(want))
    wrong = [
        f"{n} is {list(table[n][1])}, expected {list(want[n])}"
        for n in sorted(set(want) & set(table))
        if table[n][1] != want[n]
    ]
    problems = (
        ([f"missing tensors {', '.join(missing[:5])}"] if missing else [])
        + ([f"unexpected tensors {', '.join(map(_short, extra[:5]))}"] if extra else [])
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
