"""Network behaviour on every backend: parity, dtype/device preservation, learning a
non-linear problem, moving between backends, callbacks and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

import anynet
from anynet import layers as L
from anynet.backend import BackendError, to_numpy
from anynet.training import Callback, EarlyStopping

from .helpers import _backend_or_skip, assert_on


def two_spirals(n_per_class=200, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.05, 1.0, n_per_class)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, noise / 10, (2 * n_per_class, 2))
    y = np.concatenate([np.zeros(n_per_class, np.int64), np.ones(n_per_class, np.int64)])
    return x.astype(np.float32), y


def small_net(backend, dtype="float32", seed=3, loss="cross_entropy", optimizer=None, classes=3):
    return anynet.Network(
        [L.Dense(8), L.Tanh(), L.Dense(6), L.ReLU(), L.Dropout(0.0), L.Dense(classes, init="glorot")],
        loss=loss,
        optimizer=optimizer,
        backend=backend,
        dtype=dtype,
        seed=seed,
        input_shape=(5,),
    )


def test_same_weights_and_inputs_give_same_outputs_on_every_backend(backend):
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    reference = to_numpy(small_net("numpy").predict_proba(x))
    got = small_net(backend).predict_proba(x)
    assert_on(backend, got, backend.xp.float32)
    np.testing.assert_allclose(to_numpy(got), reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_training_steps_agree_across_backends(backend, optimizer):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    kwargs = dict(epochs=2, batch_size=16, shuffle=False)
    ref = small_net("numpy", optimizer=optimizer)
    ref.fit(x, y, **kwargs)
    net = small_net(backend, optimizer=optimizer)
    net.fit(x, y, **kwargs)
    for a, b in zip(ref.get_weights(), net.get_weights()):
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5)
    assert net.history["loss"] == pytest.approx(ref.history["loss"], rel=1e-4)


def test_set_weights_copies_what_it_is_given(backend):
    """Training never writes into the caller's arrays (NumPy's ``asarray`` would alias them)."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(32, 5)).astype(np.float32), rng.integers(0, 3, 32)
    net = small_net(backend)
    given = net.get_weights()
    kept = [{k: v.copy() for k, v in layer.items()} for layer in given]
    net.set_weights(given)
    net.fit(x, y, epochs=1, batch_size=8)
    changed = False
    for layer, before, after in zip(given, kept, net.get_weights()):
        for k in layer:
            np.testing.assert_array_equal(layer[k], before[k], err_msg=f"set_weights aliased {k}")
            changed |= not np.array_equal(after[k], before[k])
    assert changed


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_and_device_are_preserved_through_training(backend, dtype):
    net = small_net(backend, dtype=dtype, optimizer="adam")
    want = backend.float_dtype(dtype)
    x = backend.asarray(np.random.default_rng(2).normal(size=(12, 5)), dtype=dtype)
    y = np.arange(12) % 3
    out, tape = net.forward_train(x)
    assert_on(backend, out, want)
    updates = net.backward(tape, out)
    assert len(updates) == len(net.parameters())
    for _, param, grad, _ in updates:
        assert_on(backend, param, want)
        assert_on(backend, grad, want)
    net.fit(x, y, epochs=1, batch_size=5)
    for _, _, p in net.parameters():
        assert_on(backend, p, want)
    assert net.optimizer.state
    for state in net.optimizer.state.values():
        for arr in state.values():
            assert_on(backend, arr, want)
    assert_on(backend, net.predict_proba(x), want)
    pred = net.predict(x)
    assert_on(backend, pred)
    assert to_numpy(pred).dtype.kind == "i"


def test_a_device_without_float64_trains_in_float32_and_refuses_float64():
    """array-api-strict's ``no_float64`` device: float32 training stays on it in float32, and a
    float64 network is refused up front with the reason (not a failure deep inside)."""
    backend = _backend_or_skip("array_api_strict:no_float64")
    assert backend.float_dtypes == ("float32",)
    net = small_net(backend, dtype="float32", optimizer="adam")
    x = backend.asarray(np.random.default_rng(2).normal(size=(12, 5)), dtype="float32")
    net.fit(x, np.arange(12) % 3, epochs=1, batch_size=5)
    for _, _, p in net.parameters():
        assert_on(backend, p, backend.xp.float32)
    with pytest.raises(BackendError, match="has no float64"):
        small_net(backend, dtype="float64")


def test_uint8_images_are_scaled_on_the_device(backend):
    images = np.random.default_rng(0).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    net = anynet.mlp((16,), backend=backend, input_shape=(28, 28))
    as_float = net.predict_proba(images.astype(np.float32) / 255)
    np.testing.assert_allclose(to_numpy(net.predict_proba(images)), to_numpy(as_float), rtol=1e-5, atol=1e-6)
    # flat and image-shaped inputs are the same thing
    np.testing.assert_allclose(
        to_numpy(net.predict_proba(images.reshape(4, 784))), to_numpy(as_float), rtol=1e-5, atol=1e-6
    )


def test_learns_two_spirals(backend):
    x, y = two_spirals()
    net = anynet.mlp(
        (64, 64), num_classes=2, activation="relu", backend=backend, seed=0, optimizer=anynet.Adam(lr=0.01)
    )
    net.fit(x, y, epochs=100, batch_size=32)
    assert net.evaluate(x, y)["accuracy"] >= 0.97


def test_full_batch_gradient_descent_decreases_the_loss():
    x, y = two_spirals(100)
    net = anynet.mlp(
        (32,),
        num_classes=2,
        backend="numpy",
        optimizer=anynet.GradientDescent(lr=0.5),
        loss="half_squared_error",
    )
    history = net.fit(x, y, epochs=30, batch_size=None)
    assert history["loss"][-1] < history["loss"][0]


def test_history_and_validation():
    x, y = two_spirals(50)
    net = anynet.mlp((16,), num_classes=2, backend="numpy")
    history = net.fit(x, y, epochs=3, validation_data=(x, y))
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert all(len(v) == 3 for v in history.values())
    assert history["val_accuracy"][-1] == pytest.approx(net.evaluate(x, y)["accuracy"])


def test_early_stopping_stops_and_restores_best_weights():
    x, y = two_spirals(50)

    class Recorder(Callback):
        def __init__(self):
            self.weights = []

        def on_epoch_end(self, network, epoch, logs):
            self.weights.append(network.get_weights())

    net = anynet.mlp((16,), num_classes=2, backend="numpy", optimizer=anynet.SGD(lr=5.0))
    rec, stop = Recorder(), EarlyStopping(monitor="val_loss", patience=2)
    history = net.fit(x, y, epochs=50, batch_size=8, validation_data=(x, y), callbacks=[stop, rec])
    assert len(history["loss"]) < 50
    best = int(np.argmin(history["val_loss"]))
    for a, b in zip(net.get_weights(), rec.weights[best]):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_move_between_backends_keeps_predictions(backend):
    x, y = two_spirals(40)
    net = anynet.mlp((16,), num_classes=2, backend="numpy")
    net.fit(x, y, epochs=2)
    before = to_numpy(net.predict_proba(x))
    net.to(backend)
    assert net.backend == backend
    after = net.predict_proba(x)
    assert_on(backend, after)
    np.testing.assert_allclose(to_numpy(after), before, rtol=1e-5, atol=1e-6)
    net.fit(x, y, epochs=1)  # training continues on the new backend, optimizer state moved too
    net.to("numpy")
    assert isinstance(net.predict(x), np.ndarray)


def test_same_seed_same_result():
    x, y = two_spirals(40)
    runs = []
    for _ in range(2):
        net = anynet.mlp((16,), num_classes=2, backend="numpy", seed=5, dropout=0.2)
        runs.append(net.fit(x, y, epochs=2, batch_size=16)["loss"])
    assert runs[0] == runs[1]


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def net():
    return small_net("numpy")


@pytest.mark.parametrize(
    "x, error, words",
    [
        (np.zeros((4, 6), np.float32), ValueError, "per-sample shape (6,)"),
        (np.zeros(5, np.float32), ValueError, "batch axis"),
        (np.zeros((0, 5), np.float32), ValueError, "empty"),
        (np.array([["a"] * 5]), TypeError, "numbers"),
        (np.full((2, 5), np.nan, np.float32), ValueError, "NaN"),
    ],
)
def test_bad_inputs_are_named(net, x, error, words):
    with pytest.raises(error, match=None) as info:
        net.predict(x)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "y, error, words",
    [
        (np.array([0, 1, 3, 0]), ValueError, "outside 0..2"),
        (np.array([0, 1, -1, 0]), ValueError, "outside 0..2"),
        (np.array([0.0, 1.0, 2.0, 0.0]), TypeError, "integer class labels"),
        (np.array([0, 1, 2]), ValueError, "3 entries for 4 samples"),
        (np.zeros((4, 7)), ValueError, "targets of shape (4, 3)"),
    ],
)
def test_bad_labels_are_named(net, y, error, words):
    with pytest.raises(error) as info:
        net.fit(np.zeros((4, 5), np.float32), y, epochs=1)
    assert words in str(info.value)


def test_divergence_is_reported_not_hidden():
    x, y = two_spirals(50)
    net = anynet.mlp((16,), num_classes=2, backend="numpy", optimizer=anynet.SGD(lr=1e30))
    with pytest.raises(FloatingPointError, match="diverged"):
        with np.errstate(all="ignore"):
            net.fit(x * 1e10, y, epochs=2)


def test_predict_before_fit_is_a_clear_error():
    net = anynet.mlp((4,), backend="numpy")
    with pytest.raises(RuntimeError, match="no weights yet"):
        net.predict(np.zeros((1, 784), np.float32))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="unknown loss"):
        anynet.Network([L.Dense(2)], loss="hinge")
    with pytest.raises(ValueError, match="unknown optimizer"):
        anynet.Network([L.Dense(2)], optimizer="rmsprop")
    with pytest.raises(ValueError, match="dtype"):
        anynet.Network([L.Dense(2)], dtype="float16")
    with pytest.raises(ValueError, match="Flatten"):
        anynet.Network([L.Dense(2)], input_shape=(28, 28))
    with pytest.raises(ValueError, match="class names"):
        anynet.Network([L.Dense(2)], input_shape=(3,), classes="abc")
    with pytest.raises(anynet.BackendError):
        anynet.Network([L.Dense(2)], backend="nope")


def test_summary_counts_parameters():
    net = anynet.mlp((10,), backend="numpy", input_shape=(28, 28))
    assert net.count_parameters() == 784 * 10 + 10 + 10 * 10 + 10
    assert "7960 parameters" in net.summary()


def test_eight_threads_predict_with_one_model_as_one_thread_does():
    """Inference writes no state: 8 threads sharing one model get the sequential answers."""
    from concurrent.futures import ThreadPoolExecutor

    net = anynet.mlp((64, 32), num_classes=10, backend="numpy", seed=1, dropout=0.2, input_shape=(28, 28))
    rng = np.random.default_rng(0)
    batches = [
        rng.integers(0, 256, size=(int(rng.integers(1, 40)), 28, 28), dtype=np.uint8) for _ in range(64)
    ]
    sequential = [to_numpy(net.predict_proba(b)) for b in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda b: to_numpy(net.predict_proba(b)), batches * 4))
    for i, got in enumerate(parallel):
        np.testing.assert_array_equal(got, sequential[i % len(batches)])
