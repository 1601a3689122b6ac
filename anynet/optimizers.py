"""Optimizers: each is bound to a backend (``bind``), owns its per-parameter state (momentum,
Adam moments, keyed by parameter name) and its ``reset()``, and updates parameters *in place*
(the layers keep references to them) from ``(name, param, grad, decay)`` entries, where
``decay`` says whether weight decay applies (weights yes, biases no).

Learning-rate schedules are in :mod:`anynet.schedules`; ``start_epoch`` applies one.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from .backend import Array, Backend
from .schedules import CosineDecay, StepDecay, get_schedule, schedule_name

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


class Optimizer:
    """Base class: learning rate, schedule, weight decay and per-parameter state."""

    def __init__(self, lr: float, weight_decay: float = 0.0, schedule=None):
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.base_lr = self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.schedule = get_schedule(schedule)
        self.backend: Backend | None = None
        self.reset()

    # ------------------------------------------------------------------ binding and state
    def bind(self, backend: Backend) -> Optimizer:
        """Run on ``backend`` from now on, moving any state there; returns the optimizer."""
        if self.backend is not None and backend != self.backend:
            self.state = {key: {k: backend.asarray(v) for k, v in s.items()}
                          for key, s in self.state.items()}
            self.scratch = {}
        self.backend = backend
        return self

    def reset(self) -> None:
        """Forget all state (new weights): momentum, moments and the step count."""
        self.state: dict[str, dict[str, Array]] = {}
        self.scratch: dict[str, Array | None] = {}
        self.steps = 0

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        self.lr = self.base_lr * self.schedule(epoch, total_epochs)

    # ------------------------------------------------------------------ stepping
    def step(self, updates: Iterable[Update]) -> None:
        """Update each parameter in place from its gradient."""
        if self.backend is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a backend: call bind(backend)")
        self.steps += 1
        self._prepare()
        for name, param, grad, decay in updates:
            if name not in self.state:
                self.state[name] = self._new_state(param)
            if name not in self.scratch:  # also remade after a move to another backend
                self.scratch[name] = self._new_scratch(param)
            self._update(param, grad, decay, self.state[name], self.scratch[name])
        if FLUSH_EVERY and self.steps % FLUSH_EVERY == 0:
            self._flush_subnormals()

    def _prepare(self) -> None:
        """Per-step constants (Adam's bias corrections)."""

    def _new_state(self, param: Array) -> dict[str, Array]:
        return {}

    def _new_scratch(self, param: Array) -> Array | None:
        return None

    def _update(self, param, grad, decay, state, scratch) -> None:
        """Update ``param`` in place; ``scratch`` is a work buffer from the backend (or None)."""
        raise NotImplementedError

    def _flush_subnormals(self) -> None:
        assert self.backend is not None
        for state in self.state.values():
            for arr in state.values():
                self.backend.flush_small(arr, FLUSH_BELOW)

    def get_config(self) -> dict:
        sched = getattr(self.schedule, "get_config", lambda: {"type": "custom"})()
        return {"lr": self.base_lr, "weight_decay": self.weight_decay, "schedule": sched}

    @property
    def schedule_name(self) -> str:
        return schedule_name(self.schedule)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum and L2 weight decay.

    With ``momentum=0`` this is plain gradient descent: full batch when the network is fitted
    with ``batch_size=None``, mini-batch otherwise.
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, schedule=None):
        super().__init__(lr, weight_decay, schedule)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}

    def _new_state(self, param):
        return {"velocity": self.backend.xp.zeros_like(param)} if self.momentum else {}

    def _update(self, param, grad, decay, state, scratch):
        if decay and self.weight_decay:
            grad = grad + self.weight_decay * param
        if not self.momentum:
            param -= self.lr * grad
            return
        v = state["velocity"]
        v *= self.momentum
        v += grad
        if self.nesterov:
            param -= self.lr * (grad + self.momentum * v)
        else:
            param -= self.lr * v


def GradientDescent(lr=0.1, schedule=None) -> SGD:
    """Plain (full-batch or mini-batch) gradient descent: SGD without momentum."""
    return SGD(lr=lr, schedule=schedule)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; ``weight_decay`` is L2 added to the gradient."""

    decoupled = False

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, schedule=None):
        super().__init__(lr, weight_decay, schedule)
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def get_config(self):
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _new_state(self, param):
        xp = self.backend.xp
        return {"m": xp.zeros_like(param), "v": xp.zeros_like(param)}

    def _new_scratch(self, param):
        return self.backend.scratch_like(param)

    def _prepare(self) -> None:
        t = self.steps
        c2 = math.sqrt(1.0 - self.beta2**t)
        # lr * m_hat / (sqrt(v_hat) + eps) == step_size * m / (sqrt(v) + eps * c2)
        self._step_size = self.lr * c2 / (1.0 - self.beta1**t)
        self._eps_t = self.eps * c2

    def _update(self, param, grad, decay, state, scratch):
        if decay and self.weight_decay:
            if self.decoupled:
                param -= (self.lr * self.weight_decay) * param
            else:
                grad = grad + self.weight_decay * param
        self.backend.adam_update(param, grad, state["m"], state["v"], scratch,
                                 self.beta1, self.beta2, self._step_size, self._eps_t)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019)."""

    decoupled = True

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2, schedule=None):
        super().__init__(lr, beta1, beta2, eps, weight_decay, schedule)


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
