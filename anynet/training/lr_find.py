"""The learning-rate range test (Smith 2017): train for ``steps`` steps with a learning rate
rising exponentially from ``start_lr`` to ``end_lr``, record the loss, and put the weights and
the optimizer back as they were. The suggestion is the rate where the smoothed loss falls
fastest (before its minimum); pick it or a little less.

    result = lr_find(net, x, y)
    result.suggestion, result.plot("lr.png")
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backend import HostRandom, to_numpy
from ..plots import PlotsUnavailableError
from .batches import Batches

__all__ = ["LRFinderResult", "lr_find"]


@dataclass
class LRFinderResult:
    """Learning rates tried, the (smoothed) loss at each, and the suggested rate."""

    lrs: np.ndarray
    losses: np.ndarray
    suggestion: float | None

    def plot(self, path=None):
        """Loss against learning rate (log axis), the suggestion marked; a matplotlib Figure
        (written as PNG to ``path`` when given). Needs matplotlib (``anynet[plots]``)."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise PlotsUnavailableError(
                "the lr_find plot needs matplotlib: pip install 'anynet[plots]'"
            ) from None
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.add_subplot()
        ax.semilogx(self.lrs, self.losses)
        if self.suggestion is not None:
            ax.axvline(
                self.suggestion, color="tab:red", linestyle="--", label=f"suggested {self.suggestion:.2g}"
            )
            ax.legend()
        ax.set(xlabel="learning rate", ylabel="loss (smoothed)", title="learning-rate range test")
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=110, format="png")
        return fig


def lr_find(
    net,
    x,
    y,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    batch_size: int = 128,
    seed: int | None = None,
    smoothing: float = 0.98,
    stop_factor: float = 4.0,
) -> LRFinderResult:
    """Run the range test on ``net`` (built if needed); its weights and optimizer state are
    unchanged afterwards. Stops early once the smoothed loss exceeds ``stop_factor`` times its
    minimum (losses are read every 10 steps)."""
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr}, {end_lr}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    if not net.built:
        net.build(np.shape(x)[1:] if not hasattr(x, "shape") else tuple(x.shape[1:]))
    xd = net.inputs(x)
    targets = net.targets(y, xd.shape[0])
    weights, opt_state = net.get_weights(), net.optimizer.state_dict()
    lrs = start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))
    run_seed = net.seed + 2 if seed is None else seed
    try:
        with net.backend.activate():
            raw = _run(net, xd, targets, lrs, int(batch_size), run_seed, smoothing, stop_factor)
    finally:
        net.set_weights(weights)
        net.optimizer.load_state_dict(opt_state)
    smooth = _smoothed(raw, smoothing)
    return LRFinderResult(lrs[: len(smooth)], smooth, _suggest(lrs[: len(smooth)], smooth))


def _run(net, xd, targets, lrs, batch_size, seed, smoothing, stop_factor) -> np.ndarray:
    """The raw loss of each step (full batches of a fresh shuffle per pass over the data), read
    back in chunks of 10."""
    batches = Batches(net.xp, xd, targets, batch_size, True, max(layer.min_batch for layer in net.layers))
    per_pass = max(batches.samples // batches.batch_size, 1)
    rng, order = HostRandom(net.backend, seed), None
    pending: list = []
    losses: list[float] = []
    for i, lr in enumerate(lrs):
        if i % per_pass == 0:
            order = rng.permutation(batches.samples)
        net.optimizer.lr = float(lr)
        loss, _ = net.train_step(*batches.take(order, i % per_pass))
        pending.append(loss)
        if len(pending) == 10 or i == len(lrs) - 1:
            losses.extend(float(v) for v in to_numpy(net.xp.stack(pending)))
            pending = []
            smooth = _smoothed(np.asarray(losses), smoothing)
            if not np.isfinite(smooth[-1]) or smooth[-1] > stop_factor * np.nanmin(smooth):
                break
    return np.asarray(losses)


def _smoothed(losses: np.ndarray, beta: float) -> np.ndarray:
    """Exponential moving average with bias correction."""
    out, avg = np.empty(len(losses)), 0.0
    for i, value in enumerate(losses):
        avg = beta * avg + (1 - beta) * value
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def _suggest(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """The rate of steepest descent of the loss (against log lr) before its minimum."""
    finite = np.isfinite(losses)
    if finite.sum() < 3:
        return None
    lowest = int(np.nanargmin(np.where(finite, losses, np.nan)))
    if lowest < 2:
        return float(lrs[lowest]) / 10
    slope = np.gradient(losses[: lowest + 1], np.log10(lrs[: lowest + 1]))
    best = float(lrs[int(np.argmin(slope))])
    return best if math.isfinite(best) else None
