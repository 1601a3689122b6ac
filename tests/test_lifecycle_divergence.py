"""Divergence: NaN/inf or an exploding loss stops training with TrainingDivergedError, and
anynet.train then saves nothing."""

from __future__ import annotations

import numpy as np
import pytest

import anynet
from anynet.run import train
from anynet.training import Callback, TerminateOnNaN, TrainingDivergedError


def blobs(n=120, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(size=(n, 28, 28)).astype(np.float32) + y[:, None, None]
    return x, y.astype(np.int64)


def test_lr_1e10_diverges_names_the_learning_rate_and_saves_nothing(tmp_path):
    x, y = blobs()
    out = tmp_path / "model.safetensors"
    with np.errstate(all="ignore"), pytest.raises(TrainingDivergedError, match="learning rate") as info:
        train(
            (x, y),
            model="mlp-small",
            hidden=(16,),
            epochs=3,
            batch_size=16,
            lr=1e10,
            backend="numpy",
            verbose=False,
            save=out,
            checkpoint_dir=tmp_path / "ckpt",
        )
    assert isinstance(info.value, FloatingPointError)
    assert not out.exists()
    assert not (tmp_path / "ckpt").exists()  # a diverged state is never checkpointed


def test_a_finite_but_exploding_loss_is_caught_at_the_epoch_end():
    x, y = blobs()
    net = anynet.mlp((8,), num_classes=3, backend="numpy")
    real_step, calls = net.train_step, []

    def exploding(xb, tb):  # the loss grows 100x per step: finite, but far above where it began
        loss, hits = real_step(xb, tb)
        calls.append(1)
        return loss * (100.0 ** len(calls)), hits

    net.train_step = exploding
    with pytest.raises(TrainingDivergedError, match="above 10x"):
        net.fit(x.reshape(120, -1), y, epochs=3, batch_size=16)
    assert len(calls) == 8  # stopped at the end of the first epoch, not later


def test_a_trained_network_trains_on_though_its_batch_losses_vary_many_times_over():
    """A network trained before starts a run at a small loss (0.01 here) and has batches ten or
    twenty times above it: that is no divergence (it was, with the threshold 10x the first loss)."""
    x, y = blobs()
    net = anynet.mlp((8,), num_classes=3, backend="numpy")
    real_step, calls = net.train_step, []

    def trained(xb, tb):
        loss, hits = real_step(xb, tb)
        calls.append(1)
        return loss * 0.0 + (0.01 if len(calls) == 1 else 0.2), hits

    net.train_step = trained
    history = net.fit(x.reshape(120, -1), y, epochs=2, batch_size=16)
    assert len(calls) == 16 and history["loss"][-1] == pytest.approx(0.2)


def test_terminate_on_nan_stops_within_the_epoch():
    x, y = blobs()
    seen = []

    class Count(Callback):
        def on_batch_end(self, network, step, running):
            seen.append(step)

    net = anynet.mlp((8,), num_classes=3, backend="numpy", optimizer=anynet.SGD(lr=1e30))
    with np.errstate(all="ignore"), pytest.raises(TrainingDivergedError, match="step"):
        net.fit(
            x.reshape(120, -1) * 1e10,
            y,
            epochs=2,
            batch_size=4,
            callbacks=[Count(), TerminateOnNaN(check_every=2)],
        )
    assert len(seen) < 30  # an epoch has 30 steps
