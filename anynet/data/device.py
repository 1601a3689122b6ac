"""Moving a dataset onto a backend's device.

:func:`to_device` sends the uint8 images across once (a quarter of the bytes of float32) and
does the cast and the scaling to [0, 1] on the device, through the one input gate
(:mod:`anynet.inputs`). One-hot labels are :func:`anynet.losses.one_hot`, re-exported here.
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import Array, get_backend
from ..inputs import to_inputs
from ..losses import one_hot

__all__ = ["one_hot", "to_device"]


def to_device(images, backend="cpu", dtype="float32") -> Array:
    """Images ``(n, 28, 28)`` or ``(n, 784)`` uint8 -> float ``(n, 784)`` in [0, 1] on ``backend``.

    Args:
        images: host uint8 array (or an array of any backend).
        backend: a :class:`~anynet.backend.Backend` or a name for ``get_backend``.
        dtype: ``"float32"`` (default), ``"float64"`` or a namespace float dtype.
    """
    b = get_backend(backend)
    if isinstance(images, np.ndarray) and images.dtype != np.uint8:
        raise TypeError(f"to_device expects uint8 images (0..255), got {images.dtype}")
    features = math.prod(images.shape[1:])
    return to_inputs(b, images, b.float_dtype(dtype), input_shape=(features,), name="images")
