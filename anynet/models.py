"""Ready-made architectures, returned as unbuilt :class:`~anynet.network.Network` objects."""

from __future__ import annotations

from .layers import Dense, Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Tanh
from .network import Network

__all__ = ["mlp", "ACTIVATIONS"]

ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh}


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
    layers = [Flatten()]
    for width in hidden:
        layers += [Dense(width, init=init), act()]
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(num_classes, init="glorot"))
    return Network(layers, **network_kwargs)
