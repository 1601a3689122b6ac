"""The ``anynet`` command line: help, info, error paths (one line, exit status != 0, no
traceback) and a train -> evaluate -> predict round trip on a small MNIST subset."""

import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import anynet
from anynet.cli import main

COMMANDS = ["train", "evaluate", "predict", "serve", "info"]


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A fresh $ANYNET_HOME per test, so no test reads or writes ~/.anynet."""
    path = tmp_path / "home"
    monkeypatch.setenv("ANYNET_HOME", str(path))
    return path


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
    assert "positive integer" in capsys.readouterr().err
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
    _one_error_line(capsys, "anynet train")


def test_corrupt_model_file(capsys, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    assert main(["evaluate", "--model", str(bad)]) == 1
    _one_error_line(capsys, "not a readable safetensors file")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "evaluate", "--model", str(tmp_path / "nope.safetensors")])


def test_predict_needs_images_or_dataset(capsys, tmp_path):
    assert main(["predict", "--model", str(tmp_path / "x")]) == 1
    _one_error_line(capsys, "either image files or --dataset")


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
    assert main(["predict", str(path), "--model", str(model), "--show", str(shown)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
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
    monkeypatch.setattr(cli, "_check_port", lambda host, port: None)
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
    from anynet import cli, training

    seen = {}

    class Stop(Exception):
        pass

    def fake_train(**kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(training, "train", fake_train)
    monkeypatch.setattr(cli, "_load_dataset", lambda *a: type("D", (), {"name": "mnist"})())
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
                "--verbose",
                "2",
                "--schedule",
                "onecycle",
            ]
        )
    assert seen["checkpoint_dir"] == str(tmp_path) and seen["resume"] == "auto"
    assert seen["class_weight"] == "balanced" and seen["clip_norm"] == 1.5
    assert seen["verbose"] == 2 and seen["schedule"] == "onecycle"
