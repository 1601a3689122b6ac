"""The CNN contestants of ``benchmarks/speed.py --cnn``: anynet's ``cnn`` preset and the same
network in PyTorch eager, from the same initial weights, one epoch at a time.

Architecture (both): 3 x (conv 3x3 "same" without bias, batch norm, ReLU, max pool 2) with
32/64/128 channels, Flatten, Dense 256 + ReLU + dropout 0.4, Dense 10; Adam lr 1e-3, batch 128,
float32, one thread. Data: MNIST train images, uint8 on the host, scaled once.
"""

from __future__ import annotations

import time

import numpy as np

WIDTHS = (32, 64, 128)


def anynet_cnn(seed: int = 0):
    from anynet.models import cnn

    return cnn(WIDTHS, 10, dense=256, dropout=0.4, backend="numpy", seed=seed)


def torch_cnn(weights: list[dict]):
    """The same network in PyTorch, holding ``weights`` (anynet's get_weights())."""
    import torch

    nn, layers, it = torch.nn, [], iter(weights)
    channels = 1
    for width in WIDTHS:
        conv, bn = nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width, momentum=0.1)
        w_conv, w_bn = next(it), next(it)
        for _ in range(2):  # ReLU and MaxPool hold nothing
            next(it)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w_conv["W"]))
            bn.weight.copy_(torch.from_numpy(w_bn["gamma"]))
            bn.bias.copy_(torch.from_numpy(w_bn["beta"]))
        layers += [conv, bn, nn.ReLU(), nn.MaxPool2d(2)]
        channels = width
    next(it)  # Flatten
    dense = []
    for w in it:
        if not w:
            continue
        lin = nn.Linear(*w["W"].shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w["W"].T)))
            lin.bias.copy_(torch.from_numpy(w["b"]))
        dense.append(lin)
    return nn.Sequential(*layers, nn.Flatten(), dense[0], nn.ReLU(), nn.Dropout(0.4), dense[1])


class AnynetCnn:
    """``Network.fit`` for one epoch per call on the given images."""

    label = "anynet cnn (numpy)"

    def __init__(self, x, y, batch=128):
        self.net, self.x, self.y, self.batch, self.round = anynet_cnn(), x, y, batch, 0

    def epoch(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        self.net.fit(self.x, self.y, epochs=1, batch_size=self.batch, seed=100 + self.round)
        self.round += 1
        return time.perf_counter() - wall, time.process_time() - cpu


class TorchCnn:
    """The same in PyTorch eager: data on the device once, a randperm per epoch."""

    label = "PyTorch eager cnn"

    def __init__(self, x, y, batch=128, threads=1):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = torch_cnn(anynet_cnn().get_weights())
        try:
            self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, fused=True)
        except (RuntimeError, TypeError, ValueError):
            self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, foreach=True)
        self.x = torch.from_numpy(x).float().div_(255.0).reshape(-1, 1, 28, 28)
        self.y = torch.from_numpy(np.asarray(y, np.int64))
        self.batch = batch

    def epoch(self) -> tuple[float, float]:
        torch, n = self.torch, self.x.shape[0]
        wall, cpu = time.perf_counter(), time.process_time()
        self.model.train()
        order = torch.randperm(n)
        for lo in range(0, n, self.batch):
            idx = order[lo : lo + self.batch]
            loss = torch.nn.functional.cross_entropy(self.model(self.x[idx]), self.y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return time.perf_counter() - wall, time.process_time() - cpu


def contest(x, y, rounds: int, log) -> dict:
    """Interleaved epochs of both in this process; median and min CPU seconds per epoch of each."""
    runners = [AnynetCnn(x, y), TorchCnn(x, y)]
    times: dict[str, list[float]] = {r.label: [] for r in runners}
    for r in range(rounds):
        for runner in runners:
            wall, cpu = runner.epoch()
            times[runner.label].append(cpu)
            log(f"    round {r + 1}/{rounds} {runner.label:22s} cpu {cpu:7.2f} s  wall {wall:7.2f} s")
    return {
        k: {"cpu_median": float(np.median(v)), "cpu_min": float(min(v)), "rounds": v}
        for k, v in times.items()
    }


WORKER = r"""
import json, sys
root, data_dir, framework, samples = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path[:0] = [root, root + "/benchmarks"]
import speed, cnn_contest
x, y, _, _ = speed.load_mnist(data_dir)
kind = cnn_contest.AnynetCnn if framework == "anynet" else cnn_contest.TorchCnn
runner = kind(x[:samples], y[:samples])
print(json.dumps({"label": runner.label}), flush=True)
for line in sys.stdin:
    wall, cpu = runner.epoch()
    print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)
"""


def contest_in_processes(data_dir: str, samples: int, rounds: int, log) -> dict:
    """As :func:`contest`, each framework in a process of its own (the epochs still take turns,
    the first contestant alternating): one's allocator and thread-pool state cannot speed up or
    slow down the other (in one process, glibc's heap as one left it changes how often the
    other's fresh memory is mapped and zeroed)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    workers = {}
    for framework in ("anynet", "torch"):
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, root, data_dir, framework, str(samples)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        workers[json.loads(proc.stdout.readline())["label"]] = proc
    times: dict[str, list[float]] = {label: [] for label in workers}
    try:
        for r in range(rounds):
            order = list(workers.items())
            for label, proc in order if r % 2 == 0 else order[::-1]:
                proc.stdin.write("epoch\n")
                proc.stdin.flush()
                res = json.loads(proc.stdout.readline())
                times[label].append(res["cpu"])
                log(
                    f"    round {r + 1}/{rounds} {label:22s} cpu {res['cpu']:7.2f} s  wall {res['wall']:7.2f} s"
                )
    finally:
        for proc in workers.values():
            proc.stdin.close()
            proc.wait()
    return {
        k: {"cpu_median": float(np.median(v)), "cpu_min": float(min(v)), "rounds": v}
        for k, v in times.items()
    }


def peak_memory(framework: str, x, y) -> dict:
    """Peak resident memory added by one epoch of ``framework`` (run it in a fresh process)."""
    import gc

    from memory import reset_peak_rss, rss_bytes

    if framework == "torch":
        import torch

        torch.set_num_threads(1)
    gc.collect()
    base, _ = rss_bytes()
    reset_peak_rss()
    runner = AnynetCnn(x, y) if framework == "anynet" else TorchCnn(x, y)
    runner.epoch()
    _, peak = rss_bytes()
    return {"framework": framework, "samples": int(x.shape[0]), "rss_delta": peak - base}


# --------------------------------------------------------------------------- where the time goes

#: the backend kernels the profile times inside the layers (those a backend has)
KERNELS = (
    "pad2d",
    "im2col",
    "col2im",
    "conv_columns",
    "conv_input_grad",
    "batch_norm_train",
    "batch_norm_backward",
    "relu_forward",
    "relu_backward",
    "max_pool_forward",
    "max_pool_backward",
    "adam_update",
    "conv2d_forward",
    "conv2d_backward",
)


def profile_anynet(x, y, steps: int = 60, warmup: int = 5, batch: int = 128) -> dict:
    """CPU milliseconds per training step of anynet's CNN, per layer (forward, backward), for the
    loss, the optimizer and taking the batch, and per backend kernel inside them (each method of
    ``KERNELS`` the backend has, wrapped with a timer); medians over ``steps`` steps after
    ``warmup``. The step runs as ``Network.train_step`` does, inside ``backend.activate()``; also
    the step's system time and minor page faults (fresh memory the kernel maps and zeroes)."""
    import resource

    net = anynet_cnn()
    b = net.backend
    kernel_times: dict[str, list[float]] = {}  # per step: the sum over the step's calls

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t0 = time.process_time()
            out = fn(*args, **kwargs)
            kernel_times.setdefault(name, [0.0] * (steps + warmup))[current[0]] += time.process_time() - t0
            return out

        return wrapper

    for name in KERNELS:
        if hasattr(b, name):
            setattr(b, name, timed(name, getattr(b, name)))
    xd, t = net.inputs(x), net.targets(y, x.shape[0])
    order = np.random.default_rng(0).permutation(xd.shape[0])
    layer_f: dict[int, list[float]] = {}
    layer_b: dict[int, list[float]] = {}
    other: dict[str, list[float]] = {"loss": [], "optimizer": [], "batch": [], "step": []}
    usage: list[tuple[float, float]] = []
    current = [0]
    pt = time.process_time
    with b.activate():
        for s in range(warmup + steps):
            current[0] = s
            lo = (s * batch) % (xd.shape[0] - batch + 1)
            r0, step0 = resource.getrusage(resource.RUSAGE_SELF), pt()
            t0 = pt()
            idx = order[lo : lo + batch]
            xb, tb = np.take(xd, idx, axis=0), np.take(t, idx, axis=0)
            other["batch"].append(pt() - t0)
            h, tape = xb, []
            for i, layer in enumerate(net.layers):
                t0 = pt()
                h, ctx = layer.forward(h, True)
                layer_f.setdefault(i, []).append(pt() - t0)
                tape.append(ctx)
            t0 = pt()
            _, lctx = net.loss.forward(h, tb)
            g = net.loss.backward(lctx)
            net.count_correct(h, tb)
            other["loss"].append(pt() - t0)
            updates = []
            for i in range(len(net.layers) - 1, -1, -1):
                layer = net.layers[i]
                t0 = pt()
                g, grads = layer.backward(tape[i], g, need_input_grad=i > 0)
                layer_b.setdefault(i, []).append(pt() - t0)
                updates.extend((f"{i}.{n}", layer.params[n], d, n in layer.decayed) for n, d in grads.items())
            del tape, h, g, lctx
            t0 = pt()
            net.apply_updates(updates)
            other["optimizer"].append(pt() - t0)
            del updates
            other["step"].append(pt() - step0)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            usage.append((r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt))

    def ms(v):
        return 1000.0 * float(np.median(v[warmup:]))

    layers = [
        {"index": i, "layer": repr(layer), "forward_ms": ms(layer_f[i]), "backward_ms": ms(layer_b[i])}
        for i, layer in enumerate(net.layers)
    ]
    kernels = {k: 1000.0 * float(np.median(v[warmup:])) for k, v in kernel_times.items()}
    return {
        "steps": steps,
        "layers": layers,
        "loss_ms": ms(other["loss"]),
        "optimizer_ms": ms(other["optimizer"]),
        "batch_ms": ms(other["batch"]),
        "step_ms": ms(other["step"]),
        "kernels_ms_per_step": kernels,
        "system_ms_per_step": 1000.0 * float(np.median([u[0] for u in usage[warmup:]])),
        "minor_faults_per_step": float(np.median([u[1] for u in usage[warmup:]])),
    }


def profile_torch(x, y, steps: int = 40, batch: int = 128, top: int = 14) -> dict:
    """PyTorch's own profiler over ``steps`` training steps of the same network: CPU
    milliseconds per step of its most expensive operators (self time), and the step itself."""
    import resource

    from torch.profiler import ProfilerActivity, profile

    runner = TorchCnn(x[: batch * steps], y[: batch * steps])
    runner.epoch()  # warm-up
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
    runner.epoch()
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        runner.epoch()
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
    return {
        "step_ms": 1000.0 * (t1 - t0) / steps,
        "system_ms_per_step": 1000.0 * (r1.ru_stime - r0.ru_stime) / steps,
        "minor_faults_per_step": (r1.ru_minflt - r0.ru_minflt) / steps,
        "ops_ms_per_step": {e.key: e.self_cpu_time_total / 1000.0 / steps for e in ops},
    }


def profile_report(an: dict, pt: dict | None) -> str:
    """The profiles as Markdown tables."""
    lines = [
        f"anynet, CPU ms per step (median of {an['steps']} steps): step {an['step_ms']:.1f}, "
        f"of which system time {an['system_ms_per_step']:.1f} "
        f"({an['minor_faults_per_step']:.0f} minor page faults per step)",
        "",
        "| layer | forward ms | backward ms |",
        "|---|---|---|",
    ]
    for row in an["layers"]:
        lines.append(
            f"| {row['index']} {row['layer']} | {row['forward_ms']:.2f} | {row['backward_ms']:.2f} |"
        )
    lines += [
        f"| loss (forward, backward, hits) | {an['loss_ms']:.2f} | |",
        f"| optimizer (Adam, every parameter) | {an['optimizer_ms']:.2f} | |",
        f"| taking the batch | {an['batch_ms']:.2f} | |",
        "",
        "Backend kernels inside those layers, CPU ms per step (all calls):",
        "",
        "| kernel | ms per step |",
        "|---|---|",
    ]
    lines += [
        f"| {k} | {v:.2f} |" for k, v in sorted(an["kernels_ms_per_step"].items(), key=lambda kv: -kv[1])
    ]
    if pt:
        lines += [
            "",
            f"PyTorch eager, CPU ms per step: {pt['step_ms']:.1f}, of which system time "
            f"{pt['system_ms_per_step']:.1f} ({pt['minor_faults_per_step']:.0f} minor page faults "
            "per step); its profiler's most expensive operators (self CPU ms per step):",
            "",
            "| operator | ms per step |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v:.2f} |" for k, v in pt["ops_ms_per_step"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import argparse
    import os
    import sys
    from pathlib import Path

    p = argparse.ArgumentParser(description="Where a CNN training step's time goes (one thread).")
    p.add_argument("--profile", action="store_true", help="per-layer and per-kernel profile (the default)")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch's profile")
    p.add_argument("--data-dir", default=os.environ.get("ANYNET_DATA_DIR", ""))
    args = p.parse_args()
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent)]
    import speed

    images, labels, _, _ = speed.load_mnist(args.data_dir)
    n = 128 * (args.steps + 5)
    result = profile_anynet(images[:n], labels[:n], steps=args.steps)
    torch_result = None if args.no_torch else profile_torch(images, labels, steps=min(args.steps, 40))
    print(profile_report(result, torch_result))
