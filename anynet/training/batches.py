"""The batches of an epoch: a plan of steps over training data already on the device.

The data go to the device once; an epoch's shuffle is an index permutation drawn from the
epoch's random source, and a batch is an ``xp.take`` of it (a slice when not shuffled). With data
parallelism, each rank takes its shard of every global batch. Layers that need batch statistics
(BatchNorm on one value per channel, ``Layer.min_batch``) need two samples per batch (per
rank's shard): a last batch with fewer is dropped.
"""

from __future__ import annotations

import math
from typing import Any

from ..backend import Array

__all__ = ["Batches"]


class Batches:
    """``steps`` batches of ``batch_size`` samples of ``(x, targets)`` per epoch.

    Args:
        xp: the arrays' namespace.
        x, targets: device arrays of the same length.
        batch_size: samples per step (the global batch when distributed); at most all of them.
        shuffle: draw each epoch's order from its random source.
        min_batch: the fewest samples a (shard of a) batch may hold.
        parallel: an :class:`anynet.distributed.DataParallel`, whose rank takes its shard.
    """

    def __init__(
        self,
        xp: Any,
        x: Array,
        targets: Array,
        batch_size: int,
        shuffle: bool,
        min_batch: int = 1,
        parallel: Any = None,
    ):
        self.xp, self.x, self.targets, self.shuffle, self.parallel = xp, x, targets, shuffle, parallel
        self.samples = int(x.shape[0])
        self.batch_size = min(int(batch_size), self.samples)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
        self.steps = self._plan(int(min_batch))

    def _plan(self, need: int) -> int:
        """Steps per epoch, the last batch dropped when a shard of it would be too small."""
        n, bs = self.samples, self.batch_size
        ranks = 1 if self.parallel is None else self.parallel.comm.size
        if self.parallel is not None:
            self.parallel.check_batch(bs, need)
        elif bs < need:
            raise ValueError(
                f"this network has BatchNorm, which needs batches of at least {need} samples to train; "
                f"got {bs} ({n} training samples)"
            )
        steps = math.ceil(n / bs)
        if need > 1 and (n - (steps - 1) * bs) // ranks < need:
            steps -= 1
        return steps

    def order(self, random: Any) -> Array | None:
        """The epoch's order (``None``: the stored order), drawn from ``random``."""
        return random.permutation(self.samples) if self.shuffle and self.batch_size < self.samples else None

    def bounds(self, step: int) -> tuple[int, int]:
        """The samples ``[lo, hi)`` of the epoch's order that global batch ``step`` holds."""
        lo = step * self.batch_size
        return lo, min(lo + self.batch_size, self.samples)

    def take(self, order: Array | None, step: int) -> tuple[Array, Array]:
        """Batch ``step`` of the epoch (this rank's shard of it, when distributed)."""
        lo, hi = self.bounds(step)
        if self.parallel is not None:
            lo, hi = self.parallel.shard(lo, hi)
        if order is None:
            return self.x[lo:hi, ...], self.targets[lo:hi, ...]
        idx = order[lo:hi]
        return self.xp.take(self.x, idx, axis=0), self.xp.take(self.targets, idx, axis=0)

    def seen(self, steps: int) -> int:
        """Samples in the first ``steps`` global batches."""
        return min(steps * self.batch_size, self.samples)
