"""Readers for the file formats MNIST-style data comes in, each validated strictly.

- IDX (``*-idx3-ubyte`` images, ``*-idx1-ubyte`` labels), gzipped or raw: the format of
  MNIST and EMNIST (http://yann.lecun.com/exdb/mnist/). Header, dimensions and the exact
  byte count are checked; trailing bytes after the data are refused.
- Kaggle-style CSV: one image per row, ``label,p1,...,p784``, with or without a header row;
  UTF-8, LF or CRLF line ends.
- The EMNIST mapping file: ``label unicode`` per line (``label upper lower`` for letters),
  CRLF or LF line ends.

Every problem raises :class:`DataError` naming the file and what is wrong. Files are read
as streams (gzip decompressed by content, not by name) under the size limits below, which
are checked before anything large is allocated, so a hostile file (a gzip bomb, a header
that lies) is refused without exhausting memory. Nothing here changes orientation: EMNIST
images come back as stored (transposed); see :func:`anynet.data.load` for upright images.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import stat
import struct
import sys
import unicodedata
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "DataError",
    "read_csv",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "read_idx_pair",
    "read_mapping",
]

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
MAX_IDX_DIMS = 4  # the IDX format allows 255; MNIST-style data needs 1 (labels) or 3 (images)

#: Largest IDX payload accepted, in bytes (1 GiB), checked against the header's dimensions
#: before anything is allocated or decompressed. The largest real file, EMNIST byclass
#: train images (697,932 x 28 x 28), holds 547 MB; this leaves about 2x headroom.
MAX_IDX_BYTES = 1 << 30

#: Largest CSV accepted, in bytes of (decompressed) text (2 GiB): the file size is checked
#: before reading, decompressed text as it streams. EMNIST byclass train as a Kaggle CSV
#: is about 1.35 GB (1,935 bytes a row on average, 697,932 rows).
MAX_CSV_BYTES = 2 << 30

#: A gzip file may decompress to at most ``GZIP_FREE_BYTES + MAX_GZIP_RATIO x`` its own
#: (compressed) size. Real MNIST/EMNIST files expand 2-9x; a gzip bomb of zeros about 1000x.
#: Small files (blank test images) may expand more, hence the free allowance.
MAX_GZIP_RATIO = 100
GZIP_FREE_BYTES = 16 << 20

#: Blank lines a CSV may hold beyond its other lines (a double-spaced file is fine). More
#: are refused at once: a gzip of newlines would otherwise be read a line at a time up to
#: the gzip-bomb check (16 M lines, seconds of CPU) for no data.
MAX_BLANK_LINES = 1000

#: Largest EMNIST mapping file accepted (64 KiB; the real ones are under 1 kB).
MAX_MAPPING_BYTES = 64 << 10

_CHUNK = 4 << 20  # bytes decompressed per read: bounds the temporary copies
_PEEK = 64 << 10  # trailing bytes read (and counted) after an IDX payload
_CSV_ROWS = 2048  # rows parsed per numpy call


class DataError(ValueError):
    """A data file is missing, corrupt, truncated or does not hold what was expected."""


class _Source(NamedTuple):
    """An open data file: its (decompressed) content and what is known of its size."""

    stream: Any  # binary file object: the decompressed content
    raw: Any  # the file on disk (its position = compressed bytes consumed)
    size: int | None  # bytes on disk; None when not a regular file
    gz: bool


def _expands_too_much(nbytes: int, compressed: int) -> bool:
    """Whether ``nbytes`` of output from ``compressed`` bytes of gzip looks like a gzip bomb."""
    return nbytes > GZIP_FREE_BYTES + MAX_GZIP_RATIO * compressed


@contextmanager
def _open_data(path: Path):
    """Open ``path`` as a :class:`_Source`, through gzip when it is one (by content, not name).

    Read errors inside the ``with`` block become a :class:`DataError` naming the file.
    """
    try:
        raw = open(path, "rb")  # noqa: SIM115 -- closed by the with below; errors differ
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    with raw:
        st = os.fstat(raw.fileno())
        size = st.st_size if stat.S_ISREG(st.st_mode) else None
        gz = False
        try:
            start = raw.peek(4)[:4]
            gz = start[:2] == b"\x1f\x8b"
            if not gz and path.suffix == ".gz":
                raise DataError(f"{path}: named .gz but is not a gzip file (starts with {start!r})")
            yield _Source(gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw, raw, size, gz)
        except EOFError:
            raise DataError(
                f"{path}: truncated gzip file ({size} bytes; the download was probably "
                "interrupted); delete it and fetch it again"
            ) from None
        except (OSError, zlib.error) as exc:  # BadGzipFile is an OSError; CRC errors too
            if not gz:
                raise DataError(f"{path}: cannot read ({exc})") from None
            raise DataError(f"{path}: corrupt gzip file ({exc}); delete it and fetch it again") from None


def _idx_dims(stream, path: Path) -> tuple[int, ...]:
    """Read and check an IDX header (magic, type code, dimensions); return the dimensions."""
    head = stream.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: only {len(head)} bytes, too short for an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", head)
    magic = struct.unpack(">I", head)[0]
    if zero != 0 or ndim == 0 or ndim > MAX_IDX_DIMS:
        raise DataError(
            f"{path}: bad IDX magic number {magic} (0x{magic:08x}); expected {IMAGES_MAGIC} "
            f"for images or {LABELS_MAGIC} for labels"
            + (f" (it claims {ndim} dimensions, at most {MAX_IDX_DIMS} are read)" if zero == 0 else "")
            + ". Is this an IDX file?"
        )
    if dtype_code != 0x08:
        raise DataError(
            f"{path}: IDX type code 0x{dtype_code:02x} is not supported (only 0x08, unsigned byte)"
        )
    body = stream.read(4 * ndim)
    if len(body) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({4 + len(body)} bytes, need {4 + 4 * ndim})")
    return struct.unpack(f">{ndim}I", body)


def _read_into(stream, dims: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """A new uint8 array of shape ``dims`` filled from ``stream`` in bounded chunks; bytes read."""
    buf = np.empty(dims, dtype=np.uint8)
    view, got, n = memoryview(buf.reshape(-1)), 0, buf.size  # type: ignore[arg-type]
    while got < n:
        k = stream.readinto(view[got : got + _CHUNK])
        if not k:
            break
        got += k
    return buf, got


def read_idx(path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (``.gz`` or raw) into a uint8 array of its shape.

    Checks the magic number (two zero bytes, type code 0x08 = uint8, 1..4 dimensions), that
    the size the header claims is within :data:`MAX_IDX_BYTES` (and, gzipped, within
    :data:`MAX_GZIP_RATIO` of the file) before allocating, and that the payload has exactly
    ``prod(dims)`` bytes, reading at most a few kB beyond them.
    """
    path = Path(path)
    with _open_data(path) as src:
        dims = _idx_dims(src.stream, path)
        header, n = 4 + 4 * len(dims), math.prod(dims)
        claim = f"header says shape {dims} = {header + n} bytes"
        if n > MAX_IDX_BYTES:
            raise DataError(
                f"{path}: IDX {claim}, over the limit of {MAX_IDX_BYTES} bytes "
                "(anynet.data.readers.MAX_IDX_BYTES); refusing to read it"
            )
        if src.gz and src.size is not None and _expands_too_much(header + n, src.size):
            raise DataError(
                f"{path}: IDX {claim}, but the gzip file is only {src.size} bytes (more than "
                f"{MAX_GZIP_RATIO}x expansion): refusing a likely gzip bomb"
            )
        if not src.gz and src.size is not None and src.size != header + n:
            _wrong_size(path, claim, header + n, src.size)  # before allocating anything
        data, got = _read_into(src.stream, dims)
        extra = len(src.stream.read(_PEEK)) if got == n else 0
    if got < n or extra:
        _wrong_size(path, claim, header + n, header + got + extra, extra == _PEEK)
    return data


def _wrong_size(path, claim: str, expected: int, actual: int, at_least: bool = False):
    """Raise the DataError for an IDX file of ``actual`` bytes where ``expected`` were due."""
    what = "truncated" if actual < expected else "has trailing bytes"
    holds = f"at least {actual}" if at_least else str(actual)
    raise DataError(f"{path}: IDX file {what}: {claim}, file holds {holds} bytes")


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
            f"expected {offset}..{top}" + ("" if num_classes is None else f" ({num_classes} classes)")
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

    Each row is ``label,p1,...,p784`` (pixels row-major, 0..255), every field a decimal
    integer with optional sign, leading zeros and spaces (``+3``, ``03``, `` 3`` all mean 3).
    A first row whose first field starts with a letter (``label,pixel0,...``, quotes
    allowed) is a header and skipped; any other first row is data, checked like the rest.
    Blank lines are skipped.
    Gzipped files are read transparently. Images are returned as stored (the EMNIST Kaggle
    CSVs are transposed). Errors name the line (counted from 1, header and blank lines
    included). Files over :data:`MAX_CSV_BYTES` of text, or with more than
    :data:`MAX_BLANK_LINES` blank lines beyond their other lines, are refused.
    """
    path = Path(path)
    images, labels = [], []
    with _open_data(path) as src:
        if src.size is not None and src.size > MAX_CSV_BYTES:
            raise DataError(
                f"{path}: {src.size} bytes, over the limit of {MAX_CSV_BYTES} bytes "
                "(anynet.data.readers.MAX_CSV_BYTES); refusing to read it"
            )
        for rows in _csv_chunks(src, path, pixels + 1):
            table = _csv_table(rows, path)
            labels.append(table[:, 0].copy())  # not a view: it would keep the table alive
            images.append(table[:, 1:].astype(np.uint8))
    if not labels:
        raise DataError(f"{path}: no data rows")
    label_array = np.concatenate(labels) - offset
    _check_labels(label_array, num_classes, path, offset)
    pix = np.concatenate(images)
    side = round(pixels**0.5)
    shape = (len(pix), side, side) if side * side == pixels else (len(pix), pixels)
    return pix.reshape(shape), label_array


def _csv_lines(src: _Source, path: Path, width: int):
    """``(line number, text)`` of each non-blank line: UTF-8, bounded length and total size."""
    max_line = 16 * width + 1024  # real rows take at most 4 bytes a field
    total = lineno = blank = 0
    while line := src.stream.readline(max_line + 1):
        lineno += 1
        total += len(line)
        if len(line) > max_line:
            raise DataError(
                f"{path}: line {lineno} is longer than {max_line} bytes; not a CSV of "
                f"{width} columns (or no line breaks)"
            )
        if total > MAX_CSV_BYTES:
            raise DataError(
                f"{path}: more than {MAX_CSV_BYTES} bytes of text at line {lineno}, over the "
                "limit (anynet.data.readers.MAX_CSV_BYTES); refusing to read on"
            )
        if src.gz and total > GZIP_FREE_BYTES and _expands_too_much(total, src.raw.tell()):
            raise DataError(
                f"{path}: decompresses to {total} bytes by line {lineno} from {src.raw.tell()} "
                f"bytes of gzip (more than {MAX_GZIP_RATIO}x): refusing a likely gzip bomb"
            )
        try:
            text = line.decode("utf-8-sig" if lineno == 1 else "utf-8")  # -sig: drop a BOM
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}: line {lineno} is not valid UTF-8 ({exc.reason}, byte {exc.start + 1} of the line)"
            ) from None
        if text.strip():
            yield lineno, text.rstrip("\r\n")
            continue
        blank += 1
        if blank > MAX_BLANK_LINES + lineno - blank:
            raise DataError(
                f"{path}: {blank} blank lines by line {lineno}, only {lineno - blank} other lines; "
                f"more than {MAX_BLANK_LINES} extra blank lines (anynet.data.readers.MAX_BLANK_LINES) "
                "is not an image CSV: refusing to read on"
            )


def _csv_chunks(src: _Source, path: Path, width: int):
    """Lists of at most ``_CSV_ROWS`` data rows ``(line number, text)``, each ``width`` fields."""
    rows, first = [], True
    for lineno, text in _csv_lines(src, path, width):
        if first:
            first = False
            if _HEADER.match(text):
                continue  # header row
        count = text.count(",") + 1
        if count != width:
            raise DataError(
                f"{path}: line {lineno} has {count} columns, expected {width} (label + {width - 1} pixels)"
            )
        rows.append((lineno, text))
        if len(rows) == _CSV_ROWS:
            yield rows
            rows = []
    if rows:
        yield rows


_INT = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*")
#: A header row: its first field starts with a letter (or ``_``), optionally quoted.
_HEADER = re.compile(r"\s*[\"']?[^\W\d]")


def _csv_table(rows: list, path: Path) -> np.ndarray:
    """The int64 table of ``rows``, each pixel checked to lie in 0..255 (labels are not)."""
    try:
        texts = [t for _, t in rows]
        table = np.loadtxt(texts, delimiter=",", dtype=np.int64, ndmin=2, comments=None)
    except ValueError:
        for lineno, text in rows:  # find the culprit, to name its line
            for col, field in enumerate(text.split(","), 1):
                where = f"{path}: line {lineno}, column {col}:"
                if not _INT.fullmatch(field):
                    raise DataError(f"{where} {field[:24]!r} is not an integer") from None
                if abs(int(field)) >= 2**63:
                    raise DataError(f"{where} {field.strip()[:24]} is out of range") from None
        raise DataError(f"{path}: lines {rows[0][0]}..{rows[-1][0]}: unreadable values") from None
    bad = ((table[:, 1:] < 0) | (table[:, 1:] > 255)).any(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        pix = table[i, 1:]
        raise DataError(
            f"{path}: pixel values must lie in 0..255; line {rows[i][0]} has {pix.min()}..{pix.max()}"
        )
    return table


def read_mapping(path) -> tuple[str, ...]:
    """The EMNIST mapping file as a tuple of characters, position ``i`` = the ``i``-th label.

    Lines are ``label code`` (decimal Unicode code point) or, for EMNIST letters,
    ``label upper lower`` (the upper-case letter is used). Labels must be consecutive
    integers (0-based, or 1-based for letters). CRLF and LF line ends are both accepted.
    Refused: control characters in the file, code points that are control characters
    (C0, DEL, C1), line or paragraph separators, surrogates or out of range, and two
    labels mapping to the same character.
    """
    path = Path(path)
    chars: list[str] = []
    seen: dict[str, tuple[int, int]] = {}  # character -> (label, line) that took it
    first = None
    for lineno, line in enumerate(_mapping_text(path).splitlines(), 1):  # \r\n, \n or \r
        if not line.strip():
            continue
        nums = _mapping_fields(line, path, lineno)
        if first is None:
            first = nums[0]
            if first not in (0, 1):
                raise DataError(f"{path}: labels must start at 0 or 1, first label is {first}")
        if nums[0] != first + len(chars):
            raise DataError(
                f"{path}: line {lineno}: label {nums[0]} out of order, expected {first + len(chars)}"
            )
        char = _mapping_char(nums[1], path, lineno)
        for code in nums[2:]:  # letters files: the lower-case column is checked, not used
            _mapping_char(code, path, lineno)
        if char in seen:
            label, line_taken = seen[char]
            raise DataError(
                f"{path}: line {lineno}: label {nums[0]} maps to {char!r} (code point {nums[1]}), "
                f"already the character of label {label} (line {line_taken}); two classes "
                "cannot share a character"
            )
        seen[char] = (nums[0], lineno)
        chars.append(char)
    if not chars:
        raise DataError(f"{path}: empty mapping file")
    return tuple(chars)


#: Bytes a mapping file may not hold: ASCII controls other than tab, LF and CR.
_MAPPING_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAPPING_INT = re.compile(r"[+-]?[0-9]+")

#: Unicode categories that cannot name a class, with the reason given.
_UNUSABLE = {
    "Cc": "a control character",
    "Cs": "a surrogate",
    "Zl": "a line or paragraph separator",
    "Zp": "a line or paragraph separator",
}


def _mapping_text(path: Path) -> str:
    """The text of a mapping file: at most :data:`MAX_MAPPING_BYTES`, ASCII, no controls."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_MAPPING_BYTES + 1)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(data) > MAX_MAPPING_BYTES:
        raise DataError(f"{path}: over {MAX_MAPPING_BYTES} bytes, too large for a mapping file")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not an ASCII mapping file ({exc})") from None
    if m := _MAPPING_CONTROL.search(text):
        lineno = len(text[: m.start() + 1].splitlines())
        raise DataError(
            f"{path}: line {lineno}: control character 0x{ord(m.group()):02x} in the file; "
            "a mapping file holds digits, spaces and line ends only"
        )
    return text


def _mapping_fields(line: str, path: Path, lineno: int) -> list[int]:
    """The 2 or 3 integers of a mapping line (``label code`` or ``label upper lower``)."""
    parts = line.split()
    if not all(_MAPPING_INT.fullmatch(p) for p in parts):
        raise DataError(f"{path}: line {lineno} {line[:40]!r} is not 'label unicode'")
    if len(parts) not in (2, 3):
        raise DataError(f"{path}: line {lineno} has {len(parts)} fields, expected 'label unicode'")
    try:
        return [int(p) for p in parts]
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise DataError(f"{path}: line {lineno}: a number too long to be a label or code point") from None


def _mapping_char(code: int, path: Path, lineno: int) -> str:
    """The character of code point ``code``, refused when it cannot name a class."""
    where = f"{path}: line {lineno}: code point {code}"
    if not 0 <= code <= sys.maxunicode:
        raise DataError(f"{where} is not a Unicode code point (0..{sys.maxunicode})")
    char = chr(code)
    problem = _UNUSABLE.get(unicodedata.category(char))
    if problem:
        raise DataError(f"{where} (U+{code:04X}) is {problem}, not usable as a class name")
    return char
