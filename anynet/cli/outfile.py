"""``anynet train --out``: where the model goes, checked before any data is loaded."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..app.paths import anynet_home
from ..io import WriteTargetError, check_write_target, looks_like_model
from ..io.files import check_writable_folder


def _out_path(args: argparse.Namespace, dataset: str) -> Path:
    """``--out``, or the default file under ``$ANYNET_HOME/models/``."""
    return Path(args.out).expanduser() if args.out else _default_out(dataset, args.model)


def _default_out(dataset: str, model: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return anynet_home() / "models" / f"{dataset}-{model}-{stamp}.safetensors"


def _check_out(args: argparse.Namespace) -> None:
    """Fail before loading data or training when the model could not be saved: ``--out`` is a
    folder, in a missing, non-folder or read-only folder (the default folder may be created), not
    a regular file (FIFO, device, socket, symbolic link), or an existing file that is not an
    anynet model (unless ``--force``)."""
    if args.no_save:
        return
    if args.out is None:
        folder, advice = anynet_home() / "models", "set ANYNET_HOME or pass --out FILE"
    else:
        folder, advice = _given_out_folder(Path(args.out).expanduser(), args.force), "choose another --out"
    try:  # save_model creates the folder again; a failed run leaves nothing behind
        check_writable_folder(folder, "model")
    except OSError as exc:
        raise OSError(f"{exc}; {advice}") from None


def _given_out_folder(out: Path, force: bool) -> Path:
    """The folder of ``--out``, after checking what is at ``--out`` may be replaced."""
    if out.is_dir() and not out.is_symlink():
        raise ValueError(f"--out {out} is a folder; give a file name, e.g. --out {out / 'model.safetensors'}")
    folder = out.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist (create it first)"
        raise ValueError(f"--out {out}: {folder} {what}")
    try:
        check_write_target(out)
    except WriteTargetError as exc:
        raise WriteTargetError(f"--out {exc}") from None
    if not force and out.exists() and out.stat().st_size and not looks_like_model(out):
        raise ValueError(
            f"--out {out} exists and is not an anynet model; pass --force to replace it, "
            "or choose another file name"
        )
    return folder
