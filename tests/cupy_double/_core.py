"""The double's ``ndarray``, its ``ufunc`` and the rules every operation follows.

- An array is NumPy data plus the id of the fake device it lives on (``cuda.Device``).
- An operation that launches a kernel runs on the *current* device: an input on another device
  raises CuPy's ValueError (no peer access), and the output lands on the current device. Views
  (reshape, transpose, basic slicing) launch nothing and stay on their base's device.
- NumPy arrays are refused where CuPy refuses them (``TypeError: Unsupported type``), and
  implicit conversion to NumPy raises CuPy's TypeError.
- Every device-to-host synchronisation is recorded in :data:`log`, with where it came from.
"""

from __future__ import annotations

import sys
import threading
import warnings
from typing import Any

import numpy as np

from . import cuda

__all__ = ["Log", "Watch", "call", "log", "ndarray", "ufunc", "watch"]

_HERE = __name__.rsplit(".", 1)[0]


class Log:
    """What the double saw: device-to-host syncs and random draws, each with its cause, and
    how many operations (kernels, copies, uploads) ran on each device."""

    def __init__(self) -> None:
        self.syncs: list[str] = []
        self.draws: list[tuple[str, str]] = []
        self.kernels = [0] * cuda.DEVICE_COUNT
        self._lock = threading.Lock()

    def kernel(self, device_id: int) -> None:
        with self._lock:
            self.kernels[device_id] += 1

    def sync(self, cause: str) -> None:
        """Record a sync, with the first caller outside the double (``file:line``)."""
        with self._lock:
            self.syncs.append(f"{cause} at {_caller()}")

    def draw(self, method: str, dtype: Any) -> None:
        with self._lock:
            self.draws.append((method, np.dtype(dtype).name))


def _caller(depth: int = 3) -> str:
    """Where a sync came from: the first ``depth`` frames outside the double, innermost first."""
    frame: Any = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_HERE):
        frame = frame.f_back
    places = []
    while frame is not None and len(places) < depth:
        places.append(f"{frame.f_code.co_filename}:{frame.f_lineno}")
        frame = frame.f_back
    return " <- ".join(places) or "?"


#: everything the double saw in this process
log = Log()


class Watch:
    """The syncs and draws recorded since it was made (see :func:`watch`)."""

    def __init__(self) -> None:
        self._syncs, self._draws, self._kernels = len(log.syncs), len(log.draws), list(log.kernels)

    @property
    def syncs(self) -> list[str]:
        return log.syncs[self._syncs :]

    @property
    def draws(self) -> list[tuple[str, str]]:
        return log.draws[self._draws :]

    @property
    def kernels(self) -> list[int]:
        """Operations run on each device since the watch began."""
        return [now - then for now, then in zip(log.kernels, self._kernels)]


def watch() -> Watch:
    """Start watching: ``w = watch(); ...; assert not w.syncs, w.syncs``."""
    return Watch()


# ---------------------------------------------------------------------- the rules


def _peer_check(a: ndarray, device_id: int) -> None:
    """CuPy's ``_check_peer_access`` on a machine without peer access."""
    if a._dev != device_id:
        raise ValueError(
            f"The device where the array resides ({a._dev}) is different from the current "
            f"device ({device_id}). Peer access is unavailable between these devices."
        )


def _unsupported(x: Any) -> TypeError:
    return TypeError(f"Unsupported type {type(x)}")


def _is_scalar(x: Any) -> bool:
    return isinstance(x, (bool, int, float, complex, np.generic))


def _unwrap(obj: Any, found: list, host_ok: bool) -> Any:
    """``obj`` with the double's arrays replaced by their data (collected in ``found``)."""
    if isinstance(obj, ndarray):
        found.append(obj)
        return obj._a
    if isinstance(obj, np.ndarray):
        if not host_ok:
            raise _unsupported(obj)
        return obj
    if type(obj) in (list, tuple):
        return type(obj)(_unwrap(o, found, host_ok) for o in obj)
    return obj


def _wrap(result: Any, device_id: int, found: list) -> Any:
    """NumPy results as the double's arrays on ``device_id`` (an input given back as itself);
    NumPy scalars become 0-d arrays, as CuPy returns them."""
    if isinstance(result, np.ndarray):
        for a in found:
            if result is a._a:
                return a
        return ndarray._of(result, device_id)
    if isinstance(result, np.generic):
        return ndarray._of(np.asarray(result), device_id)
    if isinstance(result, tuple):
        items = [_wrap(r, device_id, found) for r in result]
        return type(result)(*items) if hasattr(result, "_fields") else tuple(items)
    if isinstance(result, list):
        return [_wrap(r, device_id, found) for r in result]
    return result


#: what kinds of operation there are (see :func:`call`)
KINDS = ("compute", "sync", "view", "like", "host", "take", "meta")


def call(func: Any, name: str, kind: str, args: tuple, kwargs: dict) -> Any:
    """Run NumPy's ``func`` as CuPy runs ``name``, by ``kind``:

    - ``compute``: a kernel on the current device; NumPy arrays refused.
    - ``sync``: the same, and the result's size is read back (data-dependent shapes).
    - ``view``: no kernel when the result is a view (it stays on its base's device), else compute.
    - ``like``: reads only shapes and dtypes; the result is made on the current device.
    - ``host``: takes host data (``asarray``); an array of another device is copied over.
    - ``take``: compute, but host index arrays are uploaded, as CuPy's ``take`` does.
    - ``meta``: dtypes, shapes, printing options: nothing on a device.
    """
    dev, found = cuda.get_device_id(), []
    if kind == "meta":
        return func(*_unwrap(args, [], True), **{k: _unwrap(v, [], True) for k, v in kwargs.items()})
    host_ok = kind in ("host", "take")
    uargs = _unwrap(args, found, host_ok)
    ukwargs = {k: _unwrap(v, found, host_ok) for k, v in kwargs.items()}
    if kind == "host":
        log.kernel(dev)
        return _wrap(_host(func, uargs, ukwargs, found, dev), dev, found)
    if kind in ("compute", "sync", "take"):
        for a in found:
            _peer_check(a, dev)
    if kind == "sync":
        log.sync(f"{name}()")
    result = func(*uargs, **ukwargs)
    if kind == "view":
        first = result[0] if isinstance(result, (tuple, list)) and result else result
        if found and isinstance(first, np.ndarray) and np.may_share_memory(first, found[0]._a):
            return _wrap(result, found[0]._dev, found)
        for a in found:
            _peer_check(a, dev)
    log.kernel(dev)
    return _wrap(result, dev, found)


def _host(func: Any, uargs: tuple, ukwargs: dict, found: list, dev: int) -> Any:
    """``asarray`` and friends: host data are copied (to the device), and so is an array of
    another device; an array of the current device may come back as it is, as in CuPy."""
    result = func(*uargs, **ukwargs)
    if not isinstance(result, np.ndarray) or any(result is a._a and a._dev == dev for a in found):
        return result
    if result.base is not None or any(result is u for u in uargs) or any(result is a._a for a in found):
        result = result.copy()
    return result


class ufunc:
    """A CuPy ufunc: operands are the double's arrays or scalars, never host arrays or lists."""

    def __init__(self, np_ufunc: np.ufunc, name: str | None = None):
        self._np = np_ufunc
        self.__name__ = name or np_ufunc.__name__
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for x in args[: self.nin]:
            if not (isinstance(x, ndarray) or _is_scalar(x)):
                raise _unsupported(x)
        return call(self._np, self.__name__, "compute", args, kwargs)

    def _method(self, method: str, args: tuple, kwargs: dict) -> Any:
        return call(getattr(self._np, method), f"{self.__name__}.{method}", "compute", args, kwargs)

    def reduce(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("reduce", args, kwargs)

    def accumulate(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("accumulate", args, kwargs)

    def reduceat(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("reduceat", args, kwargs)

    def outer(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("outer", args, kwargs)

    def at(self, *args: Any, **kwargs: Any) -> Any:
        return self._method("at", args, kwargs)

    def __repr__(self) -> str:
        return f"<ufunc '{self.__name__}'>"


#: every ufunc of the double, by name (filled in by the package)
UFUNCS: dict[str, ufunc] = {}


def _uf(name: str) -> ufunc:
    """The double's ufunc for NumPy's ``name`` (one object per ufunc, aliases included)."""
    np_ufunc = getattr(np, name)
    found = UFUNCS.get(np_ufunc.__name__)
    if found is None:
        found = UFUNCS[np_ufunc.__name__] = ufunc(np_ufunc)
    return found


# ---------------------------------------------------------------------- indexing


def _index(key: Any, found: list) -> tuple[Any, bool, bool]:
    """``key`` with the double's arrays unwrapped; whether it is advanced; whether it holds a
    boolean mask (whose count CuPy reads back). Host index arrays are uploaded, as by CuPy."""
    parts = key if isinstance(key, tuple) else (key,)
    out, advanced, mask = [], False, False
    for k in parts:
        if isinstance(k, ndarray):
            found.append(k)
            advanced, mask, k = True, mask or k.dtype == np.bool_, k._a
        elif isinstance(k, (np.ndarray, list)):
            advanced, mask = True, mask or np.asarray(k).dtype == np.bool_
        elif isinstance(k, (bool, np.bool_)):
            advanced, mask = True, True
        out.append(k)
    return (tuple(out) if isinstance(key, tuple) else out[0]), advanced, mask


def _view_key(key: Any) -> tuple:
    """A basic index that gives a 0-d view rather than a NumPy scalar (CuPy gives arrays)."""
    parts = key if isinstance(key, tuple) else (key,)
    return parts if any(k is Ellipsis for k in parts) else (*parts, Ellipsis)


def _fill_value(value: Any, dev: int) -> Any:
    """A value for a basic-index assignment: CuPy fills from scalars and 0-d host arrays only."""
    if isinstance(value, ndarray):
        _peer_check(value, dev)
        return value._a
    if not _is_scalar(value) and np.ndim(value) != 0:
        raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
    return value


# ---------------------------------------------------------------------- the array


class ndarray:
    """``cupy.ndarray``: NumPy data on a fake device (not a ``numpy.ndarray`` subclass)."""

    __array_priority__ = 100.0
    __hash__ = None  # type: ignore[assignment]
    _a: np.ndarray
    _dev: int

    def __init__(
        self, shape: Any, dtype: Any = float, memptr: Any = None, strides: Any = None, order: str = "C"
    ):
        if memptr is not None or strides is not None:
            raise NotImplementedError("the CuPy test double makes arrays from a shape only")
        self._a = np.empty(shape, dtype=dtype, order=order)
        self._dev = cuda.get_device_id()

    @classmethod
    def _of(cls, a: np.ndarray, device_id: int) -> ndarray:
        out = cls.__new__(cls)
        out._a, out._dev = a, device_id
        return out

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return self._a.shape

    @shape.setter
    def shape(self, value: Any) -> None:
        self._a.shape = value

    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray._of(self._a.T, self._dev))
    mT = property(lambda self: ndarray._of(self._a.mT, self._dev))
    real = property(lambda self: ndarray._of(self._a.real, self._dev))
    imag = property(lambda self: ndarray._of(self._a.imag, self._dev))

    @property
    def device(self) -> cuda.Device:
        return cuda.Device(self._dev)

    @property
    def data(self) -> cuda.MemoryPointer:
        return cuda.MemoryPointer(int(self._a.__array_interface__["data"][0]), self._dev)

    def __array_namespace__(self, api_version: str | None = None) -> Any:
        """array-api-compat's CuPy wrapper, serving the double (CuPy's ndarray has no such
        method: ``array_namespace`` recognises it by class, which it cannot do for the double)."""
        from .compat import namespace

        return namespace()

    # ------------------------------------------------------------------ host transfers (syncs)
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly."
        )

    def get(self, stream: Any = None, order: str = "C", out: np.ndarray | None = None, blocking: bool = True):
        """A host copy (a device-to-host sync)."""
        log.sync("get()")
        if out is not None:
            np.copyto(out, self._a)
            return out
        return np.array(self._a, order=order)

    def set(self, arr: np.ndarray, stream: Any = None) -> None:
        """Copy host data into this array (host to device: no sync)."""
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        if arr.shape != self.shape or arr.dtype != self.dtype:
            raise ValueError(
                f"Shape or dtype mismatch: {arr.shape} {arr.dtype} into {self.shape} {self.dtype}"
            )
        np.copyto(self._a, arr)

    def _read(self, what: str) -> np.ndarray:
        log.sync(what)
        return self._a

    def item(self, *args: Any) -> Any:
        return self._read("item()").item(*args)

    def tolist(self) -> Any:
        return self._read("tolist()").tolist()

    def tobytes(self, order: str = "C") -> bytes:
        return self._read("tobytes()").tobytes(order)

    def __bool__(self) -> bool:
        if self.size == 0:
            warnings.warn("The truth value of an empty array is ambiguous.", DeprecationWarning, stacklevel=2)
            return False
        if self.size > 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous.")
        return bool(self._read("bool()"))

    def __int__(self) -> int:
        return int(self._read("int()"))

    def __float__(self) -> float:
        return float(self._read("float()"))

    def __complex__(self) -> complex:
        return complex(self._read("complex()"))

    # no __index__: CuPy's ndarray has none, so ``range(a)`` or ``x[:a]`` raise TypeError

    def __repr__(self) -> str:
        return repr(self._read("repr()"))

    def __str__(self) -> str:
        return str(self._read("str()"))

    def __format__(self, spec: str) -> str:
        return format(self._read("format()"), spec)

    def __reduce__(self) -> tuple:
        from . import array

        return array, (self.get(),)

    # ------------------------------------------------------------------ copies and containers
    def copy(self, order: str = "C") -> ndarray:
        """A copy on the current device (from any device, as CuPy's ``copy``)."""
        log.kernel(cuda.get_device_id())
        return ndarray._of(self._a.copy(order=order), cuda.get_device_id())

    def __copy__(self) -> ndarray:
        return self.copy()

    def __deepcopy__(self, memo: dict) -> ndarray:
        with self.device:
            return self.copy()

    def astype(self, dtype: Any, order: str = "K", casting: Any = None, subok: Any = None, copy: bool = True):
        func = np.ndarray.astype
        return call(func, "astype", "view", (self, dtype, order, casting or "unsafe"), {"copy": copy})

    def fill(self, value: Any) -> None:
        dev = cuda.get_device_id()
        _peer_check(self, dev)
        log.kernel(dev)
        self._a.fill(_fill_value(value, dev))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, key: Any) -> ndarray:
        found: list = []
        ukey, advanced, mask = _index(key, found)
        if not advanced:
            return ndarray._of(self._a[_view_key(ukey)], self._dev)
        dev = cuda.get_device_id()
        for a in (self, *found):
            _peer_check(a, dev)
        if mask:
            log.sync("boolean mask index")
        log.kernel(dev)
        return ndarray._of(np.asarray(self._a[ukey]), dev)

    def __setitem__(self, key: Any, value: Any) -> None:
        found: list = []
        ukey, advanced, mask = _index(key, found)
        dev = cuda.get_device_id()
        for a in (self, *found):
            _peer_check(a, dev)
        if not advanced:
            value = _fill_value(value, dev)
        elif isinstance(value, ndarray):
            _peer_check(value, dev)
            value = value._a
        if mask:
            log.sync("boolean mask assignment")
        log.kernel(dev)
        self._a[ukey] = value

    # ------------------------------------------------------------------ NumPy's protocols
    def __array_ufunc__(self, np_ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        mine = UFUNCS.get(np_ufunc.__name__)
        if mine is None:
            return NotImplemented
        if method == "__call__":
            return mine(*inputs, **kwargs)
        return getattr(mine, method)(*inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        module: Any = sys.modules[_HERE]
        for part in func.__module__.split(".")[1:]:
            module = getattr(module, part, None)
        mine = getattr(module, func.__name__, None)
        if mine is None or mine is func:
            return NotImplemented
        return mine(*args, **kwargs)

    # ------------------------------------------------------------------ comparisons
    def _compare(self, other: Any, name: str) -> Any:
        if isinstance(other, np.ndarray) and other.ndim == 0:
            other = other.item()
        plain = other is None or type(other).__eq__ is object.__eq__  # never equal to a number
        if name in ("equal", "not_equal") and plain and not isinstance(other, (ndarray, np.ndarray)):
            log.kernel(cuda.get_device_id())
            return ndarray._of(np.full(self.shape, name == "not_equal"), cuda.get_device_id())
        return _uf(name)(self, other)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return self._compare(other, "equal")

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return self._compare(other, "not_equal")

    def __lt__(self, other: Any) -> Any:
        return self._compare(other, "less")

    def __le__(self, other: Any) -> Any:
        return self._compare(other, "less_equal")

    def __gt__(self, other: Any) -> Any:
        return self._compare(other, "greater")

    def __ge__(self, other: Any) -> Any:
        return self._compare(other, "greater_equal")


def _binary(name: str, reflected: bool = False, inplace: bool = False) -> Any:
    def op(self: ndarray, other: Any) -> Any:
        if isinstance(other, np.ndarray) and not isinstance(other, ndarray):
            raise _unsupported(other)
        if inplace:
            return _uf(name)(self, other, out=self)
        return _uf(name)(other, self) if reflected else _uf(name)(self, other)

    return op


def _unary(name: str) -> Any:
    return lambda self: _uf(name)(self)


_BINARY = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "truediv": "true_divide",
    "floordiv": "floor_divide",
    "mod": "remainder",
    "pow": "power",
    "matmul": "matmul",
    "and": "bitwise_and",
    "or": "bitwise_or",
    "xor": "bitwise_xor",
    "lshift": "left_shift",
    "rshift": "right_shift",
}
for _short, _name in _BINARY.items():
    setattr(ndarray, f"__{_short}__", _binary(_name))
    setattr(ndarray, f"__r{_short}__", _binary(_name, reflected=True))
    if _short != "matmul":  # CuPy has no __imatmul__
        setattr(ndarray, f"__i{_short}__", _binary(_name, inplace=True))
for _short, _name in {"neg": "negative", "pos": "positive", "abs": "absolute", "invert": "invert"}.items():
    setattr(ndarray, f"__{_short}__", _unary(_name))
ndarray.__divmod__ = lambda self, other: _uf("divmod")(self, other)  # type: ignore[attr-defined]


def _method(name: str, kind: str) -> Any:
    np_method = getattr(np.ndarray, name)

    def method(self: ndarray, *args: Any, **kwargs: Any) -> Any:
        return call(np_method, name, kind, (self, *args), kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``cupy.ndarray.{name}`` on the current device (NumPy underneath)."
    return method


#: CuPy's ndarray methods by kind (see :func:`call`); ``copy``, ``astype``, ``fill``, ``get``,
#: ``set``, ``item``, ``tolist`` and ``tobytes`` are written out above
_METHODS = {
    "compute": "all any argmax argmin argpartition argsort choose clip conj conjugate cumprod "
    "cumsum dot flatten max mean min partition prod repeat round searchsorted sort std sum trace var",
    "view": "diagonal ravel reshape squeeze swapaxes transpose view",
    "sync": "compress nonzero",
    "take": "take put",
}
for _kind, _names in _METHODS.items():
    for _m in _names.split():
        setattr(ndarray, _m, _method(_m, _kind))
