"""Training: the epoch loop (:func:`fit`), callbacks, and the one-call :func:`train`.

- :mod:`.loop`       :func:`fit`, which ``Network.fit`` runs
- :mod:`.callbacks`  :class:`Callback`, :class:`EarlyStopping`, :class:`ProgressBar`
- :mod:`.run`        :func:`train`: data set in, trained and evaluated model out
"""

from ..models import MODEL_PRESETS
from .callbacks import Callback, EarlyStopping, ProgressBar
from .loop import fit
from .run import STANDARD_AUGMENT, TrainResult, train

__all__ = [
    "MODEL_PRESETS",
    "STANDARD_AUGMENT",
    "Callback",
    "EarlyStopping",
    "ProgressBar",
    "TrainResult",
    "fit",
    "train",
]
