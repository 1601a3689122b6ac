"""Readers for the file formats MNIST-style data comes in, each validated strictly.

- IDX (``*-idx3-ubyte`` images, ``*-idx1-ubyte`` labels), gzipped or raw: the format of
  MNIST and EMNIST (http://yann.lecun.com/exdb/mnist/). Header, dimensions and the exact
  byte count are checked.
- Kaggle-style CSV: one image per row, ``label,p1,...,p784``, with or without a header row.
- The EMNIST mapping file: ``label unicode`` per line (``label upper lower`` for letters),
  CRLF or LF line ends.

Every problem raises :class:`DataError` naming the file and what is wrong. Nothing here
changes orientation: EMNIST images come back as stored (transposed); see
:func:`anynet.data.load` for upright images.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "DataError",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "read_idx_pair",
    "read_csv",
    "read_mapping",
]

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension


class DataError(ValueError):
    """A data file is missing, corrupt, truncated or does not hold what was expected."""


def _read_bytes(path) -> bytes:
    """The file's bytes, decompressed when it is gzip (by content, not by name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except EOFError:
            raise DataError(
                f"{path}: truncated gzip file ({len(raw)} bytes; the download was probably "
                "interrupted); delete it and fetch it again"
            ) from None
        except (OSError, zlib.error) as exc:  # BadGzipFile is an OSError; CRC errors too
            raise DataError(f"{path}: corrupt gzip file ({exc}); delete it and fetch it again") from None
    if path.suffix == ".gz":
        raise DataError(f"{path}: named .gz but is not a gzip file (starts with {raw[:4]!r})")
    return raw


def read_idx(path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (``.gz`` or raw) into a uint8 array of its shape.

    Checks the magic number (two zero bytes, type code 0x08 = uint8, number of dimensions),
    that no dimension is zero-sized when it should not be, and that the payload has exactly
    ``prod(dims)`` bytes.
    """
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: only {len(data)} bytes, too short for an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    magic = struct.unpack(">I", data[:4])[0]
    if zero != 0 or ndim == 0 or ndim > 4:
        raise DataError(
            f"{path}: bad IDX magic number {magic} (0x{magic:08x}); expected {IMAGES_MAGIC} "
            f"for images or {LABELS_MAGIC} for labels. Is this an IDX file?"
        )
    if dtype_code != 0x08:
        raise DataError(f"{path}: IDX type code 0x{dtype_code:02x} is not supported (only 0x08, unsigned byte)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"{path}: IDX file {what}: header says shape {tuple(dims)} = {expected} bytes, "
            f"file holds {len(data)} bytes"
        )
    # copy: a writable array that owns its memory (torch.asarray warns on read-only arrays)
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_idx_images(path, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Images ``(n, rows, cols)`` uint8 from an idx3 file (magic 2051), as stored.

    ``shape`` is the expected ``(rows, cols)``; ``None`` accepts any.
    """
    arr = read_idx(path)
    if arr.ndim != 3:
        raise DataError(
            f"{path}: expected an image file (magic {IMAGES_MAGIC}, 3 dimensions), "
            f"found {arr.ndim} dimension(s) {arr.shape}"
        )
    if shape is not None and arr.shape[1:] != tuple(shape):
        raise DataError(f"{path}: images are {arr.shape[1]}x{arr.shape[2]}, expected {shape[0]}x{shape[1]}")
    return arr


def read_idx_labels(path, num_classes: int | None = None, offset: int = 0) -> np.ndarray:
    """Labels int64 ``(n,)`` from an idx1 file (magic 2049), minus ``offset``.

    ``offset`` is the first label in the file (1 for EMNIST letters); labels come back
    counted from 0. With ``num_classes`` every label must lie in ``0 .. num_classes-1``
    after the shift.
    """
    arr = read_idx(path)
    if arr.ndim != 1:
        raise DataError(
            f"{path}: expected a label file (magic {LABELS_MAGIC}, 1 dimension), "
            f"found {arr.ndim} dimensions {arr.shape}"
        )
    labels = arr.astype(np.int64) - offset
    _check_labels(labels, num_classes, path, offset)
    return labels


def _check_labels(labels: np.ndarray, num_classes, path, offset: int = 0) -> None:
    if labels.size == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or (num_classes is not None and hi >= num_classes):
        top = "?" if num_classes is None else num_classes - 1 + offset
        raise DataError(
            f"{path}: label out of range: found labels {lo + offset}..{hi + offset}, "
            f"expected {offset}..{top}"
            + ("" if num_classes is None else f" ({num_classes} classes)")
        )


def read_idx_pair(images_path, labels_path, num_classes: int | None = None, offset: int = 0):
    """``(images, labels)`` from an idx3/idx1 pair, checking that the counts agree."""
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path, num_classes, offset)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
            "labels; the two files do not belong together"
        )
    return images, labels


def read_csv(path, num_classes: int | None = 10, offset: int = 0, pixels: int = 784):
    """``(images (n,28,28) uint8, labels (n,) int64)`` from a Kaggle-style CSV.

    Each row is ``label,p1,...,p784`` (pixels row-major, 0..255). A first row that is not
    numeric (``label,pixel0,...``) is taken as a header and skipped. ``.gz`` files are read
    transparently. Images are returned as stored (the EMNIST Kaggle CSVs are transposed).
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", newline="") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    lines = text.splitlines()
    start = 0
    if lines and not lines[0].split(",")[0].strip().lstrip("-").isdigit():
        start = 1  # header row
    rows = [ln for ln in lines[start:] if ln.strip()]
    if not rows:
        raise DataError(f"{path}: no data rows")
    width = pixels + 1
    for i, row in enumerate(rows):
        count = row.count(",") + 1
        if count != width:
            raise DataError(
                f"{path}: line {i + start + 1} has {count} columns, expected {width} "
                f"(label + {pixels} pixels)"
            )
    try:
        table = np.loadtxt(rows, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{path}: non-integer value in the table ({exc})") from None
    pix = table[:, 1:]
    if pix.min() < 0 or pix.max() > 255:
        bad = int(np.argmax((pix < 0).any(axis=1) | (pix > 255).any(axis=1)))
        raise DataError(
            f"{path}: pixel values must lie in 0..255; line {bad + start + 1} has "
            f"{int(pix[bad].min())}..{int(pix[bad].max())}"
        )
    labels = table[:, 0] - offset
    _check_labels(labels, num_classes, path, offset)
    side = int(round(pixels**0.5))
    shape = (len(rows), side, side) if side * side == pixels else (len(rows), pixels)
    return pix.astype(np.uint8).reshape(shape), labels


def read_mapping(path) -> tuple[str, ...]:
    """The EMNIST mapping file as a tuple of characters, position ``i`` = the ``i``-th label.

    Lines are ``label code`` (decimal Unicode code point) or, for EMNIST letters,
    ``label upper lower`` (the upper-case letter is used). Labels must be consecutive
    integers (0-based, or 1-based for letters). CRLF and LF line ends are both accepted.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("ascii")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not an ASCII mapping file ({exc})") from None
    chars: list[str] = []
    first = None
    for lineno, line in enumerate(text.splitlines(), 1):  # handles \r\n, \n and \r
        if not line.strip():
            continue
        parts = line.split()
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise DataError(f"{path}: line {lineno} {line!r} is not 'label unicode'") from None
        if len(nums) not in (2, 3):
            raise DataError(f"{path}: line {lineno} has {len(nums)} fields, expected 'label unicode'")
        if first is None:
            first = nums[0]
            if first not in (0, 1):
                raise DataError(f"{path}: labels must start at 0 or 1, first label is {first}")
        if nums[0] != first + len(chars):
            raise DataError(
                f"{path}: line {lineno}: label {nums[0]} out of order, expected {first + len(chars)}"
            )
        try:
            chars.append(chr(nums[1]))
        except (ValueError, OverflowError):
            raise DataError(f"{path}: line {lineno}: {nums[1]} is not a Unicode code point") from None
    if not chars:
        raise DataError(f"{path}: empty mapping file")
    return tuple(chars)
