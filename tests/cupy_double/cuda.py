"""``cupy.cuda`` of the double: fake devices, the current-device rule, streams and memory pointers.

As in CUDA, the current device belongs to the thread (``cudaSetDevice``); ``with Device(i)``
pushes the previous one on a thread-local stack and restores it on exit, as CuPy does.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = [
    "DEVICE_COUNT",
    "Device",
    "MemoryPointer",
    "Stream",
    "compiler",
    "curand",
    "get_current_stream",
    "get_device_id",
    "is_available",
    "runtime",
]

#: how many fake GPUs the double has
DEVICE_COUNT = 2


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.device = 0
        self.stack: list[int] = []
        self.streams: dict[int, Stream] = {}


_thread = _ThreadState()


class CUDARuntimeError(RuntimeError):
    """What ``cupy_backends.cuda.api.runtime.CUDARuntimeError`` says for a bad device ordinal."""

    def __init__(self, status: int = 101):
        self.status = status
        super().__init__("cudaErrorInvalidDevice: invalid device ordinal")


class _Runtime:
    """``cupy.cuda.runtime``: the calls anynet makes, on the fake devices."""

    CUDARuntimeError = CUDARuntimeError
    is_hip = False

    @staticmethod
    def getDeviceCount() -> int:
        return DEVICE_COUNT

    @staticmethod
    def getDevice() -> int:
        return _thread.device

    @staticmethod
    def setDevice(device: int) -> None:
        _thread.device = _valid(device)

    @staticmethod
    def getDeviceProperties(device: int) -> dict[str, Any]:
        """CuPy gives the name as bytes; this one says it is the test double."""
        index = _valid(device)
        return {
            "name": f"CuPy test double, fake GPU {index} (NumPy on the host)".encode(),
            "totalGlobalMem": 16 * 2**30,
            "major": 9,
            "minor": 0,
            "multiProcessorCount": 1,
        }

    @staticmethod
    def runtimeGetVersion() -> int:
        return 12080

    @staticmethod
    def driverGetVersion() -> int:
        return 12080

    @staticmethod
    def deviceSynchronize() -> None:
        """Nothing is ever queued: the double computes eagerly."""


runtime = _Runtime()


def _valid(device: int) -> int:
    index = int(device)
    if not 0 <= index < DEVICE_COUNT:
        raise CUDARuntimeError()
    return index


def get_device_id() -> int:
    """The current device of this thread."""
    return _thread.device


def is_available() -> bool:
    return True


class Device:
    """``cupy.cuda.Device``: ``Device()`` is the current device, ``Device(i)`` device ``i``.

    Compared by id; unhashable, as CuPy's (a Cython class with ``__richcmp__`` and no
    ``__hash__``).
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, device: Any = None):
        self.id = _thread.device if device is None else int(device)

    def __int__(self) -> int:
        return self.id

    def __enter__(self) -> Device:
        _thread.stack.append(_thread.device)
        try:
            runtime.setDevice(self.id)
        except CUDARuntimeError:
            _thread.stack.pop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        runtime.setDevice(_thread.stack.pop())

    def use(self) -> None:
        """Make this device current (until changed again)."""
        runtime.setDevice(self.id)

    def synchronize(self) -> None:
        """Nothing is ever queued."""

    @property
    def compute_capability(self) -> str:
        return "90"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.id == self.id

    def __lt__(self, other: Device) -> bool:
        return self.id < other.id

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class Stream:
    """A CUDA stream: the null stream of a device unless made otherwise."""

    _next_ptr = 0x7F00

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False):
        self.device_id = _thread.device
        if null:
            self.ptr = 0
        else:
            Stream._next_ptr += 0x10
            self.ptr = Stream._next_ptr

    def synchronize(self) -> None:
        """Nothing is ever queued."""

    def __repr__(self) -> str:
        return f"<Stream {self.ptr:#x} (device {self.device_id})>"


def get_current_stream(device_id: int | None = None) -> Stream:
    """The current stream of a device (the current one by default) in this thread."""
    index = _thread.device if device_id is None else _valid(device_id)
    stream = _thread.streams.get(index)
    if stream is None:
        stream = _thread.streams[index] = Stream(null=True)
        stream.device_id = index
    return stream


class MemoryPointer:
    """``ndarray.data``: where an array's memory lives (``ptr`` is the host address)."""

    def __init__(self, ptr: int, device_id: int):
        self.ptr, self.device_id = ptr, device_id

    @property
    def device(self) -> Device:
        return Device(self.device_id)

    def __int__(self) -> int:
        return self.ptr


class _Curand:
    """``cupy.cuda.curand``: the generator methods ``RandomState(seed, method)`` takes."""

    CURAND_RNG_PSEUDO_DEFAULT = 100
    CURAND_RNG_PSEUDO_XORWOW = 101
    CURAND_RNG_PSEUDO_MRG32K3A = 121
    CURAND_RNG_PSEUDO_MTGP32 = 141
    CURAND_RNG_PSEUDO_MT19937 = 142
    CURAND_RNG_PSEUDO_PHILOX4_32_10 = 161


curand = _Curand()


class CompileException(Exception):
    """``cupy.cuda.compiler.CompileException``: a kernel is not valid CUDA C."""


class _Compiler:
    """``cupy.cuda.compiler``: the error an invalid kernel raises."""

    CompileException = CompileException


compiler = _Compiler()
