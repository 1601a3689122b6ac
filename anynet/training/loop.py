"""The epoch loop: :func:`fit` trains a :class:`~anynet.network.Network` on its backend.

The training data go to the device once (through :mod:`anynet.inputs`); each epoch's shuffle is
an index permutation and a batch is an ``xp.take``. Loss and accuracy sums stay on the device
and are read back once per epoch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..backend import Array
from .callbacks import Callback, ProgressBar

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["fit"]


@dataclass
class _Run:
    """What every epoch of one ``fit`` call shares."""

    net: Network
    x: Array
    targets: Array
    validation: tuple[Array, Array] | None
    batch_size: int
    steps: int
    rng: Any
    augment: Callable | None
    shuffle: bool
    callbacks: list[Callback]


def fit(net: Network, x, y, epochs: int = 10, batch_size: int | None = 128, validation_data=None,
        shuffle: bool = True, seed: int | None = None, callbacks=(), augment=None,
        verbose: bool = False) -> dict:
    """Train ``net``; returns its history (``loss``, ``accuracy``, ``val_*``, ``lr``, ``time``
    per epoch).

    ``batch_size=None`` trains full-batch. ``augment(x_batch, rng)`` transforms each training
    batch on the device (see :mod:`anynet.data.augment`). ``verbose`` shows a progress bar.
    ``seed`` seeds the shuffles (default: the network's seed + 1).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    run = _start(net, x, y, batch_size, validation_data, shuffle, seed, callbacks, augment, verbose)
    for c in run.callbacks:
        c.on_train_begin(net, epochs, run.steps)
    for epoch in range(epochs):
        logs = _epoch(run, epoch, epochs)
        for key, value in logs.items():
            net.history.setdefault(key, []).append(value)
        for c in run.callbacks:
            c.on_epoch_end(net, epoch, logs)
        if net.stop_training:
            break
    for c in run.callbacks:
        c.on_train_end(net)
    return net.history


def _start(net, x, y, batch_size, validation_data, shuffle, seed, callbacks, augment, verbose) -> _Run:
    """Check the arguments, build the network if needed and put the data on the device."""
    if not net.built:
        net.build(tuple(x.shape[1:]) if hasattr(x, "shape") else np.shape(x)[1:])
    xd = net.inputs(x)
    n = xd.shape[0]
    targets = net.targets(y, n)
    validation = None
    if validation_data is not None:
        xv = net.inputs(validation_data[0], "validation x")
        validation = (xv, net.targets(validation_data[1], xv.shape[0], "validation y"))
    bs = n if batch_size is None else int(batch_size)
    if bs < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
    net.stop_training = False
    rng = net.backend.random(net.seed + 1 if seed is None else seed)
    return _Run(net, xd, targets, validation, bs, math.ceil(n / bs), rng, augment, shuffle,
                _callbacks(callbacks, verbose))


def _callbacks(callbacks, verbose: bool) -> list[Callback]:
    callbacks = list(callbacks)
    for c in callbacks:
        if not isinstance(c, Callback):
            raise TypeError(f"callbacks must be anynet.training.Callback objects, got {type(c).__name__}")
    if verbose and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(ProgressBar())
    return callbacks


def _epoch(run: _Run, epoch: int, epochs: int) -> dict:
    """One pass over the training data; returns the epoch's logs as host floats."""
    net, start = run.net, time.perf_counter()
    net.optimizer.start_epoch(epoch, epochs)
    for c in run.callbacks:
        c.on_epoch_begin(net, epoch)
    n = run.x.shape[0]
    loss_sum, correct = _batches(run, n)
    logs = {"loss": float(loss_sum) / n, "accuracy": float(correct) / n}
    if not math.isfinite(logs["loss"]):
        raise FloatingPointError(
            f"training diverged: the loss became {logs['loss']} in epoch {epoch + 1}; "
            f"lower the learning rate (now {net.optimizer.lr:g}) or check the inputs"
        )
    if run.validation is not None:
        v = net.evaluate_on_device(*run.validation)
        logs.update(val_loss=v["loss"], val_accuracy=v["accuracy"])
    logs["lr"] = net.optimizer.lr
    logs["time"] = time.perf_counter() - start
    return logs


def _batches(run: _Run, n: int) -> tuple[Array, Array]:
    """Every step of one epoch; returns the device sums of loss and of correct answers."""
    net, xp, bs = run.net, run.net.xp, run.batch_size
    order = run.rng.permutation(n) if run.shuffle and bs < n else None
    loss_sum = correct = net.backend.zeros((), dtype=net.dtype)
    for step in range(run.steps):
        lo, hi = step * bs, min((step + 1) * bs, n)
        if order is None:
            xb, tb = run.x[lo:hi, ...], run.targets[lo:hi, ...]
        else:
            idx = order[lo:hi]
            xb, tb = xp.take(run.x, idx, axis=0), xp.take(run.targets, idx, axis=0)
        if run.augment is not None:
            xb = run.augment(xb, run.rng)
        loss, hits = net.train_step(xb, tb)
        loss_sum, correct = loss_sum + loss * (hi - lo), correct + hits
        for c in run.callbacks:
            c.on_batch_end(net, step, lambda s=hi, total=loss_sum, h=correct: (float(total) / s, float(h) / s))
    return loss_sum, correct
