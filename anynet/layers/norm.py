"""Batch normalisation (Ioffe & Szegedy 2015), for dense (N, F) and convolutional (N, C, H, W)
inputs: each feature or channel is normalised over the batch (and the positions).

Training uses the batch's mean and variance and updates running estimates (buffers saved with
the model); inference uses the running estimates, so a prediction does not depend on the rest
of its batch. With ``xhat = (x - mean) / sqrt(var + eps)`` and ``y = gamma * xhat + beta``,
over the ``m`` values each statistic is taken from::

    dgamma = sum(g * xhat)      dbeta = sum(g)
    dx     = gamma / sqrt(var + eps) * (g - dbeta / m - xhat * dgamma / m)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import Array
from .base import Grads, Layer

__all__ = ["BatchNorm"]


class BatchNorm(Layer):
    """Normalise each feature (dense inputs) or channel (image inputs), then scale and shift.

    Args:
        momentum: running statistics are ``momentum * running + (1 - momentum) * batch``.
        eps: added to the variance.
    """

    def __init__(self, momentum: float = 0.9, eps: float = 1e-5):
        super().__init__()
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not float(eps) > 0.0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.momentum, self.eps = float(momentum), float(eps)

    def get_config(self) -> dict:
        return {"momentum": self.momentum, "eps": self.eps}

    def output_shape(self, input_shape):
        if len(input_shape) not in (1, 3):
            raise ValueError(
                f"BatchNorm expects (features,) or (channels, height, width) inputs, "
                f"got per-sample shape {input_shape}"
            )
        return tuple(input_shape)

    def _features(self) -> int:
        assert self.input_shape is not None
        return self.input_shape[0]

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"gamma": np.ones(self._features()), "beta": np.zeros(self._features())}

    def init_buffers(self) -> dict[str, np.ndarray]:
        return {"mean": np.zeros(self._features()), "var": np.ones(self._features())}

    def _axes_and_shape(self, x: Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The axes statistics are taken over, and the shape per-feature arrays broadcast as."""
        if x.ndim == 2:
            return (0,), (1, x.shape[1])
        return (0, 2, 3), (1, x.shape[1], 1, 1)

    def forward(self, x: Array, training: bool = False) -> tuple[Array, Any]:
        xp = self.xp
        axes, shape = self._axes_and_shape(x)
        gamma = xp.reshape(self.params["gamma"], shape)
        beta = xp.reshape(self.params["beta"], shape)
        if not training:
            scale = gamma / xp.sqrt(xp.reshape(self.buffers["var"], shape) + self.eps)
            return (x - xp.reshape(self.buffers["mean"], shape)) * scale + beta, None
        mean = xp.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        var = xp.mean(centred * centred, axis=axes, keepdims=True)
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        xhat = centred * inv_std
        self._update_running(
            xp.reshape(mean, (-1,)), xp.reshape(var, (-1,)), math.prod(x.shape) // x.shape[1]
        )
        return xhat * gamma + beta, (xhat, inv_std, axes, shape)

    def _update_running(self, mean: Array, var: Array, m: int) -> None:
        """New running statistics (new arrays: a concurrent inference pass keeps its own)."""
        unbiased = var * (m / max(m - 1, 1))
        keep = self.momentum
        self.buffers = {
            "mean": keep * self.buffers["mean"] + (1.0 - keep) * mean,
            "var": keep * self.buffers["var"] + (1.0 - keep) * unbiased,
        }

    def backward(self, ctx: Any, grad: Array, need_input_grad: bool = True) -> tuple[Array, Grads]:
        xp = self.xp
        xhat, inv_std, axes, shape = ctx
        dbeta = xp.sum(grad, axis=axes, keepdims=True)
        dgamma = xp.sum(grad * xhat, axis=axes, keepdims=True)
        m = math.prod(grad.shape) // grad.shape[1]
        gamma = xp.reshape(self.params["gamma"], shape)
        dx = (gamma * inv_std) * (grad - dbeta * (1.0 / m) - xhat * (dgamma * (1.0 / m)))
        return dx, {"gamma": xp.reshape(dgamma, (-1,)), "beta": xp.reshape(dbeta, (-1,))}
