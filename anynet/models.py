"""Ready-made architectures, returned as unbuilt :class:`~anynet.network.Network` objects, and
the named presets ``anynet.train(model=...)`` and ``anynet train --model`` offer."""

from __future__ import annotations

from typing import Any

from .layers import Dense, Dropout, Flatten, Layer, LeakyReLU, ReLU, Sigmoid, Tanh
from .network import Network

__all__ = ["ACTIVATIONS", "MODEL_PRESETS", "mlp"]

ACTIVATIONS: dict[str, type[Layer]] = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh}

#: Named architectures: keyword arguments of :func:`mlp` plus the number of epochs (and the Adam
#: learning rate, where not 1e-3) that suit them.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "mlp-small": {"hidden": (256,), "dropout": 0.0, "epochs": 5, "lr": 2e-3,
                  "about": "784-256-k ReLU: trains in seconds, ~97.8% on MNIST"},
    "mlp": {"hidden": (512, 256), "dropout": 0.2, "epochs": 15,
            "about": "784-512-256-k ReLU, dropout 0.2: the default, ~98.5% on MNIST"},
    "mlp-large": {"hidden": (1024, 1024, 512), "dropout": 0.3, "epochs": 20,
                  "about": "784-1024-1024-512-k ReLU, dropout 0.3: for EMNIST and augmentation"},
}


def mlp(hidden=(256, 128), num_classes: int = 10, activation: str = "relu", dropout: float = 0.0,
        **network_kwargs) -> Network:
    """A multi-layer perceptron: Flatten, then ``Dense -> activation [-> Dropout]`` per hidden
    width, then a Dense output layer of ``num_classes`` logits.

    He initialisation for ReLU-like activations, Glorot for sigmoid / tanh. Extra keyword
    arguments (``loss``, ``optimizer``, ``backend``, ``dtype``, ``seed``, ``classes``,
    ``input_shape``) go to :class:`Network`.
    """
    try:
        act = ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}") from None
    init = "he" if activation in ("relu", "leaky_relu") else "glorot"
    layers: list[Layer] = [Flatten()]
    for width in hidden:
        layers += [Dense(width, init=init), act()]
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(num_classes, init="glorot"))
    return Network(layers, **network_kwargs)
