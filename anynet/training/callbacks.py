"""Training callbacks: hooks :func:`anynet.training.fit` calls during training.

A callback may set ``network.stop_training = True`` to end training after the current epoch.
``logs`` passed to ``on_epoch_end`` hold host floats (read once per epoch). Per-batch hooks get
a zero-argument function that returns the running mean loss and accuracy: calling it reads
from the device, so callbacks call it rarely (the progress bar: a few times a second).
"""

from __future__ import annotations

import math
import time

__all__ = ["Callback", "EarlyStopping", "ProgressBar"]


class Callback:
    def on_train_begin(self, network, epochs: int, steps_per_epoch: int) -> None: ...

    def on_epoch_begin(self, network, epoch: int) -> None: ...

    def on_batch_end(self, network, step: int, running) -> None: ...

    def on_epoch_end(self, network, epoch: int, logs: dict) -> None: ...

    def on_train_end(self, network) -> None: ...


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    optionally put back the weights of the best epoch."""

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 restore_best: bool = True):
        self.monitor, self.patience = monitor, int(patience)
        self.min_delta, self.restore_best = float(min_delta), bool(restore_best)
        self.mode = "max" if "acc" in monitor else "min"

    def on_train_begin(self, network, epochs, steps_per_epoch):
        self.best, self.best_epoch, self.wait, self.best_weights = None, None, 0, None

    def _better(self, value) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, network, epoch, logs):
        if self.monitor not in logs:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which is not among {sorted(logs)}; "
                "pass validation_data to fit() to get val_* values"
            )
        value = logs[self.monitor]
        if self._better(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_weights = network.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                network.stop_training = True

    def on_train_end(self, network):
        if self.restore_best and self.best_weights is not None:
            network.set_weights(self.best_weights)


class ProgressBar(Callback):
    """A tqdm bar over the batches of each epoch with live loss / accuracy."""

    def __init__(self, refresh_seconds: float = 0.5, file=None):
        self.refresh_seconds, self.file, self.bar = refresh_seconds, file, None

    def on_train_begin(self, network, epochs, steps_per_epoch):
        self.epochs, self.steps = epochs, steps_per_epoch

    def on_epoch_begin(self, network, epoch):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}", unit="batch",
                        leave=True, file=self.file, dynamic_ncols=True)
        self._last = time.monotonic()

    def on_batch_end(self, network, step, running):
        self.bar.update(1)
        now = time.monotonic()
        if now - self._last >= self.refresh_seconds:
            self._last = now
            loss, acc = running()
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.4f}", refresh=False)

    def on_epoch_end(self, network, epoch, logs):
        shown = {k: (f"{v:.3g}" if k == "lr" else f"{v:.4f}" if isinstance(v, float) and math.isfinite(v) else v)
                 for k, v in logs.items() if k != "time"}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.close()

    def on_train_end(self, network):
        if self.bar is not None and not self.bar.disable:
            self.bar.close()
