"""Figures for training runs: learning curves, confusion matrix, misclassified samples.

matplotlib is optional (``pip install 'anynet[plots]'``) and imported only inside these
functions. Figures are built with the object-oriented API (``matplotlib.figure.Figure``, drawn
by Agg), never through pyplot, so they neither open windows nor change the caller's matplotlib
backend. Each function returns the Figure and, given ``path``, also writes it as a PNG.

    >>> from anynet import plots
    >>> plots.plot_history(model.history, "curves.png")
    >>> plots.save_report_plots("plots/", model.history, y_true, y_pred, images, classes)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backend import to_numpy
from .metrics import confusion_matrix

__all__ = [
    "PlotsUnavailableError",
    "plot_confusion_matrix",
    "plot_history",
    "plot_misclassified",
    "save_report_plots",
]

DPI = 110


class PlotsUnavailableError(ImportError):
    """matplotlib is not installed."""


def _figure(figsize):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotsUnavailableError(
            "plots need matplotlib, which is not installed; install it with: pip install 'anynet[plots]'"
        ) from None
    return Figure(figsize=figsize, layout="constrained")


def _save(fig, path):
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, format="png")
    return fig


def plot_history(history: dict, path=None, title: str | None = None):
    """Accuracy (left) and loss (right) per epoch, training and validation, from
    ``Network.history`` (keys ``accuracy``, ``loss``, optionally ``val_accuracy``,
    ``val_loss``)."""
    if not history or not history.get("loss"):
        raise ValueError("the history is empty: train the model first")
    fig = _figure((10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    axes = fig.subplots(1, 2)
    for ax, key, label in ((axes[0], "accuracy", "accuracy"), (axes[1], "loss", "loss")):
        if key in history:
            ax.plot(epochs, history[key], "o-", label="training", color="tab:blue", markersize=4)
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "s-", label="validation", color="tab:orange", markersize=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
    axes[0].yaxis.set_major_formatter(_percent())
    if "val_accuracy" in history:
        best = int(np.argmax(history["val_accuracy"]))
        axes[0].annotate(
            f"{history['val_accuracy'][best]:.2%}",
            (epochs[best], history["val_accuracy"][best]),
            textcoords="offset points",
            xytext=(0, -16),
            ha="center",
            color="tab:orange",
        )
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _percent():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=1)


def plot_confusion_matrix(y_true, y_pred, classes=None, path=None, title: str | None = None):
    """Heat map of the confusion matrix, each row scaled to the share of its class (a power
    colour scale, so that small confusions show beside the bright diagonal). Cells hold the
    counts when there are at most 20 classes."""
    k = len(classes) if classes is not None else None
    cm = confusion_matrix(y_true, y_pred, k)
    k = cm.shape[0]
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(k)]
    shares = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    from matplotlib.colors import PowerNorm

    side = 5.5 if k <= 12 else min(4 + 0.22 * k, 14)
    fig = _figure((side + 1.2, side))
    ax = fig.subplots()
    image = ax.imshow(
        shares, cmap="Blues", norm=PowerNorm(gamma=0.35, vmin=0, vmax=1), interpolation="nearest"
    )
    fig.colorbar(image, ax=ax, format=_percent(), shrink=0.8, label="share of the true class")
    ax.set_xticks(range(k), names, fontsize=9 if k <= 20 else 7)
    ax.set_yticks(range(k), names, fontsize=9 if k <= 20 else 7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        str(cm[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7 if k > 10 else 8,
                        color="white" if shares[i, j] > 0.5 else "black",
                    )
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(title or f"confusion matrix ({cm.sum()} samples, accuracy {acc:.2%})")
    return _save(fig, path)


def plot_misclassified(
    images,
    y_true,
    y_pred,
    classes=None,
    path=None,
    probabilities=None,
    max_images: int = 36,
    columns: int = 9,
    title: str | None = None,
):
    """A grid of the first ``max_images`` misclassified samples, each titled with its true
    and predicted character (and the predicted probability when ``probabilities`` is given).

    ``images``: ``(n, 28, 28)`` or ``(n, 784)``, uint8 0..255 or floats in [0, 1]."""
    images = np.asarray(to_numpy(images))
    t = np.asarray(to_numpy(y_true)).astype(np.int64)
    p = np.asarray(to_numpy(y_pred)).astype(np.int64)
    if not len(images) == len(t) == len(p):
        raise ValueError(f"{len(images)} images, {len(t)} labels and {len(p)} predictions: they must match")
    if images.ndim == 2:
        side = round(np.sqrt(images.shape[1]))
        images = images.reshape(len(images), side, side)
    names = (lambda i: str(classes[i])) if classes is not None else str
    wrong = np.flatnonzero(t != p)[:max_images]
    probs = None if probabilities is None else np.asarray(to_numpy(probabilities))
    cols = max(1, min(columns, len(wrong)))
    rows = max(1, -(-len(wrong) // cols))
    fig = _figure((1.25 * cols + 0.3, 1.45 * rows + 0.5))
    if len(wrong) == 0:
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified samples", ha="center", va="center")
        return _save(fig, path)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, wrong):
        ax.imshow(images[i], cmap="gray_r", interpolation="nearest")
        label = f"{names(t[i])} → {names(p[i])}"
        if probs is not None:
            label += f" {probs[i, p[i]]:.0%}"
        ax.set_title(label, fontsize=9, color="firebrick")
    n_wrong = int(np.sum(t != p))
    fig.suptitle(title or f"misclassified: true → predicted (first {len(wrong)} of {n_wrong})", fontsize=11)
    return _save(fig, path)


def save_report_plots(
    out_dir, history, y_true, y_pred, images=None, classes=None, probabilities=None, prefix: str = ""
) -> list[Path]:
    """Write ``history.png`` (when there is a history), ``confusion.png`` and
    ``misclassified.png`` (when images are given) into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if history and history.get("loss"):
        written.append(out / f"{prefix}history.png")
        plot_history(history, written[-1])
    written.append(out / f"{prefix}confusion.png")
    plot_confusion_matrix(y_true, y_pred, classes, written[-1])
    if images is not None:
        written.append(out / f"{prefix}misclassified.png")
        plot_misclassified(images, y_true, y_pred, classes, written[-1], probabilities=probabilities)
    return written
