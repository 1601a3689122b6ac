"""Checkpointing a run, and resuming one: the collaborator the epoch loop calls.

A checkpoint (:mod:`.checkpoint`, one file) holds everything needed to continue: weights,
optimizer state, where the run stands (epoch, step, the device sums of the epoch so far), the
position of every random generator, the history, the divergence guard, the callbacks' states and
the settings that decide the run (:mod:`.settings`). It is written after every
``checkpoint_every`` epochs, every ``checkpoint_steps`` steps when asked, and at Ctrl-C.

Resuming, rank 0 alone probes the folder and reads the checkpoint (:func:`checked`); every rank
then loads what rank 0 broadcast (:func:`restore`). A checkpoint made by another run (another
architecture, or any pinned setting changed) is refused.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..record import ModelInfo
from .checkpoint import check_checkpoint_dir, checkpoint_exists, read_checkpoint, write_checkpoint
from .errors import CheckpointError
from .seeding import get_random_state
from .settings import MAY_CHANGE, describe_differences, differences, flag, pinned
from .state import Run

__all__ = ["after_epoch", "after_step", "checked", "restore", "save"]


# ---------------------------------------------------------------------- writing


def after_epoch(run: Run) -> None:
    """Rank 0 writes a checkpoint every ``checkpoint_every`` epochs and after the last one."""
    every = run.options.checkpoint_every
    last = run.net.stop_training or run.epoch == run.epochs
    if run.checkpoint_dir is not None and (last or run.epoch % every == 0) and run.is_main:
        save(run, "epoch")


def after_step(run: Run) -> None:
    """Every ``checkpoint_steps`` steps (inside an epoch), on every rank: rank 0 gathers the
    ranks' generator positions and writes."""
    every = run.options.checkpoint_steps
    done = run.epoch * run.steps + run.step
    if every and run.checkpoint_dir is not None and done % every == 0 and run.step < run.steps:
        save(run, "steps")


def save(run: Run, reason: str, directory: Path | None = None, gather: bool = True) -> Path | None:
    """Write a checkpoint from rank 0. Distributed and mid-epoch with ``gather``, every rank must
    call this at the same step: their generator positions are gathered, so that each rank
    resumes exactly (without it, only rank 0's are saved)."""
    ranks = None
    if gather and run.parallel is not None and run.mid_epoch:
        ranks = run.parallel.comm.gather_object(random_positions(run))
    if not run.is_main:
        return None
    folder = directory or run.checkpoint_dir
    assert folder is not None
    return write_checkpoint(folder, _state(run, reason, ranks))


def _state(run: Run, reason: str, ranks: list | None = None) -> dict:
    """Everything needed to continue the run from where it stands (``ranks``: every rank's
    generator positions, when gathered)."""
    net, mid = run.net, run.mid_epoch
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
        "samples": run.batches.samples,
        "batch_size": run.batches.batch_size,
        "seed": run.seed,
        "shuffle": run.shuffle,
        "random": run.random,
        "settings": pinned(run),
        "history": {k: [float(v) for v in vs] for k, vs in net.history.items()},
        "info": net.info.to_metadata(),
        "guard": run.guard.get_state(),
        "callbacks": run.callbacks.states(),
    }
    if mid:
        assert run.sums is not None
        state["sums"] = [float(run.sums[0]), float(run.sums[1])]
        state["random_state"] = random_positions(run)
        if ranks is not None:
            state["random_state"]["ranks"] = ranks
    return state


def random_positions(run: Run) -> dict:
    """Where this rank's epoch stream and layers' generators stand."""
    return {
        "stream": get_random_state(run.stream),
        "layers": {
            str(i): get_random_state(layer.random)
            for i, layer in enumerate(run.net.layers)
            if layer.draws_random
        },
    }


# ---------------------------------------------------------------------- resuming


def checked(run: Run, resume: Any) -> dict | None:
    """Rank 0's part of starting: the checkpoint folder probed, and the checkpoint to resume
    from (``None``: start afresh), read and checked against this run."""
    folder = run.checkpoint_dir
    if folder is None:
        return None
    check_checkpoint_dir(folder)
    if not resume or (resume == "auto" and not checkpoint_exists(folder)):
        return None
    if not checkpoint_exists(folder):
        raise CheckpointError(
            f"no checkpoint to resume from in {folder} (resume='auto' starts afresh when there is none)"
        )
    state = read_checkpoint(folder)
    _check_same_run(run, state)
    return state


def _check_same_run(run: Run, state: dict) -> None:
    """The checkpoint was made by this run: the same architecture and pinned settings."""
    where, net = run.checkpoint_dir, run.net
    if state["config"].get("layers") != net.get_config()["layers"]:
        raise CheckpointError(f"{where}: the checkpoint holds another architecture")
    saved = state.get("settings")
    if saved is None:  # written before settings were pinned: the checks of that time
        saved = {k: state[k] for k in ("samples", "batch_size")}
        now = {k: pinned(run)[k] for k in saved}
    else:
        now = pinned(run)
    if diffs := differences(saved, now):
        raise CheckpointError(
            f"{where}: cannot resume: this run differs from the checkpointed one in "
            f"{', '.join(flag(k) for k, _, _ in diffs)}. A resumed run keeps every setting but "
            f"{', '.join(MAY_CHANGE)}; start afresh with another checkpoint folder to change them\\n"
            + describe_differences(diffs)
        )
    if int(state["steps_per_epoch"]) != run.steps or int(state["step"]) > run.steps:
        raise CheckpointError(f"{where}: the checkpoint's steps per epoch do not match this run")
    try:
        _check_shapes(net, state)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{where}: the checkpoint's weights do not fit this network ({exc})") from None


def _check_shapes(net: Any, state: dict) -> None:
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


def restore(run: Run, state: dict) -> list:
    """Load the checkpoint into the network and the run; returns the callbacks' states."""
    net = run.net
    try:
        net.set_weights(state["weights"])
        net.optimizer.load_state_dict(state["optimizer"])
        run.seed, run.random = int(state["seed"]), state["random"]
        run.batches.shuffle = bool(state["shuffle"])
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
