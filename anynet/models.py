"""Ready-made architectures, returned as unbuilt :class:`~anynet.network.Network` objects, and
the named presets ``anynet.train(model=...)`` and ``anynet train --model`` offer."""

from __future__ import annotations

from typing import Any

from .layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
)
from .network import Network

__all__ = ["ACTIVATIONS", "MODEL_PRESETS", "cnn", "from_preset", "mlp"]

ACTIVATIONS: dict[str, type[Layer]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
}

#: Named architectures: the builder (``kind``: :func:`mlp` or :func:`cnn`) and its keyword
#: arguments, plus the number of epochs (and the Adam learning rate, where not 1e-3) that suit them.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "mlp-small": {
        "kind": "mlp",
        "hidden": (256,),
        "dropout": 0.0,
        "epochs": 5,
        "lr": 2e-3,
        "about": "784-256-k ReLU: trains in seconds, ~97.8% on MNIST",
    },
    "mlp": {
        "kind": "mlp",
        "hidden": (512, 256),
        "dropout": 0.2,
        "epochs": 15,
        "about": "784-512-256-k ReLU, dropout 0.2: the default, ~98.5% on MNIST",
    },
    "mlp-large": {
        "kind": "mlp",
        "hidden": (1024, 1024, 512),
        "dropout": 0.3,
        "epochs": 20,
        "about": "784-1024-1024-512-k ReLU, dropout 0.3: for EMNIST and augmentation",
    },
    "cnn": {
        "kind": "cnn",
        "widths": (32, 64, 128),
        "dense": 256,
        "dropout": 0.4,
        "epochs": 15,
        "about": "3 x (conv 3x3, batch norm, ReLU, max pool) with 32/64/128 channels, dense 256: MNIST",
    },
    "cnn-large": {
        "kind": "cnn",
        "widths": (64, 128, 256),
        "dense": 512,
        "dropout": 0.5,
        "epochs": 20,
        "about": "the same with 64/128/256 channels and dense 512: for EMNIST",
    },
}


def mlp(
    hidden=(256, 128), num_classes: int = 10, activation: str = "relu", dropout: float = 0.0, **network_kwargs
) -> Network:
    """A multi-layer perceptron: Flatten, then ``Dense -> activation [-> Dropout]`` per hidden
    width, then a Dense output layer of ``num_classes`` logits.

    He initialisation for ReLU-like activations, Glorot for sigmoid / tanh. Extra keyword
    arguments (``loss``, ``optimizer``, ``backend``, ``dtype``, ``seed``, ``classes``,
    ``input_shape``) go to :class:`Network`.
    """
    act = _activation(activation)
    init = "he" if activation in ("relu", "leaky_relu") else "glorot"
    layers: list[Layer] = [Flatten()]
    for width in hidden:
        layers += [Dense(width, init=init), act()]
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(num_classes, init="glorot"))
    return Network(layers, **network_kwargs)


def cnn(
    widths=(32, 64, 128),
    num_classes: int = 10,
    dense: int = 256,
    dropout: float = 0.4,
    activation: str = "relu",
    **network_kwargs,
) -> Network:
    """A convolutional network on (1, 28, 28) images: per width, a 3x3 convolution ("same"),
    batch normalisation, the activation and 2x2 max pooling; then Flatten, a Dense layer of
    ``dense`` units with the activation and dropout, and a Dense output of ``num_classes``
    logits. The convolutions have no bias (batch normalisation's shift replaces it).

    Extra keyword arguments go to :class:`Network`; ``input_shape`` defaults to (1, 28, 28), so
    (n, 28, 28) and (n, 784) inputs are reshaped to it.
    """
    act = _activation(activation)
    layers: list[Layer] = []
    for width in widths:
        layers += [Conv2D(width, 3, padding="same", use_bias=False), BatchNorm(), act(), MaxPool2D(2)]
    layers += [Flatten(), Dense(dense), act()]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(num_classes, init="glorot"))
    network_kwargs.setdefault("input_shape", (1, 28, 28))
    return Network(layers, **network_kwargs)


def from_preset(name: str, num_classes: int, hidden=None, dropout: float | None = None, **kwargs) -> Network:
    """The network of preset ``name`` for ``num_classes`` classes; ``hidden`` (MLP widths) and
    ``dropout`` override the preset's, other keyword arguments go to the builder."""
    preset = MODEL_PRESETS[name]
    drop = preset["dropout"] if dropout is None else dropout
    if preset["kind"] == "cnn":
        if hidden is not None:
            raise ValueError(f"hidden widths describe an MLP; the {name!r} preset is convolutional")
        return cnn(preset["widths"], num_classes, dense=preset["dense"], dropout=drop, **kwargs)
    return mlp(tuple(preset["hidden"] if hidden is None else hidden), num_classes, dropout=drop, **kwargs)


def _activation(name: str) -> type[Layer]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None
