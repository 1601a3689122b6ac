"""Data-parallel training under a real MPI launcher: ``mpiexec -n 2 python worker.py``.

Skipped, with the reason, where mpi4py or ``mpiexec`` is missing (``pip install mpi4py mpich``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # every test starts ranks with mpiexec

# The worker: the same seed, data and global batch whatever the number of ranks. Each rank
# writes its final weights; rank 0 also saves the model through anynet.train(save=...).
WORKER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import anynet
    from anynet.training import Callback

    out, mode = sys.argv[1], sys.argv[2]
    if mode == "gather":  # what step checkpoints use to collect every rank's generators
        from anynet.distributed import get_communicator
        comm = get_communicator("mpi")
        got = comm.gather_object({"rank": comm.rank, "state": np.arange(comm.rank + 1)})
        if comm.is_main:
            np.savez(os.path.join(out, "gathered.npz"), *[g["state"] for g in got])
        sys.exit(0 if (got is None) != comm.is_main else 1)
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 255, (10, 28, 28))
    y = rng.integers(0, 10, 4800)
    x = np.clip(centres[y] + rng.normal(0, 250, (4800, 28, 28)), 0, 255).astype(np.uint8)
    y = np.where(rng.random(4800) < 0.3, rng.integers(0, 10, 4800), y)  # noisy labels: a hard task

    from mpi4py import MPI
    rank = MPI.COMM_WORLD.Get_rank()

    class FailOnRank1(Callback):
        def on_epoch_end(self, network, epoch, logs):
            if rank == 1:
                raise OSError("disk full (a failure on rank 1 only)")

    class CtrlCOnRank1(Callback):  # as if Ctrl-C reached rank 1 alone, in epoch 2
        def __init__(self):
            self.epoch = 0
        def on_epoch_begin(self, network, epoch):
            self.epoch = epoch
        def on_batch_end(self, network, step, running):
            if rank == 1 and self.epoch == 1 and step == 7:
                import signal
                os.kill(os.getpid(), signal.SIGINT)

    options = dict(
        dataset=(x[:4000], y[:4000], x[4000:], y[4000:]),
        model="mlp-small", hidden=(32,), dropout=0.0, backend="numpy", epochs=4,
        batch_size=40, lr=3e-3, seed=5, validation=0.1, verbose=1,
        save=os.path.join(out, "model.safetensors"),
        callbacks={"fail": [FailOnRank1()], "sigint": [CtrlCOnRank1()]}.get(mode, []),
        distributed=None if mode == "single" else "mpi",
    )
    if mode == "mismatch":  # rank 1 started with other options
        options.update(batch_size=40 + 20 * rank, limit=3000 + 100 * rank)
    if mode == "sigint":
        options["checkpoint_dir"] = os.path.join(out, f"ckpt{rank}")
    try:
        result = anynet.train(**options)
    except KeyboardInterrupt:
        print(f"rank {rank}: interrupted", flush=True)
        sys.exit(130)
    except anynet.distributed.DistributedError as exc:
        print(f"rank {rank}: {exc}", file=sys.stderr, flush=True)
        sys.exit(3)
    weights = {f"{i}.{k}": v for i, layer in enumerate(result.model.get_weights()) for k, v in layer.items()}
    np.savez(os.path.join(out, f"rank{result.rank}.npz"), **weights)
    np.savez(os.path.join(out, f"history{result.rank}.npz"), **{k: np.asarray(v) for k, v in result.history.items()})
    """
)


def _mpiexec() -> str:
    pytest.importorskip("mpi4py", reason="mpi4py is not installed: pip install mpi4py mpich")
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec found (pip install mpich puts one beside python)")
    return found


def _run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    path = tmp_path_factory.mktemp("mpi") / "worker.py"
    path.write_text(WORKER)
    return path


def _weights(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def test_two_ranks_match_one_process(worker, tmp_path):
    mpiexec = _mpiexec()
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    single = _run([sys.executable, str(worker), str(one), "single"])
    assert single.returncode == 0, single.stderr
    double = _run([mpiexec, "-n", "2", sys.executable, str(worker), str(two), "mpi"])
    assert double.returncode == 0, double.stderr + double.stdout
    # every rank ends with bit-identical weights ...
    w0, w1, ref = _weights(two / "rank0.npz"), _weights(two / "rank1.npz"), _weights(one / "rank0.npz")
    for name in ref:
        np.testing.assert_array_equal(w0[name], w1[name])
        # ... equal to the one-process run's within float32 round-off, after 360 steps
        np.testing.assert_allclose(w0[name], ref[name], rtol=1e-3, atol=2e-5, err_msg=name)
    h2, h1 = _weights(two / "history0.npz"), _weights(one / "history0.npz")
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-4)
    np.testing.assert_allclose(h2["val_accuracy"], h1["val_accuracy"], atol=1e-9)
    # rank 0 alone printed and saved
    assert double.stdout.count("training mlp-small") == 1 and "2 ranks (mpi)" in double.stdout
    assert (two / "model.safetensors").exists()
    assert double.stderr.count("epoch 1/4") == 1


def test_a_failure_on_one_rank_stops_all(worker, tmp_path):
    mpiexec = _mpiexec()
    run = _run([mpiexec, "-n", "2", sys.executable, str(worker), str(tmp_path), "fail"], timeout=60)
    assert run.returncode != 0
    assert "rank 1 of 2: OSError: disk full" in run.stderr
    assert "stopping all 2 ranks" in run.stderr
    assert not (tmp_path / "rank0.npz").exists()


def test_ranks_started_with_other_options_stop_at_once_with_one_message(worker, tmp_path):
    mpiexec = _mpiexec()
    run = _run([mpiexec, "-n", "2", sys.executable, str(worker), str(tmp_path), "mismatch"], timeout=60)
    assert run.returncode != 0
    for rank in (0, 1):  # every rank says why, naming what differs and each rank's value
        marker = f"rank {rank}: the 2 ranks disagree on "
        assert marker in run.stderr, run.stderr
        said = run.stderr.split(marker, 1)[1].split("\n", 1)[0]
        assert "batch_size" in said and "limit" in said, run.stderr
    assert "batch_size (rank 0: 40, rank 1: 60)" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "model.safetensors").exists()


def test_ctrl_c_on_another_rank_stops_every_rank_after_the_same_step(worker, tmp_path):
    """Ctrl-C reaching rank 1 alone: every rank stops after the same step, rank 0 writes a
    checkpoint with every rank's generator positions, and each exits as interrupted."""
    from anynet.training import read_checkpoint

    mpiexec = _mpiexec()
    run = _run([mpiexec, "-n", "2", sys.executable, str(worker), str(tmp_path), "sigint"], timeout=60)
    assert run.returncode == 130, run.stderr + run.stdout
    assert "rank 0: interrupted" in run.stdout and "rank 1: interrupted" in run.stdout
    assert "checkpoint saved to" in run.stderr and "bug" not in run.stderr
    state = read_checkpoint(tmp_path / "ckpt0")
    assert (state["epoch"], state["step"]) == (1, 8) and len(state["random_state"]["ranks"]) == 2
    assert not (tmp_path / "ckpt1").exists()


def test_gather_object_collects_every_rank_on_rank_zero(worker, tmp_path):
    mpiexec = _mpiexec()
    run = _run([mpiexec, "-n", "2", sys.executable, str(worker), str(tmp_path), "gather"], timeout=60)
    assert run.returncode == 0, run.stderr + run.stdout
    with np.load(tmp_path / "gathered.npz") as f:
        assert [f[k].tolist() for k in f.files] == [[0], [0, 1]]
