"""anynet against PyTorch eager and JAX on the same work, on the same machine, in the same run.

    python benchmarks/speed.py --data-dir /work/shared/data                # ~5-10 min on 2 cores
    python benchmarks/speed.py --data-dir /work/shared/data --threads 1,2  # also 2 BLAS threads
    python benchmarks/speed.py --quick                                     # smoke test, ~1-2 min
    python benchmarks/speed.py --cnn --data-dir /work/shared/data          # the CNN contest, ~3 min

The CNN contest (``--cnn``, benchmarks/cnn_contest.py; ``speed-cnn.md``) runs anynet's and
PyTorch's epochs in turns, each framework in a process of its own (``--cnn-same-process``: both
in one, where glibc's heap as one left it changes how much fresh memory the other maps), and
measures each one's peak memory in a process of its own; ``python benchmarks/cnn_contest.py``
profiles a step of each, per layer and kernel.

The work (issue 6):

- MLP 784-256-128-10, ReLU, softmax cross-entropy, Adam lr 1e-3, real MNIST train set
  (60,000), reshuffled every epoch, batch 128 (the reference), 32 and 512;
- paper 000's 784-47-47 ReLU network, softmax + half squared error, full-batch gradient descent
  on 112,800 rows of real handwriting (the first 112,800 images of the EMNIST bymerge test
  split, the source of anynet's offline EMNIST stand-in; 47 classes).

OpenBLAS: the first configuration runs NumPy's OpenBLAS as the environment configures it (on
the reference machines ``OPENBLAS_CORETYPE=Haswell`` is set, i.e. AVX2 kernels on an AVX-512
CPU); when the CPU has AVX-512 and the kernels in use lack it, a second configuration runs with
``OPENBLAS_CORETYPE=SKYLAKEX`` (``--openblas-core default`` skips it). Target verdicts are given
for both; PyTorch (MKL) and JAX (XLA) are unaffected by that variable.

Contestants, all started from the same initial weights:

- anynet on NumPy (the backend this issue tunes); anynet on its PyTorch-tensor and
  array-api-strict backends (fewer steps, scaled to an epoch, clearly labelled);
- PyTorch eager at its best CPU settings: fused Adam (foreach where fused is missing),
  ``torch.set_flush_denormal(True)`` during its epochs, the same number of threads;
- JAX, when installed: ``jit`` of one training step, and ``jit`` of a whole epoch
  (``lax.scan`` over the batches).

How it measures. Each configuration (thread count, OpenBLAS kernel) runs in a child process
whose BLAS / OpenMP / XLA thread counts are set before any library loads. Inside it the
contestants take turns, one epoch each per round, so that all of them see the same load on a
shared machine; the tables report the median (and min) over rounds of both wall time and
process CPU time. With one thread, CPU time is the robust figure on a busy machine (it does
not count time spent waiting for a core); the target ratios are taken on it, and the wall
ratios are shown beside them.

The arithmetic lower bound is the matmul work (2*m*n*k for each product a from-scratch
network must compute: forward, weight gradients, and input gradients of all but the first
layer) divided by the matmul peak measured in the same process with a 2048x2048 float32
product; the "shape bound" times NumPy's own matmuls at the actual shapes of a step. Peak
memory is measured in separate child processes (tracemalloc for NumPy, which NumPy reports
its buffers to, and the growth of peak RSS (VmHWM) for every contestant; the uint8 data set
is loaded before the baseline). Results: ``benchmarks/results/speed-cpu.md`` and ``.json``;
with a CUDA GPU, a GPU section (CuPy and PyTorch CUDA at batch 128 and 8192, fraction of the
matmul peak) in the same file and ``speed-gpu.json``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import itertools
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from memory import reset_peak_rss, rss_bytes

ROOT = Path(__file__).resolve().parents[1]
MLP_SIZES = (784, 256, 128, 10)
GD_SIZES = (784, 47, 47)
GD_ROWS = 112_800
MNIST_N = 60_000


# =========================================================================== small helpers


class Clock:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self):
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0


def summary(samples):
    """Median and min of a list of (wall, cpu) pairs."""
    walls = [w for w, _ in samples]
    cpus = [c for _, c in samples]
    return {
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
        "wall_min": min(walls),
        "cpu_min": min(cpus),
        "n": len(samples),
        "walls": walls,
        "cpus": cpus,
    }


def mlp_flops(n_samples: int, sizes=MLP_SIZES) -> float:
    """Matmul FLOPs of one pass over ``n_samples``: forward, weight gradients, and input
    gradients of every layer but the first (nobody needs d loss / d pixels)."""
    pairs = list(itertools.pairwise(sizes))
    fwd = sum(2 * a * b for a, b in pairs)
    igrad = sum(2 * a * b for a, b in pairs[1:])
    return float(n_samples) * (2 * fwd + igrad)


def openblas_info() -> dict:
    """Core type, thread count and build of the OpenBLAS that NumPy loaded (via ctypes, as
    threadpoolctl does); empty when NumPy uses another BLAS."""
    import numpy  # noqa: F401  (loads the library)

    info = {}
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return info
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                try:
                    corename = getattr(lib, f"{prefix}get_corename{suffix}")
                    config = getattr(lib, f"{prefix}get_config{suffix}")
                    threads = getattr(lib, f"{prefix}get_num_threads{suffix}")
                except AttributeError:
                    continue
                corename.restype = config.restype = ctypes.c_char_p
                return {
                    "library": Path(path).name,
                    "core": corename().decode(),
                    "config": config().decode().strip(),
                    "threads": threads(),
                }
    return info


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


AVX512_CORES = ("SKYLAKEX", "COOPERLAKE", "SAPPHIRERAPIDS", "ZEN4", "ZEN5")


def suggested_openblas_core() -> str | None:
    """SKYLAKEX when the CPU has AVX-512 but NumPy's OpenBLAS runs kernels without it (on the
    machines this was written on, because the environment sets OPENBLAS_CORETYPE=Haswell;
    OpenBLAS 0.3.31's own detection picks SkylakeX there)."""
    need = {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"}
    if not need <= cpu_flags():
        return None
    core = openblas_info().get("core", "")
    if not core or core.upper() in AVX512_CORES:
        return None
    return "SKYLAKEX"


def machine_info() -> dict:
    import numpy as np

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        for key in (
            "Model name",
            "CPU(s)",
            "Thread(s) per core",
            "Core(s) per socket",
            "L2 cache",
            "L3 cache",
            "Hypervisor vendor",
        ):
            if key in fields:
                info[key] = fields[key].strip()
        info["avx512"] = "avx512f" in cpu_flags()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/meminfo") as f:
            info["memory_GiB"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["numpy_blas"] = (
            f"{blas.get('name')} {blas.get('version')} ({blas.get('openblas configuration', '')})"
        )
    except Exception:
        pass
    info["openblas_runtime"] = openblas_info()
    info["env_openblas"] = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    for name in ("torch", "jax", "jaxlib", "array_api_compat", "array_api_strict", "cupy"):
        try:
            mod = __import__(name)
            info[name] = getattr(mod, "__version__", "?")
        except Exception:
            info[name] = None
    try:
        import torch

        blas = [
            part.split("=", 1)[1]
            for part in torch.__config__.show().replace(",", " ").split()
            if part.startswith("BLAS_INFO=")
        ]
        info["torch_blas"] = blas[0] if blas else "?"
    except Exception:
        pass
    return info


# =========================================================================== data


def load_mnist(data_dir):
    """(train images, train labels, test images, test labels) as host uint8 / int64."""
    import numpy as np

    from anynet.data import load

    ds = load("mnist", data_dir=data_dir, download=False, progress=False)
    tr, te = ds.train, ds.test
    return tr.images, np.asarray(tr.labels, np.int64), te.images, np.asarray(te.labels, np.int64)


def load_gd_rows(data_dir, rows=GD_ROWS):
    """``rows`` images of real 47-class handwriting: the EMNIST bymerge test split (in file
    order), or MNIST train tiled when it is missing (said in the description)."""
    import numpy as np

    from anynet.data import DataError, read_idx_pair

    d = Path(data_dir) / "emnist-bymerge"
    try:
        x, y = read_idx_pair(
            d / "emnist-bymerge-test-images-idx3-ubyte.gz", d / "emnist-bymerge-test-labels-idx1-ubyte.gz"
        )
        x, y = x[:rows], y[:rows].astype(np.int64)
        if len(x) == rows:
            return x, y, f"first {rows:,} images of the EMNIST bymerge test split (real, 47 classes)"
    except (OSError, DataError):
        pass
    xm, ym, _, _ = load_mnist(data_dir)
    reps = -(-rows // len(xm))
    return (
        np.concatenate([xm] * reps)[:rows],
        np.concatenate([ym] * reps)[:rows],
        f"MNIST train tiled to {rows:,} rows (EMNIST bymerge not found; labels 0-9 of 47)",
    )


# =========================================================================== matmul peak / bounds


def _peak(matmul, n, reps, inner):
    """Best GFLOP/s (wall and CPU) of ``inner`` calls of an n x n float32 ``matmul``, over ``reps``."""
    best_w = best_c = float("inf")
    for _ in range(reps):
        with Clock() as c:
            for _ in range(inner):
                matmul()
        best_w, best_c = min(best_w, c.wall), min(best_c, c.cpu)
    flops = inner * 2.0 * n**3
    return {"n": n, "gflops_wall": flops / best_w / 1e9, "gflops_cpu": flops / best_c / 1e9}


def numpy_peak(n=2048, reps=3, inner=3):
    import numpy as np

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    return _peak(lambda: a @ a, n, reps, inner)


def torch_peak(n=2048, reps=3, inner=3):
    import torch

    a = torch.rand(n, n)
    a @ a
    return _peak(lambda: a @ a, n, reps, inner)


def jax_peak(n=2048, reps=3, inner=3):
    import jax
    import jax.numpy as jnp

    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    return _peak(lambda: f(a).block_until_ready(), n, reps, inner)


def shape_bound(batch, sizes, n_samples, reps=5):
    """NumPy matmul time for ``n_samples`` at the shapes of a training step with ``batch`` rows:
    forward ``h @ W``, weight gradient ``h.T @ g`` and input gradient ``g @ W.T`` (all but the
    first layer), min over ``reps``. What anynet's matmuls cost at best, with this BLAS."""
    import numpy as np

    rng = np.random.default_rng(0)
    pairs = list(itertools.pairwise(sizes))
    hs = [rng.random((batch, a), dtype=np.float32) for a, _ in pairs]
    gs = [rng.random((batch, b), dtype=np.float32) for _, b in pairs]
    ws = [rng.random((a, b), dtype=np.float32) for a, b in pairs]

    def step():
        for i, (h, g, w) in enumerate(zip(hs, gs, ws)):
            h @ w
            h.T @ g
            if i:
                g @ w.T

    inner = max(1, int(2e8 // max(mlp_flops(batch, sizes), 1)))
    step()
    best_w = best_c = float("inf")
    for _ in range(reps):
        with Clock() as c:
            for _ in range(inner):
                step()
        best_w, best_c = min(best_w, c.wall), min(best_c, c.cpu)
    scale = n_samples / (batch * inner)
    return {
        "wall": best_w * scale,
        "cpu": best_c * scale,
        "gflops_cpu": mlp_flops(batch * inner, sizes) / best_c / 1e9,
    }


# =========================================================================== contestants


class EpochClock:
    """An anynet callback timing each epoch (wall and CPU) from inside fit()."""

    def __init__(self):
        from anynet.training import Callback

        outer = self

        class _CB(Callback):
            def on_epoch_begin(self, network, epoch):
                outer.t0 = (time.perf_counter(), time.process_time())

            def on_epoch_end(self, network, epoch, logs):
                outer.last = (time.perf_counter() - outer.t0[0], time.process_time() - outer.t0[1])
                outer.logs = dict(logs)

        self.callback = _CB()


def initial_weights(sizes, seed=0):
    """He-initialised weights of anynet.mlp / Dense (drawn on the host), as numpy arrays:
    [(W (in, out), b (out,)), ...]. Every contestant starts from these."""
    import anynet
    from anynet import layers as L

    layers = [L.Flatten()]
    for width in sizes[1:-1]:
        layers += [L.Dense(width), L.ReLU()]
    layers.append(L.Dense(sizes[-1], init="glorot"))
    net = anynet.Network(layers, backend="numpy", seed=seed, input_shape=(sizes[0],))
    return [(w["W"], w["b"]) for w in net.get_weights() if w]


class AnynetRunner:
    """anynet ``Network.fit`` one epoch at a time (``steps`` limits the samples per epoch)."""

    def __init__(self, backend, batch, x, y, weights, kind="mlp", lr=None, steps=None, label=None):
        import anynet
        from anynet import layers as L

        self.label = label or f"anynet ({backend})"
        sizes = [weights[0][0].shape[0]] + [w.shape[1] for w, _ in weights]
        if kind == "mlp":
            net = anynet.mlp(
                tuple(sizes[1:-1]),
                num_classes=sizes[-1],
                backend=backend,
                seed=0,
                optimizer=anynet.Adam(lr=lr or 1e-3),
                input_shape=(sizes[0],),
            )
        else:  # paper 000: 784-47-47, softmax + half squared error, gradient descent
            net = anynet.Network(
                [L.Flatten(), L.Dense(sizes[1]), L.ReLU(), L.Dense(sizes[2])],
                loss="half_squared_error",
                optimizer=anynet.GradientDescent(lr=lr or 1.0),
                backend=backend,
                seed=0,
                input_shape=(sizes[0],),
            )
        net.set_weights(
            [
                {"W": w, "b": b} if layer.params else {}
                for layer, (w, b) in zip(net.layers, _spread(net, weights))
            ]
        )
        self.net, self.batch, self.round = net, batch, 0
        if steps is not None and batch is not None:
            x, y = x[: steps * batch], y[: steps * batch]
        # the data go to the device once, as fit() would do on every call
        self.x = net.inputs(x) if backend != "numpy" else x
        self.y = y
        self.samples = x.shape[0]
        self.clock = EpochClock()
        self.fit_options: dict = {}  # more keyword arguments of fit (e.g. compile=True)

    def epoch(self):
        self.net.fit(
            self.x,
            self.y,
            epochs=1,
            batch_size=self.batch,
            seed=1000 + self.round,
            shuffle=self.batch is not None,
            callbacks=[self.clock.callback],
            **self.fit_options,
        )
        self.round += 1
        return self.clock.last

    def train_metrics(self):
        return self.clock.logs["loss"], self.clock.logs["accuracy"]

    def accuracy(self, x, y):
        return self.net.evaluate(x, y)["accuracy"]


def _spread(net, weights):
    """Pair each layer of ``net`` with the next (W, b) when it has parameters."""
    it = iter(weights)
    return [next(it) if layer.params else (None, None) for layer in net.layers]


class TorchRunner:
    """PyTorch eager, best CPU settings: fused Adam (else foreach), flush-denormal on during its
    epochs, data on the device once, one randperm per epoch, sums kept on the device."""

    def __init__(self, batch, x, y, weights, kind="mlp", lr=None, steps=None, device="cpu", threads=None):
        import numpy as np
        import torch

        self.torch, self.device = torch, torch.device(device)
        if threads:
            torch.set_num_threads(threads)
        layers = []
        for i, (w, b) in enumerate(weights):
            lin = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if i < len(weights) - 1:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers).to(self.device)
        self.kind = kind
        params = self.model.parameters()
        if kind == "mlp":
            try:
                self.opt = torch.optim.Adam(params, lr=lr or 1e-3, fused=True)
                self.opt_name = "Adam(fused=True)"
            except (RuntimeError, TypeError, ValueError):
                self.opt = torch.optim.Adam(list(self.model.parameters()), lr=lr or 1e-3, foreach=True)
                self.opt_name = "Adam(foreach=True)"
        else:
            self.opt = torch.optim.SGD(params, lr=lr or 1.0, foreach=True)
            self.opt_name = "SGD(foreach=True)"
        if steps is not None and batch is not None:
            x, y = x[: steps * batch], y[: steps * batch]
        flat = x.reshape(x.shape[0], -1)
        self.x = torch.from_numpy(flat).to(self.device)
        if self.x.dtype != torch.float32:
            self.x = self.x.float().div_(255.0)
        self.y = torch.from_numpy(np.asarray(y, np.int64)).to(self.device)
        self.classes = weights[-1][0].shape[1]
        if kind != "mlp":
            self.t = torch.nn.functional.one_hot(self.y, self.classes).float()
        self.batch = batch or self.x.shape[0]
        self.samples = self.x.shape[0]
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(0)
        self.last = (float("nan"), float("nan"))

    def epoch(self):
        torch = self.torch
        F = torch.nn.functional
        old = torch.is_flush_denormal_on() if hasattr(torch, "is_flush_denormal_on") else False
        torch.set_flush_denormal(True)
        try:
            with Clock() as c:
                n, bs = self.samples, self.batch
                loss_sum = torch.zeros((), device=self.device)
                correct = torch.zeros((), device=self.device, dtype=torch.int64)
                order = torch.randperm(n, generator=self.gen, device=self.device) if bs < n else None
                for lo in range(0, n, bs):
                    if order is None:
                        xb, yb = self.x[lo : lo + bs], self.y[lo : lo + bs]
                    else:
                        idx = order[lo : lo + bs]
                        xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
                    out = self.model(xb)
                    if self.kind == "mlp":
                        loss = F.cross_entropy(out, yb)
                    else:
                        tb = self.t if order is None and bs >= n else self.t.index_select(0, idx)
                        p = torch.softmax(out, dim=1)
                        loss = 0.5 * ((p - tb) ** 2).sum() / out.shape[0]
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.opt.step()
                    with torch.no_grad():
                        loss_sum += loss.detach() * xb.shape[0]
                        correct += (out.argmax(1) == yb).sum()
                self.metrics = (loss_sum.item() / n, correct.item() / n)  # the one sync per epoch
        finally:
            torch.set_flush_denormal(bool(old))
        self.last = (c.wall, c.cpu)
        return self.last

    def train_metrics(self):
        return self.metrics

    def accuracy(self, x, y):
        torch = self.torch
        with torch.no_grad():
            xt = torch.from_numpy(x.reshape(x.shape[0], -1)).to(self.device).float().div_(255.0)
            pred = self.model(xt).argmax(1).cpu().numpy()
        return float((pred == y).mean())


class JaxRunner:
    """JAX: ``mode="step"`` jits one training step (gather, forward, grad, Adam/GD) called once
    per batch; ``mode="epoch"`` jits a whole epoch as ``lax.scan`` over the batches (the
    remainder batch, if any, with the step function). Sums stay on the device."""

    def __init__(self, batch, x, y, weights, mode="step", kind="mlp", lr=None, steps=None):
        import jax
        import jax.numpy as jnp
        import numpy as np

        self.jax, self.jnp, self.np = jax, jnp, np
        self.mode, self.kind = mode, kind
        self.label = f"JAX jit per {'step' if mode == 'step' else 'epoch'}"
        if steps is not None and batch is not None:
            x, y = x[: steps * batch], y[: steps * batch]
        flat = x.reshape(x.shape[0], -1)
        self.x = jnp.asarray(flat)
        if flat.dtype != np.float32:  # uint8 pixels: scaled on the device, as the others do
            self.x = self.x.astype(jnp.float32) / 255.0
        self.y = jnp.asarray(np.asarray(y, np.int32))
        self.samples = int(self.x.shape[0])
        self.batch = batch or self.samples
        self.classes = weights[-1][0].shape[1]
        self.params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in weights]
        zeros = lambda: [(jnp.zeros_like(w), jnp.zeros_like(b)) for w, b in self.params]
        self.state = (zeros(), zeros(), jnp.zeros((), jnp.float32))
        self.lr = lr or (1e-3 if kind == "mlp" else 1.0)
        self.rng = np.random.default_rng(0)
        self._build()
        self._warm_up()

    def _build(self):
        jax, jnp = self.jax, self.jnp
        kind, lr, classes = self.kind, self.lr, self.classes
        b1, b2, eps = 0.9, 0.999, 1e-8

        def forward(params, xb):
            h = xb
            for i, (w, b) in enumerate(params):
                h = h @ w + b
                if i < len(params) - 1:
                    h = jax.nn.relu(h)
            return h

        def loss_fn(params, xb, yb):
            z = forward(params, xb)
            if kind == "mlp":
                logp = jax.nn.log_softmax(z)
                loss = -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))
            else:
                p = jax.nn.softmax(z)
                t = jax.nn.one_hot(yb, classes, dtype=z.dtype)
                loss = 0.5 * jnp.sum((p - t) ** 2) / z.shape[0]
            return loss, z

        def update(params, state, grads):
            if kind != "mlp":
                return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), state
            m, v, t = state
            t = t + 1.0
            m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
            v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
            c2 = jnp.sqrt(1.0 - b2**t)
            step = lr * c2 / (1.0 - b1**t)
            params = jax.tree_util.tree_map(
                lambda p, m, v: p - step * m / (jnp.sqrt(v) + eps * c2), params, m, v
            )
            return params, (m, v, t)

        def full_step(params, state, sums, xb, yb):
            (loss, z), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, xb, yb)
            params, state = update(params, state, grads)
            hits = jnp.sum(jnp.argmax(z, axis=1) == yb)
            return params, state, (sums[0] + loss * xb.shape[0], sums[1] + hits)

        def step(params, state, sums, x, y, idx):
            return full_step(params, state, sums, jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0))

        def epoch(params, state, sums, x, y, order):
            def body(carry, idx):
                p, s, acc = carry
                return step(p, s, acc, x, y, idx), None

            (params, state, sums), _ = jax.lax.scan(body, (params, state, sums), order)
            return params, state, sums

        self._step = jax.jit(step, donate_argnums=(0, 1, 2))
        self._full_step = jax.jit(full_step, donate_argnums=(0, 1, 2))  # full batch: no gather
        self._epoch = jax.jit(epoch, donate_argnums=(0, 1, 2))
        self._predict = jax.jit(lambda params, x: jnp.argmax(forward(params, x), axis=1))

    def _sums(self):
        jnp = self.jnp
        return (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))

    def _copy(self, tree):
        return self.jax.tree_util.tree_map(lambda a: self.jnp.array(a, copy=True), tree)

    def _warm_up(self):
        """Compile every shape the timed epochs use, on copies (donated inputs die)."""
        np = self.np
        n, bs = self.samples, self.batch
        if bs >= n:
            self._full_step(self._copy(self.params), self._copy(self.state), self._sums(), self.x, self.y)[2][
                0
            ].block_until_ready()
            return
        full, rest = divmod(n, bs)
        shapes = [bs] + ([rest] if rest else [])
        for size in shapes:
            self._step(
                self._copy(self.params),
                self._copy(self.state),
                self._sums(),
                self.x,
                self.y,
                np.arange(size, dtype=np.int32),
            )[2][0].block_until_ready()
        if self.mode == "epoch" and full:
            order = np.arange(full * bs, dtype=np.int32).reshape(full, bs)
            self._epoch(self._copy(self.params), self._copy(self.state), self._sums(), self.x, self.y, order)[
                2
            ][0].block_until_ready()

    def epoch(self):
        np = self.np
        n, bs = self.samples, self.batch
        with Clock() as c:
            order = self.rng.permutation(n).astype(np.int32) if bs < n else np.arange(n, dtype=np.int32)
            params, state, sums = self.params, self.state, self._sums()
            full = n // bs
            if bs >= n:
                params, state, sums = self._full_step(params, state, sums, self.x, self.y)
                lo = n
            elif self.mode == "epoch" and full:
                params, state, sums = self._epoch(
                    params, state, sums, self.x, self.y, order[: full * bs].reshape(full, bs)
                )
                lo = full * bs
            else:
                lo = 0
            for start in range(lo, n, bs):
                params, state, sums = self._step(
                    params, state, sums, self.x, self.y, order[start : start + bs]
                )
            self.metrics = (float(sums[0]) / n, int(sums[1]) / n)  # the one sync per epoch
        self.params, self.state = params, state
        self.last = (c.wall, c.cpu)
        return self.last

    def train_metrics(self):
        return self.metrics

    def accuracy(self, x, y):
        np, jnp = self.np, self.jnp
        xt = jnp.asarray(x.reshape(x.shape[0], -1).astype(np.float32) / 255.0)
        return float((np.asarray(self._predict(self.params, xt)) == y).mean())


# =========================================================================== scenarios


def round_robin(runners: dict, rounds: int, log) -> dict:
    """One epoch of each contestant per round, ``rounds`` times; per-contestant timings."""
    times = {name: [] for name in runners}
    for r in range(rounds):
        for name, runner in runners.items():
            gc.collect()
            w, c = runner.epoch()
            times[name].append((w, c))
            log(f"    round {r + 1}/{rounds} {name:28s} wall {w:7.3f} s  cpu {c:7.3f} s")
    return {name: summary(t) for name, t in times.items()}


def scenario_mlp(
    batch,
    rounds,
    data,
    weights,
    threads,
    log,
    steps=None,
    have_torch=True,
    have_jax=True,
    test_accuracy=False,
):
    xf, y, xt, yt = data
    runners = {"anynet (numpy)": AnynetRunner("numpy", batch, xf, y, weights, steps=steps)}
    if have_torch:
        runners["PyTorch eager"] = TorchRunner(batch, xf, y, weights, steps=steps, threads=threads)
    if have_jax:
        runners["JAX jit per step"] = JaxRunner(batch, xf, y, weights, mode="step", steps=steps)
        runners["JAX jit per epoch"] = JaxRunner(batch, xf, y, weights, mode="epoch", steps=steps)
    samples = runners["anynet (numpy)"].samples
    log(f"  MLP batch {batch}: {samples:,} samples per timed epoch")
    res = round_robin(runners, rounds, log)
    scale = MNIST_N / samples
    for name, r in res.items():
        for key in ("wall", "cpu", "wall_min", "cpu_min"):
            r[key] *= scale
        r["train_loss"], r["train_accuracy"] = runners[name].train_metrics()
        if test_accuracy:
            r["test_accuracy"] = runners[name].accuracy(xt, yt)
        if isinstance(runners[name], TorchRunner):
            r["optimizer"] = runners[name].opt_name
    return {
        "batch": batch,
        "samples_timed": samples,
        "scaled_to": MNIST_N,
        "epochs_trained": rounds,
        "results": res,
    }


def scenario_gd(rounds, xg, yg, threads, log, have_torch=True, have_jax=True, lr=1.0):
    import numpy as np

    weights = initial_weights(GD_SIZES)
    xf = xg.reshape(xg.shape[0], -1).astype(np.float32)
    xf *= 1.0 / 255.0
    runners = {"anynet (numpy)": AnynetRunner("numpy", None, xf, yg, weights, kind="gd", lr=lr)}
    if have_torch:
        runners["PyTorch eager"] = TorchRunner(None, xf, yg, weights, kind="gd", lr=lr, threads=threads)
    if have_jax:
        runners["JAX jit per step"] = JaxRunner(None, xf, yg, weights, mode="step", kind="gd", lr=lr)
    log(f"  784-47-47 full-batch GD on {xf.shape[0]:,} rows (one warm-up iteration each)")
    for runner in runners.values():  # warm-up (JAX compiled already; first-touch of buffers)
        runner.epoch()
    res = round_robin(runners, rounds, log)
    for name, r in res.items():
        r["train_loss"], r["train_accuracy"] = runners[name].train_metrics()
    return {"rows": int(xf.shape[0]), "iterations_timed": rounds, "lr": lr, "results": res}


def scenario_other_backends(data, weights, steps, log):
    """anynet's other CPU backends at batch 128 on a few steps (scaled to an epoch)."""
    from anynet.backend import BackendError, get_backend

    xf, y, _, _ = data
    out = {}
    for spec in ("torch", "array_api_strict"):
        try:
            get_backend(spec)
        except BackendError as exc:
            out[spec] = {"skipped": str(exc)}
            continue
        runner = AnynetRunner(spec, 128, xf, y, weights, steps=steps, label=f"anynet ({spec})")
        samples = []
        for _ in range(2):
            samples.append(runner.epoch())
        s = summary(samples)
        scale = MNIST_N / runner.samples
        for key in ("wall", "cpu", "wall_min", "cpu_min"):
            s[key] *= scale
        s["steps_timed"] = steps
        out[spec] = s
        log(f"  anynet ({spec}) batch 128, {steps} steps: cpu {s['cpu']:.2f} s/epoch (scaled)")
    return out


def scenario_subnormal(data, log, steps=1200, window=50):
    """Adam's moments in the float32 subnormal range, with the flush (every FLUSH_EVERY steps)
    on and off, and (diagnostic only) with the CPU's flush-to-zero / denormals-are-zero bits
    set through PyTorch, which is what ``torch.set_flush_denormal`` does.

    - dead units: after 50 ordinary steps every unit of the first hidden layer is killed
      (bias -1e4); the gradients of W1, b1 and W2 are exactly 0 from then on and m decays by
      0.9 a step, reaching subnormals ~750 steps later (and exact zero ~150 steps after that);
    - tiny gradients: inputs scaled by 1e-19, so the gradients of the first two weight
      matrices are ~1e-20 and g*g (and hence v) is subnormal from the first step.

    Each ``window`` steps the step time and the number of subnormal moments are recorded (the
    counting itself is not timed).
    """
    import numpy as np

    import anynet
    from anynet import optimizers as O

    xf, y, _, _ = data
    tiny = np.finfo(np.float32).tiny
    try:
        import torch
    except ImportError:
        torch = None

    def count(net):
        m_sub = v_sub = 0
        for state in net.optimizer.state.values():
            m_sub += int(np.count_nonzero((state["m"] != 0) & (np.abs(state["m"]) < tiny)))
            v_sub += int(np.count_nonzero((state["v"] != 0) & (np.abs(state["v"]) < tiny)))
        return m_sub, v_sub

    out = {}
    for case in ("dead units", "tiny gradients"):
        out[case] = {}
        variants = ["flush on (every 64 steps)", "flush off"] + (["flush off, CPU FTZ/DAZ"] if torch else [])
        for variant in variants:
            net = anynet.mlp((256, 128), backend="numpy", seed=0, input_shape=(784,))
            x = xf[: window * 128 * 2]  # trained on for steps // (2 * window) epochs
            if case == "tiny gradients":
                x = x * np.float32(1e-19)
            yy = y[: x.shape[0]]
            saved = O.FLUSH_EVERY
            O.FLUSH_EVERY = saved if variant.startswith("flush on") else 0
            ftz = variant.endswith("FTZ/DAZ")
            windows = []  # (ms per step, subnormal m, subnormal v) for each window

            class Mark(anynet.Callback):
                t = None
                steps_done = 0

                def on_batch_end(self, network, step, running):
                    self.steps_done += 1
                    if self.steps_done % window:
                        return
                    now = time.process_time()
                    if self.t is not None:
                        windows.append([1e3 * (now - self.t) / window, *count(network)])  # noqa: B023 (runs in this iteration)
                    else:
                        count(network)
                    self.t = time.process_time()

            try:
                net.fit(x[: 50 * 128], yy[: 50 * 128], epochs=1, batch_size=128, shuffle=False)
                if case == "dead units":
                    net.layers[1].params["b"][...] = -1e4
                if ftz:
                    torch.set_flush_denormal(True)
                net.fit(
                    x,
                    yy,
                    epochs=max(1, steps // (2 * window)),
                    batch_size=128,
                    shuffle=False,
                    callbacks=[Mark()],
                )
            finally:
                O.FLUSH_EVERY = saved
                if ftz:
                    torch.set_flush_denormal(False)
            ms = [w[0] for w in windows]
            worst = max(range(len(ms)), key=ms.__getitem__)
            total = sum(int(st["m"].size) for st in net.optimizer.state.values())
            out[case][variant] = {
                "window_steps": window,
                "windows": windows,
                "moments": total,
                "ms_per_step_median": statistics.median(ms),
                "ms_per_step_first": statistics.median(ms[:3]),
                "ms_per_step_worst": ms[worst],
                "worst_window_end_step": (worst + 2) * window,
                "max_subnormal_m": max(w[1] for w in windows),
                "max_subnormal_v": max(w[2] for w in windows),
                "steps_with_subnormals": window * sum(1 for w in windows if w[1] or w[2]),
            }
            r = out[case][variant]
            log(
                f"  subnormal [{case}] {variant:28s} median {r['ms_per_step_median']:.2f} ms/step, worst "
                f"{r['ms_per_step_worst']:.2f}; max subnormal m {r['max_subnormal_m']}, v {r['max_subnormal_v']}"
            )
    return out


def micro_subnormal():
    """One Adam update over 200,704 float32 parameters (the first layer) with normal and with
    subnormal moments: how much this CPU charges for subnormal operands."""
    import numpy as np

    from anynet.backend import get_backend

    k = get_backend("numpy")
    n = 784 * 256
    p, s = np.ones(n, np.float32), np.empty(n, np.float32)
    res = {}
    for label, (gv, mv, vv) in {
        "normal moments": (1e-3, 1e-4, 1e-7),
        "subnormal m and v (dead unit)": (0.0, 1e-39, 1e-39),
    }.items():
        g = np.full(n, gv, np.float32)
        m, v = np.full(n, mv, np.float32), np.full(n, vv, np.float32)
        best = float("inf")
        for _ in range(5):
            t0 = time.process_time()
            for _ in range(50):
                m.fill(mv)
                v.fill(vv)
                k.adam_update(p, g, m, v, s, 0.9, 0.999, 1e-3, 1e-8)
            best = min(best, (time.process_time() - t0) / 50)
        res[label] = best * 1e6
    return res


# =========================================================================== workers


def worker_cpu(args):
    import numpy as np

    threads = args.threads_one
    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    have_torch = have_jax = True
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        have_torch = False
    try:
        import jax  # noqa: F401
    except ImportError:
        have_jax = False
    if args.no_jax:
        have_jax = False
    res = {
        "threads": threads,
        "openblas": openblas_info(),
        "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
        "have_torch": have_torch,
        "have_jax": have_jax,
        "loadavg_start": os.getloadavg(),
    }
    log(
        f"[config threads={threads} OPENBLAS_CORETYPE={res['openblas_coretype_env']}] "
        f"OpenBLAS core {res['openblas'].get('core')}"
    )

    x, y, xt, yt = load_mnist(args.data_dir)
    xf = x.reshape(x.shape[0], -1).astype(np.float32)
    xf *= 1.0 / 255.0
    data = (xf, y, xt, yt)
    weights = initial_weights(MLP_SIZES)

    res["peak"] = {"numpy": numpy_peak()}
    if have_torch:
        res["peak"]["torch"] = torch_peak()
    if have_jax:
        res["peak"]["jax"] = jax_peak()
    log(
        "  matmul peak (2048^2 float32, GFLOP/s per CPU-second): "
        + ", ".join(f"{k} {v['gflops_cpu']:.0f}" for k, v in res["peak"].items())
    )

    q = args.quick
    res["mlp"] = {}
    plan = [
        (128, args.rounds, 100 if q else None),
        (32, max(2, args.rounds - 2), 150 if q else args.b32_steps),
        (512, max(2, args.rounds - 2), 40 if q else None),
    ]
    for batch, rounds, steps in plan:
        res["mlp"][batch] = scenario_mlp(
            batch,
            rounds,
            data,
            weights,
            threads,
            log,
            steps=steps,
            have_torch=have_torch,
            have_jax=have_jax,
            test_accuracy=batch == 128,
        )
        res["mlp"][batch]["shape_bound"] = shape_bound(batch, MLP_SIZES, MNIST_N)
    res["mlp_flops_per_epoch"] = mlp_flops(MNIST_N)

    xg, yg, desc = load_gd_rows(args.data_dir, rows=20_000 if q else GD_ROWS)
    res["gd"] = scenario_gd(
        3 if q else args.gd_iterations, xg, yg, threads, log, have_torch=have_torch, have_jax=have_jax
    )
    res["gd"]["data"] = desc
    res["gd"]["flops_per_iteration"] = mlp_flops(xg.shape[0], GD_SIZES)
    res["gd"]["shape_bound"] = shape_bound(xg.shape[0], GD_SIZES, xg.shape[0], reps=3)
    del xg, yg

    res["other_backends"] = scenario_other_backends(data, weights, 20 if q else args.other_steps, log)
    if args.subnormal:
        res["subnormal_micro_us"] = micro_subnormal()
        res["subnormal"] = scenario_subnormal(data, log, steps=300 if q else 1200)
    res["loadavg_end"] = os.getloadavg()
    return res


def worker_mem(args):
    """Peak memory of one contestant training one epoch at batch 128 from uint8 MNIST."""

    name = args.framework
    x, y, _, _ = load_mnist(args.data_dir)
    steps = 100 if args.quick else None
    if steps:
        x, y = x[: steps * 128], y[: steps * 128]
    weights = initial_weights(MLP_SIZES)
    if name.startswith("torch"):
        import torch

        torch.set_num_threads(args.threads_one)
    if name.startswith("jax"):
        import jax  # noqa: F401
    gc.collect()
    base_rss, _ = rss_bytes()
    reset_ok = reset_peak_rss()
    out = {"framework": name, "samples": int(x.shape[0]), "peak_rss_reset": reset_ok}
    if name == "anynet-tracemalloc":
        import tracemalloc

        import anynet

        tracemalloc.start()
        net = anynet.mlp((256, 128), backend="numpy", seed=0)
        net.fit(x, y, epochs=1, batch_size=128)
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["tracemalloc_peak"] = peak
    elif name == "anynet":
        import anynet

        net = anynet.mlp((256, 128), backend="numpy", seed=0)
        net.fit(x, y, epochs=1, batch_size=128)
    elif name == "torch":
        runner = TorchRunner(128, x, y, weights, threads=args.threads_one)  # uint8 -> float32 on the device
        runner.epoch()
    elif name == "jax":
        runner = JaxRunner(128, x, y, weights, mode="step")
        runner.epoch()
    _, peak_rss = rss_bytes()
    out["rss_delta"] = peak_rss - base_rss
    n = out["samples"]
    params = sum(w.size + b.size for w, b in weights)
    out["budget"] = {
        "dataset_float32": n * 784 * 4,
        "targets_float32": n * 10 * 4,
        "model_params_grads_adam": 4 * 4 * params,
        "batch_and_activations": 4 * 128 * (784 + 2 * (256 + 128) + 2 * 10),
    }
    return out


def _cnn_data(args):
    x, y, _, _ = load_mnist(args.data_dir)
    return x[: args.cnn_samples], y[: args.cnn_samples]


def worker_cnn(args):
    """anynet's CNN preset against the same network in PyTorch eager, interleaved epochs."""
    from cnn_contest import contest, contest_in_processes

    x, y = _cnn_data(args)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    if args.cnn_same_process:
        res = contest(x, y, args.cnn_rounds, log)
    else:
        res = contest_in_processes(args.data_dir, int(x.shape[0]), args.cnn_rounds, log)
    scale = MNIST_N / x.shape[0]
    for r in res.values():
        r["cpu_per_mnist_epoch"] = r["cpu_median"] * scale
    return {
        "samples": int(x.shape[0]),
        "scaled_to": MNIST_N,
        "processes": "both in one process" if args.cnn_same_process else "each framework in its own process",
        "results": res,
    }


def worker_cnn_mem(args):
    """Peak memory of one CNN epoch of ``--framework`` (anynet or torch), in this process."""
    from cnn_contest import peak_memory

    x, y = _cnn_data(args)
    return peak_memory(args.framework, x, y)


def worker_gpu(args):
    """CuPy and PyTorch CUDA at batch 128 and 8192, with the fraction of the matmul peak."""
    import numpy as np

    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    res = {"available": {}}
    x, y, xt, yt = load_mnist(args.data_dir)
    xf = x.reshape(x.shape[0], -1).astype(np.float32)
    xf *= 1.0 / 255.0
    weights = initial_weights(MLP_SIZES)
    flops = mlp_flops(MNIST_N)
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
        a = cupy.random.random((8192, 8192), dtype=cupy.float32)
        a @ a
        cupy.cuda.Device().synchronize()
        t0 = time.perf_counter()
        for _ in range(5):
            a @ a
        cupy.cuda.Device().synchronize()
        res["cupy_peak_gflops"] = 5 * 2 * 8192**3 / (time.perf_counter() - t0) / 1e9
        res["available"]["cupy"] = cupy.__version__
        res["device"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        for batch in (128, 8192):
            runner = AnynetRunner("cupy", batch, xf, y, weights)
            runner.epoch()  # warm-up (kernels compile)
            s = summary([runner.epoch() for _ in range(3)])
            s["test_accuracy"] = runner.accuracy(xt, yt)
            s["peak_fraction"] = flops / s["wall"] / 1e9 / res["cupy_peak_gflops"]
            res[f"anynet (cupy) b{batch}"] = s
            log(f"  anynet cupy b{batch}: {s['wall']:.3f} s/epoch")
    except Exception as exc:
        res["cupy_error"] = f"{type(exc).__name__}: {exc}"
    try:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
        a = torch.rand(8192, 8192, device="cuda")
        a @ a
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(5):
            a @ a
        torch.cuda.synchronize()
        res["torch_peak_gflops"] = 5 * 2 * 8192**3 / (time.perf_counter() - t0) / 1e9
        res["available"]["torch"] = torch.__version__
        res.setdefault("device", torch.cuda.get_device_name(0))
        for batch in (128, 8192):
            runner = TorchRunner(batch, xf, y, weights, device="cuda")
            runner.epoch()
            s = summary([runner.epoch() for _ in range(3)])
            s["test_accuracy"] = runner.accuracy(xt, yt)
            s["optimizer"] = runner.opt_name
            s["peak_fraction"] = flops / s["wall"] / 1e9 / res["torch_peak_gflops"]
            res[f"PyTorch eager (cuda) b{batch}"] = s
            log(f"  torch cuda b{batch}: {s['wall']:.3f} s/epoch")
    except Exception as exc:
        res["torch_cuda_error"] = f"{type(exc).__name__}: {exc}"
    return res


# =========================================================================== parent: run + report


def child_env(threads: int, core: str | None) -> dict:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "")
        + (
            " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
            if threads == 1
            else f" --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}"
        )
    ).strip()
    if core:  # else the environment's own setting (if any) stands
        env["OPENBLAS_CORETYPE"] = core
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_child(worker: str, threads: int, core: str | None, args, extra=()) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        worker,
        "--threads",
        str(threads),
        "--data-dir",
        str(args.data_dir),
        "--rounds",
        str(args.rounds),
        "--b32-steps",
        str(args.b32_steps),
        "--gd-iterations",
        str(args.gd_iterations),
        "--other-steps",
        str(args.other_steps),
        "--cnn-samples",
        str(args.cnn_samples),
        "--cnn-rounds",
        str(args.cnn_rounds),
        *(["--cnn-same-process"] if args.cnn_same_process else []),
        *extra,
    ]
    if args.quick:
        cmd.append("--quick")
    if args.no_jax:
        cmd.append("--no-jax")
    proc = subprocess.run(cmd, env=child_env(threads, core), stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return {"error": f"worker {worker} exited with {proc.returncode}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if isinstance(result.get("mlp"), dict):  # JSON made the batch sizes strings
        result["mlp"] = {int(k): v for k, v in result["mlp"].items()}
    return result


def fmt_bytes(n):
    return f"{n / 2**20:.0f} MiB"


def judge(ok):
    return "**met**" if ok else "**not met**"


def report(meta, configs, mem, gpu, path_md: Path):
    L = []
    add = L.append
    add("# anynet speed: CPU (NumPy) against PyTorch eager and JAX\n")
    add(
        f"Generated by `{meta['command']}` on {meta['date']}, tree {meta.get('tree', '?')} "
        f"(wall {meta['elapsed_s'] / 60:.1f} min).\n"
    )
    m = meta["machine"]
    add("## Machine\n")
    add(
        f"- CPU: {m.get('Model name', '?')}, {m.get('CPU(s)', '?')} logical CPUs "
        f"({m.get('Core(s) per socket', '?')} cores/socket, {m.get('Thread(s) per core', '?')} thread/core), "
        f"L2 {m.get('L2 cache', '?')}, L3 {m.get('L3 cache', '?')}, AVX-512: {m.get('avx512')}, "
        f"hypervisor: {m.get('Hypervisor vendor', 'none')}; memory {m.get('memory_GiB', '?')} GiB"
    )
    add(
        f"- Python {m['python']}, NumPy {m['numpy']} with {m.get('numpy_blas', '?')}; "
        f"OpenBLAS runs its **{m['openblas_runtime'].get('core', '?')}** kernels here"
        + (
            f" because the environment sets OPENBLAS_CORETYPE={m['env_openblas']['OPENBLAS_CORETYPE']}"
            if m.get("env_openblas", {}).get("OPENBLAS_CORETYPE")
            else " (its own CPU detection)"
        )
        + (
            f" (environment: {', '.join(f'{k}={v}' for k, v in m['env_openblas'].items())})"
            if m.get("env_openblas")
            else ""
        )
    )
    add(
        f"- PyTorch {m.get('torch')} (BLAS: {m.get('torch_blas', '?')}), JAX {m.get('jax')} / jaxlib {m.get('jaxlib')}, "
        f"array-api-compat {m.get('array_api_compat')}, array-api-strict {m.get('array_api_strict')}, "
        f"CuPy {m.get('cupy') or 'not installed'}"
    )
    add(
        f"- Shared machine: load average {meta['loadavg_start'][0]:.1f} at the start, "
        f"{meta['loadavg_end'][0]:.1f} at the end (other engineers' jobs); this process's nice value "
        f"{meta['nice']}. Timings are noisy: only ratios within one configuration are meaningful, and "
        "the CPU-time columns (not counting time spent waiting for a core) are the robust ones.\n"
    )

    for cfg in configs:
        r = cfg["result"]
        if "error" in r:
            add(f"## {cfg['title']}\n\n{r['error']}\n")
            continue
        add(f"## {cfg['title']}\n")
        core = r["openblas"].get("core")
        pk = r["peak"]
        if r["threads"] > 1:
            add(
                f"**{r['threads']} threads: CPU time counts every thread (spinning included), so the wall "
                "columns are the ones to compare here, and the lower-bound ratios (CPU) are only meaningful "
                "if the peak measurement got all cores (compare its CPU and wall rates). On a shared "
                "machine this configuration is at the mercy of the other jobs.**\n"
            )
        add(
            f"OpenBLAS core {core}, {r['threads']} thread(s) for every library. Matmul peak "
            f"(2048x2048 float32, best of 3, GFLOP/s per CPU-second / per wall-second): "
            + "; ".join(f"{k} {v['gflops_cpu']:.0f} / {v['gflops_wall']:.0f}" for k, v in pk.items())
            + f". Load average {r['loadavg_start'][0]:.1f} -> {r['loadavg_end'][0]:.1f}.\n"
        )
        peak_cpu, peak_wall = pk["numpy"]["gflops_cpu"], pk["numpy"]["gflops_wall"]
        lb_cpu = r["mlp_flops_per_epoch"] / peak_cpu / 1e9
        lb_wall = r["mlp_flops_per_epoch"] / peak_wall / 1e9
        add(
            f"Arithmetic lower bound, MLP: {r['mlp_flops_per_epoch'] / 1e9:.1f} GFLOP per epoch "
            f"/ NumPy peak = **{lb_cpu:.3f} s** CPU ({lb_wall:.3f} s wall).\n"
        )
        add(
            "| batch | contestant | s/epoch CPU (median) | min | s/epoch wall (median) | vs PyTorch (CPU / wall) "
            "| vs lower bound (CPU) | vs NumPy shape bound | train acc | test acc |"
        )
        add("|---|---|---|---|---|---|---|---|---|---|")
        for batch, sc in r["mlp"].items():
            res = sc["results"]
            torch_r = res.get("PyTorch eager")
            sb = sc["shape_bound"]
            note = (
                "" if sc["samples_timed"] == MNIST_N else f" ({sc['samples_timed']:,} samples timed, scaled)"
            )
            for name, v in res.items():
                vs_t = (
                    f"{v['cpu'] / torch_r['cpu']:.2f} / {v['wall'] / torch_r['wall']:.2f}" if torch_r else "-"
                )
                add(
                    f"| {batch}{note} | {name}{' ' + v['optimizer'] if 'optimizer' in v else ''} | {v['cpu']:.3f} | "
                    f"{v['cpu_min']:.3f} | {v['wall']:.3f} | {vs_t} | {v['cpu'] / lb_cpu:.2f} | "
                    f"{v['cpu'] / sb['cpu']:.2f} | {v['train_accuracy']:.4f} | "
                    + (f"{v['test_accuracy']:.4f} |" if "test_accuracy" in v else "- |")
                )
            add(
                f"| {batch} | *NumPy matmuls alone at these shapes* | {sb['cpu']:.3f} | | {sb['wall']:.3f} | | "
                f"{sb['cpu'] / lb_cpu:.2f} | 1.00 | | |"
            )
        add("")
        gd = r["gd"]
        lb_gd = gd["flops_per_iteration"] / peak_cpu / 1e9
        add(
            f"Paper 000, 784-47-47 full-batch gradient descent (lr {gd['lr']}), {gd['rows']:,} rows: "
            f"{gd['data']}. {gd['flops_per_iteration'] / 1e9:.1f} GFLOP per iteration, lower bound "
            f"**{lb_gd:.3f} s** CPU; NumPy matmuls alone at these shapes {gd['shape_bound']['cpu']:.3f} s "
            f"({gd['shape_bound']['gflops_cpu']:.0f} GFLOP/s).\n"
        )
        add(
            "| contestant | s/iteration CPU (median) | min | wall (median) | vs PyTorch (CPU) | vs lower bound (CPU) | vs shape bound | train loss / acc, last iteration |"
        )
        add("|---|---|---|---|---|---|---|---|")
        t_gd = gd["results"].get("PyTorch eager")
        for name, v in gd["results"].items():
            add(
                f"| {name} | {v['cpu']:.3f} | {v['cpu_min']:.3f} | {v['wall']:.3f} | "
                f"{(v['cpu'] / t_gd['cpu']) if t_gd else float('nan'):.2f} | {v['cpu'] / lb_gd:.2f} | "
                f"{v['cpu'] / gd['shape_bound']['cpu']:.2f} | {v['train_loss']:.6f} / {v['train_accuracy']:.4f} |"
            )
        add("")
        ob = r.get("other_backends", {})
        if ob:
            add(
                "anynet's other CPU backends, batch 128 (timed on a few steps and scaled to 60,000 samples; "
                "not tuned, for information):\n"
            )
            for spec, v in ob.items():
                if "skipped" in v:
                    add(f"- {spec}: skipped ({v['skipped']})")
                else:
                    an = r["mlp"][128]["results"]["anynet (numpy)"]
                    add(
                        f"- anynet on {spec}: {v['cpu']:.2f} s/epoch CPU ({v['wall']:.2f} wall), "
                        f"{v['cpu'] / an['cpu']:.1f}x anynet on NumPy; {v['steps_timed']} steps timed"
                    )
            add("")
        if "subnormal" in r:
            add("### Subnormal moments and the flush\n")
            mu = r["subnormal_micro_us"]
            add(
                "One Adam update of the 200,704 first-layer parameters (NumPy kernel): "
                + ", ".join(f"{k}: {v:.0f} us" for k, v in mu.items())
                + f" (x{list(mu.values())[1] / next(iter(mu.values())):.2f} for subnormals on this CPU).\n"
            )
            add(
                "| scenario | variant | ms/step median | ms/step worst window | steps with subnormal moments | max subnormal m | max subnormal v | moments |"
            )
            add("|---|---|---|---|---|---|---|---|")
            for case, variants in r["subnormal"].items():
                for variant, v in variants.items():
                    add(
                        f"| {case} | {variant} | {v['ms_per_step_median']:.2f} | {v['ms_per_step_worst']:.2f} "
                        f"(to step {v['worst_window_end_step']}) | {v['steps_with_subnormals']} | "
                        f"{v['max_subnormal_m']:,} | {v['max_subnormal_v']:,} | {v['moments']:,} |"
                    )
            add("")

    # ---------------------------------------------------------------- memory
    add("## Peak memory, one epoch at batch 128 from uint8 MNIST\n")
    b = next((v["budget"] for v in (mem or {}).values() if "budget" in v), None)
    if b:
        budget = sum(b.values())
        add(
            f"Budget (issue 6): data set as float32 ({fmt_bytes(b['dataset_float32'])}) + one-hot targets "
            f"({fmt_bytes(b['targets_float32'])}) + model with gradients and Adam moments "
            f"({b['model_params_grads_adam'] / 2**20:.1f} MiB) + one batch with activations "
            f"({b['batch_and_activations'] / 2**20:.1f} MiB) = {fmt_bytes(budget)}; target <= 1.5x = "
            f"{fmt_bytes(1.5 * budget)}. Measured after the uint8 images are loaded (the 45 MiB uint8 copy "
            "is the caller's). RSS growth over-counts (allocator arenas, library code first touched, "
            "PyTorch's and XLA's own pools), tracemalloc counts exactly the NumPy buffers anynet allocates.\n"
        )
        add("| contestant | tracemalloc peak | peak RSS growth | / budget |")
        add("|---|---|---|---|")
        for name, v in mem.items():
            if "error" in v:
                add(f"| {name} | {v['error']} | | |")
                continue
            tm = v.get("tracemalloc_peak")
            main = tm if tm is not None else v["rss_delta"]
            add(
                f"| {name} | {fmt_bytes(tm) if tm is not None else '-'} | "
                f"{fmt_bytes(v['rss_delta']) if tm is None else '(not measured: tracemalloc on)'} | {main / budget:.2f} |"
            )
        add("")

    # ---------------------------------------------------------------- targets
    add("## Targets (issue 6)\n")
    for line in targets(configs, mem):
        add(f"- {line}")
    add("")
    add("## GPU\n")
    if gpu and ("anynet (cupy) b128" in gpu or "PyTorch eager (cuda) b128" in gpu):
        add(
            f"Device: {gpu.get('device')}. Matmul peak (8192^2 float32): CuPy "
            f"{gpu.get('cupy_peak_gflops', float('nan')):.0f} GFLOP/s, PyTorch {gpu.get('torch_peak_gflops', float('nan')):.0f} GFLOP/s.\n"
        )
        add("| contestant | s/epoch (median of 3) | fraction of matmul peak | test acc |")
        add("|---|---|---|---|")
        for k, v in gpu.items():
            if isinstance(v, dict) and "wall" in v:
                add(f"| {k} | {v['wall']:.3f} | {v['peak_fraction']:.3f} | {v['test_accuracy']:.4f} |")
        for k in ("cupy_error", "torch_cuda_error"):
            if k in gpu:
                add(f"\n{k}: {gpu[k]}")
    else:
        add(
            "No CUDA GPU in this run: the CuPy and PyTorch-CUDA measurements (batch 128 and 8192, "
            "fraction of the matmul peak) were skipped. **CuPy on a GPU is unmeasured.** "
            + " ".join(f"({k}: {v})" for k, v in (gpu or {}).items() if k.endswith("error"))
        )
    path_md.write_text("\n".join(L) + "\n")


def targets(configs, mem):
    """One verdict per target and configuration (and one for memory)."""
    out = []
    for cfg in configs:
        r = cfg["result"]
        if "error" in r:
            out.append(f"[{cfg['title']}] no result: {r['error']}")
            continue
        tag = f"[{cfg['title']}]"
        pk = r["peak"]["numpy"]["gflops_cpu"]
        lb = r["mlp_flops_per_epoch"] / pk / 1e9
        res128 = r["mlp"][128]["results"]
        an = res128["anynet (numpy)"]
        if "PyTorch eager" in res128:
            t = res128["PyTorch eager"]
            ratio = an["cpu"] / t["cpu"]
            out.append(
                f"{tag} batch 128 epoch <= 1.0x PyTorch eager (best settings): {ratio:.2f}x CPU "
                f"({an['wall'] / t['wall']:.2f}x wall) -> {judge(ratio <= 1.0)}"
            )
            acc_gap = abs(an.get("test_accuracy", 0) - t.get("test_accuracy", 0))
            out.append(
                f"{tag} same accuracy as PyTorch after {r['mlp'][128]['epochs_trained']} epochs: test "
                f"{an.get('test_accuracy', 0):.4f} vs {t.get('test_accuracy', 0):.4f} "
                f"(gap {100 * acc_gap:.2f} points) -> {judge(acc_gap <= 0.01)}"
            )
        if "JAX jit per step" in res128:
            j = res128["JAX jit per step"]
            ratio = an["cpu"] / j["cpu"]
            out.append(
                f"{tag} stretch: batch 128 <= JAX jit per step: {ratio:.2f}x CPU "
                f"({an['wall'] / j['wall']:.2f}x wall) -> {judge(ratio <= 1.0)}; against JAX "
                f"whole-epoch jit {an['cpu'] / res128['JAX jit per epoch']['cpu']:.2f}x"
            )
        else:
            out.append(f"{tag} stretch: JAX not installed, not compared")
        a512 = r["mlp"][512]["results"]["anynet (numpy)"]["cpu"]
        out.append(
            f"{tag} batch 512 <= 1.5x arithmetic lower bound: {a512 / lb:.2f}x ({a512:.3f} s vs "
            f"{lb:.3f} s CPU; NumPy's matmuls alone at these shapes: "
            f"{r['mlp'][512]['shape_bound']['cpu'] / lb:.2f}x) -> {judge(a512 / lb <= 1.5)}"
        )
        gd = r["gd"]
        lbg = gd["flops_per_iteration"] / pk / 1e9
        ag = gd["results"]["anynet (numpy)"]["cpu"]
        out.append(
            f"{tag} full batch (784-47-47, {gd['rows']:,} rows) <= 1.5x lower bound: {ag / lbg:.2f}x "
            f"({ag:.3f} s vs {lbg:.3f} s; NumPy's matmuls alone at these shapes: "
            f"{gd['shape_bound']['cpu'] / lbg:.2f}x) -> {judge(ag / lbg <= 1.5)}"
        )
    tm = (mem or {}).get("anynet-tracemalloc", {})
    if "tracemalloc_peak" in tm:
        budget = sum(tm["budget"].values())
        out.append(
            f"peak memory <= 1.5x (data float32 + model + batch): {tm['tracemalloc_peak'] / budget:.2f}x "
            f"({fmt_bytes(tm['tracemalloc_peak'])} of {fmt_bytes(budget)}, tracemalloc) -> "
            f"{judge(tm['tracemalloc_peak'] / budget <= 1.5)}"
        )
    return out


def run_cnn_contest(args, argv) -> int:
    """``--cnn``: the time contest in one child, each framework's memory in its own child."""
    print("[speed] CNN: anynet cnn preset vs PyTorch eager, 1 thread, interleaved", file=sys.stderr)
    timing = run_child("cnn", 1, None, args)
    memory = {fw: run_child("cnn-mem", 1, None, args, ["--framework", fw]) for fw in ("anynet", "torch")}
    out_dir = Path(args.out) if args.out else ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/speed.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    record = {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine_info(),
        "loadavg": os.getloadavg(),
        "tree": git_tree(),
        "timing": timing,
        "memory": memory,
    }
    (out_dir / "speed-cnn.json").write_text(json.dumps(record, indent=1, default=float))
    md = out_dir / "speed-cnn.md"
    md.write_text(cnn_report(record))
    print(md.read_text())
    return 0


def git_tree() -> str:
    """The commit this checkout is at, and whether it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"{head} (with uncommitted changes)" if dirty else head


def cnn_report(record: dict) -> str:
    """The CNN contest as a short Markdown page."""
    res = record["timing"]["results"]
    an, pt = res["anynet cnn (numpy)"], res["PyTorch eager cnn"]
    mem = {k: v["rss_delta"] / 2**20 for k, v in record["memory"].items()}
    lines = [
        "# CNN training speed and memory: anynet against PyTorch eager (CPU)\n",
        f"`{record['command']}` on {record['date']}, tree {record.get('tree', '?')}; load average "
        f"{record['loadavg'][0]:.1f} at the end.\n",
        "Network: 3 x (conv 3x3 same, batch norm, ReLU, max pool 2) with 32/64/128 channels, dense 256,"
        " dropout 0.4, dense 10; Adam, batch 128, float32, one thread, same initial weights. "
        f"{record['timing']['samples']:,} MNIST images per timed epoch, scaled to 60,000; epochs of the two "
        f"interleaved, {record['timing'].get('processes', 'both in one process')}.\n",
        "| | CPU s per MNIST epoch (median) | min | peak memory added (MiB) |",
        "|---|---|---|---|",
        f"| anynet (NumPy) | {an['cpu_per_mnist_epoch']:.1f} | "
        f"{an['cpu_min'] * 60000 / record['timing']['samples']:.1f} | {mem['anynet']:.0f} |",
        f"| PyTorch eager | {pt['cpu_per_mnist_epoch']:.1f} | "
        f"{pt['cpu_min'] * 60000 / record['timing']['samples']:.1f} | {mem['torch']:.0f} |",
        "",
        f"**anynet / PyTorch: {an['cpu_median'] / pt['cpu_median']:.2f}x time, "
        f"{mem['anynet'] / mem['torch']:.2f}x memory** (goal: at most 1.5x time, stretch 1.0x; memory no"
        " more than PyTorch's).\n",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", default=os.environ.get("ANYNET_DATA_DIR", "/work/shared/data"))
    p.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2 (default 1)")
    p.add_argument(
        "--openblas-core",
        default="auto",
        help="'auto': also run with OPENBLAS_CORETYPE=SKYLAKEX when the CPU has AVX-512 and "
        "OpenBLAS chose a kernel without it; 'default': only as installed; or a core name",
    )
    p.add_argument(
        "--rounds", type=int, default=5, help="epochs per contestant at batch 128 (others: rounds-2)"
    )
    p.add_argument("--b32-steps", type=int, default=625, help="steps timed per epoch at batch 32 (scaled)")
    p.add_argument("--gd-iterations", type=int, default=8)
    p.add_argument("--other-steps", type=int, default=60, help="steps for anynet's torch / strict backends")
    p.add_argument("--quick", action="store_true", help="a smoke test: few steps, small full batch")
    p.add_argument("--no-jax", action="store_true")
    p.add_argument("--no-gpu", action="store_true")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results; --quick: /tmp)")
    p.add_argument("--tag", default="", help="suffix for the result files: speed-cpu-TAG.md")
    p.add_argument("--report-from", default=None, help="rewrite the .md from an earlier run's .json")
    p.add_argument(
        "--cnn",
        action="store_true",
        help="only the CNN contest: anynet's cnn preset vs PyTorch eager (time, memory)",
    )
    p.add_argument("--cnn-samples", type=int, default=12_800, help="images per timed CNN epoch (scaled)")
    p.add_argument("--cnn-rounds", type=int, default=3, help="timed CNN epochs per contestant")
    p.add_argument(
        "--cnn-same-process",
        action="store_true",
        help="run both CNN contestants in one process (default: one process each, epochs interleaved)",
    )
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--framework", default=None, help=argparse.SUPPRESS)
    p.add_argument("--subnormal", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.threads_one = int(str(args.threads).split(",")[0])

    if args.worker:
        sys.path.insert(0, str(ROOT))
        fn = {
            "cpu": worker_cpu,
            "mem": worker_mem,
            "gpu": worker_gpu,
            "cnn": worker_cnn,
            "cnn-mem": worker_cnn_mem,
        }[args.worker]
        print(json.dumps(fn(args), default=float))
        return 0

    if args.cnn:
        return run_cnn_contest(args, argv)

    if args.report_from:
        saved = json.loads(Path(args.report_from).read_text())
        for cfg in saved["configs"]:
            if isinstance(cfg["result"].get("mlp"), dict):
                cfg["result"]["mlp"] = {int(k): v for k, v in cfg["result"]["mlp"].items()}
        md = Path(args.report_from).with_suffix(".md")
        report(saved["meta"], saved["configs"], saved["memory"], saved["gpu"], md)
        print(f"[speed] rewrote {md}", file=sys.stderr)
        return 0

    t_start = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    meta = {
        "command": "python benchmarks/speed.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "tree": git_tree(),
        "machine": machine_info(),
        "nice": os.nice(0),
        "loadavg_start": os.getloadavg(),
    }
    if args.openblas_core == "auto":
        cores = [None] + ([suggested_openblas_core()] if suggested_openblas_core() else [])
    elif args.openblas_core == "default":
        cores = [None]
    else:
        cores = [args.openblas_core]
    threads = [int(t) for t in str(args.threads).split(",")]
    configs = []
    for t in threads:
        for core in cores:
            given = os.environ.get("OPENBLAS_CORETYPE")
            title = f"{t} thread{'s' if t > 1 else ''}, OpenBLAS " + (
                f"with OPENBLAS_CORETYPE={core} (override)"
                if core
                else f"as this environment sets it (OPENBLAS_CORETYPE={given})"
                if given
                else "as installed"
            )
            print(f"[speed] {title}", file=sys.stderr, flush=True)
            extra = ["--subnormal"] if (t == threads[0] and core == cores[0]) else []
            configs.append(
                {
                    "title": title,
                    "threads": t,
                    "core": core,
                    "primary": t == threads[0] and core == cores[0],
                    "result": run_child("cpu", t, core, args, extra),
                }
            )
    mem = {}
    for fw in ("anynet-tracemalloc", "anynet", "torch", "jax"):
        if fw == "jax" and args.no_jax:
            continue
        print(f"[speed] memory: {fw}", file=sys.stderr, flush=True)
        mem[fw] = run_child("mem", threads[0], cores[0], args, ["--framework", fw])
    gpu = None
    if not args.no_gpu:
        print("[speed] GPU (skipped cleanly without one)", file=sys.stderr, flush=True)
        gpu = run_child("gpu", threads[0], None, args)
    meta["loadavg_end"] = os.getloadavg()
    meta["elapsed_s"] = time.perf_counter() - t_start
    out_dir = Path(args.out) if args.out else (None if args.quick else ROOT / "benchmarks" / "results")
    if out_dir is None:
        out_dir = Path("/tmp")
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"speed-cpu{'-' + args.tag if args.tag else ''}.md"
    report(meta, configs, mem, gpu, md)
    md.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "configs": configs, "memory": mem, "gpu": gpu}, indent=1, default=float)
    )
    if gpu and ("anynet (cupy) b128" in gpu or "PyTorch eager (cuda) b128" in gpu):
        (out_dir / f"speed-gpu{'-' + args.tag if args.tag else ''}.json").write_text(
            json.dumps(gpu, indent=1, default=float)
        )
    print(md.read_text())
    print(f"[speed] wrote {md} and {md.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
