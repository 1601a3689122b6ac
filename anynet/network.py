"""Network: a sequence of layers, a loss and an optimizer, with fit / evaluate / predict.

Inputs may be host NumPy arrays or arrays of the network's backend. Integer inputs (uint8
pixels) are read as 0..255 and scaled to [0, 1] on the device; float inputs are used as given.
The training data go to the device once; each epoch's shuffle is an index permutation and a
batch is an ``xp.take``. Loss and accuracy sums stay on the device and are read once per epoch.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .backend import Backend, is_native, get_backend, to_numpy
from .callbacks import Callback, ProgressBar
from .layers import Layer, layer_from_config
from .losses import get_loss, one_hot
from .optimizers import Adam, get_optimizer

__all__ = ["Network"]


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

    def __init__(self, layers, loss="cross_entropy", optimizer=None, backend="auto",
                 dtype="float32", seed: int = 0, classes=None, input_shape=None):
        self.layers: list[Layer] = list(layers)
        if not self.layers or not all(isinstance(l, Layer) for l in self.layers):
            raise TypeError("a Network needs a non-empty list of anynet.layers.Layer objects")
        self.loss = get_loss(loss)
        self.optimizer = Adam() if optimizer is None else get_optimizer(optimizer)
        self.backend: Backend = get_backend(backend)
        self.xp = self.backend.xp
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.dtype_name = dtype
        self.dtype = self.backend.float_dtype(dtype)
        self.seed = int(seed)
        self.classes = None if classes is None else tuple(str(c) for c in classes)
        self.input_shape: tuple | None = None
        self.history: dict[str, list] = {}
        self.stop_training = False
        self.info: dict = {}
        self._bind()
        if input_shape is not None:
            self.build(input_shape)

    # ------------------------------------------------------------------ structure
    @property
    def built(self) -> bool:
        return self.input_shape is not None

    @property
    def num_outputs(self) -> int:
        self._require_built()
        return self._output_shape[0]

    def build(self, input_shape) -> "Network":
        """Create all parameters for per-sample inputs of ``input_shape`` (e.g. ``(28, 28)``)."""
        shape = tuple(int(d) for d in input_shape)
        rng = np.random.default_rng(self.seed)
        out = shape
        for layer in self.layers:
            out = layer.build(out, self.backend, self.dtype, rng)
        if len(out) != 1:
            raise ValueError(f"the last layer must give flat outputs (batch, classes), got {out}")
        if self.classes is not None and len(self.classes) != out[0]:
            raise ValueError(f"{len(self.classes)} class names for a network with {out[0]} outputs")
        self.input_shape, self._output_shape = shape, out
        self.optimizer.state, self.optimizer.steps = [], 0
        return self

    def _bind(self):
        self.loss.xp = self.xp
        self.optimizer.xp = self.xp

    def _require_built(self):
        if not self.built:
            raise RuntimeError("the network has no weights yet: call fit() or build(input_shape) first")

    def parameters(self):
        """``(layer_index, name, array)`` for every parameter, in order."""
        return [(i, name, p) for i, layer in enumerate(self.layers) for name, p in layer.params.items()]

    def count_parameters(self) -> int:
        return sum(int(math.prod(p.shape)) for _, _, p in self.parameters())

    def summary(self) -> str:
        self._require_built()
        lines, shape = [f"Network on {self.backend.spec} ({self.dtype_name}), input {self.input_shape}"], self.input_shape
        for i, layer in enumerate(self.layers):
            shape = layer.output_shape(shape)
            n = sum(int(math.prod(p.shape)) for p in layer.params.values())
            lines.append(f"  {i:2d} {layer!r:40s} -> {shape}  params {n}")
        lines.append(f"  loss {self.loss!r}, optimizer {type(self.optimizer).__name__}, "
                     f"{self.count_parameters()} parameters")
        return "\n".join(lines)

    def get_config(self) -> dict:
        """Architecture and settings (everything but the weights) as plain JSON-able data."""
        return {
            "layers": [{"type": type(l).__name__, "config": l.get_config()} for l in self.layers],
            "loss": self.loss.name,
            "input_shape": list(self.input_shape) if self.built else None,
            "classes": list(self.classes) if self.classes else None,
            "dtype": self.dtype_name,
            "seed": self.seed,
            "optimizer": {"type": type(self.optimizer).__name__, **self.optimizer.get_config()},
        }

    @classmethod
    def from_config(cls, config: dict, backend="numpy", dtype=None) -> "Network":
        layers = [layer_from_config(entry) for entry in config["layers"]]
        return cls(layers, loss=config["loss"], backend=backend, dtype=dtype or config.get("dtype", "float32"),
                   seed=config.get("seed", 0), classes=config.get("classes"),
                   input_shape=config.get("input_shape"))

    def get_weights(self) -> list[dict]:
        """A host NumPy copy of every layer's parameters."""
        return [{k: to_numpy(v).copy() for k, v in layer.params.items()} for layer in self.layers]

    def set_weights(self, weights: list[dict]) -> None:
        """Load parameters (host or any backend arrays) into the built network."""
        self._require_built()
        if len(weights) != len(self.layers):
            raise ValueError(f"weights for {len(weights)} layers, network has {len(self.layers)}")
        for i, (layer, given) in enumerate(zip(self.layers, weights)):
            if set(given) != set(layer.params):
                raise ValueError(f"layer {i} ({type(layer).__name__}) has parameters "
                                 f"{sorted(layer.params)}, got {sorted(given)}")
            for name, value in given.items():
                host = to_numpy(value)
                want = tuple(layer.params[name].shape)
                if tuple(host.shape) != want:
                    raise ValueError(f"layer {i} parameter {name!r} has shape {want}, got {tuple(host.shape)}")
                layer.params[name] = self.backend.asarray(host, dtype=self.dtype)
        self.optimizer.state, self.optimizer.steps = [], 0

    def to(self, backend) -> "Network":
        """Move weights and optimizer state to another backend (e.g. GPU -> CPU); returns self."""
        target = get_backend(backend)
        if target == self.backend:
            return self
        weights = self.get_weights() if self.built else None
        self.backend, self.xp = target, target.xp
        self.dtype = target.float_dtype(self.dtype_name)
        self.optimizer.move_state(lambda a: target.asarray(to_numpy(a)))
        self._bind()
        if self.built:
            state, steps = self.optimizer.state, self.optimizer.steps
            self.build(self.input_shape)
            self.set_weights(weights)
            self.optimizer.state, self.optimizer.steps = state, steps
        return self

    # ------------------------------------------------------------------ passes
    def forward(self, x, training: bool = False):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, grad) -> None:
        # Layers before the first one with parameters (Flatten in mlp()) need no gradient, and
        # that first layer needs none for its input: for a Dense layer on 784 pixels this skips
        # the largest matmul of the backward pass.
        first = next((i for i, layer in enumerate(self.layers) if layer.params), len(self.layers))
        for i in range(len(self.layers) - 1, first - 1, -1):
            grad = self.layers[i].backward(grad, need_input_grad=i > first)

    def _step(self, xb, targets):
        """One optimisation step; returns (loss, number correct) as device scalars."""
        out = self.forward(xb, training=True)
        loss = self.loss.forward(out, targets)
        self.backward(self.loss.backward())
        self.optimizer.step([(p, layer.grads[name], name == "W")
                             for layer in self.layers for name, p in layer.params.items()])
        return loss, self._correct(out, targets)

    def _correct(self, out, targets):
        xp = self.xp
        hits = xp.argmax(out, axis=1) == xp.argmax(targets, axis=1)
        return xp.sum(xp.astype(hits, self.dtype))

    # ------------------------------------------------------------------ data checks
    def _on_device(self, a) -> bool:
        """True for arrays of a device backend; host NumPy input is always validated."""
        return self.backend.name != "numpy" and is_native(self.backend, a)

    def _inputs(self, x, name="x"):
        """Validate ``x`` and return it on the device in the network's dtype."""
        xp = self.xp
        on_device = self._on_device(x)
        if not on_device:
            try:
                x = np.asarray(to_numpy(x) if hasattr(x, "__array_namespace__") else x)
            except Exception as exc:
                raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from exc
            if x.dtype.kind not in "biuf":
                raise TypeError(f"{name} must hold numbers, got dtype {x.dtype}")
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                raise ValueError(f"{name} contains NaN or infinite values")
        if x.ndim < 2:
            raise ValueError(f"{name} must have a batch axis: shape (samples, features...), got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"{name} is empty (0 samples)")
        if self.built and tuple(x.shape[1:]) != self.input_shape:
            if math.prod(x.shape[1:]) == math.prod(self.input_shape):
                x = (xp.reshape(x, (x.shape[0], *self.input_shape)) if on_device
                     else x.reshape((x.shape[0], *self.input_shape)))
            else:
                raise ValueError(f"{name} has per-sample shape {tuple(x.shape[1:])}, but the network "
                                 f"expects {self.input_shape}")
        integer = (not on_device and x.dtype.kind in "biu") or (on_device and not xp.isdtype(x.dtype, "real floating"))
        if integer:
            pixels = self.backend.asarray(x) if not on_device else x
            scaled = xp.astype(pixels, self.dtype)
            scaled *= 1.0 / 255.0  # in place: one float copy of the data set, not two
            return scaled
        if not on_device:
            return self.backend.asarray(x, dtype=self.dtype)
        return x if x.dtype == self.dtype else xp.astype(x, self.dtype)

    def _targets(self, y, n: int, name="y"):
        """Validate labels (``(n,)`` integers) or targets (``(n, outputs)`` floats); return
        one-hot / float targets on the device."""
        xp, k = self.xp, self.num_outputs
        on_device = self._on_device(y)
        if not on_device:
            y = np.asarray(to_numpy(y) if hasattr(y, "__array_namespace__") else y)
        if y.shape[0] != n:
            raise ValueError(f"{name} has {y.shape[0]} entries for {n} samples")
        if y.ndim == 1:
            if not on_device:
                if y.dtype.kind not in "iu":
                    raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
                if y.min() < 0 or y.max() >= k:
                    raise ValueError(f"{name} has labels outside 0..{k - 1} (min {y.min()}, max {y.max()})")
                y = self.backend.asarray(y.astype(np.int64))
            return one_hot(y, k, xp, self.dtype)
        if y.ndim == 2 and y.shape[1] == k:
            if not on_device:
                if not np.isfinite(y).all():
                    raise ValueError(f"{name} contains NaN or infinite values")
                return self.backend.asarray(y, dtype=self.dtype)
            return xp.astype(y, self.dtype)
        raise ValueError(f"{name} must be labels of shape ({n},) or targets of shape ({n}, {k}), "
                         f"got {tuple(y.shape)}")

    # ------------------------------------------------------------------ training
    def fit(self, x, y, epochs: int = 10, batch_size: int | None = 128, validation_data=None,
            shuffle: bool = True, seed: int | None = None, callbacks=(), augment=None,
            verbose: bool = False) -> dict:
        """Train; returns the history (``loss``, ``accuracy``, ``val_*``, ``lr``, ``time`` per epoch).

        ``batch_size=None`` trains full-batch. ``augment(x_batch, rng)`` transforms each training
        batch on the device (see :mod:`anynet.data.augment`). ``verbose`` shows a progress bar.
        """
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if not self.built:
            self.build(tuple(x.shape[1:]) if hasattr(x, "shape") else np.shape(x)[1:])
        xd = self._inputs(x)
        n = xd.shape[0]
        yd = self._targets(y, n)
        val = None
        if validation_data is not None:
            xv, yv = validation_data
            xv = self._inputs(xv, "validation x")
            val = (xv, self._targets(yv, xv.shape[0], "validation y"))
        bs = n if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
        steps = math.ceil(n / bs)
        callbacks = list(callbacks)
        if verbose and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar())
        for c in callbacks:
            if not isinstance(c, Callback):
                raise TypeError(f"callbacks must be anynet.callbacks.Callback objects, got {type(c).__name__}")
        rng = self.backend.random(self.seed + 1 if seed is None else seed)
        xp, zero = self.xp, self.backend.asarray(np.zeros(()), dtype=self.dtype)
        self.stop_training = False
        for c in callbacks:
            c.on_train_begin(self, epochs, steps)
        for epoch in range(epochs):
            start_time = time.perf_counter()
            self.optimizer.start_epoch(epoch, epochs)
            for c in callbacks:
                c.on_epoch_begin(self, epoch)
            order = rng.permutation(n) if shuffle and bs < n else None
            loss_sum, correct, seen = zero, zero, 0
            for step in range(steps):
                lo, hi = step * bs, min((step + 1) * bs, n)
                if order is None:
                    xb, tb = xd[lo:hi, ...], yd[lo:hi, ...]
                else:
                    idx = order[lo:hi]
                    xb, tb = xp.take(xd, idx, axis=0), xp.take(yd, idx, axis=0)
                if augment is not None:
                    xb = augment(xb, rng)
                loss, hits = self._step(xb, tb)
                loss_sum, correct, seen = loss_sum + loss * (hi - lo), correct + hits, hi
                for c in callbacks:
                    c.on_batch_end(self, step, lambda s=seen, l=loss_sum, h=correct: (float(l) / s, float(h) / s))
            logs = {"loss": float(loss_sum) / n, "accuracy": float(correct) / n}
            if not math.isfinite(logs["loss"]):
                raise FloatingPointError(
                    f"training diverged: the loss became {logs['loss']} in epoch {epoch + 1}; "
                    f"lower the learning rate (now {self.optimizer.lr:g}) or check the inputs"
                )
            if val is not None:
                v = self._evaluate_device(*val)
                logs.update(val_loss=v["loss"], val_accuracy=v["accuracy"])
            logs["lr"] = self.optimizer.lr
            logs["time"] = time.perf_counter() - start_time
            for key, value in logs.items():
                self.history.setdefault(key, []).append(value)
            for c in callbacks:
                c.on_epoch_end(self, epoch, logs)
            if self.stop_training:
                break
        for c in callbacks:
            c.on_train_end(self)
        self._clear_caches()
        return self.history

    def _clear_caches(self):
        for layer in self.layers:
            layer.clear_cache()

    # ------------------------------------------------------------------ inference
    def _batches(self, x, batch_size):
        n = x.shape[0]
        for lo in range(0, n, batch_size):
            yield x[lo:min(lo + batch_size, n), ...]

    def _evaluate_device(self, x, targets, batch_size=2048):
        xp, n = self.xp, x.shape[0]
        loss_sum = correct = self.backend.asarray(np.zeros(()), dtype=self.dtype)
        for lo in range(0, n, batch_size):
            hi = min(lo + batch_size, n)
            out = self.forward(x[lo:hi, ...])
            t = targets[lo:hi, ...]
            loss_sum = loss_sum + self.loss.forward(out, t) * (hi - lo)
            correct = correct + self._correct(out, t)
        return {"loss": float(loss_sum) / n, "accuracy": float(correct) / n}

    def evaluate(self, x, y, batch_size: int = 2048) -> dict:
        """Mean loss and accuracy on ``(x, y)`` as host floats."""
        self._require_built()
        xd = self._inputs(x)
        return self._evaluate_device(xd, self._targets(y, xd.shape[0]), batch_size)

    def predict_proba(self, x, batch_size: int = 4096):
        """Class probabilities (softmax of the logits for the softmax losses), on the backend."""
        self._require_built()
        xd = self._inputs(x)
        parts = [self.loss.probabilities(self.forward(b), self.xp) for b in self._batches(xd, batch_size)]
        return parts[0] if len(parts) == 1 else self.xp.concat(parts, axis=0)

    def predict(self, x, batch_size: int = 4096):
        """Predicted class indices (int64 on the backend; ``anynet.to_numpy`` brings them home)."""
        return self.xp.argmax(self.predict_proba(x, batch_size), axis=1)

    def __repr__(self):
        return f"Network({len(self.layers)} layers, backend={self.backend.spec!r}, dtype={self.dtype_name!r})"
