"""Atomic writes (models, checkpoints) against hostile targets (issue 21): anything at the path
that is not a regular file is refused, never replaced; write errors name their file and leave
the old file intact; temporaries of killed writers are removed by the next write, those of
running writers never. Every FIFO, device, socket and link is made inside ``tmp_path``."""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import anynet
from anynet import io
from anynet.io import ModelFileError, WriteTargetError, model_file, save_model, write_atomically
from anynet.training.checkpoint import write_checkpoint


@pytest.fixture(scope="module")
def net():
    rng = np.random.default_rng(0)
    model = anynet.mlp((4,), num_classes=3, backend="numpy")
    model.fit(rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), np.arange(12) % 3, epochs=1)
    return model


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _device(path: Path) -> Path:
    """A character device node like /dev/null (1, 3), made inside tmp_path (needs root)."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("cannot make a device node here (not root)")
    return path


def _socket(path: Path) -> Path:
    if len(os.fsencode(path)) >= 100:
        pytest.skip("tmp_path too long for a Unix socket")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()  # the socket file stays
    return path


def _symlink(path: Path) -> Path:
    real = path.with_name("real.safetensors")
    real.write_bytes(b"the link's target")
    path.symlink_to(real)
    return path


def _dangling(path: Path) -> Path:
    path.symlink_to(path.with_name("nowhere"))
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


TARGETS = {
    "FIFO": _fifo,
    "character device": _device,
    "socket": _socket,
    "symbolic link": _symlink,
    "dangling symbolic link": _dangling,
    "folder": _folder,
}


def _snapshot(folder: Path) -> dict:
    """Every entry of ``folder``: its name, kind and (for files) content."""
    return {
        p.name: (
            stat.S_IFMT(os.lstat(p).st_mode),
            p.read_bytes() if p.is_file() and not p.is_symlink() else None,
        )
        for p in folder.iterdir()
    }


@pytest.mark.parametrize("kind", TARGETS)
def test_write_refuses_anything_but_a_regular_file(tmp_path, kind):
    target = TARGETS[kind](tmp_path / "m.safetensors")
    before = _snapshot(tmp_path)
    with pytest.raises(WriteTargetError) as caught:
        write_atomically(target, b"new data")
    assert isinstance(caught.value, OSError)
    message = str(caught.value)
    assert str(target) in message and "not a regular file" in message
    assert "anynet replaces only regular files" in message
    assert kind.removeprefix("dangling ") in message
    assert _snapshot(tmp_path) == before  # nothing replaced, no temporary left


@pytest.mark.parametrize("kind", ["FIFO", "symbolic link"])
def test_models_and_checkpoints_refuse_them_too(tmp_path, net, kind):
    model = TARGETS[kind](tmp_path / "m.safetensors")
    checkpoints = tmp_path / "run"
    checkpoints.mkdir()
    TARGETS[kind](checkpoints / "checkpoint.safetensors")
    before = _snapshot(tmp_path), _snapshot(checkpoints)
    with pytest.raises(WriteTargetError, match=kind):
        save_model(net, model)
    with pytest.raises(WriteTargetError, match=kind):
        write_checkpoint(checkpoints, {"epoch": 1, "w": np.zeros(3)})
    assert (_snapshot(tmp_path), _snapshot(checkpoints)) == before


def test_a_fifo_put_there_during_the_write_is_not_replaced(tmp_path, monkeypatch):
    """The target is looked at again right before the rename."""
    target = tmp_path / "m.safetensors"
    target.write_bytes(b"old")
    fsync = os.fsync

    def swap_in_a_fifo(fd):
        fsync(fd)
        target.unlink()
        os.mkfifo(target)

    monkeypatch.setattr(os, "fsync", swap_in_a_fifo)
    with pytest.raises(WriteTargetError, match="FIFO"):
        write_atomically(target, b"new")
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # the temporary is gone


def test_a_regular_file_is_replaced(tmp_path):
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")
    write_atomically(target, b"new")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["m.bin"]


# --------------------------------------------------------------------------- write errors


@pytest.mark.parametrize("where", ["fsync", "write", "replace"])
def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch, where):
    target = tmp_path / "m.safetensors"
    target.write_bytes(b"old model")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "write":
        fdopen = os.fdopen

        def full_on_write(*args, **kwargs):
            f = fdopen(*args, **kwargs)
            f.write = full
            return f

        monkeypatch.setattr(os, "fdopen", full_on_write)
    else:
        monkeypatch.setattr(os, where, full)
    with pytest.raises(OSError) as caught:
        write_atomically(target, b"new model")
    assert caught.value.errno == errno.ENOSPC
    assert str(target) in str(caught.value) and "No space left on device" in str(caught.value)
    assert target.read_bytes() == b"old model"
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_a_folder_that_cannot_be_created_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "sub" / "m.safetensors"
    with pytest.raises(OSError) as caught:
        write_atomically(target, b"data")
    assert caught.value.errno is not None and str(target) in str(caught.value)


# --------------------------------------------------------------------------- stale temporaries

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from anynet import io

    def hang(fd):
        print("writing", flush=True)
        time.sleep(600)

    os.fsync = hang
    io.write_atomically(Path(sys.argv[1]), b"partial " * 1000)
    """
)


def _hung_writer(target: Path) -> subprocess.Popen:
    """A process stopped in the middle of writing ``target`` (its temporary written, not renamed)."""
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "writing\n"
    return child


def _temporaries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.endswith(".tmp")}


def test_temporaries_of_killed_writers_go_at_the_next_write_and_running_ones_stay(tmp_path):
    target = tmp_path / "m.safetensors"
    killed = _hung_writer(target)
    killed_tmp = _temporaries(tmp_path)
    assert len(killed_tmp) == 1 and str(killed.pid) in next(iter(killed_tmp))
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    running = _hung_writer(target)
    try:
        running_tmp = _temporaries(tmp_path) - killed_tmp
        assert len(running_tmp) == 1
        write_atomically(target, b"model")  # seconds after the kill, not a minute
        assert _temporaries(tmp_path) == running_tmp
        assert target.read_bytes() == b"model"
    finally:
        running.kill()
        running.wait()


def test_temporaries_with_new_names_are_recognised_by_model_file(tmp_path):
    target = tmp_path / "m.safetensors"
    child = _hung_writer(target)
    try:
        (tmp,) = _temporaries(tmp_path)
        with pytest.raises(ModelFileError, match=f"temporary file left by an interrupted save of {target}"):
            model_file(tmp_path / tmp)
        with pytest.raises(ModelFileError, match=f"no such model file: {target} .*{tmp} is there"):
            model_file(target)
    finally:
        child.kill()
        child.wait()


def test_temporaries_of_other_hosts_follow_the_age_rule(tmp_path):
    """A process id is only checked on its own host; elsewhere the age rule applies."""
    target = tmp_path / "m.safetensors"
    young = tmp_path / ".m.safetensors.999999999@another-host.abcdefgh.tmp"
    old = tmp_path / ".m.safetensors.999999999@another-host.ijklmnop.tmp"
    for path in (young, old):
        path.write_bytes(b"partial")
    past = time.time() - 2 * io.STALE_TMP_SECONDS
    os.utime(old, (past, past))
    write_atomically(target, b"model")
    assert _temporaries(tmp_path) == {young.name}
