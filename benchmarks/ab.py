"""A/B speed check of two anynet trees in one run: this checkout against an earlier commit,
both against PyTorch eager, on the same work (MLP 784-256-128-10, Adam, MNIST, one thread).

    python benchmarks/ab.py --base d058d6f --rounds 8 --data-dir ../shared/data

Each contestant lives in its own worker process (two anynet versions cannot share one), and
the workers take turns one epoch at a time, so load on a shared machine hits all of them
alike. Printed: median CPU seconds per epoch and each anynet's ratio to PyTorch; a change to
the core should leave the ratio within a few percent of the base's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import importlib.util, json, sys
tree, kind, data_dir, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path[:0] = [tree, f"{tree}/benchmarks"]
spec = importlib.util.spec_from_file_location("speed", f"{tree}/benchmarks/speed.py")
speed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(speed)
x, y, _, _ = speed.load_mnist(data_dir)
xf = x.reshape(x.shape[0], -1).astype("float32") / 255.0
weights = speed.initial_weights(speed.MLP_SIZES)
runner = (speed.AnynetRunner("numpy", batch, xf, y, weights) if kind == "anynet"
          else speed.TorchRunner(batch, xf, y, weights, threads=1))
import anynet
print(json.dumps({"ready": getattr(anynet, "__file__", "?")}), flush=True)
for line in sys.stdin:
    wall, cpu = runner.epoch()
    print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)
"""


def _worker(tree: Path, kind: str, data_dir: str, batch: int) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tree), kind, data_dir, str(batch)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tree,
    )
    ready = json.loads(proc.stdout.readline())
    print(f"  {kind} from {tree}: anynet at {ready['ready']}", flush=True)
    return proc


def _epoch(proc: subprocess.Popen) -> dict:
    proc.stdin.write("epoch\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default="HEAD~1", help="the commit to compare with")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument(
        "--data-dir", default=os.environ.get("ANYNET_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    )
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        archive = subprocess.run(
            ["git", "archive", args.base], cwd=ROOT, check=True, capture_output=True
        ).stdout
        base.mkdir()
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        workers = {
            "anynet (this tree)": _worker(ROOT, "anynet", args.data_dir, args.batch),
            f"anynet ({args.base})": _worker(base, "anynet", args.data_dir, args.batch),
            "PyTorch eager": _worker(ROOT, "torch", args.data_dir, args.batch),
        }
        times: dict[str, list[float]] = {name: [] for name in workers}
        for r in range(args.rounds):
            order = list(workers.items())
            for name, proc in order if r % 2 == 0 else order[::-1]:  # no contestant always first
                times[name].append(_epoch(proc)["cpu"])
            print(
                f"  round {r + 1}/{args.rounds}: "
                + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()),
                flush=True,
            )
        for proc in workers.values():
            proc.stdin.close()
            proc.wait()
    torch = statistics.median(times["PyTorch eager"])
    print(f"\nbatch {args.batch}, {args.rounds} rounds, median CPU s/epoch (1 thread):")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"  {name:24s} {med:.3f} s   ratio to PyTorch {med / torch:.3f}")
    new, old = (statistics.median(times[k]) for k in list(times)[:2])
    print(f"  this tree / base: {new / old:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
