"""Data parallelism on one process: sharding, the fused gradient buffer, ranks as threads
(:func:`anynet.distributed.thread_group`), the NCCL path with a stand-in NCCL, failures."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import anynet
from anynet.distributed import (
    DataParallel,
    DistributedError,
    GradientBucket,
    LocalCommunicator,
    get_communicator,
    shard_bounds,
    thread_group,
)
from anynet.distributed.comm import RankMismatchError
from anynet.distributed.groups import rank_backend
from anynet.distributed.nccl import NCCLCommunicator
from anynet.training import Callback
from anynet.training.checkpoint import read_checkpoint


@given(st.integers(0, 500), st.integers(0, 300), st.integers(1, 9))
def test_shards_cover_the_batch_in_order(lo, m, size):
    bounds = [shard_bounds(lo, lo + m, r, size) for r in range(size)]
    assert bounds[0][0] == lo and bounds[-1][1] == lo + m
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [b - a for a, b in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_bucket_packs_and_unpacks(backend):
    xp = backend.xp
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,), (2, 1, 3, 3)]
    params = [backend.asarray(rng.normal(size=s), dtype="float32") for s in shapes]
    grads = [backend.asarray(rng.normal(size=s), dtype="float32") for s in shapes]
    updates = [(f"{i}.W", p, g, i == 0) for i, (p, g) in enumerate(zip(params, grads))]
    loss, hits = backend.asarray(np.float32(0.5)), backend.asarray(np.float32(7.0))
    bucket = GradientBucket()
    flat = bucket.pack(xp, updates, [loss, hits])
    assert flat.shape == (12 + 4 + 18 + 2,) and bucket.size == 36
    back, (loss2, hits2) = bucket.unpack(xp, flat * 2)
    for (name, p, g, decay), (name2, p2, g2, decay2) in zip(updates, back):
        assert (name, decay) == (name2, decay2) and p2 is p
        np.testing.assert_allclose(anynet.to_numpy(g2), 2 * anynet.to_numpy(g))
    assert float(loss2) == 1.0 and float(hits2) == 14.0
    assert anynet.to_numpy(bucket.zeros(backend, xp.float32)).shape == (36,)
    with pytest.raises(DistributedError, match="layout"):
        bucket.pack(xp, updates[:2], [loss, hits])


def test_empty_bucket_cannot_make_zeros():
    with pytest.raises(DistributedError, match="batch_size >= ranks"):
        GradientBucket().zeros(anynet.get_backend("numpy"), np.float32)


# ---------------------------------------------------------------------- ranks as threads


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 255, (10, 8, 8))
    y = rng.integers(0, 10, n)
    x = np.clip(centres[y] + rng.normal(0, 120, (n, 8, 8)), 0, 255).astype(np.uint8)
    return x, y


def _net(extra=(), backend="numpy"):
    layers = [anynet.Flatten(), anynet.Dense(16), *extra, anynet.ReLU(), anynet.Dense(10)]
    return anynet.Network(layers, optimizer=anynet.Adam(3e-3), seed=3, backend=backend)


def _on_threads(comms, work, timeout=60):
    """Run ``work(comm)`` for each rank on its own thread; returns results or exceptions."""
    results: list = [None] * len(comms)

    def run(r):
        try:
            results[r] = work(comms[r])
        except BaseException as exc:
            results[r] = exc

    threads = [threading.Thread(target=run, args=(r,)) for r in range(len(comms))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a rank hung"
    return results


def _weights(net):
    return [v for layer in net.get_weights() for _, v in sorted(layer.items())]


@pytest.mark.parametrize("size, batch_size, n", [(2, 30, 300), (3, 50, 101)])
def test_ranks_match_one_process(size, batch_size, n):
    """Same seed and global batch: identical weights on every rank, equal to one process's
    within float32 round-off (the second case ends with a 1-sample batch: empty shards)."""
    x, y = _data(n)
    fit = dict(epochs=3, batch_size=batch_size, seed=1, validation_data=_data(60, 1))
    ref = _net()
    ref_history = ref.fit(x, y, **fit)
    nets = [_net() for _ in range(size)]
    out = _on_threads(thread_group(size), lambda c: nets[c.rank].fit(x, y, distributed=c, **fit))
    for history in out:
        assert history["loss"] == pytest.approx(ref_history["loss"], rel=1e-5)
        assert history["val_accuracy"] == pytest.approx(ref_history["val_accuracy"], abs=1e-9)
    for net in nets[1:]:
        for a, b in zip(_weights(nets[0]), _weights(net)):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(_weights(nets[0]), _weights(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_local_communicator_is_the_single_process_run():
    x, y = _data()
    a, b = _net(), _net()
    a.fit(x, y, epochs=2, batch_size=32, seed=1)
    b.fit(x, y, epochs=2, batch_size=32, seed=1, distributed="local")
    for u, v in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(u, v)


def test_dropout_batchnorm_and_augmentation_stay_in_step():
    """Per-rank dropout masks and augmentation; BatchNorm statistics averaged each epoch:
    the ranks still end with the same parameters and buffers."""
    from anynet.data import Augmenter

    x, y = _data()
    nets = [_net((anynet.BatchNorm(), anynet.Dropout(0.3))) for _ in range(2)]
    aug = Augmenter(rotation=10.0, translation=1.0)
    out = _on_threads(
        thread_group(2),
        lambda c: nets[c.rank].fit(x, y, epochs=2, batch_size=30, seed=1, augment=aug, distributed=c),
    )
    assert all(isinstance(h, dict) for h in out), out
    for a, b in zip(_weights(nets[0]), _weights(nets[1])):
        np.testing.assert_array_equal(a, b)


def test_rank_zero_alone_writes_checkpoints(tmp_path):
    x, y = _data()
    nets = [_net() for _ in range(2)]
    _on_threads(
        thread_group(2),
        lambda c: nets[c.rank].fit(
            x, y, epochs=1, batch_size=30, distributed=c, checkpoint_dir=tmp_path / f"r{c.rank}"
        ),
    )
    assert any((tmp_path / "r0").iterdir())
    assert not (tmp_path / "r1").exists()


class _CrashAt(Callback):
    """A crash (not Ctrl-C: nothing is saved then) at ``step`` of ``epoch`` on every rank."""

    def __init__(self, epoch, step):
        self.epoch, self.step, self.now = epoch, step, -1

    def on_epoch_begin(self, network, epoch):
        self.now = epoch

    def on_batch_end(self, network, step, running):
        if (self.now, step) == (self.epoch, self.step):
            raise RuntimeError("power cut")


def test_mid_epoch_resume_restores_every_ranks_generators(tmp_path):
    """A step checkpoint gathers each rank's dropout and augmentation positions; resuming
    from it ends where the uninterrupted run ends, bit for bit."""
    from anynet.data import Augmenter

    x, y = _data()
    aug = Augmenter(rotation=10.0, translation=1.0)

    def run(c, net, **kw):
        return net.fit(x, y, epochs=2, batch_size=30, seed=1, augment=aug, distributed=c, **kw)

    straight = [_net((anynet.Dropout(0.3),)) for _ in range(2)]
    _on_threads(thread_group(2), lambda c: run(c, straight[c.rank]))
    ckpt = tmp_path / "ckpt"
    crashed = _on_threads(
        thread_group(2),
        lambda c: run(
            c,
            _net((anynet.Dropout(0.3),)),
            checkpoint_dir=ckpt,
            checkpoint_steps=13,
            callbacks=[_CrashAt(1, 5)],
        ),
    )
    assert all("power cut" in str(e) for e in crashed), crashed
    state = read_checkpoint(ckpt)
    assert (state["epoch"], state["step"]) == (1, 3) and len(state["random_state"]["ranks"]) == 2
    resumed = [_net((anynet.Dropout(0.3),)) for _ in range(2)]
    _on_threads(thread_group(2), lambda c: run(c, resumed[c.rank], checkpoint_dir=ckpt, resume=True))
    for a, b in zip(_weights(straight[1]), _weights(resumed[1])):
        np.testing.assert_array_equal(a, b)


class _FailOn(Callback):
    def __init__(self, rank, comm):
        self.rank, self.comm = rank, comm

    def on_epoch_end(self, network, epoch, logs):
        if self.comm.rank == self.rank:
            raise OSError("disk full")


def test_a_failure_on_one_rank_stops_the_others():
    x, y = _data()
    out = _on_threads(
        thread_group(2),
        lambda c: _net().fit(x, y, epochs=3, batch_size=30, distributed=c, callbacks=[_FailOn(1, c)]),
    )
    assert all(isinstance(e, DistributedError) for e in out)
    assert "OSError: disk full" in str(out[1]) and "stopping all 2 ranks" in str(out[1])
    assert "another rank failed" in str(out[0])


def test_divergence_is_raised_alike_on_every_rank():
    x, y = _data()
    out = _on_threads(
        thread_group(2),
        lambda c: anynet.Network(
            [anynet.Flatten(), anynet.Dense(16), anynet.ReLU(), anynet.Dense(10)],
            optimizer=anynet.SGD(1e6),
            seed=3,
        ).fit(x, y, epochs=2, batch_size=30, distributed=c),
    )
    assert all(isinstance(e, anynet.TrainingDivergedError) for e in out), out


def test_global_batch_needs_a_sample_per_rank():
    x, y = _data()
    out = _on_threads(thread_group(2), lambda c: _net().fit(x, y, batch_size=1, distributed=c))
    assert all(isinstance(e, ValueError) and "at least one sample per rank" in str(e) for e in out)


def test_train_reports_rank_and_size():
    x, y = _data()
    comms = thread_group(2)
    out = _on_threads(
        comms,
        lambda c: anynet.train(
            dataset=(x, y), model=_net(), epochs=1, batch_size=30, verbose=0, distributed=c
        ),
    )
    assert [(r.rank, r.world_size) for r in out] == [(0, 2), (1, 2)]


# ---------------------------------------------------------------------- NCCL without a GPU


class _FakeNccl:
    """Stands in for ``cupy.cuda.nccl``: buffers are NumPy arrays (the "pointers"), reduced
    over a thread group."""

    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM = "f32", "f64", "sum"

    def __init__(self, size):
        self.group = thread_group(size)
        self.calls: list[tuple] = []

    def get_unique_id(self):
        return (42,)

    def NcclCommunicator(self, size, uid, rank):
        assert uid == (42,)
        fake = self

        class Comm:
            def allReduce(self, send, recv, count, dtype, op, stream):
                assert send is recv and count == send.shape[0] and op == "sum"
                assert dtype == {"float32": "f32", "float64": "f64"}[send.dtype.name]
                fake.calls.append(("allReduce", rank, count))
                recv[...] = fake.group[rank].allreduce_host(send)

            def bcast(self, buf, count, dtype, root, stream):
                fake.calls.append(("bcast", rank, count))
                buf[...] = fake.group[rank].bcast_object(buf.copy())

        return Comm()


def test_nccl_path_with_a_stand_in():
    x, y = _data()
    fake = _FakeNccl(2)
    control = thread_group(2)
    nets = [_net() for _ in range(2)]

    def work(c):
        comm = NCCLCommunicator(c, fake, pointer=lambda a: a, stream=lambda: 0)
        return nets[c.rank].fit(x, y, epochs=2, batch_size=30, seed=1, distributed=comm)

    out = _on_threads(control, work)
    assert all(isinstance(h, dict) for h in out), out
    ref = _net()
    ref.fit(x, y, epochs=2, batch_size=30, seed=1)
    for a, b, c in zip(_weights(nets[0]), _weights(nets[1]), _weights(ref)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-6)
    steps = [c for c in fake.calls if c[0] == "allReduce"]
    assert len(steps) == 2 * 2 * 10  # one fused allreduce per step and rank
    assert {c[2] for c in steps} == {8 * 8 * 16 + 16 + 16 * 10 + 10 + 2}


def test_nccl_and_mpi_say_what_is_missing():
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(DistributedError, match="needs CuPy with NCCL"):
            from anynet.distributed.nccl import import_nccl

            import_nccl()
    with pytest.raises(ValueError, match="distributed must be"):
        get_communicator("gloo")
    assert get_communicator(None) is None
    assert isinstance(get_communicator("local"), LocalCommunicator)


def test_rank_backend():
    comm = thread_group(2)[1]
    assert rank_backend("numpy", comm) == "numpy"
    assert rank_backend("cpu", None) == "cpu"
    comm.name = "nccl"
    with pytest.raises(DistributedError, match="trains on CuPy, one GPU per rank"):
        rank_backend("numpy", comm)
    try:
        anynet.get_backend("torch")
    except anynet.BackendError:
        return
    with pytest.raises(DistributedError, match=r"not on torch:cpu; for PyTorch .* use distributed='mpi'"):
        rank_backend("torch", comm)  # torch:cuda too: NCCL needs CuPy buffers, one GPU per rank


def test_real_nccl_on_one_rank():
    """NCCL itself, one rank, no MPI: the collectives and a short data-parallel fit on the GPU
    (skipped without CuPy, NCCL and a CUDA GPU)."""
    from anynet.distributed.nccl import import_nccl

    try:
        import_nccl()
    except DistributedError as exc:
        pytest.skip(f"no usable NCCL here: {str(exc)[-120:]}")
    comm = NCCLCommunicator.create(LocalCommunicator())
    gpu = comm.gpu
    assert gpu is not None and comm.device_index == int(gpu.device_label)
    values = np.arange(7, dtype=np.float32)
    np.testing.assert_array_equal(anynet.to_numpy(comm.allreduce(gpu.asarray(values), gpu)), values)
    np.testing.assert_array_equal(anynet.to_numpy(comm.broadcast(gpu.asarray(values), gpu)), values)
    x, y = _data()
    net = _net(backend=gpu.spec)
    history = net.fit(x, y, epochs=2, batch_size=30, seed=1, distributed=comm)
    ref = _net(backend=gpu.spec)
    ref.fit(x, y, epochs=2, batch_size=30, seed=1)
    assert history["loss"] == pytest.approx(ref.history["loss"], rel=1e-4)
    with pytest.raises(DistributedError, match="trains on CuPy"):
        _net().fit(x, y, epochs=1, batch_size=30, distributed=comm)  # a NumPy network


# ---------------------------------------------------------------------- MPI on one process


def test_mpi_communicator_on_one_process(backend, monkeypatch):
    pytest.importorskip("mpi4py", reason="mpi4py is not installed: pip install mpi4py mpich")
    from anynet.distributed.mpi import MPICommunicator, cuda_aware_mpi

    comm = MPICommunicator()
    assert comm.size == 1 and comm.rank == 0 and "MPI" in comm.describe()
    buf = backend.asarray(np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(anynet.to_numpy(comm.allreduce(buf, backend)), np.arange(5))
    np.testing.assert_array_equal(anynet.to_numpy(comm.broadcast(buf, backend)), np.arange(5))
    assert comm.allreduce_host([1.5, 2.0]).tolist() == [1.5, 2.0]
    assert comm.bcast_object({"a": 1}) == {"a": 1}
    comm.barrier()
    monkeypatch.setenv("ANYNET_CUDA_AWARE_MPI", "1")
    assert cuda_aware_mpi(comm.MPI)
    monkeypatch.setenv("ANYNET_CUDA_AWARE_MPI", "0")
    assert not cuda_aware_mpi(comm.MPI)


def test_data_parallel_describes_its_traffic():
    dp = DataParallel(LocalCommunicator())
    assert "0 steps" in dp.describe()
    with pytest.raises(ValueError):
        DataParallel(thread_group(2)[0]).check_batch(1)


# ---------------------------------------------------------------------- ranks that disagree


@pytest.mark.parametrize(
    "rank1, field",
    [
        (dict(batch_size=20), "batch_size"),
        (dict(seed=2), "seed"),
        (dict(n=240), "samples"),
        (dict(epochs=3), "epochs"),
        (dict(extra=(anynet.Dense(8),)), "parameters"),
    ],
    ids=["batch", "seed", "data", "epochs", "model"],
)
def test_ranks_that_disagree_all_stop_with_one_message(rank1, field):
    """Different options on one rank: every rank raises the same error naming the field,
    instead of pairing the wrong collectives and waiting forever."""

    def work(c):
        kw = dict(batch_size=30, seed=1, n=300, epochs=2, extra=()) | (rank1 if c.rank == 1 else {})
        x, y = _data(kw["n"])
        net = _net(kw["extra"])
        return net.fit(x, y, epochs=kw["epochs"], batch_size=kw["batch_size"], seed=kw["seed"], distributed=c)

    out = _on_threads(thread_group(2), work, timeout=20)
    assert all(isinstance(e, RankMismatchError) for e in out), out
    assert str(out[0]) == str(out[1]) and field in str(out[0]).splitlines()[0]
    assert "rank 0:" in str(out[0]) and "rank 1:" in str(out[0])


def test_train_ranks_with_another_limit_disagree():
    x, y = _data()
    out = _on_threads(
        thread_group(2),
        lambda c: anynet.train(
            dataset=(x, y), model="mlp-small", epochs=1, verbose=0, limit=200 + 50 * c.rank, distributed=c
        ),
        timeout=20,
    )
    assert all(isinstance(e, RankMismatchError) for e in out), out
    assert "limit (--limit)" not in str(out[0]) and "limit" in str(out[0]).splitlines()[0]


def test_rank_zero_reads_the_checkpoint_for_every_rank(tmp_path):
    """Node-local checkpoint folders: only rank 0's holds the checkpoint; every rank resumes
    from it (rank 0 reads and broadcasts it), and ``resume="auto"`` follows rank 0's choice."""
    x, y = _data()

    def run(c, net, **kw):
        return net.fit(x, y, epochs=2, batch_size=30, seed=1, distributed=c, **kw)

    straight = [_net() for _ in range(2)]
    _on_threads(thread_group(2), lambda c: run(c, straight[c.rank]))
    for resume in (True, "auto"):
        folders = [tmp_path / f"{resume}-r0", tmp_path / f"{resume}-r1"]
        crashed = _on_threads(
            thread_group(2),
            lambda c, folders=folders: run(
                c, _net(), checkpoint_dir=folders[c.rank], callbacks=[_CrashAt(1, 2)]
            ),
        )
        assert all(isinstance(e, DistributedError) for e in crashed), crashed
        assert not folders[1].exists()  # rank 0 alone writes
        resumed = [_net() for _ in range(2)]
        out = _on_threads(
            thread_group(2),
            lambda c, folders=folders, resumed=resumed, resume=resume: run(
                c, resumed[c.rank], checkpoint_dir=folders[c.rank], resume=resume
            ),
            timeout=20,
        )
        assert all(isinstance(h, dict) and len(h["loss"]) == 2 for h in out), out
        for net in resumed:
            for a, b in zip(_weights(straight[0]), _weights(net)):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_a_checkpoint_error_on_rank_zero_reaches_every_rank(tmp_path):
    x, y = _data()
    out = _on_threads(
        thread_group(2),
        lambda c: _net().fit(
            x, y, epochs=1, batch_size=30, distributed=c, checkpoint_dir=tmp_path, resume=True
        ),
        timeout=20,
    )
    assert all(isinstance(e, DistributedError) and "no checkpoint to resume from" in str(e) for e in out), out


def test_batchnorm_needs_two_samples_per_rank():
    x, y = _data(n=61)
    out = _on_threads(
        thread_group(2),
        lambda c: _net((anynet.BatchNorm(),)).fit(x, y, epochs=1, batch_size=3, distributed=c),
        timeout=20,
    )
    assert all(isinstance(e, ValueError) and "at least 2 samples (BatchNorm" in str(e) for e in out), out
    counts = []

    class Steps(Callback):
        def on_train_begin(self, network, epochs, steps):
            counts.append(steps)

    _on_threads(
        thread_group(2),
        lambda c: _net((anynet.BatchNorm(),)).fit(
            x, y, epochs=1, batch_size=30, distributed=c, callbacks=[Steps()]
        ),
    )
    assert counts == [2, 2]  # 30 + 30; the 61st sample would leave a shard of none
