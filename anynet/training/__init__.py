"""Training: the epoch loop (:func:`fit`), callbacks, checkpoints, and the one-call :func:`train`.

- :mod:`.loop`        :func:`fit`, which ``Network.fit`` runs; :class:`TrainingDivergedError`,
  :class:`TrainingInterrupted`
- :mod:`.settings`    what a checkpoint pins and every rank must share
- :mod:`.callbacks`   :class:`Callback`, :class:`EarlyStopping`, :class:`ModelCheckpoint`,
  :class:`CSVLogger`, :class:`TerminateOnNaN`, :class:`ReduceLROnPlateau`, progress output
- :mod:`.averaging`   :class:`WeightAveraging`, an exponential moving average of the weights
- :mod:`.checkpoint`  full-state checkpoint files (safetensors + JSON) for resuming a run
- :mod:`.seeding`     where the shuffles and dropout masks come from (one seed, one run)
- :mod:`.weighting`   ``class_weight``
- :mod:`.lr_find`     :func:`lr_find`, the learning-rate range test
- :mod:`.run`         :func:`train`: data set in, trained and evaluated model out
"""

from ..models import MODEL_PRESETS
from .averaging import WeightAveraging
from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    EpochLogger,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from .checkpoint import CheckpointError, read_checkpoint
from .loop import TrainingDivergedError, TrainingInterrupted, fit
from .lr_find import LRFinderResult, lr_find
from .run import STANDARD_AUGMENT, ModelNotSavedError, TrainResult, train

__all__ = [
    "MODEL_PRESETS",
    "STANDARD_AUGMENT",
    "CSVLogger",
    "Callback",
    "CheckpointError",
    "EarlyStopping",
    "EpochLogger",
    "LRFinderResult",
    "ModelCheckpoint",
    "ModelNotSavedError",
    "ProgressBar",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
    "TrainResult",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "WeightAveraging",
    "fit",
    "lr_find",
    "read_checkpoint",
    "train",
]
