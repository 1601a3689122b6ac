"""The fully connected layer."""

from __future__ import annotations

import math

import numpy as np

from ..backend import Array
from .base import Grads, Layer

__all__ = ["INITS", "Dense"]

INITS = ("he", "glorot", "lecun")


class Dense(Layer):
    """Fully connected layer ``y = x @ W + b``.

    Args:
        units: number of outputs.
        init: ``"he"`` (normal, std sqrt(2/fan_in): for ReLU-like activations), ``"glorot"``
            (uniform, limit sqrt(6/(fan_in+fan_out)): for tanh/sigmoid), or ``"lecun"``
            (normal, std sqrt(1/fan_in)).
        use_bias: add a bias vector.

    Backward: ``dW = x^T g``, ``db = sum_batch g``, ``dx = g W^T``.
    """

    def __init__(self, units: int, init: str = "he", use_bias: bool = True):
        super().__init__()
        if int(units) < 1:
            raise ValueError(f"Dense needs at least one unit, got {units}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}: use 'he', 'glorot' or 'lecun'")
        self.units, self.init, self.use_bias = int(units), init, bool(use_bias)

    def get_config(self) -> dict:
        return {"units": self.units, "init": self.init, "use_bias": self.use_bias}

    def output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense expects flat inputs (batch, features), got per-sample shape {input_shape}; "
                "put a Flatten layer first"
            )
        return (self.units,)

    decayed = frozenset({"W"})

    def param_shapes(self, input_shape):
        weights = {"W": (input_shape[0], self.units)}
        return {**weights, "b": (self.units,)} if self.use_bias else weights

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        assert self.input_shape is not None
        fan_in, fan_out = self.input_shape[0], self.units
        if self.init == "he":
            w = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
        elif self.init == "lecun":
            w = rng.normal(0.0, math.sqrt(1.0 / fan_in), size=(fan_in, fan_out))
        else:
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        return {"W": w, "b": np.zeros(fan_out)} if self.use_bias else {"W": w}

    def forward(self, x: Array, training: bool = False) -> tuple[Array, Array | None]:
        y = x @ self.params["W"]
        if self.use_bias:
            y += self.params["b"]
        return y, (x if training else None)

    def backward(self, ctx: Array, grad: Array, need_input_grad: bool = True) -> tuple[Array | None, Grads]:
        grads = {"W": ctx.T @ grad}
        if self.use_bias:
            grads["b"] = self.xp.sum(grad, axis=0)
        return (grad @ self.params["W"].T if need_input_grad else None), grads
