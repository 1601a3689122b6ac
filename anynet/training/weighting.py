"""``class_weight``: more weight in the loss for the samples of some classes.

Each training sample's loss is multiplied by the weight of its class, ``w_i = t_i . c`` (its
one-hot target row times the class-weight vector), and the batch loss is ``sum_i w_i l_i / n``.
The gradient is exact for every loss (its row ``i`` is scaled by ``w_i``), and so is the reported
value for every loss with a ``per_sample`` method, which the built-in ones have (another
:class:`~anynet.losses.Loss` reports its unweighted mean). Validation losses are never weighted. ``"balanced"`` gives class ``c`` the weight
``n / (k * n_c)``, as scikit-learn does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ..backend import Array, to_numpy
from ..losses import Loss

__all__ = ["ClassWeightedLoss", "class_weight_vector"]


def class_weight_vector(class_weight, targets: Array, classes=None) -> np.ndarray:
    """The ``(k,)`` host weights for ``class_weight``: ``"balanced"``, a dict ``{class: w}``
    (class index, or name from ``classes``; missing classes weigh 1) or a sequence of k."""
    counts = to_numpy(array_namespace(targets).sum(targets, axis=0)).astype(np.float64)  # k values
    k = counts.shape[0]
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be 'balanced', a dict or a sequence, got {class_weight!r}")
        return np.where(counts > 0, counts.sum() / (k * np.maximum(counts, 1e-12)), 1.0)
    if isinstance(class_weight, dict):
        names = {str(c): i for i, c in enumerate(classes or ())}
        w = np.ones(k)
        for key, value in class_weight.items():
            index = (
                names[str(key)] if str(key) in names and not isinstance(key, (int, np.integer)) else int(key)
            )
            if not 0 <= index < k:
                raise ValueError(f"class_weight names class {key!r}, outside 0..{k - 1}")
            w[index] = float(value)
    else:
        w = np.asarray(class_weight, dtype=np.float64)
        if w.shape != (k,):
            raise ValueError(f"class_weight needs {k} weights, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("class weights must be finite and >= 0")
    return w


class ClassWeightedLoss(Loss):
    """``base`` with each sample's loss scaled by its class weight (see the module)."""

    def __init__(self, base: Loss, weights: Array):
        super().__init__()
        self.base, self.weights, self.name = base, weights, base.name
        self.xp = base.xp

    def forward(self, outputs: Array, targets: Array) -> tuple[Array, Any]:
        xp = self.xp
        value, ctx = self.base.forward(outputs, targets)
        w = xp.sum(targets * self.weights, axis=1)
        per_sample = self.base.per_sample(outputs, targets)
        if per_sample is not None:
            value = xp.sum(per_sample * w) / outputs.shape[0]
        return value, (ctx, w)

    def backward(self, ctx: Any) -> Array:
        inner, w = ctx
        return self.base.backward(inner) * self.xp.reshape(w, (-1, 1))

    def probabilities(self, outputs: Array) -> Array:
        return self.base.probabilities(outputs)
