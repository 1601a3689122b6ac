"""A small MLP trained once per test run on real MNIST (shared by the tests that need a model
that actually reads digits: prediction helpers and the browser test)."""

from __future__ import annotations

import functools
from pathlib import Path


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
