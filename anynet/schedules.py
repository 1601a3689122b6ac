"""Learning-rate schedules: each maps a position to a factor of the base rate.

Epoch schedules (:class:`Constant`, :class:`StepDecay`, :class:`CosineDecay`, any plain
callable) map ``(epoch, total_epochs)``; the optimizer applies them at the start of every epoch
(``Optimizer.start_epoch``). Step schedules (:class:`LinearWarmup`, :class:`WarmupCosine`,
:class:`OneCycle`) have ``per_step = True`` and map ``(step, total_steps)``, counted over the
whole run (``epoch * steps_per_epoch + step``); the optimizer applies them before every step
(``Optimizer.start_step``). Both are plain host arithmetic: no device work, no sync.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = [
    "SCHEDULES",
    "Constant",
    "CosineDecay",
    "LinearWarmup",
    "OneCycle",
    "StepDecay",
    "WarmupCosine",
    "get_schedule",
    "is_per_step",
]


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


def _cosine(t: float, low: float, high: float = 1.0) -> float:
    """From ``high`` at ``t = 0`` down to ``low`` at ``t = 1`` along half a cosine."""
    t = min(max(t, 0.0), 1.0)
    return low + (high - low) * 0.5 * (1 + math.cos(math.pi * t))


class LinearWarmup:
    """Per step: rise linearly from ``start_factor`` to the base rate over ``warmup_steps``
    steps, then hold it."""

    per_step = True

    def __init__(self, warmup_steps: int = 100, start_factor: float = 0.0):
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps, self.start_factor = int(warmup_steps), float(start_factor)

    def __call__(self, step: int, total_steps: int) -> float:
        if step >= self.warmup_steps:
            return 1.0
        return self.start_factor + (1 - self.start_factor) * (step + 1) / (self.warmup_steps + 1)

    def get_config(self) -> dict:
        return {"type": "warmup", "warmup_steps": self.warmup_steps, "start_factor": self.start_factor}


class WarmupCosine(LinearWarmup):
    """Per step: linear warm-up over ``warmup_steps`` steps, then a cosine down to
    ``min_factor`` times the base rate at the last step of the run."""

    def __init__(self, warmup_steps: int = 100, min_factor: float = 0.0, start_factor: float = 0.0):
        super().__init__(warmup_steps, start_factor)
        self.min_factor = float(min_factor)

    def __call__(self, step: int, total_steps: int) -> float:
        if step < self.warmup_steps:
            return super().__call__(step, total_steps)
        span = max(total_steps - self.warmup_steps - 1, 1)
        return _cosine((step - self.warmup_steps) / span, self.min_factor)

    def get_config(self) -> dict:
        return {**super().get_config(), "type": "warmup_cosine", "min_factor": self.min_factor}


class OneCycle:
    """Per step, Smith's one-cycle policy: the base rate is the peak. Cosine up from
    ``1 / div_factor`` of it over the first ``pct_start`` of the steps, then cosine down to
    ``1 / (div_factor * final_div_factor)`` of it at the last step."""

    per_step = True

    def __init__(self, pct_start: float = 0.3, div_factor: float = 25.0, final_div_factor: float = 1e4):
        if not 0.0 < pct_start < 1.0:
            raise ValueError(f"pct_start must be in (0, 1), got {pct_start}")
        self.pct_start, self.div_factor = float(pct_start), float(div_factor)
        self.final_div_factor = float(final_div_factor)

    def __call__(self, step: int, total_steps: int) -> float:
        start = 1.0 / self.div_factor
        peak = max(round(self.pct_start * total_steps) - 1, 1)
        if step < peak:
            return _cosine(step / peak, 1.0, start)
        return _cosine((step - peak) / max(total_steps - 1 - peak, 1), start / self.final_div_factor)

    def get_config(self) -> dict:
        return {
            "type": "onecycle",
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }


SCHEDULES: dict[str, type] = {
    "constant": Constant,
    "step": StepDecay,
    "cosine": CosineDecay,
    "warmup": LinearWarmup,
    "warmup_cosine": WarmupCosine,
    "onecycle": OneCycle,
}

Schedule = Callable[[int, int], float]


def get_schedule(schedule) -> Schedule:
    """A schedule from an instance, a callable, ``None`` or a name (``"step"``, ``"cosine"``)."""
    if schedule is None:
        return Constant()
    if callable(schedule):
        return schedule
    try:
        return SCHEDULES[str(schedule).replace("-", "_")]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)}") from None


def schedule_name(schedule: Schedule) -> str:
    """The ``type`` a schedule reports in its config (``"custom"`` for a plain callable)."""
    config = getattr(schedule, "get_config", None)
    return str(config()["type"]) if config is not None else "custom"


def is_per_step(schedule) -> bool:
    """Whether ``schedule`` maps ``(step, total_steps)`` (else ``(epoch, total_epochs)``)."""
    return bool(getattr(schedule, "per_step", False))
