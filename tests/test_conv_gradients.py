"""Convolution, pooling and batch normalisation: gradients against central finite differences
in float64 on every installed backend (hypothesis draws shapes, strides, paddings, channel
counts and batch sizes), against torch.nn.functional autograd, and the NumPy im2col fast path
against the generic one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anynet import layers as L
from anynet.backend import Backend, get_backend

from .helpers import _numeric_grad, assert_on, host

SETTINGS = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TOL = 1e-6


@st.composite
def conv_cases(draw):
    k = draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same", 1] if k % 2 else ["valid", 1]))
    stride = draw(st.integers(1, 2))
    size = draw(st.integers(max(k, 2), 5))
    return dict(
        filters=draw(st.integers(1, 3)),
        kernel_size=k,
        stride=stride,
        padding=padding,
        use_bias=draw(st.booleans()),
    ), (draw(st.integers(1, 3)), size, size + draw(st.integers(0, 1)))


def _check(layer, backend, x, seed):
    """dx and every parameter gradient of ``sum(forward(x) * r)`` against finite differences."""
    rng = np.random.default_rng(seed)
    out, ctx = layer.forward(backend.asarray(x, dtype="float64"), training=True)
    assert_on(backend, out, backend.xp.float64)
    r = rng.normal(size=tuple(out.shape))
    dx, grads = layer.backward(ctx, backend.asarray(r, dtype="float64"))
    assert set(grads) == set(layer.params)
    params = {k: host(v).copy() for k, v in layer.params.items()}

    def objective():
        for k, v in params.items():
            layer.params[k] = backend.asarray(v, dtype="float64")
        return float(np.sum(host(layer.forward(backend.asarray(x, dtype="float64"), training=True)[0]) * r))

    np.testing.assert_allclose(host(dx), _numeric_grad(objective, x), rtol=TOL, atol=TOL)
    for name, value in params.items():
        np.testing.assert_allclose(
            host(grads[name]), _numeric_grad(objective, value), rtol=TOL, atol=TOL, err_msg=f"d/d{name}"
        )


@SETTINGS
@given(case=conv_cases(), batch=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_conv2d_gradients_match_finite_differences(backend, case, batch, seed):
    config, shape = case
    layer = L.Conv2D(**config)
    layer.build(backend, shape, dtype="float64", rng=np.random.default_rng(seed))
    _check(layer, backend, np.random.default_rng(seed + 1).normal(size=(batch, *shape)), seed)


@SETTINGS
@given(
    kind=st.sampled_from(["max", "average", "global"]),
    pool=st.integers(1, 3),
    channels=st.integers(1, 3),
    h=st.integers(3, 7),
    w=st.integers(3, 7),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_pooling_gradients_match_finite_differences(backend, kind, pool, channels, h, w, batch, seed):
    layer = {
        "max": lambda: L.MaxPool2D(pool),
        "average": lambda: L.AveragePool2D(pool),
        "global": L.GlobalAveragePooling2D,
    }[kind]()
    layer.build(backend, (channels, h, w), dtype="float64")
    # distinct values a finite step apart: no ties inside a window, so max is differentiable
    x = (
        np.random.default_rng(seed).permutation(batch * channels * h * w).reshape(batch, channels, h, w)
        * 0.01
    )
    _check(layer, backend, x, seed)


@SETTINGS
@given(
    shape=st.sampled_from([(3,), (2, 3, 3), (1, 2, 4)]), batch=st.integers(2, 4), seed=st.integers(0, 2**16)
)
def test_batchnorm_gradients_match_finite_differences(backend, shape, batch, seed):
    layer = L.BatchNorm()
    layer.build(backend, shape, dtype="float64")
    rng = np.random.default_rng(seed)
    layer.params = {
        "gamma": backend.asarray(rng.uniform(0.5, 2, shape[0]), dtype="float64"),
        "beta": backend.asarray(rng.normal(size=shape[0]), dtype="float64"),
    }
    _check(layer, backend, rng.normal(size=(batch, *shape)) * 2 + 1, seed)


def test_batchnorm_inference_uses_running_statistics(backend):
    layer = L.BatchNorm(momentum=0.0)  # running statistics = the last batch's
    layer.build(backend, (2, 3, 3), dtype="float64")
    x = np.random.default_rng(0).normal(size=(5, 2, 3, 3)) * 3 + 2
    y_train = host(layer.forward(backend.asarray(x, dtype="float64"), training=True)[0])
    assert abs(y_train.mean()) < 1e-9
    np.testing.assert_allclose(host(layer.buffers["mean"]), x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(host(layer.buffers["var"]), x.var(axis=(0, 2, 3), ddof=1))
    one = host(layer.forward(backend.asarray(x[:1], dtype="float64"))[0])  # not its own statistics
    want = (x[:1] - x.mean(axis=(0, 2, 3))[None, :, None, None]) / np.sqrt(
        x.var(axis=(0, 2, 3), ddof=1)[None, :, None, None] + 1e-5
    )
    np.testing.assert_allclose(one, want, rtol=1e-9)


def test_max_pool_routes_ties_to_the_first_maximum(backend):
    layer = L.MaxPool2D(2)
    layer.build(backend, (1, 2, 2), dtype="float32")
    _y, ctx = layer.forward(backend.asarray(np.ones((1, 1, 2, 2)), dtype="float32"), training=True)
    dx, _ = layer.backward(ctx, backend.asarray(np.ones((1, 1, 1, 1)), dtype="float32"))
    np.testing.assert_array_equal(host(dx), [[[[1, 0], [0, 0]]]])


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_numpy_im2col_fast_path_equals_the_generic_one(k, stride):
    numpy = get_backend("numpy")
    x = np.random.default_rng(k).normal(size=(3, 2, 9, 8)).astype(np.float32)
    fast, generic = numpy.im2col(x, k, k, stride), Backend.im2col(numpy.reference(), x, k, k, stride)
    assert type(numpy).im2col is not Backend.im2col
    np.testing.assert_array_equal(fast, generic)


def test_col2im_is_the_adjoint_of_im2col(backend):
    """<im2col(x), c> == <x, col2im(c)> for random x and c: col2im sums each column back."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 7, 6))
    cols = host(backend.im2col(backend.asarray(x, dtype="float64"), 3, 3, 2))
    c = rng.normal(size=cols.shape)
    back = host(backend.col2im(backend.asarray(c, dtype="float64"), x.shape, 3, 3, 2))
    assert np.sum(cols * c) == pytest.approx(np.sum(x * back), rel=1e-12)


# --------------------------------------------------------------------------- torch.autograd

try:
    import torch
except ImportError:  # the finite-difference tests above still run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def _against_torch(layer, x, reference, params_to_torch):
    """Forward and backward of ``layer`` (NumPy, float64) against ``reference`` in autograd."""
    out, ctx = layer.forward(x, training=True)
    r = np.random.default_rng(1).normal(size=out.shape)
    dx, grads = layer.backward(ctx, r)
    tx = torch.tensor(x, requires_grad=True)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params_to_torch.items()}
    ty = reference(tx, tp)
    np.testing.assert_allclose(out, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    (ty * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for k, t in tp.items():
        np.testing.assert_allclose(grads[k], t.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)


@needs_torch
@settings(max_examples=10, deadline=None)
@given(case=conv_cases(), batch=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_conv2d_matches_torch_conv2d(case, batch, seed):
    config, shape = case
    layer = L.Conv2D(**config)
    layer.build(get_backend("numpy"), shape, dtype="float64", rng=np.random.default_rng(seed))
    x = np.random.default_rng(seed + 1).normal(size=(batch, *shape))
    F = torch.nn.functional
    _against_torch(
        layer,
        x,
        lambda tx, tp: F.conv2d(tx, tp["W"], tp.get("b"), stride=layer.stride, padding=layer.pad),
        layer.params,
    )


@needs_torch
@settings(max_examples=10, deadline=None)
@given(
    kind=st.sampled_from(["max", "average"]),
    pool=st.integers(1, 3),
    h=st.integers(3, 7),
    seed=st.integers(0, 2**16),
)
def test_pooling_matches_torch(kind, pool, h, seed):
    layer = L.MaxPool2D(pool) if kind == "max" else L.AveragePool2D(pool)
    layer.build(get_backend("numpy"), (2, h, h + 1), dtype="float64")
    x = np.random.default_rng(seed).permutation(2 * 2 * h * (h + 1)).reshape(2, 2, h, h + 1) * 0.1
    F = torch.nn.functional
    ref = F.max_pool2d if kind == "max" else F.avg_pool2d
    _against_torch(layer, x, lambda tx, tp: ref(tx, pool), {})


@needs_torch
@pytest.mark.parametrize("shape", [(4,), (3, 4, 5)])
def test_batchnorm_matches_torch(shape):
    layer = L.BatchNorm(momentum=0.9)
    layer.build(get_backend("numpy"), shape, dtype="float64")
    rng = np.random.default_rng(0)
    layer.params = {"gamma": rng.uniform(0.5, 2, shape[0]), "beta": rng.normal(size=shape[0])}
    x = rng.normal(size=(6, *shape)) * 2 + 1
    running = {
        "mean": torch.zeros(shape[0], dtype=torch.float64),
        "var": torch.ones(shape[0], dtype=torch.float64),
    }
    F = torch.nn.functional
    _against_torch(
        layer,
        x,
        lambda tx, tp: F.batch_norm(
            tx,
            running["mean"],
            running["var"],
            tp["gamma"],
            tp["beta"],
            training=True,
            momentum=0.1,
            eps=1e-5,
        ),
        layer.params,
    )
    np.testing.assert_allclose(layer.buffers["mean"], running["mean"].numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["var"], running["var"].numpy(), rtol=1e-12)
