"""NCCL through CuPy (``cupy.cuda.nccl``): data-parallel training on several GPUs.

One process per GPU, started by an MPI launcher (``mpiexec -n 4 anynet train --distributed
nccl``): MPI (the *control* communicator) hands NCCL's unique id from rank 0 to the others and
carries the once-per-epoch host numbers and the failure handling; NCCL sums the fused gradient
buffer on the GPU, on CuPy's current stream, with no host synchronisation per step. Rank ``r``
uses GPU ``local_rank % device_count`` of its machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from ..backend import Array, Backend, BackendError, get_backend, gpu_spec_for_rank
from ..backend.cupy import CupyBackend
from .comm import Communicator, DistributedError

__all__ = ["NCCLCommunicator", "import_nccl"]

INSTALL_HINT = (
    "distributed='nccl' needs CuPy, the NCCL library and CUDA GPUs: pip install "
    "'anynet[gpu,nccl,mpi]' (CuPy's wheels do not ship NCCL: the nccl extra installs "
    "nvidia-nccl-cu12; check with python -c 'from cupy.cuda import nccl; print(nccl.available)'). "
    "Without GPUs use distributed='mpi'"
)


def import_nccl() -> Any:
    """The GPU library's NCCL module, or a :class:`DistributedError` saying what is missing."""
    try:
        nccl = CupyBackend.nccl()
    except BackendError as exc:
        raise DistributedError(f"{INSTALL_HINT} ({exc})") from None
    if not getattr(nccl, "available", True):
        raise DistributedError(
            "CuPy cannot load the NCCL library (libnccl.so): pip install nvidia-nccl-cu12 "
            "(CUDA 12; nvidia-nccl-cu13 for CUDA 13), or install NCCL from NVIDIA"
        )
    return nccl


def _gpu(local_rank: int) -> Any:
    """This rank's GPU backend."""
    return get_backend(gpu_spec_for_rank("auto", local_rank))


def _pointer(buffer: Array) -> int:
    return CupyBackend.buffer_pointer(buffer)


class NCCLCommunicator(Communicator):
    """NCCL for device buffers, ``control`` (an MPI or any communicator) for the rest.

    ``nccl``, ``pointer`` and ``stream`` default to CuPy's NCCL module, a CuPy array's device
    pointer and the current stream's handle of ``gpu`` (this rank's GPU backend); the tests pass
    stand-ins to run this without a GPU (``gpu=None``: no device to check the network against).
    """

    name = "nccl"
    asynchronous = True

    def __init__(
        self,
        control: Communicator,
        nccl: Any,
        pointer: Callable[[Array], Any] = _pointer,
        stream: Callable[[], Any] | None = None,
        gpu: CupyBackend | None = None,
    ):
        self.gpu = gpu
        if stream is None:
            if gpu is None:
                raise ValueError("NCCLCommunicator needs the rank's GPU backend or a stream")
            stream = gpu.stream_handle
        self.control, self.nccl, self.pointer, self.stream = control, nccl, pointer, stream
        self.rank, self.size, self.local_rank = control.rank, control.size, control.local_rank
        uid = control.bcast_object(nccl.get_unique_id() if control.is_main else None)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)

    @classmethod
    def create(cls, control: Communicator) -> NCCLCommunicator:
        """Pick this rank's GPU (``local_rank % device_count``) and join the NCCL group on it."""
        nccl = import_nccl()
        gpu = _gpu(control.local_rank)
        gpu.device.use()
        return cls(control, nccl, gpu=gpu)

    @property
    def device_index(self) -> int | None:
        """This rank's GPU (``None`` for a communicator built with stand-ins)."""
        return None if self.gpu is None else int(self.gpu.device_label)

    def describe(self) -> str:
        version = getattr(self.nccl, "get_version", lambda: "?")()
        return f"NCCL {version} (control: {self.control.describe()})"

    def _dtype(self, buffer: Array) -> Any:
        name = np.dtype(str(buffer.dtype)).name
        table = {"float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}
        if name not in table:
            raise DistributedError(f"NCCL buffers must be float32 or float64, got {name}")
        return getattr(self.nccl, table[name])

    def allreduce(self, buffer: Array, backend: Backend) -> Array:
        ptr, count = self.pointer(buffer), int(buffer.shape[0])
        self.comm.allReduce(ptr, ptr, count, self._dtype(buffer), self.nccl.NCCL_SUM, self.stream())
        return buffer

    def broadcast(self, buffer: Array, backend: Backend) -> Array:
        ptr, count = self.pointer(buffer), int(buffer.shape[0])
        self.comm.bcast(ptr, count, self._dtype(buffer), 0, self.stream())
        return buffer

    def allreduce_host(self, values) -> np.ndarray:
        return self.control.allreduce_host(values)

    def bcast_object(self, obj: Any) -> Any:
        return self.control.bcast_object(obj)

    def gather_object(self, obj: Any) -> list[Any] | None:
        return self.control.gather_object(obj)

    def barrier(self) -> None:
        self.control.barrier()

    def abort(self, message: str, code: int = 1) -> NoReturn:
        self.control.abort(message, code)
