"""Divergence: training stops when the loss becomes NaN/inf or explodes.

A step "explodes" when its loss is NaN/inf or above :data:`DIVERGENCE_FACTOR` times the run's
first loss, or times :data:`DIVERGENCE_FLOOR` where the first loss is smaller (a network trained
before, whose batches' losses vary many times over around a small mean); an epoch with
:data:`DIVERGENCE_STEPS` such steps (or only such steps, if it has fewer) diverged, and so did
one whose mean loss is not finite. The count is kept on the device and read once per epoch,
with the epoch's loss.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import Array
from .errors import TrainingDivergedError

__all__ = ["DIVERGENCE_FACTOR", "DIVERGENCE_FLOOR", "DIVERGENCE_STEPS", "DivergenceGuard"]

#: a step "explodes" when its loss is NaN/inf or above this many times the run's first loss ...
DIVERGENCE_FACTOR = 10.0
#: ... or this many times this loss, where the first is smaller (softmax cross-entropy of 5: the
#: true class at under 1 % on average over a batch)
DIVERGENCE_FLOOR = 0.5
#: ... and an epoch with this many such steps (or only such steps, if it has fewer) diverged
DIVERGENCE_STEPS = 5


class DivergenceGuard:
    """Counts exploding steps on the device; :meth:`check` reads the count once per epoch."""

    def __init__(self, net: Any):
        self.net, self.threshold = net, None  # the threshold: from the run's first loss
        self.bad = net.backend.zeros((), dtype=net.dtype)

    def observe(self, loss: Array) -> None:
        xp = self.net.xp
        if self.threshold is None:
            self.threshold = xp.maximum(loss, DIVERGENCE_FLOOR) * DIVERGENCE_FACTOR
        self.bad = self.bad + xp.astype(xp.logical_not(loss <= self.threshold), self.net.dtype)

    def check(self, loss: float, epoch: int, steps: int) -> None:
        """Raise :class:`TrainingDivergedError` when epoch ``epoch`` (mean ``loss`` over
        ``steps`` steps) diverged; start the next epoch's count."""
        bad = int(float(self.bad))
        self.bad = self.net.backend.zeros((), dtype=self.net.dtype)
        if math.isfinite(loss) and bad < min(DIVERGENCE_STEPS, max(steps, 1)):
            return
        limit = math.nan if self.threshold is None else float(self.threshold)
        raise TrainingDivergedError(
            f"training diverged in epoch {epoch + 1}: the mean loss is {loss:.4g}, and {bad} of "
            f"{steps} steps had a loss that was NaN/inf or above {DIVERGENCE_FACTOR:g}x the run's "
            f"first ({limit:.4g}; at least {DIVERGENCE_FACTOR * DIVERGENCE_FLOOR:g}). The learning "
            f"rate (now {self.net.optimizer.lr:g}) is likely too high: lower it (e.g. 10x), clip "
            "gradients (clip_norm=...), or check the inputs"
        )

    def get_state(self) -> dict:
        return {
            "threshold": None if self.threshold is None else float(self.threshold),
            "bad": float(self.bad),
        }

    def set_state(self, state: dict) -> None:
        b = self.net.backend
        if state["threshold"] is not None:
            self.threshold = b.asarray(np.asarray(state["threshold"]), dtype=self.net.dtype)
        self.bad = b.asarray(np.asarray(state["bad"]), dtype=self.net.dtype)
