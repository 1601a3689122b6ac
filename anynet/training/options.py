"""``FitOptions``: the options of :func:`anynet.training.fit` (``Network.fit``) beyond the data,
the epochs and the batch size, checked once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .callbacks import Callback

__all__ = ["FitOptions"]


@dataclass(frozen=True)
class FitOptions:
    """How ``fit`` trains.

    Attributes:
        validation_data: ``(x_val, y_val)`` scored after every epoch (``val_loss``,
            ``val_accuracy``).
        shuffle: reshuffle the training data every epoch.
        seed: seeds the shuffles, augmentation and dropout masks (default: the network's seed
            + 1).
        callbacks: :class:`~anynet.training.Callback` objects.
        augment: ``augment(x_batch, rng)`` transforms each training batch on the device.
        verbose: 0 silent, 1 a progress bar (one line per epoch when stderr is not a terminal),
            2 one line per epoch.
        initial_epoch: the epoch to start at.
        class_weight: ``"balanced"``, ``{class: weight}`` or k weights.
        checkpoint_dir: write a full checkpoint there every ``checkpoint_every`` epochs (and
            every ``checkpoint_steps`` steps, if given) and at Ctrl-C.
        resume: continue from the checkpoint in ``checkpoint_dir`` (``"auto"``: when one exists).
        random: where random numbers are drawn (``"auto"``, ``"host"``, ``"device"``).
        distributed: ``"mpi"``, ``"nccl"`` or an :class:`anynet.distributed.Communicator`.
        settings: what the caller adds to the settings a checkpoint pins (e.g. the data split's).
        compile: run each step as one compiled function (JAX; see :mod:`.compiled`).
    """

    validation_data: Any = None
    shuffle: bool = True
    seed: int | None = None
    callbacks: tuple = ()
    augment: Any = None
    verbose: int = 0
    initial_epoch: int = 0
    class_weight: Any = None
    checkpoint_dir: Path | None = None
    checkpoint_every: int = 1
    checkpoint_steps: int | None = None
    resume: bool | str = False
    random: str = "auto"
    distributed: Any = None
    settings: dict = field(default_factory=dict)
    compile: bool = False

    @classmethod
    def of(cls, options: dict[str, Any], epochs: int) -> FitOptions:
        """The options ``fit`` was given, checked (a TypeError names an unknown one)."""
        known = [f.name for f in dataclasses.fields(cls)]
        if unknown := sorted(set(options) - set(known)):
            raise TypeError(
                f"fit() got unknown option(s) {', '.join(unknown)}; the options are {', '.join(known)}"
            )
        values = dict(options)
        values["callbacks"] = tuple(values.get("callbacks") or ())
        values["settings"] = dict(values.get("settings") or {})
        if values.get("checkpoint_dir") is not None:
            values["checkpoint_dir"] = Path(values["checkpoint_dir"])
        return cls(**values)._checked(epochs)

    def _checked(self, epochs: int) -> FitOptions:
        if int(epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if not 0 <= int(self.initial_epoch) < epochs:
            raise ValueError(f"initial_epoch must be in 0..{epochs - 1}, got {self.initial_epoch}")
        if int(self.checkpoint_every) < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        if self.checkpoint_steps is not None and int(self.checkpoint_steps) < 1:
            raise ValueError(f"checkpoint_steps must be >= 1 or None, got {self.checkpoint_steps}")
        if int(self.verbose) not in (0, 1, 2):
            raise ValueError(
                f"verbose must be 0 (silent), 1 (progress bar) or 2 (one line per epoch), got {self.verbose!r}"
            )
        if self.compile and self.distributed is not None:
            raise ValueError(
                "compile=True (--compile) trains in one process; it does not combine with distributed="
            )
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("resume needs checkpoint_dir: the directory the interrupted run wrote to")
        for c in self.callbacks:
            if not isinstance(c, Callback):
                raise TypeError(f"callbacks must be anynet.training.Callback objects, got {type(c).__name__}")
        return self
