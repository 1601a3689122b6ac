"""Reproducible stratified splits, and the offline EMNIST-47 stand-in.

:func:`stratified_split` divides sample indices so that every class keeps (to within one
sample) the same proportion in both parts; the same ``(labels, fraction, seed)`` always gives
the same indices on every platform (NumPy's PCG64 ``default_rng``).

The EMNIST stand-in (``anynet.data.load("emnist-standin")``)
---------------------------------------------------------------
The EMNIST *balanced* images are not available offline. The stand-in is the canonical, byte-
verified EMNIST **bymerge TEST split** (116,323 images; the same 47 classes and the same label
mapping as balanced: digits, A-Z and ``abdefghnqrt``), divided by
``stratified_split(labels, STANDIN_TEST_FRACTION, STANDIN_SEED)`` into

- train: 98,875 images (85 %)
- test:  17,448 images (15 %)

Unlike balanced (2,400 train images per class), its classes are **unbalanced**, from 415
('Q') to 6,400 ('1') images in the source split, following the natural frequency in NIST SD19.
Plain accuracy therefore favours the frequent classes: report balanced (per-class mean)
accuracy next to it. Numbers measured on the stand-in are not comparable with published
EMNIST-balanced results.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STANDIN_SEED", "STANDIN_TEST_FRACTION", "stratified_split"]

STANDIN_SEED = 47
STANDIN_TEST_FRACTION = 0.15


def stratified_split(labels, fraction: float, seed: int | None = 0):
    """Split ``range(len(labels))`` into ``(idx_a, idx_b)`` stratified by label.

    ``idx_b`` receives ``round(fraction * n)`` samples in total, allotted to the classes in
    proportion to their size (largest remainders break ties), except that every class with
    at least two samples keeps at least one sample in each part (which can add a few). Both index arrays are int64 and sorted
    ascending, so the original order is kept within each part.

    Args:
        labels: host array-like of non-negative integer labels, shape ``(n,)``.
        fraction: share of the samples that goes to ``idx_b`` (the validation/test part),
            ``0 < fraction < 1``.
        seed: seed of the random choice within each class.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    labels = labels.astype(np.int64, copy=False)
    n = len(labels)
    if n and labels.min() < 0:
        raise ValueError("labels must be non-negative integers")
    counts = np.bincount(labels) if n else np.zeros(0, np.int64)

    # how many of each class go to part b: fraction * count rounded down, at least one of
    # each class in each part (classes of two or more), then the samples still missing from
    # round(fraction * n) go to the classes with the largest remainders that have room
    exact = fraction * counts
    take = np.floor(exact).astype(np.int64)
    big = counts >= 2
    take[big] = np.clip(take[big], 1, counts[big] - 1)
    short = round(fraction * n) - int(take.sum())
    if short > 0:
        room = take < np.where(big, counts - 1, counts)
        order = np.argsort(-(exact - take), kind="stable")
        order = order[room[order]]
        take[order[:short]] += 1

    # random order within each class: shuffle, then group by label keeping the shuffle
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    grouped = perm[np.argsort(labels[perm], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n else counts
    sorted_labels = labels[grouped]
    rank = np.arange(n) - starts[sorted_labels]
    in_b = rank < take[sorted_labels]
    idx_b = np.sort(grouped[in_b])
    idx_a = np.sort(grouped[~in_b])
    return idx_a, idx_b
