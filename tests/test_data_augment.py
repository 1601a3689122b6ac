"""Augmenter on every available backend (incl. array-api-strict's second device), and save_grid."""

import numpy as np
import pytest
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from anynet.backend import get_backend
from anynet.data import Augmenter, save_grid
from anynet.data.augment import gaussian_matrix


def _letter() -> np.ndarray:
    """An asymmetric 28x28 'F'-like glyph in [0, 1]."""
    img = np.zeros((28, 28), np.float64)
    img[5:22, 9] = 1.0  # stem
    img[5, 9:19] = 1.0  # top bar
    img[12, 9:16] = 0.6  # middle bar
    img[21, 20] = 0.3  # a lone dot
    return img


def _batch(backend, n=4, dtype="float32", flat=True, seed=0):
    host = np.random.default_rng(seed).random((n, 28, 28))
    host[0] = _letter()
    return backend.asarray(host.reshape(n, -1) if flat else host, dtype=dtype)


FULL = dict(rotation=12, scale=0.1, translation=2.0, elastic_alpha=34.0, elastic_sigma=4.0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("flat", [True, False])
def test_shape_dtype_device_preserved(backend, dtype, flat):
    x = _batch(backend, dtype=dtype, flat=flat)
    y = Augmenter(**FULL)(x, backend.random(0))
    assert array_namespace(y) is array_namespace(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert device_of(y) == device_of(x) == backend.device
    out = backend.to_host(y)
    assert np.isfinite(out).all() and out.min() >= -1e-6 and out.max() <= 1 + 1e-6  # convex mix


def test_deterministic_under_seed(backend):
    x = _batch(backend)
    aug = Augmenter(**FULL)
    a = backend.to_host(aug(x, backend.random(7)))
    b = backend.to_host(aug(x, backend.random(7)))
    c = backend.to_host(aug(x, backend.random(8)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a, backend.to_host(x))


def test_identity_at_zero_strength(backend):
    x = _batch(backend)
    aug = Augmenter(rotation=0.0, scale=(1.0, 1.0), translation=0.0, elastic_alpha=0.0)
    assert aug.is_identity
    y = aug(x, backend.random(0))
    np.testing.assert_array_equal(backend.to_host(y), backend.to_host(x))


@pytest.mark.parametrize("angle,k", [(90.0, 1), (-90.0, -1), (180.0, 2)])
def test_rotation_matches_rot90(backend, angle, k):
    x = _batch(backend, flat=False)
    y = Augmenter(rotation=(angle, angle))(x, backend.random(0))
    got = backend.to_host(y)[0]
    np.testing.assert_allclose(got, np.rot90(_letter(), k), atol=1e-4)


def test_translation_and_zero_outside(backend):
    x = _batch(backend, flat=False, n=2)
    shifted = backend.to_host(Augmenter(translation=(2.0, 2.0))(x, backend.random(0)))[0]
    expected = np.zeros((28, 28))
    expected[2:, 2:] = _letter()[:-2, :-2]  # right 2, down 2
    np.testing.assert_allclose(shifted, expected, atol=1e-5)
    gone = Augmenter(translation=(28.0, 28.0))(x, backend.random(0))
    assert np.abs(backend.to_host(gone)).max() == 0.0


def test_scale_enlarges(backend):
    x = _batch(backend, flat=False, n=1)
    big = backend.to_host(Augmenter(scale=(1.5, 1.5))(x, backend.random(0)))[0]
    small = backend.to_host(Augmenter(scale=(0.6, 0.6))(x, backend.random(0)))[0]
    ink = lambda a: (a > 0.25).sum()  # noqa: E731
    assert ink(big) > ink(_letter()) > ink(small)


def test_each_image_stays_in_its_row(backend):
    """The augmenter never reorders the batch, so the labels fit() pairs with its output by row
    stay right: image i is a square of brightness (i + 1) / 10, and after the full
    distortion the brightest pixel of row i still has that brightness."""
    n = 8
    host = np.zeros((n, 28, 28))
    levels = (np.arange(n) + 1) / 10
    for i, level in enumerate(levels):
        host[i, 8:20, 8:20] = level
    x = backend.asarray(host.reshape(n, -1), dtype="float64")
    out = backend.to_host(Augmenter(**FULL)(x, backend.random(0)))
    np.testing.assert_allclose(out.max(axis=1), levels, atol=1e-6)


def test_wrong_rng_backend_is_refused():
    x = _batch(get_backend("array_api_strict:device1"))
    with pytest.raises(ValueError, match="random source belongs"):
        Augmenter(rotation=5)(x, get_backend("array_api_strict").random(0))


def test_bad_arguments():
    with pytest.raises(ValueError):
        Augmenter(scale=(0.0, 1.0))
    with pytest.raises(ValueError):
        Augmenter(rotation=-3)
    with pytest.raises(ValueError):
        Augmenter(translation=(2, 1))


def test_gaussian_matrix():
    g = gaussian_matrix(28, 4.0)
    assert np.allclose(g, g.T)
    assert abs(gaussian_matrix(40, 4.0)[20].sum() - 1.0) < 1e-12  # full kernel inside
    assert g[0].sum() < 0.6  # border rows lose the part beyond the image (zero padding)


def test_save_grid(tmp_path, backend):
    from PIL import Image

    x = Augmenter(**FULL)(_batch(backend, n=6), backend.random(0))
    path = save_grid(
        x, tmp_path / "sub" / "grid.png", labels=[0, 1, 2, 0, 1, 2], classes=("a", "b", "c"), ncols=3
    )
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 3 * 56 and im.size[1] > 2 * 56
    save_grid(np.zeros((3, 28, 28), np.uint8), tmp_path / "plain.png")


def test_single_channel_image_batches_keep_their_shape(backend):
    """(b, 1, H, W), as convolutional networks take images, is augmented like (b, H, W)."""
    x = _batch(backend, flat=False)
    x4 = backend.xp.reshape(x, (x.shape[0], 1, 28, 28))
    a = backend.to_host(Augmenter(**FULL)(x, backend.random(3)))
    b = backend.to_host(Augmenter(**FULL)(x4, backend.random(3)))
    assert b.shape == (x.shape[0], 1, 28, 28)
    np.testing.assert_array_equal(b[:, 0], a)
