"""Small shared helpers for the paper reproductions ``examples/paper00*_*.py``.

Not part of the anynet API: argument parsing, data loading, the papers' own weight
initialisations, and a callback that prints accuracy at checkpoints. Each paper script imports
it as ``_paperkit`` (it sits next to them, so ``python examples/paperNNN_....py`` finds it).

A note on speed: on a small shared machine, a multi-threaded BLAS that competes with other
processes for the same cores can be many times slower than a single thread; the timings in
``benchmarks/results/papers.md`` were taken with ``OPENBLAS_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import anynet
from anynet.training import Callback


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-dir",
        default=os.environ.get("ANYNET_DATA_DIR"),
        help="directory holding mnist/ and emnist-bymerge/ (default: $ANYNET_DATA_DIR, "
        "then the download cache)",
    )
    p.add_argument("--backend", default="numpy", help="numpy (default), cupy, torch, auto, ...")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and shuffles")
    p.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float32",
        help="float type of weights and activations (the papers' NumPy code is float64)",
    )
    return p


def load(name: str, data_dir):
    """``anynet.data.load`` without progress bars; returns the Dataset."""
    from anynet.data import load as _load

    return _load(name, data_dir=data_dir, progress=False)


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> float32 (n, 784) in [0, 1] (done once, on the host)."""
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)


def uniform_init(net: anynet.Network, low: float, high: float, seed: int, biases: str = "zero") -> None:
    """Re-draw every Dense layer's weights uniformly from ``[low, high)`` (host RNG, so the
    same on every backend), as the papers' ``np.random.rand`` initialisations do.

    ``biases``: ``"zero"`` or ``"same"`` (drawn from the same range).
    """
    rng = np.random.default_rng(seed)
    weights = net.get_weights()
    for layer in weights:
        if "W" in layer:
            layer["W"] = rng.uniform(low, high, size=layer["W"].shape)
        if "b" in layer:
            layer["b"] = (
                rng.uniform(low, high, size=layer["b"].shape)
                if biases == "same"
                else np.zeros(layer["b"].shape)
            )
    net.set_weights(weights)


class Checkpoints(Callback):
    """Evaluate train and test accuracy after the given epochs (1-based) and print a row.

    Rows are kept in ``self.rows`` as ``(epoch, train_acc, test_acc, seconds_since_start)``;
    the evaluation time is not counted in the seconds.
    """

    def __init__(self, epochs, train, test, label="iteration", out=print):
        self.epochs = {int(e) for e in epochs}
        self.train, self.test = train, test
        self.label, self.out = label, out
        self.rows: list[tuple] = []

    def on_train_begin(self, network, epochs, steps_per_epoch):
        self.start, self.paused = time.perf_counter(), 0.0
        self.out(f"{self.label:>9}  {'train acc':>9}  {'test acc':>8}  {'seconds':>8}")

    def on_epoch_end(self, network, epoch, logs):
        if epoch + 1 not in self.epochs:
            return
        t0 = time.perf_counter()
        seconds = t0 - self.start - self.paused  # training time only
        tr = network.evaluate(*self.train)["accuracy"] if self.train is not None else float("nan")
        te = network.evaluate(*self.test)["accuracy"]
        self.paused += time.perf_counter() - t0
        self.rows.append((epoch + 1, tr, te, seconds))
        self.out(f"{epoch + 1:>9}  {tr:>9.2%}  {te:>8.2%}  {seconds:>8.1f}")


def checkpoint_epochs(total: int, every: int) -> list[int]:
    """1, every, 2*every, ..., total."""
    return sorted({1, total, *range(every, total + 1, every)})


def full_batch_run(net, train, test, iterations: int, every: int):
    """Full-batch gradient descent for ``iterations`` steps, printing checkpoints; returns the
    :class:`Checkpoints` (its rows) and the wall time in seconds."""
    ckpt = Checkpoints(checkpoint_epochs(iterations, every), train, test)
    t0 = time.perf_counter()
    net.fit(*train, epochs=iterations, batch_size=None, shuffle=False, callbacks=[ckpt])
    return ckpt, time.perf_counter() - t0


def side_by_side(rows) -> str:
    """``rows`` of (what, paper, ours) -> an aligned text table."""
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(str(r[1])) for r in rows)
    head = f"{'':<{w0}}  {'paper (reported)':<{max(w1, 16)}}  ours"
    lines = [head, "-" * (len(head) + 12)]
    lines += [f"{a:<{w0}}  {b!s:<{max(w1, 16)}}  {c}" for a, b, c in rows]
    return "\n".join(lines)
