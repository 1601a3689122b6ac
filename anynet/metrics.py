"""Classification metrics: accuracy, balanced accuracy, per-class accuracy, confusion matrix,
most confused pairs, and a printable report.

Labels may be host NumPy arrays, lists or arrays of any backend; they are brought to the host
once (``anynet.to_numpy``), since they are small (one integer per sample) and the results are
tables for people. Classes are named by their characters (``classes[i]`` for index ``i``).

    >>> from anynet.metrics import classification_report
    >>> print(classification_report(y_true, y_pred, classes="0123456789"))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import to_numpy

__all__ = [
    "Confusion",
    "accuracy",
    "balanced_accuracy",
    "classification_report",
    "confusion_matrix",
    "most_confused",
    "per_class_accuracy",
    "per_class_table",
]


def _labels(y, name: str) -> np.ndarray:
    a = np.asarray(to_numpy(y))
    if a.ndim == 2:  # probabilities / one-hot rows -> class indices
        a = np.argmax(a, axis=1)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D class indices (or 2-D scores), got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{name} must hold whole class indices")
    elif a.dtype.kind not in "biu":
        raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if a.size and a.min() < 0:
        raise ValueError(f"{name} holds negative class indices")
    return a


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    if t.size == 0:
        raise ValueError("no labels given (0 samples)")
    return t, p


def _num_classes(t, p, num_classes, classes=None) -> int:
    if num_classes is None and classes is not None:
        num_classes = len(classes)
    seen = int(max(t.max(), p.max())) + 1
    if num_classes is None:
        return seen
    if seen > num_classes:
        raise ValueError(f"class index {seen - 1} is out of range for {num_classes} classes")
    return int(num_classes)


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose prediction equals the label."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Host int64 ``(k, k)`` matrix: entry ``[i, j]`` counts samples of class ``i`` predicted
    as class ``j`` (rows are the truth, columns the prediction)."""
    t, p = _pair(y_true, y_pred)
    k = _num_classes(t, p, num_classes)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def per_class_accuracy(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Host float64 ``(k,)``: the accuracy (recall) of each class; NaN for a class with no
    samples."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def balanced_accuracy(y_true, y_pred, num_classes: int | None = None) -> float:
    """Mean of the per-class accuracies over the classes that have samples: every class
    counts the same, however frequent (use it on unbalanced data such as emnist-standin)."""
    return float(np.nanmean(per_class_accuracy(y_true, y_pred, num_classes)))


@dataclass(frozen=True)
class Confusion:
    """One off-diagonal cell of the confusion matrix: ``count`` samples of ``true`` were read
    as ``predicted``, ``share`` of all samples of ``true``."""

    true: str
    predicted: str
    count: int
    share: float

    def __str__(self) -> str:
        return f"{self.true} -> {self.predicted}: {self.count} ({self.share:.1%} of {self.true})"


def _names(classes, k: int) -> list[str]:
    if classes is None:
        return [str(i) for i in range(k)]
    names = [str(c) for c in classes]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} classes")
    return names


def most_confused(cm, classes=None, top: int = 5) -> list[Confusion]:
    """The ``top`` largest off-diagonal cells of confusion matrix ``cm``, largest first (ties:
    lower true index, then lower predicted index); cells with count 0 are left out."""
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {cm.shape}")
    names = _names(classes, cm.shape[0])
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")[: max(int(top), 0)]
    support = cm.sum(axis=1)
    out = []
    for f in flat:
        i, j = divmod(int(f), cm.shape[0])
        if off[i, j] == 0:
            break
        out.append(Confusion(names[i], names[j], int(off[i, j]), float(off[i, j] / support[i])))
    return out


def per_class_table(y_true, y_pred, classes=None, sort: str = "class") -> str:
    """A text table with one row per class: samples, errors, accuracy and the class it is most
    often mistaken for (like paper 002's per-digit table, with characters, not indices).

    ``sort``: ``"class"`` (index order) or ``"accuracy"`` (worst first).
    """
    t, p = _pair(y_true, y_pred)
    k = _num_classes(t, p, None, classes)
    cm = confusion_matrix(t, p, k)
    names = _names(classes, k)
    support = cm.sum(axis=1)
    correct = np.diag(cm)
    acc = per_class_accuracy(t, p, k)
    order = list(range(k))
    if sort == "accuracy":
        order.sort(key=lambda i: (np.inf if np.isnan(acc[i]) else acc[i], i))
    elif sort != "class":
        raise ValueError(f"sort must be 'class' or 'accuracy', got {sort!r}")
    off = cm.copy()
    np.fill_diagonal(off, 0)
    width = max(5, max(len(n) for n in names))
    lines = [f"{'class':<{width}}  {'samples':>7}  {'wrong':>6}  {'accuracy':>8}  most often read as"]
    for i in order:
        if support[i] == 0:
            lines.append(f"{names[i]:<{width}}  {0:>7}  {'-':>6}  {'-':>8}")
            continue
        j = int(np.argmax(off[i]))
        mistaken = f"{names[j]} ({off[i, j]})" if off[i, j] else "-"
        lines.append(
            f"{names[i]:<{width}}  {support[i]:>7}  {support[i] - correct[i]:>6}  {acc[i]:>8.2%}  {mistaken}"
        )
    return "\n".join(lines)


def classification_report(y_true, y_pred, classes=None, top_confusions: int = 5, sort: str = "class") -> str:
    """Accuracy, balanced accuracy, the per-class table and the most confused pairs, as text."""
    t, p = _pair(y_true, y_pred)
    k = _num_classes(t, p, None, classes)
    cm = confusion_matrix(t, p, k)
    n, errors = t.size, int(np.sum(t != p))
    lines = [
        f"accuracy           {accuracy(t, p):.2%}  ({n - errors} of {n} correct, {errors} wrong)",
        f"balanced accuracy  {balanced_accuracy(t, p, k):.2%}  (mean over classes)",
        "",
        per_class_table(t, p, classes, sort=sort),
    ]
    pairs = most_confused(cm, classes, top_confusions)
    if pairs:
        lines += ["", "most confused (true -> predicted):"]
        lines += [f"  {c}" for c in pairs]
    return "\n".join(lines)
