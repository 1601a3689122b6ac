"""``anynet train``: train a model, report on the test split, save it and record it.

The options of the settings come from :class:`anynet.config.TrainConfig`: each field with
command-line flags is an option with the field's flags, help text, choices, metavar and default,
read by the field's :meth:`~anynet.config.Setting.from_text`. The options that only the command
has (where the model goes, plots, console, threads) are added here."""

from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import run as one_call
from ..app.paths import anynet_home, record_last_model
from ..backend import Backend, get_backend
from ..config import Setting, TrainConfig, names, setting_of
from ..data import Dataset, dataset_info
from ..io import MAX_PARAMETERS
from ..models import MODEL_PRESETS
from ..run import ModelNotSavedError, TrainResult
from . import common
from .common import _backend_help, _command, _report, _require, _say, _write_plots
from .outfile import _check_out, _out_path
from .threads import _threads_option

#: the settings of :class:`~anynet.config.TrainConfig` that are options of ``anynet train``
SETTINGS = tuple(name for name in names() if setting_of(name).flags)


def _resume(text: str) -> str:
    """``--resume auto`` (``--resume`` alone is ``True``)."""
    if text != "auto":
        raise argparse.ArgumentTypeError(f"--resume takes no value or 'auto', not {text!r}")
    return "auto"


#: what ``anynet train`` gives a setting's option beyond what the setting says
_OPTION_CHANGES: dict[str, dict[str, Any]] = {
    "backend": {"help": _backend_help()},  # the same list as the other commands'
    "resume": {"nargs": "?", "const": True, "metavar": "auto", "type": _resume},
    "compile": {"action": "store_true"},
}
#: values per image in every registered dataset (28 x 28)
IMAGE_VALUES = 28 * 28


# --------------------------------------------------------------------------- options


def add(sub) -> None:
    """``anynet train``."""
    p = _command(
        sub,
        "train",
        run,
        "train a model and save it",
        "Train a model, report test accuracy per class, save it and record "
        "it as the last model (for evaluate / predict / serve).",
    )
    defaults = TrainConfig()
    for name in SETTINGS:
        setting = setting_of(name)
        p.add_argument(*setting.flags, **_option(name, setting, getattr(defaults, name)))
    _threads_option(p)
    _output_options(p)


def _option(name: str, setting: Setting, default: Any) -> dict[str, Any]:
    """``add_argument`` keywords for a setting: its help, choices, metavar, default and reader."""
    if default is None and setting.choices is not None and "none" in setting.choices:
        default = "none"  # the word for "no augmentation", shown as the default
    changes = _OPTION_CHANGES.get(name, {})
    if changes.get("action") == "store_true":  # a switch: no value to read
        return {"dest": name, "default": default, "help": setting.help, **changes}
    option = {"dest": name, "default": default, "help": setting.help, "type": _reader(setting)}
    if setting.choices is not None:
        option["choices"] = setting.choices
    if setting.metavar is not None:
        option["metavar"] = setting.metavar
    return option | changes


def _reader(setting: Setting) -> Callable[[str], Any]:
    """An argparse type: the setting's value of a word; its ValueError as a usage error."""

    def read(text: str) -> Any:
        try:
            return setting.from_text(text)
        except ValueError as exc:
            if setting.choices is None:
                raise argparse.ArgumentTypeError(str(exc)) from None
        choices = ", ".join(map(repr, setting.choices))
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {choices})")

    return read


def _output_options(p: argparse.ArgumentParser) -> None:
    """Where the model and plots go, and what the console shows."""
    p.add_argument(
        "--out",
        "-o",
        metavar="FILE",
        default=None,
        help="model file to write, in an existing folder; an anynet model already there is replaced, "
        "any other file only with --force (default: "
        "$ANYNET_HOME/models/<dataset>-<model>-<time>.safetensors)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out file that is not an anynet model (folders, FIFOs, devices, "
        "sockets and symbolic links are never replaced)",
    )
    p.add_argument("--no-save", action="store_true", help="do not save the model")
    p.add_argument(
        "--plots",
        metavar="DIR",
        default=None,
        help="write history.png, confusion.png and misclassified.png into DIR",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars and no per-class table")


# --------------------------------------------------------------------------- the command


def run(args: argparse.Namespace) -> int:
    if args.model not in MODEL_PRESETS:
        raise ValueError(f"unknown model {args.model!r}; choose one of {', '.join(MODEL_PRESETS)}")
    if args.plots:
        _require("matplotlib", "plots", "--plots")
    backend = get_backend(args.backend)  # fail before loading any data
    _check_size(args)
    _check_out(args)
    dataset = common._load_dataset(args.dataset, args.data_dir, args.quiet)
    out = None if args.no_save else _out_path(args, dataset.name)
    try:
        result = one_call.train(**_train_options(args, backend, dataset, out))
    except ModelNotSavedError as exc:  # a full disk at the end: the model kept elsewhere is the last
        if exc.saved_to is not None:
            record_last_model(exc.saved_to)
        raise
    if result.rank != 0:  # data-parallel: rank 0 alone reports and writes files
        return 0
    if result.path is not None:  # recorded first: a failure below must not lose the model
        record_last_model(result.path)
    _print_train_report(args, result)
    plots = None
    if args.plots and result.test is not None:
        plots = _write_plots(
            args.plots,
            result.history,
            result.test_labels,
            result.test_predictions,
            dataset.test.images,
            result.classes,
            say=False,
        )
    _say_next_steps(result.path, plots)
    return 0


def _check_size(args: argparse.Namespace) -> None:
    """Refuse ``--hidden`` widths whose network would have more parameters than a model file
    may hold (:data:`anynet.io.MAX_PARAMETERS`), before anything is allocated."""
    if args.hidden is None or MODEL_PRESETS[args.model]["kind"] != "mlp":
        return
    try:
        classes = len(dataset_info(args.dataset).classes)
    except KeyError:  # an unknown dataset: loading it says so
        return
    widths = (IMAGE_VALUES, *args.hidden, classes)
    count = sum(a * b + b for a, b in itertools.pairwise(widths))  # weights and biases
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"--hidden {','.join(map(str, args.hidden))}: that network has {count:,} parameters "
            f"({count * 4 / 2**30:,.1f} GiB of float32 weights alone), above the limit of "
            f"{MAX_PARAMETERS:,} (anynet.io.MAX_PARAMETERS); choose smaller widths"
        )


def _train_options(args: argparse.Namespace, backend: Backend, dataset: Dataset, out: Path | None) -> dict:
    """``anynet.train`` keyword arguments: the settings given (or defaulted) on the command line,
    with the data set and backend already loaded, the console and the file to save."""
    return {name: getattr(args, name) for name in SETTINGS} | {
        "dataset": dataset,
        "backend": backend,
        "verbose": 0 if args.quiet else args.verbose,
        "save": out,
    }


def _print_train_report(args: argparse.Namespace, result: TrainResult) -> None:
    """The summary (without what ``train`` already printed) and the per-class table."""
    said = ("saved to",) if args.quiet or not args.verbose else ("saved to", "test accuracy")
    _say("")
    _say("\n".join(line for line in result.summary().splitlines() if not line.startswith(said)))
    if result.test_labels is not None and not args.quiet:
        _say("")
        _say(f"per-class results on the {len(result.test_labels)} test images:")
        _say(_report(result.test_labels, result.test_predictions, result.classes))


def _say_next_steps(path: Path | None, plots: list | None) -> None:
    """Where the model and plots went, and what to run next: one short block."""
    _say("")
    if path is not None:
        _say(f"model   {path}")
        _say(f"        (recorded in {anynet_home() / 'last_model'}: the default for the commands below)")
    if plots:
        _say(f"plots   {Path(plots[0]).parent}{os.sep}: {', '.join(Path(p).name for p in plots)}")
    if path is not None:
        _say("next    anynet evaluate          per-class report on the test split")
        _say("        anynet predict IMAGE     top-3 characters for your own picture")
        _say("        anynet serve             draw characters at http://127.0.0.1:8000/")
