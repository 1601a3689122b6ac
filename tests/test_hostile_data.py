"""Hostile and broken data files: each is refused with a DataError naming the file, in bounded memory.

Every attack file is built here, in ``tmp_path``, at test time. The gzip bombs are a few
gzip members of 16 MiB of zeros each (compressed once, repeated): about 1 MB on disk,
over 1 GB decompressed, built in well under a second.
"""

import functools
import gzip
import re
import struct
import tracemalloc

import numpy as np
import pytest

from anynet.data import DataError, read_csv, read_idx, read_mapping, readers

GiB = 1 << 30
PEAK_LIMIT = 200 << 20  # bytes a refused attack may allocate (tracemalloc peak)
BLOCK = 16 << 20


@functools.cache
def gz_repeat(unit: bytes, n: int) -> bytes:
    """One gzip member holding ``unit * n`` (compressed once per session)."""
    return gzip.compress(unit * n, 9, mtime=0)


def zeros_gz(n: int) -> bytes:
    """A gzip stream (several members) that decompresses to ``n`` zero bytes."""
    q, r = divmod(n, BLOCK)
    return gz_repeat(b"\0", BLOCK) * q + (gz_repeat(b"\0", r) if r else b"")


def idx_header(dims, magic: bytes = b"\x00\x00\x08") -> bytes:
    return magic + bytes([len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def refused(fn, path, *args, match: str = "", **kwargs) -> str:
    """``fn(path, ...)`` raises a DataError naming ``path`` (and ``match``) within PEAK_LIMIT."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            fn(path, *args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(info.value)
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.0f} MiB while refusing {path.name}: {msg}"
    assert path.name in msg
    assert re.search(match, msg), msg
    return msg


# ---------------------------------------------------------------------------- IDX


def test_idx_gzip_bomb_after_small_header(tmp_path):
    # header claims 1000 images (784 kB); the stream then expands to over 1 GiB
    p = tmp_path / "bomb-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(idx_header((1000, 28, 28))) + zeros_gz(GiB + BLOCK))
    assert p.stat().st_size < 2 << 20
    refused(read_idx, p, match=r"trailing bytes.*784016 bytes, file holds at least")


def test_idx_gzip_bomb_header_claims_it_all(tmp_path):
    # a "valid" file of 1,000,000 blank images (784 MB, under MAX_IDX_BYTES) from ~1 MB
    dims = (1_000_000, 28, 28)
    p = tmp_path / "blank-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(idx_header(dims)) + zeros_gz(int(np.prod(dims))))
    refused(read_idx, p, match=r"784000016 bytes.*gzip file is only \d+ bytes.*gzip bomb")


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(
    "dims",
    [(2**31, 28, 28), (65536,) * 4, (2**32 - 1,) * 4],  # over the limit; product overflows int64
    ids=["2G-images", "2**64", "(2**32-1)**4"],
)
def test_idx_header_claims_too_much(tmp_path, dims, gz):
    p = tmp_path / ("huge-idx-ubyte" + (".gz" if gz else ""))
    header = idx_header(dims)
    p.write_bytes(gzip.compress(header) + zeros_gz(GiB + BLOCK) if gz else header + bytes(100))
    claimed = 4 + 4 * len(dims) + int(np.prod(dims, dtype=object))
    refused(read_idx, p, match=rf"shape \({dims[0]}, .* = {claimed} bytes, over the limit.*MAX_IDX_BYTES")


@pytest.mark.parametrize(
    "header, match",
    [
        (struct.pack(">I", 0x12345678) + bytes(12), r"bad IDX magic number 305419896"),
        (b"\x00\x00\x08\x00", r"bad IDX magic number"),  # zero dimensions
        (b"\x00\x00\x08\xc8" + bytes(800), r"claims 200 dimensions"),
        (b"\x00\x00\x0d\x03" + struct.pack(">3I", 10, 28, 28), r"type code 0x0d"),  # float32
    ],
    ids=["magic", "0-dims", "200-dims", "float-dtype"],
)
def test_idx_bad_header_before_a_bomb(tmp_path, header, match):
    # the header alone condemns the file: nothing after it may be decompressed
    p = tmp_path / "odd-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(header) + zeros_gz(GiB + BLOCK))
    refused(read_idx, p, match=match)


def test_idx_raw_file_much_longer_than_header(tmp_path):
    # 10 images claimed, 1 GiB on disk (sparse): refused from the file size, unread
    p = tmp_path / "long-idx3-ubyte"
    with p.open("wb") as fh:
        fh.write(idx_header((10, 28, 28)) + bytes(7840))
        fh.truncate(16 + GiB)
    refused(read_idx, p, match=rf"trailing bytes.* = 7856 bytes, file holds {16 + GiB} bytes")


# ---------------------------------------------------------------------------- CSV


def csv_rows(n: int = 5, pixels: int = 784, header: bool = True) -> list[str]:
    rng = np.random.default_rng(1)
    rows = [",".join(["label"] + [f"pixel{i}" for i in range(pixels)])] if header else []
    rows += [",".join(map(str, [i % 10, *rng.integers(0, 256, pixels)])) for i in range(n)]
    return rows


def write_lines(path, lines: list[str], gz: bool = False):
    data = ("\n".join(lines) + "\n").encode()
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("lineno", [1, 4])
def test_csv_invalid_utf8(tmp_path, lineno):
    lines = csv_rows()
    p = tmp_path / "latin.csv"
    data = [ln.encode() for ln in lines]
    data[lineno - 1] = data[lineno - 1].replace(b"label" if lineno == 1 else b",", b"\xe9\xff", 1)
    p.write_bytes(b"\n".join(data) + b"\n")
    refused(read_csv, p, match=rf"latin\.csv: line {lineno} is not valid UTF-8")


@pytest.mark.parametrize("delta", [-1, +1, -700])
def test_csv_ragged_row_after_blank_lines(tmp_path, delta):
    lines = csv_rows()
    lines[3:3] = ["", "   "]  # blank lines count: the bad row below is line 6
    fields = lines[5].split(",")
    lines[5] = ",".join(fields[:delta] if delta < 0 else [*fields, "0"])
    p = write_lines(tmp_path / "ragged.csv", lines)
    refused(read_csv, p, match=rf"ragged\.csv: line 6 has {785 + delta} columns, expected 785")


@pytest.mark.parametrize("value", ["abc", "1.5", "", "0x1F", "1e3", "12 3", "99999999999999999999"])
def test_csv_non_numeric_field(tmp_path, value):
    lines = csv_rows()
    fields = lines[3].split(",")
    fields[6] = value
    lines[3] = ",".join(fields)
    p = write_lines(tmp_path / "text.csv", lines, gz=True)
    refused(read_csv, p, match=r"text\.csv\.gz: line 4, column 7: .*(not an integer|out of range)")


@pytest.mark.parametrize("value", ["256", "-1", "1000000"])
def test_csv_pixel_out_of_range_after_blank_line(tmp_path, value):
    lines = csv_rows()
    lines.insert(2, "")
    fields = lines[4].split(",")
    fields[100] = value
    lines[4] = ",".join(fields)
    p = write_lines(tmp_path / "bright.csv", lines)
    refused(read_csv, p, match=rf"bright\.csv: pixel values must lie in 0\.\.255; line 5 has .*{value}")


@pytest.mark.parametrize("gz", [False, True])
def test_csv_over_size_limit(tmp_path, monkeypatch, gz):
    monkeypatch.setattr(readers, "MAX_CSV_BYTES", 16_000, raising=False)
    p = write_lines(tmp_path / "big.csv", csv_rows(), gz=gz)  # 22 kB of valid text, 10 kB as gzip
    refused(read_csv, p, match=r"over the limit.*MAX_CSV_BYTES")


def test_csv_size_checked_before_reading(tmp_path, monkeypatch):
    # too large AND garbage: the size is what is reported, so nothing was read first
    monkeypatch.setattr(readers, "MAX_CSV_BYTES", 1 << 20, raising=False)
    p = tmp_path / "garbage.csv"
    with p.open("wb") as fh:
        fh.write(b"\xff" * 100)
        fh.truncate(2 << 20)
    refused(read_csv, p, match=r"2097152 bytes, over the limit")


def test_csv_gzip_bomb_without_line_breaks(tmp_path):
    p = tmp_path / "flat.csv.gz"
    p.write_bytes(zeros_gz(256 << 20))
    refused(read_csv, p, match=r"line 1 is longer than \d+ bytes")


def test_csv_gzip_bomb_of_valid_rows(tmp_path):
    # 256 MiB of "0,0,...,0" rows from a few hundred kB: stopped early as a gzip bomb
    row = ",".join(["0"] * 785) + "\n"
    block = gz_repeat(row.encode(), 10_000)
    p = tmp_path / "blank.csv.gz"
    p.write_bytes(block * ((256 << 20) // (len(row) * 10_000)))
    refused(read_csv, p, match=r"gzip bomb")


def test_csv_byte_order_mark_is_not_a_header(tmp_path):
    # a UTF-8 BOM (as Excel writes) before a headerless first row must not hide that row
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + ("\n".join(csv_rows(header=False)) + "\n").encode())
    images, labels = read_csv(p)
    assert labels.tolist() == [0, 1, 2, 3, 4] and images.shape == (5, 28, 28)


# ---------------------------------------------------------------------------- mapping


def test_mapping_too_large(tmp_path):
    p = tmp_path / "huge-mapping.txt"
    p.write_text("".join(f"{i} {48 + i % 10}\n" for i in range(20_000)))  # ~200 kB, well-formed
    refused(read_mapping, p, match=r"too large for a mapping file")


@pytest.mark.parametrize(
    "code, problem",
    [
        (0, "control character"),  # NUL
        (10, "control character"),  # newline
        (13, "control character"),
        (31, "control character"),
        (127, "control character"),  # DEL
        (0x85, "control character"),  # C1: NEXT LINE
        (0x9F, "control character"),
        (0x2028, "line or paragraph separator"),
        (0xD800, "surrogate"),
        (0xDFFF, "surrogate"),
        (0x110000, "not a Unicode code point"),
        (2**64, "not a Unicode code point"),
    ],
)
def test_mapping_unusable_character(tmp_path, code, problem):
    p = tmp_path / "bad-mapping.txt"
    p.write_text(f"0 48\r\n1 49\r\n2 {code}\r\n3 51\r\n")
    refused(read_mapping, p, match=rf"bad-mapping\.txt: line 3: .*{code}.*{problem}")


def test_mapping_unusable_lower_case_column(tmp_path):
    # letters files: 'label upper lower'; the lower column is checked too
    p = tmp_path / "letters-mapping.txt"
    p.write_text("1 65 97\n2 66 0\n")
    refused(read_mapping, p, match=r"letters-mapping\.txt: line 2: .*\b0\b.*control character")


def test_mapping_duplicate_character(tmp_path):
    p = tmp_path / "dup-mapping.txt"
    p.write_text("0 48\n\n1 65\n2 66\n3 65\n")
    refused(read_mapping, p, match=r"dup-mapping\.txt: line 5: .*'A'.*already.*label 1 \(line 3\)")


@pytest.mark.parametrize("byte", [b"\0", b"\x0c", b"\x1e", b"\x7f"], ids=["NUL", "FF", "RS", "DEL"])
def test_mapping_control_byte_in_file(tmp_path, byte):
    # form feed and RS would otherwise split a line silently (str.splitlines)
    p = tmp_path / "ctl-mapping.txt"
    p.write_bytes(b"0 48\n1 49" + byte + b"2 50\n3 51\n")
    refused(read_mapping, p, match=rf"ctl-mapping\.txt: line 2: control character 0x{byte.hex()}")


@pytest.mark.parametrize("field", ["1_0", "4" * 5000])
def test_mapping_odd_numbers(tmp_path, field):
    p = tmp_path / "num-mapping.txt"
    p.write_text(f"0 48\n1 {field}\n")
    refused(read_mapping, p, match=r"num-mapping\.txt: line 2.*(not 'label unicode'|too long)")


class CountingGzip(gzip.GzipFile):
    """A GzipFile that counts the lines read through it (class-wide, reset per test)."""

    lines = 0

    def readline(self, size=-1):
        CountingGzip.lines += 1
        return super().readline(size)


@pytest.mark.parametrize(
    "unit, n", [(b"\n", 20_000_000), (b"\n", 1_000_000), (b"\r\n", 1_000_000), (b" \t\n", 1_000_000)]
)
def test_csv_gzip_of_blank_lines_refused_early(tmp_path, monkeypatch, unit, n):
    # 20 M newlines are 19 kB of gzip: once read line by line for ~15 s of CPU up to the
    # gzip-bomb check. The blank lines must stop the reading after a few thousand lines.
    monkeypatch.setattr(gzip, "GzipFile", CountingGzip)
    CountingGzip.lines = 0
    p = tmp_path / "blank-lines.csv.gz"
    p.write_bytes(gz_repeat(unit, n))
    refused(read_csv, p, match=r"blank-lines\.csv\.gz: \d+ blank lines by line \d+.*MAX_BLANK_LINES")
    assert 0 < CountingGzip.lines <= 2_000


def test_csv_plain_file_of_blank_lines_refused_early(tmp_path):
    p = tmp_path / "blank.csv"
    p.write_bytes(b"\r\n" * 1_000_000)
    msg = refused(read_csv, p, match=r"blank lines by line \d+")
    assert int(re.search(r"by line (\d+)", msg).group(1)) <= 2_000


def test_csv_blank_lines_limit_counts_rows(tmp_path, monkeypatch):
    # double spacing is fine; blank lines beyond the rows + MAX_BLANK_LINES are not
    monkeypatch.setattr(readers, "MAX_BLANK_LINES", 3, raising=False)
    rows = csv_rows(5)
    spaced = [x for row in rows for x in (row, "")]
    p = write_lines(tmp_path / "spaced.csv", spaced)
    assert read_csv(p)[1].tolist() == [0, 1, 2, 3, 4]
    p = write_lines(tmp_path / "trailing.csv", [*spaced, "", "", ""], gz=True)
    assert read_csv(p)[1].tolist() == [0, 1, 2, 3, 4]  # 9 blank lines after 6 others: at the limit
    p = write_lines(tmp_path / "many.csv", [*spaced, "", "", "", ""], gz=True)
    refused(
        read_csv, p, match=r"many\.csv\.gz: 10 blank lines by line 16, only 6 other lines.*MAX_BLANK_LINES"
    )
