"""What ``Network.fit``'s epoch loop adds over a bare loop of ``Network.train_step`` (issue 25).

    OPENBLAS_NUM_THREADS=1 python benchmarks/loop_overhead.py --data-dir /work/shared/data \\
        --out benchmarks/results/loop-overhead.md

Both run the same steps on the same device data in the same order from the same weights: the
bare loop takes each batch with ``xp.take`` and calls ``train_step``, keeping nothing; ``fit``
adds what users get (the schedule's learning rate per step, the divergence guard, the loss and
hit sums on the device, callbacks, the interrupt check, the resume bookkeeping). The two take
turns epoch by epoch in one process; the table gives the median CPU time per step of each and
the difference, for MLPs of 2, 4 and 8 hidden layers (does the loop's cost grow with depth?).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import anynet  # noqa: E402

DEPTHS = {"784-256-128-10": (256, 128), "4 x 128": (128,) * 4, "8 x 128": (128,) * 8}


def _net(hidden: tuple[int, ...]):
    return anynet.mlp(hidden, num_classes=10, backend="numpy", seed=0, input_shape=(784,))


class Bare:
    """``train_step`` over the epoch's batches, nothing else."""

    label = "bare train_step loop"

    def __init__(self, hidden, x, y, batch):
        self.net, self.batch = _net(hidden), batch
        self.x, self.t = self.net.inputs(x), self.net.targets(y, x.shape[0])
        self.epoch_index = 0

    def epoch(self) -> float:
        n, xp = self.x.shape[0], self.net.xp
        order = np.random.default_rng(self.epoch_index).permutation(n)
        self.epoch_index += 1
        t0 = time.process_time()
        for lo in range(0, n, self.batch):
            idx = order[lo : lo + self.batch]
            self.net.train_step(xp.take(self.x, idx, axis=0), xp.take(self.t, idx, axis=0))
        return time.process_time() - t0


class Fit(Bare):
    """``Network.fit`` for one epoch, as users call it (defaults, no output)."""

    label = "Network.fit"

    def epoch(self) -> float:
        t0 = time.process_time()
        self.net.fit(self.x, self.t, epochs=1, batch_size=self.batch, seed=self.epoch_index, verbose=0)
        self.epoch_index += 1
        return time.process_time() - t0


def measure(hidden, x, y, batch: int, rounds: int) -> dict:
    runners = [Bare(hidden, x, y, batch), Fit(hidden, x, y, batch)]
    for r in runners:  # warm-up: buffers, caches
        r.epoch()
    times: dict[str, list[float]] = {r.label: [] for r in runners}
    for i in range(rounds):
        for r in runners if i % 2 == 0 else runners[::-1]:
            times[r.label].append(r.epoch())
    steps = -(-x.shape[0] // batch)
    return {k: 1e6 * statistics.median(v) / steps for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("ANYNET_DATA_DIR"))
    p.add_argument("--samples", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    from anynet.data import load

    ds = load("mnist", data_dir=args.data_dir, download=False, progress=False)
    x = ds.train.images[: args.samples].reshape(-1, 784)
    y = ds.train.labels[: args.samples]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "| network | bare loop, us per step | Network.fit | fit adds, us per step | fit / bare |",
        "|---|---|---|---|---|",
    ]
    for name, hidden in DEPTHS.items():
        res = measure(hidden, x, y, args.batch, args.rounds)
        bare, fit = res[Bare.label], res[Fit.label]
        lines.append(f"| {name} | {bare:.0f} | {fit:.0f} | {fit - bare:+.0f} | {fit / bare:.3f}x |")
        print(lines[-1], flush=True)
    if args.out is not None:
        head = [
            "# Network.fit against a bare train_step loop",
            "",
            f"`python benchmarks/loop_overhead.py --samples {args.samples} --batch {args.batch} --rounds "
            f"{args.rounds}` ({started}; {os.cpu_count()} cores, OPENBLAS_NUM_THREADS="
            f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, load average {os.getloadavg()[0]:.2f} at the end). "
            "CPU microseconds per step, median of the rounds; the two take turns epoch by epoch in one process.",
            "",
        ]
        args.out.write_text("\n".join(head + lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
