"""``--threads``: how many BLAS / OpenMP threads a command computes with, and ``auto``'s choice."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator

from threadpoolctl import threadpool_info, threadpool_limits

from ..backend import BackendError, get_backend
from .common import _positive_int

#: environment variables that already fix a thread count; ``--threads auto`` follows them
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: ``--threads auto`` never picks more: a 128-sample batch's matmuls gain little beyond this
MAX_AUTO_THREADS = 4


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_threads() -> tuple[int, str]:
    """``--threads auto``: a thread count set in the environment, else the cores the 1-minute
    load average leaves idle, between 1 and :data:`MAX_AUTO_THREADS`; and why."""
    for var in THREAD_VARIABLES:
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value), f"from ${var}"
    cores = _cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available: assume an idle machine
        load = 0.0
    threads = max(1, min(MAX_AUTO_THREADS, cores - round(load)))
    return threads, f"{cores} cores, load average {load:.1f}"


@contextlib.contextmanager
def _thread_limit(args: argparse.Namespace) -> Iterator[None]:
    """Run a command with ``--threads`` BLAS / OpenMP threads (and PyTorch's own pool)."""
    choice = getattr(args, "threads", None)
    if choice is None:
        yield
        return
    threads = auto_threads()[0] if choice == "auto" else choice
    with contextlib.suppress(BackendError):  # an unusable backend is reported by the command
        get_backend(getattr(args, "backend", None) or "cpu").set_threads(threads)  # PyTorch's pool
    with threadpool_limits(limits=threads):
        yield


def _threads(text: str) -> int | str:
    """The ``--threads`` word: ``auto`` or a positive integer."""
    if text == "auto":
        return "auto"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}") from None


def _threads_option(p: argparse.ArgumentParser) -> None:
    """``--threads``: for the commands that compute (train, evaluate, predict, serve)."""
    p.add_argument(
        "--threads",
        type=_threads,
        default="auto",
        metavar="N",
        help="BLAS / OpenMP threads; 'auto': $OMP_NUM_THREADS or $OPENBLAS_NUM_THREADS if set, "
        f"else the idle cores, 1 to {MAX_AUTO_THREADS} (see anynet info)",
    )


def _thread_lines() -> list[str]:
    """The thread pools loaded in this process and what ``--threads auto`` picks here."""
    threads, why = auto_threads()
    lines = [f"threads: --threads auto picks {threads} ({why}; at most {MAX_AUTO_THREADS})"]
    for pool in threadpool_info():
        name = pool.get("internal_api") or pool.get("prefix")
        n = pool.get("num_threads")
        label = " ".join(str(x) for x in (name, pool.get("version")) if x)
        lines.append(f"  {label}: {n} thread{'' if n == 1 else 's'} now")
    return lines
