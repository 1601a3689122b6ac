"""What decides a training run: the settings a checkpoint pins and every rank must share.

:func:`run_settings` collects them (the data's size and a digest of its contents, the batch size,
the seed, the shuffle, the optimizer's and the loss's settings, class weights, augmentation;
``anynet.train`` adds the dataset, ``limit``, ``validation``, the model and its seed). A checkpoint
stores them; resuming with any of them changed is refused, naming the option, because the
split, the data order or the optimisation would no longer be the run the weights came from. Only
:data:`MAY_CHANGE` may differ on resume. Under ``distributed=``, the ranks compare them (with the
parameter shapes and the step plan) before their first collective.
"""

from __future__ import annotations

import hashlib
import json
import types
from typing import Any

import numpy as np

from ..backend import to_numpy

__all__ = [
    "MAY_CHANGE",
    "data_digest",
    "describe_differences",
    "differences",
    "fingerprint",
    "flag",
    "pinned",
]

#: what a resumed run may change (documented in docs/training.md)
MAY_CHANGE = ("epochs", "callbacks", "verbose", "checkpoint_every", "checkpoint_steps", "save")

#: the command-line flag of each setting, for messages
_FLAGS = {
    "dataset": "--dataset",
    "limit": "--limit",
    "validation": "--validation",
    "seed": "--seed",
    "model": "--model",
    "batch_size": "--batch-size",
    "augment": "--augment",
    "class_weight": "--class-weight",
    "optimizer.type": "--optimizer",
    "optimizer.lr": "--lr",
    "optimizer.weight_decay": "--weight-decay",
    "optimizer.clip_norm": "--clip-norm",
    "optimizer.schedule": "--schedule",
    "loss.label_smoothing": "--label-smoothing",
    "data": "--dataset, --limit, --validation or --seed",
}

#: rows of the input hashed by :func:`data_digest` (evenly spaced)
DIGEST_ROWS = 4096


def data_digest(x: Any, y: Any) -> str:
    """A short digest of the training data: every label and up to :data:`DIGEST_ROWS` evenly
    spaced input rows (enough to tell another split or subset apart, cheap on 60,000 images)."""
    n = int(x.shape[0])
    step = max(1, n // DIGEST_ROWS)
    h = hashlib.blake2b(digest_size=12)
    for part in (to_numpy(y), to_numpy(x[::step, ...])):
        part = np.ascontiguousarray(part)
        h.update(f"{part.dtype.str} {part.shape}\n".encode())
        h.update(part.tobytes())
    return h.hexdigest()


def _flatten(settings: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _plain(value: Any) -> Any:
    """JSON's view of a value (tuples become lists), so saved and new settings compare."""
    return json.loads(json.dumps(value))


def differences(saved: dict, now: dict) -> list[tuple[str, Any, Any]]:
    """``(name, saved, now)`` for each setting that differs (nested names joined by dots)."""
    a, b = _flatten(_plain(saved)), _flatten(_plain(now))
    return [(k, a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]


def flag(name: str) -> str:
    """``name`` with its command-line flag, when it has one."""
    return f"{name} ({_FLAGS[name]})" if name in _FLAGS else name


def describe_differences(diffs: list[tuple[str, Any, Any]]) -> str:
    """One line per difference: ``seed (--seed): 0 in the checkpoint, 1 now``."""
    return "\n".join(
        f"{flag(k)}: {_short(old)} in the checkpoint, {_short(new)} now" for k, old, new in diffs
    )


def _short(value: Any, limit: int = 60) -> str:
    text = "none" if value is None else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def pinned(run: Any) -> dict:
    """The settings of ``run`` (a :class:`~anynet.training.state.Run`) that a checkpoint pins,
    computed once per run."""
    if run.settings is None:
        net, batches = run.net, run.batches
        weights = getattr(run.loss, "weights", None)
        run.settings = {
            "samples": batches.samples,
            "batch_size": batches.batch_size,
            "seed": run.seed,
            "shuffle": batches.shuffle,
            "data": data_digest(batches.x, batches.targets),
            "validation_samples": 0 if run.validation is None else int(run.validation[0].shape[0]),
            "optimizer": {"type": type(net.optimizer).__name__, **net.optimizer.get_config()},
            "loss": {"name": net.loss.name, **net.loss.get_config()},
            "class_weight": None if weights is None else to_numpy(weights).reshape(-1).tolist(),
            "augment": describe_augment(run.options.augment),
            **({"compiled": True} if run.options.compile else {}),
            **run.options.settings,
        }
    return run.settings


def fingerprint(run: Any) -> dict:
    """What every rank must agree on before the first collective of training."""
    return {
        **pinned(run),
        "steps_per_epoch": run.steps,
        "epochs": run.epochs,
        "initial_epoch": run.epoch,
        "parameters": [[i, name, list(p.shape)] for i, name, p in run.net.parameters()],
        "dtype": run.net.dtype_name,
        "random": run.random,
        "checkpointing": run.checkpoint_dir is not None,
        "checkpoint_steps": run.options.checkpoint_steps,
    }


def describe_augment(augment: Any) -> str | None:
    """A name for the augmentation that is the same in every process (no memory addresses)."""
    if augment is None:
        return None
    if (
        isinstance(augment, (types.FunctionType, types.MethodType))
        or type(augment).__repr__ is object.__repr__
    ):
        return getattr(augment, "__qualname__", type(augment).__qualname__)
    return repr(augment)
