"""The epoch loop: :func:`fit` trains a :class:`~anynet.network.Network` on its backend.

The training data go to the device once (through :mod:`anynet.inputs`); each epoch's shuffle is
an index permutation and a batch is an ``xp.take``. Loss and accuracy sums stay on the device
and are read back once per epoch, with the divergence check's counter (see
:class:`TrainingDivergedError`). Random numbers come from :mod:`.seeding` (one generator per
epoch and stream, derived from the seed); checkpoints from :mod:`.checkpoint`. With
``distributed=``, each rank trains on its shard of every batch (:mod:`anynet.distributed`).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend import Array
from .callbacks import Callback, CSVLogger, EpochLogger, ModelCheckpoint, ProgressBar
from .checkpoint import (
    CheckpointError,
    checkpoint_exists,
    read_checkpoint,
    write_checkpoint,
)
from .seeding import epoch_random, get_random_state, random_mode, set_random_state

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["DIVERGENCE_FACTOR", "DIVERGENCE_STEPS", "TrainingDivergedError", "fit"]

#: a step "explodes" when its loss is NaN/inf or above this many times the run's first loss ...
DIVERGENCE_FACTOR = 10.0
#: ... and an epoch with this many such steps (or only such steps, if it has fewer) diverged
DIVERGENCE_STEPS = 5


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN/inf or exploded (see :data:`DIVERGENCE_FACTOR`): training stopped."""


class _Guard:
    """Counts exploding steps on the device; read once per epoch."""

    def __init__(self, net):
        self.net, self.threshold = net, None
        self.bad = net.backend.zeros((), dtype=net.dtype)

    def observe(self, loss: Array) -> None:
        xp = self.net.xp
        if self.threshold is None:
            self.threshold = loss * DIVERGENCE_FACTOR + 1e-3
        self.bad = self.bad + xp.astype(xp.logical_not(loss <= self.threshold), self.net.dtype)

    def check(self, loss: float, epoch: int, steps: int) -> None:
        bad = int(float(self.bad))
        self.bad = self.net.backend.zeros((), dtype=self.net.dtype)
        if math.isfinite(loss) and bad < min(DIVERGENCE_STEPS, max(steps, 1)):
            return
        first = (float(self.threshold) - 1e-3) / DIVERGENCE_FACTOR
        raise TrainingDivergedError(
            f"training diverged in epoch {epoch + 1}: the mean loss is {loss:.4g}, and {bad} of "
            f"{steps} steps had a loss that was NaN/inf or above {DIVERGENCE_FACTOR:g}x the first "
            f"step's ({first:.4g}). The learning rate (now {self.net.optimizer.lr:g}) is likely "
            "too high: lower it (e.g. 10x), clip gradients (clip_norm=...), or check the inputs"
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


@dataclass
class _Run:
    """What every epoch of one ``fit`` call shares, and where it stands."""

    net: Network
    x: Array
    targets: Array
    validation: tuple[Array, Array] | None
    batch_size: int
    steps: int
    epochs: int
    seed: int
    random: str
    augment: Callable | None
    shuffle: bool
    callbacks: list[Callback]
    loss: Any = None  # the class-weighted loss, when class_weight is given
    checkpoint_dir: Path | None = None
    checkpoint_every: int = 1
    checkpoint_steps: int | None = None
    guard: Any = None
    epoch: int = 0
    step: int = 0  # steps done in ``epoch``
    sums: tuple | None = None  # device sums of loss and hits over those steps
    stream: Any = None  # the epoch's shuffle / augmentation random source
    order: Any = None
    pending_random: dict | None = None  # generator positions to restore (mid-epoch resume)
    logged: bool = False  # the epoch's logs are in the history
    interrupted: bool = False
    parallel: Any = None  # an anynet.distributed.DataParallel, when distributed
    extra: dict = field(default_factory=dict)

    @property
    def mid_epoch(self) -> bool:
        """Some of the epoch's steps are done and its logs are not yet in the history."""
        return self.step > 0 and not self.logged

    @property
    def is_main(self) -> bool:
        """The process that prints and writes files (rank 0; the only one when not distributed)."""
        return self.parallel is None or self.parallel.comm.is_main


def fit(
    net: Network,
    x,
    y,
    epochs: int = 10,
    batch_size: int | None = 128,
    validation_data=None,
    shuffle: bool = True,
    seed: int | None = None,
    callbacks=(),
    augment=None,
    verbose=0,
    initial_epoch: int = 0,
    class_weight=None,
    checkpoint_dir=None,
    checkpoint_every: int = 1,
    checkpoint_steps: int | None = None,
    resume=False,
    random: str = "auto",
    distributed=None,
) -> dict:
    """Train ``net``; returns its history (``loss``, ``accuracy``, ``val_*``, ``lr``, ``time``
    per epoch).

    ``batch_size=None`` trains full-batch. ``augment(x_batch, rng)`` transforms each training
    batch on the device (see :mod:`anynet.data.augment`). ``verbose``: 0 silent, 1 a progress
    bar (one line per epoch when stderr is not a terminal), 2 one line per epoch. ``seed``
    seeds the shuffles, augmentation and dropout masks (default: the network's seed + 1);
    ``random`` says where they are drawn (see :mod:`anynet.training.seeding`). Epochs run from
    ``initial_epoch`` to ``epochs - 1``. ``class_weight``: ``"balanced"``, ``{class: weight}``
    or k weights (see :mod:`anynet.training.weighting`).

    ``checkpoint_dir``: write a full checkpoint there every ``checkpoint_every`` epochs (and
    every ``checkpoint_steps`` steps, if given) and when interrupted by Ctrl-C; ``resume=True``
    continues from it (``"auto"``: when one exists). Raises :class:`TrainingDivergedError` when
    the loss becomes NaN/inf or explodes.

    ``distributed``: ``"mpi"``, ``"nccl"`` or an :class:`anynet.distributed.Communicator`:
    each rank trains on its shard of every ``batch_size`` batch (the global batch) and the
    gradients are averaged; rank 0 alone prints and writes checkpoints (see ``docs/cluster.md``).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not 0 <= int(initial_epoch) < epochs:
        raise ValueError(f"initial_epoch must be in 0..{epochs - 1}, got {initial_epoch}")
    run = _start(
        net, x, y, epochs, batch_size, validation_data, shuffle, seed, callbacks, augment, verbose, random
    )
    _configure(run, class_weight, checkpoint_dir, checkpoint_every, checkpoint_steps)
    _distribute(run, distributed)
    run.epoch = int(initial_epoch)
    saved = _resume(run) if _should_resume(run, resume) else None
    if run.parallel is not None:
        run.parallel.sync_parameters(net)
    for c in run.callbacks:
        c.on_train_begin(net, epochs, run.steps)
    if saved is not None:
        _restore_callbacks(run.callbacks, saved)
    with _deferred_sigint(run), _fail_fast(run):
        try:
            _epochs(run)
        except KeyboardInterrupt:
            _save_on_interrupt(run)
            raise
    for c in run.callbacks:
        c.on_train_end(net)
    return net.history


def _epochs(run: _Run) -> None:
    net = run.net
    while run.epoch < run.epochs:
        logs = _epoch(run)
        for key, value in logs.items():
            net.history.setdefault(key, []).append(value)
        run.logged = True
        for c in run.callbacks:
            c.on_epoch_end(net, run.epoch, logs)
        run.epoch, run.step, run.sums, run.logged = run.epoch + 1, 0, None, False
        last = net.stop_training or run.epoch == run.epochs
        if run.checkpoint_dir is not None and (last or run.epoch % run.checkpoint_every == 0) and run.is_main:
            _save(run, "epoch")
        if run.interrupted:
            raise KeyboardInterrupt
        if net.stop_training:
            break


def _start(
    net, x, y, epochs, batch_size, validation_data, shuffle, seed, callbacks, augment, verbose, random
) -> _Run:
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
    run_seed = net.seed + 1 if seed is None else int(seed)
    return _Run(
        net,
        xd,
        targets,
        validation,
        min(bs, n),
        math.ceil(n / bs),
        int(epochs),
        run_seed,
        random_mode(net.backend, random),
        augment,
        shuffle,
        _callbacks(callbacks, verbose),
        guard=_Guard(net),
    )


def _configure(run: _Run, class_weight, checkpoint_dir, checkpoint_every, checkpoint_steps) -> None:
    if class_weight is not None:
        from .weighting import ClassWeightedLoss, class_weight_vector

        w = class_weight_vector(class_weight, run.targets, run.net.classes)
        row = run.net.backend.asarray(w.reshape(1, -1), dtype=run.net.dtype)
        run.loss = ClassWeightedLoss(run.net.loss, row)
    if int(checkpoint_every) < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if checkpoint_steps is not None and int(checkpoint_steps) < 1:
        raise ValueError(f"checkpoint_steps must be >= 1 or None, got {checkpoint_steps}")
    run.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
    run.checkpoint_every = int(checkpoint_every)
    run.checkpoint_steps = None if checkpoint_steps is None else int(checkpoint_steps)


def _distribute(run: _Run, distributed) -> None:
    """Set up data parallelism: a communicator, and rank 0 alone printing and writing files."""
    from ..distributed import DataParallel, get_communicator

    comm = get_communicator(distributed)
    if comm is None:
        return
    run.parallel = DataParallel(comm)
    run.parallel.check_batch(run.batch_size)
    if not comm.is_main:
        quiet = (ProgressBar, EpochLogger, ModelCheckpoint, CSVLogger)
        run.callbacks = [c for c in run.callbacks if not isinstance(c, quiet)]


@contextmanager
def _fail_fast(run: _Run):
    """Distributed: an error on one rank stops them all (a divergence, seen alike by every
    rank, propagates as it is)."""
    if run.parallel is None:
        yield
        return
    with run.parallel.fail_fast(passthrough=(TrainingDivergedError,)):
        yield


def _callbacks(callbacks, verbose) -> list[Callback]:
    callbacks = list(callbacks)
    for c in callbacks:
        if not isinstance(c, Callback):
            raise TypeError(f"callbacks must be anynet.training.Callback objects, got {type(c).__name__}")
    level = int(verbose)
    if level not in (0, 1, 2):
        raise ValueError(
            f"verbose must be 0 (silent), 1 (progress bar) or 2 (one line per epoch), got {verbose!r}"
        )
    if level and not any(isinstance(c, (ProgressBar, EpochLogger)) for c in callbacks):
        stream = sys.stderr
        tty = bool(getattr(stream, "isatty", lambda: False)())
        callbacks.append(ProgressBar(file=stream) if level == 1 and tty else EpochLogger(file=stream))
    return callbacks


def _epoch(run: _Run) -> dict:
    """One pass over the training data (or its rest, when resumed mid-epoch); returns the
    epoch's logs as host floats."""
    net, start = run.net, time.perf_counter()
    net.optimizer.start_epoch(run.epoch, run.epochs)
    _epoch_random(run)
    for c in run.callbacks:
        c.on_epoch_begin(net, run.epoch)
    loss_sum, correct = _batches(run)
    seen = min(run.step * run.batch_size, run.x.shape[0])
    logs = {"loss": float(loss_sum) / seen, "accuracy": float(correct) / seen}
    run.guard.check(logs["loss"], run.epoch, run.step)
    if run.parallel is not None:
        run.parallel.end_epoch(net)
    if run.validation is not None:
        if run.parallel is not None:
            v = run.parallel.evaluate(net, *run.validation)
        else:
            v = net.evaluate_on_device(*run.validation)
        logs.update(val_loss=v["loss"], val_accuracy=v["accuracy"])
    logs["lr"] = net.optimizer.lr
    logs["time"] = time.perf_counter() - start
    return logs


def _epoch_random(run: _Run) -> None:
    """The epoch's generators (and shuffle), put back where a mid-epoch checkpoint left them."""
    run.stream = epoch_random(run.net, run.seed, run.epoch, run.random)
    n = run.x.shape[0]
    run.order = run.stream.permutation(n) if run.shuffle and run.batch_size < n else None
    if run.parallel is not None:  # the same shuffle everywhere, per-rank augmentation and dropout
        run.stream = run.parallel.reseed(run.net, run.seed, run.epoch, run.random, run.stream)
    pending, run.pending_random = run.pending_random, None
    mine = _rank_random(run, pending) if pending else None
    if mine:
        set_random_state(run.stream, mine.get("stream"))
        for i, layer in enumerate(run.net.layers):
            if str(i) in mine.get("layers", {}):
                set_random_state(getattr(layer, "random", None), mine["layers"][str(i)])


def _rank_random(run: _Run, pending: dict) -> dict | None:
    """This rank's generator positions in a checkpoint's ``random_state``: its entry of
    ``ranks`` when the checkpoint has one per rank of a group this size; else rank 0 takes the
    top-level positions (a single process, or a checkpoint written at Ctrl-C) and the others
    keep their fresh epoch generators."""
    if run.parallel is None:
        return pending
    comm = run.parallel.comm
    ranks = pending.get("ranks")
    if ranks is not None and len(ranks) == comm.size:
        return ranks[comm.rank]
    return pending if comm.is_main else None


def _batches(run: _Run) -> tuple[Array, Array]:
    """The epoch's remaining steps; returns the device sums of loss and of correct answers."""
    net = run.net
    base_loss = net.loss
    if run.loss is not None:
        net.loss = run.loss
    try:
        return _steps(run)
    finally:
        net.loss = base_loss


def _batch(run: _Run, lo: int, hi: int) -> tuple[Array, Array]:
    """Samples ``lo:hi`` of the epoch's order (this rank's shard of them, when distributed)."""
    xp = run.net.xp
    if run.parallel is not None:
        lo, hi = run.parallel.shard(lo, hi)
    if run.order is None:
        return run.x[lo:hi, ...], run.targets[lo:hi, ...]
    idx = run.order[lo:hi]
    return xp.take(run.x, idx, axis=0), xp.take(run.targets, idx, axis=0)


def _steps(run: _Run) -> tuple[Array, Array]:
    net, bs, n = run.net, run.batch_size, run.x.shape[0]
    zero = net.backend.zeros((), dtype=net.dtype)
    loss_sum, correct = run.sums if run.sums is not None else (zero, zero)
    for step in range(run.step, run.steps):
        lo, hi = step * bs, min((step + 1) * bs, n)
        xb, tb = _batch(run, lo, hi)
        if run.augment is not None:
            xb = run.augment(xb, run.stream)
        net.optimizer.start_step(run.epoch * run.steps + step, run.epochs * run.steps)
        if run.parallel is None:
            loss, hits = net.train_step(xb, tb)
        else:  # the global batch's loss and hits, the same on every rank
            loss, hits = run.parallel.train_step(net, xb, tb, hi - lo)
        run.guard.observe(loss)
        loss_sum, correct = loss_sum + loss * (hi - lo), correct + hits
        run.sums, run.step = (loss_sum, correct), step + 1
        for c in run.callbacks:
            c.on_batch_end(
                net, step, lambda s=hi, total=loss_sum, h=correct: (float(total) / s, float(h) / s)
            )
        if run.interrupted:
            raise KeyboardInterrupt
        if net.stop_training:
            break
        if (
            run.checkpoint_steps
            and run.checkpoint_dir is not None
            and (run.epoch * run.steps + run.step) % run.checkpoint_steps == 0
            and run.step < run.steps
        ):
            _save(run, "steps")  # on every rank: rank 0 gathers their generator positions
    return loss_sum, correct


# ---------------------------------------------------------------------- checkpoints


def _state(run: _Run, reason: str, ranks: list | None = None) -> dict:
    """Everything needed to continue the run from where it stands (``ranks``: every rank's
    generator positions, when gathered)."""
    from .. import __version__

    net = run.net
    mid = run.mid_epoch
    state = {
        "anynet_version": __version__,
        "reason": reason,
        "saved": datetime.now().isoformat(timespec="seconds"),
        "config": net.get_config(),
        "weights": net.get_weights(),
        "optimizer": net.optimizer.state_dict(),
        "epoch": run.epoch + (1 if run.logged else 0),
        "step": run.step if mid else 0,
        "epochs": run.epochs,
        "steps_per_epoch": run.steps,
        "samples": int(run.x.shape[0]),
        "batch_size": run.batch_size,
        "seed": run.seed,
        "shuffle": run.shuffle,
        "random": run.random,
        "history": {k: [float(v) for v in vs] for k, vs in net.history.items()},
        "info": net.info.to_metadata(),
        "guard": run.guard.get_state(),
        "callbacks": [{"type": type(c).__name__, "state": c.get_state()} for c in run.callbacks],
    }
    if mid:
        assert run.sums is not None
        state["sums"] = [float(run.sums[0]), float(run.sums[1])]
        state["random_state"] = _random_positions(run)
        if ranks is not None:
            state["random_state"]["ranks"] = ranks
    return state


def _random_positions(run: _Run) -> dict:
    """Where this rank's epoch stream and layers' generators stand."""
    return {
        "stream": get_random_state(run.stream),
        "layers": {
            str(i): get_random_state(getattr(layer, "random", None))
            for i, layer in enumerate(run.net.layers)
            if getattr(layer, "random", None) is not None
        },
    }


def _save(run: _Run, reason: str, directory: Path | None = None, gather: bool = True) -> Path | None:
    """Write a checkpoint from rank 0. Distributed and mid-epoch with ``gather``, every rank must
    call this at the same step: their generator positions are gathered, so that each rank
    resumes exactly (without it, as at Ctrl-C, only rank 0's are saved)."""
    ranks = None
    if gather and run.parallel is not None and run.mid_epoch:
        ranks = run.parallel.comm.gather_object(_random_positions(run))
    if not run.is_main:
        return None
    return write_checkpoint(directory or run.checkpoint_dir, _state(run, reason, ranks))


def _should_resume(run: _Run, resume) -> bool:
    if not resume:
        return False
    if run.checkpoint_dir is None:
        raise ValueError("resume needs checkpoint_dir: the directory the interrupted run wrote to")
    if resume == "auto":
        return checkpoint_exists(run.checkpoint_dir)
    if not checkpoint_exists(run.checkpoint_dir):
        raise CheckpointError(
            f"no checkpoint to resume from in {run.checkpoint_dir} "
            "(resume='auto' starts afresh when there is none)"
        )
    return True


def _resume(run: _Run) -> list:
    """Load the checkpoint into the network and the run; returns the callbacks' states."""
    from ..record import ModelInfo

    net, state = run.net, read_checkpoint(run.checkpoint_dir)
    if state["config"]["layers"] != net.get_config()["layers"]:
        raise CheckpointError(f"{run.checkpoint_dir}: the checkpoint holds another architecture")
    for key, have in (("samples", int(run.x.shape[0])), ("batch_size", run.batch_size)):
        if int(state[key]) != have:
            raise CheckpointError(
                f"{run.checkpoint_dir}: the checkpoint was made with {key} "
                f"{state[key]}, this run has {have}; resume with the same data and batch size"
            )
    net.set_weights(state["weights"])
    net.optimizer.load_state_dict(state["optimizer"])
    run.seed, run.shuffle, run.random = int(state["seed"]), bool(state["shuffle"]), state["random"]
    run.epoch, run.step = int(state["epoch"]), int(state["step"])
    if run.step:
        b = net.backend
        run.sums = tuple(b.asarray(np.asarray(v), dtype=net.dtype) for v in state["sums"])
        run.pending_random = state.get("random_state")
    run.guard.set_state(state["guard"])
    net.history = {k: list(vs) for k, vs in state["history"].items()}
    net.info = ModelInfo.from_metadata(state["info"])
    return state["callbacks"]


def _restore_callbacks(callbacks: list[Callback], saved: list) -> None:
    """Give each callback the state of the first unused saved callback of its type."""
    unused = list(saved)
    for c in callbacks:
        match = next((s for s in unused if s["type"] == type(c).__name__), None)
        if match is not None:
            unused.remove(match)
            c.set_state(match["state"])


def _save_on_interrupt(run: _Run) -> None:
    """Ctrl-C: save where the run stands and say how to continue it."""
    if not run.is_main:
        return
    directory = run.checkpoint_dir or _interrupt_dir()
    try:
        _save(run, "interrupt", directory, gather=False)  # the other ranks may be elsewhere
    except Exception as exc:
        print(
            f"\nanynet: training interrupted; saving a checkpoint to {directory} failed: {exc}",
            file=sys.stderr,
            flush=True,
        )
        return
    where = f"epoch {run.epoch + 1}/{run.epochs}, step {run.step}/{run.steps}"
    print(
        f"\nanynet: training interrupted ({where}); checkpoint saved to {directory}\n"
        f"anynet: resume with fit(..., checkpoint_dir={str(directory)!r}, resume=True), "
        f"anynet.train(..., checkpoint_dir={str(directory)!r}, resume=True) "
        f"or: anynet train ... --checkpoint-dir {directory} --resume",
        file=sys.stderr,
        flush=True,
    )


def _interrupt_dir() -> Path:
    home = Path(os.environ.get("ANYNET_HOME") or Path.home() / ".anynet").expanduser()
    return home / "checkpoints" / f"interrupted-{datetime.now():%Y%m%d-%H%M%S}"


@contextmanager
def _deferred_sigint(run: _Run):
    """In the main thread, a first Ctrl-C lets the current step finish (so the checkpoint is
    consistent) and stops after it; a second one interrupts at once."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def handler(signum, frame):
        if run.interrupted:
            raise KeyboardInterrupt
        run.interrupted = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
