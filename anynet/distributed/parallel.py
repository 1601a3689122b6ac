"""Data parallelism: every rank trains on its shard of each global batch, and the gradients
are averaged before the optimizer step, so every rank applies the same update.

Per step, one collective: the gradients of all parameters, the step's loss and its number of
correct answers are packed into one flat buffer (:class:`GradientBucket`), scaled by the
shard's share of the global batch (through the loss gradient, which every backward pass is
linear in), summed over ranks, and unpacked as views. The loss and the count are therefore the
global batch's on every rank: history, divergence checks and callbacks agree everywhere without
an extra message. Per epoch: layer buffers (BatchNorm running statistics) are averaged and rank
0's parameters broadcast (guarding against round-off drift), and the validation set is
evaluated in shards and its sums reduced once.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..backend import Array, Backend, HostRandom
from .comm import Communicator, DistributedError, check_nccl_backend

__all__ = ["DataParallel", "GradientBucket", "shard_bounds"]


def shard_bounds(lo: int, hi: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s part ``[start, stop)`` of the global batch ``[lo, hi)``: contiguous,
    sizes differing by at most one, in rank order."""
    m = hi - lo
    return lo + m * rank // size, lo + m * (rank + 1) // size


class GradientBucket:
    """Packs a step's gradients and a few scalars into one flat buffer, and back.

    The layout (names, shapes, weight-decay flags, in the order ``Network.backward`` gives
    them, which is the same on every rank) is learnt from the first step.
    """

    def __init__(self) -> None:
        self.layout: list[tuple[str, Any, tuple[int, ...], int, bool]] | None = None
        self.extras = 0
        self.itemsize = 4  # bytes per element, from the first step's dtype

    @property
    def size(self) -> int:
        """Elements in the buffer (gradients and extras)."""
        assert self.layout is not None
        return sum(n for _, _, _, n, _ in self.layout) + self.extras

    def pack(self, xp: Any, updates: list, extras: list[Array]) -> Array:
        """One 1-D buffer: each update's gradient flattened, then each extra scalar."""
        if self.layout is None:
            self.layout = [
                (name, param, tuple(grad.shape), math.prod(grad.shape), decay)
                for name, param, grad, decay in updates
            ]
            self.extras = len(extras)
            self.itemsize = xp.finfo(updates[0][2].dtype).bits // 8 if updates else 4
        elif len(updates) != len(self.layout) or len(extras) != self.extras:
            raise DistributedError("the gradients of this step do not match the bucket's layout")
        parts = [xp.reshape(grad, (-1,)) for _, _, grad, _ in updates]
        parts += [xp.reshape(e, (1,)) for e in extras]
        return xp.concat(parts)

    def zeros(self, backend: Backend, dtype: Any) -> Array:
        """An all-zero buffer (a rank whose shard of the batch is empty)."""
        if self.layout is None:
            raise DistributedError("an empty shard before the first step: use batch_size >= ranks")
        return backend.xp.zeros((self.size,), dtype=dtype, device=backend.device)

    def unpack(self, xp: Any, flat: Array) -> tuple[list, list[Array]]:
        """The updates (gradients as views of ``flat``) and the extra scalars."""
        assert self.layout is not None
        updates, offset = [], 0
        for name, param, shape, n, decay in self.layout:
            updates.append((name, param, xp.reshape(flat[offset : offset + n], shape), decay))
            offset += n
        extras = [flat[offset + i] for i in range(self.extras)]
        return updates, extras


def _rank_seed(seed: int, epoch: int, stream: int, rank: int) -> int:
    """A 32-bit seed for ``stream`` of ``rank`` (four words: never a single-process seed)."""
    words = [int(seed) % 2**64, int(epoch), int(stream), int(rank)]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


class DataParallel:
    """Data-parallel training of one network over the ranks of ``comm``."""

    def __init__(self, comm: Communicator, backend: Backend | None = None):
        self.comm = comm
        if backend is not None and getattr(comm, "device_index", None) is not None:
            check_nccl_backend(backend, comm)  # NCCL: the network must be on the rank's GPU
        self.bucket = GradientBucket()
        self.comm_seconds = 0.0  # host time in the per-step collective (incl. waiting)
        self.steps = 0

    # ------------------------------------------------------------------ data
    def check_batch(self, batch_size: int, min_shard: int = 1) -> None:
        """Refuse a global batch whose smallest shard would hold fewer than ``min_shard``
        samples (one per rank; two where BatchNorm needs batch statistics)."""
        if batch_size // self.comm.size < min_shard:
            need = "one sample" if min_shard == 1 else f"{min_shard} samples (BatchNorm needs them)"
            raise ValueError(
                f"the global batch ({batch_size}) must have at least {need} per rank "
                f"({self.comm.size} ranks): use a batch of at least {min_shard * self.comm.size}"
            )

    def shard(self, lo: int, hi: int) -> tuple[int, int]:
        """This rank's part of the global batch ``[lo, hi)``."""
        return shard_bounds(lo, hi, self.comm.rank, self.comm.size)

    def reseed(self, net, seed: int, epoch: int, mode: str, stream: Any) -> Any:
        """Per-rank random sources for augmentation and dropout (the shuffle, already drawn
        from ``stream``, is the same on every rank); one rank keeps ``stream`` as it is."""
        if self.comm.size == 1:
            return stream
        rank = self.comm.rank

        def source(s: int) -> Any:
            value = _rank_seed(seed, epoch, s, rank)
            return net.backend.random(value) if mode == "device" else HostRandom(net.backend, value)

        for i, layer in enumerate(net.layers):
            if layer.draws_random:
                layer.random = source(1 + i)
        return source(0)

    # ------------------------------------------------------------------ the step
    def train_step(
        self, net, xb: Array, tb: Array, n_global: int, loss_fn: Any = None
    ) -> tuple[Array, Array]:
        """One step on this rank's shard (of ``loss_fn``, default the network's loss); returns
        the global batch's mean loss and number of correct answers (device scalars, the same on
        every rank)."""
        n_local, backend = int(xb.shape[0]), net.backend
        loss_fn = net.loss if loss_fn is None else loss_fn
        if n_local:
            share = n_local / n_global
            out, tape = net.forward_train(xb)
            loss, ctx = loss_fn.forward(out, tb)
            grad = loss_fn.backward(ctx)
            updates = net.backward(tape, grad * share if share != 1 else grad)
            hits = net.count_correct(out, tb)
            flat = self.bucket.pack(net.xp, updates, [loss * share if share != 1 else loss, hits])
        else:
            flat = self.bucket.zeros(backend, net.dtype)
        start = time.perf_counter()
        flat = self.comm.allreduce(flat, backend)
        self.comm_seconds += time.perf_counter() - start
        self.steps += 1
        updates, (loss, hits) = self.bucket.unpack(net.xp, flat)
        net.apply_updates(updates)
        return loss, hits

    # ------------------------------------------------------------------ keeping ranks equal
    def _state_buffer(self, net, kind: str) -> tuple[list, Array | None]:
        arrays = [(layer, name) for layer in net.layers for name in getattr(layer, kind)]
        if not arrays:
            return arrays, None
        xp = net.xp
        parts = [xp.reshape(getattr(layer, kind)[name], (-1,)) for layer, name in arrays]
        return arrays, xp.concat(parts)

    def _write_back(self, net, kind: str, arrays: list, flat: Array) -> None:
        """Each array of ``kind`` (``params`` or ``buffers``) replaced by its part of ``flat``
        (a copy: the optimizer's state is keyed by name, so a new array loses nothing)."""
        offset = 0
        for layer, name in arrays:
            old = getattr(layer, kind)[name]
            n = math.prod(old.shape)
            new = net.xp.reshape(flat[offset : offset + n], tuple(old.shape))
            getattr(layer, kind)[name] = net.xp.asarray(new, copy=True)
            offset += n

    def sync_parameters(self, net) -> None:
        """Every rank takes rank 0's parameters (start of training, end of each epoch)."""
        if self.comm.size == 1:
            return
        arrays, flat = self._state_buffer(net, "params")
        if flat is not None:
            self._write_back(net, "params", arrays, self.comm.broadcast(flat, net.backend))

    def sync_buffers(self, net) -> None:
        """Average layer buffers (BatchNorm running statistics) over the ranks."""
        if self.comm.size == 1:
            return
        arrays, flat = self._state_buffer(net, "buffers")
        if flat is not None:
            total = self.comm.allreduce(flat, net.backend)
            self._write_back(net, "buffers", arrays, total / self.comm.size)

    def end_epoch(self, net) -> None:
        self.sync_buffers(net)
        self.sync_parameters(net)

    def evaluate(self, net, x: Array, targets: Array) -> dict:
        """Mean loss and accuracy over all of ``x``, each rank evaluating its shard."""
        lo, hi = shard_bounds(0, int(x.shape[0]), self.comm.rank, self.comm.size)
        sums = np.zeros(3)
        if hi > lo:
            v = net.evaluate_on_device(x[lo:hi, ...], targets[lo:hi, ...])
            sums[:] = (v["loss"] * (hi - lo), v["accuracy"] * (hi - lo), hi - lo)
        loss, hits, n = self.comm.allreduce_host(sums)
        return {"loss": float(loss / n), "accuracy": float(hits / n)}

    def any_rank(self, flag: bool) -> bool:
        """Whether ``flag`` is set on any rank (a host collective: a Ctrl-C on one rank
        stops every rank after the same step)."""
        if self.comm.size == 1:
            return bool(flag)
        return bool(self.comm.allreduce_host([1.0 if flag else 0.0])[0] > 0)

    def describe(self) -> str:
        mb = 0.0 if self.bucket.layout is None else self.bucket.size * self.bucket.itemsize / 1e6
        head = f"{self.comm.describe()}: {self.steps} steps, {mb:.2f} MB per allreduce"
        if self.comm.asynchronous:  # the host timer would see only the call's enqueue
            return f"{head} (queued on the GPU stream: its time is not measured per step)"
        return f"{head}, {self.comm_seconds / max(self.steps, 1) * 1e3:.2f} ms each"
