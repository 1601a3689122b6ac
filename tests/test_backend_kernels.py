"""Every backend's kernels agree with the generic Array API reference (``Backend.reference()``;
NumPy's optimizer overrides use ufuncs with out= buffers and are bit-identical, its batch
normalisation agrees to rounding, its max pooling exactly, ties included), on every backend;
and the hot-path rewrites of the layers (multiply by a saved 0/1 mask instead of ``where``)
keep the old results.

No timings here: speed is measured only by benchmarks/speed.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import anynet
from anynet import layers as L
from anynet import optimizers as O
from anynet.backend import Backend, get_backend, to_numpy

from .helpers import assert_on


def _adam_inputs(seed, shape, dtype, tiny=False):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=shape)
    g = rng.normal(size=shape) * (1e-20 if tiny else 1.0)
    m = rng.normal(size=shape) * 0.1
    v = np.abs(rng.normal(size=shape)) * 0.01
    return [a.astype(dtype) for a in (p, g, m, v)]


def _adam_reference(p, g, m, v, b1, b2, step, eps):
    """The textbook update in float64."""
    p, g, m, v = (a.astype(np.float64) for a in (p, g, m, v))
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return p - step * m / (np.sqrt(v) + eps), m, v


def test_reference_is_the_generic_class_on_the_same_namespace_and_device(backend):
    ref = backend.reference()
    assert type(ref) is Backend
    assert ref.xp is backend.xp and ref.device == backend.device and ref.name == backend.name
    methods = ("make_array", "from_host", "to_host", "random", "adam_update", "flush_small", "scratch_like")
    methods += ("batch_norm_train", "batch_norm_backward", "max_pool_forward", "max_pool_backward", "pad2d")
    methods += ("conv2d_forward", "conv2d_backward", "relu_forward", "relu_backward")
    overrides = [m for m in methods if getattr(type(backend), m) is not getattr(Backend, m)]
    # the libraries with a class of their own override something (the CuPy double runs CuPy's);
    # the generic one nothing
    assert bool(overrides) == (backend.name in ("numpy", "cupy", "torch", "jax", "cupy_double")), overrides


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(7,), (5, 3), (64, 33)])
def test_adam_update_fast_and_generic_agree_on_every_backend(backend, dtype, shape):
    fast, generic = backend, backend.reference()
    host = _adam_inputs(0, shape, dtype)
    args = dict(beta1=0.9, beta2=0.999, step_size=3e-3, eps=1e-8)
    results = []
    for k in (fast, generic):
        p, g, m, v = (backend.asarray(a.copy(), dtype=dtype) for a in host)
        p, m, v = k.adam_update(p, g, m, v, k.scratch_like(p), **args)
        for a in (p, m, v):
            assert_on(backend, a, backend.float_dtype(dtype))
        results.append([to_numpy(a) for a in (p, m, v)])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)  # same operations in the same order
    want = _adam_reference(*host, *args.values())
    tol = 1e-6 if dtype == "float32" else 1e-14  # values are O(1): relative to that
    for got, ref in zip(results[0], want):
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_update_over_several_steps_is_bitwise_the_generic_one(backend, dtype):
    """Six steps with Adam's bias-corrected step sizes, tiny gradients in some (moments near
    the subnormals): every override performs the reference's operations in its order, so the
    bits agree (on CuPy the fused kernel is compiled with --fmad=false for that)."""
    beta1, beta2, lr, eps = 0.9, 0.999, 3e-3, 1e-8
    states = []
    for k in (backend, backend.reference()):
        host = _adam_inputs(1, (33, 17), dtype)
        p, _, m, v = (backend.asarray(a.copy(), dtype=dtype) for a in host)
        scratch = k.scratch_like(p)
        for t in range(1, 7):
            g = backend.asarray(_adam_inputs(t, (33, 17), dtype, tiny=t % 3 == 0)[1], dtype=dtype)
            c2 = (1.0 - beta2**t) ** 0.5
            p, m, v = k.adam_update(p, g, m, v, scratch, beta1, beta2, lr * c2 / (1.0 - beta1**t), eps * c2)
        states.append([to_numpy(a) for a in (p, m, v)])
    for name, a, b in zip("pmv", *states):
        assert a.dtype == np.dtype(dtype) and a.tobytes() == b.tobytes(), name


def test_numpy_adam_update_is_bitwise_the_generic_one_on_numpy():
    numpy = get_backend("numpy")
    for seed in range(5):
        for tiny in (False, True):
            host = _adam_inputs(seed, (100, 17), "float32", tiny=tiny)
            a = [x.copy() for x in host]
            b = [x.copy() for x in host]
            numpy.adam_update(*a, np.empty_like(a[0]), 0.9, 0.999, 1e-3, 1e-8)
            numpy.reference().adam_update(*b, None, 0.9, 0.999, 1e-3, 1e-8)
            for x, y in zip(a, b):
                assert x.tobytes() == y.tobytes()


def test_flush_small_fast_and_generic_agree(backend):
    values = np.array([1e-39, -1e-40, 0.0, 1.0, -1e-31, 1e-29, -2.0], dtype=np.float32)
    out = []
    for k in (backend, backend.reference()):
        a = backend.asarray(values.copy(), dtype="float32")
        a = k.flush_small(a, 1e-30)
        assert_on(backend, a, backend.xp.float32)
        out.append(to_numpy(a))
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], np.array([0, 0, 0, 1, 0, 1e-29, -2], dtype=np.float32))


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fast_and_generic_optimizers_train_identically_on_numpy(name):
    """A whole network trained with the NumPy kernels and with the generic ones (forced on
    NumPy) ends with bit-identical weights."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(96, 12)).astype(np.float32)
    y = rng.integers(0, 4, 96)
    nets = []
    numpy = get_backend("numpy")
    for backend in (numpy, numpy.reference()):
        opt = O.get_optimizer(name, lr=3e-3)
        net = anynet.mlp((16, 8), num_classes=4, backend=backend, optimizer=opt, seed=5)
        net.fit(x, y, epochs=3, batch_size=16, seed=1)
        nets.append(net)
    for a, b in zip(nets[0].get_weights(), nets[1].get_weights()):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_optimizer_scratch_follows_the_state():
    """Scratch buffers are remade when the state is (new weights, another backend)."""
    net = anynet.mlp((6,), num_classes=3, backend="numpy", seed=0, input_shape=(4,))
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    y = np.arange(20) % 3
    net.fit(x, y, epochs=1, batch_size=5)
    first = dict(net.optimizer.scratch)
    assert first and all(s is not None for s in first.values())
    net.set_weights(net.get_weights())  # resets the optimizer state
    assert net.optimizer.scratch == {} and net.optimizer.state == {} and net.optimizer.steps == 0
    net.fit(x, y, epochs=1, batch_size=5)
    assert all(net.optimizer.scratch[k] is not first[k] for k in first)
    assert {k: s.shape for k, s in net.optimizer.scratch.items()} == {k: s.shape for k, s in first.items()}


# --------------------------------------------------------------------------- layer rewrites


def _where_reference(name, x, g, alpha=0.1):
    """The activations' previous ``where`` formulations."""
    if name == "ReLU":
        y = np.maximum(x, 0.0)
        return y, np.where(y > 0.0, g, 0.0)
    y = np.where(x > 0.0, x, alpha * x)
    return y, np.where(x > 0.0, g, alpha * g)


@pytest.mark.parametrize("name", ["ReLU", "LeakyReLU"])
def test_mask_multiply_matches_where(backend, name):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(9, 6)).astype(np.float32)
    x[0, :3] = 0.0  # the kink itself: derivative 0 (ReLU) / alpha (LeakyReLU), as before
    g = rng.normal(size=(9, 6)).astype(np.float32)
    layer = L.ReLU() if name == "ReLU" else L.LeakyReLU(0.1)
    layer.build(backend, (6,), dtype="float32", rng=rng)
    y, ctx = layer.forward(backend.asarray(x, dtype="float32"), training=True)
    dx, _ = layer.backward(ctx, backend.asarray(g, dtype="float32"))
    assert_on(backend, y, backend.xp.float32)
    assert_on(backend, dx, backend.xp.float32)
    want_y, want_dx = _where_reference(name, x, g)
    np.testing.assert_array_equal(to_numpy(y), want_y.astype(np.float32))
    np.testing.assert_array_equal(to_numpy(dx), want_dx.astype(np.float32))


def test_dropout_mask_multiply_matches_where(backend):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 8)).astype(np.float32)
    g = rng.normal(size=(50, 8)).astype(np.float32)
    layer = L.Dropout(0.3)
    layer.build(backend, (8,), dtype="float32", rng=rng)
    y, ctx = layer.forward(backend.asarray(x, dtype="float32"), training=True)
    dx, _ = layer.backward(ctx, backend.asarray(g, dtype="float32"))
    y, dx = to_numpy(y), to_numpy(dx)
    keep = y != 0
    assert 0.5 < keep.mean() < 0.9
    scale = np.float32(1.0 / 0.7)
    np.testing.assert_array_equal(y, np.where(keep, x * scale, 0.0).astype(np.float32))
    np.testing.assert_array_equal(dx, np.where(keep, g * scale, 0.0).astype(np.float32))


def test_first_layer_input_gradient_is_skipped_behind_flatten():
    """mlp() starts with Flatten: the first Dense layer still skips its input gradient."""
    net = anynet.mlp((5,), num_classes=3, backend="numpy", seed=0, input_shape=(2, 3))
    calls = []
    for i, layer in enumerate(net.layers):
        original = layer.backward

        def spy(ctx, grad, need_input_grad=True, _i=i, _f=original):
            calls.append((_i, need_input_grad))
            return _f(ctx, grad, need_input_grad)

        layer.backward = spy
    x = np.random.default_rng(0).normal(size=(4, 2, 3)).astype(np.float32)
    net.fit(x, np.array([0, 1, 2, 0]), epochs=1, batch_size=4)
    # layers: Flatten(0), Dense(1), ReLU(2), Dense(3); Flatten has nothing to learn
    assert calls == [(3, True), (2, True), (1, False)]


# --------------------------------------------------------------------------- batch norm, max pool

#: per-sample shapes, and whether the batch comes laid out as a convolution's output
#: (memory (C, N, H, W), logical (N, C, H, W)) rather than contiguous
LAYOUTS = [((5,), False), ((3, 5, 6), False), ((3, 5, 6), True)]


def _on(backend, host_array, dtype, conv_layout=False):
    """``host_array`` (N, ...) on ``backend``; with ``conv_layout`` a (1, 0, 2, 3) permuted view
    of a (C, N, H, W) array, as Conv2D.forward returns."""
    if not conv_layout:
        return backend.asarray(host_array, dtype=dtype)
    a = backend.asarray(np.ascontiguousarray(host_array.transpose(1, 0, 2, 3)), dtype=dtype)
    return backend.xp.permute_dims(a, (1, 0, 2, 3))


def _batch_norm_results(k, backend, x, g, params, dtype, conv_layout):
    """Training outputs, gradients and inference output of kernels ``k`` (host arrays)."""
    gamma, beta, mean, var = (backend.asarray(a, dtype=dtype) for a in params)
    y, m, v, ctx = k.batch_norm_train(_on(backend, x, dtype, conv_layout), gamma, beta, 1e-5)
    dx, dgamma, dbeta = k.batch_norm_backward(ctx, _on(backend, g, dtype, conv_layout), gamma)
    infer = k.batch_norm_inference(_on(backend, x, dtype, conv_layout), gamma, beta, mean, var, 1e-5)
    for a in (y, m, v, dx, dgamma, dbeta, infer):
        assert_on(backend, a, backend.float_dtype(dtype))
    return [to_numpy(a) for a in (y, m, v, dx, dgamma, dbeta, infer)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("shape", "conv_layout"), LAYOUTS)
def test_batch_norm_fast_and_generic_agree_on_every_backend(backend, dtype, shape, conv_layout):
    rng = np.random.default_rng(len(shape))
    x = rng.normal(size=(7, *shape)) * 3 + 5  # a mean far from 0: centring must stay exact
    g = rng.normal(size=x.shape)
    c = shape[0]
    params = (rng.uniform(0.5, 2, c), rng.normal(size=c), rng.normal(size=c), rng.uniform(0.5, 2, c))
    fast = _batch_norm_results(backend, backend, x, g, params, dtype, conv_layout)
    generic = _batch_norm_results(backend.reference(), backend, x, g, params, dtype, conv_layout)
    names = ("y", "mean", "var", "dx", "dgamma", "dbeta", "inference")
    tol = 1e-5 if dtype == "float32" else 1e-12
    for name, a, b in zip(names, fast, generic):
        # values are O(1) (dgamma, dbeta: sums of O(10) terms): atol relative to that
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=name)


def test_numpy_batch_norm_matches_the_generic_one_on_conv_sized_batches():
    """A convolution-sized batch in float32 (sums over 6272 values per channel)."""
    numpy = get_backend("numpy")
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(32, 16, 14, 14)) * 2 + 3).astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    params = (rng.uniform(0.5, 2, 16), rng.normal(size=16), rng.normal(size=16), rng.uniform(0.5, 2, 16))
    for conv_layout in (False, True):
        fast = _batch_norm_results(numpy, numpy, x, g, params, "float32", conv_layout)
        generic = _batch_norm_results(numpy.reference(), numpy, x, g, params, "float32", conv_layout)
        for name, a, b in zip(("y", "mean", "var", "dx"), fast, generic):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)
        for name, a, b in zip(("dgamma", "dbeta"), fast[4:6], generic[4:6]):
            scale = np.abs(b).max()  # sums of 6272 terms: rounding relative to their size
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


def _tied(rng, shape):
    """ReLU outputs of rounded values: mostly ties, and -0.0 next to 0.0 (x * (x > 0))."""
    x = np.round(rng.normal(size=shape) * 1.5)
    return x * (x > 0)


@pytest.mark.parametrize("conv_layout", [False, True])
@pytest.mark.parametrize(("hw", "p"), [((8, 8), 2), ((7, 7), 2), ((9, 10), 3), ((5, 4), 1), ((4, 4), 4)])
def test_max_pool_fast_and_generic_agree_on_every_backend(backend, hw, p, conv_layout):
    rng = np.random.default_rng(p)
    x = _tied(rng, (3, 2, *hw))
    g = backend.asarray(rng.normal(size=(3, 2, hw[0] // p, hw[1] // p)), dtype="float32")
    results = []
    for k in (backend, backend.reference()):
        y, ctx = k.max_pool_forward(_on(backend, x, "float32", conv_layout), p, True)
        dx = k.max_pool_backward(ctx, g)
        infer, none = k.max_pool_forward(_on(backend, x, "float32", conv_layout), p, False)
        assert none is None and tuple(dx.shape) == x.shape
        for a in (y, dx, infer):
            assert_on(backend, a, backend.xp.float32)
        results.append([to_numpy(a) for a in (y, dx, infer)])
    for name, a, b in zip(("y", "dx", "inference"), *results):
        np.testing.assert_array_equal(a, b, err_msg=name)
    # one input per window gets the window's gradient, and only a maximum does
    dx = results[0][1]
    assert np.count_nonzero(dx) <= results[0][0].size


def test_numpy_kernels_keep_the_convolution_layout():
    """Outputs and gradients come back laid out like a (C, N, H, W)-major input, so the next
    elementwise layers and Conv2D.backward's reshape need no copy."""
    numpy = get_backend("numpy")
    x = _on(numpy, _tied(np.random.default_rng(0), (4, 3, 6, 6)), "float32", conv_layout=True)
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    y, _, _, ctx = numpy.batch_norm_train(x, gamma, beta, 1e-5)
    dx = numpy.batch_norm_backward(ctx, x, gamma)[0]
    pooled, pool_ctx = numpy.max_pool_forward(x, 2, True)
    pool_dx = numpy.max_pool_backward(pool_ctx, pooled)
    for a in (y, dx, pooled, pool_dx):
        assert a.transpose(1, 0, 2, 3).flags.c_contiguous


def test_fast_and_generic_kernels_train_a_cnn_alike_on_numpy():
    """A small CNN (convolution, batch norm, ReLU, max pool) trained a few steps in float64 with
    the NumPy kernels and with the generic ones (forced on NumPy) ends with the same weights and
    running statistics, to rounding."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 1, 12, 12))
    y = np.eye(3)[rng.integers(0, 3, 16)]
    weights = []
    numpy = get_backend("numpy")
    for backend in (numpy, numpy.reference()):
        net = anynet.models.cnn(
            (4, 6), 3, dense=8, dropout=0.0, backend=backend, seed=1, dtype="float64", input_shape=(1, 12, 12)
        )
        for _ in range(3):
            net.train_step(backend.asarray(x, dtype="float64"), backend.asarray(y, dtype="float64"))
        weights.append(net.get_weights())
    for a, b in zip(*weights):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("pad", [0, 1, 2])
def test_pad2d_fast_and_generic_agree(backend, pad):
    x = backend.asarray(np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5), dtype="float32")
    out = [to_numpy(k.pad2d(x, pad)) for k in (backend, backend.reference())]
    np.testing.assert_array_equal(out[0], out[1])
    want = np.pad(to_numpy(x), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    np.testing.assert_array_equal(out[0], want)


def test_batch_slices_are_a_backend_decision():
    numpy = get_backend("numpy")
    assert numpy.batch_slices(10, 3, 100) is None  # fits
    assert numpy.batch_slices(None, 3, 1) is None  # a symbolic batch size: one piece
    assert numpy.batch_slices(10, 3, 9) == [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)]


# --------------------------------------------------------------------------- convolution, ReLU

#: (N, C, H, W), filters, kernel, stride, padding: NumPy's shifted columns serve stride 1 with
#: "same" padding (the first three, a single channel and a 1x1 kernel among them); the rest take
#: the generic path
CONVS = [
    ((3, 2, 6, 5), 4, 3, 1, 1),
    ((2, 1, 7, 7), 3, 5, 1, 2),
    ((2, 3, 4, 4), 2, 1, 1, 0),
    ((2, 2, 6, 7), 3, 3, 2, 1),
    ((2, 2, 5, 5), 3, 3, 1, 0),
]


@pytest.mark.parametrize("conv_layout", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(("shape", "filters", "k", "stride", "pad"), CONVS)
def test_conv2d_fast_and_generic_agree_on_every_backend(
    backend, shape, filters, k, stride, pad, bias, conv_layout
):
    """Same columns, same products, the input gradient summed in the same order: the same bits
    (zeros may differ in sign); the filter gradient to rounding."""
    rng = np.random.default_rng(k + stride)
    x = rng.normal(size=shape)
    out = ((shape[2] + 2 * pad - k) // stride + 1, (shape[3] + 2 * pad - k) // stride + 1)
    g = rng.normal(size=(shape[0], filters, *out))
    w = backend.asarray(rng.normal(size=(filters, shape[1], k, k)), dtype="float32")
    b = backend.asarray(rng.normal(size=filters), dtype="float32") if bias else None
    results = []
    for kernels in (backend, backend.reference()):
        with kernels.activate():
            y, ctx = kernels.conv2d_forward(_on(backend, x, "float32", conv_layout), w, b, stride, pad, True)
            dx, dw, db = kernels.conv2d_backward(ctx, _on(backend, g, "float32", conv_layout), w, bias, True)
            none, dw_first, _ = kernels.conv2d_backward(
                ctx, _on(backend, g, "float32", conv_layout), w, bias, False
            )
            infer, no_ctx = kernels.conv2d_forward(
                _on(backend, x, "float32", conv_layout), w, b, stride, pad, False
            )
        assert none is None and no_ctx is None and tuple(dx.shape) == shape and tuple(y.shape) == g.shape
        for a in (y, dx, dw, infer):
            assert_on(backend, a, backend.xp.float32)
        results.append([to_numpy(a) for a in (y, dx, dw, dw_first, infer, db if bias else dw)])
    for name, a, b_ in zip(("y", "dx", "dw", "dw (first layer)", "inference", "db"), *results):
        if name.startswith("dw"):  # NumPy sums over the pixels in another order: to rounding
            np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-5 * np.abs(b_).max(), err_msg=name)
        else:
            np.testing.assert_array_equal(a, b_, err_msg=name)


def test_numpy_conv_takes_the_shifted_path_and_keeps_the_layout():
    """Stride-1 "same" convolutions run NumPy's own path; outputs and input gradients come back
    (C, N, H, W)-major, as the next layers take them without a copy."""
    numpy = get_backend("numpy")
    rng = np.random.default_rng(0)
    x = _on(numpy, rng.normal(size=(4, 3, 6, 6)), "float32", conv_layout=True)
    w = rng.normal(size=(5, 3, 3, 3)).astype(np.float32)
    with numpy.activate():
        y, ctx = numpy.conv2d_forward(x, w, None, 1, 1, True)
        dx = numpy.conv2d_backward(ctx, y, w, False, True)[0]
    assert type(ctx).__name__ == "_ShiftedConv"
    for a in (y, dx):
        assert a.transpose(1, 0, 2, 3).flags.c_contiguous


def test_relu_fast_and_generic_agree_on_every_backend(backend):
    rng = np.random.default_rng(5)
    x = _tied(rng, (3, 2, 4, 5)) - 0.5 * _tied(rng, (3, 2, 4, 5))
    g = rng.normal(size=x.shape)
    results = []
    for kernels in (backend, backend.reference()):
        with kernels.activate():
            y, ctx = kernels.relu_forward(_on(backend, x, "float32", True), True)
            dx = kernels.relu_backward(ctx, _on(backend, g, "float32", True))
            infer, none = kernels.relu_forward(_on(backend, x, "float32", True), False)
        assert none is None
        results.append([to_numpy(a) for a in (y, dx, infer)])
    for name, a, b in zip(("y", "dx", "inference"), *results):
        np.testing.assert_array_equal(a, b, err_msg=name)


# --------------------------------------------------------------------------- NumPy's workspace


def test_workspace_hands_out_a_buffer_only_when_nothing_refers_to_it():
    from anynet.backend.numpy import Workspace

    ws = Workspace(min_bytes=1024)
    outside = ws.empty((64, 64), np.float32)
    assert ws.held_bytes == 0 and outside.base is None  # no scope open: NumPy's own arrays
    ws.enter()
    a = ws.empty((64, 64), np.float32)
    view = a[::2].T  # a view keeps the buffer in use
    del a
    b = ws.empty((64, 64), np.float32)
    assert not np.shares_memory(view, b)
    start, size = view.base.ctypes.data, view.base.nbytes
    del view
    c = ws.empty((32, 128), np.float32)  # same size, other shape: the freed buffer
    assert start <= c.ctypes.data < start + size and not np.shares_memory(c, b)
    del c
    d = ws.empty((16, 64), np.float32)  # far smaller: not served by a buffer 4x its size
    assert d.nbytes == 16 * 64 * 4 and ws.held_bytes >= 3 * d.nbytes
    small = ws.empty((4,), np.float32)  # under min_bytes: NumPy's
    assert small.base is None
    assert all(x.ctypes.data % 64 == 0 for x in (b, d))
    ws.enter()
    ws.exit()  # nested scopes: the buffers stay
    assert ws.held_bytes > 0
    ws.exit()  # the outermost: forgotten (arrays in use keep their memory)
    assert ws.held_bytes == 0
    b[:] = 1.0
    assert float(b.sum()) == 64 * 64


def test_training_reuses_the_workspace_and_gives_it_back():
    """A CNN's training steps reuse one set of buffers, and a prediction kept by the caller
    is not overwritten by the next step."""
    numpy = get_backend("numpy")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 1, 12, 12)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 32)]
    net = anynet.models.cnn((8, 8), 3, dense=8, dropout=0.0, backend="numpy", seed=1, input_shape=(1, 12, 12))
    with numpy.activate():
        kept = net.forward(x)
        before = kept.copy()
        net.train_step(x, y)
        held = numpy.workspace.held_bytes
        for _ in range(3):
            net.train_step(x, y)
        assert numpy.workspace.held_bytes == held > 0
        np.testing.assert_array_equal(kept, before)
    assert numpy.workspace.held_bytes == 0
