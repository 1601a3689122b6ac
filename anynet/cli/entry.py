"""The ``anynet`` entry point: the parser of every command, and :func:`main`, which runs one
and reports what went wrong as one ``anynet: error: ...`` message with an exit status."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ..backend import BackendError
from ..data import DataError
from ..distributed.comm import DistributedError
from ..io import ModelFileError
from . import evaluate, export, info, predict, serve, sweep, train
from .common import _say
from .threads import _thread_limit

#: exit statuses: an error reported on stderr, bad command-line usage, Ctrl-C (128 + SIGINT),
#: output closed early (128 + SIGPIPE, as ``anynet info | head``)
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 1, 2, 130, 141
#: errors a user can cause and fix; any other exception is reported as a bug
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    BackendError,
    ModelFileError,
    DataError,
    DistributedError,
    ValueError,
    KeyError,
    OSError,
    ImportError,
    FloatingPointError,
)

EPILOG = """\
examples:
  anynet train                                  train the default MLP on MNIST (about 98.5%)
  anynet train --dataset emnist-standin --epochs 15 --plots plots/
  anynet evaluate --dataset mnist               evaluate the last trained model
  anynet predict my_digit.png --show seen/      top-3 guesses for your own image
  anynet serve                                  draw characters in the browser
  anynet export model.onnx                      the last trained model as ONNX (onnxruntime)
  anynet info                                   versions, backends, data found locally

environment:
  ANYNET_DATA_DIR   a folder with dataset files (searched before the download cache)
  ANYNET_CACHE_DIR  where downloads go (default: the user cache, e.g. ~/.cache/anynet)
  ANYNET_HOME       where models and the last-model record go (default ~/.anynet)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anynet",
        description="Train and use from-scratch neural networks for handwritten digits and "
        "characters (MNIST, EMNIST) on NumPy, CuPy, PyTorch, ...",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"anynet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (train, evaluate, predict, serve, sweep, export, info):
        command.add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``anynet`` command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is not None and args.check is not None:
            args.check(args)  # usage checks across options: parser.error exits with status 2
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        with _thread_limit(args):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _say("anynet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and closed early: not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # one line (--debug: the traceback); "a bug" unless expected
        if args.debug:
            raise
        first, *more = _error_lines(exc)
        _say(f"anynet: error: {first}", file=sys.stderr)
        for line in more:
            _say(f"  {line}", file=sys.stderr)
        return EXIT_ERROR


def _error_lines(exc: BaseException) -> list[str]:
    """What ``anynet: error:`` reports for ``exc``: its message, a memory hint, or a bug."""
    text = _message(exc).strip()
    if _out_of_memory(exc):
        detail = f" ({text})" if str(exc).strip() else ""
        text = (
            f"the model or the data does not fit in memory{detail}; "
            "try smaller widths, a smaller --batch-size or --limit"
        )
    elif not isinstance(exc, EXPECTED_ERRORS):
        text = f"unexpected {type(exc).__name__}: {text} (this is a bug; run again with --debug for the traceback)"
    return text.splitlines() or [type(exc).__name__]


def _out_of_memory(exc: BaseException) -> bool:
    """A host ``MemoryError``, or a device one (PyTorch's and CuPy's ``OutOfMemoryError``)."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__
