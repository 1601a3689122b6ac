"""Analytic gradients of every layer and loss against central finite differences in float64,
on every installed backend (hypothesis draws shapes, values and parameters), and against
torch.autograd where PyTorch is installed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anynet import layers as L
from anynet import losses
from anynet.backend import get_backend
from anynet.losses import one_hot

from .helpers import _numeric_grad, host

SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TOL = 1e-6


def _away_from_kinks(x):
    """Move values away from 0, where ReLU-like functions have no derivative."""
    return np.where(np.abs(x) < 0.05, x + np.sign(x + 1e-12) * 0.1, x)


LAYER_CASES = {
    "Dense-he": lambda: L.Dense(3, init="he"),
    "Dense-glorot-nobias": lambda: L.Dense(2, init="glorot", use_bias=False),
    "ReLU": L.ReLU,
    "LeakyReLU": lambda: L.LeakyReLU(0.1),
    "Sigmoid": L.Sigmoid,
    "Tanh": L.Tanh,
    "Softmax": L.Softmax,
    "Dropout": lambda: L.Dropout(0.4),
    "Flatten": L.Flatten,
}


def _build(make, backend, in_shape, seed):
    layer = make()
    layer.build(backend, in_shape, dtype="float64", rng=np.random.default_rng(seed))
    return layer


def _forward(layer, x_host, backend, seed):
    """``(y, ctx)`` of a training-mode forward pass (Dropout: the same mask every time)."""
    if isinstance(layer, L.Dropout):
        layer.random = backend.random(seed)
    return layer.forward(backend.asarray(x_host, dtype="float64"), training=True)


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
@SETTINGS
@given(batch=st.integers(1, 3), features=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_layer_gradients_match_finite_differences(backend, case, batch, features, seed):
    make = LAYER_CASES[case]
    rng = np.random.default_rng(seed)
    in_shape = (2, features) if case == "Flatten" else (features,)
    layer = _build(make, backend, in_shape, seed)
    x = _away_from_kinks(rng.normal(size=(batch, *in_shape)))
    out, ctx = _forward(layer, x, backend, seed)
    r = rng.normal(size=out.shape)  # objective: sum(forward(x) * r)
    params = {k: host(v).copy() for k, v in layer.params.items()}

    dx, grads = layer.backward(ctx, backend.asarray(r, dtype="float64"))
    dx = host(dx)
    analytic = {k: host(v) for k, v in grads.items()}
    assert set(analytic) == set(params)

    def objective():
        for k, v in params.items():
            layer.params[k] = backend.asarray(v, dtype="float64")
        return float(np.sum(host(_forward(layer, x, backend, seed)[0]) * r))

    np.testing.assert_allclose(dx, _numeric_grad(objective, x), rtol=TOL, atol=TOL)
    for name, value in params.items():
        np.testing.assert_allclose(
            analytic[name], _numeric_grad(objective, value), rtol=TOL, atol=TOL, err_msg=f"d/d{name}"
        )


LOSS_CASES = {
    "cross_entropy": losses.SoftmaxCrossEntropy,
    "cross_entropy_smoothed": lambda: losses.SoftmaxCrossEntropy(label_smoothing=0.2),
    "mse": losses.MeanSquaredError,
    "half_squared_error": losses.SoftmaxHalfSquaredError,
}


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
@SETTINGS
@given(
    batch=st.integers(1, 4),
    classes=st.integers(2, 5),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([0.1, 1.0, 10.0]),
)
def test_loss_gradients_match_finite_differences(backend, case, batch, classes, seed, scale):
    xp, rng = backend.xp, np.random.default_rng(seed)
    loss = LOSS_CASES[case]().bind(backend)
    z = rng.normal(size=(batch, classes)) * scale
    labels = backend.asarray(rng.integers(0, classes, size=batch).astype(np.int64))
    targets = one_hot(labels, classes, xp, xp.float64)

    _, ctx = loss.forward(backend.asarray(z, dtype="float64"), targets)
    analytic = host(loss.backward(ctx))

    def objective():
        return float(loss.forward(backend.asarray(z, dtype="float64"), targets)[0])

    np.testing.assert_allclose(analytic, _numeric_grad(objective, z), rtol=1e-5, atol=1e-7)


def test_cross_entropy_is_stable_for_huge_logits(backend):
    xp = backend.xp
    loss = losses.SoftmaxCrossEntropy().bind(backend)
    z = backend.asarray(np.array([[1000.0, -1000.0, 0.0]]), dtype="float32")
    t = one_hot(backend.asarray(np.array([1], dtype=np.int64)), 3, xp, xp.float32)
    value, ctx = loss.forward(z, t)
    value = float(value)
    grad = host(loss.backward(ctx))
    assert value == pytest.approx(2000.0, rel=1e-6)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[1.0, -1.0, 0.0]], atol=1e-6)


# --------------------------------------------------------------------------- torch.autograd


try:
    import torch
except ImportError:  # the finite-difference tests above still run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def _torch_reference(case, x, params):
    F = torch.nn.functional
    if case.startswith("Dense"):
        y = x @ params["W"]
        return y + params["b"] if "b" in params else y
    return {
        "ReLU": torch.relu,
        "LeakyReLU": lambda v: F.leaky_relu(v, 0.1),
        "Sigmoid": torch.sigmoid,
        "Tanh": torch.tanh,
        "Softmax": lambda v: torch.softmax(v, dim=1),
        "Flatten": lambda v: v.reshape(v.shape[0], -1),
    }[case](x)


@needs_torch
@pytest.mark.parametrize("case", sorted(set(LAYER_CASES) - {"Dropout"}))
@settings(max_examples=10, deadline=None)
@given(batch=st.integers(1, 4), features=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_layer_gradients_match_torch_autograd(case, batch, features, seed):
    backend = get_backend("numpy")
    rng = np.random.default_rng(seed)
    in_shape = (2, features) if case == "Flatten" else (features,)
    layer = _build(LAYER_CASES[case], backend, in_shape, seed)
    x = _away_from_kinks(rng.normal(size=(batch, *in_shape)))
    out, ctx = layer.forward(x, training=True)
    r = rng.normal(size=out.shape)
    dx, grads = layer.backward(ctx, r)

    tx = torch.tensor(x, requires_grad=True)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in layer.params.items()}
    ty = _torch_reference(case, tx, tp)
    np.testing.assert_allclose(out, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    (ty * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for k in tp:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=1e-10, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("case", sorted(LOSS_CASES))
@settings(max_examples=10, deadline=None)
@given(batch=st.integers(1, 5), classes=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_loss_gradients_match_torch_autograd(case, batch, classes, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(batch, classes)) * 3
    labels = rng.integers(0, classes, size=batch)
    t = np.eye(classes)[labels]
    loss = LOSS_CASES[case]().bind(get_backend("numpy"))
    value, ctx = loss.forward(z, t)
    grad = loss.backward(ctx)

    tz = torch.tensor(z, requires_grad=True)
    tt = torch.tensor(t)
    if case.startswith("cross_entropy"):
        smoothing = loss.label_smoothing
        assert smoothing == (0.2 if case.endswith("smoothed") else 0.0)
        ref = torch.nn.functional.cross_entropy(tz, torch.tensor(labels), label_smoothing=smoothing)
    elif case == "mse":
        ref = ((tz - tt) ** 2).mean()
    else:
        ref = 0.5 * ((torch.softmax(tz, dim=1) - tt) ** 2).sum() / batch
    ref.backward()
    assert float(value) == pytest.approx(ref.item(), rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-9, atol=1e-12)
