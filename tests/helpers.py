"""What more than one test module uses: the backends the tests know, checks on arrays, data
makers, small networks and callbacks, and the models trained once on real MNIST.

Fixtures and pytest hooks live in conftest.py; test modules import these from here.
"""

from __future__ import annotations

import base64
import functools
import os
import signal
from pathlib import Path

import numpy as np
import pytest

import anynet
from anynet.backend import BackendError, get_backend, to_numpy
from anynet.training import Callback

# ---------------------------------------------------------------------- backends

# Every backend the tests know; the ones that are not usable here are skipped with the reason.
BACKEND_SPECS = [
    "numpy",
    "array_api_strict",
    "array_api_strict:device1",  # a fake second device: catches arrays created on the wrong device
    "torch",
    "torch:cuda",
    "jax",  # immutable arrays: every update must be stored back (float64 in x64 mode, conftest)
    "cupy",
    # the CuPy test double (tests/cupy_double): CuPy's refusals and syncs, without a GPU (its
    # second fake GPU is tested in test_cupy_double.py: it needs the device context entered)
    "cupy_double",
]


def _backend_or_skip(spec):
    try:
        return get_backend(spec)
    except BackendError as exc:
        pytest.skip(f"{spec} not usable here: {exc}")


def assert_on(backend, array, dtype=None):
    """``array`` belongs to ``backend``'s namespace and device (and has ``dtype``)."""
    from array_api_compat import array_namespace, device

    assert array_namespace(array) is backend.xp, f"array of {type(array)} on backend {backend.spec}"
    assert str(device(array)) == str(backend.device), f"{device(array)} != {backend.device}"
    if dtype is not None:
        assert array.dtype == dtype, f"dtype {array.dtype} != {dtype}"


def host(a) -> np.ndarray:
    return to_numpy(a)


# ---------------------------------------------------------------------- data


def blobs(n=96, d=8, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, (k, d))
    y = np.arange(n) % k
    return (centres[y] + rng.normal(0, 1.0, (n, d))).astype(np.float32), y.astype(np.int64)


def _data(n=96, seed=0):
    """``n`` uint8 8x8 images, labelled by whether their top half is brighter than the bottom."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 8, 8), dtype=np.uint8)
    y = (x[:, :4].mean(axis=(1, 2)) > x[:, 4:].mean(axis=(1, 2))).astype(np.int64)
    return x, y


def data_url(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def _tensors(path) -> dict:
    """The tensors of a safetensors file, as NumPy arrays."""
    from safetensors.numpy import load_file

    return load_file(str(path))


# ---------------------------------------------------------------------- gradients

EPS = 1e-6


def _numeric_grad(f, value: np.ndarray) -> np.ndarray:
    """The central finite-difference gradient of ``f()`` with respect to ``value`` (changed in
    place and put back)."""
    grad = np.zeros_like(value)
    it = np.nditer(value, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        orig = value[i]
        value[i] = orig + EPS
        up = f()
        value[i] = orig - EPS
        down = f()
        value[i] = orig
        grad[i] = (up - down) / (2 * EPS)
    return grad


# ---------------------------------------------------------------------- a run to stop and resume


def make_net(backend="numpy"):
    return anynet.mlp(
        (16, 8),
        num_classes=3,
        dropout=0.25,
        backend=backend,
        seed=3,
        optimizer=anynet.Adam(lr=5e-3, schedule="cosine"),
    )


class InterruptAt(Callback):
    """Raise KeyboardInterrupt at the end of epoch ``epoch`` or after step ``step`` of it;
    ``sigint`` sends a real SIGINT instead (the loop finishes the step, then stops)."""

    def __init__(self, epoch, step=None, sigint=False):
        self.epoch, self.step, self.sigint, self.now = epoch, step, sigint, 0

    def on_epoch_begin(self, network, epoch):
        self.now = epoch

    def on_batch_end(self, network, step, running):
        if self.now == self.epoch and step == self.step:
            if self.sigint:
                os.kill(os.getpid(), signal.SIGINT)
            else:
                raise KeyboardInterrupt

    def on_epoch_end(self, network, epoch, logs):
        if epoch == self.epoch and self.step is None:
            raise KeyboardInterrupt


def augment(xb, rng):  # draws from the epoch's stream: its position must survive a resume
    return xb + rng.normal(tuple(xb.shape), 0.0, 0.05, dtype=xb.dtype)


def fit(net, data, **kw):
    x, y = data
    return net.fit(x, y, epochs=4, batch_size=16, validation_data=(x[:30], y[:30]), augment=augment, **kw)


def assert_same(a, b, exact=True):
    for la, lb in zip(a.get_weights(), b.get_weights()):
        for k in la:
            if exact:
                np.testing.assert_array_equal(la[k], lb[k])
            else:
                np.testing.assert_allclose(la[k], lb[k], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- models trained on real MNIST
# Trained once per test run (shared by the tests that need a model that actually reads digits:
# prediction helpers and the browser test).


@functools.cache
def mnist_mlp(data_dir: Path, epochs: int = 2):
    """784-128-10 ReLU MLP, ``epochs`` epochs of Adam on the 60,000 training digits (~97%
    test accuracy, a few seconds on one core). Returns ``(model, dataset)``."""
    from anynet.data import load
    from anynet.models import mlp

    data = load("mnist", data_dir=data_dir, download=False, progress=False)
    model = mlp(hidden=(128,), num_classes=10, classes=data.classes, backend="numpy", seed=0)
    model.fit(
        data.train.images.reshape(len(data.train.images), -1),
        data.train.labels,
        epochs=epochs,
        batch_size=128,
    )
    return model, data


@functools.cache
def mnist_cnn(data_dir: Path, epochs: int = 2, samples: int = 20000):
    """A narrow CNN (8 and 16 channels, dense 64), ``epochs`` epochs of Adam on ``samples``
    training digits (about 97 % test accuracy in some 20 s). Returns ``(model, dataset)``."""
    from anynet.data import load
    from anynet.models import cnn

    data = load("mnist", data_dir=data_dir, download=False, progress=False)
    model = cnn((8, 16), num_classes=10, dense=64, dropout=0.1, classes=data.classes, backend="numpy", seed=0)
    model.use_optimizer(anynet_adam(2e-3))
    model.fit(data.train.images[:samples], data.train.labels[:samples], epochs=epochs, batch_size=128)
    return model, data


def anynet_adam(lr: float):
    from anynet import Adam

    return Adam(lr=lr)
