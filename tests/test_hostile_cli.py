"""User errors on the command line get one ``anynet: error: ...`` line (exit status 1, or 2 for
usage errors), never a traceback or "this is a bug", and are caught before any slow work
(issue 13, point 11)."""

from __future__ import annotations

import os
import socket
import tempfile

import numpy as np
import pytest

import anynet
from anynet.cli import main
from anynet.io import save_model

pytestmark = pytest.mark.usefixtures("home")  # a fresh $ANYNET_HOME per test (conftest.py)


@pytest.fixture
def model(tmp_path):
    net = anynet.mlp((4,), num_classes=3, backend="numpy", input_shape=(28, 28))
    return save_model(net, tmp_path / "m.safetensors")


@pytest.fixture
def no_server(monkeypatch):
    """``anynet serve`` must fail before it starts a server."""
    server = pytest.importorskip("anynet.app.server", reason="the serve extras are not installed")
    monkeypatch.setattr(server, "serve", lambda **kw: pytest.fail("the server was started"))


@pytest.fixture
def no_training(monkeypatch):
    """``anynet train`` must fail before it loads data or trains."""
    import anynet.cli.common
    import anynet.run

    monkeypatch.setattr(anynet.run, "train", lambda **kw: pytest.fail("training started"))
    monkeypatch.setattr(anynet.cli.common, "_load_dataset", lambda *a: pytest.fail("data loaded"))


def _error(capsys, expected, status_line=True):
    err = capsys.readouterr().err
    assert "Traceback" not in err and "this is a bug" not in err, err
    lines = err.strip().splitlines()
    first = lines[0] if status_line else lines[-1]
    prefix = "anynet: error: " if status_line else "anynet serve: error: "
    assert first.startswith(prefix) and expected in first, err
    return first


# --------------------------------------------------------------------------- serve


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1", "http"])
def test_serve_port_out_of_range_is_a_usage_error(capsys, model, no_server, port):
    assert main(["serve", "--model", str(model), "--port", port]) == 2
    line = _error(capsys, "argument --port: ", status_line=False)
    assert "1 and 65535" in line or "(1-65535)" in line


def test_serve_port_already_in_use(capsys, model, no_server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", str(model), "--port", str(port)]) == 1
    _error(capsys, f"port {port} on 127.0.0.1 is already in use")


def test_serve_a_folder_as_model(capsys, tmp_path, no_server):
    assert main(["serve", "--model", str(tmp_path)]) == 1
    _error(capsys, "is a folder, not a model file")


# --------------------------------------------------------------------------- train --out


def test_train_out_in_a_missing_folder(capsys, tmp_path, no_training):
    out = tmp_path / "nope" / "m.safetensors"
    assert main(["train", "--backend", "numpy", "--out", str(out)]) == 1
    _error(capsys, f"{tmp_path / 'nope'} does not exist")
    assert not (tmp_path / "nope").exists()


def test_train_out_is_a_folder(capsys, tmp_path, no_training):
    assert main(["train", "--backend", "numpy", "--out", str(tmp_path)]) == 1
    _error(capsys, "is a folder; give a file name")


def test_train_out_under_a_file(capsys, tmp_path, no_training):
    (tmp_path / "file.txt").write_text("x")
    assert main(["train", "--backend", "numpy", "-o", str(tmp_path / "file.txt" / "m.safetensors")]) == 1
    _error(capsys, "file.txt is not a folder")


def _read_only_folder(tmp_path):
    """A folder this process cannot create files in (root ignores permissions: then /sys)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, "/sys"):
        try:
            tempfile.TemporaryFile(dir=candidate).close()
        except OSError:
            return candidate
    pytest.skip("no read-only folder available")


def test_train_out_in_a_read_only_folder(capsys, tmp_path, no_training):
    folder = _read_only_folder(tmp_path)
    assert main(["train", "--backend", "numpy", "--out", os.path.join(folder, "m.safetensors")]) == 1
    _error(capsys, f"cannot write a model into {folder} (")


def test_train_default_out_that_cannot_be_created(capsys, tmp_path, monkeypatch, no_training):
    (tmp_path / "file.txt").write_text("x")
    monkeypatch.setenv("ANYNET_HOME", str(tmp_path / "file.txt" / "home"))
    assert main(["train", "--backend", "numpy"]) == 1
    _error(capsys, "cannot create the model folder")


def test_train_out_checks_pass_for_a_writable_place(capsys, tmp_path, monkeypatch):
    """A writable --out gets past the checks (to loading data, interrupted here), leaving no
    file behind; --no-save skips them."""
    import anynet.cli.common

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(anynet.cli.common, "_load_dataset", interrupt)
    assert main(["train", "--backend", "numpy", "--out", str(tmp_path / "m.safetensors")]) == 130
    assert main(["train", "--backend", "numpy", "--no-save", "--out", str(tmp_path / "nope" / "m")]) == 130
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- --model


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "x.png"], ["serve"]])
def test_a_folder_as_model(capsys, tmp_path, command):
    assert main([*command, "--model", str(tmp_path)]) == 1
    _error(capsys, f"{tmp_path} is a folder, not a model file")


def test_a_temporary_of_an_interrupted_save_as_model(capsys, tmp_path, model, no_training):
    tmp = tmp_path / ".m2.safetensors.ab12cd34.tmp"
    tmp.write_bytes(model.read_bytes())
    assert main(["evaluate", "--model", str(tmp)]) == 1
    _error(capsys, "temporary file left by an interrupted save")
    assert main(["evaluate", "--model", str(tmp_path / "m2.safetensors")]) == 1
    _error(capsys, "no such model file")


# --------------------------------------------------------------------------- --limit


@pytest.mark.parametrize("limit, validation", [(1, 0.1), (1, None), (5, 0.1), (7, None)])
def test_limit_is_honoured_exactly(limit, validation):
    """--limit N trains on N images in all (training + validation), even with fewer than one
    per class."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(200, 28, 28), dtype=np.uint8)
    y = np.arange(200) % 10
    result = anynet.train(
        dataset=(x, y),
        limit=limit,
        validation=validation,
        epochs=1,
        model="mlp-small",
        backend="numpy",
        verbose=False,
    )
    summary = result.model.info.training
    assert summary.train_samples + summary.validation_samples == limit
    assert summary.train_samples >= 1


# --------------------------------------------------------------------------- --out targets (issue 21)


def _special(kind, path):
    """A FIFO, symbolic link, socket or device node at ``path`` (inside tmp_path)."""
    import stat

    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        real = path.with_name("real.safetensors")
        real.write_bytes(b"not mine to replace")
        path.symlink_to(real)
    elif kind == "socket":
        if len(os.fsencode(path)) >= 100:
            pytest.skip("tmp_path too long for a Unix socket")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))
    else:
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("cannot make a device node here (not root)")
    return os.lstat(path).st_mode


@pytest.mark.parametrize(
    "kind, what",
    [
        ("fifo", "a FIFO"),
        ("symlink", "a symbolic link"),
        ("socket", "a socket"),
        ("device", "a character device"),
    ],
)
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_train_out_refuses_what_is_not_a_regular_file(capsys, tmp_path, no_training, kind, what, force):
    out = tmp_path / "m.safetensors"
    mode = _special(kind, out)
    assert main(["train", "--backend", "numpy", "--out", str(out), *force]) == 1
    line = _error(capsys, f"{out} is {what}")
    assert "not a regular file; anynet replaces only regular files" in line
    assert os.lstat(out).st_mode == mode


def test_train_out_refuses_a_file_that_is_not_a_model_without_force(capsys, tmp_path, monkeypatch):
    import anynet.cli.common

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(anynet.cli.common, "_load_dataset", interrupt)
    png = tmp_path / "digit.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert main(["train", "--backend", "numpy", "--out", str(png)]) == 1
    line = _error(capsys, f"--out {png} exists and is not an anynet model")
    assert "--force" in line
    assert png.read_bytes().startswith(b"\x89PNG")
    assert main(["train", "--backend", "numpy", "--out", str(png), "--force"]) == 130  # past the checks


def test_train_out_replaces_a_model_or_an_empty_file(capsys, tmp_path, model, monkeypatch):
    import anynet.cli.common

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(anynet.cli.common, "_load_dataset", interrupt)
    empty = tmp_path / "empty.safetensors"
    empty.touch()
    for out in (model, empty):
        assert main(["train", "--backend", "numpy", "--out", str(out)]) == 130


def test_train_help_describes_force(capsys):
    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--force" in out and "not an anynet model" in out


# --------------------------------------------------------------------------- numbers and sizes (issue 21)


@pytest.mark.parametrize(
    "option, value",
    [
        (option, value)
        for option in ("--lr", "--weight-decay", "--clip-norm", "--label-smoothing", "--dropout")
        for value in ("nan", "inf", "-inf", "-0.5")
    ]
    + [("--lr", "0"), ("--clip-norm", "0"), ("--label-smoothing", "1"), ("--dropout", "1.5"), ("--lr", "x")],
)
def test_train_numbers_must_be_finite_and_in_range(capsys, no_training, option, value):
    assert main(["train", "--backend", "numpy", "--no-save", f"{option}={value}"]) == 2
    err = capsys.readouterr().err
    assert f"argument {option}: expected " in err and value in err, err


def test_train_an_absurd_model_is_refused_before_anything_is_allocated(capsys, no_training):
    assert main(["train", "--backend", "numpy", "--no-save", "--hidden", "100000000"]) == 1
    line = _error(capsys, "--hidden 100000000: ")
    assert "parameters" in line and "anynet.io.MAX_PARAMETERS" in line


@pytest.mark.parametrize(
    "error, expected",
    [
        (MemoryError("Unable to allocate 584. GiB for an array"), "Unable to allocate 584. GiB"),
        (MemoryError(), "does not fit in memory"),
    ],
)
def test_train_out_of_memory_is_reported_cleanly(capsys, monkeypatch, error, expected):
    line = _train_failing_with(capsys, monkeypatch, error)
    assert expected in line and "does not fit in memory" in line


def test_train_distributed_errors_are_reported_cleanly(capsys, monkeypatch):
    from anynet.distributed.comm import DistributedError

    line = _train_failing_with(capsys, monkeypatch, DistributedError("rank 1 failed: connection lost"))
    assert "rank 1 failed: connection lost" in line


def _train_failing_with(capsys, monkeypatch, error):
    """The error line of ``anynet train`` when training raises ``error``."""
    import anynet.cli.common
    import anynet.run

    def fail(**kwargs):
        raise error

    monkeypatch.setattr(anynet.run, "train", fail)
    monkeypatch.setattr(anynet.cli.common, "_load_dataset", lambda *a: type("D", (), {"name": "mnist"})())
    assert main(["train", "--backend", "numpy", "--no-save"]) == 1
    return _error(capsys, "")
