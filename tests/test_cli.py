"""The ``anynet`` command line: help, info, error paths (one line, exit status != 0, no
traceback) and a train -> evaluate -> predict round trip on a small MNIST subset."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import anynet
from anynet.cli import main

pytestmark = pytest.mark.usefixtures("home")  # a fresh $ANYNET_HOME per test (conftest.py)

COMMANDS = ["train", "evaluate", "predict", "serve", "info"]


def _one_error_line(capsys, expected):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[0].startswith("anynet: error: "), err
    assert expected in err[0], err
    assert not any("Traceback" in line for line in err)
    return err[0]


def test_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out
    assert "ANYNET_DATA_DIR" in out
    for command in COMMANDS:
        assert main([command, "--help"]) == 0
        assert f"usage: anynet {command}" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: anynet" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    assert main(["train", "--epochs", "0"]) == 2
    assert "whole number >= 1" in capsys.readouterr().err
    assert main(["bogus"]) == 2


def test_info(capsys, home):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    from anynet import __version__

    assert f"anynet {__version__}" in out
    assert "numpy" in out and "backends available:" in out
    assert "datasets:" in out and "mnist" in out and "emnist-standin" in out
    assert str(home) in out and "none yet" in out


def test_unknown_backend(capsys):
    assert main(["train", "--backend", "nonesuch", "--no-save"]) == 1
    _one_error_line(capsys, "unknown backend 'nonesuch'")


def test_unknown_dataset_and_model(capsys):
    assert main(["train", "--dataset", "nonesuch", "--backend", "numpy", "--no-save"]) == 1
    _one_error_line(capsys, "unknown dataset 'nonesuch'")
    assert main(["train", "--model", "resnet", "--no-save"]) == 1
    _one_error_line(capsys, "unknown model 'resnet'")


def test_missing_model_file(capsys, tmp_path):
    for command in (["evaluate"], ["predict", "x.png"], ["serve"]):
        assert main([*command, "--model", str(tmp_path / "nope.safetensors")]) == 1
        _one_error_line(capsys, "no such model file")


def test_no_recorded_model(capsys):
    assert main(["evaluate"]) == 1
    _one_error_line(capsys, "`anynet evaluate --model FILE`")
    assert main(["predict", "x.png"]) == 1
    _one_error_line(capsys, "`anynet predict --model FILE`")


def test_corrupt_model_file(capsys, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    assert main(["evaluate", "--model", str(bad)]) == 1
    _one_error_line(capsys, "not a readable safetensors file")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "evaluate", "--model", str(tmp_path / "nope.safetensors")])


def test_predict_needs_images_or_dataset(capsys, tmp_path):
    assert main(["predict", "--model", str(tmp_path / "x")]) == 2
    assert "give image files or --dataset NAME" in capsys.readouterr().err
    assert main(["predict", "x.png", "--dataset", "mnist"]) == 2


def test_console_script_error_is_one_line(tmp_path):
    exe = shutil.which(
        "anynet", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    )
    if exe is None:
        pytest.skip("the anynet console script is not installed (pip install -e .)")
    proc = subprocess.run(
        [exe, "evaluate", "--model", str(tmp_path / "nope.safetensors")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"anynet: error: no such model file: {tmp_path / 'nope.safetensors'}"
    ]


def test_round_trip_train_evaluate_predict(capsys, data_dir, tmp_path, home):
    """Train on 2,000 MNIST images, save, evaluate, predict dataset samples and an image file."""
    model = tmp_path / "mnist.safetensors"
    plots = tmp_path / "plots"
    code = main(
        [
            "train",
            "--limit",
            "2000",
            "--epochs",
            "2",
            "--model",
            "mlp-small",
            "--lr",
            "3e-3",
            "--backend",
            "numpy",
            "--data-dir",
            str(data_dir),
            "--out",
            str(model),
            "--plots",
            str(plots),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert model.is_file() and model.stat().st_size > 1000
    assert "test accuracy" in out and "most often read as" in out and "most confused" in out
    assert (home / "last_model").read_text().strip() == str(model.resolve())
    assert out.count("test accuracy") == 1 and out.count("next    anynet evaluate") == 1, out
    assert f"model   {model}" in out and "anynet predict IMAGE" in out and "anynet serve" in out
    if importlib.util.find_spec("matplotlib"):
        for name in ("history.png", "confusion.png", "misclassified.png"):
            assert (plots / name).stat().st_size > 1000

    # evaluate: the recorded model on the dataset it was trained on
    assert main(["evaluate", "--limit", "500", "--data-dir", str(data_dir), "-q"]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("accuracy")[1].split("%")[0])
    assert accuracy > 80.0, out
    assert str(model) in out

    # predict dataset samples: one line each with the top three guesses
    assert (
        main(
            [
                "predict",
                "--dataset",
                "mnist",
                "--limit",
                "3",
                "--data-dir",
                str(data_dir),
                "--model",
                str(model),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("#0     true 7")
    assert lines[0].count("%") == 3

    # predict an image file: a test digit drawn dark on light paper and enlarged
    from PIL import Image

    from anynet.data import load

    digit = load("mnist", data_dir=data_dir, progress=False).test.images[0]
    path = tmp_path / "seven.png"
    Image.fromarray(np.kron(255 - digit, np.ones((6, 6), np.uint8))).save(path)
    shown = tmp_path / "shown"
    assert main(["predict", str(path), "--model", str(model), "--show", f"{shown}/"]) == 0
    out = capsys.readouterr().out
    assert f"what the network saw: {shown}/\n" in out and "//" not in out
    line = out.splitlines()[0]
    assert line.startswith(str(path)) and line.count("%") == 3
    assert (shown / "seven.png").stat().st_size > 0


def test_serve_options_reach_the_server(monkeypatch, tmp_path):
    """Every limit given on the command line is passed to anynet.app.server.serve; limits not
    given are left to its defaults."""
    pytest.importorskip("fastapi")
    from anynet import cli
    from anynet.app import server

    model = tmp_path / "m.safetensors"
    net = anynet.mlp((4,), num_classes=2, backend="numpy", input_shape=(28, 28))
    anynet.save_model(net, model)
    seen = {}
    monkeypatch.setattr(server, "serve", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setattr(cli.serve, "_check_port", lambda host, port: None)
    assert (
        cli.main(
            [
                "serve",
                "--model",
                str(model),
                "--max-concurrent",
                "3",
                "--queue-timeout",
                "2.5",
                "--allowed-host",
                "digits.example.org",
                "--allowed-host",
                "10.0.0.5",
            ]
        )
        == 0
    )
    assert seen["max_concurrent"] == 3 and seen["queue_timeout"] == 2.5
    assert seen["allowed_hosts"] == ["digits.example.org", "10.0.0.5"] and seen["allowed_origins"] == ()
    assert "max_pixels" not in seen and seen["backend"] == "cpu"
    assert cli.main(["serve", "--model", str(model), "--max-concurrent", "0"]) == 2


def test_train_lifecycle_options_reach_train(monkeypatch, tmp_path):
    from anynet import cli
    from anynet import run as anynet_run

    seen = {}

    class Stop(Exception):
        pass

    def fake_train(**kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(anynet_run, "train", fake_train)
    monkeypatch.setattr(cli.common, "_load_dataset", lambda *a: type("D", (), {"name": "mnist"})())
    with pytest.raises(Stop):
        cli.main(
            [
                "--debug",
                "train",
                "--no-save",
                "--checkpoint-dir",
                str(tmp_path),
                "--resume",
                "auto",
                "--class-weight",
                "balanced",
                "--clip-norm",
                "1.5",
                "--label-smoothing",
                "0.05",
                "--verbose",
                "2",
                "--schedule",
                "onecycle",
                "--distributed",
                "mpi",
                "--compile",
            ]
        )
    assert seen["checkpoint_dir"] == str(tmp_path) and seen["resume"] == "auto"
    assert seen["class_weight"] == "balanced" and seen["clip_norm"] == 1.5
    assert seen["label_smoothing"] == 0.05
    assert seen["verbose"] == 2 and seen["schedule"] == "onecycle" and seen["distributed"] == "mpi"
    assert seen["compile"] is True


def _dead_port() -> int:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_without_data_says_what_to_do(capsys, tmp_path, home, monkeypatch):
    """Three short lines (missing files, where it looked and the failed URL, the flag or
    variable to use); no urllib3 internals; no folder left behind."""
    cache = tmp_path / "cache"
    monkeypatch.delenv("ANYNET_DATA_DIR", raising=False)
    monkeypatch.setenv("ANYNET_CACHE_DIR", str(cache))
    url = f"http://127.0.0.1:{_dead_port()}"
    monkeypatch.setenv("ANYNET_DATA_URL", url)
    assert main(["train", "--backend", "numpy"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 3 and err[0].startswith("anynet: error: "), err
    text = "\n".join(err)
    for needed in (f"{url}/mnist/train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", str(cache)):
        assert needed in text
    for needed in ("--data-dir DIR", "ANYNET_DATA_DIR", "ANYNET_CACHE_DIR"):
        assert needed in text
    assert "HTTPConnection" not in text and "Max retries" not in text
    assert not cache.exists() and not home.exists()


def test_argument_errors_are_readable(capsys):
    for argv, expected in (
        (["train", "-e", "abc"], "argument --epochs/-e: expected a whole number >= 1, got 'abc'"),
        (["train", "--threads", "x"], "expected 'auto' or a positive integer"),
        (["train", "--validation", "x"], "expected a fraction"),
        (["serve", "--port", "http"], "expected a port number"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert expected in err and "_positive" not in err and "_fraction" not in err, err


def test_predict_without_arguments_prints_usage(capsys):
    assert main(["predict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: anynet predict") and "give image files or --dataset NAME" in err


def test_optional_dependencies_are_checked_before_any_work(capsys, monkeypatch, tmp_path):
    import importlib.util

    from anynet.cli import common as cli

    real = importlib.util.find_spec
    gone = {"matplotlib", "fastapi"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in gone else real(name, *a)
    )

    def no_work(*args, **kwargs):
        raise AssertionError("work began before the dependency check")

    monkeypatch.setattr(cli, "_load_dataset", no_work)
    monkeypatch.setattr(cli, "_model_path", no_work)
    assert main(["train", "--no-save", "--plots", str(tmp_path / "p")]) == 1
    _one_error_line(capsys, "--plots needs matplotlib, which is not installed: pip install 'anynet[plots]'")
    assert main(["evaluate", "--plots", str(tmp_path / "p")]) == 1
    _one_error_line(capsys, "pip install 'anynet[plots]'")
    assert main(["serve"]) == 1
    _one_error_line(capsys, "anynet serve needs fastapi")


def test_threads_option_sets_the_thread_pools(monkeypatch, tmp_path):
    from threadpoolctl import threadpool_info

    from anynet import cli
    from anynet import run as anynet_run

    seen = []

    def fake_train(**kwargs):
        seen.append({p["internal_api"]: p["num_threads"] for p in threadpool_info()})
        raise KeyboardInterrupt

    monkeypatch.setattr(anynet_run, "train", fake_train)
    monkeypatch.setattr(cli.common, "_load_dataset", lambda *a: type("D", (), {"name": "mnist"})())
    assert main(["train", "--no-save", "--threads", "1", "--backend", "numpy"]) == 130
    assert seen and all(n == 1 for n in seen[0].values()), seen


def test_auto_threads(monkeypatch):
    from anynet.cli import threads as cli

    for var in cli.THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(cli, "_cores", lambda: 16)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert cli.auto_threads()[0] == cli.MAX_AUTO_THREADS
    monkeypatch.setattr(cli, "_cores", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (6.5, 0.0, 0.0))
    assert cli.auto_threads() == (1, "2 cores, load average 6.5")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert cli.auto_threads() == (3, "from $OPENBLAS_NUM_THREADS")


def test_info_shows_packages_backends_and_threads(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^packages: numpy [\d.]+, torch .*, cupy .*, array-api-strict ", out, re.MULTILINE)
    assert "threads: --threads auto picks " in out
    assert re.search(r"^  numpy +numpy [\d.]+, device numpy:cpu", out, re.MULTILINE)
