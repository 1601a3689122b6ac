"""``cupy.random`` of the double: :class:`RandomState` as CuPy's, without ``get_state`` or
``set_state`` (CuPy's cuRAND generators have neither).

Numbers come from NumPy's PCG64 (whatever cuRAND ``method`` is asked for: the double models
no generator's numbers) drawn *in the requested dtype* (cuRAND draws float32 natively),
and every draw is logged with its dtype (``log.draws``), so a float64 draw cast down shows. A
generator belongs to the device that was current when it was made, as a cuRAND generator does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import cuda
from ._core import log, ndarray

__all__ = [
    "RandomState",
    "choice",
    "get_random_state",
    "normal",
    "permutation",
    "rand",
    "randint",
    "randn",
    "random",
    "random_sample",
    "reset_states",
    "seed",
    "shuffle",
    "standard_normal",
    "uniform",
]


def _check_and_get_dtype(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.char not in ("f", "d"):
        raise TypeError("cupy.random only supports float32 and float64")
    return dtype


def _seed(seed: Any) -> int | None:
    if seed is None:
        return None
    value = np.asarray(seed)
    if value.dtype.kind not in "biu":
        raise TypeError("Seed must be an integer.")
    if not 0 <= int(value) < 2**64:
        raise ValueError("Seed must be an integer between 0 and 2**64 - 1")
    return int(value)


def _shape(size: Any) -> tuple[int, ...]:
    if size is None:
        return ()
    return (int(size),) if np.ndim(size) == 0 else tuple(int(s) for s in size)


class RandomState:
    """CuPy's ``RandomState(seed)`` on the current device."""

    def __init__(self, seed: Any = None, method: Any = None):
        methods = {v for k, v in vars(type(cuda.curand)).items() if k.startswith("CURAND_RNG_")}
        if method is not None and method not in methods:
            raise RuntimeError(f"CURAND_STATUS_TYPE_ERROR: no generator method {method!r}")
        self._dev = cuda.get_device_id()
        self.method = cuda.curand.CURAND_RNG_PSEUDO_DEFAULT if method is None else method
        self.seed(seed)

    def seed(self, seed: Any = None) -> None:
        self._rng = np.random.Generator(np.random.PCG64(_seed(seed)))

    def _out(self, method: str, host: np.ndarray, dtype: Any) -> ndarray:
        dev = cuda.get_device_id()
        if dev != self._dev:
            raise ValueError(
                f"this cuRAND generator belongs to device {self._dev}, but device {dev} is "
                "current: it cannot write there (make one generator per device)"
            )
        log.draw(method, dtype)
        log.kernel(dev)
        return ndarray._of(np.asarray(host, dtype=dtype), dev)

    def random_sample(self, size: Any = None, dtype: Any = float) -> ndarray:
        dtype = _check_and_get_dtype(dtype)
        return self._out("random_sample", self._rng.random(_shape(size), dtype=dtype), dtype)

    def rand(self, *size: int, dtype: Any = float) -> ndarray:
        return self.random_sample(size, dtype)

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: Any = None, dtype: Any = float) -> ndarray:
        dtype = _check_and_get_dtype(dtype)
        host = self._rng.random(_shape(size), dtype=dtype)
        out = self._out("uniform", host, dtype)
        return out * (high - low) + low

    def standard_normal(self, size: Any = None, dtype: Any = float) -> ndarray:
        dtype = _check_and_get_dtype(dtype)
        return self._out("standard_normal", self._rng.standard_normal(_shape(size), dtype=dtype), dtype)

    def randn(self, *size: int, dtype: Any = float) -> ndarray:
        return self.standard_normal(size, dtype)

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None, dtype: Any = float) -> ndarray:
        dtype = _check_and_get_dtype(dtype)
        out = self._out("normal", self._rng.standard_normal(_shape(size), dtype=dtype), dtype)
        return out * scale + loc

    def _permutation(self, num: int) -> ndarray:
        """A permuted range: the argsort of int32 draws, so int64 (as CuPy's)."""
        return self._out("permutation", self._rng.permutation(num), np.int64)

    def permutation(self, a: Any) -> ndarray:
        """``permutation(n)`` for a Python int ``n`` (a NumPy integer is taken as an array, as
        CuPy does), else a shuffled copy of the array ``a``."""
        if isinstance(a, int):
            return self._permutation(a)
        return a[self._permutation(len(a))]

    def shuffle(self, a: ndarray) -> None:
        if not isinstance(a, ndarray):
            raise TypeError("The array must be cupy.ndarray")
        a[...] = a[self._permutation(len(a))]

    def randint(self, low: int, high: int | None = None, size: Any = None, dtype: Any = int) -> ndarray:
        low, high = (0, low) if high is None else (low, high)
        host = self._rng.integers(low, high, _shape(size), dtype=np.dtype(dtype))
        return self._out("randint", host, dtype)

    def choice(self, a: Any, size: Any = None, replace: bool = True, p: Any = None) -> ndarray:
        if not isinstance(a, int) or p is not None:
            raise NotImplementedError("the CuPy test double draws choice(n, size, replace) only")
        return self._out("choice", self._rng.choice(a, _shape(size), replace=replace), np.int64)


_states: dict[int, RandomState] = {}


def get_random_state() -> RandomState:
    """The current device's default generator."""
    dev = cuda.get_device_id()
    if dev not in _states:
        _states[dev] = RandomState()
    return _states[dev]


def seed(seed: Any = None) -> None:
    get_random_state().seed(seed)


def reset_states() -> None:
    _states.clear()


def random_sample(size: Any = None, dtype: Any = float) -> ndarray:
    return get_random_state().random_sample(size, dtype)


random = random_sample


def rand(*size: int, dtype: Any = float) -> ndarray:
    return get_random_state().rand(*size, dtype=dtype)


def randn(*size: int, dtype: Any = float) -> ndarray:
    return get_random_state().randn(*size, dtype=dtype)


def uniform(low: Any = 0.0, high: Any = 1.0, size: Any = None, dtype: Any = float) -> ndarray:
    return get_random_state().uniform(low, high, size, dtype)


def normal(loc: Any = 0.0, scale: Any = 1.0, size: Any = None, dtype: Any = float) -> ndarray:
    return get_random_state().normal(loc, scale, size, dtype)


def standard_normal(size: Any = None, dtype: Any = float) -> ndarray:
    return get_random_state().standard_normal(size, dtype)


def permutation(a: Any) -> ndarray:
    return get_random_state().permutation(a)


def shuffle(a: ndarray) -> None:
    get_random_state().shuffle(a)


def randint(low: int, high: int | None = None, size: Any = None, dtype: Any = int) -> ndarray:
    return get_random_state().randint(low, high, size, dtype)


def choice(a: Any, size: Any = None, replace: bool = True, p: Any = None) -> ndarray:
    return get_random_state().choice(a, size, replace, p)
