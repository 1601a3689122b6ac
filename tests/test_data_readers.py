"""IDX / CSV / mapping readers: good files round-trip, bad files give a clear DataError."""

import gzip
import struct

import numpy as np
import pytest

from anynet.data import DataError, read_csv, read_idx, read_idx_labels, read_idx_pair, read_mapping
from anynet.data.readers import read_idx_images
from anynet.data.registry import EMNIST47, class_names, dataset_info, dataset_names


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write(path, data: bytes, gz: bool = True):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip(tmp_path, images, gz):
    suffix = ".gz" if gz else ""
    ip = write(tmp_path / f"im-idx3-ubyte{suffix}", idx_bytes(images), gz)
    lp = write(tmp_path / f"lb-idx1-ubyte{suffix}", idx_bytes([0, 1, 2, 9, 3]), gz)
    x, y = read_idx_pair(ip, lp, num_classes=10)
    np.testing.assert_array_equal(x, images)
    assert x.dtype == np.uint8 and x.flags.writeable
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 9, 3]


def test_bad_magic(tmp_path, images):
    data = bytearray(idx_bytes(images))
    data[0:4] = struct.pack(">I", 0x12345678)
    p = write(tmp_path / "bad.gz", bytes(data))
    with pytest.raises(DataError, match=r"bad\.gz.*magic"):
        read_idx(p)


def test_labels_file_given_as_images(tmp_path):
    p = write(tmp_path / "labels.gz", idx_bytes([1, 2, 3]))
    with pytest.raises(DataError, match="expected an image file"):
        read_idx_images(p)


def test_truncated_payload(tmp_path, images):
    p = write(tmp_path / "short-idx3-ubyte.gz", idx_bytes(images)[:-10])
    with pytest.raises(DataError, match=r"short-idx3-ubyte\.gz.*truncated"):
        read_idx(p)


def test_trailing_bytes(tmp_path, images):
    p = write(tmp_path / "long", idx_bytes(images) + b"xx", gz=False)
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(p)


def test_truncated_gzip(tmp_path, images):
    blob = gzip.compress(idx_bytes(images))
    p = tmp_path / "cut.gz"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"cut\.gz.*truncated gzip"):
        read_idx(p)


def test_corrupt_gzip(tmp_path, images):
    blob = bytearray(gzip.compress(idx_bytes(images)))
    blob[len(blob) // 2] ^= 0xFF  # flip a byte in the deflate stream
    blob[-8] ^= 0xFF  # and the CRC
    p = tmp_path / "bad.gz"
    p.write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"bad\.gz.*corrupt gzip"):
        read_idx(p)


def test_gz_name_but_not_gzip(tmp_path, images):
    p = write(tmp_path / "plain.gz", idx_bytes(images), gz=False)
    with pytest.raises(DataError, match="not a gzip file"):
        read_idx(p)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nope.gz")


def test_label_out_of_range(tmp_path):
    p = write(tmp_path / "lab.gz", idx_bytes([0, 5, 10]))
    with pytest.raises(DataError, match=r"lab\.gz.*out of range.*0\.\.10.*expected 0\.\.9"):
        read_idx_labels(p, num_classes=10)


def test_label_offset_letters(tmp_path):
    p = write(tmp_path / "lab.gz", idx_bytes([1, 26, 13]))
    assert read_idx_labels(p, num_classes=26, offset=1).tolist() == [0, 25, 12]
    p0 = write(tmp_path / "lab0.gz", idx_bytes([0, 3]))
    with pytest.raises(DataError, match=r"expected 1\.\.26"):
        read_idx_labels(p0, num_classes=26, offset=1)


def test_count_mismatch(tmp_path, images):
    ip = write(tmp_path / "im.gz", idx_bytes(images))
    lp = write(tmp_path / "lb.gz", idx_bytes([0, 1, 2]))
    with pytest.raises(DataError, match=r"5 images but .*3 labels"):
        read_idx_pair(ip, lp, 10)


# ---------------------------------------------------------------------------- CSV


def csv_text(labels, pix, header=True):
    rows = [",".join(["label"] + [f"pixel{i}" for i in range(pix.shape[1])])] if header else []
    rows += [",".join(map(str, [lab, *p])) for lab, p in zip(labels, pix)]
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("header", [True, False])
def test_csv_roundtrip(tmp_path, images, header):
    labels = [3, 1, 4, 1, 5]
    p = tmp_path / "train.csv"
    p.write_text(csv_text(labels, images.reshape(5, -1), header))
    x, y = read_csv(p)
    np.testing.assert_array_equal(x, images)
    assert y.tolist() == labels and x.dtype == np.uint8


def test_csv_gz(tmp_path, images):
    p = tmp_path / "t.csv.gz"
    p.write_bytes(gzip.compress(csv_text([0] * 5, images.reshape(5, -1)).encode()))
    assert read_csv(p)[0].shape == (5, 28, 28)


def test_csv_wrong_columns(tmp_path, images):
    pix = images.reshape(5, -1)
    text = csv_text([0] * 5, pix).splitlines()
    text[3] = text[3].rsplit(",", 1)[0]  # drop one pixel on data row 3 (line 4)
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(text))
    with pytest.raises(DataError, match=r"bad\.csv: line 4 has 784 columns, expected 785"):
        read_csv(p)


def test_csv_pixel_and_label_range(tmp_path, images):
    pix = images.reshape(5, -1).astype(int)
    pix[2, 7] = 256
    p = tmp_path / "pix.csv"
    p.write_text(csv_text([0] * 5, pix))
    with pytest.raises(DataError, match=r"0\.\.255"):
        read_csv(p)
    p2 = tmp_path / "lab.csv"
    p2.write_text(csv_text([0, 1, 2, 3, 10], images.reshape(5, -1)))
    with pytest.raises(DataError, match="out of range"):
        read_csv(p2, num_classes=10)


@pytest.mark.parametrize("label", ["+3", " 3", "03", "3 ", "+03"])
def test_csv_first_row_with_signed_or_padded_label_is_data(tmp_path, images, label):
    # the first label means int(label) == 3; the row must not be mistaken for a header
    pix = images.reshape(5, -1)
    rows = csv_text([3, 1, 4, 1, 5], pix, header=False).splitlines()
    rows[0] = label + rows[0][1:]
    p = tmp_path / "signed.csv"
    p.write_text("\n".join(rows) + "\n")
    x, y = read_csv(p)
    assert y.tolist() == [3, 1, 4, 1, 5]
    np.testing.assert_array_equal(x, images)


@pytest.mark.parametrize("first", ["label", "Label", '"label"', " class", "y"])
def test_csv_header_detected(tmp_path, images, first):
    rows = csv_text([3, 1, 4, 1, 5], images.reshape(5, -1)).splitlines()
    rows[0] = first + rows[0][len("label") :]
    p = tmp_path / "head.csv"
    p.write_text("\n".join(rows) + "\n")
    x, y = read_csv(p)
    assert y.tolist() == [3, 1, 4, 1, 5] and len(x) == 5


@pytest.mark.parametrize("label", ["3.0", "", "1e3", "-", "+", "0x3"])
def test_csv_malformed_first_label_is_refused_not_skipped(tmp_path, images, label):
    # not a header (no leading letter) and not an integer: an error, never a silently lost row
    rows = csv_text([3, 1, 4, 1, 5], images.reshape(5, -1), header=False).splitlines()
    rows[0] = label + rows[0][1:]
    p = tmp_path / "odd.csv"
    p.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"odd\.csv: line 1, column 1: .* is not an integer"):
        read_csv(p)


# ---------------------------------------------------------------------------- mapping


def test_mapping_crlf(tmp_path):
    lines = [f"{i} {ord(c)}" for i, c in enumerate(EMNIST47)]
    p = tmp_path / "emnist-balanced-mapping.txt"
    p.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    chars = read_mapping(p)
    assert chars == EMNIST47
    assert chars[10] == "A" and chars[36] == "a" and chars[46] == "t"
    assert not any("\r" in c for c in chars)


def test_mapping_letters_three_columns(tmp_path):
    p = tmp_path / "emnist-letters-mapping.txt"
    p.write_text("1 65 97\n2 66 98\n3 67 99\n")
    assert read_mapping(p) == ("A", "B", "C")


def test_mapping_bad(tmp_path):
    p = tmp_path / "m.txt"
    p.write_text("0 48\n2 50\n")
    with pytest.raises(DataError, match=r"m\.txt: line 2: label 2 out of order"):
        read_mapping(p)
    p.write_text("0 x\n")
    with pytest.raises(DataError, match="not 'label unicode'"):
        read_mapping(p)


# ---------------------------------------------------------------------------- registry


def test_registry_tables():
    assert set(dataset_names()) >= {
        "mnist",
        "emnist-balanced",
        "emnist-byclass",
        "emnist-bymerge",
        "emnist-digits",
        "emnist-letters",
        "emnist-mnist",
        "emnist-standin",
    }
    assert class_names("mnist") == tuple("0123456789")
    bal = class_names("emnist-balanced")
    assert len(bal) == 47 and bal[10] == "A" and bal[26] == "Q" and bal[36] == "a" and bal[46] == "t"
    assert class_names("emnist_bymerge") == bal == class_names("emnist-standin")
    assert len(class_names("emnist-byclass")) == 62 and class_names("emnist-byclass")[61] == "z"
    letters = dataset_info("emnist-letters")
    assert letters.num_classes == 26 and letters.label_offset == 1 and letters.classes[0] == "A"
    for name in dataset_names():
        info = dataset_info(name)
        for f in info.files.values():
            assert f.url.endswith(f.filename) and f.url.startswith("https://")
            assert f.sha256 is None or len(f.sha256) == 64
    with pytest.raises(KeyError, match="unknown dataset"):
        dataset_info("cifar10")


def test_real_mapping_file_matches_table():
    import os
    from pathlib import Path

    root = os.environ.get("ANYNET_DATA_DIR")
    path = Path(root or "/nonexistent") / "emnist-balanced" / "emnist-balanced-mapping.txt"
    if not path.is_file():
        pytest.skip(f"ANYNET_DATA_DIR unset or without {path.name}")
    assert read_mapping(path) == class_names("emnist-balanced")
