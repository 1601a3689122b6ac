"""Training: the epoch loop (:func:`fit`, which ``Network.fit`` runs) and what it is made of.

- :mod:`.loop`        :func:`fit`: a short loop over the batch plan, the callbacks and a step
- :mod:`.options`     :class:`FitOptions`, the options of ``fit``
- :mod:`.state`       :class:`Run`, where a run stands
- :mod:`.batches`     the batch plan: steps, the epoch's order, each rank's shard
- :mod:`.callbacks`   :class:`Callback`, :class:`CallbackList`, :class:`EarlyStopping`,
  :class:`ModelCheckpoint`, :class:`CSVLogger`, :class:`TerminateOnNaN`, :class:`ReduceLROnPlateau`
- :mod:`.progress`    :class:`ProgressBar`, :class:`EpochLogger`
- :mod:`.averaging`   :class:`WeightAveraging`, an exponential moving average of the weights
- :mod:`.divergence`  NaN and exploding losses stop training
- :mod:`.resume`      writing checkpoints and resuming from one; :mod:`.checkpoint` the file
- :mod:`.interrupt`   Ctrl-C
- :mod:`.settings`    what a checkpoint pins and every rank must share
- :mod:`.seeding`     where the shuffles and dropout masks come from (one seed, one run)
- :mod:`.weighting`   ``class_weight``, as a loss
- :mod:`.errors`      :class:`TrainingDivergedError`, :class:`TrainingInterrupted`,
  :class:`CheckpointError`
- :mod:`.lr_find`     :func:`lr_find`, the learning-rate range test

The one-call ``anynet.train(...)`` (data set in, trained and evaluated model out) is
:mod:`anynet.run`.
"""

from .averaging import WeightAveraging
from .callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from .checkpoint import read_checkpoint
from .divergence import DIVERGENCE_FACTOR, DIVERGENCE_FLOOR, DIVERGENCE_STEPS
from .errors import CheckpointError, TrainingDivergedError, TrainingInterrupted
from .loop import fit
from .lr_find import LRFinderResult, lr_find
from .options import FitOptions
from .progress import EpochLogger, ProgressBar

__all__ = [
    "DIVERGENCE_FACTOR",
    "DIVERGENCE_FLOOR",
    "DIVERGENCE_STEPS",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "CheckpointError",
    "EarlyStopping",
    "EpochLogger",
    "FitOptions",
    "LRFinderResult",
    "ModelCheckpoint",
    "ProgressBar",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "WeightAveraging",
    "fit",
    "lr_find",
    "read_checkpoint",
]
