"""Optimizers: each is bound to a backend (``bind``), owns its per-parameter state (momentum,
Adam moments, keyed by parameter name) and its ``reset()``, and computes each parameter's new
value from ``(name, param, grad, decay)`` entries, where ``decay`` says whether weight decay
applies (weights yes, biases no). ``step`` returns the new parameters by name; on libraries that
update in place they are the arrays given, updated, and on immutable ones (JAX) new arrays, which
the network stores (``Network.apply_updates``).

Learning-rate schedules are in :mod:`anynet.schedules`: ``start_epoch`` applies an epoch
schedule, ``start_step`` a per-step one; ``lr_scale`` (1 unless a callback such as
``ReduceLROnPlateau`` lowers it) multiplies either. ``clip_norm`` rescales all gradients of a
step together so that their global L2 norm is at most ``clip_norm``; the norm is computed and
applied on the device (never read back). ``state_dict()`` / ``load_state_dict()`` give and take
a host copy of everything a checkpoint needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .backend import Array, Backend, to_numpy
from .schedules import CosineDecay, StepDecay, get_schedule, is_per_step, schedule_name

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "AdamW",
    "CosineDecay",
    "GradientDescent",
    "Optimizer",
    "StepDecay",
    "Update",
    "get_optimizer",
]

# Moments smaller than this are set to zero every FLUSH_EVERY steps. Left alone, the moments of
# dead units decay geometrically into float32 subnormals, and arithmetic on subnormals is ~30x
# slower on x86. Values this small cannot move a weight: the update is m / (sqrt(v) + eps) with
# eps >= 1e-8, so |m| < 1e-30 changes a weight by less than lr * 1e-22.
# (Read at each step: benchmarks/speed.py sets FLUSH_EVERY = 0 to measure the slowdown it avoids.)
FLUSH_BELOW = 1e-30
FLUSH_EVERY = 64

#: one parameter's update: its name, the parameter, its gradient, whether weight decay applies
Update = tuple[str, Array, Array, bool]

_POSITIVE = (lambda v: v > 0, "a finite number > 0")
_NON_NEGATIVE = (lambda v: v >= 0, "a finite number >= 0")
_FRACTION = (lambda v: 0 <= v < 1, "a number in [0, 1)")


def _setting(name: str, value, rule, alternative: str = "") -> float:
    """``value`` as a float when it is finite and fits ``rule`` (a test and what it asks for);
    otherwise a ``ValueError`` naming the setting."""
    valid, expected = rule
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and valid(number)):
        raise ValueError(f"{name} must be {expected}{alternative}, got {value!r}")
    return number


class Optimizer:
    """Base class: learning rate, schedule, weight decay and per-parameter state."""

    def __init__(self, lr: float, weight_decay: float = 0.0, schedule=None, clip_norm: float | None = None):
        self.base_lr = self.lr = _setting("lr", lr, _POSITIVE)
        self.weight_decay = _setting("weight_decay", weight_decay, _NON_NEGATIVE)
        self.clip_norm = (
            None if clip_norm is None else _setting("clip_norm", clip_norm, _POSITIVE, " or None")
        )
        self.lr_scale = 1.0
        self.schedule = get_schedule(schedule)
        self.backend: Backend | None = None
        self._clip_limit: Array | None = None
        self.state: dict[str, dict[str, Array]] = {}
        self.scratch: dict[str, Array | None] = {}
        self.steps = 0

    # ------------------------------------------------------------------ binding and state
    def bind(self, backend: Backend) -> Optimizer:
        """Run on ``backend`` from now on, moving any state there; returns the optimizer."""
        if self.backend is not None and backend != self.backend:
            self.state = {key: {k: backend.asarray(v) for k, v in s.items()} for key, s in self.state.items()}
            self.scratch = {}
        self.backend = backend
        self._clip_limit = None
        return self

    @property
    def bound(self) -> Backend:
        """The backend the optimizer is bound to (``bind`` must have been called)."""
        if self.backend is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a backend: call bind(backend)")
        return self.backend

    def reset(self) -> None:
        """Forget all state (new weights): momentum, moments and the step count."""
        self.state = {}
        self.scratch = {}
        self.steps = 0

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        """Apply an epoch schedule (a per-step one waits for ``start_step``)."""
        if not is_per_step(self.schedule):
            self.lr = self.base_lr * self.lr_scale * self.schedule(epoch, total_epochs)

    def start_step(self, step: int, total_steps: int) -> None:
        """Apply a per-step schedule at ``step`` of ``total_steps`` (counted over the run)."""
        if is_per_step(self.schedule):
            self.lr = self.base_lr * self.lr_scale * self.schedule(step, total_steps)

    def state_dict(self) -> dict:
        """A host copy of the state: step count, rates and every slot (``{"0.W": {"m": ...}}``)."""
        slots = {name: {k: np.array(to_numpy(v)) for k, v in s.items()} for name, s in self.state.items()}
        return {
            "type": type(self).__name__,
            "steps": self.steps,
            "lr": self.lr,
            "base_lr": self.base_lr,
            "lr_scale": self.lr_scale,
            "slots": slots,
        }

    def load_state_dict(self, state: dict) -> None:
        """Take back what :meth:`state_dict` gave (on this optimizer's backend)."""
        if state.get("type", type(self).__name__) != type(self).__name__:
            raise ValueError(f"optimizer state of a {state['type']}, not of a {type(self).__name__}")
        assert self.backend is not None
        self.state = {
            name: {k: self.bound.asarray(v) for k, v in s.items()} for name, s in state["slots"].items()
        }
        self.scratch = {}
        self.steps = int(state["steps"])
        self.lr, self.base_lr = float(state["lr"]), float(state["base_lr"])
        self.lr_scale = float(state["lr_scale"])

    # ------------------------------------------------------------------ stepping
    def step(self, updates: Iterable[Update]) -> dict[str, Array]:
        """Each parameter's new value from its gradient, by name (the array given, updated in
        place, where the library allows it): :meth:`begin_step`, :meth:`apply`, :meth:`end_step`."""
        self.begin_step()
        new = self.apply(updates)
        self.end_step()
        return new

    def begin_step(self) -> None:
        """The host side of a step before its arithmetic: the step count and the per-step
        constants (Adam's bias corrections)."""
        if self.backend is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a backend: call bind(backend)")
        self.steps += 1
        self._prepare()

    def apply(self, updates: Iterable[Update]) -> dict[str, Array]:
        """The arithmetic of a step (clipping, then each parameter's update): array work only,
        so that a compiled step (:mod:`anynet.training.compiled`) can trace it."""
        if self.clip_norm is not None:
            updates = self._clipped(list(updates))
        new = {}
        for name, param, grad, decay in updates:
            if name not in self.state:
                self.state[name] = self._new_state(param)
            if name not in self.scratch:  # also remade after a move to another backend
                self.scratch[name] = self._new_scratch(param)
            new[name] = self._update(param, grad, decay, self.state[name], self.scratch[name])
        return new

    def end_step(self) -> None:
        """After a step: every :data:`FLUSH_EVERY` steps, the subnormal moments flushed."""
        if FLUSH_EVERY and self.steps % FLUSH_EVERY == 0:
            self._flush_subnormals()

    def step_constants(self) -> dict[str, float]:
        """The host numbers a step's arithmetic reads (learning rate, bias corrections), which
        a compiled step takes as arguments instead of constants."""
        return {"lr": self.lr}

    def _clipped(self, updates: list[Update]) -> list[Update]:
        """The updates with every gradient scaled by ``min(1, clip_norm / global_norm)``,
        computed on the device."""
        if not updates:
            return updates
        xp = self.bound.xp
        total = None
        for _, _, grad, _ in updates:
            flat = xp.reshape(grad, (-1,))
            total = xp.vecdot(flat, flat) if total is None else total + xp.vecdot(flat, flat)
        dtype = updates[0][2].dtype
        if self._clip_limit is None or self._clip_limit.dtype != dtype:
            self._clip_limit = self.bound.asarray(np.asarray(self.clip_norm), dtype=dtype)
        scale = self._clip_limit / xp.maximum(xp.sqrt(total), self._clip_limit)
        return [(name, param, grad * scale, decay) for name, param, grad, decay in updates]

    def _prepare(self) -> None:
        """Per-step constants (Adam's bias corrections)."""

    def _new_state(self, param: Array) -> dict[str, Array]:
        return {}

    def _new_scratch(self, param: Array) -> Array | None:
        return None

    def _update(self, param, grad, decay, state, scratch) -> Array:
        """``param``'s new value (``state``'s entries replaced by theirs); ``scratch`` is a work
        buffer from the backend (or None)."""
        raise NotImplementedError

    def _flush_subnormals(self) -> None:
        assert self.backend is not None
        for state in self.state.values():
            for key, arr in state.items():
                state[key] = self.backend.flush_small(arr, FLUSH_BELOW)

    def get_config(self) -> dict:
        sched = getattr(self.schedule, "get_config", lambda: {"type": "custom"})()
        config = {"lr": self.base_lr, "weight_decay": self.weight_decay, "schedule": sched}
        if self.clip_norm is not None:
            config["clip_norm"] = self.clip_norm
        return config

    @property
    def schedule_name(self) -> str:
        return schedule_name(self.schedule)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum and L2 weight decay.

    With ``momentum=0`` this is plain gradient descent: full batch when the network is fitted
    with ``batch_size=None``, mini-batch otherwise.
    """

    def __init__(
        self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, schedule=None, clip_norm=None
    ):
        super().__init__(lr, weight_decay, schedule, clip_norm)
        self.momentum, self.nesterov = _setting("momentum", momentum, _FRACTION), bool(nesterov)
        if nesterov and self.momentum == 0.0:
            raise ValueError("Nesterov momentum needs momentum > 0")

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}

    def _new_state(self, param):
        return {"velocity": self.bound.xp.zeros_like(param)} if self.momentum else {}

    def _update(self, param, grad, decay, state, scratch):
        # augmented assignments update in place, or make new arrays on an immutable library
        if decay and self.weight_decay:
            grad = grad + self.weight_decay * param
        if not self.momentum:
            param -= self.lr * grad
            return param
        v = state["velocity"]
        v *= self.momentum
        v += grad
        state["velocity"] = v
        if self.nesterov:
            param -= self.lr * (grad + self.momentum * v)
        else:
            param -= self.lr * v
        return param


def GradientDescent(lr=0.1, schedule=None, clip_norm=None) -> SGD:
    """Plain (full-batch or mini-batch) gradient descent: SGD without momentum."""
    return SGD(lr=lr, schedule=schedule, clip_norm=clip_norm)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; ``weight_decay`` is L2 added to the gradient."""

    decoupled = False

    def __init__(
        self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, schedule=None, clip_norm=None
    ):
        super().__init__(lr, weight_decay, schedule, clip_norm)
        self.beta1 = _setting("beta1", beta1, _FRACTION)
        self.beta2 = _setting("beta2", beta2, _FRACTION)
        self.eps = _setting("eps", eps, _POSITIVE)

    def get_config(self):
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _new_state(self, param):
        xp = self.bound.xp
        return {"m": xp.zeros_like(param), "v": xp.zeros_like(param)}

    def _new_scratch(self, param):
        return self.bound.scratch_like(param)

    def _prepare(self) -> None:
        t = self.steps
        c2 = math.sqrt(1.0 - self.beta2**t)
        # lr * m_hat / (sqrt(v_hat) + eps) == step_size * m / (sqrt(v) + eps * c2)
        self._step_size = self.lr * c2 / (1.0 - self.beta1**t)
        self._eps_t = self.eps * c2

    def step_constants(self) -> dict[str, float]:
        return {**super().step_constants(), "_step_size": self._step_size, "_eps_t": self._eps_t}

    def _update(self, param, grad, decay, state, scratch):
        if decay and self.weight_decay:
            if self.decoupled:
                param -= (self.lr * self.weight_decay) * param
            else:
                grad = grad + self.weight_decay * param
        param, state["m"], state["v"] = self.bound.adam_update(
            param, grad, state["m"], state["v"], scratch, self.beta1, self.beta2, self._step_size, self._eps_t
        )
        return param


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019)."""

    decoupled = True

    def __init__(
        self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2, schedule=None, clip_norm=None
    ):
        super().__init__(lr, beta1, beta2, eps, weight_decay, schedule, clip_norm)


OPTIMIZERS: dict[str, Any] = {"sgd": SGD, "gd": GradientDescent, "adam": Adam, "adamw": AdamW}


def get_optimizer(optimizer, **kwargs) -> Optimizer:
    """An optimizer from an instance or a name (``"sgd"``, ``"gd"``, ``"adam"``, ``"adamw"``)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    try:
        cls = OPTIMIZERS[str(optimizer).lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}") from None
    opt: Optimizer = cls(**kwargs)
    return opt
