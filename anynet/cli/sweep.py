"""``anynet sweep``: a hyperparameter search (:func:`anynet.tune.sweep`) from the command line.

    anynet sweep -p lr=loguniform:1e-4:1e-2 -p hidden=256|512,256 --samples 2 --epochs 5

``-p NAME=SPEC`` entries are read by :func:`parse_space`; the search itself, its engines and the
checks of a space are :mod:`anynet.tune`'s."""

from __future__ import annotations

import argparse
from typing import Any

from ..config import setting_of
from ..tune import TRIAL_METRICS, sweep
from .common import _command


def add(sub) -> None:
    """``anynet sweep``."""
    p = _command(
        sub,
        "sweep",
        run_sweep_command,
        "search hyperparameters (Ray Tune, or one trial after another)",
        "Train one model per point of a search space (learning rate, widths, model kind, "
        "augmentation, ...), stop bad trials early with ASHA under Ray Tune, and write a "
        "results table and the best model (docs/cluster.md).",
    )
    p.add_argument("--dataset", "-d", default="mnist", help="dataset to train and score on")
    add_sweep_arguments(p)


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``anynet sweep`` (the dataset and ``--data-dir`` come from :func:`add`)."""
    parser.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="a search-space entry, e.g. lr=loguniform:1e-4:1e-2, hidden=256|512,256, "
        "model=mlp|mlp-small, augment=none|standard (default: lr, hidden, augment)",
    )
    parser.add_argument(
        "--samples", type=_positive_int, default=1, help="draws of the sampled settings per grid point"
    )
    parser.add_argument("--epochs", type=_positive_int, default=3, help="epochs per trial")
    parser.add_argument(
        "--limit", type=_positive_int, default=None, help="train each trial on this many samples"
    )
    parser.add_argument(
        "--metric",
        default="val_accuracy",
        choices=TRIAL_METRICS,
        metavar="METRIC",
        help=f"ranks the trials: {', '.join(TRIAL_METRICS)}",
    )
    parser.add_argument("--mode", default="max", choices=("max", "min"))
    parser.add_argument("--engine", default="auto", choices=("auto", "ray", "local"))
    parser.add_argument("--scheduler", default="asha", choices=("asha", "none"))
    parser.add_argument("--address", default=None, help="a Ray cluster to join (e.g. auto)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument("--gpus-per-trial", type=float, default=0.0)
    parser.add_argument("--out", default="sweeps/latest", help="where the tables and best model go")


def _positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def run_sweep_command(args: argparse.Namespace) -> int:
    """``anynet sweep``: runs :func:`anynet.tune.sweep` from parsed options and prints the table."""
    init = {"address": args.address} if args.address else {}
    resources = {"cpu": args.cpus_per_trial} | ({"gpu": args.gpus_per_trial} if args.gpus_per_trial else {})
    train = {"limit": args.limit, "data_dir": getattr(args, "data_dir", None)}
    result = sweep(
        parse_space(args.param) if args.param else None,
        dataset=getattr(args, "dataset", "mnist"),
        epochs=args.epochs,
        num_samples=args.samples,
        metric=args.metric,
        mode=args.mode,
        out_dir=args.out,
        engine=args.engine,
        scheduler=None if args.scheduler == "none" else args.scheduler,
        train=train,
        ray_options={"init": init, "resources": resources},
    )
    print(result.table_md.read_text(encoding="utf-8"))
    print(f"best model: {result.best_model_path}; tables: {result.table_csv}, {result.table_md}")
    return 0


# --------------------------------------------------------------------------- -p NAME=SPEC


def parse_space(specs: list[str]) -> dict:
    """``NAME=SPEC`` strings as a search space: ``lr=loguniform:1e-4:1e-2``,
    ``dropout=uniform:0:0.5``, ``model=mlp|mlp-small`` (a grid), ``hidden=256|512,256`` (widths
    by commas), ``augment=none|standard``, ``batch_size=128`` (fixed). Raises ``ValueError``
    naming the parameter for a malformed entry; :func:`anynet.tune.sweep` checks the space (names,
    ranges) before any training."""
    space: dict[str, Any] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"a search-space entry is NAME=SPEC, got {spec!r}")
        name = name.strip()
        kind, _, rest = text.partition(":")
        if kind in ("loguniform", "uniform"):
            space[name] = _range(name, kind, rest, text)
            continue
        values = [_value(name, v) for v in text.split("|")]
        space[name] = values if len(values) > 1 else values[0]
    return space


def _range(name: str, kind: str, rest: str, text: str) -> tuple:
    """``LOW:HIGH`` of ``NAME=loguniform:LOW:HIGH`` as ``(kind, low, high)``."""
    try:
        low, high = (float(v) for v in rest.split(":"))
    except ValueError:
        raise ValueError(f"{name}: expected {name}={kind}:LOW:HIGH with two numbers, got {text!r}") from None
    return (kind, low, high)


def _value(name: str, text: str) -> Any:
    text = text.strip()
    if name == "hidden":
        return _widths(text)
    if text.lower() == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _widths(text: str) -> tuple[int, ...]:
    """``512,256`` as hidden widths ``(512, 256)``, read as ``--hidden`` reads them."""
    try:
        return setting_of("hidden").from_text(text)
    except ValueError:
        raise ValueError(
            f"hidden: widths are positive whole numbers separated by commas (512,256), got {text!r}"
        ) from None
