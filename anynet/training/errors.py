"""What stops a training run, as exceptions."""

from __future__ import annotations

__all__ = ["RAISED_BY_EVERY_RANK", "CheckpointError", "TrainingDivergedError", "TrainingInterrupted"]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN/inf or exploded (see :mod:`anynet.training.divergence`): training
    stopped."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C: training stopped after a whole step (on every rank at the same step, when
    distributed), and a checkpoint was written."""


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the run that tries to resume from it."""


#: errors every rank raises at the same point (they follow values the ranks share), which
#: therefore need no abort of the process group
RAISED_BY_EVERY_RANK = (TrainingDivergedError, TrainingInterrupted)
