"""Layers with explicit forward and backward passes, written once against the Array API.

The contract every layer follows is in :mod:`anynet.layers.base`; one family per module:
:mod:`.dense`, :mod:`.activations`, :mod:`.dropout`, :mod:`.reshape`.
"""

from __future__ import annotations

from .activations import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh, softmax
from .base import Grads, Layer
from .dense import Dense
from .dropout import Dropout
from .reshape import Flatten

__all__ = [
    "LAYERS",
    "Dense",
    "Dropout",
    "Flatten",
    "Grads",
    "Layer",
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "layer_from_config",
    "softmax",
]

#: every layer class by the name stored in model files
LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Dense, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, Dropout, Flatten)
}


def layer_from_config(entry: dict) -> Layer:
    """Rebuild a layer from ``{"type": name, "config": {...}}``."""
    try:
        cls = LAYERS[entry["type"]]
    except KeyError:
        raise ValueError(f"unknown layer type {entry.get('type')!r}; known: {sorted(LAYERS)}") from None
    return cls(**entry.get("config", {}))
