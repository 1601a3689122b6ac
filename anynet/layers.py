"""Layers with explicit forward and backward passes, written once against the Array API.

Every layer follows the same contract:

- ``build(input_shape, backend, dtype, rng)`` creates parameters for inputs of shape
  ``(batch, *input_shape)`` and returns the output shape (without the batch axis). ``rng`` is a
  host ``numpy.random.Generator`` used for initial weights, so the same seed gives the same
  weights on every backend.
- ``forward(x, training)`` returns the output and keeps what ``backward`` needs.
- ``backward(grad_out, need_input_grad=True)`` stores parameter gradients in ``self.grads``
  (same keys as ``self.params``) and returns the gradient with respect to the input (or ``None``
  when ``need_input_grad`` is false: the first layer of a network skips that matmul).
- ``get_config()`` returns the constructor arguments, so a model can be rebuilt from a file.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "Layer",
    "Dense",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Dropout",
    "Flatten",
    "layer_from_config",
    "LAYERS",
]


class Layer:
    """Base class: a layer without parameters that passes its input through."""

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self.backend = None
        self.xp = None
        self.dtype = None
        self.input_shape: tuple | None = None

    # ---- construction
    def build(self, input_shape: tuple, backend, dtype, rng: np.random.Generator) -> tuple:
        self.clear_cache()  # nothing kept from an earlier build (maybe another backend)
        self.backend, self.xp, self.dtype = backend, backend.xp, dtype
        self.input_shape = tuple(input_shape)
        return self.output_shape(self.input_shape)

    def output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {}

    # ---- passes
    def forward(self, x, training: bool = False):
        raise NotImplementedError

    def backward(self, grad, need_input_grad: bool = True):
        raise NotImplementedError

    def clear_cache(self) -> None:
        """Drop the activations kept for backward (before saving or moving a model)."""
        for name in [k for k in vars(self) if k.startswith("_cache")]:
            setattr(self, name, None)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------- Dense


class Dense(Layer):
    """Fully connected layer ``y = x @ W + b``.

    Args:
        units: number of outputs.
        init: ``"he"`` (normal, std sqrt(2/fan_in): for ReLU-like activations), ``"glorot"``
            (uniform, limit sqrt(6/(fan_in+fan_out)): for tanh/sigmoid), or ``"lecun"``.
        use_bias: add a bias vector.
    """

    def __init__(self, units: int, init: str = "he", use_bias: bool = True):
        super().__init__()
        if int(units) < 1:
            raise ValueError(f"Dense needs at least one unit, got {units}")
        if init not in ("he", "glorot", "lecun"):
            raise ValueError(f"unknown init {init!r}: use 'he', 'glorot' or 'lecun'")
        self.units, self.init, self.use_bias = int(units), init, bool(use_bias)
        self._cache_x = None

    def get_config(self):
        return {"units": self.units, "init": self.init, "use_bias": self.use_bias}

    def output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense expects flat inputs (batch, features), got per-sample shape {input_shape}; "
                "put a Flatten layer first"
            )
        return (self.units,)

    def build(self, input_shape, backend, dtype, rng):
        out = super().build(input_shape, backend, dtype, rng)
        fan_in, fan_out = input_shape[0], self.units
        if self.init == "he":
            w = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
        elif self.init == "lecun":
            w = rng.normal(0.0, math.sqrt(1.0 / fan_in), size=(fan_in, fan_out))
        else:
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        self.params = {"W": backend.asarray(w, dtype=dtype)}
        if self.use_bias:
            self.params["b"] = backend.asarray(np.zeros(fan_out), dtype=dtype)
        return out

    def forward(self, x, training=False):
        self._cache_x = x if training else None
        y = x @ self.params["W"]
        if self.use_bias:
            y += self.params["b"]
        return y

    def backward(self, grad, need_input_grad=True):
        x = self._cache_x
        self.grads["W"] = x.T @ grad
        if self.use_bias:
            self.grads["b"] = self.xp.sum(grad, axis=0)
        return grad @ self.params["W"].T if need_input_grad else None


# --------------------------------------------------------------------------- activations


class ReLU(Layer):
    """``max(x, 0)``.

    Training keeps the derivative as a 0/1 array of the input's dtype, so the backward pass is
    one multiply: ``where`` with a data-dependent mask is ~7x slower on a CPU (branchy). The
    maximum is taken against a kept array of zeros of the input's shape: NumPy's vectorised
    ``maximum`` loop is used for two arrays but not for an array and a scalar (5x slower).
    """

    def forward(self, x, training=False):
        xp = self.xp
        self._cache_mask = xp.astype(x > 0.0, x.dtype) if training else None
        zeros = getattr(self, "_cache_zeros", None)
        if zeros is None or zeros.shape != x.shape or zeros.dtype != x.dtype:
            zeros = self._cache_zeros = xp.zeros(x.shape, dtype=x.dtype, device=self.backend.device)
        return xp.maximum(x, zeros)

    def backward(self, grad, need_input_grad=True):
        return grad * self._cache_mask


class LeakyReLU(Layer):
    """``x`` for positive inputs, ``alpha * x`` otherwise."""

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        self.alpha = float(alpha)

    def get_config(self):
        return {"alpha": self.alpha}

    def forward(self, x, training=False):
        # slope: 1 for positive inputs, alpha otherwise; y = x * slope, dy/dx = slope
        slope = self.xp.astype(x > 0.0, x.dtype)
        slope *= 1.0 - self.alpha
        slope += self.alpha
        self._cache_slope = slope if training else None
        return x * slope

    def backward(self, grad, need_input_grad=True):
        return grad * self._cache_slope


class Sigmoid(Layer):
    """``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``."""

    def forward(self, x, training=False):
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        y = xp.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
        self._cache_y = y if training else None
        return y

    def backward(self, grad, need_input_grad=True):
        y = self._cache_y
        return grad * y * (1.0 - y)


class Tanh(Layer):
    """Hyperbolic tangent."""

    def forward(self, x, training=False):
        y = self.xp.tanh(x)
        self._cache_y = y if training else None
        return y

    def backward(self, grad, need_input_grad=True):
        y = self._cache_y
        return grad * (1.0 - y * y)


def softmax(x, xp):
    """Row-wise softmax of a 2-D array, shifted by the row maximum for stability."""
    z = xp.exp(x - xp.max(x, axis=1, keepdims=True))
    z /= xp.sum(z, axis=1, keepdims=True)  # in place on our own temporary
    return z


class Softmax(Layer):
    """Row-wise softmax. For classification, prefer a final Dense layer with the fused
    :class:`~anynet.losses.SoftmaxCrossEntropy`, which is faster and more stable."""

    def forward(self, x, training=False):
        y = softmax(x, self.xp)
        self._cache_y = y if training else None
        return y

    def backward(self, grad, need_input_grad=True):
        y = self._cache_y
        return y * (grad - self.xp.sum(grad * y, axis=1, keepdims=True))


# --------------------------------------------------------------------------- regularisation / shape


class Dropout(Layer):
    """Inverted dropout: in training, zero a fraction ``rate`` of inputs and scale the rest by
    ``1 / (1 - rate)``; at inference, pass through. The mask comes from the backend's own
    random source (on the device for CuPy and PyTorch)."""

    def __init__(self, rate: float = 0.5):
        super().__init__()
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.random = None
        self._cache_keep = None

    def get_config(self):
        return {"rate": self.rate}

    def build(self, input_shape, backend, dtype, rng):
        out = super().build(input_shape, backend, dtype, rng)
        self.random = backend.random(int(rng.integers(2**31)))
        return out

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._cache_keep = None
            return x
        # the kept inputs' scale, 1 / (1 - rate), or 0 for dropped ones: one multiply each way
        keep = self.xp.astype(self.random.uniform(x.shape, dtype=x.dtype) >= self.rate, x.dtype)
        keep *= 1.0 / (1.0 - self.rate)
        self._cache_keep = keep
        return x * keep

    def backward(self, grad, need_input_grad=True):
        if self._cache_keep is None:
            return grad
        return grad * self._cache_keep


class Flatten(Layer):
    """Reshape ``(batch, d1, d2, ...)`` to ``(batch, d1 * d2 * ...)``."""

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        return self.xp.reshape(x, (x.shape[0], -1)) if x.ndim != 2 else x

    def backward(self, grad, need_input_grad=True):
        return self.xp.reshape(grad, (grad.shape[0], *self.input_shape))


LAYERS = {cls.__name__: cls for cls in (Dense, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, Dropout, Flatten)}


def layer_from_config(entry: dict) -> Layer:
    """Rebuild a layer from ``{"type": name, "config": {...}}``."""
    try:
        cls = LAYERS[entry["type"]]
    except KeyError:
        raise ValueError(f"unknown layer type {entry.get('type')!r}; known: {sorted(LAYERS)}") from None
    return cls(**entry.get("config", {}))
