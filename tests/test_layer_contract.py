"""The Layer contract's declared parts: parameter and buffer shapes, weight decay, random
sources (held by build, and used to check model files without allocating)."""

from __future__ import annotations

import numpy as np
import pytest

import anynet
from anynet.layers import LAYERS, Layer


@pytest.mark.parametrize(
    "layer, shape",
    [
        (anynet.Dense(7), (5,)),
        (anynet.Dense(7, use_bias=False), (5,)),
        (anynet.Conv2D(4, 3, padding="same"), (2, 6, 6)),
        (anynet.BatchNorm(), (3,)),
        (anynet.BatchNorm(), (3, 4, 4)),
        (anynet.Dropout(0.3), (5,)),
        (anynet.MaxPool2D(2), (2, 4, 4)),
    ],
)
def test_built_arrays_have_the_declared_shapes(layer, shape):
    layer.build(anynet.get_backend("numpy"), shape, rng=np.random.default_rng(0))
    assert {k: tuple(v.shape) for k, v in layer.params.items()} == layer.param_shapes(shape)
    assert {k: tuple(v.shape) for k, v in layer.buffers.items()} == layer.buffer_shapes(shape)
    assert layer.decayed <= set(layer.params)
    assert (layer.random is not None) == layer.draws_random


def test_weight_decay_follows_the_declared_names():
    assert anynet.Dense(3).decayed == {"W"} and anynet.Conv2D(2).decayed == {"W"}
    assert anynet.BatchNorm().decayed == frozenset()
    net = anynet.Network(
        [anynet.Dense(4), anynet.BatchNorm(), anynet.ReLU(), anynet.Dense(2)], input_shape=(3,)
    )
    out, tape = net.forward_train(net.inputs(np.ones((4, 3), np.float32)))
    updates = net.backward(tape, out)
    assert {name for name, _, _, decay in updates if decay} == {"0.W", "3.W"}


def test_build_holds_init_params_to_the_declared_shapes():
    class Lying(Layer):
        def param_shapes(self, input_shape):
            return {"W": (input_shape[0], 2)}

        def init_params(self, rng):
            return {"W": np.zeros((3, 3))}

    with pytest.raises(TypeError, match=r"Lying.init_params made \{'W': \(3, 3\)\}"):
        Lying().build(anynet.get_backend("numpy"), (4,))


def test_model_files_are_checked_from_the_declared_shapes(tmp_path, monkeypatch):
    """Reading a file's architecture never draws initial weights."""
    net = anynet.cnn((4,), num_classes=3, dense=8, backend="numpy", input_shape=(1, 8, 8))
    path = anynet.save_model(net, tmp_path / "m.safetensors")
    for cls in LAYERS.values():
        monkeypatch.setattr(cls, "init_params", lambda self, rng: pytest.fail("drew initial weights"))
    meta = anynet.io.read_metadata(path)
    assert meta["config"]["layers"][0]["type"] == "Conv2D"
