"""Recognise users' images with a trained model: the code shared by the CLI and the web app.

from anynet import load_model
from anynet.predict import predict_files
for r in predict_files(load_model("mnist.safetensors"), ["seven.png"], show_dir="seen"):
    print(r.path, r.error or r.top)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from . import imageprep
from .backend import to_numpy

__all__ = ["Prediction", "class_names", "predict_files", "show_image", "top_k"]


def class_names(model) -> tuple[str, ...]:
    """The model's characters by class index (``"0".."9"`` style names when it has none)."""
    classes = getattr(model, "classes", None)
    if classes:
        return tuple(str(c) for c in classes)
    n = getattr(model, "num_outputs", None)
    if n is None:
        raise ValueError("the model has neither .classes nor .num_outputs")
    return tuple(str(i) for i in range(int(n)))


def _probabilities(model, images28) -> np.ndarray:
    x = np.asarray(images28)  # uint8 pixels or floats in [0, 1]: the model's input gate scales
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (imageprep.FIELD, imageprep.FIELD):
        raise ValueError(f"expected images of shape (n, 28, 28) or (28, 28), got {x.shape}")
    probs = model.predict_proba(x.reshape(x.shape[0], -1))
    return np.asarray(to_numpy(probs), dtype=np.float64)


def top_k(model, images28, k: int = 3) -> list[list[tuple[str, float]]]:
    """The ``k`` most likely characters for each prepared image, best first.

    ``images28``: (n, 28, 28) or one (28, 28) image: floats in [0, 1] as made by
    :func:`anynet.imageprep.prepare`, or uint8 pixels as in a dataset.
    Returns one list of ``(character, probability)`` per image.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    names = class_names(model)
    probs = _probabilities(model, images28)
    if probs.shape[1] != len(names):
        raise ValueError(f"the model gives {probs.shape[1]} outputs for {len(names)} classes")
    k = min(k, len(names))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(names[j], float(p[j])) for j in row] for p, row in zip(probs, order)]


@dataclass
class Prediction:
    """The outcome for one input: ``top`` (best first) or an ``error`` message."""

    path: str
    top: list[tuple[str, float]] = field(default_factory=list)
    image28: np.ndarray | None = None
    error: str | None = None
    shown: str | None = None  # the --show picture written for it

    @property
    def label(self) -> str | None:
        return self.top[0][0] if self.top else None

    @property
    def confidence(self) -> float | None:
        return self.top[0][1] if self.top else None

    def __str__(self) -> str:
        if self.error:
            return f"{self.path}: error: {self.error}"
        alts = ", ".join(f"{c} {p:.1%}" for c, p in self.top[1:])
        return f"{self.path}: {self.label} ({self.confidence:.1%})" + (f"  [{alts}]" if alts else "")


def show_image(original, image28: np.ndarray, caption: str = "", height: int = 280) -> Image.Image:
    """Side by side: the original picture (left) and the 28x28 the network saw, enlarged with
    square pixels (right), with ``caption`` underneath."""
    if isinstance(original, Image.Image):
        left = ImageOps.exif_transpose(original).convert("RGBA")
        bg = Image.new("RGBA", left.size, "white")
        left = Image.alpha_composite(bg, left).convert("RGB")
    else:
        gray = imageprep.load_gray(original)
        left = Image.fromarray(np.round(gray * 255).astype(np.uint8)).convert("RGB")
    scale = height / left.height
    left = left.resize((max(1, round(left.width * scale)), height), Image.Resampling.LANCZOS)
    right = imageprep.to_pil(image28, scale=max(1, height // imageprep.FIELD)).convert("RGB")
    pad, text_h = 10, 24 if caption else 0
    canvas = Image.new(
        "RGB", (left.width + right.width + 3 * pad, height + 2 * pad + text_h), (235, 235, 235)
    )
    canvas.paste(left, (pad, pad))
    canvas.paste(right, (2 * pad + left.width, pad))
    if caption:
        try:
            font = ImageFont.load_default(size=18)
        except (TypeError, OSError):  # old Pillow or no FreeType: the small bitmap font
            font = ImageFont.load_default()
        ImageDraw.Draw(canvas).text((pad, height + pad + 2), caption, fill=(0, 0, 0), font=font)
    return canvas


def predict_files(
    model,
    paths: Sequence[str | os.PathLike],
    k: int = 3,
    show_dir: str | os.PathLike | None = None,
    invert="auto",
    style: str | None = None,
) -> list[Prediction]:
    """Prepare and recognise each image file; one :class:`Prediction` per path, in order.

    A file that cannot be used (missing, not an image, no ink) gets ``error`` set instead of
    stopping the others. With ``show_dir``, ``<stem>.png`` there shows each original beside
    the 28x28 image the network saw. ``style`` (``"mnist"`` / ``"emnist"``) defaults to the one
    the model's training data used (:func:`anynet.imageprep.style_for`).
    """
    style = imageprep.style_for(model) if style is None else style
    results = [Prediction(path=str(p)) for p in paths]
    good: list[Prediction] = []
    for r in results:
        try:
            r.image28 = imageprep.prepare(r.path, invert=invert, style=style)
            good.append(r)
        except imageprep.ImagePrepError as e:
            r.error = str(e)
    if good:
        tops = top_k(model, np.stack([r.image28 for r in good if r.image28 is not None]), k=k)
        for r, top in zip(good, tops):
            r.top = top
    if show_dir is not None:
        out = Path(show_dir)
        out.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        for r in good:
            stem = Path(r.path).stem or "image"
            name, i = f"{stem}.png", 1
            while name in used:
                i += 1
                name = f"{stem}-{i}.png"
            used.add(name)
            with Image.open(r.path) as original:
                original.load()
                caption = f"{r.label}  {r.confidence:.1%}"
                show_image(original, np.asarray(r.image28), caption).save(out / name)
            r.shown = str(out / name)
    return results
