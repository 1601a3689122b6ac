"""Inverted dropout."""

from __future__ import annotations

from ..backend import Array
from .base import Grads, Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    """In training, zero a fraction ``rate`` of inputs and scale the rest by ``1 / (1 - rate)``;
    at inference, pass through. The mask comes from ``self.random``: the backend's own source,
    seeded from the network's seed when the layer is built, which ``fit`` replaces at the start
    of every epoch with one derived from ``(seed, epoch, layer index)`` (host PCG64 by default,
    so every backend draws the same masks; see :mod:`anynet.training.seeding`)."""

    draws_random = True

    def __init__(self, rate: float = 0.5):
        super().__init__()
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def get_config(self):
        return {"rate": self.rate}

    def forward(self, x: Array, training: bool = False) -> tuple[Array, Array | None]:
        if not training or self.rate == 0.0:
            return x, None
        # the kept inputs' scale, 1 / (1 - rate), or 0 for dropped ones: one multiply each way
        assert self.random is not None
        keep = self.xp.astype(self.random.uniform(x.shape, dtype=x.dtype) >= self.rate, x.dtype)
        keep *= 1.0 / (1.0 - self.rate)
        return x * keep, keep

    def backward(self, ctx: Array | None, grad: Array, need_input_grad: bool = True) -> tuple[Array, Grads]:
        return (grad if ctx is None else grad * ctx), {}
