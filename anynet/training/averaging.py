"""Weight averaging: an exponential moving average of the weights over the training steps
(Polyak averaging; Keras's ``use_ema``, PyTorch's ``AveragedModel`` with an EMA)."""

from __future__ import annotations

import math

import numpy as np

from ..backend import to_numpy
from .callbacks import Callback


class WeightAveraging(Callback):
    """Keep an exponential moving average of every parameter and buffer, and put it in the
    network when training ends.

    After each training step t (counted from 0 over the run) every average ``a`` of an array
    ``w`` becomes ``a = d * a + (1 - d) * w`` with ``d = min(decay, (1 + t) / (10 + t))``: the
    warm-up of TensorFlow's ``ExponentialMovingAverage``, so that the weights of the first steps
    do not dominate. The update runs on the device, with no read-back. Batch normalisation's
    running statistics are averaged like the weights.

    The epoch logs (validation included) are those of the raw weights; the averaged ones are in
    the network after ``fit`` returns, so ``anynet.train``'s test scores and saved file are
    theirs. Checkpoints carry the average, so a resumed run ends with the same one. Put this
    callback after an ``EarlyStopping`` whose best weights it should replace, before one whose
    best weights should win.
    """

    def __init__(self, decay: float = 0.999):
        value = float(decay) if isinstance(decay, (int, float)) else math.nan
        if not 0.0 <= value < 1.0:  # also rejects NaN and non-numbers
            raise ValueError(f"decay should be a number in [0, 1), got {decay!r}")
        self.decay = value
        self.updates = 0
        self.average: list[dict] = []
        self._to_device = None

    def on_train_begin(self, network, epochs, steps_per_epoch):
        xp = network.backend.xp
        self._to_device = lambda host: network.backend.asarray(host, dtype=network.dtype)
        self.updates = 0
        self.average = [
            {name: xp.asarray(value, copy=True) for name, value in layer.state.items()}
            for layer in network.layers
        ]

    def on_batch_end(self, network, step, running):
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, layer in zip(self.average, network.layers):
            for name, value in layer.state.items():
                a = average[name]
                a *= d  # in place, or a new array on an immutable library: stored back below
                a += (1.0 - d) * value
                average[name] = a
        self.updates += 1

    def on_train_end(self, network):
        if self.updates:
            network.set_weights(self.average)

    def get_state(self):
        return {
            "updates": self.updates,
            "average": [{name: to_numpy(a).copy() for name, a in layer.items()} for layer in self.average],
        }

    def set_state(self, state):
        self.updates = int(state["updates"])
        self.average = [
            {name: self._to_device(np.asarray(a)) for name, a in layer.items()} for layer in state["average"]
        ]
