"""anynet.train: inputs it accepts, what it returns and stores, errors, and the CI accuracy gate
on real MNIST (skipped when ANYNET_DATA_DIR is not set)."""

import numpy as np
import pytest

import anynet
from anynet.data import Dataset, Split
from anynet.models import MODEL_PRESETS
from anynet.run import TrainResult, train


def _blobs(n_per_class=40, k=3, seed=0):
    """k easy classes: a bright 6x6 square at a class-specific place, plus noise (uint8 28x28)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c in range(k):
        x = rng.integers(0, 40, (n_per_class, 28, 28), dtype=np.uint8)
        r, col = 4 + 6 * c, 20 - 6 * c
        x[:, r : r + 6, col : col + 6] = 250
        images.append(x)
        labels.append(np.full(n_per_class, c, np.int64))
    return np.concatenate(images), np.concatenate(labels)


@pytest.fixture(scope="module")
def blobs():
    x, y = _blobs(seed=0)
    xt, yt = _blobs(n_per_class=10, seed=1)
    return x, y, xt, yt


FAST = dict(model="mlp-small", hidden=(16,), epochs=3, batch_size=32, backend="numpy", verbose=False, lr=1e-2)


def test_train_on_arrays(blobs):
    result = train(blobs, **FAST)
    assert isinstance(result, TrainResult)
    model, history = result  # unpacks like a pair
    assert model is result.model and history is result.history
    assert len(history["loss"]) == 3 and len(history["val_accuracy"]) == 3
    assert result.test["accuracy"] >= 0.9
    assert set(result.test) == {"loss", "accuracy", "balanced_accuracy"}
    assert result.classes == ("0", "1", "2") and model.classes == ("0", "1", "2")
    np.testing.assert_array_equal(result.test_labels, blobs[3])
    assert result.test_predictions.shape == blobs[3].shape
    info = model.info
    assert isinstance(info, anynet.ModelInfo)
    assert info.preprocessing.input and info.preprocessing.scale
    assert info.preprocessing.style == "mnist" and info.dataset == "arrays"
    training = info.training
    assert training.train_samples == 108 and training.validation_samples == 12
    assert training.optimizer == "Adam" and training.schedule == "cosine"
    assert training.lr == 1e-2 and training.epochs == 3
    assert info.metrics["test_accuracy"] == result.test["accuracy"]
    assert info.history["loss"] == history["loss"]
    assert "test accuracy" in result.summary()


def test_dataset_object_names_classes_and_limit(blobs):
    x, y, xt, yt = blobs
    ds = Dataset("blobs", Split(x, y), Split(xt, yt), classes=("a", "b", "c"))
    result = train(ds, validation=None, limit=60, **FAST)
    assert result.dataset == "blobs" and result.model.classes == ("a", "b", "c")
    ds.name = "emnist-blobs"  # an EMNIST dataset is framed the EMNIST way
    assert train(ds, **FAST).model.info.preprocessing.style == "emnist"
    assert result.model.info.training.train_samples == 60
    assert "val_loss" not in result.history


def test_network_given_save_and_load(blobs, tmp_path):
    net = anynet.mlp((16,), num_classes=3, backend="numpy", optimizer=anynet.Adam(lr=1e-2), seed=3)
    result = train(
        blobs[:2],
        model=net,
        epochs=2,
        batch_size=32,
        backend="numpy",
        verbose=False,
        save=tmp_path / "m.safetensors",
    )
    assert result.model is net and result.test is None  # no test split given
    loaded = anynet.load_model(result.path)
    assert loaded.info.training.model == "custom"
    assert loaded.classes == ("0", "1", "2")
    np.testing.assert_allclose(
        anynet.to_numpy(loaded.predict_proba(blobs[0][:5])),
        anynet.to_numpy(net.predict_proba(blobs[0][:5])),
        rtol=1e-5,
        atol=1e-6,
    )


def test_augment_callable_sees_every_batch(blobs):
    calls = []

    def augment(xb, rng):
        calls.append(xb.shape[0])
        return xb

    train(blobs, augment=augment, validation=None, **FAST)
    assert sum(calls) == 3 * 120


def test_standard_augmentation_runs(blobs):
    result = train(blobs, augment="standard", **FAST)
    assert result.model.info.training.augment == "standard"


def test_sgd_and_custom_validation(blobs):
    x, y, xt, yt = blobs
    result = train((x, y, xt, yt), optimizer="sgd", validation=(xt, yt), **{**FAST, "lr": 0.05})
    assert result.model.info.training.optimizer == "SGD"
    assert result.model.info.training.validation_samples == len(yt)


def test_label_smoothing_reaches_the_preset_loss_and_the_file(blobs, tmp_path):
    result = train(blobs, label_smoothing=0.1, save=tmp_path / "s.safetensors", **FAST)
    assert result.model.loss.label_smoothing == 0.1
    assert anynet.load_model(result.path).loss.label_smoothing == 0.1
    plain = train(blobs, **FAST)
    assert plain.model.loss.label_smoothing == 0.0
    # smoothing changes the training (the targets differ), so the histories differ
    assert result.history["loss"] != plain.history["loss"]


def test_label_smoothing_is_refused_for_a_built_network(blobs):
    net = anynet.mlp((16,), num_classes=3, backend="numpy", seed=3)
    with pytest.raises(ValueError, match="label_smoothing"):
        train(blobs, **{**FAST, "model": net, "hidden": None, "label_smoothing": 0.1})


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"model": "resnet"}, ValueError, "unknown model"),
        ({"augment": "heavy"}, ValueError, "unknown augmentation"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"optimizer": "rmsprop"}, ValueError, "unknown optimizer"),
        ({"schedule": "linear"}, ValueError, "unknown schedule"),
        ({"backend": "nonesuch"}, anynet.BackendError, "unknown backend"),
        ({"label_smoothing": 1.0}, ValueError, "label_smoothing"),
    ],
)
def test_bad_arguments(blobs, kwargs, error, match):
    with pytest.raises(error, match=match):
        train(blobs, **{**FAST, **kwargs})


def test_bad_dataset_type():
    with pytest.raises(TypeError, match="dataset must be"):
        train(42, verbose=False)


def test_presets_are_described():
    assert {"mlp-small", "mlp", "mlp-large"} <= set(MODEL_PRESETS)
    assert all("about" in p and p["epochs"] >= 1 for p in MODEL_PRESETS.values())


def test_accuracy_gate_real_mnist(data_dir):
    """CI gate: one epoch of a small MLP on the real MNIST must reach 95% test accuracy
    (it gets about 96%); a regression in the forward/backward maths or the optimizer fails it."""
    result = train(
        "mnist",
        model="mlp-small",
        hidden=(128,),
        epochs=1,
        lr=2e-3,
        batch_size=64,
        validation=None,
        backend="numpy",
        data_dir=data_dir,
        verbose=False,
        seed=0,
    )
    assert result.test["accuracy"] >= 0.95, result.summary()
    assert result.model.classes == tuple("0123456789")
