"""The data of a training run: a dataset argument (a name, a :class:`~.dataset.Dataset`, or
arrays) resolved into training, validation and test arrays, with a stratified subset and the
validation split taken reproducibly from the seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import to_numpy
from .dataset import load
from .splits import stratified_split

__all__ = ["RunData", "limit_and_split", "resolve"]


@dataclass
class RunData:
    """The data of a run, split: training, validation (``None`` or a pair) and test."""

    name: str
    classes: tuple
    x_train: Any
    y_train: Any
    x_test: Any = None
    y_test: Any = None
    validation: tuple | None = None


def resolve(dataset: Any, data_dir: Any, progress: bool) -> RunData:
    """The data of ``dataset``: a registered name (loaded, downloaded if needed), a Dataset, or
    arrays ``(x_train, y_train[, x_test, y_test])`` (classes named by their index)."""
    if isinstance(dataset, str):
        dataset = load(dataset, data_dir=data_dir, progress=progress)
    if hasattr(dataset, "train") and hasattr(dataset, "classes"):
        test = getattr(dataset, "test", None)
        return RunData(
            getattr(dataset, "name", "dataset"),
            tuple(str(c) for c in dataset.classes),
            dataset.train.images,
            dataset.train.labels,
            None if test is None else test.images,
            None if test is None else test.labels,
        )
    if isinstance(dataset, (tuple, list)) and len(dataset) in (2, 4):
        x_train, y_train = np.asarray(to_numpy(dataset[0])), np.asarray(to_numpy(dataset[1]))
        x_test = y_test = None
        if len(dataset) == 4 and dataset[2] is not None:
            x_test, y_test = np.asarray(to_numpy(dataset[2])), np.asarray(to_numpy(dataset[3]))
        if y_train.ndim != 1:
            raise ValueError(f"y_train must be 1-D class indices, got shape {y_train.shape}")
        k = int(max(y_train.max(), -1 if y_test is None else y_test.max())) + 1
        return RunData("arrays", tuple(str(i) for i in range(k)), x_train, y_train, x_test, y_test)
    raise TypeError(
        "dataset must be a name such as 'mnist', an anynet.data.Dataset, or arrays "
        f"(x_train, y_train[, x_test, y_test]); got {type(dataset).__name__}"
    )


def limit_and_split(data: RunData, limit: int | None, validation: Any, seed: int) -> None:
    """Keep a stratified subset of ``limit`` training samples, then hold out the validation
    part (a fraction, or given arrays)."""
    if limit is not None and int(limit) < len(data.y_train):
        keep = stratified_split(data.y_train, int(limit) / len(data.y_train), seed)[1]
        if len(keep) > int(limit):  # fewer samples than classes: keep a random `limit` of them
            keep = np.sort(np.random.default_rng(seed).choice(keep, int(limit), replace=False))
        data.x_train, data.y_train = data.x_train[keep], data.y_train[keep]
    if isinstance(validation, (tuple, list)):
        data.validation = (validation[0], validation[1])
    elif validation:
        fit_idx, val_idx = stratified_split(data.y_train, float(validation), seed)
        if len(val_idx) and len(fit_idx):  # too few samples to hold any out: no validation
            data.validation = (data.x_train[val_idx], data.y_train[val_idx])
            data.x_train, data.y_train = data.x_train[fit_idx], data.y_train[fit_idx]
