"""Moving a dataset onto a backend's device, and one-hot labels, in the Array API.

:func:`to_device` sends the uint8 images across once (a quarter of the bytes of float32) and
does the cast and the scaling to [0, 1] on the device. :func:`one_hot` builds one-hot rows by
comparison with ``xp.arange`` (the standard has no scatter).
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from ..backend import get_backend

__all__ = ["to_device", "one_hot"]


def to_device(images, backend="numpy", dtype="float32"):
    """Images ``(n, 28, 28)`` or ``(n, 784)`` uint8 -> float ``(n, 784)`` in [0, 1] on ``backend``.

    Args:
        images: host uint8 array (or an array of any backend).
        backend: a :class:`~anynet.backend.Backend` or a name for ``get_backend``.
        dtype: ``"float32"`` (default), ``"float64"`` or a namespace float dtype.
    """
    b = get_backend(backend)
    n = images.shape[0]
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise TypeError(f"to_device expects uint8 images (0..255), got {images.dtype}")
        images = np.ascontiguousarray(images.reshape(n, -1))
        x = b.asarray(images)  # one transfer, 1 byte per pixel
    else:
        x = b.asarray(images)
        x = b.xp.reshape(x, (n, -1))
    x = b.xp.astype(x, b.float_dtype(dtype))
    return x / 255.0


def one_hot(labels, num_classes: int, xp=None, dtype=None):
    """One-hot rows ``(n, num_classes)`` of integer ``labels`` ``(n,)``, on the labels' device.

    Built as ``labels[:, None] == arange(num_classes)`` then cast (float32 by default); no
    scatter, so it works on every Array API library.
    """
    if xp is None:
        xp = array_namespace(labels)
    dev = device_of(labels)
    classes = xp.arange(num_classes, dtype=labels.dtype, device=dev)
    hot = xp.reshape(labels, (-1, 1)) == xp.reshape(classes, (1, -1))
    return xp.astype(hot, xp.float32 if dtype is None else dtype)
