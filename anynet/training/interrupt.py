"""Ctrl-C during training: the current step finishes, a checkpoint is written, and the run
stops with :class:`~anynet.training.TrainingInterrupted`; a second Ctrl-C stops at once.

With data parallelism the ranks agree on stopping (a small host allreduce of the flag after
every step), so that every rank stops after the same step and rank 0's checkpoint holds every
rank's generator positions, whichever rank the Ctrl-C reached.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..io.files import anynet_home
from . import resume
from .state import Run

__all__ = ["deferred_sigint", "save_on_interrupt", "stop_requested"]


@contextmanager
def deferred_sigint(run: Run) -> Iterator[None]:
    """In the main thread, a first Ctrl-C sets ``run.interrupted`` (the loop stops after the
    current step); a second one interrupts at once."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def handler(signum, frame):
        if run.interrupted:
            raise KeyboardInterrupt
        run.interrupted = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def stop_requested(run: Run) -> bool:
    """Whether Ctrl-C asked to stop; distributed, whether it did on any rank (so that every
    rank stops after the same step)."""
    if run.parallel is not None:
        run.interrupted = run.parallel.any_rank(run.interrupted)
    return run.interrupted


def save_on_interrupt(run: Run, agreed: bool) -> None:
    """Save where the run stands and say how to continue it. ``agreed``: every rank stopped
    after the same step, so every rank's generator positions are gathered."""
    if run.parallel is not None and not (agreed or run.is_main):
        return
    directory = run.checkpoint_dir or interrupt_dir()
    try:
        resume.save(run, "interrupt", directory, gather=agreed)
    except Exception as exc:
        if run.is_main:
            _say(f"\nanynet: training interrupted; saving a checkpoint to {directory} failed: {exc}")
        return
    if run.is_main:
        where = f"epoch {run.epoch + 1}/{run.epochs}, step {run.step}/{run.steps}"
        _say(
            f"\nanynet: training interrupted ({where}); checkpoint saved to {directory}\n"
            f"anynet: resume with fit(..., checkpoint_dir={str(directory)!r}, resume=True), "
            f"anynet.train(..., checkpoint_dir={str(directory)!r}, resume=True) "
            f"or: anynet train ... --checkpoint-dir {directory} --resume"
        )


def interrupt_dir() -> Path:
    """Where a run without a checkpoint folder saves at Ctrl-C."""
    return anynet_home() / "checkpoints" / f"interrupted-{datetime.now():%Y%m%d-%H%M%S}"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
