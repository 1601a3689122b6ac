"""Random image augmentation on the device, written once in the Array API.

:class:`Augmenter` applies, per image, a random rotation, scaling and translation and an
elastic distortion (Simard, Steinkraus & Platt 2003: a uniform(-1, 1) displacement field per
axis, smoothed by a Gaussian of standard deviation ``sigma`` and scaled by ``alpha``), then
resamples the image bilinearly (zero outside the image). Everything happens in one pass of
backward mapping: for each output pixel the source position is computed and sampled.

It is meant to be called inside the training loop, once per batch, on the batch's device:

    aug = Augmenter(rotation=10, scale=0.1, translation=2, elastic_alpha=34, elastic_sigma=4)
    rng = backend.random(seed)
    xb = aug(xb, rng)          # (b, 784) or (b, 28, 28), same dtype and device

Only ``xp`` operations are used (no Python loop over images, no host-device sync): the
random parameters come from ``rng`` (a ``Backend.random`` source, on the device for CuPy and
PyTorch), the Gaussian smoothing is two matrix products ``G @ field @ G.T``, and the bilinear
gather is one ``xp.take`` on the flattened batch. Coordinate grids and Gaussian matrices are
made once per (namespace, device, dtype, image size) and cached on the Augmenter.

Conventions (image coordinates: row down, column right, centre at ``((H-1)/2, (W-1)/2)``):
a positive angle turns the image counter-clockwise as displayed (as ``numpy.rot90``); a scale
above 1 enlarges the character; translation ``(dx, dy)`` moves it right and down. Labels are
never seen or changed.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from ..backend import backend_of

__all__ = ["Augmenter"]


def _range(value, name: str, centre: float = 0.0) -> tuple[float, float]:
    """``v`` -> ``(centre - v, centre + v)``; a pair ``(lo, hi)`` is kept."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
        lo, hi = float(value[0]), float(value[1])
    else:
        v = float(value)
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
        lo, hi = centre - v, centre + v
    if lo > hi:
        raise ValueError(f"{name}: low {lo} > high {hi}")
    return lo, hi


def gaussian_matrix(n: int, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """``(n, n)`` float64 matrix ``G`` with ``G @ v`` = Gaussian smoothing of ``v`` (zero padding).

    ``G[i, j] = g(i - j)`` for ``|i - j| <= truncate * sigma``, with ``g`` normalised to sum 1
    over its full support, as a convolution with zero padding (scipy's mode='constant').
    """
    radius = int(truncate * sigma + 0.5)
    d = np.arange(-radius, radius + 1)
    kernel_sum = np.exp(-0.5 * (d / sigma) ** 2).sum()
    i = np.arange(n)
    diff = i[:, None] - i[None, :]
    g = np.exp(-0.5 * (diff / sigma) ** 2) / kernel_sum
    g[np.abs(diff) > radius] = 0.0
    return g


class Augmenter:
    """Random rotation, scaling, translation and elastic distortion of image batches.

    Args:
        rotation: degrees; ``r`` draws uniformly from ``(-r, r)``, a pair from ``(lo, hi)``.
        scale: ``s`` draws the zoom factor from ``(1 - s, 1 + s)``; a pair from ``(lo, hi)``.
            Default ``(1.0, 1.0)``: no scaling.
        translation: pixels; ``t`` draws each of dx, dy from ``(-t, t)``, a pair from ``(lo, hi)``.
        elastic_alpha: strength of the elastic distortion (Simard et al. use 34 for 28x28
            with sigma 4); 0 disables it.
        elastic_sigma: standard deviation, in pixels, of the Gaussian smoothing the field.

    With every strength at zero the call returns its input unchanged (the same array).
    """

    def __init__(
        self,
        rotation=0.0,
        scale=(1.0, 1.0),
        translation=0.0,
        elastic_alpha: float = 0.0,
        elastic_sigma: float = 4.0,
    ):
        self.rotation = _range(rotation, "rotation")
        self.scale = _range(scale, "scale", centre=1.0)
        if self.scale[0] <= 0:
            raise ValueError(f"scale factors must be positive, got range {self.scale}")
        self.translation = _range(translation, "translation")
        self.elastic_alpha = float(elastic_alpha)
        self.elastic_sigma = float(elastic_sigma)
        if self.elastic_alpha < 0 or self.elastic_sigma <= 0:
            raise ValueError("elastic_alpha must be >= 0 and elastic_sigma > 0")
        self._cache: dict = {}

    def __repr__(self) -> str:
        return (
            f"Augmenter(rotation={self.rotation}, scale={self.scale}, "
            f"translation={self.translation}, elastic_alpha={self.elastic_alpha}, "
            f"elastic_sigma={self.elastic_sigma})"
        )

    @property
    def is_identity(self) -> bool:
        """True when every transformation has zero strength."""
        return not (self._affine or self.elastic_alpha)

    @property
    def _affine(self) -> bool:
        return self.rotation != (0.0, 0.0) or self.scale != (1.0, 1.0) or self.translation != (0.0, 0.0)

    # ------------------------------------------------------------------ constants per device
    def _constants(self, xp, dev, dtype, h: int, w: int):
        key = (xp.__name__, str(dev), str(dtype), h, w)
        c = self._cache.get(key)
        if c is None:
            rows = np.repeat(np.arange(h, dtype=np.float64), w) - (h - 1) / 2
            cols = np.tile(np.arange(w, dtype=np.float64), h) - (w - 1) / 2
            c = {
                "dr": xp.asarray(rows.reshape(1, -1), dtype=dtype, device=dev),
                "dc": xp.asarray(cols.reshape(1, -1), dtype=dtype, device=dev),
                # the bounds sampling positions are clamped to, as 0-d arrays made once
                "bounds": tuple(xp.asarray(v, dtype=dtype, device=dev) for v in (-1.0, float(h), float(w))),
            }
            if self.elastic_alpha:
                c["gh"] = xp.asarray(gaussian_matrix(h, self.elastic_sigma), dtype=dtype, device=dev)
                c["gwt"] = xp.asarray(gaussian_matrix(w, self.elastic_sigma).T, dtype=dtype, device=dev)
            self._cache[key] = c
        return c

    # ------------------------------------------------------------------ the transform
    def __call__(self, x, rng):
        """Augment a batch ``x`` of shape ``(b, H*W)`` (square images), ``(b, H, W)`` or
        ``(b, 1, H, W)``.

        ``rng`` is a ``Backend.random(seed)`` source of ``x``'s backend (or an int seed, for
        convenience outside training loops). Returns an array of ``x``'s shape, dtype and
        device.
        """
        if self.is_identity:
            return x
        xp, dev = array_namespace(x), device_of(x)
        rng = _random_source(x, rng, xp, dev)
        owner = getattr(rng, "backend", None)
        with contextlib.nullcontext() if owner is None else owner.activate():
            return self._transform(x, rng, xp, dev)

    def _transform(self, x, rng, xp, dev):
        """:meth:`__call__` on the images' device."""
        b, h, w = _batch_size(x.shape)
        c = self._constants(xp, dev, x.dtype, h, w)
        if self._affine:
            src_r, src_c = self._affine_sources(xp, rng, c, b, h, w, x.dtype)
        else:
            src_r, src_c = c["dr"] + (h - 1) / 2, c["dc"] + (w - 1) / 2  # (1, HW), broadcast below
        if self.elastic_alpha:
            field = rng.uniform((2, b, h, w), -1.0, 1.0, dtype=x.dtype)
            field = xp.matmul(xp.matmul(c["gh"], field), c["gwt"]) * self.elastic_alpha
            field = xp.reshape(field, (2, b, h * w))
            src_r, src_c = src_r + field[0, ...], src_c + field[1, ...]
        out = _bilinear(xp, xp.reshape(x, (b, h * w)), src_r, src_c, b, h, w, c["bounds"], dev)
        return xp.reshape(out, x.shape)

    def _affine_sources(self, xp, rng, c, b: int, h: int, w: int, dtype):
        """Where each output pixel is sampled from under a random rotation, scaling and shift
        per image: ``(src_r, src_c)``, each ``(b, HW)``."""
        u = rng.uniform((4, b, 1), 0.0, 1.0, dtype=dtype)
        (r_lo, r_hi), (s_lo, s_hi), (t_lo, t_hi) = self.rotation, self.scale, self.translation
        theta = (r_lo + (r_hi - r_lo) * u[0, ...]) * (math.pi / 180.0)
        inv_s = 1.0 / (s_lo + (s_hi - s_lo) * u[1, ...])
        tx = t_lo + (t_hi - t_lo) * u[2, ...]
        ty = t_lo + (t_hi - t_lo) * u[3, ...]
        cos = xp.cos(theta) * inv_s
        sin = xp.sin(theta) * inv_s
        dc = c["dc"] - tx  # (b, HW): output pixel minus centre minus shift
        dr = c["dr"] - ty
        return dc * sin + dr * cos + (h - 1) / 2, dc * cos - dr * sin + (w - 1) / 2


def _random_source(x, rng, xp, dev):
    """``rng`` as a random source of ``x``'s backend (an int seeds a new one); refuses a
    source of another backend or device."""
    if isinstance(rng, (int, np.integer)):
        return backend_of(x).random(int(rng))
    owner = getattr(rng, "backend", None)
    if owner is not None and (owner.xp is not xp or owner.device != dev):
        raise ValueError(
            f"the random source belongs to backend {owner.spec}, but the images live in "
            f"{xp.__name__} on {dev!r}; use backend.random(seed) of the images' backend"
        )
    return rng


def _batch_size(shape) -> tuple[int, int, int]:
    """``(b, H, W)`` of a batch of shape ``(b, H*W)`` (square images), ``(b, H, W)`` or
    ``(b, 1, H, W)`` (one channel, as convolutional networks take it)."""
    if len(shape) == 4 and shape[1] == 1:
        return shape[0], shape[2], shape[3]
    if len(shape) == 3:
        return shape
    if len(shape) != 2:
        raise ValueError(f"expected images (b, H*W), (b, H, W) or (b, 1, H, W), got shape {shape}")
    b, hw = shape
    h = math.isqrt(hw)
    if h * h != hw:
        raise ValueError(f"flat images of {hw} pixels are not square; pass (b, H, W)")
    return b, h, h


def _bilinear(xp, flat, src_r, src_c, b: int, h: int, w: int, bounds, dev):
    """Sample ``flat`` (b, h*w) at (src_r, src_c) (b or 1, h*w), zero outside the image.

    The batch gets a zero border (one pixel before, two after, by concatenation) and the
    coordinates are clamped to [-1, h] x [-1, w] (``bounds``: -1, h and w as 0-d arrays): all
    four neighbours of every sample then lie inside the bordered image, so no masks or integer
    clips are needed, and points outside the image read zeros exactly. The clamp is
    ``minimum(maximum(...))``, not ``xp.clip``: array-api-compat's clip assigns through boolean
    masks, which on CuPy reads each mask's count back to the host (four syncs per batch).
    """
    dtype = flat.dtype
    img = xp.reshape(flat, (b, h, w))
    img = xp.concat(
        [xp.zeros((b, h, 1), dtype=dtype, device=dev), img, xp.zeros((b, h, 2), dtype=dtype, device=dev)],
        axis=2,
    )
    stride = w + 3
    img = xp.concat(
        [
            xp.zeros((b, 1, stride), dtype=dtype, device=dev),
            img,
            xp.zeros((b, 2, stride), dtype=dtype, device=dev),
        ],
        axis=1,
    )
    img = xp.reshape(img, (-1,))
    low, high_r, high_c = bounds
    src_r = xp.minimum(xp.maximum(src_r, low), high_r)
    src_c = xp.minimum(xp.maximum(src_c, low), high_c)
    r0f = xp.floor(src_r)
    c0f = xp.floor(src_c)
    wr = src_r - r0f
    wc = src_c - c0f
    base = xp.reshape(xp.arange(b, dtype=xp.int64, device=dev) * ((h + 3) * stride), (b, 1))
    # top-left neighbour (r0, c0) sits at (r0 + 1, c0 + 1) in the bordered image
    i00 = xp.astype((r0f + 1.0) * stride + (c0f + 1.0), xp.int64) + base
    i00 = xp.reshape(i00, (-1,))
    v00 = xp.reshape(xp.take(img, i00), (b, h * w))
    v01 = xp.reshape(xp.take(img, i00 + 1), (b, h * w))
    v10 = xp.reshape(xp.take(img, i00 + stride), (b, h * w))
    v11 = xp.reshape(xp.take(img, i00 + (stride + 1)), (b, h * w))
    top = v00 + (v01 - v00) * wc
    bottom = v10 + (v11 - v10) * wc
    return top + (bottom - top) * wr
