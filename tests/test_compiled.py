"""Compiled training steps (``fit(..., compile=True)``, JAX): the same hand-written step traced
once and compiled, not a second implementation. Without random layers it trains exactly as the
uncompiled step does; with dropout it is repeatable and resumes where it stopped."""

from __future__ import annotations

import numpy as np
import pytest

import anynet

from .helpers import InterruptAt, _backend_or_skip, assert_same, blobs


def _net(backend, *, dropout=0.0, batchnorm=False, optimizer=None, seed=3):
    layers = [anynet.Dense(16)]
    layers += [anynet.BatchNorm()] if batchnorm else []
    layers += [anynet.ReLU()] + ([anynet.Dropout(dropout)] if dropout else []) + [anynet.Dense(3)]
    optimizer = optimizer or anynet.Adam(lr=5e-3, schedule="cosine")
    return anynet.Network(layers, optimizer=optimizer, backend=backend, seed=seed, input_shape=(8,))


def _fit(net, data, **options):
    x, y = data
    return net.fit(x, y, epochs=3, batch_size=20, **options)  # 96 = 4 x 20 + 16: two batch shapes


@pytest.fixture
def jax():
    return _backend_or_skip("jax")


@pytest.mark.parametrize(
    "case",
    [
        dict(),
        # (SGD: a bias before BatchNorm has a zero gradient but for rounding, which Adam scales up)
        dict(batchnorm=True, optimizer=lambda: anynet.SGD(lr=0.05, momentum=0.9)),
        dict(optimizer=lambda: anynet.AdamW(lr=1e-2, clip_norm=0.5, schedule="onecycle")),
        dict(optimizer=lambda: anynet.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
        dict(class_weight="balanced"),
    ],
    ids=["adam-cosine", "batchnorm", "adamw-clip-onecycle", "sgd-nesterov", "class-weight"],
)
def test_compiled_step_trains_as_the_eager_step_does(jax, case):
    case = dict(case)
    fit_options = {"class_weight": case.pop("class_weight")} if "class_weight" in case else {}
    make_optimizer = case.pop("optimizer", lambda: None)
    data = (blobs()[0], np.r_[np.zeros(60), np.arange(36) % 3].astype(np.int64))  # unbalanced
    histories, nets = [], []
    for compile_ in (False, True):
        nets.append(_net(jax, optimizer=make_optimizer(), **case))
        histories.append(_fit(nets[-1], data, compile=compile_, **fit_options))
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-6)
    assert histories[0]["accuracy"] == histories[1]["accuracy"]
    assert histories[0]["lr"] == histories[1]["lr"]
    assert nets[0].optimizer.steps == nets[1].optimizer.steps == 3 * 5
    assert_same(*nets, exact=False)  # the buffers (running statistics) too


def test_compiled_dropout_is_repeatable_and_its_own(jax):
    data = blobs()
    runs = [_fit(_net(jax, dropout=0.3), data, compile=True)["loss"] for _ in range(2)]
    assert runs[0] == runs[1]
    eager = _fit(_net(jax, dropout=0.3), data)["loss"]
    assert runs[0] != eager  # its masks come from JAX's keys, not the host generator
    learner = _net(jax, dropout=0.3)
    learner.fit(*data, epochs=10, batch_size=20, compile=True)
    assert learner.evaluate(*data)["accuracy"] > 0.9
    other_seed = _fit(_net(jax, dropout=0.3, seed=4), data, compile=True)["loss"]
    assert other_seed != runs[0]


def test_compiled_run_resumes_mid_epoch_where_it_stopped(jax, tmp_path):
    data = blobs()
    straight = _net(jax, dropout=0.3)
    _fit(straight, data, compile=True)
    with pytest.raises(KeyboardInterrupt):
        _fit(
            _net(jax, dropout=0.3), data, compile=True, callbacks=[InterruptAt(1, 2)], checkpoint_dir=tmp_path
        )
    resumed = _net(jax, dropout=0.3)
    history = _fit(resumed, data, compile=True, checkpoint_dir=tmp_path, resume=True)
    assert_same(straight, resumed, exact=False)
    np.testing.assert_allclose(history["loss"], straight.history["loss"], rtol=1e-6)


def test_resume_keeps_the_compiled_setting(jax, tmp_path):
    data = blobs()
    with pytest.raises(KeyboardInterrupt):
        _fit(_net(jax), data, compile=True, callbacks=[InterruptAt(0, 2)], checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="compiled"):
        _fit(_net(jax), data, checkpoint_dir=tmp_path, resume=True)


def test_compile_is_refused_where_the_library_does_not_compile():
    needs = r"compile=True \(--compile\) needs a backend that compiles training steps \(jax\), not numpy"
    with pytest.raises(ValueError, match=needs):
        _fit(_net("numpy"), blobs(), compile=True)


def test_compile_does_not_combine_with_distributed():
    with pytest.raises(ValueError, match=r"\(--compile\) trains in one process"):
        _fit(_net("numpy"), blobs(), compile=True, distributed="mpi")


def test_compiled_cnn_trains_as_the_eager_one_does(jax):
    rng = np.random.default_rng(1)
    x, y = rng.random((72, 1, 10, 10)).astype(np.float32), np.arange(72) % 3
    nets, histories = [], []
    for compile_ in (False, True):
        nets.append(
            anynet.cnn(
                (4,), num_classes=3, dense=8, dropout=0.0, backend=jax, seed=0, input_shape=(1, 10, 10)
            )
        )
        histories.append(nets[-1].fit(x, y, epochs=2, batch_size=32, compile=compile_, verbose=0)["loss"])
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-6)
    assert_same(*nets, exact=False)
