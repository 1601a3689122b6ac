"""A user's image -> a 28x28 MNIST-style array.

MNIST digits were made by a fixed procedure (LeCun et al.; paper 004, "Own testing"): the ink is
bright on a black background, the character's bounding box is scaled so that its longer side is
20 pixels (aspect ratio kept, anti-aliased, hence the grey levels), and the result is placed in a
28x28 field so that its centre of mass lies at pixel (14, 14). A network trained on MNIST (or
EMNIST, made the same way) only recognises what looks like that, so every image a user gives us
- a photo of paper, a scan, a drawing from the web canvas - goes through the same steps:

1. read it (path, bytes, file object, Pillow image or array); alpha is composited onto white;
   colour becomes grey (ITU-R 601 luma, as Pillow's ``"L"`` mode);
2. find the polarity: dark ink on light paper is inverted so that the ink is bright;
3. subtract the paper level and scale so the strongest ink is 1; keep only ink near confident
   strokes (Otsu's threshold) and above ``threshold`` (a fraction of the maximum), which
   removes uneven paper, specks, JPEG ringing and sensor noise;
4. crop to the ink's bounding box; resize so the longer side is 20 px (Pillow LANCZOS on the
   float image, anti-aliased);
5. put it in a 28x28 field and shift it by whole pixels so that its centre of mass is at (14, 14),
   as in MNIST, without pushing ink out of the field.

EMNIST was framed differently (Cohen et al. 2017: the character's bounding square, padded, scaled
to 28x28): its characters are about 24 px on their longer side and centred by their box, and a
model trained on EMNIST reads MNIST-framed input badly (about 40% instead of 79% on a quick
47-class MLP). ``style="emnist"`` frames it that way; :func:`style_for` picks the style from a
model's ``info``. Strokes much thinner than MNIST's (a fine pen on a big picture) are
widened first.

:func:`prepare` returns float32 (28, 28) in [0, 1] (0 = background, 1 = ink). An image with no
ink raises :class:`EmptyImageError` rather than returning a guess; unreadable or malformed
input raises :class:`ImagePrepError` (both are ``ValueError``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .backend import to_numpy

__all__ = [
    "MAX_PIXELS",
    "STYLES",
    "EmptyImageError",
    "ImagePrepError",
    "load_gray",
    "prepare",
    "prepare_batch",
    "style_for",
    "to_pil",
    "to_png_bytes",
]

#: Size of the output field and of the box the character is scaled into (MNIST).
FIELD = 28
BOX = 20
#: Refuse images with more pixels than this (a decompression bomb, or a mistake).
MAX_PIXELS = 40_000_000
#: Strokes thinner than MIN_STROKE px in the 20 px box are widened to TARGET_STROKE px
#: (MNIST's are about 2 to 3 px), measured on the crop reduced to STROKE_SIZE px.
MIN_STROKE = 1.5
TARGET_STROKE = 2.2
STROKE_SIZE = 160
#: Larger images are first reduced (area average) so that their longer side is this many px.
WORK_SIZE = 1024
#: Below this contrast (ink vs paper, on a 0..1 scale) an image is taken to hold no ink.
MIN_CONTRAST = 0.05

ImageSource = Union[str, os.PathLike, bytes, bytearray, "io.IOBase", Image.Image, np.ndarray]
Invert = Literal["auto"] | bool


class ImagePrepError(ValueError):
    """The input could not be read or is not a usable image."""


class EmptyImageError(ImagePrepError):
    """The image holds no ink (blank, or uniform), so there is nothing to recognise."""


# --------------------------------------------------------------------------- reading


def _from_pil(img: Image.Image) -> np.ndarray:
    """A Pillow image -> float32 (H, W) brightness in [0, 1], alpha composited onto white."""
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImagePrepError(f"image is too large: {w}x{h} pixels (at most {MAX_PIXELS:,})")
    if w == 0 or h == 0:
        raise ImagePrepError(f"image has no pixels ({w}x{h})")
    try:
        img = ImageOps.exif_transpose(img)  # phone photos: honour the orientation tag
        mode = img.mode
        if mode in ("I", "F") or mode.startswith("I;16"):
            a = np.asarray(img)
            if mode == "F":
                return _from_array(a.astype(np.float32))
            return (np.clip(a.astype(np.float64), 0, 65535) / 65535.0).astype(np.float32)
        has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
        if has_alpha:
            rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
            return _composite_on_white(rgba)
        return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError) as e:  # truncated / corrupt data
        raise ImagePrepError(f"could not decode the image: {e}") from e


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    rgb, alpha = rgba[..., :3], rgba[..., 3:4]
    return _luma(rgb * alpha + (1.0 - alpha))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.float32)


def _from_array(a: np.ndarray) -> np.ndarray:
    """An array -> float32 (H, W) brightness in [0, 1].

    Accepted: (H, W), (H, W, 1), (H, W, 3) RGB, (H, W, 4) RGBA; uint8 (0..255), uint16
    (0..65535), other integers in 0..255, bool, or floats in [0, 1].
    """
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):
        channels = a.shape[-1]
    elif a.ndim == 2:
        channels = 0
    else:
        raise ImagePrepError(
            f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4); got {a.shape}"
        )
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        raise ImagePrepError(f"image has no pixels (shape {a.shape})")
    if h * w > MAX_PIXELS:
        raise ImagePrepError(f"image is too large: {w}x{h} pixels (at most {MAX_PIXELS:,})")

    if a.dtype == np.bool_:
        f = a.astype(np.float32)
    elif a.dtype == np.uint8:
        f = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        f = a.astype(np.float32) / 65535.0
    elif np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise ImagePrepError(
                f"integer image values must lie in 0..255 (got {lo}..{hi}); use uint16 for 16-bit"
            )
        f = a.astype(np.float32) / 255.0
    elif np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ImagePrepError("image contains NaN or infinite values")
        low, high = float(a.min()), float(a.max())
        if low < 0.0 or high > 1.0:
            raise ImagePrepError(
                f"float image values must lie in [0, 1] (got {low:g}..{high:g}); "
                "divide 0..255 data by 255 or pass it as uint8"
            )
        f = a.astype(np.float32)
    else:
        raise ImagePrepError(f"unsupported image dtype {a.dtype}")

    if channels == 0:
        return f
    if channels == 1:
        return f[..., 0]
    if channels == 3:
        return _luma(f)
    return _composite_on_white(f)


def load_gray(source: ImageSource) -> np.ndarray:
    """Read an image into float32 (H, W) brightness in [0, 1] (0 = black, 1 = white).

    ``source`` is a file path, encoded image bytes, a binary file object, a Pillow image or an
    array (see :func:`prepare`). Transparent pixels count as white paper.
    """
    if isinstance(source, Image.Image):
        return _from_pil(source)
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImagePrepError("image data is empty (0 bytes)")
        return _open_and_convert(io.BytesIO(bytes(source)), "the image data")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImagePrepError(f"no such file: {path}")
        if path.is_dir():
            raise ImagePrepError(f"{path} is a directory, not an image file")
        return _open_and_convert(path, str(path))
    if hasattr(source, "read"):
        return _open_and_convert(source, "the file object")
    if hasattr(source, "__array__") or hasattr(source, "__dlpack__"):
        # a backend array (torch, cupy, ...): bring it to the host first
        return _from_array(np.asarray(to_numpy(source)))
    raise ImagePrepError(
        f"cannot read an image from {type(source).__name__}; "
        "give a path, bytes, a file object, a PIL image or an array"
    )


def _open_and_convert(fp: Any, what: str) -> np.ndarray:
    try:
        with Image.open(fp) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:  # checked before the pixels are decoded
                raise ImagePrepError(f"image is too large: {w}x{h} pixels (at most {MAX_PIXELS:,})")
            img.load()
            return _from_pil(img)
    except ImagePrepError:
        raise
    except UnidentifiedImageError as e:
        raise ImagePrepError(f"{what} is not an image Pillow can read (PNG, JPEG, ...)") from e
    except Image.DecompressionBombError as e:
        raise ImagePrepError(f"image is too large: {e}") from e
    except Exception as e:  # corrupt data makes Pillow's decoders raise many kinds of errors
        raise ImagePrepError(f"could not decode {what}: {e}") from e


# --------------------------------------------------------------------------- the procedure


def _ink_is_dark(gray: np.ndarray) -> bool:
    """True when the image looks like dark ink on light paper.

    The paper level is the median of a border ring; the ink is on whichever side of it the image
    reaches further (the darkest vs the brightest pixel), so grey paper and vignetting work too.
    """
    paper = float(np.median(_border(gray)))
    dark, light = paper - float(gray.min()), float(gray.max()) - paper
    if dark == light:
        return paper > 0.5
    return dark > light


def _border(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    r = max(1, round(0.04 * min(h, w)))
    return np.concatenate([a[:r].ravel(), a[-r:].ravel(), a[:, :r].ravel(), a[:, -r:].ravel()])


def _grow(mask: np.ndarray, r: int, op=np.logical_or) -> np.ndarray:
    """Binary dilation (``op=logical_or``) or erosion (``logical_and``) by a (2r+1)^2 square."""
    out = mask.copy()
    for axis in (0, 1):
        src, n = out.copy(), out.shape[axis]
        for d in range(1, min(r, n - 1) + 1):
            lo = [slice(None)] * 2
            hi = [slice(None)] * 2
            lo[axis], hi[axis] = slice(0, n - d), slice(d, n)
            out[tuple(lo)] = op(out[tuple(lo)], src[tuple(hi)])
            out[tuple(hi)] = op(out[tuple(hi)], src[tuple(lo)])
        if op is np.logical_and:  # pixels near the edge: the outside counts as background
            edge = [slice(None)] * 2
            for sl in (slice(0, min(r, n)), slice(max(0, n - r), n)):
                edge[axis] = sl
                out[tuple(edge)] = False
    return out


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1]: the split maximising the between-class variance."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(1, hist.sum())
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    total = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total * w0 - m0) ** 2 / (w0 * (1.0 - w0))
    between[~np.isfinite(between)] = 0.0
    return float(edges[int(np.argmax(between)) + 1])


def _ink(gray: np.ndarray, invert: Invert, threshold: float) -> np.ndarray:
    """Brightness -> ink in [0, 1] (1 = full ink) with paper and noise removed.

    The paper level (median of the border, or of the whole image if lower) is subtracted and the
    strongest ink scaled to 1. Ink is then kept where it is at least ``threshold`` AND within
    2 px of a confident stroke (above Otsu's threshold, clipped to [0.2, 0.5]); on larger images
    confident specks smaller than 3x3 px are dropped first. So uneven paper, JPEG ringing and
    sensor noise away from the strokes go, and the soft, anti-aliased edges of strokes stay.
    """
    if invert == "auto":
        invert = _ink_is_dark(gray)
    elif not isinstance(invert, (bool, np.bool_)):
        raise ValueError(f"invert must be 'auto', True or False, not {invert!r}")
    ink = 1.0 - gray if invert else gray
    paper = min(float(np.median(_border(ink))), float(np.median(ink)))
    ink = ink - np.float32(paper)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise EmptyImageError(
            "no ink found in the image (it is blank or nearly uniform); "
            "draw or photograph a character with clear contrast"
        )
    ink = np.clip(ink / np.float32(peak), 0.0, 1.0)
    strong = ink >= min(0.5, max(0.2, threshold, _otsu(ink)))
    if min(ink.shape) >= 64:
        opened = _grow(_grow(strong, 1, np.logical_and), 1)
        if opened.sum() >= 0.9 * strong.sum():  # thin-line drawings keep their lines
            strong = opened
    keep = _grow(strong, 2) & (ink >= threshold)
    return np.where(keep, ink, np.float32(0.0)).astype(np.float32)


def _resize(a: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))
    return np.asarray(img.resize(size, resample), dtype=np.float32)


def _stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in px, as 2 * area / boundary length of the confident ink."""
    mask = ink >= 0.5
    area = int(mask.sum())
    boundary = int((mask & ~_grow(mask, 1, np.logical_and)).sum())
    return 2.0 * area / boundary if boundary else float("inf")


def _dilate_disc(a: np.ndarray, r: int) -> np.ndarray:
    """Grey dilation by a disc of radius ``r``; the image grows by ``r`` on every side."""
    h, w = a.shape
    out = np.zeros((h + 2 * r, w + 2 * r), dtype=np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= r * r + r:
                view = out[r + dy : r + dy + h, r + dx : r + dx + w]
                np.maximum(view, a, out=view)
    return out


def _fit_box(ink: np.ndarray, box: int = BOX, thicken: bool = True) -> np.ndarray:
    """Crop to the ink's bounding box and resize so the longer side is ``box`` px (aspect kept).

    With ``thicken``, strokes that would come out thinner than MIN_STROKE px (a fine pen on a
    large picture) are first widened to about TARGET_STROKE px, as thick as MNIST's.
    """
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    if thicken:
        h, w = crop.shape
        if max(h, w) > STROKE_SIZE:  # measure and widen strokes at a modest resolution
            f = STROKE_SIZE / max(h, w)
            crop = _resize(crop, (max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.BOX)
            crop = crop / max(float(crop.max()), 1e-6)
        scale = box / max(crop.shape)
        width = _stroke_width(crop) * scale  # in px of the final box
        if width < MIN_STROKE:
            r = round((TARGET_STROKE - width) / 2 / scale)
            if r >= 1:
                crop = _dilate_disc(crop, r)
    h, w = crop.shape
    if h >= w:
        size = (max(1, round(w * box / h)), box)
    else:
        size = (box, max(1, round(h * box / w)))
    if (w, h) == size:
        return np.ascontiguousarray(crop, dtype=np.float32)
    out = np.clip(_resize(crop, size, Image.Resampling.LANCZOS), 0.0, 1.0)
    peak = float(out.max())
    return out / peak if 0.0 < peak < 1.0 else out


def _place(box: np.ndarray, centre: str = "mass") -> np.ndarray:
    """Place ``box`` in a FIELDxFIELD image, by whole pixels, with its centre of mass
    (``centre="mass"``, MNIST) or its middle (``"box"``, EMNIST) at the middle, (14, 14); never
    pushing ink out of the field."""
    h, w = box.shape
    mass = float(box.sum())
    if mass <= 0.0:
        raise EmptyImageError("no ink left after scaling the image down")
    if centre == "mass":
        cy = float((box.sum(axis=1) * np.arange(h)).sum()) / mass
        cx = float((box.sum(axis=0) * np.arange(w)).sum()) / mass
        top = int(np.floor(FIELD // 2 - cy + 0.5))
        left = int(np.floor(FIELD // 2 - cx + 0.5))
    else:
        top, left = (FIELD - h + 1) // 2, (FIELD - w + 1) // 2
    top = min(max(top, 0), FIELD - h)
    left = min(max(left, 0), FIELD - w)
    out = np.zeros((FIELD, FIELD), dtype=np.float32)
    out[top : top + h, left : left + w] = box
    return out


#: How the characters of each dataset were put into 28x28: (longer side in px, centring).
#: MNIST: a 20x20 box, centre of mass at the middle. EMNIST (Cohen et al. 2017): the character's
#: square frame, 2 px padding, scaled to 28x28 - the longer side is about 24 px and the box
#: itself is centred.
STYLES = {"mnist": (BOX, "mass"), "emnist": (24, "box")}


def style_for(model) -> str:
    """``"emnist"`` for a model trained on an EMNIST dataset, else ``"mnist"`` (from the
    model's :class:`~anynet.record.ModelInfo`; ``"mnist"`` for anything without one)."""
    info = getattr(model, "info", None)
    return getattr(info, "style", "mnist")


def prepare(
    image: ImageSource, *, invert: Invert = "auto", threshold: float = 0.05, style: str = "mnist"
) -> np.ndarray:
    """Turn one image into what an MNIST/EMNIST network expects: float32 (28, 28) in [0, 1].

    ``image``: a file path, encoded bytes (PNG, JPEG, ...), a binary file object, a Pillow image,
    or an array of any size - (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA; uint8, uint16,
    bool, or float in [0, 1] - where values are brightness (MNIST arrays, white ink on black,
    work as they are).
    ``invert``: ``"auto"`` detects dark ink on light paper; ``True`` forces inversion (the input
    has dark ink), ``False`` means the ink is already bright.
    ``threshold``: ink fainter than this fraction of the strongest ink is dropped as noise.
    ``style``: ``"mnist"`` (20 px box, centre of mass centred) or ``"emnist"`` (24 px box, box
    centred), the way the model's training images were made; see :func:`style_for`.

    Raises :class:`EmptyImageError` when there is no ink, :class:`ImagePrepError` for input that
    is not a usable image.
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must lie in [0, 1), not {threshold!r}")
    if style not in STYLES:
        raise ValueError(f"style must be one of {sorted(STYLES)}, not {style!r}")
    box, centre = STYLES[style]
    gray = load_gray(image)
    h, w = gray.shape
    if max(h, w) > WORK_SIZE:  # big photos: average down first (plenty for a 20 px result)
        f = WORK_SIZE / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        gray = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX), dtype=np.float32)
    ink = _ink(gray, invert, threshold)
    return _place(_fit_box(ink, box), centre)


def prepare_batch(
    images: Iterable[ImageSource],
    *,
    invert: Invert = "auto",
    threshold: float = 0.05,
    style: str = "mnist",
) -> np.ndarray:
    """:func:`prepare` for each image; returns float32 (n, 28, 28).

    ``images`` is an iterable of anything :func:`prepare` takes; an array is iterated over its
    first axis, so (n, H, W) and (n, H, W, 3) stacks work. An error names the failing index.
    """
    out = []
    for i, image in enumerate(images):
        try:
            out.append(prepare(image, invert=invert, threshold=threshold, style=style))
        except ImagePrepError as e:
            raise type(e)(f"image {i}: {e}") from e
    if not out:
        return np.zeros((0, FIELD, FIELD), dtype=np.float32)
    return np.stack(out)


# --------------------------------------------------------------------------- showing the result


def to_pil(image28: np.ndarray, scale: int = 1) -> Image.Image:
    """A (28, 28) image (float in [0, 1], or uint8 pixels) -> a greyscale Pillow image (white
    ink on black), enlarged ``scale`` times with square pixels so the network's view can be seen."""
    a = np.asarray(image28)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.round(np.clip(a.astype(np.float32), 0.0, 1.0) * 255).astype(np.uint8)
    img = Image.fromarray(a)
    if scale != 1:
        img = img.resize((a.shape[1] * scale, a.shape[0] * scale), Image.Resampling.NEAREST)
    return img


def to_png_bytes(image28: np.ndarray, scale: int = 1) -> bytes:
    """PNG-encode :func:`to_pil` of ``image28``."""
    buf = io.BytesIO()
    to_pil(image28, scale).save(buf, format="PNG")
    return buf.getvalue()
