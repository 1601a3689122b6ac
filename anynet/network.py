"""Network: a sequence of layers, a loss and an optimizer, bound to one backend.

The network runs the passes: ``forward`` (inference, writes no state, safe from several threads
at once), ``forward_train`` / ``backward`` / ``train_step`` (one optimisation step), and
``evaluate`` / ``predict`` / ``predict_proba``. Every input goes through the one gate in
:mod:`anynet.inputs`. The epoch loop is :func:`anynet.training.fit`, which ``Network.fit`` runs;
:func:`load_model` makes a network of a model file (checked by :mod:`anynet.io`), which
:func:`anynet.io.save_model` wrote.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backend import Array, Backend, Shape, get_backend, to_numpy
from .inputs import to_inputs, to_targets
from .io.format import ModelFileError, read_model
from .layers import Layer, layer_from_config
from .losses import Loss, get_loss
from .optimizers import Adam, Optimizer, Update, get_optimizer
from .record import ModelInfo
from .training.loop import fit

__all__ = ["Network", "load_model"]

#: what ``forward_train`` keeps for ``backward``: one context per layer
Tape = list[Any]


class Network:
    """A feed-forward network.

    Args:
        layers: the layers, first to last. The last one's outputs feed the loss (logits for the
            softmax losses).
        loss: a :class:`~anynet.losses.Loss` or its name.
        optimizer: an :class:`~anynet.optimizers.Optimizer` or its name (default Adam, lr 1e-3).
        backend: a :class:`~anynet.backend.Backend` or its name (``"auto"``: CuPy if a GPU is
            usable, else NumPy).
        dtype: ``"float32"`` (default) or ``"float64"``.
        seed: seeds the initial weights (drawn on the host, so identical on every backend) and
            the shuffles / dropout masks.
        classes: the character of each class index, e.g. ``"0123456789"``.
        input_shape: per-sample input shape; when omitted the first ``fit``/``predict`` sets it.
    """

    def __init__(
        self,
        layers,
        loss: Loss | str = "cross_entropy",
        optimizer=None,
        backend="auto",
        dtype: str = "float32",
        seed: int = 0,
        classes=None,
        input_shape=None,
    ):
        self.layers: list[Layer] = list(layers)
        if not self.layers or not all(isinstance(layer, Layer) for layer in self.layers):
            raise TypeError("a Network needs a non-empty list of anynet.layers.Layer objects")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.loss = get_loss(loss)
        self.optimizer: Optimizer = Adam() if optimizer is None else get_optimizer(optimizer)
        self.dtype_name = dtype
        self.seed = int(seed)
        self.classes = None if classes is None else tuple(str(c) for c in classes)
        self.input_shape: Shape | None = None
        self._output_shape: Shape = ()
        self.history: dict[str, list] = {}
        self.stop_training = False
        self.info = ModelInfo()
        self._bind(get_backend(backend))
        if input_shape is not None:
            self.build(input_shape)

    # ------------------------------------------------------------------ binding and structure
    def _bind(self, backend: Backend) -> None:
        """Run on ``backend``: the one place the network, its loss and optimizer get it."""
        self.backend, self.xp = backend, backend.xp
        self.dtype = backend.float_dtype(self.dtype_name)
        self.loss.bind(backend)
        self.optimizer.bind(backend)

    def use_optimizer(self, optimizer: Optimizer | str) -> None:
        """Train with ``optimizer`` from now on (its state starts empty)."""
        self.optimizer = get_optimizer(optimizer).bind(self.backend)
        self.optimizer.reset()

    @property
    def built(self) -> bool:
        return self.input_shape is not None

    @property
    def num_outputs(self) -> int:
        self._require_built()
        return self._output_shape[0]

    def build(self, input_shape) -> Network:
        """Create all parameters for per-sample inputs of ``input_shape`` (e.g. ``(28, 28)``)."""
        shape = tuple(int(d) for d in input_shape)
        rng = np.random.default_rng(self.seed)
        out = shape
        for layer in self.layers:
            out = layer.build(self.backend, out, dtype=self.dtype, rng=rng)
        if len(out) != 1:
            raise ValueError(f"the last layer must give flat outputs (batch, classes), got {out}")
        if self.classes is not None and len(self.classes) != out[0]:
            raise ValueError(f"{len(self.classes)} class names for a network with {out[0]} outputs")
        self.input_shape, self._output_shape = shape, out
        self.optimizer.reset()
        return self

    def _require_built(self) -> None:
        if not self.built:
            raise RuntimeError("the network has no weights yet: call fit() or build(input_shape) first")

    def parameters(self) -> list[tuple[int, str, Array]]:
        """``(layer_index, name, array)`` for every parameter, in order."""
        return [(i, name, p) for i, layer in enumerate(self.layers) for name, p in layer.params.items()]

    def count_parameters(self) -> int:
        return sum(int(math.prod(p.shape)) for _, _, p in self.parameters())

    def summary(self) -> str:
        self._require_built()
        assert self.input_shape is not None
        lines = [f"Network on {self.backend.spec} ({self.dtype_name}), input {self.input_shape}"]
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            shape = layer.output_shape(shape)
            n = sum(int(math.prod(p.shape)) for p in layer.params.values())
            lines.append(f"  {i:2d} {layer!r:40s} -> {shape}  params {n}")
        lines.append(
            f"  loss {self.loss!r}, optimizer {type(self.optimizer).__name__}, "
            f"{self.count_parameters()} parameters"
        )
        return "\n".join(lines)

    # ------------------------------------------------------------------ configuration and weights
    def get_config(self) -> dict:
        """Architecture and settings (everything but the weights) as plain JSON-able data."""
        return {
            "layers": [{"type": type(layer).__name__, "config": layer.get_config()} for layer in self.layers],
            "loss": self.loss.name,
            **({"loss_options": options} if (options := self.loss.get_config()) else {}),
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "classes": list(self.classes) if self.classes else None,
            "dtype": self.dtype_name,
            "seed": self.seed,
            "optimizer": {"type": type(self.optimizer).__name__, **self.optimizer.get_config()},
        }

    @classmethod
    def from_config(cls, config: dict, backend="cpu", dtype=None) -> Network:
        layers = [layer_from_config(entry) for entry in config["layers"]]
        return cls(
            layers,
            loss=get_loss(config["loss"], config.get("loss_options")),
            backend=backend,
            dtype=dtype or config.get("dtype", "float32"),
            seed=config.get("seed", 0),
            classes=config.get("classes"),
            input_shape=config.get("input_shape"),
        )

    def get_weights(self) -> list[dict]:
        """A host NumPy copy of every layer's parameters and buffers (all a file stores)."""
        return [{k: to_numpy(v).copy() for k, v in layer.state.items()} for layer in self.layers]

    def set_weights(self, weights: list[dict]) -> None:
        """Load parameters (host or any backend arrays) into the built network."""
        self._require_built()
        if len(weights) != len(self.layers):
            raise ValueError(f"weights for {len(weights)} layers, network has {len(self.layers)}")
        for i, (layer, given) in enumerate(zip(self.layers, weights)):
            state = layer.state
            if set(given) != set(state):
                raise ValueError(
                    f"layer {i} ({type(layer).__name__}) has parameters {sorted(state)}, got {sorted(given)}"
                )
            for name, value in given.items():
                home = layer.params if name in layer.params else layer.buffers
                home[name] = self._weight(value, tuple(state[name].shape), f"layer {i} parameter {name!r}")
        self.optimizer.reset()

    def _weight(self, value: Any, want: Shape, what: str) -> Array:
        """A copy of ``value`` on the device, checked to be of shape ``want``. Arrays of this
        backend's library are copied on the device (no round trip through the host: no sync)."""
        own = self.backend.owns(value) and not self.backend.on_host
        value = value if own else np.array(to_numpy(value), copy=True)  # never the caller's memory
        if tuple(value.shape) != want:
            raise ValueError(f"{what} has shape {want}, got {tuple(value.shape)}")
        if not own:
            return self.backend.asarray(value, dtype=self.dtype)
        with self.backend.activate():
            return self.xp.asarray(value, dtype=self.dtype, device=self.backend.device, copy=True)

    def to(self, backend) -> Network:
        """Move weights and optimizer state to another backend (e.g. GPU -> CPU); returns self."""
        target = get_backend(backend)
        if target == self.backend:
            return self
        weights = self.get_weights() if self.built else None
        steps = self.optimizer.steps
        self._bind(target)  # moves the optimizer's state
        if self.input_shape is not None and weights is not None:
            state = self.optimizer.state  # kept through the rebuild, which resets it
            self.build(self.input_shape)
            self.set_weights(weights)
            self.optimizer.state, self.optimizer.steps = state, steps
        return self

    # ------------------------------------------------------------------ passes
    def forward(self, x: Array, training: bool = False) -> Array:
        """The outputs for a device batch ``x`` (no state is written), computed on the
        backend's device (see :meth:`Backend.activate`)."""
        with self.backend.activate():
            for layer in self.layers:
                x, _ = layer.forward(x, training)
        return x

    def forward_train(self, x: Array) -> tuple[Array, Tape]:
        """The outputs in training mode and the tape ``backward`` needs (on the backend's
        device)."""
        tape = []
        with self.backend.activate():
            for layer in self.layers:
                x, ctx = layer.forward(x, True)
                tape.append(ctx)
        return x, tape

    def backward(self, tape: Tape, grad: Array) -> list[Update]:
        """Gradients of every parameter: ``(name, param, grad, decay)`` for the optimizer.

        Layers before the first one with parameters (Flatten in ``mlp()``) need no gradient,
        and that first layer needs none for its input: for a Dense layer on 784 pixels this
        skips the largest matmul of the backward pass.
        """
        first = next((i for i, layer in enumerate(self.layers) if layer.params), len(self.layers))
        updates: list[Update] = []
        with self.backend.activate():
            for i in range(len(self.layers) - 1, first - 1, -1):
                layer = self.layers[i]
                grad, grads = layer.backward(tape[i], grad, need_input_grad=i > first)
                updates.extend(
                    (f"{i}.{name}", layer.params[name], g, name in layer.decayed) for name, g in grads.items()
                )
        return updates

    def train_step(self, xb: Array, targets: Array, loss: Loss | None = None) -> tuple[Array, Array]:
        """One optimisation step on a device batch, on the backend's device; returns (loss,
        number correct) as device scalars (never read back here). ``loss`` trains on another
        loss than the network's own (``fit``'s class-weighted one)."""
        loss_fn = self.loss if loss is None else loss
        with self.backend.activate():
            out, tape = self.forward_train(xb)
            value, ctx = loss_fn.forward(out, targets)
            self.apply_updates(self.backward(tape, loss_fn.backward(ctx)))
            return value, self.count_correct(out, targets)

    def apply_updates(self, updates: list[Update]) -> None:
        """One optimizer step from ``updates`` (``backward``'s), its new parameters stored in
        their layers (the arrays already there, updated in place, on a mutable library)."""
        for name, value in self.optimizer.step(updates).items():
            index, param = name.split(".", 1)
            self.layers[int(index)].params[param] = value

    def count_correct(self, out: Array, targets: Array) -> Array:
        xp = self.xp
        hits = xp.argmax(out, axis=1) == xp.argmax(targets, axis=1)
        return xp.sum(xp.astype(hits, self.dtype))

    # ------------------------------------------------------------------ data through the gate
    def inputs(self, x: Any, name: str = "x") -> Array:
        """``x`` checked and on the device, as the network takes it (see :mod:`anynet.inputs`)."""
        return to_inputs(self.backend, x, self.dtype, self.input_shape, name)

    def targets(self, y: Any, n: int, name: str = "y") -> Array:
        """Labels or targets for ``n`` samples, checked and on the device as float targets."""
        return to_targets(self.backend, y, n, self.num_outputs, self.dtype, name)

    # ------------------------------------------------------------------ training and inference
    def fit(self, x, y, epochs: int = 10, batch_size: int | None = 128, **options) -> dict:
        """Train; returns the history. See :func:`anynet.training.fit` for every option."""
        return fit(self, x, y, epochs=epochs, batch_size=batch_size, **options)

    def evaluate_on_device(self, x: Array, targets: Array, batch_size: int = 2048) -> dict:
        """Mean loss and accuracy of device inputs and targets, read back once."""
        n = x.shape[0]
        with self.backend.activate():
            loss_sum = correct = self.backend.zeros((), dtype=self.dtype)
            for lo in range(0, n, batch_size):
                hi = min(lo + batch_size, n)
                out, t = self.forward(x[lo:hi, ...]), targets[lo:hi, ...]
                loss_sum = loss_sum + self.loss.forward(out, t)[0] * (hi - lo)
                correct = correct + self.count_correct(out, t)
        return {"loss": float(loss_sum) / n, "accuracy": float(correct) / n}

    def evaluate(self, x, y, batch_size: int = 2048) -> dict:
        """Mean loss and accuracy on ``(x, y)`` as host floats."""
        self._require_built()
        xd = self.inputs(x)
        return self.evaluate_on_device(xd, self.targets(y, xd.shape[0]), batch_size)

    def predict_proba(self, x, batch_size: int = 4096) -> Array:
        """Class probabilities (softmax of the logits for the softmax losses), on the backend."""
        self._require_built()
        xd = self.inputs(x)
        n = xd.shape[0]
        with self.backend.activate():
            parts = [
                self.loss.probabilities(self.forward(xd[lo : min(lo + batch_size, n), ...]))
                for lo in range(0, n, batch_size)
            ]
            return parts[0] if len(parts) == 1 else self.xp.concat(parts, axis=0)

    def predict(self, x, batch_size: int = 4096) -> Array:
        """Predicted class indices (int64 on the backend; ``anynet.to_numpy`` brings them home)."""
        probabilities = self.predict_proba(x, batch_size)
        with self.backend.activate():
            return self.xp.argmax(probabilities, axis=1)

    def __repr__(self) -> str:
        return f"Network({len(self.layers)} layers, backend={self.backend.spec!r}, dtype={self.dtype_name!r})"


def load_model(path: Any, backend: Any = "cpu", dtype: str | None = None) -> Network:
    """Load a model saved by :func:`anynet.io.save_model` onto ``backend`` (any backend,
    whatever it was trained on); ``dtype`` overrides the stored one. The file is checked first
    (see :mod:`anynet.io.format`); every failure is a :class:`~anynet.io.ModelFileError`."""
    backend = get_backend(backend)
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    file = read_model(path)
    try:
        model = Network.from_config(file.config, backend=backend, dtype=dtype)
    except (KeyError, ValueError, TypeError, IndexError, OverflowError) as exc:
        raise ModelFileError(f"{file.path}: invalid architecture: {exc}") from None
    model.set_weights(file.weights)
    model.info = file.info
    return model
