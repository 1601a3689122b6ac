"""Learning-rate schedules: each maps ``(epoch, total_epochs)`` to a factor of the base rate.
An optimizer calls its schedule at the start of every epoch (``Optimizer.start_epoch``)."""

from __future__ import annotations

import math
from typing import Callable

__all__ = ["SCHEDULES", "Constant", "CosineDecay", "StepDecay", "get_schedule"]


class Constant:
    """The base learning rate throughout."""

    def __call__(self, epoch: int, total_epochs: int) -> float:
        return 1.0

    def get_config(self) -> dict:
        return {"type": "constant"}


class StepDecay:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size: int = 10, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def __call__(self, epoch: int, total_epochs: int) -> float:
        return self.gamma ** (epoch // self.step_size)

    def get_config(self) -> dict:
        return {"type": "step", "step_size": self.step_size, "gamma": self.gamma}


class CosineDecay:
    """Cosine from the base rate down to ``min_factor`` times it over all epochs, after an
    optional linear warm-up of ``warmup`` epochs."""

    def __init__(self, min_factor: float = 0.0, warmup: int = 0):
        self.min_factor, self.warmup = float(min_factor), int(warmup)

    def __call__(self, epoch: int, total_epochs: int) -> float:
        if epoch < self.warmup:
            return (epoch + 1) / (self.warmup + 1)
        span = max(total_epochs - self.warmup, 1)
        t = min((epoch - self.warmup) / span, 1.0)
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * t))

    def get_config(self) -> dict:
        return {"type": "cosine", "min_factor": self.min_factor, "warmup": self.warmup}


SCHEDULES: dict[str, type] = {"constant": Constant, "step": StepDecay, "cosine": CosineDecay}

Schedule = Callable[[int, int], float]


def get_schedule(schedule) -> Schedule:
    """A schedule from an instance, a callable, ``None`` or a name (``"step"``, ``"cosine"``)."""
    if schedule is None:
        return Constant()
    if callable(schedule):
        return schedule
    try:
        return SCHEDULES[schedule]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)}") from None


def schedule_name(schedule: Schedule) -> str:
    """The ``type`` a schedule reports in its config (``"custom"`` for a plain callable)."""
    config = getattr(schedule, "get_config", None)
    return str(config()["type"]) if config is not None else "custom"
