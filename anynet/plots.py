"""Figures for training runs: learning curves, confusion matrix, misclassified samples, and a
convolutional network's learned filters and feature maps.

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
from .layers import Conv2D
from .metrics import confusion_matrix

__all__ = [
    "PlotsUnavailableError",
    "plot_confusion_matrix",
    "plot_feature_maps",
    "plot_filters",
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


def _conv_layers(model) -> list[int]:
    """Indices of the model's ``Conv2D`` layers (a ``ValueError`` when there is none)."""
    found = [i for i, layer in enumerate(model.layers) if isinstance(layer, Conv2D)]
    if not found or not model.built:
        raise ValueError("the model has no built Conv2D layer: plot a trained convolutional network")
    return found


def _grid(fig, count: int, columns: int):
    cols = max(1, min(columns, count))
    axes = np.atleast_1d(fig.subplots(-(-count // cols), cols)).ravel()
    for ax in axes:
        ax.axis("off")
    return axes


def plot_filters(model, path=None, conv: int = 0, columns: int = 8, title: str | None = None):
    """The filters of the ``conv``-th ``Conv2D`` layer of ``model``, one square per output
    channel (averaged over input channels), on a symmetric blue-red scale: red adds, blue
    subtracts."""
    index = _conv_layers(model)[conv]
    w = np.asarray(to_numpy(model.layers[index].params["W"]), dtype=np.float64).mean(axis=1)
    limit = float(np.abs(w).max()) or 1.0
    cols = max(1, min(columns, len(w)))
    fig = _figure((1.0 * cols + 0.4, 1.0 * -(-len(w) // cols) + 0.6))
    for i, (ax, f) in enumerate(zip(_grid(fig, len(w), columns), w)):
        ax.imshow(f, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(str(i), fontsize=8)
    k = w.shape[-1]
    fig.suptitle(title or f"layer {index}: {len(w)} learned {k}x{k} filters", fontsize=11)
    return _save(fig, path)


def plot_feature_maps(model, image, path=None, layer: int | None = None, columns: int = 9, title=None):
    """What the network computes from one ``image`` (28x28, uint8 or [0, 1]): the input, then
    each channel of layer ``layer``'s output (default: the activation after the first
    ``Conv2D``), bright where the channel responds."""
    if layer is None:
        layer = min(_conv_layers(model)[0] + 2, len(model.layers) - 1)
    x = model.inputs(np.asarray(to_numpy(image))[None])
    with model.backend.activate():
        for block in model.layers[: layer + 1]:
            x, _ = block.forward(x, False)
    maps = np.asarray(to_numpy(x), dtype=np.float64)[0]
    if maps.ndim != 3:
        raise ValueError(f"layer {layer} ({type(model.layers[layer]).__name__}) has no feature maps")
    cols = max(1, min(columns, len(maps) + 1))
    fig = _figure((1.0 * cols + 0.4, 1.0 * -(-(len(maps) + 1) // cols) + 0.6))
    axes = _grid(fig, len(maps) + 1, columns)
    axes[0].imshow(np.asarray(to_numpy(image)).reshape(28, 28), cmap="gray_r", interpolation="nearest")
    axes[0].set_title("input", fontsize=8)
    for i, (ax, m) in enumerate(zip(axes[1:], maps)):
        ax.imshow(m, cmap="magma", interpolation="nearest")
        ax.set_title(str(i), fontsize=8)
    name = type(model.layers[layer]).__name__
    fig.suptitle(
        title or f"feature maps after layer {layer} ({name}), {maps.shape[1]}x{maps.shape[2]}", fontsize=11
    )
    return _save(fig, path)
