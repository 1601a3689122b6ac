"""Sweeps (:mod:`anynet.tune`): search spaces, the local engine, and a small Ray Tune sweep with
ASHA (skipped, with the reason, where Ray is not installed)."""

from __future__ import annotations

import argparse
import csv
from types import SimpleNamespace

import numpy as np
import pytest

import anynet
from anynet import tune
from anynet.cli import main
from anynet.cli.sweep import add_sweep_arguments, parse_space, run_sweep_command
from anynet.training.callbacks import Callback
from anynet.tune import SweepError, _local_configs, sweep


def _data(n=400):
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 255, (10, 8, 8))
    y = rng.integers(0, 10, n)
    x = np.clip(centres[y] + rng.normal(0, 120, (n, 8, 8)), 0, 255).astype(np.uint8)
    return x[:300], y[:300], x[300:], y[300:]


TRAIN = {"batch_size": 30, "backend": "numpy"}


def test_parse_space():
    specs = ["lr=loguniform:1e-4:1e-2", "hidden=256|512,256", "model=mlp|mlp-small"]
    specs += ["augment=none|standard", "batch_size=64", "dropout=uniform:0:0.5"]
    space = parse_space(specs)
    assert space == {
        "lr": ("loguniform", 1e-4, 1e-2),
        "hidden": [(256,), (512, 256)],
        "model": ["mlp", "mlp-small"],
        "augment": [None, "standard"],
        "batch_size": 64,
        "dropout": ("uniform", 0.0, 0.5),
    }
    with pytest.raises(ValueError, match="NAME=SPEC"):
        parse_space(["lr"])


def test_local_configs_are_the_grid_times_the_draws():
    space = {"hidden": [(8,), (16,)], "lr": ("loguniform", 1e-4, 1e-2), "model": ("choice", ["a", "b"])}
    configs = _local_configs(space, 3, seed=0)
    assert len(configs) == 6 and [c["hidden"] for c in configs[:3]] == [(8,)] * 3
    assert all(1e-4 <= c["lr"] <= 1e-2 and c["model"] in ("a", "b") for c in configs)
    assert configs == _local_configs(space, 3, seed=0)


def test_local_sweep_writes_best_model_and_tables(tmp_path):
    result = sweep(
        {"lr": [1e-2, 1e-5], "hidden": (16,)},
        dataset=_data(),
        epochs=2,
        out_dir=tmp_path,
        engine="local",
        train=TRAIN,
    )
    assert result.engine == "local" and len(result.rows) == 2
    assert result.best["lr"] == 1e-2 and result.best["val_accuracy"] >= result.rows[1]["val_accuracy"]
    model = anynet.load_model(result.best_model_path)
    assert model.count_parameters() == 64 * 16 + 16 + 16 * 10 + 10
    with open(result.table_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["lr"] for r in rows] == ["0.01", "1e-05"] and rows[0]["status"] == "finished"
    assert "| trial | lr | hidden |" in result.table_md.read_text()


def test_sweep_command_runs_locally(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_sweep_arguments(parser)
    args = parser.parse_args(
        [
            "-p",
            "lr=1e-2|1e-3",
            "-p",
            "hidden=16",
            "--epochs",
            "1",
            "--engine",
            "local",
            "--out",
            str(tmp_path),
        ]
    )
    args.dataset, args.data_dir = _data(), None
    assert run_sweep_command(args) == 0
    assert "best model:" in capsys.readouterr().out
    assert (tmp_path / "best.safetensors").exists()


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        sweep({}, mode="best")
    with pytest.raises(ValueError, match="engine"):
        sweep({}, engine="dask")


class _Raise(Callback):
    """Raises ``error`` at the end of the first epoch of the first trial it sees."""

    def __init__(self, error):
        self.error, self.trials = error, 0

    def on_train_begin(self, network, epochs, steps_per_epoch):
        self.trials += 1

    def on_epoch_end(self, network, epoch, logs):
        if self.trials == 1:
            raise self.error


def test_local_sweep_records_a_failing_trial_and_runs_the_others(tmp_path):
    space = {"optimizer": ["bogus", "adam", "sgd"], "hidden": (16,)}
    crash = _Raise(RuntimeError("out of memory | on the device\nsecond line"))
    train = {**TRAIN, "callbacks": [crash]}
    result = sweep(space, dataset=_data(), epochs=1, out_dir=tmp_path, engine="local", train=train)
    assert crash.trials == 2 and len(result.rows) == 3  # "bogus" fails before training starts
    assert [r["status"] for r in result.rows] == ["finished", "error", "error"]
    assert result.best["optimizer"] == "sgd" and result.best_model_path.exists()
    errors = {r["optimizer"]: r.get("error") for r in result.rows}
    assert errors["bogus"].startswith("ValueError: unknown optimizer 'bogus'")
    assert errors["adam"] == "RuntimeError: out of memory | on the device"
    with open(result.table_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["finished", "error", "error"] and rows[0]["error"] == ""
    table = result.table_md.read_text()
    assert "3 trials on local, 2 failed" in table and "out of memory \\| on the device" in table


def test_local_sweep_where_every_trial_fails_says_so(tmp_path):
    with pytest.raises(SweepError, match="all 2 trials failed") as info:
        sweep(
            {"optimizer": ["nope", "bogus"]},
            dataset=_data(),
            epochs=1,
            out_dir=tmp_path,
            engine="local",
            train=TRAIN,
        )
    assert isinstance(info.value, ValueError) and str(tmp_path / "results.csv") in str(info.value)
    assert "unknown optimizer 'nope'" in str(info.value)
    with open(tmp_path / "results.csv", encoding="utf-8") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["error", "error"]
    assert not (tmp_path / "best.safetensors").exists()


def test_keyboard_interrupt_stops_a_local_sweep(tmp_path):
    stop = _Raise(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        sweep(
            {"lr": [1e-2, 1e-3]},
            dataset=_data(),
            epochs=1,
            out_dir=tmp_path,
            engine="local",
            train={**TRAIN, "callbacks": [stop]},
        )
    assert stop.trials == 1 and not (tmp_path / "results.csv").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space": {"bogus": [1, 2]}}, "'bogus' is not an anynet.train argument; valid: .*hidden, .*lr"),
        ({"train": {"bogus": 1}}, "'bogus' is not an anynet.train argument"),
        ({"space": {"epochs": [1, 2]}}, "'epochs' is set by the sweep"),
        ({"space": {"lr": []}}, "lr: an empty list"),
        ({"space": {"lr": ("loguniform", 0.0, 1e-2)}}, "lr: loguniform needs low > 0"),
        ({"space": {"lr": ("uniform", 1e-2, 1e-4)}}, "lr: uniform needs low <= high"),
        ({"space": {"lr": ("uniform", "a", 1)}}, "lr: .*two numbers"),
        ({"space": {"model": ("choice", [])}}, "model: .*non-empty list"),
        ({"epochs": 0}, "epochs must be a whole number >= 1, got 0"),
        ({"num_samples": -1}, "num_samples must be a whole number >= 1, got -1"),
        ({"metric": "bogus"}, "metric 'bogus' is not one a trial reports.*val_accuracy, val_loss, loss"),
        ({"metric": "val_loss", "train": {"validation": None}}, "needs validation data"),
    ],
)
def test_bad_sweeps_are_refused_before_training(tmp_path, monkeypatch, kwargs, message):
    calls = []
    monkeypatch.setattr(tune, "_trial", lambda *args, **kw: calls.append(args))
    kwargs = {"space": {"lr": [1e-3]}, "epochs": 1, "train": TRAIN} | kwargs
    with pytest.raises(ValueError, match=message):
        sweep(dataset=_data(), out_dir=tmp_path / "out", engine="local", **kwargs)
    assert calls == [] and not (tmp_path / "out").exists()


def test_ray_error_rows_carry_the_trials_error():
    """A Ray Tune result of a failed trial (its error a RayTaskError whose cause is the
    trial's exception) becomes an ``error`` row with that exception's message."""

    class RayTaskError(Exception):
        cause = ValueError("unknown optimizer 'nope'\nmore")

    failed = SimpleNamespace(
        config={"optimizer": "nope"}, metrics={}, error=RayTaskError("ray::trace"), checkpoint=None
    )
    row = tune._ray_row(failed, {"optimizer": ["nope"]}, "val_accuracy")
    assert row["status"] == "error" and row["error"] == "ValueError: unknown optimizer 'nope'"


def test_ray_sweeps_refuse_metrics_known_only_at_the_end(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'anynet[ray]'")
    with pytest.raises(ValueError, match=r"test_accuracy.*every epoch"):
        sweep(
            {"lr": [1e-3]}, dataset=_data(), epochs=2, metric="test_accuracy", engine="ray", out_dir=tmp_path
        )


def test_sweep_ranks_by_a_metric_outside_the_default_columns(tmp_path):
    result = sweep(
        {"lr": [1e-2, 1e-5], "hidden": (16,)},
        dataset=_data(),
        epochs=1,
        metric="test_loss",
        mode="min",
        out_dir=tmp_path,
        engine="local",
        train=TRAIN,
    )
    assert result.rows[0]["test_loss"] <= result.rows[1]["test_loss"]


@pytest.mark.parametrize(
    ("argv", "status", "names"),
    [
        (["-p", "bogus=1"], 1, ["'bogus'", "lr", "hidden", "dropout"]),
        (["--metric", "bogus"], 2, ["--metric", "val_accuracy", "test_loss"]),
        (["--samples", "0"], 2, ["--samples", "'0'"]),
        (["--samples", "-3"], 2, ["--samples", "'-3'"]),
        (["--epochs", "0"], 2, ["--epochs", "'0'"]),
        (["--limit", "0"], 2, ["--limit", "'0'"]),
        (["-p", "lr=loguniform:a:b"], 1, ["lr", "loguniform:a:b"]),
        (["-p", "lr=uniform:1e-3"], 1, ["lr", "uniform:1e-3"]),
        (["-p", "hidden=x"], 1, ["hidden", "'x'"]),
        (["-p", "hidden=256|0"], 1, ["hidden", "'0'"]),
        (["-p", "lr=loguniform:1e-2:1e-4"], 1, ["lr", "low <= high"]),
        (["-p", "lr=loguniform:0:1e-2"], 1, ["lr", "low > 0"]),
    ],
)
def test_sweep_command_refuses_user_errors_cleanly(tmp_path, monkeypatch, capsys, argv, status, names):
    calls = []
    monkeypatch.setattr(tune, "_trial", lambda *args, **kw: calls.append(args))
    out = tmp_path / "out"
    assert main(["sweep", *argv, "--engine", "local", "--out", str(out)]) == status
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("anynet") and "error:" in last and "this is a bug" not in err
    assert all(name in last for name in names), last
    assert status == 2 or len(err.strip().splitlines()) == 1
    assert calls == [] and not out.exists()


@pytest.mark.slow  # starts a local Ray
def test_ray_sweep_stops_bad_trials_early(tmp_path):
    """Three trials on a local Ray (2 CPUs), ASHA: the hopeless one stops after one epoch."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'anynet[ray]'")
    try:
        result = sweep(
            {"lr": [1e-2, 3e-3, 1e-6], "hidden": (16,)},
            dataset=_data(),
            epochs=4,
            out_dir=tmp_path,
            engine="ray",
            train=TRAIN,
            ray_options={"init": {"num_cpus": 2, "include_dashboard": False}},
        )
    finally:
        ray.shutdown()
    assert result.engine == "ray" and len(result.rows) == 3
    assert result.best["lr"] in (1e-2, 3e-3) and result.best["epochs"] == 4
    assert result.best["test_accuracy"] is not None
    assert any(r["status"] == "stopped early" and r["epochs"] < 4 for r in result.rows)
    assert anynet.load_model(result.best_model_path).count_parameters() > 0
