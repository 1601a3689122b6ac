"""Which process group a ``distributed=`` option names, and which backend each rank trains on."""

from __future__ import annotations

from typing import Any

from ..backend import get_backend, gpu_spec_for_rank
from .comm import Communicator, LocalCommunicator, check_nccl_backend
from .mpi import MPICommunicator
from .nccl import NCCLCommunicator

__all__ = ["get_communicator", "rank_backend"]


def get_communicator(distributed: Any) -> Communicator | None:
    """The communicator for the ``distributed=`` option: ``None``/``False`` (none),
    ``"mpi"``, ``"nccl"`` (NCCL for the gradients, MPI to start and steer), ``"local"`` (one
    process; the same code path), or a :class:`Communicator`."""
    if distributed is None or distributed is False:
        return None
    if isinstance(distributed, Communicator):
        return distributed
    kind = str(distributed).lower()
    if kind == "local":
        return LocalCommunicator()
    if kind == "mpi":
        return MPICommunicator.world()
    if kind == "nccl":
        return NCCLCommunicator.create(MPICommunicator.world())
    raise ValueError(
        f"distributed must be None, 'mpi', 'nccl', 'local' or a Communicator, got {distributed!r}"
    )


def rank_backend(spec, comm: Communicator | None):
    """The backend spec for this rank: on a machine with GPUs, ``"auto"`` (and the GPU library
    named without a device) becomes GPU ``local_rank % device_count``; NCCL needs a GPU backend."""
    if comm is None or not isinstance(spec, str):
        return spec
    chosen = gpu_spec_for_rank(spec, comm.local_rank) if comm.size > 1 else spec
    if comm.name == "nccl":
        check_nccl_backend(get_backend(chosen), comm)
    return chosen
