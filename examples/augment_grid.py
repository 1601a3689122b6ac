"""Look at the data augmentation: a PNG of original samples next to augmented copies.

    python examples/augment_grid.py                       # -> runs/augmentation.png
    python examples/augment_grid.py --out docs/augmentation.png --backend torch

Rows come in groups: one row of originals, then ``--copies`` rows of the same images
augmented with different random draws. MNIST first, then the EMNIST-47 stand-in (when its
files are available). Data is found as described in anynet.data.fetch (``--data-dir`` or
$ANYNET_DATA_DIR, else the download cache).
"""

from __future__ import annotations

import argparse

import numpy as np

from anynet.backend import get_backend
from anynet.data import Augmenter, DataError, load, save_grid, to_device


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/augmentation.png")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--backend", default="numpy")
    p.add_argument("--per-row", type=int, default=12, help="images per row")
    p.add_argument("--copies", type=int, default=2, help="augmented rows per original row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rotation", type=float, default=12.0)
    p.add_argument("--scale", type=float, default=0.1)
    p.add_argument("--translation", type=float, default=2.0)
    p.add_argument("--elastic-alpha", type=float, default=34.0)
    p.add_argument("--elastic-sigma", type=float, default=4.0)
    args = p.parse_args(argv)

    backend = get_backend(args.backend)
    aug = Augmenter(
        rotation=args.rotation,
        scale=args.scale,
        translation=args.translation,
        elastic_alpha=args.elastic_alpha,
        elastic_sigma=args.elastic_sigma,
    )
    rng = backend.random(args.seed)
    pick = np.random.default_rng(args.seed)
    rows, captions = [], []
    for name in ("mnist", "emnist-standin"):
        try:
            ds = load(name, data_dir=args.data_dir)
        except DataError as exc:
            print(f"skipping {name}: {str(exc).splitlines()[0]}")
            continue
        idx = pick.choice(len(ds.test), args.per_row, replace=False)
        x = to_device(ds.test.images[idx], backend)  # (n, 784) floats on the device
        text = [ds.classes[k] for k in ds.test.labels[idx]]
        rows.append(backend.to_host(x))
        captions += text
        for _ in range(args.copies):
            rows.append(backend.to_host(aug(x, rng)))
            captions += ["aug " + t for t in text]
    if not rows:
        raise SystemExit("no dataset could be loaded; see the messages above")
    path = save_grid(np.concatenate(rows), args.out, labels=captions, ncols=args.per_row)
    print(f"wrote {path} ({aug})")


if __name__ == "__main__":
    main()
