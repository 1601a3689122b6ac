"""Communicators: what data-parallel training needs from a process group.

A :class:`Communicator` sums one device buffer across ranks (:meth:`~Communicator.allreduce`,
once per step: the fused gradients), broadcasts one from rank 0
(:meth:`~Communicator.broadcast`), sums a few host numbers (:meth:`~Communicator.allreduce_host`,
once per epoch), broadcasts a small Python object, and stops every rank when one fails
(:meth:`~Communicator.abort`). Implementations: :class:`LocalCommunicator` (one process),
:class:`ThreadCommunicator` (several ranks as threads of one process: tests and the NCCL
interface without a GPU), :class:`~anynet.distributed.mpi.MPICommunicator` and
:class:`~anynet.distributed.nccl.NCCLCommunicator`.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import numpy as np

from ..backend import Array, Backend
from ..backend.cupy import CupyBackend

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

__all__ = [
    "CollectiveError",
    "Communicator",
    "DistributedError",
    "LocalCommunicator",
    "RankMismatchError",
    "ThreadCommunicator",
    "check_nccl_backend",
    "check_ranks_agree",
    "fail_fast",
    "local_rank_from_env",
    "on_main",
    "raised_by_every_rank",
    "rank_zero_first",
    "thread_group",
]

#: environment variables launchers set to a process's rank on its node (first found wins)
LOCAL_RANK_VARS = (
    "ANYNET_LOCAL_RANK",
    "MPI_LOCALRANKID",  # MPICH / Hydra
    "OMPI_COMM_WORLD_LOCAL_RANK",  # Open MPI
    "SLURM_LOCALID",  # srun
    "LOCAL_RANK",  # torchrun and others
)


class DistributedError(RuntimeError):
    """A process group could not be set up, or another rank failed."""


class CollectiveError(DistributedError):
    """An error every rank raises alike (so none is left waiting in a collective)."""


class RankMismatchError(CollectiveError):
    """The ranks were started with different settings or data."""


def local_rank_from_env(rank: int) -> int:
    """This process's rank on its machine, from the launcher's environment (else ``rank``)."""
    for var in LOCAL_RANK_VARS:
        value = os.environ.get(var, "")
        if value.strip().isdigit():
            return int(value)
    return rank


class Communicator:
    """A group of ``size`` ranks; this process is ``rank`` (``local_rank`` on its machine)."""

    name = "local"
    rank = 0
    size = 1
    local_rank = 0
    #: collectives return once queued on a device stream, before they are done (NCCL)
    asynchronous = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that prints and writes files."""
        return self.rank == 0

    def allreduce(self, buffer: Array, backend: Backend) -> Array:
        """The element-wise sum of ``buffer`` (1-D) over all ranks, on ``backend``'s device
        (possibly ``buffer`` itself, summed in place)."""
        return buffer

    def broadcast(self, buffer: Array, backend: Backend) -> Array:
        """Rank 0's ``buffer`` (1-D), on every rank."""
        return buffer

    def allreduce_host(self, values) -> np.ndarray:
        """The sum over ranks of a few host float64 numbers."""
        return np.asarray(values, dtype=np.float64).copy()

    def bcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (small, JSON-like) on every rank."""
        return obj

    def gather_object(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` (small, JSON-like), in rank order, on rank 0; ``None`` elsewhere."""
        return [obj]

    def barrier(self) -> None:
        """Wait until every rank gets here."""

    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Stop every rank of the group, after printing ``message`` on this one."""
        raise DistributedError(message)

    def describe(self) -> str:
        return f"{self.name}, rank {self.rank} of {self.size}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class LocalCommunicator(Communicator):
    """One process: every collective is the identity."""


class _Group:
    """State shared by the ranks of a :func:`thread_group`."""

    def __init__(self, size: int):
        self.size = size
        self.barrier = threading.Barrier(size)
        self.slots: list[Any] = [None] * size
        self.failure: str | None = None


class ThreadCommunicator(Communicator):
    """Rank ``rank`` of a group of threads in one process (see :func:`thread_group`).

    Sums are taken on the host in rank order, so every rank gets bit-identical results, as MPI
    gives with two ranks. Used by the tests, and to run the NCCL code path without a GPU.
    """

    name = "threads"

    def __init__(self, group: _Group, rank: int):
        self.group, self.rank, self.size, self.local_rank = group, rank, group.size, rank

    def _wait(self) -> None:
        try:
            self.group.barrier.wait()
        except threading.BrokenBarrierError:
            raise DistributedError(
                f"rank {self.rank}: another rank failed ({self.group.failure or 'unknown error'})"
            ) from None

    def _exchange(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order."""
        self.group.slots[self.rank] = value
        self._wait()
        values = list(self.group.slots)
        self._wait()  # nobody overwrites a slot before everyone has read them all
        return values

    def allreduce(self, buffer: Array, backend: Backend) -> Array:
        parts = self._exchange(np.array(backend.to_host(buffer), copy=True))
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        return backend.asarray(total, dtype=buffer.dtype)

    def broadcast(self, buffer: Array, backend: Backend) -> Array:
        root = self._exchange(np.array(backend.to_host(buffer), copy=True))[0]
        return backend.asarray(root, dtype=buffer.dtype)

    def allreduce_host(self, values) -> np.ndarray:
        parts = self._exchange(np.asarray(values, dtype=np.float64))
        return np.sum(parts, axis=0)

    def bcast_object(self, obj: Any) -> Any:
        root = self._exchange(obj)[0]
        return root if self.is_main else copy.deepcopy(root)  # each rank its own, as MPI gives

    def gather_object(self, obj: Any) -> list[Any] | None:
        values = self._exchange(obj)
        return [copy.deepcopy(v) for v in values] if self.is_main else None

    def barrier(self) -> None:
        self._wait()

    def abort(self, message: str, code: int = 1) -> NoReturn:
        self.group.failure = message
        self.group.barrier.abort()
        raise DistributedError(message)


def thread_group(size: int) -> list[ThreadCommunicator]:
    """``size`` communicators, one per rank, for ranks run as threads of this process."""
    if int(size) < 1:
        raise ValueError(f"a group needs at least one rank, got {size}")
    group = _Group(int(size))
    return [ThreadCommunicator(group, r) for r in range(int(size))]


def say(comm: Communicator, message: str) -> None:
    """Print ``message`` to stderr on rank 0 only."""
    if comm.is_main:
        print(f"anynet: {message}", file=sys.stderr, flush=True)


def check_nccl_backend(backend: Backend, comm: Communicator) -> None:
    """NCCL sums CuPy buffers on this rank's GPU: refuse any other backend or device."""
    if not isinstance(backend, CupyBackend):
        raise DistributedError(
            f"distributed='nccl' trains on CuPy, one GPU per rank (backend 'auto' or 'cupy' on a "
            f"machine with GPUs), not on {backend.spec}; for PyTorch or the CPU use distributed='mpi'"
        )
    want = getattr(comm, "device_index", None)
    if want is not None and backend.device_label != str(want):
        raise DistributedError(
            f"rank {comm.rank}'s NCCL communicator uses GPU {want}, but the network is on "
            f"{backend.spec}: build it with backend='cupy:{want}' (or backend='auto', which picks it)"
        )


@contextmanager
def rank_zero_first(comm: Communicator | None) -> Iterator[None]:
    """Rank 0 runs the block first (e.g. downloads a data set), then the others; an error on
    any rank stops them all."""
    if comm is None or comm.size == 1:
        yield
        return
    try:
        if not comm.is_main:
            comm.barrier()
        yield
        if comm.is_main:
            comm.barrier()
    except DistributedError:
        raise
    except BaseException as exc:
        comm.abort(f"{type(exc).__name__}: {exc} (stopping all {comm.size} ranks)")


@contextmanager
def fail_fast(comm: Communicator | None, passthrough: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """An error on this rank stops every rank (:meth:`Communicator.abort`) instead of leaving
    the others waiting in their next collective. :class:`DistributedError` (including the
    :class:`CollectiveError` every rank raises alike) and ``passthrough`` errors, which every
    rank raises at the same point, propagate as they are."""
    try:
        yield
    except BaseException as exc:
        alike = isinstance(exc, (DistributedError, *passthrough)) or getattr(exc, _ALIKE, False)
        if comm is None or comm.size == 1 or alike:
            raise
        comm.abort(f"{_reason(exc)} (stopping all {comm.size} ranks)")


_ALIKE = "raised_by_every_rank"


def raised_by_every_rank(exc: E) -> E:
    """Mark ``exc`` as raised by every rank at the same point (after they compared what
    decides it), so that :func:`fail_fast` lets it through instead of aborting."""
    setattr(exc, _ALIKE, True)
    return exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, MemoryError):
        return f"out of memory (MemoryError{': ' + str(exc) if str(exc) else ''})"
    return f"{type(exc).__name__}: {exc}"


def on_main(comm: Communicator | None, work: Callable[[], T]) -> T:
    """Rank 0 runs ``work`` and every rank gets its result (small, picklable), or every rank
    raises a :class:`CollectiveError` with rank 0's error message."""
    if comm is None or comm.size == 1:
        return work()
    result, failure, original = None, None, None
    if comm.is_main:
        try:
            result = work()
        except Exception as exc:
            failure, original = str(exc) or type(exc).__name__, exc
    result, failure = comm.bcast_object((result, failure))
    if failure is not None:
        raise CollectiveError(failure) from original
    return result


def check_ranks_agree(comm: Communicator | None, fields: dict[str, Any]) -> None:
    """Every rank's ``fields`` (small, comparable values) must equal rank 0's; otherwise every
    rank raises the same :class:`RankMismatchError`, naming the fields that differ."""
    if comm is None or comm.size == 1:
        return
    gathered = comm.gather_object(fields)
    message = _mismatch(gathered) if gathered is not None else None
    message = comm.bcast_object(message)
    if message is not None:
        raise RankMismatchError(message)


def _mismatch(gathered: list[dict[str, Any]]) -> str | None:
    """What differs between the ranks' fields (``None``: nothing)."""
    keys = list(dict.fromkeys(k for fields in gathered for k in fields))
    lines = []
    for key in keys:
        values = [fields.get(key) for fields in gathered]
        if any(v != values[0] for v in values[1:]):
            shown = ", ".join(f"rank {r}: {_short(v)}" for r, v in enumerate(values[:8]))
            lines.append(f"{key} ({shown}{', ...' if len(values) > 8 else ''})")
    if not lines:
        return None
    return (
        f"the {len(gathered)} ranks disagree on {', '.join(line.split(' (')[0] for line in lines)}; "
        "every rank must run with the same options and data\n" + "\n".join(lines)
    )


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
