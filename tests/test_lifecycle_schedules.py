"""Per-step schedules inside fit, the learning-rate range test, class weights."""

from __future__ import annotations

import numpy as np
import pytest

import anynet
from anynet.backend import get_backend
from anynet.losses import SoftmaxCrossEntropy, get_loss
from anynet.schedules import WarmupCosine
from anynet.training import Callback, lr_find
from anynet.training.weighting import ClassWeightedLoss, class_weight_vector


def blobs(n=64, k=2):
    rng = np.random.default_rng(0)
    y = np.arange(n) % k
    return (rng.normal(size=(n, 4)) + 2 * y[:, None]).astype(np.float32), y.astype(np.int64)


def test_per_step_schedule_moves_the_rate_every_step():
    x, y = blobs()
    rates = []

    class Watch(Callback):
        def on_batch_end(self, network, step, running):
            rates.append(network.optimizer.lr)

    sched = WarmupCosine(warmup_steps=3)
    net = anynet.mlp((4,), num_classes=2, backend="numpy", optimizer=anynet.Adam(lr=0.1, schedule=sched))
    net.fit(x, y, epochs=2, batch_size=16, callbacks=[Watch()])
    assert rates == pytest.approx([0.1 * sched(s, 8) for s in range(8)])
    assert rates[0] < rates[3] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.0)
    assert len(set(rates[:4])) == 4  # four steps of the first epoch, four rates


def test_lr_find_leaves_the_network_as_it_was(tmp_path):
    x, y = blobs(128)
    net = anynet.mlp((8,), num_classes=2, backend="numpy", input_shape=(4,))
    before = net.get_weights()
    result = lr_find(net, x, y, start_lr=1e-5, end_lr=10.0, steps=40, batch_size=16)
    assert len(result.lrs) == len(result.losses) >= 10
    assert np.all(np.diff(result.lrs) > 0)
    assert result.suggestion is not None and 1e-5 <= result.suggestion <= 10.0
    for a, b in zip(before, net.get_weights()):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    assert net.optimizer.steps == 0
    result.plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").stat().st_size > 1000


def test_class_weights_scale_each_samples_loss_and_gradient():
    b = get_backend("numpy")
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 3))
    labels = np.array([0, 1, 2, 2, 1, 0])
    t = np.eye(3)[labels]
    w = np.array([2.0, 0.5, 1.0])
    loss = ClassWeightedLoss(SoftmaxCrossEntropy().bind(b), w.reshape(1, 3))
    value, ctx = loss.forward(logits, t)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    per = -np.log(p[np.arange(6), labels])
    assert float(value) == pytest.approx(np.sum(w[labels] * per) / 6)
    np.testing.assert_allclose(loss.backward(ctx), w[labels][:, None] * (p - t) / 6)
    for name in ("mse", "half_squared_error"):  # uniform weights change nothing
        base = get_loss(name).bind(b)
        same = ClassWeightedLoss(base, np.ones((1, 3)))
        assert float(same.forward(logits, t)[0]) == pytest.approx(float(base.forward(logits, t)[0]))
    # label smoothing: the weighted value and gradient both use the smoothed targets
    smoothed = ClassWeightedLoss(SoftmaxCrossEntropy(label_smoothing=0.3).bind(b), w.reshape(1, 3))
    value, ctx = smoothed.forward(logits, t)
    soft = 0.7 * t + 0.1
    per = -np.sum(soft * np.log(p), axis=1)
    assert float(value) == pytest.approx(np.sum(w[labels] * per) / 6)
    np.testing.assert_allclose(smoothed.backward(ctx), w[labels][:, None] * (p - soft) / 6)
    np.testing.assert_allclose(class_weight_vector("balanced", np.eye(3)[[0, 0, 0, 1]]), [4 / 9, 4 / 3, 1.0])
    np.testing.assert_allclose(class_weight_vector({"b": 3}, t, classes="abc"), [1, 3, 1])


def test_class_weight_in_fit_changes_training():
    x, y = blobs()
    runs = []
    for cw in (None, {0: 5.0}):
        net = anynet.mlp((4,), num_classes=2, backend="numpy")
        runs.append(net.fit(x, y, epochs=2, batch_size=16, class_weight=cw, validation_data=(x, y)))
    assert runs[0]["loss"] != runs[1]["loss"]
    with pytest.raises(ValueError, match="needs 2 weights"):
        anynet.mlp((4,), num_classes=2, backend="numpy").fit(x, y, epochs=1, class_weight=[1, 2, 3])
