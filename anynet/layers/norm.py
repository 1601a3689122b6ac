"""Batch normalisation (Ioffe & Szegedy 2015), for dense (N, F) and convolutional (N, C, H, W)
inputs: each feature or channel is normalised over the batch (and the positions).

Training uses the batch's mean and variance and updates running estimates (buffers saved with
the model); inference uses the running estimates, so a prediction does not depend on the rest
of its batch. Training needs at least two values per channel (as in PyTorch): a batch of one
after a Dense layer, or of one 1x1 map, is refused, and the epoch loop drops such a last batch. With ``xhat = (x - mean) / sqrt(var + eps)`` and ``y = gamma * xhat + beta``,
over the ``m`` values each statistic is taken from::

    dgamma = sum(g * xhat)      dbeta = sum(g)
    dx     = gamma / sqrt(var + eps) * (g - dbeta / m - xhat * dgamma / m)

The arithmetic is the backend's (``batch_norm_train``, ``batch_norm_backward`` and
``batch_norm_inference`` in ``anynet/backend/base.py``; NumPy has faster versions).
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

    @property
    def min_batch(self) -> int:
        """2 where each channel has one value per sample (dense inputs, 1x1 maps), else 1."""
        assert self.input_shape is not None
        return 2 if math.prod(self.input_shape[1:]) == 1 else 1

    def _features(self) -> int:
        assert self.input_shape is not None
        return self.input_shape[0]

    def param_shapes(self, input_shape):
        return {"gamma": (input_shape[0],), "beta": (input_shape[0],)}

    def buffer_shapes(self, input_shape):
        return {"mean": (input_shape[0],), "var": (input_shape[0],)}

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"gamma": np.ones(self._features()), "beta": np.zeros(self._features())}

    def init_buffers(self) -> dict[str, np.ndarray]:
        return {"mean": np.zeros(self._features()), "var": np.ones(self._features())}

    def forward(self, x: Array, training: bool = False) -> tuple[Array, Any]:
        b = self.backend
        assert b is not None
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not training:
            mean, var = self.buffers["mean"], self.buffers["var"]
            return b.batch_norm_inference(x, gamma, beta, mean, var, self.eps), None
        m = math.prod(x.shape) // x.shape[1]
        if m < 2:
            raise ValueError(
                f"BatchNorm needs more than one value per channel to train, got inputs of shape "
                f"{tuple(x.shape)}: its batch statistics would be zero (train on batches of 2 or more)"
            )
        y, mean, var, ctx = b.batch_norm_train(x, gamma, beta, self.eps)
        self._update_running(mean, var, m)
        return y, ctx

    def _update_running(self, mean: Array, var: Array, m: int) -> None:
        """New running statistics (new arrays: a concurrent inference pass keeps its own)."""
        unbiased = var * (m / max(m - 1, 1))
        keep = self.momentum
        self.buffers = {
            "mean": keep * self.buffers["mean"] + (1.0 - keep) * mean,
            "var": keep * self.buffers["var"] + (1.0 - keep) * unbiased,
        }

    def backward(self, ctx: Any, grad: Array, need_input_grad: bool = True) -> tuple[Array, Grads]:
        assert self.backend is not None
        dx, dgamma, dbeta = self.backend.batch_norm_backward(ctx, grad, self.params["gamma"])
        return dx, {"gamma": dgamma, "beta": dbeta}
