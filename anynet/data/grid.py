"""A PNG contact sheet of sample images, so a person can look at the data (Pillow only)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..backend import to_numpy

__all__ = ["save_grid"]


def save_grid(images, path, labels=None, classes=None, ncols: int = 10, zoom: int = 2, pad: int = 2):
    """Write ``images`` as a grid PNG at ``path`` and return the path.

    Args:
        images: ``(n, H, W)`` or ``(n, H*W)`` (square), uint8 0..255 or float 0..1, on any
            backend (copied to the host).
        labels: optional per-image caption: integer labels (shown as ``classes[label]`` when
            ``classes`` is given) or strings.
        classes: class names, index = label.
        ncols: images per row.
        zoom: integer magnification of each image (nearest neighbour).
        pad: pixels between cells.
    """
    arr = np.asarray(to_numpy(images))
    n = arr.shape[0]
    if arr.ndim == 2:
        side = math.isqrt(arr.shape[1])
        arr = arr.reshape(n, side, side)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    h, w = arr.shape[1] * zoom, arr.shape[2] * zoom
    if labels is not None:
        labels = list(to_numpy(labels)) if not isinstance(labels, (list, tuple)) else list(labels)
    caption = 12 if labels is not None else 0
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    sheet = Image.new("L", (ncols * (w + pad) + pad, nrows * (h + caption + pad) + pad), 96)
    draw = ImageDraw.Draw(sheet)
    for k in range(n):
        r, c = divmod(k, ncols)
        x0, y0 = pad + c * (w + pad), pad + r * (h + caption + pad)
        tile = Image.fromarray(arr[k]).resize((w, h), Image.Resampling.NEAREST)
        sheet.paste(tile, (x0, y0))
        if labels is not None:
            lab = labels[k]
            text = (
                lab
                if isinstance(lab, str)
                else (str(classes[int(lab)]) if classes is not None else str(int(lab)))
            )
            draw.text((x0 + 1, y0 + h), text, fill=255)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, format="PNG", optimize=True)
    return path
