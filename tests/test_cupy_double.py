"""The CuPy test double (tests/cupy_double) behaves as CuPy does, and anynet on it makes no host
sync per training step and computes on the backend's device, not the current one.

The double refuses what CuPy refuses (implicit host conversion, NumPy operands, arrays of
another device) and counts device-to-host syncs; ``cupy_double:1`` is anynet's CuPy backend
code on the double's second fake GPU while the first is current outside.
"""

from __future__ import annotations

import importlib
import importlib.util
import operator
import sys
import threading

import numpy as np
import pytest

import anynet
from anynet.backend import available_backends, backend_of, get_backend, register_backend, to_numpy
from anynet.data.augment import Augmenter

from . import cupy_double as cp
from .cupy_double.backend import CupyDoubleBackend
from .helpers import _data, assert_on

UNSUPPORTED = "Unsupported type <class 'numpy.ndarray'>"
IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)


@pytest.fixture
def xp():
    return get_backend("cupy_double").xp


# ---------------------------------------------------------------------- the double is CuPy-like


def test_the_double_is_never_cupy_nor_listed_nor_picked():
    shims = [
        name
        for name, module in sys.modules.items()
        if name.split(".")[0] == "cupy" and getattr(module, "__name__", "").startswith(cp.__name__)
    ]
    assert shims == [] and sys.modules.get("cupy") is not cp
    if importlib.util.find_spec("cupy") is None:
        with pytest.raises(ImportError):
            importlib.import_module("cupy")
    assert "cupy_double" not in available_backends()
    assert not isinstance(get_backend("auto"), CupyDoubleBackend)
    backend = get_backend("cupy_double")
    assert backend.spec == "cupy_double:0" and backend.xp.__name__ == "array_api_compat.cupy_double"
    assert all("double" in line for line in backend.describe_devices())
    assert backend.version.endswith("+double")


def test_register_backend_refuses_known_names_and_other_classes():
    class Impostor(CupyDoubleBackend):
        library = "cupy"

    with pytest.raises(ValueError, match="cannot register"):
        register_backend(Impostor)
    with pytest.raises(TypeError, match="Backend subclass"):
        register_backend(dict)  # type: ignore[arg-type]


def test_implicit_conversion_raises_cupys_type_error(xp):
    a = xp.asarray([1.0, 2.0])
    assert not isinstance(a, np.ndarray)
    for convert in (np.asarray, np.array, lambda v: np.float64(1) * np.ones(2) + v):
        with pytest.raises(TypeError) as info:
            convert(a)
        assert str(info.value) in (IMPLICIT, UNSUPPORTED)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    assert a.get().tolist() == [1.0, 2.0] and isinstance(a.get(), np.ndarray)


def test_numpy_operands_are_refused_and_host_data_uploaded_only_where_cupy_does(xp):
    a, host = xp.asarray([1.0, 2.0, 3.0]), np.ones(3)
    refusals = [
        lambda: a + host,
        lambda: host + a,
        lambda: xp.multiply(a, host),
        lambda: xp.where(a > 1, a, host),
        lambda: xp.concat([a, host]),
        lambda: xp.matmul(a, host),
    ]
    for refused in refusals:
        with pytest.raises(TypeError, match="Unsupported type"):
            refused()
    with pytest.raises(ValueError, match=r"non-scalar numpy\.ndarray cannot be used for fill"):
        a[...] = host
    # what CuPy takes from the host: asarray (a copy), index arrays, take's indices, 0-d fills
    uploaded = xp.asarray(host)
    host[0] = 9.0
    assert uploaded.device == cp.cuda.Device(0) and uploaded.get().tolist() == [1.0, 1.0, 1.0]
    assert a[np.array([0, 2])].get().tolist() == [1.0, 3.0]
    assert xp.take(a, np.array([1])).get().tolist() == [2.0]
    a[...] = np.float32(0.5)
    assert a.get().tolist() == [0.5, 0.5, 0.5]
    with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
        operator.index(xp.asarray(2))  # CuPy's ndarray has no __index__


def test_operations_run_on_the_current_device():
    a = cp.zeros(3)
    with cp.cuda.Device(1):
        b = cp.ones(3)
        assert b.device == cp.cuda.Device(1) and (b + 1).device.id == 1
        with pytest.raises(ValueError) as info:
            a + b
    assert "resides (0)" in str(info.value) and "current device (1)" in str(info.value)
    assert cp.cuda.Device().id == 0  # the context put device 0 back
    with pytest.raises(ValueError, match=r"resides \(1\).*current device \(0\)"):
        b * 2
    assert b.reshape(3, 1).device.id == 1  # a view launches nothing and stays
    assert cp.asarray(b).device.id == 0  # asarray copies to the current device, as CuPy
    assert b.copy().device.id == 0
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError):
        cp.cuda.Device(cp.cuda.DEVICE_COUNT).use()


def test_syncs_are_counted_with_their_cause(xp):
    a = xp.asarray([0.0, 1.5, 2.0])
    w = cp.watch()
    _ = a + 1, xp.sum(a), xp.argmax(a), xp.where(a > 1, a, 0.0), xp.take(a, xp.asarray([0])), a[1:]
    _ = xp.maximum(xp.minimum(a, 1.0), 0.5), xp.astype(a, xp.float32)
    assert w.syncs == []
    reads = [
        lambda: a.get(),
        lambda: cp.asnumpy(a),
        lambda: float(a[1]),
        lambda: int(a[1]),
        lambda: bool(a[1]),
        lambda: a[1].item(),
        lambda: a.tolist(),
        lambda: a[a > 1],
        lambda: a.__setitem__(a > 1, 0.0),
        lambda: xp.nonzero(a),
        lambda: cp.argwhere(a),
        lambda: cp.flatnonzero(a),
        lambda: xp.unique_values(a),
        lambda: cp.where(a > 1),
        lambda: repr(a),
    ]
    for i, read in enumerate(reads):
        read()
        assert len(w.syncs) == i + 1, (i, w.syncs)
    assert w.syncs[0].startswith("get() at ") and __file__ in w.syncs[0]
    before = len(w.syncs)
    xp.clip(a, 0.5, 1.0)  # array-api-compat's clip assigns through boolean masks on CuPy
    assert len(w.syncs) - before == 4


def test_random_state_is_cupys(xp):
    rs = cp.random.RandomState(3)
    assert not hasattr(rs, "get_state") and not hasattr(rs, "set_state")
    w = cp.watch()
    u = rs.uniform(-1.0, 1.0, size=(4, 5), dtype=np.float32)
    g = rs.normal(2.0, 0.5, size=(7,), dtype=np.float32)
    assert u.dtype == np.float32 and g.dtype == np.float32 and u.shape == (4, 5)
    assert w.draws == [("uniform", "float32"), ("normal", "float32")]
    assert float(xp.min(u)) >= -1.0 and float(xp.max(u)) < 1.0
    assert rs.uniform(size=2).dtype == np.float64  # CuPy's default, as NumPy's
    with pytest.raises(TypeError, match="float32 and float64"):
        rs.normal(size=3, dtype=np.int32)
    assert sorted(rs.permutation(6).get().tolist()) == list(range(6))
    with pytest.raises(TypeError):
        rs.permutation(np.int64(6))  # CuPy shuffles an array then, and an int64 has no len()
    with cp.cuda.Device(1), pytest.raises(ValueError, match="belongs to device 0"):
        rs.uniform(size=2)


def test_cuda_runtime_and_streams():
    assert cp.cuda.runtime.getDeviceCount() == cp.cuda.DEVICE_COUNT >= 2
    assert b"double" in cp.cuda.runtime.getDeviceProperties(1)["name"]
    stream = cp.cuda.get_current_stream()
    stream.synchronize()
    assert isinstance(stream.ptr, int)
    with cp.cuda.Device(1):
        assert cp.cuda.runtime.getDevice() == 1 and cp.cuda.get_current_stream().device_id == 1
    a = cp.zeros(4, dtype=np.float32)
    assert a.data.ptr == CupyDoubleBackend.buffer_pointer(a) and a.data.device_id == 0
    assert a.dtype is np.dtype(np.float32)  # the dtype objects are NumPy's


# ---------------------------------------------------------------------- anynet on the double


def test_backend_of_finds_the_double_on_each_device():
    for spec in ("cupy_double", "cupy_double:1"):
        backend = get_backend(spec)
        a = backend.asarray(np.arange(3.0), dtype="float32")
        assert backend_of(a) == backend and a.device.id == backend.device.id
        assert_on(backend, a, backend.xp.float32)
        np.testing.assert_array_equal(to_numpy(a), [0.0, 1.0, 2.0])
        reference = backend.reference()  # keeps the device context
        with reference.activate():
            assert (reference.zeros((2,)) + a[:2]).device.id == backend.device.id


def test_random_numbers_are_drawn_in_the_requested_dtype():
    rng = get_backend("cupy_double").random(5)
    w = cp.watch()
    u, g = rng.uniform((3, 4), dtype="float32"), rng.normal((5,), 1.0, 2.0, dtype="float32")
    assert u.dtype == np.float32 and g.dtype == np.float32
    assert w.draws == [("uniform", "float32"), ("normal", "float32")]


def _train_mlp(spec, epochs, batch_size, validation=False, **options):
    """A small MLP with dropout trained on ``spec``; the syncs and draws ``fit`` made."""
    x, y = _data()
    net = anynet.mlp((16,), num_classes=2, dropout=0.25, backend=spec, seed=1)
    extra = {"validation_data": (x[:32], y[:32])} if validation else {}
    w = cp.watch()
    net.fit(x, y, epochs=epochs, batch_size=batch_size, **extra, **options)
    return net, w.syncs, w.draws


def test_a_training_step_makes_no_host_sync_with_dropout_and_augmentation():
    backend = get_backend("cupy_double")
    x, y = _data()
    net = anynet.mlp((16,), num_classes=2, dropout=0.25, backend=backend, seed=1)
    net.build((8, 8))
    aug = Augmenter(rotation=10, scale=0.1, translation=1, elastic_alpha=4, elastic_sigma=2)
    xd, targets = net.inputs(x), net.targets(y, len(y))
    rng = backend.random(0)
    net.train_step(aug(xd[:32], rng), targets[:32])  # the first step makes the optimizer state
    w = cp.watch()
    total = backend.zeros(())
    for lo in (0, 32, 64):
        loss, hits = net.train_step(aug(xd[lo : lo + 32], rng), targets[lo : lo + 32])
        total = total + loss + hits
    assert w.syncs == []
    assert all(dtype == "float32" for _, dtype in w.draws) and len(w.draws) >= 6


@pytest.mark.parametrize("validation, per_epoch", [(False, 3), (True, 5)])
def test_fit_reads_back_only_once_per_epoch(validation, per_epoch):
    """Three reads per epoch (loss sum, correct count, the divergence guard's counter), two more
    for the validation pass; none per step, with dropout and augmentation on."""
    aug = Augmenter(rotation=8, translation=1)
    _, few_steps, few_draws = _train_mlp("cupy_double", 2, 48, validation, augment=aug)
    _, many_steps, many_draws = _train_mlp("cupy_double", 2, 12, validation, augment=aug)
    assert len(few_steps) == len(many_steps) == 2 * per_epoch, many_steps
    assert all("anynet/training/loop.py" in s or "anynet/network.py" in s for s in many_steps)
    assert len(many_draws) > len(few_draws) > 2 and all(d != "float64" for _, d in many_draws)


def test_cupy_double_1_computes_on_device_1_while_device_0_is_current():
    x, y = _data()
    aug = Augmenter(rotation=8, elastic_alpha=3, elastic_sigma=2)
    w = cp.watch()
    net, _, _ = _train_mlp("cupy_double:1", 2, 32, validation=True, augment=aug)
    cnn = anynet.Network(
        [
            anynet.Conv2D(4, 3, padding="same", use_bias=False),
            anynet.BatchNorm(),
            anynet.ReLU(),
            anynet.MaxPool2D(2),
            anynet.Flatten(),
            anynet.Dense(2),
        ],
        backend="cupy_double:1",
        input_shape=(1, 8, 8),
    )
    cnn.fit(x, y, epochs=1, batch_size=32, augment=aug)
    outputs = [m.predict(x) for m in (net, cnn)] + [m.predict_proba(x[:5]) for m in (net, cnn)]
    scores = [m.evaluate(x, y) for m in (net, cnn)]
    assert cp.cuda.Device().id == 0
    assert all(o.device.id == 1 for o in outputs)
    for model in (net, cnn):
        arrays = [p for _, _, p in model.parameters()]
        arrays += [a for slots in model.optimizer.state.values() for a in slots.values()]
        assert arrays and all(a.device.id == 1 for a in arrays)
    assert all(0.0 <= s["accuracy"] <= 1.0 for s in scores)
    assert w.kernels[0] == 0 and w.kernels[1] > 0, w.kernels


def test_models_load_and_move_onto_device_1(tmp_path):
    net, _, _ = _train_mlp("numpy", 1, 32)
    x, _ = _data(8)
    expected = net.predict_proba(x)
    path = anynet.save_model(net, tmp_path / "m.anynet")
    w = cp.watch()
    loaded = anynet.load_model(path, backend="cupy_double:1")
    moved = net.to("cupy_double:1")
    for model in (loaded, moved):
        got = model.predict_proba(x)
        assert got.device.id == 1
        np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-5, atol=1e-6)
    assert w.kernels[0] == 0, w.kernels


def test_lr_find_runs_on_device_1():
    x, y = _data()
    net = anynet.mlp((8,), num_classes=2, backend="cupy_double:1")
    w = cp.watch()
    result = anynet.lr_find(net, x, y, steps=12, batch_size=32)
    assert len(result.losses) > 0 and w.kernels[0] == 0, w.kernels


def _small_cnn(backend, **options):
    layers = [
        anynet.Conv2D(4, 3, padding="same", use_bias=False),
        anynet.BatchNorm(),
        anynet.ReLU(),
        anynet.MaxPool2D(2),
        anynet.Flatten(),
        anynet.Dense(8),
        anynet.ReLU(),
        anynet.Dropout(0.2),
        anynet.Dense(2),
    ]
    return anynet.Network(layers, backend=backend, input_shape=(1, 8, 8), seed=3, **options)


def test_fit_with_every_per_step_feature_reads_back_only_once_per_epoch():
    """A CNN with BatchNorm, pooling and dropout, AdamW with clipping and a one-cycle schedule,
    label smoothing, class weights, weight averaging and augmentation: the syncs per epoch do
    not grow with the steps: one read of the class counts, then 3 per epoch (the averaged
    weights are copied into the network on the device)."""
    x, y = _data()
    counts = []
    for batch_size in (48, 12):
        schedule = anynet.OneCycle()
        optimizer = anynet.AdamW(lr=1e-3, clip_norm=1.0, schedule=schedule)
        net = _small_cnn("cupy_double", optimizer=optimizer, loss=anynet.SoftmaxCrossEntropy(0.1))
        w = cp.watch()
        net.fit(
            x,
            y,
            epochs=2,
            batch_size=batch_size,
            class_weight="balanced",
            augment=Augmenter(rotation=5, elastic_alpha=2, elastic_sigma=2),
            callbacks=[anynet.WeightAveraging()],
        )
        counts.append(len(w.syncs))
        assert "anynet/training/weighting.py" in w.syncs[0], w.syncs
        assert all(s.startswith("float() at ") and "anynet/training/loop.py" in s for s in w.syncs[1:])
    assert counts == [1 + 6, 1 + 6]


def test_predict_from_another_thread_computes_on_the_backend_device():
    """The current device belongs to the thread: a server thread starts on device 0."""
    x, _ = _data(16)
    net = anynet.mlp((8,), num_classes=2, backend="cupy_double:1", input_shape=(8, 8))
    results: list = []
    thread = threading.Thread(target=lambda: results.append(net.predict_proba(x)))
    thread.start()
    thread.join()
    assert len(results) == 1 and results[0].device.id == 1


def test_scikit_learn_estimator_on_device_1():
    pytest.importorskip("sklearn")
    from anynet.sklearn import MLPClassifier

    x, y = _data()
    w = cp.watch()
    clf = MLPClassifier(hidden_layer_sizes=(8,), epochs=2, backend="cupy_double:1")
    clf.fit(x.reshape(len(x), -1), y)
    assert clf.score(x.reshape(len(x), -1), y) >= 0.0 and w.kernels[0] == 0, w.kernels


# ---------------------------------------------------------------------- ElementwiseKernel


def _f32(*values):
    return cp.asarray(np.array(values, dtype=np.float32))


def test_elementwise_kernel_evaluates_c_by_hand_computed_examples():
    """Results worked out by hand, so that a translator bug cannot hide a kernel bug."""
    k = cp.ElementwiseKernel(
        "T x, T y", "T z", "T t = x * y; z = t + (T)1 - y / 2", "k", options=("--fmad=false",)
    )
    z = k(_f32(1, 2, 3), _f32(4, 5, 6))  # t = 4, 10, 18; z = t + 1 - y/2
    assert z.dtype == np.float32 and z.get().tolist() == [3.0, 8.5, 16.0]
    # C's integer division truncates towards zero (Python's // floors); 2.0 is a double
    k = cp.ElementwiseKernel("int32 a", "int32 b, float64 c", "b = a / 2 * 2; c = a / 2.0 * 2", "k")
    b, c = k(cp.asarray(np.array([-3, 3, 4], dtype=np.int32)))
    assert b.dtype == np.int32 and b.get().tolist() == [-2, 2, 4] and c.get().tolist() == [-3.0, 3.0, 4.0]
    # compound assignment into given outputs, in place; fabs, max, sqrt
    k = cp.ElementwiseKernel("T x", "T y, T w", "y += fabs(x); w = max(x, (T)0) * sqrt(fabs(x))", "k")
    x, y, w = cp.asarray(np.array([-4.0, 9.0])), cp.ones(2), cp.zeros(2)
    out = k(x, y, w)
    assert out[0] is y and out[1] is w
    assert y.get().tolist() == [5.0, 10.0] and w.get().tolist() == [0.0, 27.0]


def test_elementwise_kernel_computes_in_cs_types():
    """``x * 0.1`` is a double product rounded to float once; ``x * 0.1f`` a float product.
    For x = 13: 13 * 0.1 = 1.3 -> float 1.29999995; 13 * float(0.1) = 13 * 0.100000001490116
    = 1.30000001937, nearer the float 1.30000007 than 1.29999995."""
    k = cp.ElementwiseKernel("float32 x", "float32 d, float32 f", "d = x * 0.1; f = x * 0.1f", "k")
    d, f = k(_f32(13))
    assert d.get()[0] == np.float32(1.3) and f.get()[0] == np.nextafter(np.float32(1.3), np.float32(2))


def test_elementwise_kernel_runs_once_on_the_current_device():
    k = cp.ElementwiseKernel("T x, T s", "T y", "y = x * s", "scale")
    with cp.cuda.Device(1):
        x, nothing = _f32(1, 2), cp.zeros(0, dtype=np.float32)
        w = cp.watch()
        y = k(x, 3.0)  # the scalar takes T: float
        assert w.kernels == [0, 1]
        assert k(nothing, 2.0).shape == (0,) and w.kernels == [0, 1]  # an empty loop: no launch
        assert y.device.id == 1 and y.dtype == np.float32 and y.get().tolist() == [3.0, 6.0]
    with pytest.raises(ValueError, match="Peer access is unavailable"):
        k(x, 2.0)
    with pytest.raises(TypeError, match=UNSUPPORTED):
        k(np.ones(2, np.float32), 2.0)


def test_elementwise_kernel_refuses_what_cupy_refuses():
    k = cp.ElementwiseKernel("T x", "T y", "y = x + x", "k")
    with pytest.raises(TypeError, match="Type is mismatched"):
        k(_f32(1), cp.zeros(1))  # float32 in, float64 out
    with pytest.raises(ValueError, match="Out shape is mismatched"):
        k(_f32(1, 2), cp.zeros(1, dtype=np.float32))
    with pytest.raises(TypeError, match="Wrong number of arguments"):
        k()
    with pytest.raises(ValueError, match="Invalid kernel name"):
        cp.ElementwiseKernel("T x", "T y", "y = x", "bad name")
    for body in ("x = y", "y = undeclared", "T y = x"):  # an input is const; names must exist once
        with pytest.raises(cp.cuda.compiler.CompileException):
            cp.ElementwiseKernel("T x", "T y", body, "k")(_f32(1))


def test_elementwise_kernel_refuses_what_the_double_cannot_model():
    """C beyond the translator's subset, an FMA NVRTC may form, fast math, aliased arguments:
    refused, the outputs untouched."""
    x, y = _f32(1, 2), _f32(5, 5)
    for body in ("y = x > 0 ? x : 0", "y = exp(x)", "y = x % 2", "if (x) y = x"):
        with pytest.raises(NotImplementedError):
            cp.ElementwiseKernel("T x", "T y", body, "k")(x, y)
    fma = cp.ElementwiseKernel("T x", "T y", "T p = x * x; y += p", "k")
    with pytest.raises(NotImplementedError, match="fmad=false"):
        fma(x, y)
    fast = cp.ElementwiseKernel("T x", "T y", "y = x", "k", options=("--use_fast_math",))
    with pytest.raises(NotImplementedError, match="use_fast_math"):
        fast(x, y)
    with pytest.raises(NotImplementedError, match="shares memory"):
        cp.ElementwiseKernel("T x", "T y", "y = x + x", "k")(y, y)
    assert y.get().tolist() == [5.0, 5.0]
    fused = cp.ElementwiseKernel("T x", "T y", "y = y + x * x", "k", options=("--fmad=false",))
    assert fused(x, y).get().tolist() == [6.0, 9.0]


def test_one_adam_step_launches_one_kernel_per_parameter():
    """The fused update: one launch per parameter (the generic path makes ~12), none of them
    a sync."""
    backend = get_backend("cupy_double")
    net = anynet.mlp((32, 16), num_classes=4, backend=backend, seed=0, input_shape=(10,))
    optimizer = anynet.Adam(lr=1e-3).bind(backend)
    params = net.parameters()
    grads = [backend.asarray(np.full(p.shape, 0.01), dtype="float32") for _, _, p in params]
    updates = [(f"{i}.{name}", p, g, True) for (i, name, p), g in zip(params, grads)]
    optimizer.step(updates)  # the first step makes the moments
    w = cp.watch()
    optimizer.step(updates)
    assert len(params) == 6 and w.kernels == [len(params), 0] and w.syncs == []
    w = cp.watch()
    for name, p, g, _ in updates:
        state = optimizer.state[name]
        backend.reference().adam_update(p, g, state["m"], state["v"], None, 0.9, 0.999, 1e-3, 1e-8)
    assert w.kernels[0] > 6 * len(params)
