"""Backend lookup, errors that say what to do, random sources and host transfers."""

from __future__ import annotations

import numpy as np
import pytest

from anynet.backend import BackendError, available_backends, backend_of, get_backend, to_numpy

from .helpers import assert_on


def test_numpy_is_always_available():
    assert "numpy" in available_backends()
    assert get_backend("numpy").name == "numpy"


def test_auto_falls_back_to_numpy_without_gpu():
    expected = "cupy" if "cupy" in available_backends() else "numpy"
    assert get_backend("auto").name == expected
    assert get_backend(None).name == expected


@pytest.mark.parametrize(
    "spec, words",
    [
        ("tensorflow", ["unknown backend 'tensorflow'", "numpy"]),
        ("numpy:cuda", ["cpu"]),
        ("array_api_strict:device9", ["no device 'device9'"]),
        ("auto:1", ["takes no device"]),
    ],
)
def test_bad_backend_names_explain_themselves(spec, words):
    with pytest.raises(BackendError) as info:
        get_backend(spec)
    for word in words:
        assert word in str(info.value)


def test_cupy_without_gpu_says_what_to_do():
    if "cupy" in available_backends():
        pytest.skip("a GPU is usable here")
    with pytest.raises(BackendError) as info:
        get_backend("cupy")
    message = str(info.value)
    assert ("not installed" in message and "pip install" in message) or "needs a CUDA GPU" in message
    assert "numpy" in message  # names what is available instead


def test_torch_cuda_without_gpu_is_a_clear_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(BackendError, match="needs a CUDA GPU"):
        get_backend("torch:cuda")


def test_asarray_roundtrip_keeps_values_dtype_and_device(backend):
    host = np.arange(6, dtype=np.float64).reshape(2, 3)
    a = backend.asarray(host, dtype="float32")
    assert_on(backend, a, backend.xp.float32)
    np.testing.assert_array_equal(to_numpy(a), host.astype(np.float32))
    assert backend_of(a) == backend


def test_asarray_moves_arrays_between_backends(backend):
    other = (
        get_backend("array_api_strict:device1")
        if backend.name != "array_api_strict"
        else get_backend("numpy")
    )
    src = other.asarray(np.ones(3), dtype="float64")
    assert_on(backend, backend.asarray(src), backend.xp.float64)


def test_random_sources_are_seeded_and_on_device(backend):
    a, b = backend.random(7), backend.random(7)
    pa, pb = a.permutation(50), b.permutation(50)
    assert_on(backend, pa)
    np.testing.assert_array_equal(to_numpy(pa), to_numpy(pb))
    assert sorted(to_numpy(pa).tolist()) == list(range(50))
    u = a.uniform((1000,), dtype=backend.xp.float32)
    assert_on(backend, u, backend.xp.float32)
    hu = to_numpy(u)
    assert hu.min() >= 0.0 and hu.max() < 1.0 and 0.4 < hu.mean() < 0.6
    g = a.normal((2000,), dtype=backend.xp.float64)
    assert_on(backend, g, backend.xp.float64)
    assert abs(to_numpy(g).mean()) < 0.1 and 0.9 < to_numpy(g).std() < 1.1


def test_spec_round_trips(backend):
    assert get_backend(backend.spec) == backend
