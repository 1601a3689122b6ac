"""The :class:`Dataset` object and :func:`load`, the one call that gives a ready dataset.

    >>> from anynet.data import load
    >>> ds = load("mnist")                     # files found locally or downloaded once
    >>> ds.train.images.shape, ds.train.images.dtype
    ((60000, 28, 28), dtype('uint8'))
    >>> ds.classes[ds.test.labels[0]]
    '7'

Images are host ``uint8`` arrays ``(n, 28, 28)``, **upright** for every dataset (EMNIST IDX
files store them transposed; they are transposed back here), white ink on black (0..255).
Labels are host ``int64`` ``(n,)`` counted from 0 (EMNIST letters' 1..26 become 0..25), and
``classes[label]`` is the character. Moving them to an accelerator is the job of
:func:`anynet.data.to_device`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .fetch import fetch
from .readers import DataError, read_idx_pair, read_mapping
from .registry import dataset_info
from .splits import STANDIN_SEED, STANDIN_TEST_FRACTION, stratified_split

__all__ = ["Dataset", "Split", "load"]


@dataclass
class Split:
    """One part of a dataset: ``images`` uint8 ``(n, 28, 28)`` upright, ``labels`` int64 ``(n,)``."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self, num_classes: int | None = None) -> np.ndarray:
        """Number of samples of each class, int64 ``(num_classes,)``."""
        return np.bincount(self.labels, minlength=num_classes or 0)

    def subset(self, index) -> Split:
        """The samples at ``index`` (host integer array or slice), as a new Split."""
        return Split(self.images[index], self.labels[index])


@dataclass
class Dataset:
    """A loaded dataset.

    Attributes:
        name: registry name (``"mnist"``, ``"emnist-standin"``, ...).
        train, test: the two :class:`Split` s.
        classes: tuple of class names, index = label.
        num_classes: ``len(classes)``.
        description: one line for humans.
        source: where it came from: ``files`` (role -> local path), ``urls``, ``sha256`` and,
            for derived datasets, how they were derived.
    """

    name: str
    train: Split
    test: Split
    classes: tuple
    description: str = ""
    source: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.train)}, test={len(self.test)}, "
            f"num_classes={self.num_classes})"
        )


def _upright(images: np.ndarray, transposed: bool) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 2, 1)) if transposed else images


def _read_pair(paths, images_role, labels_role, info):
    images, labels = read_idx_pair(
        paths[images_role], paths[labels_role], info.num_classes, info.label_offset
    )
    return Split(_upright(images, info.transposed), labels)


def _check_mapping(info, paths) -> None:
    """When the dataset's own mapping file (EMNIST ``<folder>-mapping.txt``) lies beside its
    images, its characters must be the registry's class table: files of another split would
    otherwise be read with the wrong names."""
    folder = Path(next(iter(paths.values()))).parent
    mapping = folder / f"{info.folder}-mapping.txt"
    if not mapping.is_file():
        return
    found = read_mapping(mapping)
    if found != tuple(info.classes):
        raise DataError(
            f"{mapping} maps labels to {''.join(found)!r}, but dataset {info.name!r} has "
            f"classes {''.join(info.classes)!r}; the files in {folder} belong to another split"
        )


def load(
    name: str = "mnist",
    data_dir=None,
    download: bool = True,
    progress: bool = True,
    base_url: str | None = None,
) -> Dataset:
    """Load dataset ``name`` as a :class:`Dataset` of upright host uint8 images.

    Args:
        name: a name from :func:`anynet.data.dataset_names`: ``"mnist"``, ``"emnist-balanced"``,
            ``"emnist-byclass"``, ``"emnist-bymerge"``, ``"emnist-digits"``,
            ``"emnist-letters"``, ``"emnist-mnist"``, or ``"emnist-standin"`` (offline
            47-class stand-in for EMNIST balanced; see :mod:`anynet.data.splits`).
        data_dir: a directory to search first (see :mod:`anynet.data.fetch` for the order).
        download: download missing files into the cache (else raise :class:`DataError`).
        progress: show a download progress bar.
        base_url: download from ``<base_url>/<folder>/<file>`` instead of the registry URLs.
    """
    info = dataset_info(name)
    paths = fetch(info.name, data_dir=data_dir, download=download, progress=progress, base_url=base_url)
    source: dict[str, Any] = {
        "files": {role: str(p) for role, p in paths.items()},
        "urls": {role: f.url for role, f in info.files.items()},
        "sha256": {role: f.sha256 for role, f in info.files.items()},
    }
    if info.name == "emnist-standin":
        full = _read_pair(paths, "images", "labels", info)
        train_idx, test_idx = stratified_split(full.labels, STANDIN_TEST_FRACTION, STANDIN_SEED)
        train, test = full.subset(train_idx), full.subset(test_idx)
        source["derived"] = (
            "emnist-bymerge TEST split (116,323 images, 47 classes), "
            f"stratified_split(labels, fraction={STANDIN_TEST_FRACTION}, seed={STANDIN_SEED}) "
            "-> train (idx_a) / test (idx_b); unbalanced classes"
        )
    else:
        train = _read_pair(paths, "train_images", "train_labels", info)
        test = _read_pair(paths, "test_images", "test_labels", info)
    _check_mapping(info, paths)
    for split, expected, part in ((train, info.n_train, "train"), (test, info.n_test, "test")):
        if expected is not None and len(split) != expected:
            raise DataError(
                f"dataset {info.name!r}: {part} split has {len(split)} samples, expected "
                f"{expected} ({source['files']})"
            )
    return Dataset(info.name, train, test, info.classes, info.description, source)
