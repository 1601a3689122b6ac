"""An accuracy race: the same network trained by anynet and by PyTorch, everything else equal.

    OPENBLAS_NUM_THREADS=1 python benchmarks/race.py --data-dir /work/shared/data
    python benchmarks/race.py --models mlp --epochs 1 5 --seeds 0 1 2        # a part of it

For each preset (``mlp``: 784-512-256-10 with dropout 0.2; ``cnn``: 3 x (conv 3x3, BatchNorm,
ReLU, max pool) with 32/64/128 channels, dense 256, dropout 0.4), each number of epochs (1, 5
and 15: the cosine schedule spans the run) and each seed, both frameworks train from the same
initial weights (anynet's, copied into PyTorch), on the same data in the same order (anynet's
shuffle of each epoch, given to PyTorch as index lists), with the same learning rate each epoch
(anynet's cosine schedule), Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8), batch 128, no
augmentation, all 60,000 MNIST training images (``--train-limit`` takes the first N), one BLAS
thread each. Only the dropout masks differ: each framework draws its own. The test accuracy
on the 10,000 test images is reported as mean and spread over the seeds, side by side; a
systematic gap beyond the seed spread would be a bug to find. Results:
``benchmarks/results/race.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import anynet  # noqa: E402
from anynet.models import from_preset  # noqa: E402
from anynet.schedules import get_schedule  # noqa: E402
from anynet.training.seeding import derive_seed  # noqa: E402


def _anynet_net(model: str, seed: int):
    net = from_preset(
        model, 10, backend="numpy", seed=seed, optimizer=anynet.Adam(lr=1e-3, schedule="cosine")
    )
    return net.build((1, 28, 28) if model.startswith("cnn") else (28, 28))


def _torch_model(model: str, weights: list[dict]):
    """The same network in PyTorch, holding anynet's initial ``weights``."""
    import torch

    if model.startswith("cnn"):
        from cnn_contest import torch_cnn

        return torch_cnn(weights)
    nn, layers = torch.nn, [torch.nn.Flatten()]
    dense = [w for w in weights if w]
    for i, w in enumerate(dense):
        lin = nn.Linear(*w["W"].shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w["W"].T)))
            lin.bias.copy_(torch.from_numpy(w["b"]))
        layers.append(lin)
        if i < len(dense) - 1:
            layers += [nn.ReLU(), nn.Dropout(0.2)]
    return nn.Sequential(*layers)


def _order(fit_seed: int, epoch: int, n: int) -> np.ndarray:
    """anynet's shuffle of ``epoch`` (its host stream 0 of the epoch: see anynet.training.seeding)."""
    return np.random.default_rng(derive_seed(fit_seed, epoch, 0)).permutation(n)


def run_anynet(model: str, seed: int, epochs: int, data) -> float:
    x, y, xt, yt = data
    net = _anynet_net(model, seed)
    net.fit(x, y, epochs=epochs, batch_size=128, seed=seed + 1)
    return float(net.evaluate(xt, yt)["accuracy"])


def run_torch(model: str, seed: int, epochs: int, data) -> float:
    import torch

    x, y, xt, yt = data
    torch.manual_seed(seed)
    net = _torch_model(model, _anynet_net(model, seed).get_weights())
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    schedule = get_schedule("cosine")
    xs = torch.from_numpy(x.astype(np.float32) / 255.0)
    ys = torch.from_numpy(np.asarray(y, np.int64))
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = 1e-3 * schedule(epoch, epochs)
        net.train()
        order = torch.from_numpy(_order(seed + 1, epoch, len(xs)))
        for lo in range(0, len(xs), 128):
            idx = order[lo : lo + 128]
            loss = torch.nn.functional.cross_entropy(net(xs[idx]), ys[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        logits = net(torch.from_numpy(xt.astype(np.float32) / 255.0))
    return float((logits.argmax(1).numpy() == yt).mean())


def _data(model: str, data_dir, limit: int | None):
    from anynet.data import load

    ds = load("mnist", data_dir=data_dir, download=False, progress=False)
    shape = (-1, 1, 28, 28) if model.startswith("cnn") else (-1, 28, 28)
    x, y = ds.train.images[:limit], ds.train.labels[:limit]
    return x.reshape(shape), y, ds.test.images.reshape(shape), ds.test.labels


def _row(model: str, epochs: int, ours: list[float], theirs: list[float]) -> dict:
    spread = max(max(theirs) - min(theirs), max(ours) - min(ours))
    gap = statistics.mean(ours) - statistics.mean(theirs)
    return {
        "model": model,
        "epochs": epochs,
        "anynet": ours,
        "pytorch": theirs,
        "gap": gap,
        "spread": spread,
        "within": abs(gap) <= spread,
    }


def _say(row: dict) -> str:
    def show(v):
        return f"{100 * statistics.mean(v):.2f} % (±{50 * (max(v) - min(v)):.2f})"

    verdict = "within the seed spread" if row["within"] else "GAP beyond the seed spread"
    return (
        f"| {row['model']} | {row['epochs']} | {show(row['anynet'])} | {show(row['pytorch'])} | "
        f"{100 * row['gap']:+.2f} | {100 * row['spread']:.2f} | {verdict} |"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("ANYNET_DATA_DIR"))
    p.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    p.add_argument("--epochs", nargs="+", type=int, default=[1, 5, 15])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--train-limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    print(
        "| model | epochs | anynet test accuracy | PyTorch | gap (points) | seed spread | |\n|---|---|---|---|---|---|---|"
    )
    for model in args.models:
        data = _data(model, args.data_dir, args.train_limit)
        for epochs in args.epochs:
            ours, theirs, start = [], [], time.perf_counter()
            for seed in args.seeds:  # alternate the frameworks, so that load falls on both alike
                ours.append(run_anynet(model, seed, epochs, data))
                theirs.append(run_torch(model, seed, epochs, data))
            rows.append(_row(model, epochs, ours, theirs))
            print(_say(rows[-1]), f"<!-- {time.perf_counter() - start:.0f} s -->", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
