"""Hyperparameter sweeps: :func:`sweep` trains one model per point of a search space and keeps
the best, on Ray Tune (``pip install 'anynet[ray]'``; trials in parallel, on one machine or a
Ray cluster, bad trials stopped early by ASHA) or, without Ray, one trial after another.

    from anynet.tune import sweep
    result = sweep({"lr": ("loguniform", 1e-4, 1e-2), "hidden": [(256,), (512, 256)]},
                   dataset="mnist", epochs=5, num_samples=2, train={"limit": 10000})
    result.best                      # the best trial's row: its settings and metrics
    result.best_model_path           # out/best.safetensors

A search space maps :func:`anynet.train` arguments (``lr``, ``hidden``, ``model``, ``augment``,
``dropout``, ``batch_size``, ``weight_decay``, ``optimizer``, ...) to a list (every value: a
grid), a tuple ``("loguniform" | "uniform", low, high)`` or ``("choice", [values])`` (drawn
``num_samples`` times), a fixed value, or a Ray Tune domain (Ray only). Each trial reports its
epoch's metrics to Tune as it goes, so a scheduler can stop it early; the last report carries the
test metrics and the model. The sweep writes ``results.csv`` and ``results.md`` (one row per
trial) and the best model to ``out_dir``. A trial that fails is a row with status ``error`` and
its error; the others run on. Bad settings (unknown :func:`anynet.train` arguments or metrics,
empty grids, bad ranges) are refused before any training. ``anynet sweep`` (:mod:`anynet.cli.sweep`)
runs a sweep from the command line.
"""

from __future__ import annotations

import csv
import itertools
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import names as settings_names
from .io import save_model
from .run import train
from .training.callbacks import Callback

__all__ = ["SweepError", "SweepResult", "sweep"]

#: the search space of ``anynet sweep`` when none is given: learning rate, widths, augmentation
DEFAULT_SPACE: dict[str, Any] = {
    "lr": ("loguniform", 3e-4, 3e-3),
    "hidden": [(256,), (512, 256)],
    "augment": [None, "standard"],
}
_SAMPLED = ("loguniform", "uniform", "choice")
#: the columns of the results table after the settings
METRIC_COLUMNS = ("epochs", "loss", "val_loss", "val_accuracy", "test_accuracy", "seconds")
#: the metrics in every epoch's report (Ray Tune needs the sweep's metric in each one)
EPOCH_METRICS = ("val_accuracy", "val_loss", "loss", "accuracy")
#: the metrics a trial reports, any of which can rank the trials (the test scores and the
#: training time come with the last report only)
TRIAL_METRICS = (*EPOCH_METRICS, "test_accuracy", "test_loss", "test_balanced_accuracy", "seconds")
#: :func:`anynet.train` arguments that the sweep sets itself, and what to do instead
_OWNED = {"epochs": "use the sweep's epochs argument (anynet sweep --epochs)", "verbose": "trials are silent"}


class SweepError(ValueError):
    """No trial of a sweep gave a result; the tables, with each trial's error, are written."""


@dataclass
class SweepResult:
    """What :func:`sweep` returns: one row per trial (settings and last metrics), the best
    row, where the best model and the tables were written, and which engine ran it."""

    rows: list[dict]
    best: dict
    best_model_path: Path | None
    table_csv: Path
    table_md: Path
    engine: str
    metric: str = "val_accuracy"
    extra: dict = field(default_factory=dict)


class TuneReport(Callback):
    """Reports each epoch's logs through ``report(metrics)`` (all but the last epoch, which the
    trial reports itself with the test metrics and the model)."""

    def __init__(self, report: Callable[[dict], None], epochs: int):
        self.report, self.epochs, self.reported = report, epochs, 0

    def on_epoch_end(self, network, epoch, logs):
        if epoch + 1 < self.epochs:
            self.report({k: float(v) for k, v in logs.items()} | {"epoch": epoch + 1})
            self.reported = epoch + 1


# ---------------------------------------------------------------------- one trial


def _trial(config: dict, fixed: dict, report: Callable[..., None], data=None) -> None:
    """Train with ``fixed`` + ``config``; per-epoch reports, then a last one with the model."""
    epochs = int(fixed.get("epochs") or 3)
    kwargs = {**fixed, **_plain(config), "epochs": epochs, "verbose": 0}
    if data is not None:
        kwargs["dataset"] = data
    reporter = TuneReport(report, epochs)
    kwargs["callbacks"] = [*kwargs.get("callbacks", ()), reporter]
    start = time.perf_counter()
    result = train(**kwargs)
    last = {k: float(v[-1]) for k, v in result.history.items() if v}
    metrics = last | {"epoch": len(result.history.get("loss", [])), "seconds": time.perf_counter() - start}
    if result.test is not None:
        metrics |= {f"test_{k}": float(v) for k, v in result.test.items()}
    with tempfile.TemporaryDirectory() as tmp:
        save_model(result.model, Path(tmp) / "model.safetensors")
        report(metrics, model_dir=tmp)


def _plain(config: dict) -> dict:
    """Settings as :func:`anynet.train` takes them (Ray and CSV round trips give lists)."""
    out = dict(config)
    if isinstance(out.get("hidden"), list):
        out["hidden"] = tuple(out["hidden"])
    if out.get("augment") in ("none", ""):
        out["augment"] = None
    return out


# ---------------------------------------------------------------------- search spaces


def _local_configs(space: dict, num_samples: int, seed: int) -> list[dict]:
    """The grid (every combination of the lists) times ``num_samples`` draws of the rest."""
    rng = np.random.default_rng(seed)
    grid_keys = [k for k, v in space.items() if isinstance(v, list)]
    configs = []
    for values in itertools.product(*(space[k] for k in grid_keys)):
        for _ in range(num_samples):
            config = dict(zip(grid_keys, values))
            for key, value in space.items():
                if key not in config:
                    config[key] = _draw(key, value, rng)
            configs.append(config)
    return configs


def _draw(key: str, value: Any, rng: np.random.Generator) -> Any:
    if not (isinstance(value, tuple) and value and value[0] in _SAMPLED):
        if type(value).__module__.startswith("ray."):
            raise ValueError(f"{key}: Ray Tune domains need engine='ray'; use a list or a tuple here")
        return value
    kind = value[0]
    if kind == "choice":
        options = list(value[1])
        return options[int(rng.integers(len(options)))]
    low, high = float(value[1]), float(value[2])
    if kind == "uniform":
        return float(rng.uniform(low, high))
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _ray_space(space: dict) -> dict:
    """The space in Ray Tune's terms: lists as grid searches, tuples as distributions."""
    from ray import tune

    out: dict[str, Any] = {}
    for key, value in space.items():
        if isinstance(value, list):
            out[key] = tune.grid_search(value)
        elif isinstance(value, tuple) and value and value[0] == "choice":
            out[key] = tune.choice(list(value[1]))
        elif isinstance(value, tuple) and value and value[0] in ("uniform", "loguniform"):
            out[key] = getattr(tune, value[0])(float(value[1]), float(value[2]))
        else:
            out[key] = value
    return out


def _check_names(names, where: str) -> None:
    """Refuse names that :func:`anynet.train` does not take or that the sweep sets itself."""
    valid = [name for name in settings_names() if name not in _OWNED]
    for name in names:
        if name in _OWNED:
            raise ValueError(f"{where} {name!r} is set by the sweep: {_OWNED[name]}")
        if name not in valid:
            raise ValueError(f"{where} {name!r} is not an anynet.train argument; valid: {', '.join(valid)}")


def _check_space(space: dict) -> None:
    """Refuse empty grids and sampled settings that cannot be drawn, naming the parameter."""
    _check_names(space, "search-space parameter")
    for name, value in space.items():
        if isinstance(value, list) and not value:
            raise ValueError(f"{name}: an empty list (a grid needs at least one value)")
        if isinstance(value, tuple) and value and isinstance(value[0], str) and value[0] in _SAMPLED:
            _check_sampled(name, value)


def _check_sampled(name: str, value: tuple) -> None:
    kind = value[0]
    if kind == "choice":
        if len(value) != 2 or not isinstance(value[1], (list, tuple)) or not value[1]:
            raise ValueError(f"{name}: ('choice', [values]) needs a non-empty list of values, got {value!r}")
        return
    try:
        _, low, high = value
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: ({kind!r}, low, high) needs two numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"{name}: {kind} needs low <= high (finite), got low {low:g}, high {high:g}")
    if kind == "loguniform" and low <= 0:
        raise ValueError(f"{name}: loguniform needs low > 0 (it draws the logarithm), got {low:g}")


def _check_metric(metric: str, engine: str, epochs: int, fixed: dict) -> None:
    """Refuse a metric no trial reports (or, on Ray, one missing from the epochs' reports)."""
    if metric not in TRIAL_METRICS:
        raise ValueError(
            f"metric {metric!r} is not one a trial reports; choose from {', '.join(TRIAL_METRICS)}"
        )
    if engine == "ray" and epochs > 1 and metric not in EPOCH_METRICS:
        raise ValueError(
            f"metric {metric!r} comes with a trial's last report only, and Ray Tune needs it every "
            f"epoch: use {', '.join(EPOCH_METRICS)} (or engine='local')"
        )
    if metric.startswith("val_") and "validation" in fixed and fixed["validation"] is None:
        raise ValueError(f"metric {metric!r} needs validation data, and train has validation=None")


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")


# ---------------------------------------------------------------------- engines


def _run_local(space, fixed, num_samples, seed, data, out_dir: Path, metric: str) -> list[dict]:
    """The trials one after another in this process."""
    trials = out_dir / "trials"
    trials.mkdir(parents=True, exist_ok=True)
    configs = _local_configs(space, num_samples, seed)
    return [_local_trial(f"trial{i:03d}", c, fixed, data, trials, metric) for i, c in enumerate(configs)]


def _local_trial(name: str, config: dict, fixed: dict, data, trials: Path, metric: str) -> dict:
    """One trial's row; a trial that raises an exception is an ``error`` row with its message
    (``KeyboardInterrupt`` and other ``BaseException`` stop the sweep)."""
    reports: list[dict] = []
    model = trials / f"{name}.safetensors"

    def report(metrics, model_dir=None):
        reports.append(metrics)
        if model_dir is not None:
            shutil.copy(Path(model_dir) / "model.safetensors", model)

    try:
        _trial(config, fixed, report, data)
    except Exception as exc:
        last = reports[-1] if reports else {}
        return _row(name, config, last, "error", None, metric) | {"error": _short(exc)}
    return _row(name, config, reports[-1], "finished", model, metric)


def _short(exc: BaseException, width: int = 160) -> str:
    """An error's type and the first line of its message, at most ``width`` characters."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= width else text[: width - 3] + "..."


def _ray_trial(config, fixed=None, data=None):
    """The trainable Ray runs in its workers (module level, so that it pickles by name)."""
    from ray import tune

    def report(metrics, model_dir=None):
        checkpoint = None if model_dir is None else tune.Checkpoint.from_directory(model_dir)
        tune.report(metrics, checkpoint=checkpoint)

    _trial(config, fixed or {}, report, data)


def _run_ray(space, fixed, num_samples, data, out_dir: Path, options: dict) -> list[dict]:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    if not ray.is_initialized():
        ray.init(**({"include_dashboard": False, "log_to_driver": False} | options.get("init", {})))
    epochs = int(fixed.get("epochs") or 3)
    scheduler = None
    if options.get("scheduler", "asha") == "asha":
        scheduler = ASHAScheduler(
            max_t=epochs, grace_period=options.get("grace_period", 1), reduction_factor=2
        )
    trainable = tune.with_resources(
        tune.with_parameters(_ray_trial, fixed=fixed, data=data), options.get("resources", {"cpu": 1})
    )
    tuner = tune.Tuner(
        trainable,
        param_space=_ray_space(space),
        tune_config=tune.TuneConfig(
            metric=options["metric"], mode=options["mode"], num_samples=num_samples, scheduler=scheduler
        ),
        run_config=tune.RunConfig(
            name="anynet", storage_path=str((out_dir / "ray").resolve()), verbose=options.get("verbose", 0)
        ),
    )
    grid = tuner.fit()
    return [_ray_row(grid[i], space, options["metric"]) for i in range(len(grid))]


def _ray_row(result, space: dict, metric: str) -> dict:
    """A Ray Tune result's table row (an ``error`` row carries its exception's message)."""
    config = {k: result.config.get(k) for k in space}
    metrics = dict(result.metrics or {})
    epochs = metrics.get("training_iteration", metrics.get("epoch"))
    status = "error" if result.error else ("finished" if result.checkpoint else "stopped early")
    model = None
    if result.checkpoint is not None:
        model = Path(result.checkpoint.path) / "model.safetensors"
    row = _row(metrics.get("trial_id", "?"), config, metrics | {"epoch": epochs}, status, model, metric)
    if result.error is not None:  # a RayTaskError: its cause is the trial's own exception
        row["error"] = _short(getattr(result.error, "cause", None) or result.error)
    return row


def _row(name: str, config: dict, metrics: dict, status: str, model: Path | None, metric: str) -> dict:
    """A trial's table row: its settings, :data:`METRIC_COLUMNS` and the sweep's metric."""
    row = {"trial": name, **{k: _cell(v) for k, v in config.items()}}
    row["epochs"] = metrics.get("epoch")
    for key in dict.fromkeys((*METRIC_COLUMNS[1:], metric)):
        row[key] = metrics.get(key)
    row["status"], row["_model"] = status, model
    return row


def _cell(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return "-".join(str(v) for v in value)
    return "none" if value is None else value


# ---------------------------------------------------------------------- the sweep


def sweep(
    space: dict | None = None,
    dataset="mnist",
    epochs: int = 3,
    num_samples: int = 1,
    metric: str = "val_accuracy",
    mode: str = "max",
    out_dir="sweeps/latest",
    engine: str = "auto",
    scheduler: str | None = "asha",
    train: dict | None = None,
    seed: int = 0,
    ray_options: dict | None = None,
) -> SweepResult:
    """Train one model per point of ``space`` and keep the best (see the module's help).

    Args:
        space: :func:`anynet.train` argument -> list (grid), ``("loguniform"|"uniform", lo,
            hi)`` or ``("choice", [...])`` (drawn), a fixed value, or a Ray Tune domain
            (default :data:`DEFAULT_SPACE`).
        dataset: a name (each trial loads it) or arrays (shared through Ray's object store).
        epochs: epochs per trial (ASHA stops bad trials after 1, 2, 4, ... of them).
        num_samples: draws of the sampled settings per grid point.
        metric, mode: what "best" means (``"val_accuracy"``/``"max"``; ``"val_loss"``/``"min"``).
        out_dir: where ``results.csv``, ``results.md`` and ``best.safetensors`` go.
        engine: ``"ray"``, ``"local"`` (trials in turn, no early stopping) or ``"auto"``
            (Ray when it is installed).
        scheduler: ``"asha"`` or ``None`` (Ray only).
        train: fixed :func:`anynet.train` arguments for every trial (``limit``, ``backend``,
            ``batch_size``, ``validation``, ``data_dir``, ...).
        ray_options: ``init`` (``ray.init`` arguments, e.g. ``{"address": "auto"}`` on a
            cluster or ``{"num_cpus": 2}``), ``resources`` per trial (``{"cpu": 1}``,
            ``{"gpu": 1}``), ``grace_period``, ``verbose``.

    Raises:
        ValueError: bad settings, before any training (naming the parameter).
        SweepError: no trial gave ``metric`` (every trial failed, say); the tables are written.
    """
    space = dict(DEFAULT_SPACE if space is None else space)
    engine = _check_arguments(space, train or {}, epochs, num_samples, metric, mode, engine)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fixed = {**(train or {}), "epochs": int(epochs)}
    data = None
    if isinstance(dataset, str):
        fixed["dataset"] = dataset
    else:
        data = dataset
    if engine == "ray":
        options = {"metric": metric, "mode": mode, "scheduler": scheduler, **(ray_options or {})}
        rows = _run_ray(space, fixed, int(num_samples), data, out, options)
    else:
        rows = _run_local(space, fixed, int(num_samples), seed, data, out, metric)
    return _finish(rows, metric, mode, out, engine)


def _check_arguments(
    space: dict, train: dict, epochs, num_samples, metric: str, mode: str, engine: str
) -> str:
    """Refuse bad settings before any training; returns the engine that will run."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    _check_count("epochs", epochs)
    _check_count("num_samples", num_samples)
    _check_names(train, "train argument")
    _check_space(space)
    engine = _engine(engine)
    _check_metric(metric, engine, int(epochs), train)
    return engine


def _engine(engine: str) -> str:
    if engine not in ("auto", "ray", "local"):
        raise ValueError(f"engine must be 'auto', 'ray' or 'local', got {engine!r}")
    try:
        import ray  # noqa: F401
    except ImportError:
        if engine == "ray":
            raise ImportError("engine='ray' needs Ray Tune: pip install 'anynet[ray]'") from None
        return "local"
    return "ray" if engine == "auto" else engine


def _finish(rows: list[dict], metric: str, mode: str, out: Path, engine: str) -> SweepResult:
    """Rank the trials (failed ones last), write the tables, copy the best model."""
    scored = [
        r
        for r in rows
        if r["status"] != "error" and isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])
    ]
    rows = sorted(scored, key=lambda r: r[metric], reverse=mode == "max") + [
        r for r in rows if r not in scored
    ]
    table = [{k: v for k, v in r.items() if k != "_model"} for r in rows]
    csv_path, md_path = out / "results.csv", out / "results.md"
    _write_csv(table, csv_path)
    md_path.write_text(_markdown(table, metric, mode, engine), encoding="utf-8")
    if not scored:
        raise SweepError(_no_result(table, metric, f"{csv_path} and {md_path}"))
    best_path = None
    if rows[0]["_model"] is not None and Path(rows[0]["_model"]).exists():
        best_path = out / "best.safetensors"
        shutil.copy(rows[0]["_model"], best_path)
    return SweepResult(table, table[0], best_path, csv_path, md_path, engine, metric)


def _no_result(table: list[dict], metric: str, where: str) -> str:
    """Why no trial can be the best: all failed (the first error), or none reported ``metric``."""
    failed = [r for r in table if r["status"] == "error"]
    if len(failed) == len(table):
        first = failed[0]
        error = f"; the first, {first['trial']}: {first['error']}" if first.get("error") else ""
        return f"all {len(table)} trials failed{error}; each trial's error is in {where}"
    return f"no trial reported {metric!r} ({len(failed)} of {len(table)} failed); see {where}"


def _write_csv(rows: list[dict], path: Path) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def _markdown(rows: list[dict], metric: str, mode: str, engine: str) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))

    def show(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else "" if v is None else str(v).replace("|", "\\|")

    failed = sum(r.get("status") == "error" for r in rows)
    lines = [
        f"# Sweep: {len(rows)} trials on {engine}"
        + (f", {failed} failed" if failed else "")
        + f", best by {metric} ({mode})",
        "",
        "| " + " | ".join(keys) + " |",
        "|" + "---|" * len(keys),
    ]
    lines += ["| " + " | ".join(show(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"
