"""Fixtures and hooks: every array backend the tests know, the real data directory, and a fresh
$ANYNET_HOME. Helpers that tests import are in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .cupy_double.backend import register as register_cupy_double
from .helpers import BACKEND_SPECS, _backend_or_skip


def pytest_configure(config):
    register_cupy_double()  # makes "cupy_double" a backend spec (it is never picked by "auto")
    _jax_x64()


def _jax_x64() -> None:
    """JAX makes float64 arrays only in x64 mode, which must be set before any array exists:
    the float64 gradient checks run on JAX too."""
    try:
        import jax
    except ImportError:
        return
    jax.config.update("jax_enable_x64", True)


@pytest.fixture(params=BACKEND_SPECS)
def backend(request):
    """Each installed backend in turn (CuPy and torch:cuda only where a CUDA GPU is usable; the
    CuPy double everywhere)."""
    return _backend_or_skip(request.param)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder from ANYNET_DATA_DIR (CI sets it to ../shared/data)."""
    value = os.environ.get("ANYNET_DATA_DIR")
    if not value or not Path(value, "mnist").is_dir():
        pytest.skip("ANYNET_DATA_DIR is not set to a folder holding mnist/ (see README)")
    return Path(value)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh $ANYNET_HOME per test, so no test reads or writes ~/.anynet."""
    path = tmp_path / "home"
    monkeypatch.setenv("ANYNET_HOME", str(path))
    return path


def pytest_collection_modifyitems(config, items):
    """Every test that reads the real data set (through the data_dir fixture, directly or by way of
    another fixture) is slow: ``-m "not slow"`` is the quick loop."""
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
