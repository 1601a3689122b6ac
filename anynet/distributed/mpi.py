"""MPI through mpi4py: ``mpiexec -n 4 python train.py`` with ``distributed="mpi"``.

Host buffers (NumPy, PyTorch on the CPU) are summed in place with one ``Allreduce``. Device
buffers (CuPy) go to MPI directly when the MPI library is CUDA-aware (``MPIX_Query_cuda_support``,
or ``ANYNET_CUDA_AWARE_MPI=1`` to assert it), after the current CUDA stream is synchronised;
otherwise they are staged through host memory (one device-to-host and one host-to-device copy
per step), and rank 0 says so once. A failed rank calls ``MPI_Abort``, which ends every rank.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, NoReturn

import numpy as np

from ..backend import Array, Backend
from .comm import Communicator, DistributedError, local_rank_from_env, say

__all__ = ["MPICommunicator", "cuda_aware_mpi"]

#: Seconds a failing rank waits between printing why and ``MPI_Abort``.
ABORT_GRACE_SECONDS = 0.5

INSTALL_HINT = (
    "pip install mpi4py mpich (or: pip install 'anynet[mpi]'; on a cluster, build mpi4py "
    "against the site's MPI: module load openmpi && pip install --no-binary mpi4py mpi4py)"
)


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(
            f"distributed='mpi' needs mpi4py and an MPI library ({exc}); {INSTALL_HINT}"
        ) from None
    except RuntimeError as exc:  # mpi4py found no usable MPI library
        raise DistributedError(f"mpi4py could not load an MPI library: {exc}; {INSTALL_HINT}") from None
    return MPI


def cuda_aware_mpi(mpi: Any) -> bool:
    """Whether MPI can read and write CUDA device memory (``ANYNET_CUDA_AWARE_MPI`` overrides)."""
    forced = os.environ.get("ANYNET_CUDA_AWARE_MPI", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    query = getattr(mpi, "Query_cuda_support", None)
    try:
        return bool(query()) if query is not None else False
    except Exception:  # the library does not implement the MPIX extension
        return False


class MPICommunicator(Communicator):
    """The ranks of an MPI communicator (``MPI.COMM_WORLD`` by default)."""

    name = "mpi"

    def __init__(self, comm: Any = None):
        self.MPI = _import_mpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.local_rank = local_rank_from_env(self.rank)
        self._cuda_aware: bool | None = None

    @classmethod
    def world(cls) -> MPICommunicator:
        return cls()

    def describe(self) -> str:
        version = self.MPI.Get_library_version().splitlines()[0].strip()
        return f"MPI ({version}), rank {self.rank} of {self.size}"

    # ------------------------------------------------------------------ device buffers
    def _device_direct(self, backend: Backend) -> bool:
        """Whether a device buffer goes to MPI as it is (CUDA-aware MPI), else host staging."""
        if backend.on_host:
            return False
        if self._cuda_aware is None:
            self._cuda_aware = backend.accelerator and cuda_aware_mpi(self.MPI)
            if not self._cuda_aware:
                say(
                    self,
                    f"MPI is not CUDA-aware here (or the backend is {backend.name}): gradients go "
                    "through host memory each step (device -> host, Allreduce, host -> device). "
                    "On GPUs prefer distributed='nccl'",
                )
        return self._cuda_aware

    def _collective(self, buffer: Array, backend: Backend, call) -> Array:
        if backend.on_host:
            buffer = np.ascontiguousarray(buffer)
            call(buffer)
            return buffer
        if self._device_direct(backend):
            backend.synchronize()  # MPI reads on its own
            call(buffer)
            return buffer
        host = np.array(backend.to_host(buffer), copy=True)
        call(host)
        return backend.asarray(host, dtype=buffer.dtype)

    def allreduce(self, buffer: Array, backend: Backend) -> Array:
        return self._collective(buffer, backend, lambda b: self.comm.Allreduce(self.MPI.IN_PLACE, b))

    def broadcast(self, buffer: Array, backend: Backend) -> Array:
        return self._collective(buffer, backend, lambda b: self.comm.Bcast(b, root=0))

    # ------------------------------------------------------------------ host values and control
    def allreduce_host(self, values) -> np.ndarray:
        out = np.array(values, dtype=np.float64, copy=True)
        self.comm.Allreduce(self.MPI.IN_PLACE, out)
        return out

    def bcast_object(self, obj: Any) -> Any:
        return self.comm.bcast(obj, root=0)

    def gather_object(self, obj: Any) -> list[Any] | None:
        return self.comm.gather(obj, root=0)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, message: str, code: int = 1) -> NoReturn:
        print(f"anynet: rank {self.rank} of {self.size}: {message}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # the launcher forwards output through its proxies, and MPI_Abort tears them down at
        # once: without a pause the message can be lost on the way (seen with MPICH's Hydra)
        time.sleep(ABORT_GRACE_SECONDS)
        self.comm.Abort(code)
        raise DistributedError(message)  # not reached: Abort ends the process
