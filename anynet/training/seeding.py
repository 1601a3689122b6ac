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

__all__ = [
    "RANDOM_MODES",
    "derive_seed",
    "epoch_random",
    "get_random_state",
    "random_mode",
    "set_random_state",
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
