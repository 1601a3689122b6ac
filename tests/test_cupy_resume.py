"""CuPy's generator is resumable (on the CuPy test double): a source's position is its seed and
how many draws it made, so a source put back there draws the same numbers, and a run
interrupted inside an epoch in device random mode resumes bit for bit.

cuRAND generators have no state to save (CuPy's ``RandomState`` has no ``get_state``); anynet's
``CupyRandom`` seeds its generator afresh for every draw from ``(seed, draw number)``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import anynet
from anynet.backend import get_backend, to_numpy
from anynet.data.augment import Augmenter
from anynet.training import Callback, read_checkpoint
from anynet.training.seeding import get_random_state, set_random_state

from . import cupy_double as cp
from .helpers import _data, assert_on


def _draws(source, dtype="float32"):
    """One of each draw anynet makes: a shuffle, uniform and normal numbers."""
    return [
        source.permutation(10),
        source.uniform((3, 4), -1.0, 2.0, dtype=dtype),
        source.normal((5,), dtype=dtype),
    ]


@pytest.mark.parametrize("spec", ["cupy_double", "cupy_double:1"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_position_restored_into_a_fresh_source_gives_the_same_draws(spec, dtype):
    backend = get_backend(spec)
    source = backend.random(7)
    _draws(source, dtype)
    w = cp.watch()
    state = json.loads(json.dumps(get_random_state(source)))  # as a checkpoint stores it
    assert state == {"kind": "counter", "seed": 7, "draws": 3}
    expected = _draws(source, dtype)
    fresh = backend.random(12345)
    set_random_state(fresh, state)
    got = _draws(fresh, dtype)
    assert w.syncs == [] and [d for _, d in w.draws[-2:]] == [dtype, dtype]
    for a, b in zip(expected, got):
        assert_on(backend, b)
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert got[1].dtype == backend.float_dtype(dtype) and got[0].dtype == backend.xp.int64
    assert get_random_state(fresh) == get_random_state(source)


def test_every_draw_has_numbers_of_its_own():
    """The draw counter and the seed both change the numbers (a source that reseeded every
    draw alike would make restoring trivially 'exact')."""
    backend = get_backend("cupy_double")
    a, b = backend.random(1), backend.random(2)
    first, second = a.uniform((50,)), a.uniform((50,))
    other = b.uniform((50,))
    assert not np.array_equal(to_numpy(first), to_numpy(second))
    assert not np.array_equal(to_numpy(first), to_numpy(other))
    again = backend.random(1)
    np.testing.assert_array_equal(to_numpy(again.uniform((50,))), to_numpy(first))


def test_an_unseeded_source_is_resumable_too():
    backend = get_backend("cupy_double")
    source = backend.random(None)
    state = source.get_state()
    assert isinstance(state["seed"], int) and 0 <= state["seed"] < 2**64
    expected = to_numpy(source.normal((6,)))
    fresh = backend.random(None)
    fresh.set_state(state)
    np.testing.assert_array_equal(to_numpy(fresh.normal((6,))), expected)


@pytest.mark.parametrize(
    "state",
    [
        {"kind": "pcg64", "state": {}},
        {"kind": "counter", "seed": 1, "draws": -1},
        {"kind": "counter", "seed": 2**64, "draws": 0},
        {"kind": "counter", "seed": True, "draws": 0},
        {"kind": "counter", "seed": 1},
        ["counter", 1, 0],
    ],
)
def test_set_state_refuses_what_is_no_position(state):
    source = get_backend("cupy_double").random(0)
    with pytest.raises(ValueError):
        source.set_state(state)
    assert source.get_state() == {"kind": "counter", "seed": 0, "draws": 0}


# ---------------------------------------------------------------------- a whole run


class _StopAt(Callback):
    """Raise ``error`` after step ``step`` (0-based) of epoch ``epoch``."""

    def __init__(self, epoch, step, error):
        self.epoch, self.step, self.error, self.now = epoch, step, error, -1

    def on_epoch_begin(self, network, epoch):
        self.now = epoch

    def on_batch_end(self, network, step, running):
        if (self.now, step) == (self.epoch, self.step):
            raise self.error


def _fit(checkpoint_dir=None, callbacks=(), **options):
    """An MLP with dropout trained on the double in device random mode with augmentation (6
    steps per epoch)."""
    x, y = _data()
    net = anynet.mlp((16,), num_classes=2, dropout=0.25, backend="cupy_double", seed=1)
    augment = Augmenter(rotation=8, translation=1, elastic_alpha=3, elastic_sigma=2)
    history = net.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        seed=4,
        random="device",
        augment=augment,
        validation_data=(x[:32], y[:32]),
        checkpoint_dir=checkpoint_dir,
        checkpoint_steps=4,
        callbacks=list(callbacks),
        **options,
    )
    return net, history


@pytest.mark.parametrize(
    "error, resumes_at",
    [(KeyboardInterrupt(), 3), (RuntimeError("crash"), 2)],
    ids=["ctrl-c-mid-epoch", "crash-after-a-step-checkpoint"],
)
def test_a_run_interrupted_inside_an_epoch_resumes_bit_for_bit(tmp_path, capsys, error, resumes_at):
    """Ctrl-C after step 3 of epoch 2 saves there; a crash after step 5 leaves the checkpoint
    ``checkpoint_steps=4`` wrote after step 2. Either way the resumed run ends where the
    straight one does."""
    straight, history = _fit()
    with pytest.raises(type(error)):
        _fit(tmp_path, [_StopAt(1, 4 if resumes_at == 2 else 2, error)])
    capsys.readouterr()
    saved = read_checkpoint(tmp_path)
    assert (saved["epoch"], saved["step"]) == (1, resumes_at)
    positions = saved["random_state"]
    assert positions["stream"]["kind"] == "counter" and positions["stream"]["draws"] > 1
    assert [p["kind"] for p in positions["layers"].values()] == ["counter"]
    resumed, resumed_history = _fit(tmp_path, resume=True)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert resumed_history[key] == history[key], key
