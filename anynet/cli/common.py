"""What the commands share: printing, the model file to use, data, optional dependencies,
reports, and the options and argparse types of more than one command.

The commands call :func:`_model_path` and :func:`_load_dataset` through this module
(``common._load_dataset(...)``), so there is one place to replace them (tests do, to check that
no slow work starts before a command's checks)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..app.paths import default_model_path
from ..backend import KNOWN
from ..config import setting_of
from ..data import Dataset, Split, load
from ..io import model_file
from ..metrics import classification_report
from ..plots import save_report_plots

#: a command: parsed options -> exit status
Command = Callable[[argparse.Namespace], int]


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written and appends real defaults (not None / False) to help."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            action.default is not None
            and action.default is not False
            and action.default != argparse.SUPPRESS
            and action.option_strings
            and "%(default)" not in text
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


# --------------------------------------------------------------------------- output and files


def _say(*parts: object, file=None) -> None:
    print(*parts, file=file or sys.stdout, flush=True)


def _model_path(given: str | None, command: str) -> Path:
    """The model file named on the command line (a file, not a folder or the temporary of an
    interrupted save), or the last one ``anynet train`` saved."""
    return default_model_path(command) if given is None else model_file(given)


def _load_dataset(name: str, data_dir: str | None, quiet: bool) -> Dataset:
    return load(name, data_dir=data_dir, progress=not quiet)


def _split(dataset: Dataset, which: str) -> Split:
    if which not in ("train", "test"):
        raise ValueError(f"--split must be 'train' or 'test', got {which!r}")
    return getattr(dataset, which)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _require(module: str, extra: str, what: str) -> None:
    """Fail before any work when an optional dependency is missing."""
    if not _installed(module):
        raise ImportError(f"{what} needs {module}, which is not installed: pip install 'anynet[{extra}]'")


def _report(y_true, y_pred, classes) -> str:
    return classification_report(y_true, y_pred, classes, top_confusions=8)


def _write_plots(out_dir, history, y_true, y_pred, images, classes, probabilities=None, say=True):
    paths = save_report_plots(out_dir, history, y_true, y_pred, images, classes, probabilities)
    if say:
        _say("plots: " + ", ".join(str(p) for p in paths))
    return paths


# --------------------------------------------------------------------------- options


def _positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _backend_help() -> str:
    return f"auto, cpu, or a library: {', '.join(KNOWN)} (':device' picks a device, e.g. ':cuda:1')"


def _command(
    sub,
    name: str,
    func: Command,
    help: str,
    description: str,
    data: bool = True,
    check: Callable[[argparse.Namespace], Any] | None = None,
) -> argparse.ArgumentParser:
    """A subcommand's parser with the options every command takes; ``func`` runs it, after
    ``check`` (which may call ``args.parser.error``) when given."""
    p = sub.add_parser(name, help=help, description=description, formatter_class=_Formatter)
    if data:
        p.add_argument("--data-dir", metavar="DIR", default=None, help=setting_of("data_dir").help)
    p.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors"
    )
    p.set_defaults(func=func, parser=p, check=check)
    return p


def _model_options(p: argparse.ArgumentParser) -> None:
    """``--model FILE`` and ``--backend``: for the commands that use a saved model."""
    p.add_argument(
        "--model", "-m", metavar="FILE", default=None, help="model file (default: the last trained)"
    )
    p.add_argument("--backend", default="cpu", help=_backend_help())
