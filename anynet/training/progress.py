"""Progress output: a progress bar per epoch on a terminal, one line per epoch elsewhere."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from tqdm.auto import tqdm

from .callbacks import Callback

__all__ = ["EpochLogger", "ProgressBar", "progress_for"]


def progress_for(verbose: int, stream: Any = None) -> Callback | None:
    """The progress callback ``verbose`` asks for: 1 a bar on a terminal (one line per epoch
    elsewhere), 2 one line per epoch, 0 none."""
    if not verbose:
        return None
    stream = stream or sys.stderr
    tty = bool(getattr(stream, "isatty", lambda: False)())
    return ProgressBar(file=stream) if int(verbose) == 1 and tty else EpochLogger(file=stream)


def _shown(logs: dict) -> dict:
    return {
        k: (f"{v:.3g}" if k == "lr" else f"{v:.4f}" if isinstance(v, float) and math.isfinite(v) else v)
        for k, v in logs.items()
        if k != "time"
    }


class EpochLogger(Callback):
    """One line per epoch (``verbose=2``, or ``verbose=1`` when the stream is not a terminal):
    ``epoch 3/10 - 1.2s - loss 0.1234 - accuracy 0.9650 - ... - lr 0.001``."""

    main_rank_only = shows_progress = True

    def __init__(self, file=None):
        self.file = file

    def on_train_begin(self, network, epochs, steps_per_epoch):
        self.epochs = epochs

    def on_epoch_end(self, network, epoch, logs):
        parts = [f"epoch {epoch + 1}/{self.epochs}", f"{logs.get('time', 0.0):.1f}s"]
        parts += [f"{k} {v}" for k, v in _shown(logs).items()]
        print(" - ".join(parts), file=self.file or sys.stderr, flush=True)


class ProgressBar(Callback):
    """A tqdm bar over the batches of each epoch with live loss / accuracy (``verbose=1`` on
    a terminal)."""

    main_rank_only = shows_progress = True

    def __init__(self, refresh_seconds: float = 0.5, file=None):
        self.refresh_seconds, self.file, self.bar = refresh_seconds, file, None

    def on_train_begin(self, network, epochs, steps_per_epoch):
        self.epochs, self.steps = epochs, steps_per_epoch

    def on_epoch_begin(self, network, epoch):
        self.bar = tqdm(
            total=self.steps,
            desc=f"epoch {epoch + 1}/{self.epochs}",
            unit="batch",
            leave=True,
            file=self.file,
            dynamic_ncols=True,
        )
        self._last = time.monotonic()

    def on_batch_end(self, network, step, running):
        self.bar.update(1)
        now = time.monotonic()
        if now - self._last >= self.refresh_seconds:
            self._last = now
            loss, acc = running()
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.4f}", refresh=False)

    def on_epoch_end(self, network, epoch, logs):
        self.bar.set_postfix(_shown(logs), refresh=False)
        self.bar.close()

    def on_train_end(self, network):
        if self.bar is not None and not self.bar.disable:
            self.bar.close()
