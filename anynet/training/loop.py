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
import types
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend import Array, to_numpy
from ..distributed.comm import (
    check_ranks_agree,
    fail_fast,
    get_communicator,
    on_main,
    raised_by_every_rank,
)
from ..distributed.parallel import DataParallel
from .callbacks import Callback, CSVLogger, EpochLogger, ModelCheckpoint, ProgressBar
from .checkpoint import (
    CheckpointError,
    check_checkpoint_dir,
    checkpoint_exists,
    read_checkpoint,
    write_checkpoint,
)
from .seeding import epoch_random, get_random_state, random_mode, set_random_state
from .settings import MAY_CHANGE, data_digest, describe_differences, differences, flag

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["DIVERGENCE_FACTOR", "DIVERGENCE_STEPS", "TrainingDivergedError", "TrainingInterrupted", "fit"]

#: a step "explodes" when its loss is NaN/inf or above this many times the run's first loss ...
DIVERGENCE_FACTOR = 10.0
#: ... and an epoch with this many such steps (or only such steps, if it has fewer) diverged
DIVERGENCE_STEPS = 5


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN/inf or exploded (see :data:`DIVERGENCE_FACTOR`): training stopped."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C: training stopped after a whole step (on every rank at the same step, when
    distributed), and a checkpoint was written."""


#: errors every rank raises at the same point, which therefore need no abort
_RAISED_BY_EVERY_RANK = (TrainingDivergedError, TrainingInterrupted)


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
    settings: dict | None = None  # what a checkpoint pins (see _settings)
    extra_settings: dict = field(default_factory=dict)  # the caller's part of them

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
    settings: dict | None = None,
) -> dict:
    """Train ``net``; returns its history (``loss``, ``accuracy``, ``val_*``, ``lr``, ``time``
    per epoch).

    ``batch_size=None`` trains full-batch. ``augment(x_batch, rng)`` transforms each training
    batch on the device (see :mod:`anynet.data.augment`). ``verbose``: 0 silent, 1 a progress
    bar (one line per epoch when stderr is not a terminal), 2 one line per epoch. ``seed``
    seeds the shuffles, augmentation and dropout masks (default: the network's seed + 1);
    ``random`` says where they are drawn (see :mod:`anynet.training.seeding`). Epochs run from
    ``initial_epoch`` to ``epochs - 1``. ``class_weight``: ``"balanced"``, ``{class: weight}``
    or k weights (see :mod:`anynet.training.weighting`). A network with BatchNorm drops a last
    batch too small for batch statistics (one sample after a Dense layer).

    ``checkpoint_dir``: write a full checkpoint there every ``checkpoint_every`` epochs (and
    every ``checkpoint_steps`` steps, if given) and when interrupted by Ctrl-C; ``resume=True``
    continues from it (``"auto"``: when one exists). A checkpoint pins the settings that decide
    the run (:mod:`.settings`; ``settings`` adds the caller's, e.g. the data split's): a resume
    that changes one is refused. Raises :class:`TrainingDivergedError` when the loss becomes
    NaN/inf or explodes.

    Everything runs inside the backend's device context (:meth:`Backend.activate`: CuPy computes
    on the current device). ``distributed``: ``"mpi"``, ``"nccl"`` or an
    :class:`anynet.distributed.Communicator`:
    each rank trains on its shard of every ``batch_size`` batch (the global batch) and the
    gradients are averaged; rank 0 alone prints, reads and writes checkpoints. The ranks first
    check that they agree on the run's settings (see ``docs/cluster.md``).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not 0 <= int(initial_epoch) < epochs:
        raise ValueError(f"initial_epoch must be in 0..{epochs - 1}, got {initial_epoch}")
    comm = get_communicator(distributed)
    with net.backend.activate(), fail_fast(comm, passthrough=_RAISED_BY_EVERY_RANK):
        run = _start(
            net, x, y, epochs, batch_size, validation_data, shuffle, seed, callbacks, augment, verbose, random
        )
        _configure(run, class_weight, checkpoint_dir, checkpoint_every, checkpoint_steps)
        _distribute(run, comm)
        run.epoch, run.extra_settings = int(initial_epoch), dict(settings or {})
        _plan_and_agree(run, comm)
        saved = on_main(comm, lambda: _checked_checkpoint(run, resume))
        restored = _resume(run, saved) if saved is not None else None
        if run.parallel is not None:
            run.parallel.sync_parameters(net)
        for c in run.callbacks:
            c.on_train_begin(net, epochs, run.steps)
        if restored is not None:
            _restore_callbacks(run, restored)
        _train(run)
        for c in run.callbacks:
            c.on_train_end(net)
    return net.history


def _train(run: _Run) -> None:
    """The epochs; Ctrl-C saves a checkpoint first."""
    with _deferred_sigint(run):
        try:
            _epochs(run)
        except KeyboardInterrupt as exc:
            _save_on_interrupt(run, agreed=isinstance(exc, TrainingInterrupted))
            raise


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
        if _stop_requested(run):
            raise TrainingInterrupted
        if net.stop_training:
            break


def _stop_requested(run: _Run) -> bool:
    """Whether Ctrl-C asked to stop; distributed, whether it did on any rank (so that every
    rank stops after the same step)."""
    if run.parallel is not None:
        run.interrupted = run.parallel.any_rank(run.interrupted)
    return run.interrupted


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
        0,  # set by _plan_steps
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


def _distribute(run: _Run, comm) -> None:
    """Set up data parallelism: rank 0 alone prints and writes files."""
    if comm is None:
        return
    run.parallel = DataParallel(comm)
    if not comm.is_main:
        quiet = (ProgressBar, EpochLogger, ModelCheckpoint, CSVLogger)
        run.callbacks = [c for c in run.callbacks if not isinstance(c, quiet)]


def _plan_steps(run: _Run) -> None:
    """Steps per epoch. Layers that need batch statistics (BatchNorm on one value per channel)
    need two samples per batch (per rank's shard): a last batch with fewer is dropped."""
    n, bs = int(run.x.shape[0]), run.batch_size
    need = max(layer.min_batch for layer in run.net.layers)
    ranks = 1 if run.parallel is None else run.parallel.comm.size
    if run.parallel is not None:
        run.parallel.check_batch(bs, need)
    elif bs < need:
        raise ValueError(
            f"this network has BatchNorm, which needs batches of at least {need} samples to train; "
            f"got {bs} ({n} training samples)"
        )
    run.steps = math.ceil(n / bs)
    if need > 1 and (n - (run.steps - 1) * bs) // ranks < need:
        run.steps -= 1


def _plan_and_agree(run: _Run, comm) -> None:
    """Plan the steps; distributed, the ranks compare their plans and settings first (a plan
    refused alike on every rank is raised on every rank as it is)."""
    try:
        _plan_steps(run)
        problem = None
    except ValueError as exc:
        problem = exc
    if comm is not None:
        check_ranks_agree(comm, {**_fingerprint(run), "problem": None if problem is None else str(problem)})
    if problem is not None:
        raise raised_by_every_rank(problem)


def _fingerprint(run: _Run) -> dict:
    """What every rank must agree on before the first collective of training."""
    return {
        **_settings(run),
        "steps_per_epoch": run.steps,
        "epochs": run.epochs,
        "initial_epoch": run.epoch,
        "parameters": [[i, name, list(p.shape)] for i, name, p in run.net.parameters()],
        "dtype": run.net.dtype_name,
        "random": run.random,
        "checkpointing": run.checkpoint_dir is not None,
        "checkpoint_steps": run.checkpoint_steps,
    }


def _settings(run: _Run) -> dict:
    """The settings a checkpoint pins (see :mod:`.settings`), computed once per run."""
    if run.settings is None:
        net = run.net
        run.settings = {
            "samples": int(run.x.shape[0]),
            "batch_size": run.batch_size,
            "seed": run.seed,
            "shuffle": run.shuffle,
            "data": data_digest(run.x, run.targets),
            "validation_samples": 0 if run.validation is None else int(run.validation[0].shape[0]),
            "optimizer": {"type": type(net.optimizer).__name__, **net.optimizer.get_config()},
            "loss": {"name": net.loss.name, **net.loss.get_config()},
            "class_weight": None if run.loss is None else to_numpy(run.loss.weights).reshape(-1).tolist(),
            "augment": _describe(run.augment),
            **run.extra_settings,
        }
    return run.settings


def _describe(augment) -> str | None:
    """A name for the augmentation that is the same in every process (no memory addresses)."""
    if augment is None:
        return None
    if (
        isinstance(augment, (types.FunctionType, types.MethodType))
        or type(augment).__repr__ is object.__repr__
    ):
        return getattr(augment, "__qualname__", type(augment).__qualname__)
    return repr(augment)


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
                set_random_state(layer.random, mine["layers"][str(i)])


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
        if _stop_requested(run):
            raise TrainingInterrupted
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
    from .._version import __version__

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
        "settings": _settings(run),
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
            str(i): get_random_state(layer.random)
            for i, layer in enumerate(run.net.layers)
            if layer.draws_random
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


def _checked_checkpoint(run: _Run, resume) -> dict | None:
    """Rank 0's part of starting: the checkpoint folder probed, and the checkpoint to resume
    from (``None``: start afresh), read and checked against this run."""
    if resume and run.checkpoint_dir is None:
        raise ValueError("resume needs checkpoint_dir: the directory the interrupted run wrote to")
    if run.checkpoint_dir is None:
        return None
    check_checkpoint_dir(run.checkpoint_dir)
    if not resume or (resume == "auto" and not checkpoint_exists(run.checkpoint_dir)):
        return None
    if not checkpoint_exists(run.checkpoint_dir):
        raise CheckpointError(
            f"no checkpoint to resume from in {run.checkpoint_dir} "
            "(resume='auto' starts afresh when there is none)"
        )
    state = read_checkpoint(run.checkpoint_dir)
    _check_same_run(run, state)
    return state


def _check_same_run(run: _Run, state: dict) -> None:
    """The checkpoint was made by this run: the same architecture and pinned settings."""
    where, net = run.checkpoint_dir, run.net
    if state["config"].get("layers") != net.get_config()["layers"]:
        raise CheckpointError(f"{where}: the checkpoint holds another architecture")
    saved = state.get("settings")
    if saved is None:  # written before settings were pinned: the checks of that time
        saved = {k: state[k] for k in ("samples", "batch_size")}
        now = {k: _settings(run)[k] for k in saved}
    else:
        now = _settings(run)
    if diffs := differences(saved, now):
        raise CheckpointError(
            f"{where}: cannot resume: this run differs from the checkpointed one in "
            f"{', '.join(flag(k) for k, _, _ in diffs)}. A resumed run keeps every setting but "
            f"{', '.join(MAY_CHANGE)}; start afresh with another checkpoint folder to change them\n"
            + describe_differences(diffs)
        )
    if int(state["steps_per_epoch"]) != run.steps or int(state["step"]) > run.steps:
        raise CheckpointError(f"{where}: the checkpoint's steps per epoch do not match this run")
    try:
        _check_shapes(net, state)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{where}: the checkpoint's weights do not fit this network ({exc})") from None


def _check_shapes(net: Network, state: dict) -> None:
    """Weights and optimizer moments of the network's shapes (checked before any is loaded)."""
    layers = [layer.state for layer in net.layers]
    if len(state["weights"]) != len(layers):
        raise ValueError(f"weights for {len(state['weights'])} layers, the network has {len(layers)}")
    params = {f"{i}.{name}": tuple(p.shape) for i, name, p in net.parameters()}
    for i, (given, have) in enumerate(zip(state["weights"], layers)):
        if sorted(given) != sorted(have) or any(np.shape(given[k]) != tuple(have[k].shape) for k in have):
            raise ValueError(f"layer {i} holds {sorted(given)} of other shapes or names")
    for name, slots in state["optimizer"]["slots"].items():
        if name not in params or any(np.shape(v) != params[name] for v in slots.values()):
            raise ValueError(f"optimizer moments {name!r} do not fit the parameters")


def _resume(run: _Run, state: dict) -> list:
    """Load the checkpoint into the network and the run; returns the callbacks' states."""
    from ..record import ModelInfo

    net = run.net
    try:
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
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{run.checkpoint_dir}: the checkpoint is damaged ({exc})") from None
    return state["callbacks"]


def _restore_callbacks(run: _Run, saved: list) -> None:
    """Give each callback the state of the first unused saved callback of its type."""
    unused = list(saved)
    for c in run.callbacks:
        match = next((s for s in unused if s.get("type") == type(c).__name__), None)
        if match is not None:
            unused.remove(match)
            try:
                c.set_state(match["state"])
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise CheckpointError(
                    f"{run.checkpoint_dir}: the checkpoint's state of {type(c).__name__} is damaged ({exc})"
                ) from None


def _save_on_interrupt(run: _Run, agreed: bool) -> None:
    """Ctrl-C: save where the run stands and say how to continue it. ``agreed``: every rank
    stopped after the same step, so every rank's generator positions are gathered."""
    if run.parallel is not None and not (agreed or run.is_main):
        return
    directory = run.checkpoint_dir or _interrupt_dir()
    try:
        _save(run, "interrupt", directory, gather=agreed)
    except Exception as exc:
        if run.is_main:
            print(
                f"\nanynet: training interrupted; saving a checkpoint to {directory} failed: {exc}",
                file=sys.stderr,
                flush=True,
            )
        return
    if not run.is_main:
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
