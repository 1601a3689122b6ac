"""ONNX export by tracing with ndonnx, checked in onnxruntime (an engine no one here wrote):
every layer kind exports, the batch size is free (1 and 1000 from the same file), and on real
MNIST test images the probabilities agree with anynet's on NumPy to 1e-5 in float32."""

from __future__ import annotations

import json

import numpy as np
import pytest

import anynet
from anynet import layers as L
from anynet.cli import main

ndx = pytest.importorskip("ndonnx", reason="ONNX export needs ndonnx: pip install 'anynet[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the check needs onnxruntime: pip install 'anynet[onnx]'")


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _probabilities(session, x):
    return session.run(["probabilities"], {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]


def test_every_layer_kind_exports(tmp_path):
    net = anynet.Network(
        [
            L.Conv2D(4, 3, padding="same"),
            L.BatchNorm(),
            L.LeakyReLU(0.1),
            L.AveragePool2D(2),
            L.Conv2D(4, 3),
            L.Tanh(),
            L.MaxPool2D(2),
            L.GlobalAveragePooling2D(),
            L.Dense(8),
            L.ReLU(),
            L.Dropout(0.3),
            L.Dense(8),
            L.Sigmoid(),
            L.Dense(6),
            L.Softmax(),
        ],
        loss="mse",
        backend="numpy",
        input_shape=(1, 12, 12),
        classes="abcdef",
    )
    rng = np.random.default_rng(0)
    net.fit(rng.random((40, 1, 12, 12)).astype(np.float32), np.arange(40) % 6, epochs=1, batch_size=8)
    path = anynet.export_onnx(net, tmp_path / "all.onnx")
    session = _session(path)
    x = rng.random((7, 1, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(_probabilities(session, x), anynet.to_numpy(net.predict_proba(x)), atol=1e-5)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    assert inputs[0].name == "x" and inputs[0].shape == ["N", 1, 12, 12]
    assert outputs[0].name == "probabilities" and outputs[0].shape == ["N", 6]
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == list("abcdef") and meta["anynet_version"] == anynet.__version__


def test_an_unbuilt_network_is_refused(tmp_path):
    with pytest.raises(ValueError, match="without weights"):
        anynet.export_onnx(anynet.mlp((4,), num_classes=3, backend="numpy"), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.fixture(scope="module")
def mnist(data_dir):
    from anynet.data import load

    return load("mnist", data_dir=data_dir, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_onnxruntime_reads_mnist_as_anynet_does(mnist, kind, tmp_path):
    """A briefly trained MLP and CNN, through the command line: on real MNIST test images,
    batch 1 and 1000 from one file, probabilities within 1e-5 of anynet's, and the same
    test-set accuracy."""
    shape = (1, 28, 28) if kind == "cnn" else (28, 28)
    net = (
        anynet.mlp((64,), num_classes=10) if kind == "mlp" else anynet.cnn((8, 16), num_classes=10, dense=32)
    )
    net = anynet.Network(net.layers, backend="numpy", seed=1, classes="0123456789")
    x_train = mnist.train.images[:3000].reshape(-1, *shape)
    net.fit(x_train, mnist.train.labels[:3000], epochs=1, batch_size=64)
    model_file = anynet.save_model(net, tmp_path / f"{kind}.safetensors")
    assert main(["export", "--model", str(model_file), str(tmp_path / f"{kind}.onnx")]) == 0
    session = _session(tmp_path / f"{kind}.onnx")
    x = mnist.test.images.reshape(-1, *shape).astype(np.float32) / 255.0
    ours = anynet.to_numpy(net.predict_proba(mnist.test.images.reshape(-1, *shape)))
    for n in (1, 1000):
        np.testing.assert_allclose(_probabilities(session, x[:n]), ours[:n], rtol=0, atol=1e-5)
    theirs = np.concatenate([_probabilities(session, x[lo : lo + 2500]) for lo in range(0, len(x), 2500)])
    labels = mnist.test.labels
    assert (theirs.argmax(1) == labels).mean() == (ours.argmax(1) == labels).mean() > 0.6


def test_the_export_command_says_what_is_wrong(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ANYNET_HOME", str(tmp_path))
    assert main(["export", str(tmp_path / "m.onnx")]) == 1  # no model trained yet
    assert "no model given and none recorded" in capsys.readouterr().err
    net = anynet.mlp((4,), num_classes=3, backend="numpy", input_shape=(5,))
    model_file = anynet.save_model(net, tmp_path / "m.safetensors")
    (tmp_path / "folder.onnx").mkdir()
    assert main(["export", "--model", str(model_file), str(tmp_path / "folder.onnx")]) == 1
    assert "is a folder, not a regular file" in capsys.readouterr().err
