"""Shared fixtures: every installed array backend, and the real data directory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from anynet.backend import BackendError, available_backends, get_backend, to_numpy

from .cupy_double.backend import register as register_cupy_double

register_cupy_double()

# Every backend the tests know; the ones that are not usable here are skipped with the reason.
BACKEND_SPECS = [
    "numpy",
    "array_api_strict",
    "array_api_strict:device1",  # a fake second device: catches arrays created on the wrong device
    "torch",
    "torch:cuda",
    "cupy",
    # the CuPy test double (tests/cupy_double): CuPy's refusals and syncs, without a GPU (its
    # second fake GPU is tested in test_cupy_double.py: it needs the device context entered)
    "cupy_double",
]


def _backend_or_skip(spec):
    try:
        return get_backend(spec)
    except BackendError as exc:
        pytest.skip(f"{spec} not usable here: {exc}")


@pytest.fixture(params=BACKEND_SPECS)
def backend(request):
    """Each installed backend in turn (CuPy and torch:cuda only where a CUDA GPU is usable; the
    CuPy double everywhere)."""
    return _backend_or_skip(request.param)


@pytest.fixture
def xp(backend):
    return backend.xp


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder from ANYNET_DATA_DIR (CI sets it to ../shared/data)."""
    value = os.environ.get("ANYNET_DATA_DIR")
    if not value or not Path(value, "mnist").is_dir():
        pytest.skip("ANYNET_DATA_DIR is not set to a folder holding mnist/ (see README)")
    return Path(value)


def assert_on(backend, array, dtype=None):
    """``array`` belongs to ``backend``'s namespace and device (and has ``dtype``)."""
    from array_api_compat import array_namespace, device

    assert array_namespace(array) is backend.xp, f"array of {type(array)} on backend {backend.spec}"
    assert str(device(array)) == str(backend.device), f"{device(array)} != {backend.device}"
    if dtype is not None:
        assert array.dtype == dtype, f"dtype {array.dtype} != {dtype}"


def installed_backends():
    return available_backends()


def host(a) -> np.ndarray:
    return to_numpy(a)
