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
    """Interleaved epochs of both; median and min CPU seconds per epoch of each."""
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
