"""The Layer contract.

A layer is bound to a backend once and is then a pure function of its parameters:

- ``build(backend, input_shape, dtype=..., rng=...)`` creates the parameters for inputs of
  shape ``(batch, *input_shape)`` and returns the output shape (without the batch axis).
  Initial weights are drawn on the host from ``rng`` (a ``numpy.random.Generator``), so one seed
  gives the same weights on every backend.
- ``forward(x, training)`` returns ``(y, ctx)``: the output and what the backward pass needs
  (``None`` when not training). Nothing is stored on the layer, so several threads can run one
  model at once.
- ``backward(ctx, grad, need_input_grad)`` returns ``(grad_input, grads)``: the gradient with
  respect to the input (``None`` when not needed: a network's first layer skips that matmul) and
  a dict of parameter gradients with the keys of ``params``.
- ``get_config()`` returns the constructor arguments, so a model can be rebuilt from a file.
- ``param_shapes(input_shape)`` and ``buffer_shapes(input_shape)`` declare the shapes of the
  parameters and buffers for inputs of that shape, without allocating them: ``build`` holds
  ``init_params`` to them, and a model file's architecture is checked with them
  (:mod:`anynet.io.architecture`).
- ``decayed``: the names of the parameters weight decay applies to (weights, not biases or
  normalisation scales).
- ``draws_random``: the layer draws random numbers in training (Dropout); its ``random`` source
  is seeded at ``build`` and reseeded by ``fit`` every epoch (:mod:`anynet.training.seeding`).
- ``min_batch``: the fewest samples a training batch may hold (BatchNorm on one value per
  channel needs two).

Parameters (``params``) are what the optimizer trains. Some layers also keep ``buffers``:
arrays that are saved with the model but not trained (BatchNorm's running statistics); a
training-mode forward pass may replace them, an inference pass never does.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..backend import Array, Backend, RandomSource, Shape

__all__ = ["Grads", "Layer"]

Grads = dict[str, Array]


class Layer:
    """Base class: a layer without parameters. Subclasses override ``forward`` and
    ``backward``; layers with parameters also override ``param_shapes`` and ``init_params``
    (and, with buffers, ``buffer_shapes`` and ``init_buffers``)."""

    #: parameters weight decay applies to
    decayed: ClassVar[frozenset[str]] = frozenset()
    #: the layer draws random numbers in training, from ``self.random``
    draws_random: ClassVar[bool] = False

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.buffers: dict[str, Array] = {}
        self.backend: Backend | None = None
        self.xp: Any = None
        self.dtype: Any = None
        self.input_shape: Shape | None = None
        self.random: RandomSource | None = None

    # ------------------------------------------------------------------ construction
    def build(
        self, backend: Backend, input_shape: Shape, *, dtype=None, rng: np.random.Generator | None = None
    ) -> Shape:
        """Bind the layer to ``backend`` and create its parameters (drawn on the host from
        ``rng``, after the seed of its random source if it has one); returns the output shape."""
        self.backend, self.xp, self.dtype = backend, backend.xp, backend.float_dtype(dtype)
        self.input_shape = tuple(int(d) for d in input_shape)
        out = self.output_shape(self.input_shape)
        rng = np.random.default_rng(0) if rng is None else rng
        if self.draws_random:
            self.random = backend.random(int(rng.integers(2**31)))
        host = _declared(self, "init_params", self.init_params(rng), self.param_shapes(self.input_shape))
        buffers = _declared(self, "init_buffers", self.init_buffers(), self.buffer_shapes(self.input_shape))
        with backend.activate():
            self.params = {name: backend.asarray(value, dtype=self.dtype) for name, value in host.items()}
            self.buffers = {name: backend.asarray(value, dtype=self.dtype) for name, value in buffers.items()}
        return out

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        """The shape of each parameter for per-sample inputs of ``input_shape`` (none here)."""
        return {}

    def buffer_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        """The shape of each buffer for per-sample inputs of ``input_shape`` (none here)."""
        return {}

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Initial parameters as host arrays, of the shapes ``param_shapes`` declares."""
        return {}

    def init_buffers(self) -> dict[str, np.ndarray]:
        """Initial buffers as host arrays, of the shapes ``buffer_shapes`` declares."""
        return {}

    @property
    def state(self) -> dict[str, Array]:
        """Everything saved with the model: parameters and buffers."""
        return {**self.params, **self.buffers}

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    @property
    def min_batch(self) -> int:
        """The fewest samples a training batch may hold (1; BatchNorm on one value per
        channel needs 2). The epoch loop drops a smaller last batch."""
        return 1

    def get_config(self) -> dict:
        return {}

    # ------------------------------------------------------------------ passes
    def forward(self, x: Array, training: bool = False) -> tuple[Array, Any]:
        raise NotImplementedError

    def backward(self, ctx: Any, grad: Array, need_input_grad: bool = True) -> tuple[Array | None, Grads]:
        raise NotImplementedError

    def __call__(self, x: Array) -> Array:
        """Inference: the output alone."""
        return self.forward(x, training=False)[0]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _declared(layer: Layer, made_by: str, arrays: dict[str, np.ndarray], shapes: dict[str, Shape]) -> dict:
    """``arrays``, checked against the shapes the layer declares for them."""
    made = {name: tuple(np.shape(a)) for name, a in arrays.items()}
    if made != {name: tuple(shape) for name, shape in shapes.items()}:
        raise TypeError(f"{type(layer).__name__}.{made_by} made {made}, but the layer declares {shapes}")
    return arrays
