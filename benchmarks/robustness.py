"""How well does a model read MNIST (or EMNIST) characters dressed up as a user's picture, with and without
:mod:`anynet.imageprep`?

Each MNIST test digit is turned into what a user would hand us: dark ink on light paper, on a
large canvas (200x200 by default), scaled up to a random size, placed off-centre, with
thicker or thinner strokes (Pillow MaxFilter / MinFilter), JPEG-compressed, or on grey, noisy
paper. The model then reads it two ways:

- naive:     resize the whole picture to 28x28 and invert it (what one does without imageprep)
- imageprep: ``anynet.imageprep.prepare`` (the MNIST procedure)

    python benchmarks/robustness.py                       # trains a quick MLP first
    python benchmarks/robustness.py --model mnist.safetensors --n 2000
    python benchmarks/robustness.py --dataset emnist-balanced --out benchmarks/results/robustness-emnist.md

Data: ``--data-dir`` or ``$ANYNET_DATA_DIR``. The table goes to ``benchmarks/results/robustness.md``.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from anynet import imageprep
from anynet.backend import to_numpy

# --------------------------------------------------------------------------- making user-like images


def _ink_image(digit: np.ndarray, size: int) -> Image.Image:
    """An MNIST digit (uint8, ink bright) enlarged to ``size`` px, as a float ink image."""
    ink = Image.fromarray(digit.astype(np.float32) / 255.0)
    return ink.resize((size, size), Image.Resampling.BICUBIC)


def user_like(
    digit: np.ndarray,
    rng: np.random.Generator,
    *,
    canvas: int = 200,
    stroke: str = "same",
    jpeg: int | None = None,
    paper: str = "white",
) -> np.ndarray:
    """Dress one MNIST digit up as a user's photo/drawing; returns uint8 (canvas, canvas)."""
    size = int(rng.integers(canvas * 2 // 5, canvas * 4 // 5 + 1))  # 80..160 px for 200
    ink = _ink_image(digit, size)
    k = max(3, (size // 28) | 1)  # a filter about one MNIST pixel wide, odd
    if stroke == "thick":
        ink = ink.filter(ImageFilter.MaxFilter(k + 2))
    elif stroke == "thin":
        ink = ink.filter(ImageFilter.MinFilter(k))
    elif stroke == "pen":  # a fine pen: strokes about 1/100 of the digit's height
        ink = ink.filter(ImageFilter.MinFilter(2 * k + 1))
    a = np.clip(np.asarray(ink, dtype=np.float32), 0.0, 1.0)
    if stroke == "pen":  # thin, but as dark as a pen's ink
        a = np.clip(a / max(float(a.max()), 1e-6) * 1.5, 0.0, 1.0)
    full = np.zeros((canvas, canvas), dtype=np.float32)
    top = int(rng.integers(0, canvas - size + 1))
    left = int(rng.integers(0, canvas - size + 1))
    full[top : top + size, left : left + size] = a
    if paper == "white":
        gray = 1.0 - full
    else:  # grey, unevenly lit paper with a bluish ballpoint stroke and sensor noise
        yy, xx = np.mgrid[0:canvas, 0:canvas] / canvas
        light = 0.85 - 0.15 * ((yy - 0.3) ** 2 + (xx - 0.6) ** 2)
        gray = light * (1.0 - 0.75 * full) + rng.normal(0.0, 0.03, full.shape)
    img = np.round(np.clip(gray, 0.0, 1.0) * 255).astype(np.uint8)
    if jpeg is not None:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=jpeg)
        img = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
    return img


VARIANTS = {
    "large canvas, off-centre": dict(),
    "+ thick strokes": dict(stroke="thick"),
    "+ thin strokes": dict(stroke="thin"),
    "+ fine-pen strokes": dict(stroke="pen"),
    "+ JPEG quality 25": dict(jpeg=25),
    "+ grey uneven paper, noise": dict(paper="grey"),
    "fine pen + grey paper + JPEG 25": dict(stroke="pen", paper="grey", jpeg=25),
}


def naive(img: np.ndarray) -> np.ndarray:
    """Resize the whole picture to 28x28 and invert it: no cropping, scaling or centring."""
    small = Image.fromarray(img).resize((28, 28), Image.Resampling.LANCZOS)
    return 1.0 - np.asarray(small, dtype=np.float32) / 255.0


# --------------------------------------------------------------------------- running


def accuracy(model, images28: np.ndarray, labels: np.ndarray) -> float:
    probs = to_numpy(model.predict_proba(images28.reshape(len(images28), -1).astype(np.float32)))
    return float((np.argmax(probs, axis=1) == labels).mean())


def get_model(args, data):
    if args.model:
        from anynet import load_model

        return load_model(args.model), f"`{args.model}`"
    from anynet.models import mlp

    model = mlp(
        hidden=(256,), num_classes=len(data.classes), classes=data.classes, backend="numpy", seed=args.seed
    )
    model.info.dataset = data.name
    t = time.perf_counter()
    model.fit(
        data.train.images.reshape(len(data.train.images), -1),
        data.train.labels,
        epochs=args.epochs,
        batch_size=128,
    )
    desc = (
        f"MLP 784-256-{len(data.classes)} (ReLU, Adam), trained here for {args.epochs} epochs "
        f"on the {len(data.train.images):,} {data.name} training images "
        f"({time.perf_counter() - t:.0f} s)"
    )
    return model, desc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a saved anynet model (default: train a quick MLP)")
    p.add_argument(
        "--dataset",
        default="mnist",
        help="test characters from this dataset (e.g. emnist-balanced; default mnist)",
    )
    p.add_argument(
        "--data-dir",
        default=os.environ.get("ANYNET_DATA_DIR"),
        help="directory with the MNIST IDX files (default $ANYNET_DATA_DIR)",
    )
    p.add_argument("--n", type=int, default=1000, help="test digits per variant (default 1000)")
    p.add_argument("--epochs", type=int, default=3, help="epochs for the quick MLP")
    p.add_argument("--canvas", type=int, default=200, help="side of the user-like picture in px")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).with_name("results") / "robustness.md"))
    args = p.parse_args(argv)

    from anynet.data import load

    data = load(args.dataset, data_dir=args.data_dir, download=args.data_dir is None, progress=False)
    model, model_desc = get_model(args, data)
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(len(data.test.images), size=min(args.n, len(data.test.images)), replace=False)
    digits, labels = data.test.images[idx], data.test.labels[idx].astype(np.int64)
    style = imageprep.style_for(model)

    rows = []
    t = time.perf_counter()
    prepared = imageprep.prepare_batch(digits, style=style)
    prep_ms = 1000 * (time.perf_counter() - t) / len(digits)
    other = "mnist" if style != "mnist" else None  # for EMNIST models: what MNIST framing gives

    def other_acc(pictures):
        return accuracy(model, imageprep.prepare_batch(pictures, style=other), labels) if other else None

    rows.append(
        (
            f"untouched {data.name} test images (28x28)",
            accuracy(model, digits / 255.0, labels),
            accuracy(model, prepared, labels),
            other_acc(digits),
        )
    )
    timings = []
    for name, kw in VARIANTS.items():
        vrng = np.random.default_rng([args.seed, len(rows)])
        pictures = [user_like(d, vrng, canvas=args.canvas, **kw) for d in digits]
        t = time.perf_counter()
        prepared = imageprep.prepare_batch(pictures, style=style)
        timings.append(1000 * (time.perf_counter() - t) / len(pictures))
        rows.append(
            (
                name,
                accuracy(model, np.stack([naive(x) for x in pictures]), labels),
                accuracy(model, prepared, labels),
                other_acc(pictures),
            )
        )
        print(f"{name:32s} naive {rows[-1][1]:6.1%}  imageprep {rows[-1][2]:6.1%}", flush=True)

    command = "python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/robustness.py", *(argv if argv is not None else sys.argv[1:])]
    )
    lines = [
        "# Robustness of recognition to how the picture was made",
        "",
        f"Command: `{command}`",
        "",
        f"Model: {model_desc}. {len(digits)} {data.name} test images (random, seed {args.seed}) per row; "
        f"each user-like picture is dark ink on light paper, {args.canvas}x{args.canvas} px, the "
        f"digit enlarged to {args.canvas * 2 // 5}-{args.canvas * 4 // 5} px and placed at a random "
        "spot (see `user_like` in the script).",
        "",
        "- naive: the whole picture resized to 28x28 and inverted",
        f"- imageprep: `anynet.imageprep.prepare(..., style={style!r})` (invert if needed, remove "
        "paper and noise, crop, widen fine strokes, "
        + (
            "longer side to 20 px, centre of mass to (14, 14))"
            if style == "mnist"
            else "longer side to 24 px, box centred: EMNIST framing)"
        ),
        *(["- imageprep, MNIST framing: `style='mnist'`, the wrong framing for this model"] if other else []),
        "",
        "| input | naive | imageprep |" + (" imageprep, MNIST framing |" if other else ""),
        "|---|---:|---:|" + ("---:|" if other else ""),
        *(f"| {name} | {a:.1%} | {b:.1%} |" + (f" {c:.1%} |" if other else "") for name, a, b, c in rows),
        "",
        f"imageprep time: {prep_ms:.2f} ms per 28x28 digit, {np.mean(timings):.2f} ms per "
        f"{args.canvas}x{args.canvas} picture (one CPU core, NumPy + Pillow).",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
