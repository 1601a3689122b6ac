"""Where training's random numbers come from, so that one seed gives one run.

Every epoch draws from generators seeded afresh from ``(seed, epoch, stream)`` through
``numpy.random.SeedSequence``: stream 0 gives the epoch's shuffle and then the augmentation's
draws, stream ``1 + i`` the dropout masks of layer ``i`` (any layer with a ``random``
attribute). An epoch's random numbers therefore depend only on the seed and the epoch number,
so resuming at an epoch boundary needs nothing else; a checkpoint taken inside an epoch also
stores the generators' positions.

``mode="host"`` draws with NumPy's PCG64 on the host and copies the numbers to the device, so
NumPy, PyTorch and array-api-strict runs see identical batches and masks. ``mode="device"``
uses the backend's own generator (CuPy, PyTorch: on the GPU, no host-to-device copy per step,
different numbers). ``"auto"`` (the default) is ``"device"`` on a GPU and ``"host"`` elsewhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Backend, HostRandom
from .errors import CheckpointError

__all__ = [
    "RANDOM_MODES",
    "derive_seed",
    "epoch_random",
    "get_random_state",
    "random_mode",
    "set_random_state",
    "start_epoch",
]

RANDOM_MODES = ("auto", "host", "device")


def derive_seed(seed: int, epoch: int, stream: int) -> int:
    """A 32-bit seed for ``stream`` in ``epoch`` of a run seeded with ``seed``."""
    words = [int(seed) % 2**64, int(epoch), int(stream)]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def random_mode(backend: Backend, mode: str | None) -> str:
    """``"host"`` or ``"device"`` for ``mode`` (``"auto"``: the device generator on a GPU)."""
    mode = "auto" if mode is None else str(mode).lower()
    if mode not in RANDOM_MODES:
        raise ValueError(f"random must be one of {RANDOM_MODES}, got {mode!r}")
    if mode == "auto":
        return "device" if backend.accelerator else "host"
    return mode


def _source(backend: Backend, seed: int, mode: str) -> Any:
    return backend.random(seed) if mode == "device" else HostRandom(backend, seed)


def epoch_random(net, seed: int, epoch: int, mode: str) -> Any:
    """Seed every random layer of ``net`` for ``epoch``; returns the shuffle/augment source."""
    for i, layer in enumerate(net.layers):
        if layer.draws_random:
            layer.random = _source(net.backend, derive_seed(seed, epoch, 1 + i), mode)
    return _source(net.backend, derive_seed(seed, epoch, 0), mode)


def get_random_state(random: Any) -> dict | None:
    """The position of a random source, as JSON-able data and arrays (``None``: not savable)."""
    get_state = getattr(random, "get_state", None)
    return None if get_state is None else get_state()


def set_random_state(random: Any, state: dict | None) -> None:
    """Put a random source back where :func:`get_random_state` found it."""
    if state is not None:
        random.set_state(state)


def start_epoch(run: Any) -> None:
    """The epoch's generators and shuffle for ``run`` (a :class:`~anynet.training.state.Run`),
    put back where a mid-epoch checkpoint left them. Distributed, every rank draws the same
    shuffle, then its own augmentation and dropout streams."""
    run.stream = epoch_random(run.net, run.seed, run.epoch, run.random)
    run.order = run.batches.order(run.stream)
    if run.parallel is not None:
        run.stream = run.parallel.reseed(run.net, run.seed, run.epoch, run.random, run.stream)
    pending, run.pending_random = run.pending_random, None
    mine = _rank_positions(run, pending) if pending else None
    if not mine:
        return
    try:
        set_random_state(run.stream, mine.get("stream"))
        for i, layer in enumerate(run.net.layers):
            if str(i) in mine.get("layers", {}):
                set_random_state(layer.random, mine["layers"][str(i)])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(
            f"{run.checkpoint_dir}: the checkpoint's generator positions are damaged ({exc})"
        ) from None


def _rank_positions(run: Any, pending: dict) -> dict | None:
    """This rank's generator positions in a checkpoint's ``random_state``: its entry of
    ``ranks`` when the checkpoint has one per rank of a group this size; else rank 0 takes the
    top-level positions (a single process, or a checkpoint of an immediate Ctrl-C) and the
    others keep their fresh epoch generators."""
    if run.parallel is None:
        return pending
    comm = run.parallel.comm
    ranks = pending.get("ranks")
    if ranks is not None and len(ranks) == comm.size:
        return ranks[comm.rank]
    return pending if comm.is_main else None
