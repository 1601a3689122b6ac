"""Immutable arrays really train: every state change (parameters, moments, running statistics,
averages) is stored back by its owner, so JAX, whose arrays cannot change, trains exactly as
NumPy does, and no backend can silently skip an update."""

from __future__ import annotations

import numpy as np
import pytest

import anynet
from anynet.training import WeightAveraging

from .helpers import _backend_or_skip as backend_or_skip


def _data(n=96, d=8, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, (k, d))
    y = np.arange(n) % k
    return (centres[y] + rng.normal(0, 1.0, (n, d))).astype(np.float32), y


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_training_changes_every_parameter_and_lowers_the_loss(backend, optimizer):
    x, y = _data()
    net = anynet.Network(
        [anynet.Dense(16), anynet.BatchNorm(), anynet.ReLU(), anynet.Dropout(0.1), anynet.Dense(3)],
        optimizer=anynet.optimizers.get_optimizer(optimizer, lr=0.05, weight_decay=1e-3),
        backend=backend,
        seed=2,
        input_shape=(8,),
    )
    before = net.get_weights()
    history = net.fit(x, y, epochs=5, batch_size=16, callbacks=[WeightAveraging(0.5)])
    after = net.get_weights()
    for i, (a, b) in enumerate(zip(before, after)):
        for name in a:
            assert not np.array_equal(a[name], b[name]), f"layer {i} {name} did not change on {backend.spec}"
    assert history["loss"][-1] < 0.7 * history["loss"][0], history["loss"]


def test_jax_trains_as_numpy_does():
    jax = backend_or_skip("jax")
    runs = []
    for backend in ("numpy", jax):
        net = anynet.cnn(
            (4,), num_classes=3, dense=8, dropout=0.2, backend=backend, seed=0, input_shape=(1, 8, 8)
        )
        images = np.random.default_rng(1).random((48, 1, 8, 8)).astype(np.float32)
        runs.append((net.fit(images, np.arange(48) % 3, epochs=2, batch_size=16)["loss"], net.get_weights()))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-5)
    for a, b in zip(runs[0][1], runs[1][1]):
        for name in a:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_jax_is_named_by_its_library_and_its_namespace():
    jax = backend_or_skip("jax")
    assert jax.xp.__name__ == "jax.numpy" and anynet.get_backend("jax.numpy") is jax
    assert "jax" in anynet.available_backends()
    params = anynet.mlp((4,), num_classes=2, backend="jax", input_shape=(3,)).layers[1].params["W"]
    assert anynet.backend_of(params) is jax
