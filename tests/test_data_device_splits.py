"""to_device / one_hot on every backend, and stratified_split."""

import numpy as np
import pytest
from array_api_compat import device as device_of

from anynet.data import one_hot, stratified_split, to_device


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_device(backend, dtype):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    x = to_device(images, backend, dtype=dtype)
    assert x.shape == (5, 784) and x.dtype == backend.float_dtype(dtype)
    assert device_of(x) == backend.device
    host = backend.to_host(x)
    np.testing.assert_allclose(host, images.reshape(5, -1) / 255.0, rtol=1e-6)
    assert host.min() == 0.0 and host.max() == 1.0
    with pytest.raises(TypeError, match="uint8"):
        to_device(images.astype(np.float32), backend)


def test_one_hot(backend):
    labels = backend.asarray(np.array([2, 0, 1, 2], dtype=np.int64))
    hot = one_hot(labels, 4, backend.xp)
    assert hot.shape == (4, 4) and hot.dtype == backend.xp.float32
    assert device_of(hot) == backend.device
    np.testing.assert_array_equal(backend.to_host(hot), np.eye(4, dtype=np.float32)[[2, 0, 1, 2]])
    hot64 = one_hot(labels, 3, dtype=backend.xp.float64)  # namespace found from labels
    assert hot64.dtype == backend.xp.float64


def test_stratified_split_properties():
    labels = np.repeat(np.arange(5), [100, 40, 7, 2, 551])
    np.random.default_rng(1).shuffle(labels)
    a, b = stratified_split(labels, 0.2, seed=3)
    assert a.dtype == np.int64 and np.all(np.diff(a) > 0) and np.all(np.diff(b) > 0)
    assert len(np.intersect1d(a, b)) == 0 and len(a) + len(b) == len(labels)
    assert len(b) == round(0.2 * len(labels))
    cb, ca = np.bincount(labels[b], minlength=5), np.bincount(labels[a], minlength=5)
    assert np.all(np.abs(cb - 0.2 * np.bincount(labels)) <= 1)
    assert cb.min() >= 1 and ca.min() >= 1  # even the 2-sample class is in both parts
    a2, b2 = stratified_split(labels, 0.2, seed=3)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    assert not np.array_equal(b, stratified_split(labels, 0.2, seed=4)[1])


def test_stratified_split_errors():
    with pytest.raises(ValueError):
        stratified_split(np.zeros(10, int), 1.0, 0)
    with pytest.raises(ValueError):
        stratified_split(np.zeros((2, 5), int), 0.5, 0)
