"""Saved models: round trips onto every backend, atomic writes, and clear errors for corrupt,
truncated or foreign files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import anynet
from anynet import load_model
from anynet.backend import to_numpy
from anynet.io import ModelFileError, read_metadata, save_model

from .helpers import _tensors, assert_on


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(64, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 3, size=64)
    net = anynet.mlp((12,), num_classes=3, backend="numpy", classes="xyz", dropout=0.1)
    net.fit(x, y, epochs=2, batch_size=16)
    net.info.dataset = "random"
    path = save_model(net, tmp_path_factory.mktemp("m") / "model.safetensors", metrics={"accuracy": 0.5})
    return net, x, path


def test_round_trip_onto_every_backend(trained, backend):
    net, x, path = trained
    loaded = load_model(path, backend=backend)
    assert loaded.classes == ("x", "y", "z")
    assert loaded.info.dataset == "random"
    got = loaded.predict_proba(x)
    assert_on(backend, got, backend.xp.float32)
    np.testing.assert_allclose(to_numpy(got), to_numpy(net.predict_proba(x)), rtol=1e-5, atol=1e-6)
    assert loaded.get_config()["layers"] == net.get_config()["layers"]


def test_metadata_records_version_and_extras(trained):
    meta = read_metadata(trained[2])
    assert meta["anynet_version"] == anynet.__version__
    assert meta["metrics"] == {"accuracy": 0.5}
    assert meta["config"]["classes"] == ["x", "y", "z"]


def test_write_is_atomic(trained, tmp_path, monkeypatch):
    net, _, _ = trained
    target = tmp_path / "m.safetensors"
    save_model(net, target)
    before = target.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_model(net, target)
    assert target.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left


def test_truncated_file(trained, tmp_path):
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(trained[2].read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        load_model(bad)


@pytest.mark.parametrize("content", [b"", b"hello world, not a model", b"\xff" * 64])
def test_garbage_file(tmp_path, content):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    with pytest.raises(ModelFileError, match=str(bad.name)):
        load_model(bad)


def test_foreign_safetensors_file(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"weight": np.zeros((2, 2), np.float32)}, str(path))
    with pytest.raises(ModelFileError, match="not an anynet model"):
        load_model(path)


def test_weights_that_do_not_fit_the_architecture(trained, tmp_path):
    from safetensors.numpy import save

    _, _, path = trained
    meta = read_metadata(path)
    meta["config"]["layers"][1]["config"]["units"] = 99
    data = save(dict(_tensors(path).items()), metadata={"anynet": json.dumps(meta)})
    bad = tmp_path / "mismatch.safetensors"
    bad.write_bytes(data)
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(bad)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "nothing.safetensors")


def test_unbuilt_network_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="without weights"):
        save_model(anynet.mlp((3,)), tmp_path / "x.safetensors")


FIXTURES = Path(__file__).with_name("fixtures")


def test_a_model_file_written_by_anynet_0_1_0_still_loads(backend):
    """tests/fixtures/model-0.1.0.safetensors was written by the released 0.1.0 code; it loads
    into today's classes, on every backend, and gives the probabilities 0.1.0 gave."""
    expected = json.loads((FIXTURES / "model-0.1.0.expected.json").read_text())
    model = load_model(FIXTURES / "model-0.1.0.safetensors", backend=backend)
    assert model.classes == tuple("0123456789")
    info = model.info
    assert isinstance(info, anynet.ModelInfo)
    assert info.anynet_version == "0.1.0" and info.dataset == "mnist" and info.style == "mnist"
    assert info.training.model == "mlp-small" and info.training.train_samples == 2700
    assert len(info.history["loss"]) == 1 and "test_accuracy" in info.metrics
    x = _first_mnist_test_images(16)
    if x is None:
        pytest.skip("ANYNET_DATA_DIR is not set to a folder holding mnist/")
    got = to_numpy(model.predict_proba(x))
    np.testing.assert_allclose(got, np.array(expected["probabilities"]), rtol=1e-5, atol=1e-6)


def _first_mnist_test_images(n):
    from anynet.data import load

    if not os.environ.get("ANYNET_DATA_DIR"):
        return None
    return load("mnist", download=False, progress=False).test.images[:n]


def test_label_smoothing_is_saved_with_the_model(trained, tmp_path):
    net, x, _ = trained
    assert "loss_options" not in net.get_config()  # default files are as before
    smoothed = anynet.mlp((12,), num_classes=3, backend="numpy", loss=anynet.losses.SoftmaxCrossEntropy(0.1))
    smoothed.fit(x, np.arange(len(x)) % 3, epochs=1, batch_size=16)
    path = save_model(smoothed, tmp_path / "smoothed.safetensors")
    assert read_metadata(path)["config"]["loss_options"] == {"label_smoothing": 0.1}
    assert load_model(path).loss.label_smoothing == 0.1


@pytest.mark.parametrize("options", [{"label_smoothing": 1.5}, {"label_smoothing": "x"}, {"margin": 1.0}])
def test_bad_loss_options_are_named(trained, tmp_path, options):
    from safetensors.numpy import save

    _, _, path = trained
    meta = read_metadata(path)
    meta["config"]["loss_options"] = options
    bad = tmp_path / "bad-loss.safetensors"
    bad.write_bytes(save(dict(_tensors(path).items()), metadata={"anynet": json.dumps(meta)}))
    with pytest.raises(ModelFileError, match=r"loss_options|label_smoothing|takes no options"):
        load_model(bad)
