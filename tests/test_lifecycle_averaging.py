"""WeightAveraging: the average it leaves in the network is the stated recurrence over the
weights of every step, on every backend, and it survives a checkpoint and resume."""

from __future__ import annotations

import numpy as np
import pytest

import anynet
from anynet.training import Callback, WeightAveraging

from .helpers import InterruptAt, assert_same, blobs, fit, make_net


class Recorder(Callback):
    """Host copies of the weights before training and after every step."""

    def on_train_begin(self, network, epochs, steps_per_epoch):
        self.weights = [network.get_weights()]

    def on_batch_end(self, network, step, running):
        self.weights.append(network.get_weights())


def expected_average(snapshots, decay):
    """The recurrence of the docstring, in float64 on the host."""
    average = [{k: v.astype(np.float64) for k, v in layer.items()} for layer in snapshots[0]]
    for t, weights in enumerate(snapshots[1:]):
        d = min(decay, (1 + t) / (10 + t))
        for avg, layer in zip(average, weights):
            for k in avg:
                avg[k] = d * avg[k] + (1 - d) * layer[k]
    return average


def batch_norm_net(backend):
    layers = [anynet.Dense(12), anynet.BatchNorm(), anynet.ReLU(), anynet.Dense(3)]
    return anynet.Network(layers, backend=backend, seed=1, optimizer=anynet.Adam(lr=2e-2))


def test_the_network_ends_with_the_average_of_every_step(backend):
    x, y = blobs()
    net, recorder = batch_norm_net(backend), Recorder()
    net.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[recorder, WeightAveraging(decay=0.9)])
    want = expected_average(recorder.weights, 0.9)
    got, last = net.get_weights(), recorder.weights[-1]
    assert len(recorder.weights) == 2 * 6 + 1
    for g, w in zip(got, want):
        assert set(g) == set(w)
        for k in g:
            np.testing.assert_allclose(g[k], w[k], rtol=1e-4, atol=1e-6, err_msg=k)
    # the swap happened: batch norm's statistics and the weights differ from the last step's
    assert not np.allclose(got[1]["mean"], last[1]["mean"])
    assert not np.allclose(got[0]["W"], last[0]["W"])


def test_decay_zero_keeps_the_last_weights():
    x, y = blobs()
    net, recorder = batch_norm_net("numpy"), Recorder()
    net.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[recorder, WeightAveraging(decay=0.0)])
    for got, raw in zip(net.get_weights(), recorder.weights[-1]):
        for k in got:
            np.testing.assert_array_equal(got[k], raw[k])


@pytest.mark.parametrize("decay", [1.0, -0.1, float("nan"), "0.9", None])
def test_bad_decay_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAveraging(decay)


def test_the_average_survives_a_checkpoint_and_resume(tmp_path):
    data = blobs()
    straight = make_net()
    fit(straight, data, callbacks=[WeightAveraging(0.95)])
    with pytest.raises(KeyboardInterrupt):
        fit(make_net(), data, callbacks=[WeightAveraging(0.95), InterruptAt(2, 3)], checkpoint_dir=tmp_path)
    resumed = make_net()
    fit(resumed, data, callbacks=[WeightAveraging(0.95)], checkpoint_dir=tmp_path, resume=True)
    assert_same(straight, resumed)
    plain = make_net()
    fit(plain, data)
    with pytest.raises(AssertionError):  # and the average is not the plain run's weights
        assert_same(straight, plain)
