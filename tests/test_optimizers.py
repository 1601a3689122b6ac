"""Optimizer updates against their textbook formulas, schedules, and the subnormal flush."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from anynet import optimizers as O
from anynet.backend import to_numpy
from anynet.schedules import get_schedule


def _run(opt, backend, steps=5, decay=True):
    opt.bind(backend)
    rng = np.random.default_rng(0)
    p = backend.asarray(rng.normal(size=(3, 2)), dtype="float64")
    grads = [rng.normal(size=(3, 2)) for _ in range(steps)]
    for g in grads:  # step returns the new parameters (new arrays on an immutable library)
        p = opt.step([("p", p, backend.asarray(g, dtype="float64"), decay)])["p"]
    return to_numpy(p), grads


def _reference(name, p, grads, lr, wd=0.0, mu=0.9, b1=0.9, b2=0.999, eps=1e-8):
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if name == "sgd":
            p -= lr * (g + wd * p)
        elif name in ("momentum", "nesterov"):
            g = g + wd * p
            m = mu * m + g
            p -= lr * (g + mu * m) if name == "nesterov" else lr * m
        else:
            if name == "adamw":
                p -= lr * wd * p
            else:
                g = g + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


@pytest.mark.parametrize(
    "name, make",
    [
        ("sgd", lambda: O.SGD(lr=0.1, weight_decay=0.01)),
        ("momentum", lambda: O.SGD(lr=0.1, momentum=0.9, weight_decay=0.01)),
        ("nesterov", lambda: O.SGD(lr=0.1, momentum=0.9, nesterov=True)),
        ("adam", lambda: O.Adam(lr=0.01, weight_decay=0.01)),
        ("adamw", lambda: O.AdamW(lr=0.01, weight_decay=0.1)),
    ],
)
def test_updates_match_textbook_formulas(backend, name, make):
    opt = make()
    start = np.random.default_rng(0).normal(size=(3, 2))
    got, grads = _run(opt, backend)
    want = _reference(name, start, grads, opt.base_lr, opt.weight_decay)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_weight_decay_skips_biases(backend):
    opt = O.SGD(lr=0.1, weight_decay=0.5)
    got, grads = _run(opt, backend, steps=1, decay=False)
    start = np.random.default_rng(0).normal(size=(3, 2))
    np.testing.assert_allclose(got, start - 0.1 * grads[0])


def test_schedules():
    step = O.StepDecay(step_size=2, gamma=0.5)
    assert [step(e, 10) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    cos = O.CosineDecay(min_factor=0.1)
    assert cos(0, 10) == 1.0
    assert cos(5, 10) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cos(10, 10) == pytest.approx(0.1)
    warm = O.CosineDecay(warmup=3)
    assert [warm(e, 10) for e in range(3)] == [0.25, 0.5, 0.75]
    opt = O.Adam(lr=0.01, schedule="step")
    opt.start_epoch(10, 20)
    assert opt.lr == pytest.approx(0.001)


def test_subnormal_moments_are_flushed(backend):
    opt = O.Adam(lr=1e-3).bind(backend)
    p = backend.asarray(np.ones(4), dtype="float32")
    tiny = backend.asarray(np.array([1e-39, -1e-40, 0.0, 1.0]), dtype="float32")  # two subnormals
    for _ in range(O.FLUSH_EVERY):
        p = opt.step([("p", p, tiny, True)])["p"]
    m = to_numpy(opt.state["p"]["m"])
    v = to_numpy(opt.state["p"]["v"])
    assert m[0] == 0.0 and m[1] == 0.0 and m[3] > 0.5
    assert np.all((v == 0) | (np.abs(v) >= np.finfo(np.float32).tiny))


@pytest.mark.parametrize(
    "bad",
    [
        lambda: O.SGD(lr=0),
        lambda: O.SGD(lr=0.1, momentum=1.0),
        lambda: O.SGD(lr=0.1, nesterov=True),
        lambda: O.Adam(beta1=1.0),
        lambda: O.Adam(weight_decay=-1),
        lambda: O.StepDecay(step_size=0),
        lambda: O.get_optimizer("lbfgs"),
        lambda: get_schedule("linear"),
    ],
)
def test_bad_settings_raise(bad):
    with pytest.raises(ValueError):
        bad()


def test_cosine_reaches_min():
    assert math.isclose(O.CosineDecay(0.0)(9, 9), 0.0, abs_tol=1e-12)


def test_per_step_schedules():
    from anynet.schedules import LinearWarmup, OneCycle, WarmupCosine, is_per_step

    warm = LinearWarmup(warmup_steps=3)
    assert [warm(s, 10) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    wc = WarmupCosine(warmup_steps=2, min_factor=0.1)
    assert wc(2, 12) == 1.0 and wc(11, 12) == pytest.approx(0.1) and wc(0, 12) == pytest.approx(1 / 3)
    one = OneCycle(pct_start=0.25, div_factor=10, final_div_factor=100)
    values = [one(s, 101) for s in range(101)]
    assert values[0] == pytest.approx(0.1) and max(values) == pytest.approx(1.0)
    assert int(np.argmax(values)) == 24 and values[-1] == pytest.approx(0.1 / 100)
    assert all(is_per_step(get_schedule(n)) for n in ("warmup", "warmup-cosine", "onecycle"))
    assert not is_per_step(get_schedule("cosine"))
    opt = O.Adam(lr=0.1, schedule="onecycle")
    opt.start_epoch(0, 5)  # epoch hook leaves a per-step schedule alone
    assert opt.lr == 0.1
    opt.start_step(0, 100)
    assert opt.lr == pytest.approx(0.1 / 25)


def test_clip_norm_scales_all_gradients_together(backend):
    opt = O.SGD(lr=0.5, clip_norm=1.0).bind(backend)
    rng = np.random.default_rng(0)
    p1, p2 = rng.normal(size=(3, 2)), rng.normal(size=4)
    g1, g2 = 3 * rng.normal(size=(3, 2)), 3 * rng.normal(size=4)
    a = backend.asarray(p1, dtype="float32")
    b = backend.asarray(p2, dtype="float32")
    new = opt.step(
        [
            ("a", a, backend.asarray(g1, dtype="float32"), True),
            ("b", b, backend.asarray(g2, dtype="float32"), False),
        ]
    )
    a, b = new["a"], new["b"]
    norm = np.sqrt((g1**2).sum() + (g2**2).sum())
    assert norm > 1
    np.testing.assert_allclose(to_numpy(a), p1 - 0.5 * g1 / norm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(b), p2 - 0.5 * g2 / norm, rtol=1e-5, atol=1e-6)
    small = O.SGD(lr=0.5, clip_norm=1e6).bind(backend)  # below the limit: untouched
    c = backend.asarray(p1, dtype="float32")
    c = small.step([("c", c, backend.asarray(g1, dtype="float32"), True)])["c"]
    np.testing.assert_allclose(to_numpy(c), p1 - 0.5 * g1, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="clip_norm"):
        O.Adam(clip_norm=0)


def test_state_dict_round_trip(backend):
    opt = O.Adam(lr=0.01)
    _run(opt, backend, steps=3)
    state = opt.state_dict()
    assert state["steps"] == 3 and set(state["slots"]["p"]) == {"m", "v"}
    other = O.Adam(lr=0.5).bind(backend)
    other.load_state_dict(state)
    assert other.steps == 3 and other.base_lr == 0.01
    np.testing.assert_array_equal(to_numpy(other.state["p"]["v"]), state["slots"]["p"]["v"])
    with pytest.raises(ValueError, match="SGD"):
        O.SGD().bind(backend).load_state_dict(state)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda v: O.SGD(lr=v), "lr"),
        (lambda v: O.Adam(lr=v), "lr"),
        (lambda v: O.GradientDescent(lr=v), "lr"),
        (lambda v: O.SGD(lr=0.1, weight_decay=v), "weight_decay"),
        (lambda v: O.AdamW(weight_decay=v), "weight_decay"),
        (lambda v: O.Adam(clip_norm=v), "clip_norm"),
        (lambda v: O.SGD(lr=0.1, momentum=v), "momentum"),
        (lambda v: O.Adam(beta1=v), "beta1"),
        (lambda v: O.Adam(beta2=v), "beta2"),
        (lambda v: O.Adam(eps=v), "eps"),
    ],
)
@pytest.mark.parametrize("value", [NAN, INF, -INF, -1.0, "fast"])
def test_non_finite_or_out_of_range_settings_are_named(make, name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be .*, got {re.escape(repr(value))}$"):
        make(value)


@pytest.mark.parametrize("option", ["lr", "weight_decay", "clip_norm"])
def test_train_refuses_non_finite_settings_before_training(option, monkeypatch):
    """``anynet.train(lr=inf)`` fails at once, not as divergence after an epoch."""
    import anynet

    monkeypatch.setattr(anynet.Network, "fit", lambda *a, **k: pytest.fail("training started"))
    x = np.zeros((20, 28, 28), np.uint8)
    with pytest.raises(ValueError, match=rf"^{option} must be"):
        anynet.train(dataset=(x, np.arange(20) % 2), backend="numpy", verbose=0, **{option: INF})
