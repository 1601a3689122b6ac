"""Layers with explicit forward and backward passes, written once against the Array API.

The contract every layer follows is in :mod:`anynet.layers.base`; one family per module:
:mod:`.dense`, :mod:`.activations`, :mod:`.dropout`, :mod:`.reshape`, :mod:`.conv`,
:mod:`.pooling`, :mod:`.norm`. Image layers work on NCHW batches: (N, channels, height,
width); a 28x28 image is (1, 28, 28).
"""

from __future__ import annotations

from .activations import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh, softmax
from .base import Grads, Layer
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .norm import BatchNorm
from .pooling import AveragePool2D, GlobalAveragePooling2D, MaxPool2D
from .reshape import Flatten

__all__ = [
    "LAYERS",
    "AveragePool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "Grads",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "layer_from_config",
    "softmax",
]

#: every layer class by the name stored in model files
LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
        Dense,
        ReLU,
        LeakyReLU,
        Sigmoid,
        Tanh,
        Softmax,
        Dropout,
        Flatten,
        Conv2D,
        MaxPool2D,
        AveragePool2D,
        GlobalAveragePooling2D,
        BatchNorm,
    )
}


def layer_from_config(entry: dict) -> Layer:
    """Rebuild a layer from ``{"type": name, "config": {...}}``."""
    try:
        cls = LAYERS[entry["type"]]
    except KeyError:
        raise ValueError(f"unknown layer type {entry.get('type')!r}; known: {sorted(LAYERS)}") from None
    return cls(**entry.get("config", {}))
