"""anynet on JAX, eager and compiled (``fit(..., compile=True)``), against JAX's own ``jax.jit``
of a ``jax.grad`` step and against PyTorch, on the MNIST MLP of the speed benchmark (784-256-128-10, Adam, batch 128).

Every contestant starts from the same weights and trains one epoch per round, round robin in
one process; times are scaled to a 60,000-image epoch and printed as ratios to anynet on NumPy
(the reference run). Run from the repository root::

    python benchmarks/jax_compiled.py --samples 12000 --rounds 3 --out benchmarks/results/jax-compiled.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

THREADS = os.environ.setdefault("OMP_NUM_THREADS", "2")  # before NumPy loads its BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", THREADS)
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import speed  # noqa: E402  (the contestants of the speed benchmark)


class CompiledRunner(speed.AnynetRunner):
    """anynet's ``Network.fit`` with ``compile=True``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fit_options = {"compile": True}
        start = self.net.get_weights()
        self.epoch()  # the first epoch traces and compiles each batch shape: not timed
        self.net.set_weights(start)  # and the optimizer's moments: a fresh start
        self.round = 0


def contestants(data, weights, batch: int, have_torch: bool) -> dict:
    x, y = data
    runners = {
        "anynet (numpy)": speed.AnynetRunner("numpy", batch, x, y, weights),
        "anynet (jax, eager)": speed.AnynetRunner("jax", batch, x, y, weights),
        "anynet (jax, compile=True)": CompiledRunner("jax", batch, x, y, weights),
        "JAX jit per step (jax.grad)": speed.JaxRunner(batch, x, y, weights, mode="step"),
    }
    if have_torch:
        runners["PyTorch eager"] = speed.TorchRunner(batch, x, y, weights, threads=int(THREADS))
    return runners


def table(results: dict, samples: int, test: dict) -> list[str]:
    reference = results["anynet (numpy)"]["wall"]
    lines = [
        "| contestant | s per 60k epoch (median) | vs anynet (numpy) | train loss | test accuracy |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['wall']:.2f} | {r['wall'] / reference:.2f}x | {r['train_loss']:.4f} "
            f"| {100 * test[name]:.2f}% |"
        )
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=12000, help="training images per timed epoch")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--data-dir", default=os.environ.get("ANYNET_DATA_DIR"))
    p.add_argument("--out", type=Path, default=None, help="write the table as Markdown here")
    args = p.parse_args(argv)
    if not args.data_dir:
        p.error("give --data-dir or set ANYNET_DATA_DIR (the folder with mnist/)")
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    x, y, xt, yt = speed.load_mnist(args.data_dir)
    x, y = x[: args.samples], y[: args.samples]
    weights = speed.initial_weights(speed.MLP_SIZES)
    runners = contestants((x, y), weights, args.batch, have_torch)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = speed.round_robin(runners, args.rounds, print)
    scale = speed.MNIST_N / args.samples
    test = {}
    for name, r in results.items():
        r["wall"] *= scale
        r["train_loss"], _ = runners[name].train_metrics()
        test[name] = runners[name].accuracy(xt, yt)
    lines = table(results, args.samples, test)
    print("\n".join(lines))
    if args.out is not None:
        head = [
            "# anynet on JAX: eager and compiled",
            "",
            f"`python benchmarks/{Path(__file__).name} --samples {args.samples} --rounds {args.rounds}` "
            f"({started}; {platform.machine()}, {os.cpu_count()} cores, {THREADS} BLAS threads, "
            f"load average {os.getloadavg()[0]:.2f} at the end). MLP 784-256-128-10, Adam, batch "
            f"{args.batch}; {args.samples:,} images per timed epoch, scaled to 60,000; median of "
            f"{args.rounds} rounds after one untimed compile. Test accuracy on the 10,000 MNIST test "
            f"images after {args.rounds} epochs of {args.samples:,}.",
            "",
        ]
        args.out.write_text("\n".join(head + lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
