"""One seed, one run: NumPy, PyTorch and array-api-strict start from the same weights and see
the same batches and dropout masks (all drawn on the host with PCG64, derived per epoch)."""

from __future__ import annotations

import numpy as np
import pytest

import anynet
from anynet.backend import to_numpy
from anynet.layers import Dropout
from anynet.training.seeding import derive_seed

from .helpers import BACKEND_SPECS, _backend_or_skip


class ProbeDropout(Dropout):
    """Dropout that records each training mask (host copy)."""

    def __init__(self, rate):
        super().__init__(rate)
        self.masks = []

    def forward(self, x, training=False):
        y, keep = super().forward(x, training)
        if training:
            self.masks.append(to_numpy(keep) > 0)
        return y, keep


def record_run(spec, **fit_kw):
    backend = _backend_or_skip(spec)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)).astype(np.float32), (np.arange(40) % 3).astype(np.int64)
    probe = ProbeDropout(0.5)
    net = anynet.Network(
        [anynet.Dense(12), anynet.ReLU(), probe, anynet.Dense(3)], backend=backend, seed=7, input_shape=(6,)
    )
    start = net.get_weights()
    batches = []

    def augment(xb, r):
        batches.append(to_numpy(xb).copy())
        return xb

    net.fit(x, y, epochs=2, batch_size=16, augment=augment, **fit_kw)
    return start, batches, probe.masks


@pytest.mark.parametrize("spec", [s for s in BACKEND_SPECS if s != "numpy"])  # NumPy is the reference
def test_same_weights_batches_and_masks_as_numpy(spec):
    if _backend_or_skip(spec).accelerator:  # the host draws are what this test compares
        pytest.skip(f"{spec}: random='auto' draws with the device's own generator on a GPU (other numbers)")
    ref = record_run("numpy")
    got = record_run(spec)
    for a, b in zip(ref[0], got[0]):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    assert len(got[1]) == len(ref[1]) == 6
    for a, b in zip(ref[1], got[1]):
        np.testing.assert_array_equal(a, b)
    assert len(got[2]) == 6
    for a, b in zip(ref[2], got[2]):
        np.testing.assert_array_equal(a, b)


def test_device_generators_are_an_explicit_choice():
    ref = record_run("numpy")
    dev = record_run("torch", random="device")  # torch's own generator: other numbers
    assert any(not np.array_equal(a, b) for a, b in zip(ref[2], dev[2]))


def test_each_epoch_depends_only_on_seed_and_epoch():
    _, batches, masks = record_run("numpy")
    _, later_batches, later_masks = record_run("numpy", initial_epoch=1)
    assert len(later_batches) == 3
    for a, b in zip(batches[3:], later_batches):  # epoch 1's batch order, without running epoch 0
        np.testing.assert_array_equal(a, b)
    for a, b in zip(masks[3:], later_masks):
        np.testing.assert_array_equal(a, b)
    assert derive_seed(1, 2, 0) == derive_seed(1, 2, 0) != derive_seed(1, 3, 0)
    with pytest.raises(ValueError, match="random"):
        record_run("numpy", random="gpu-ish")
