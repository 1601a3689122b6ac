"""Optimizers and learning-rate schedules.

An optimizer updates parameters *in place* (the layers keep references to them) from a list of
``(param, grad, decay)`` triples, where ``decay`` says whether weight decay applies (weights
yes, biases no). State arrays (momentum, Adam moments) live on the parameters' device.

Schedules map ``(epoch, total_epochs)`` to a factor of the base learning rate; the Network calls
:meth:`Optimizer.start_epoch` before each epoch.
"""

from __future__ import annotations

import math

from .kernels import kernels_for

__all__ = [
    "Optimizer",
    "SGD",
    "GradientDescent",
    "Adam",
    "AdamW",
    "Constant",
    "StepDecay",
    "CosineDecay",
    "get_optimizer",
    "get_schedule",
]

# Moments smaller than this are set to zero every FLUSH_EVERY steps. Left alone, the moments of
# dead units decay geometrically into float32 subnormals, and arithmetic on subnormals is ~30x
# slower on x86. Values this small cannot move a weight: the update is m / (sqrt(v) + eps) with
# eps >= 1e-8, so |m| < 1e-30 changes a weight by less than lr * 1e-22.
# (Read at each step: benchmarks/speed.py sets FLUSH_EVERY = 0 to measure the slowdown it avoids.)
FLUSH_BELOW = 1e-30
FLUSH_EVERY = 64


# --------------------------------------------------------------------------- schedules


class Constant:
    """The base learning rate throughout."""

    def __call__(self, epoch: int, total_epochs: int) -> float:
        return 1.0

    def get_config(self):
        return {"type": "constant"}


class StepDecay:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size: int = 10, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def __call__(self, epoch, total_epochs):
        return self.gamma ** (epoch // self.step_size)

    def get_config(self):
        return {"type": "step", "step_size": self.step_size, "gamma": self.gamma}


class CosineDecay:
    """Cosine from the base rate down to ``min_factor`` times it over all epochs, after an
    optional linear warm-up of ``warmup`` epochs."""

    def __init__(self, min_factor: float = 0.0, warmup: int = 0):
        self.min_factor, self.warmup = float(min_factor), int(warmup)

    def __call__(self, epoch, total_epochs):
        if epoch < self.warmup:
            return (epoch + 1) / (self.warmup + 1)
        span = max(total_epochs - self.warmup, 1)
        t = min((epoch - self.warmup) / span, 1.0)
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * t))

    def get_config(self):
        return {"type": "cosine", "min_factor": self.min_factor, "warmup": self.warmup}


SCHEDULES = {"constant": Constant, "step": StepDecay, "cosine": CosineDecay}


def get_schedule(schedule):
    """A schedule from an instance, a callable, ``None`` or a name (``"step"``, ``"cosine"``)."""
    if schedule is None:
        return Constant()
    if callable(schedule):
        return schedule
    try:
        return SCHEDULES[schedule]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)}") from None


# --------------------------------------------------------------------------- optimizers


class Optimizer:
    """Base class: learning rate, schedule, weight decay and per-parameter state."""

    uses_scratch = False  # whether _update wants a per-parameter work buffer from the kernels

    def __init__(self, lr: float, weight_decay: float = 0.0, schedule=None):
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.base_lr = self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.schedule = get_schedule(schedule)
        self.state: list[dict] = []
        self.steps = 0
        self.xp = None
        self.fast_kernels = True  # False: the generic Array API kernels even on NumPy

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        self.lr = self.base_lr * self.schedule(epoch, total_epochs)

    @property
    def kernels(self):
        """The hot kernels for the current namespace (NumPy's ``out=`` versions or the
        generic Array API ones; see :mod:`anynet.kernels`)."""
        return kernels_for(self.xp, self.fast_kernels)

    def step(self, triples) -> None:
        """Update each parameter in place from its gradient."""
        if not self.state:
            self.state = [self._new_state(p) for p, _, _ in triples]
        self.steps += 1
        scratch = self._scratch(triples)
        for (param, grad, decay), state, work in zip(triples, self.state, scratch):
            self._update(param, grad, decay, state, work)
        if FLUSH_EVERY and self.steps % FLUSH_EVERY == 0:
            self._flush_subnormals()

    def _new_state(self, param) -> dict:
        return {}

    def _update(self, param, grad, decay, state, scratch) -> None:
        """Update ``param`` in place; ``scratch`` is a work buffer from the kernels (or None)."""
        raise NotImplementedError

    def _scratch(self, triples) -> list:
        """One work buffer per parameter (for kernels that want one), made again whenever the
        state is (a new build, new weights or a move to another backend)."""
        if getattr(self, "_scratch_for", None) is not self.state:
            make = self.kernels.scratch_like if self.uses_scratch else (lambda p: None)
            self._scratch_list = [make(p) for p, _, _ in triples]
            self._scratch_for = self.state
        return self._scratch_list

    def _flush_subnormals(self) -> None:
        kernels = self.kernels
        for state in self.state:
            for arr in state.values():
                kernels.flush_small(arr, FLUSH_BELOW)

    def get_config(self) -> dict:
        sched = getattr(self.schedule, "get_config", lambda: {"type": "custom"})()
        return {"lr": self.base_lr, "weight_decay": self.weight_decay, "schedule": sched}

    def move_state(self, convert) -> None:
        """Apply ``convert`` to every state array (moving the optimizer to another backend)."""
        self.state = [{k: convert(v) for k, v in s.items()} for s in self.state]


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
        return {"velocity": self.xp.zeros_like(param)} if self.momentum else {}

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


def GradientDescent(lr=0.1, schedule=None):
    """Plain (full-batch or mini-batch) gradient descent: SGD without momentum."""
    return SGD(lr=lr, schedule=schedule)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; ``weight_decay`` is L2 added to the gradient."""

    decoupled = False
    uses_scratch = True

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, schedule=None):
        super().__init__(lr, weight_decay, schedule)
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def get_config(self):
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _new_state(self, param):
        return {"m": self.xp.zeros_like(param), "v": self.xp.zeros_like(param)}

    def step(self, triples):
        t = self.steps + 1
        c2 = math.sqrt(1.0 - self.beta2**t)
        # lr * m_hat / (sqrt(v_hat) + eps) == step_size * m / (sqrt(v) + eps * c2)
        self._step_size = self.lr * c2 / (1.0 - self.beta1**t)
        self._eps_t = self.eps * c2
        self._kern = self.kernels
        super().step(triples)

    def _update(self, param, grad, decay, state, scratch):
        if decay and self.weight_decay:
            if self.decoupled:
                param -= (self.lr * self.weight_decay) * param
            else:
                grad = grad + self.weight_decay * param
        self._kern.adam_update(param, grad, state["m"], state["v"], scratch,
                               self.beta1, self.beta2, self._step_size, self._eps_t)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019)."""

    decoupled = True

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2, schedule=None):
        super().__init__(lr, beta1, beta2, eps, weight_decay, schedule)


OPTIMIZERS = {"sgd": SGD, "gd": GradientDescent, "adam": Adam, "adamw": AdamW}


def get_optimizer(optimizer, **kwargs) -> Optimizer:
    """An optimizer from an instance or a name (``"sgd"``, ``"gd"``, ``"adam"``, ``"adamw"``)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    try:
        cls = OPTIMIZERS[str(optimizer).lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}") from None
    return cls(**kwargs)
