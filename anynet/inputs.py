"""The one gate between callers' data and a backend's device.

Every input a model sees (``fit``, ``evaluate``, ``predict``, the web server, the data
pipeline) passes through :func:`to_inputs`, and every label through :func:`to_targets`:

- host data are checked (numbers, finite, a batch axis, the expected per-sample shape) and sent
  to the device once; arrays already on the backend are checked for shape only (reading values
  back would cost a device sync);
- integer pixels (uint8 0..255) are sent as they are (a quarter of the bytes of float32) and
  scaled to [0, 1] on the device by :func:`scale_pixels`; float inputs are used as given.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backend import Array, Backend, Shape, to_numpy
from .losses import one_hot

__all__ = ["scale_pixels", "to_inputs", "to_targets"]


def scale_pixels(pixels: Array, xp: Any, dtype: Any) -> Array:
    """Integer pixels 0..255 -> floats in [0, 1] (one float copy of the data, scaled in place)."""
    scaled = xp.astype(pixels, dtype)
    scaled *= 1.0 / 255.0
    return scaled


def _as_host(x: Any, name: str) -> np.ndarray:
    try:
        x = np.asarray(to_numpy(x))
    except Exception as exc:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from exc
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {x.dtype}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _check_shape(x: Any, input_shape: Shape | None, name: str) -> Shape | None:
    """The per-sample shape to reshape ``x`` to (``None``: keep it); raises for a mismatch."""
    if x.ndim < 2:
        raise ValueError(
            f"{name} must have a batch axis: shape (samples, features...), got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if input_shape is None or tuple(x.shape[1:]) == tuple(input_shape):
        return None
    if math.prod(x.shape[1:]) == math.prod(input_shape):
        return tuple(input_shape)
    raise ValueError(
        f"{name} has per-sample shape {tuple(x.shape[1:])}, but the network expects {tuple(input_shape)}"
    )


def to_inputs(
    backend: Backend, x: Any, dtype: Any, input_shape: Shape | None = None, name: str = "x"
) -> Array:
    """Validate ``x`` and return it on ``backend``'s device as floats of ``dtype``, reshaped to
    ``(n, *input_shape)`` when it holds the same number of values per sample (computed on that
    device, see :meth:`Backend.activate`)."""
    with backend.activate():
        return _to_inputs(backend, x, dtype, input_shape, name)


def _to_inputs(backend: Backend, x: Any, dtype: Any, input_shape: Shape | None, name: str) -> Array:
    xp, on_device = backend.xp, backend.owns(x) and not backend.on_host
    if not on_device:
        x = _as_host(x, name)
    reshape = _check_shape(x, input_shape, name)
    if reshape is not None:
        x = xp.reshape(x, (x.shape[0], *reshape)) if on_device else x.reshape((x.shape[0], *reshape))
    if on_device:
        if not xp.isdtype(x.dtype, "real floating"):
            return scale_pixels(x, xp, dtype)
        return x if x.dtype == dtype else xp.astype(x, dtype)
    if x.dtype.kind in "biu":
        return scale_pixels(backend.asarray(x), xp, dtype)
    return backend.asarray(x, dtype=dtype)


def to_targets(backend: Backend, y: Any, n: int, num_classes: int, dtype: Any, name: str = "y") -> Array:
    """Labels ``(n,)`` (integers) or targets ``(n, num_classes)`` (floats) -> float targets
    (one-hot for labels) on the device."""
    with backend.activate():
        return _to_targets(backend, y, n, num_classes, dtype, name)


def _to_targets(backend: Backend, y: Any, n: int, num_classes: int, dtype: Any, name: str) -> Array:
    xp, on_device = backend.xp, backend.owns(y) and not backend.on_host
    if not on_device:
        y = np.asarray(to_numpy(y))
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0] if y.ndim else 0} entries for {n} samples")
    if y.ndim == 1:
        if not on_device:
            y = backend.asarray(_host_labels(y, num_classes, name))
        return one_hot(y, num_classes, xp, dtype)
    if y.ndim == 2 and y.shape[1] == num_classes:
        if on_device:
            return xp.astype(y, dtype)
        if not np.isfinite(y).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return backend.asarray(y, dtype=dtype)
    raise ValueError(
        f"{name} must be labels of shape ({n},) or targets of shape ({n}, {num_classes}), "
        f"got {tuple(y.shape)}"
    )


def _host_labels(y: np.ndarray, num_classes: int, name: str) -> np.ndarray:
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"{name} has labels outside 0..{num_classes - 1} (min {y.min()}, max {y.max()})")
    return y.astype(np.int64)
