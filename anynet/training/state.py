"""``Run``: what every epoch of one ``fit`` call shares, and where it stands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backend import Array
from .batches import Batches
from .callbacks import CallbackList
from .divergence import DivergenceGuard
from .options import FitOptions

__all__ = ["Run"]


@dataclass
class Run:
    """One ``fit`` call: the network, its data and settings, and how far it has come.

    ``epoch`` and ``step`` (steps done in ``epoch``) say where the run stands; ``sums`` holds
    the device sums of the loss and of the correct answers over those steps; ``stream`` is the
    epoch's shuffle and augmentation source, ``order`` its shuffle.
    """

    net: Any
    options: FitOptions
    batches: Batches
    validation: tuple[Array, Array] | None
    epochs: int
    seed: int
    random: str
    loss: Any  # the class-weighted training loss (None: the network's own)
    callbacks: CallbackList
    guard: DivergenceGuard
    parallel: Any = None  # an anynet.distributed.DataParallel, when distributed
    compiled: Any = None  # a CompiledStep, with compile=True
    epoch: int = 0
    step: int = 0
    sums: tuple | None = None
    stream: Any = None
    order: Any = None
    pending_random: dict | None = None  # generator positions to restore (mid-epoch resume)
    logged: bool = False  # the epoch's logs are in the history
    interrupted: bool = False  # Ctrl-C asked to stop after the current step
    settings: dict | None = None  # what a checkpoint pins (anynet.training.settings)

    @property
    def steps(self) -> int:
        return self.batches.steps

    @property
    def shuffle(self) -> bool:
        return self.batches.shuffle

    @property
    def checkpoint_dir(self) -> Path | None:
        return self.options.checkpoint_dir

    @property
    def mid_epoch(self) -> bool:
        """Some of the epoch's steps are done and its logs are not yet in the history."""
        return self.step > 0 and not self.logged

    @property
    def is_main(self) -> bool:
        """The process that prints and writes files (rank 0; the only one when not distributed)."""
        return self.parallel is None or self.parallel.comm.is_main
