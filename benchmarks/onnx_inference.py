"""Inference throughput of an exported model in onnxruntime, beside anynet's own on NumPy.

    OPENBLAS_NUM_THREADS=1 python benchmarks/onnx_inference.py --data-dir /work/shared/data

The ``mlp`` and ``cnn`` presets (weights as built: throughput does not depend on training), on
real MNIST test images, at batch sizes 1, 128 and 1000; one thread each (BLAS for anynet,
``intra_op_num_threads=1`` for onnxruntime). The two take turns, one timed pass over the same
images each per round, so that load on a shared machine falls on both alike; the table gives the
median images per second and onnxruntime's speed relative to anynet's. Results:
``benchmarks/results/onnx-inference.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import anynet  # noqa: E402
from anynet.data import load  # noqa: E402


def _images_per_second(run, x: np.ndarray, batch: int) -> float:
    start = time.perf_counter()
    for lo in range(0, len(x), batch):
        run(x[lo : lo + batch])
    return len(x) / (time.perf_counter() - start)


def _contestants(kind: str, folder: Path):
    import onnxruntime as ort

    net = (
        anynet.mlp((512, 256), num_classes=10) if kind == "mlp" else anynet.cnn((32, 64, 128), num_classes=10)
    )
    shape = (28, 28) if kind == "mlp" else (1, 28, 28)
    net = anynet.Network(net.layers, backend="numpy", seed=0, input_shape=shape)
    path = anynet.export_onnx(net, folder / f"{kind}.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return shape, {
        "anynet (numpy)": lambda x: net.predict_proba(x),
        "onnxruntime": lambda x: session.run(["probabilities"], {"x": x})[0],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("ANYNET_DATA_DIR"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--images", type=int, default=2000, help="test images per timed pass")
    args = p.parse_args(argv)
    test = load("mnist", data_dir=args.data_dir, progress=False).test
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("mlp", "cnn"):
            shape, runs = _contestants(kind, Path(tmp))
            x = (test.images[: args.images].astype(np.float32) / 255.0).reshape(-1, *shape)
            for batch in (1, 128, 1000):
                n = min(len(x), 300 if batch == 1 else len(x))  # batch 1: fewer images, same rate
                speeds: dict[str, list[float]] = {name: [] for name in runs}
                for r in range(args.rounds):
                    for name, run in runs.items() if r % 2 == 0 else reversed(runs.items()):
                        speeds[name].append(_images_per_second(run, x[:n], batch))
                med = {name: statistics.median(v) for name, v in speeds.items()}
                rows.append((kind, batch, med["anynet (numpy)"], med["onnxruntime"]))
                print(f"{kind} b{batch}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in med.items()), flush=True)
    print("\n| model | batch | anynet (NumPy) images/s | onnxruntime images/s | onnxruntime / anynet |")
    print("|---|---|---|---|---|")
    for kind, batch, ours, theirs in rows:
        print(f"| {kind} | {batch} | {ours:,.0f} | {theirs:,.0f} | {theirs / ours:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
