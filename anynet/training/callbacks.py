"""Training callbacks: hooks :func:`anynet.training.fit` calls during training.

A callback may set ``network.stop_training = True`` to end training (after the current step).
``logs`` passed to ``on_epoch_end`` hold host floats (read once per epoch). Per-batch hooks get
a zero-argument function that returns the running mean loss and accuracy: calling it reads
from the device, so callbacks call it rarely (the progress bar: a few times a second).
``get_state`` / ``set_state`` carry a callback's progress (best value, patience used) through
a checkpoint, so a resumed run decides as the uninterrupted one would have.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..io.format import save_model
from .errors import CheckpointError, TrainingDivergedError

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]


class Callback:
    """Hooks ``fit`` calls; a subclass overrides the ones it needs."""

    #: with data parallelism, only rank 0 runs it (it prints or writes files)
    main_rank_only: ClassVar[bool] = False
    #: it shows the run's progress (then ``verbose`` adds no progress bar of its own)
    shows_progress: ClassVar[bool] = False

    def on_train_begin(self, network, epochs: int, steps_per_epoch: int) -> None: ...

    def on_epoch_begin(self, network, epoch: int) -> None: ...

    def on_batch_end(self, network, step: int, running) -> None: ...

    def on_epoch_end(self, network, epoch: int, logs: dict) -> None: ...

    def on_train_end(self, network) -> None: ...

    def get_state(self) -> dict:
        """What a checkpoint keeps of this callback (JSON-able data, NumPy arrays)."""
        return {}

    def set_state(self, state: dict) -> None:
        """Take back :meth:`get_state` (called after ``on_train_begin`` when resuming)."""


class CallbackList:
    """A run's callbacks, each hook called on every one in order; the loop calls each hook once.
    ``main=False`` (a rank other than 0) leaves out the ones that print or write files."""

    def __init__(self, callbacks: Iterable[Callback], progress: Callback | None = None, main: bool = True):
        found = [c for c in callbacks if main or not c.main_rank_only]
        if progress is not None and main and not any(c.shows_progress for c in found):
            found.append(progress)
        self.callbacks = found

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.callbacks)

    def train_begin(self, network, epochs: int, steps: int) -> None:
        for c in self.callbacks:
            c.on_train_begin(network, epochs, steps)

    def epoch_begin(self, network, epoch: int) -> None:
        for c in self.callbacks:
            c.on_epoch_begin(network, epoch)

    def batch_end(self, network, step: int, running) -> None:
        for c in self.callbacks:
            c.on_batch_end(network, step, running)

    def epoch_end(self, network, epoch: int, logs: dict) -> None:
        for c in self.callbacks:
            c.on_epoch_end(network, epoch, logs)

    def train_end(self, network) -> None:
        for c in self.callbacks:
            c.on_train_end(network)

    def states(self) -> list[dict[str, Any]]:
        """Each callback's type and state, for a checkpoint."""
        return [{"type": type(c).__name__, "state": c.get_state()} for c in self.callbacks]

    def restore(self, saved: list, where: Any) -> None:
        """Give each callback the state of the first unused saved callback of its type (from
        the checkpoint in ``where``)."""
        unused = list(saved)
        for c in self.callbacks:
            match = next((s for s in unused if s.get("type") == type(c).__name__), None)
            if match is None:
                continue
            unused.remove(match)
            try:
                c.set_state(match["state"])
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise CheckpointError(
                    f"{where}: the checkpoint's state of {type(c).__name__} is damaged ({exc})"
                ) from None


def _mode(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


class _Monitor(Callback):
    """Shared by the callbacks that watch one value of the logs for improvement."""

    def __init__(self, monitor: str, min_delta: float, mode: str):
        self.monitor, self.min_delta = monitor, abs(float(min_delta))
        self.mode = _mode(monitor, mode)
        self.best: float | None = None

    def _value(self, logs: dict) -> float:
        if self.monitor not in logs:
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r}, which is not among "
                f"{sorted(logs)}; pass validation_data to fit() to get val_* values"
            )
        return float(logs[self.monitor])

    def _better(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    ``restore_best_weights`` (alias ``restore_best``) puts back the weights of the best epoch."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 3,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        mode: str = "auto",
        restore_best: bool | None = None,
    ):
        super().__init__(monitor, min_delta, mode)
        self.patience = int(patience)
        self.restore_best_weights = bool(restore_best_weights if restore_best is None else restore_best)
        self.best_epoch: int | None = None
        self.wait, self.best_weights = 0, None

    @property
    def restore_best(self) -> bool:
        return self.restore_best_weights

    def on_train_begin(self, network, epochs, steps_per_epoch):
        self.best, self.best_epoch, self.wait, self.best_weights = None, None, 0, None

    def on_epoch_end(self, network, epoch, logs):
        value = self._value(logs)
        if self._better(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = network.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                network.stop_training = True

    def on_train_end(self, network):
        if self.restore_best_weights and self.best_weights is not None:
            network.set_weights(self.best_weights)

    def get_state(self):
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_weights": self.best_weights,
        }

    def set_state(self, state):
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], int(state["wait"])
        self.best_weights = state.get("best_weights")


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs (then wait ``cooldown`` epochs); never below ``min_lr``. It scales the
    optimizer's ``lr_scale``, so it composes with any schedule."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 5,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "auto",
    ):
        super().__init__(monitor, min_delta, mode)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.factor, self.patience, self.cooldown = float(factor), int(patience), int(cooldown)
        self.min_lr = float(min_lr)
        self.wait = self.cooling = 0

    def on_train_begin(self, network, epochs, steps_per_epoch):
        self.best, self.wait, self.cooling = None, 0, 0

    def on_epoch_end(self, network, epoch, logs):
        value = self._value(logs)
        if self.cooling > 0:
            self.cooling -= 1
            self.wait = 0
        if self._better(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience and self.cooling == 0:
            opt = network.optimizer
            new_lr = max(opt.lr * self.factor, self.min_lr)
            if new_lr < opt.lr:
                opt.lr_scale *= new_lr / opt.lr
                opt.lr = new_lr
            self.wait, self.cooling = 0, self.cooldown

    def get_state(self):
        return {"best": self.best, "wait": self.wait, "cooling": self.cooling}

    def set_state(self, state):
        self.best, self.wait, self.cooling = state["best"], int(state["wait"]), int(state["cooling"])


class ModelCheckpoint(_Monitor):
    """Save the model (:func:`anynet.save_model`: safetensors + JSON, atomic) after an epoch:
    every epoch, or with ``save_best_only`` only when ``monitor`` improved. ``path`` may hold
    ``{epoch}`` and log names, e.g. ``"ckpt/model-{epoch:02d}-{val_accuracy:.3f}.safetensors"``."""

    main_rank_only = True

    def __init__(
        self,
        path,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        min_delta: float = 0.0,
    ):
        super().__init__(monitor, min_delta, mode)
        self.path, self.save_best_only = str(path), bool(save_best_only)
        self.saved: list[Path] = []

    def on_epoch_end(self, network, epoch, logs):
        if self.save_best_only:
            value = self._value(logs)
            if not self._better(value):
                return
            self.best = value
        path = Path(self.path.format(epoch=epoch + 1, **logs))
        self.saved.append(save_model(network, path))

    def get_state(self):
        return {"best": self.best, "saved": [str(p) for p in self.saved]}

    def set_state(self, state):
        self.best, self.saved = state["best"], [Path(p) for p in state.get("saved", [])]


class CSVLogger(Callback):
    """Append one row per epoch (``epoch`` and every log value) to a CSV file, flushed each
    epoch. ``append=False`` starts a new file unless the run is resumed from a checkpoint."""

    main_rank_only = True

    def __init__(self, path, separator: str = ",", append: bool = False):
        self.path, self.separator, self.append = Path(path), separator, bool(append)
        self._resumed, self._keys = False, None

    def set_state(self, state):
        self._resumed = True

    def on_train_begin(self, network, epochs, steps_per_epoch):
        self._resumed, self._keys = False, None

    def on_epoch_end(self, network, epoch, logs):
        keys = ["epoch", *logs]
        append = (self.append or self._resumed or self._keys is not None) and self.path.is_file()
        with open(self.path, "a" if append else "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if not append:
                writer.writerow(keys)
            writer.writerow([epoch + 1, *(_cell(logs[k]) for k in keys[1:])])
        self._keys = keys


def _cell(value) -> str:
    return repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)


class TerminateOnNaN(Callback):
    """Stop as soon as the running loss is NaN or infinite, checking every ``check_every``
    steps (each check reads one value from the device), by raising
    :class:`~anynet.training.TrainingDivergedError`: a NaN model is never treated as trained.
    Without it, the same check runs once per epoch."""

    def __init__(self, check_every: int = 10):
        self.check_every = max(int(check_every), 1)
        self._epoch = 0

    def on_epoch_begin(self, network, epoch):
        self._epoch = epoch

    def on_batch_end(self, network, step, running):
        if (step + 1) % self.check_every == 0:
            loss, _ = running()
            if not math.isfinite(loss):
                raise TrainingDivergedError(
                    f"training diverged: the running loss became {loss} at step {step + 1} of epoch "
                    f"{self._epoch + 1}; the learning rate (now {network.optimizer.lr:g}) is likely too "
                    "high: lower it, or clip gradients (clip_norm=...)"
                )
