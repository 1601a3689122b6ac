"""Training on several processes: data parallelism over MPI (``mpi4py``) or NCCL (CuPy).

    mpiexec -n 2 python -c "import anynet; anynet.train(distributed='mpi')"

``anynet.train(..., distributed="mpi")`` (or ``Network.fit(..., distributed=...)``) shards
every global batch over the ranks and averages the gradients with one fused allreduce per step;
every rank ends with the same weights, and rank 0 alone prints and writes files. See
``docs/cluster.md``.

- :mod:`.comm`      :class:`Communicator`, its one-process and threaded implementations, and
  the collective helpers (fail-fast, rank 0's results for every rank, agreement checks)
- :mod:`.groups`    :func:`get_communicator` (what ``distributed=`` names), :func:`rank_backend`
- :mod:`.mpi`       :class:`MPICommunicator` (host buffers; CUDA-aware MPI or host staging)
- :mod:`.nccl`      :class:`NCCLCommunicator` (GPU buffers through NCCL, MPI to start)
- :mod:`.parallel`  :class:`DataParallel`, :class:`GradientBucket`, :func:`shard_bounds`
"""

from .comm import (
    Communicator,
    DistributedError,
    LocalCommunicator,
    ThreadCommunicator,
    thread_group,
)
from .groups import get_communicator, rank_backend
from .parallel import DataParallel, GradientBucket, shard_bounds

__all__ = [
    "Communicator",
    "DataParallel",
    "DistributedError",
    "GradientBucket",
    "LocalCommunicator",
    "ThreadCommunicator",
    "get_communicator",
    "rank_backend",
    "shard_bounds",
    "thread_group",
]
