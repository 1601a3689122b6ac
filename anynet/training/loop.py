"""The epoch loop: :func:`fit` trains a :class:`~anynet.network.Network` on its backend.

``fit`` is a short loop over a batch plan (:mod:`.batches`), a :class:`~.callbacks.CallbackList`
and a step function (the network's ``train_step``, or the data-parallel step), with small
collaborators for the rest: :mod:`.divergence` (NaN and exploding losses), :mod:`.resume`
(checkpoints and resuming), :mod:`.interrupt` (Ctrl-C), :mod:`.seeding` (one seed, one run).
Loss and accuracy sums stay on the device and are read back once per epoch. Everything runs
inside the backend's device context (:meth:`~anynet.backend.Backend.activate`).
"""

from __future__ import annotations

import time
from typing import Any

from ..distributed.comm import check_ranks_agree, fail_fast, on_main, raised_by_every_rank
from ..distributed.groups import get_communicator
from ..distributed.parallel import DataParallel
from . import interrupt, resume
from .batches import Batches
from .callbacks import CallbackList
from .compiled import compiled_step
from .divergence import DivergenceGuard
from .errors import RAISED_BY_EVERY_RANK, TrainingInterrupted
from .options import FitOptions
from .progress import progress_for
from .seeding import random_mode, start_epoch
from .settings import fingerprint
from .state import Run
from .weighting import ClassWeightedLoss, class_weight_vector

__all__ = ["fit"]


def fit(net: Any, x: Any, y: Any, epochs: int = 10, batch_size: int | None = 128, **options: Any) -> dict:
    """Train ``net``; returns its history (``loss``, ``accuracy``, ``val_*``, ``lr``, ``time``
    per epoch). ``batch_size=None`` trains full-batch; ``options`` are the fields of
    :class:`~anynet.training.options.FitOptions` (validation data, shuffling, seed, callbacks,
    augmentation, verbosity, class weights, checkpoints and resuming, random source, data
    parallelism). A network with BatchNorm drops a last batch too small for batch statistics.

    Raises :class:`~anynet.training.TrainingDivergedError` when the loss becomes NaN/inf or
    explodes, :class:`~anynet.training.TrainingInterrupted` after a Ctrl-C (a checkpoint is
    written first). With ``distributed=``, each rank trains on its shard of every global batch,
    rank 0 alone prints, reads and writes checkpoints, and the ranks first check that they
    agree on the run's settings (``docs/cluster.md``).
    """
    opts = FitOptions.of(options, epochs)
    comm = get_communicator(opts.distributed)
    with net.backend.activate(), fail_fast(comm, passthrough=RAISED_BY_EVERY_RANK):
        run = _start(net, x, y, int(epochs), batch_size, opts, comm)
        saved = on_main(comm, lambda: resume.checked(run, opts.resume))
        restored = resume.restore(run, saved) if saved is not None else None
        if run.parallel is not None:
            run.parallel.sync_parameters(net)
        run.callbacks.train_begin(net, run.epochs, run.steps)
        if restored is not None:
            run.callbacks.restore(restored, run.checkpoint_dir)
        _train(run)
        run.callbacks.train_end(net)
    return net.history


def _start(net: Any, x: Any, y: Any, epochs: int, batch_size: int | None, opts: FitOptions, comm: Any) -> Run:
    """Build the network if needed, put the data on the device, plan the batches and, when
    distributed, check that every rank plans the same run."""
    if not net.built:
        net.build(tuple(x.shape[1:]))
    xd = net.inputs(x)
    targets = net.targets(y, xd.shape[0])
    validation = None
    if opts.validation_data is not None:
        xv = net.inputs(opts.validation_data[0], "validation x")
        validation = (xv, net.targets(opts.validation_data[1], xv.shape[0], "validation y"))
    parallel = None if comm is None else DataParallel(comm, net.backend)
    net.stop_training = False
    run = Run(
        net,
        opts,
        _plan(net, xd, targets, batch_size, opts.shuffle, parallel, comm),
        validation,
        epochs,
        net.seed + 1 if opts.seed is None else int(opts.seed),
        random_mode(net.backend, opts.random),
        _training_loss(net, targets, opts.class_weight),
        CallbackList(opts.callbacks, progress_for(opts.verbose), main=comm is None or comm.is_main),
        DivergenceGuard(net),
        parallel,
        epoch=int(opts.initial_epoch),
    )
    if opts.compile:
        run.compiled = compiled_step(net, run.loss, run.seed)
    if comm is not None:
        check_ranks_agree(comm, {**fingerprint(run), "problem": None})
    return run


def _plan(
    net: Any, xd: Any, targets: Any, batch_size: int | None, shuffle: bool, parallel: Any, comm: Any
) -> Batches:
    """The batch plan; distributed, a plan refused alike on every rank (the ranks compare
    their refusals first) is raised on every rank as it is."""
    need = max(layer.min_batch for layer in net.layers)
    bs = int(xd.shape[0]) if batch_size is None else int(batch_size)
    try:
        return Batches(net.xp, xd, targets, bs, shuffle, need, parallel)
    except ValueError as exc:
        if comm is not None:
            check_ranks_agree(comm, {"batch_size": bs, "samples": int(xd.shape[0]), "problem": str(exc)})
        raise raised_by_every_rank(exc) from None


def _training_loss(net: Any, targets: Any, class_weight: Any) -> Any:
    """With ``class_weight``, the loss with each sample's loss weighted by its class (``None``:
    the network's own)."""
    if class_weight is None:
        return None
    w = class_weight_vector(class_weight, targets, net.classes)
    return ClassWeightedLoss(net.loss, net.backend.asarray(w.reshape(1, -1), dtype=net.dtype))


def _train(run: Run) -> None:
    """The epochs; Ctrl-C saves a checkpoint first."""
    with interrupt.deferred_sigint(run):
        try:
            _epochs(run)
        except KeyboardInterrupt as exc:
            interrupt.save_on_interrupt(run, agreed=isinstance(exc, TrainingInterrupted))
            raise


def _epochs(run: Run) -> None:
    net = run.net
    while run.epoch < run.epochs:
        logs = _epoch(run)
        for key, value in logs.items():
            net.history.setdefault(key, []).append(value)
        run.logged = True
        run.callbacks.epoch_end(net, run.epoch, logs)
        run.epoch, run.step, run.sums, run.logged = run.epoch + 1, 0, None, False
        resume.after_epoch(run)
        if interrupt.stop_requested(run):
            raise TrainingInterrupted
        if net.stop_training:
            break


def _epoch(run: Run) -> dict:
    """One pass over the training data (or its rest, when resumed mid-epoch); returns the
    epoch's logs as host floats."""
    net, start = run.net, time.perf_counter()
    net.optimizer.start_epoch(run.epoch, run.epochs)
    start_epoch(run)
    run.callbacks.epoch_begin(net, run.epoch)
    loss_sum, correct = _steps(run)
    seen = run.batches.seen(run.step)
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


def _steps(run: Run) -> tuple[Any, Any]:
    """The epoch's remaining steps; returns the device sums of loss and of correct answers."""
    net, batches = run.net, run.batches
    zero = net.backend.zeros((), dtype=net.dtype)
    loss_sum, correct = run.sums if run.sums is not None else (zero, zero)
    for step in range(run.step, run.steps):
        net.optimizer.start_step(run.epoch * run.steps + step, run.epochs * run.steps)
        lo, hi = batches.bounds(step)
        loss, hits = _step(run, step, hi - lo)
        run.guard.observe(loss)
        loss_sum, correct = loss_sum + loss * (hi - lo), correct + hits
        run.sums, run.step = (loss_sum, correct), step + 1
        run.callbacks.batch_end(net, step, lambda s=hi, t=loss_sum, h=correct: (float(t) / s, float(h) / s))
        if interrupt.stop_requested(run):
            raise TrainingInterrupted
        if net.stop_training:
            break
        resume.after_step(run)  # on every rank: rank 0 gathers their generator positions
    return loss_sum, correct


def _step(run: Run, step: int, n: int) -> tuple[Any, Any]:
    """One optimisation step on batch ``step`` (augmented when asked); distributed, on this
    rank's shard of the global batch of ``n`` (the loss and hits returned are the global
    batch's, the same on every rank)."""
    augment = run.options.augment
    if run.compiled is not None and augment is None:
        return run.compiled.take_and_step(run.epoch, step, run.batches, run.order)
    xb, tb = run.batches.take(run.order, step)
    if augment is not None:
        xb = augment(xb, run.stream)
    if run.compiled is not None:
        return run.compiled(run.epoch, step, xb, tb)
    if run.parallel is not None:
        return run.parallel.train_step(run.net, xb, tb, n, run.loss)
    if run.loss is None:
        return run.net.train_step(xb, tb)
    return run.net.train_step(xb, tb, loss=run.loss)
