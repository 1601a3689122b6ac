"""Checks on the real MNIST / EMNIST files in $ANYNET_DATA_DIR (skipped when it is not set)."""

import os
from pathlib import Path

import numpy as np
import pytest

from anynet.data import load, stratified_split
from anynet.data.splits import STANDIN_SEED, STANDIN_TEST_FRACTION

pytestmark = pytest.mark.slow  # reads the real data set

DATA = os.environ.get("ANYNET_DATA_DIR")

MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# emnist-bymerge TEST split per class (its PROVENANCE.md)
BYMERGE_TEST = [
    5745,
    6400,
    5765,
    5827,
    5498,
    5326,
    5787,
    5873,
    5655,
    5651,
    1058,
    652,
    2156,
    735,
    860,
    1524,
    430,
    576,
    2413,
    912,
    809,
    3358,
    1984,
    1351,
    4690,
    1812,
    415,
    835,
    3899,
    1630,
    2528,
    1223,
    1262,
    897,
    1195,
    925,
    1668,
    932,
    1708,
    4066,
    426,
    583,
    1535,
    1872,
    533,
    2365,
    2979,
]


def _need(folder):
    if not DATA:
        pytest.skip("ANYNET_DATA_DIR is not set (point it at the shared data directory)")
    if not (Path(DATA) / folder).is_dir():
        pytest.skip(f"ANYNET_DATA_DIR={DATA} has no {folder}/ folder")


@pytest.fixture(scope="module")
def mnist():
    _need("mnist")
    return load("mnist", download=False, progress=False)


@pytest.fixture(scope="module")
def standin():
    _need("emnist-bymerge")
    return load("emnist-standin", download=False, progress=False)


def test_mnist_counts(mnist):
    assert mnist.name == "mnist" and mnist.num_classes == 10 and mnist.classes[7] == "7"
    assert mnist.train.images.shape == (60000, 28, 28) and mnist.train.images.dtype == np.uint8
    assert mnist.test.images.shape == (10000, 28, 28)
    assert mnist.train.labels.dtype == np.int64
    assert mnist.train.class_counts(10).tolist() == MNIST_TRAIN
    assert mnist.test.class_counts(10).tolist() == MNIST_TEST
    assert mnist.source["files"]["train_images"].endswith("train-images-idx3-ubyte.gz")


def test_standin_split(standin):
    assert standin.num_classes == 47
    assert (len(standin.train), len(standin.test)) == (98875, 17448)
    n_train = standin.train.class_counts(47)
    n_test = standin.test.class_counts(47)
    assert (n_train + n_test).tolist() == BYMERGE_TEST
    share = n_test / (n_train + n_test)
    assert np.all(np.abs(share - STANDIN_TEST_FRACTION) < 0.003)  # stratified, per class
    assert n_train.min() > 0 and n_test.min() > 0
    assert max(BYMERGE_TEST) / min(BYMERGE_TEST) > 15  # unbalanced: report balanced accuracy
    assert "bymerge" in standin.source["derived"]
    # reproducible: the documented stratified_split of the source labels, in source order
    from anynet.data import read_idx_labels

    src = Path(standin.source["files"]["labels"])
    labels = read_idx_labels(src, 47)
    a, b = stratified_split(labels, STANDIN_TEST_FRACTION, STANDIN_SEED)
    np.testing.assert_array_equal(labels[a], standin.train.labels)
    np.testing.assert_array_equal(labels[b], standin.test.labels)


def test_standin_classes(standin):
    c = standin.classes
    assert c[10] == "A" and c[36] == "a" and c[46] == "t" and c[26] == "Q" and c[9] == "9"


def _quadrants(m):
    return {
        "TL": m[:14, :14].mean(),
        "TR": m[:14, 14:].mean(),
        "BL": m[14:, :14].mean(),
        "BR": m[14:, 14:].mean(),
    }


def test_emnist_upright_L(standin):
    """The mean 'L' has its heaviest ink bottom-left; transposed/mirrored/flipped would not."""
    imgs = standin.train.images[standin.train.labels == standin.classes.index("L")]
    m = imgs.astype(np.float64).mean(0)
    q = _quadrants(m)
    assert max(q, key=q.get) == "BL", q
    assert m[20:26, 6:22].mean() > 2 * m[:6, 6:22].mean()  # bottom bar inky, top band not
    assert m[2:8, 20:26].mean() < m[20:26, 6:22].mean() / 3  # top-right corner nearly empty
    for wrong in (m.T, m[:, ::-1], m[::-1]):
        qw = _quadrants(wrong)
        assert max(qw, key=qw.get) != "BL"


def test_emnist_digits_look_like_mnist(standin, mnist):
    """Each EMNIST digit's mean image correlates with MNIST's better upright than transposed."""

    def corr(a, b):
        a, b = a - a.mean(), b - b.mean()
        return (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())

    for d in range(10):
        e = standin.train.images[standin.train.labels == d][:2000].astype(np.float64).mean(0)
        m = mnist.train.images[mnist.train.labels == d][:2000].astype(np.float64).mean(0)
        assert corr(e, m) > corr(e.T, m) and corr(e, m) > corr(e[:, ::-1], m), d


def test_balanced_labels_only(tmp_path):
    """The canonical balanced label files are there (images are not): 2400 / 400 per class."""
    _need("emnist-balanced")
    from anynet.data import read_idx_labels

    folder = Path(DATA) / "emnist-balanced"
    train = read_idx_labels(folder / "emnist-balanced-train-labels-idx1-ubyte.gz", 47)
    test = read_idx_labels(folder / "emnist-balanced-test-labels-idx1-ubyte.gz", 47)
    assert np.bincount(train).tolist() == [2400] * 47
    assert np.bincount(test).tolist() == [400] * 47


def test_a_mapping_file_of_another_split_is_refused(tmp_path):
    """The stand-in's files next to the byclass mapping (62 classes): load() reads the mapping
    beside the images and refuses the mismatch instead of naming classes wrongly."""
    from anynet.data import DataError

    _need("emnist-bymerge")
    folder = tmp_path / "emnist-bymerge"
    folder.mkdir()
    for f in (Path(DATA) / "emnist-bymerge").glob("*.gz"):
        (folder / f.name).symlink_to(f)
    (folder / "emnist-bymerge-mapping.txt").write_text(
        "".join(
            f"{i} {ord(c)}\n"
            for i, c in enumerate("0123456789" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz")
        )
    )
    with pytest.raises(DataError, match="belong to another split"):
        load("emnist-standin", data_dir=tmp_path, download=False, progress=False)
    (folder / "emnist-bymerge-mapping.txt").unlink()
    (folder / "emnist-bymerge-mapping.txt").symlink_to(
        Path(DATA) / "emnist-bymerge" / "emnist-bymerge-mapping.txt"
    )
    assert load("emnist-standin", data_dir=tmp_path, download=False, progress=False).num_classes == 47
