"""Draw every figure of the documentation from real runs (the drawing-page screenshot excepted:
tests/test_browser.py takes it).

    OPENBLAS_NUM_THREADS=1 python docs/make_figures.py --data-dir /work/shared/data   # ~2 min

A small CNN, ``anynet.models.cnn((8, 16), dense=64)``, is trained for 12 epochs (about a minute) on 10,000 MNIST
images (seed 0, NumPy); its learning curves, confusion matrix, misclassified test images,
first-layer filters and feature maps go to ``docs/figures/``, and the augmentation grid to
``docs/augmentation.png`` (``examples/augment_grid.py``).
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

import anynet
from anynet import plots
from anynet.data import load

DOCS = Path(__file__).resolve().parent


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ (default: $ANYNET_DATA_DIR)")
    p.add_argument("--epochs", type=int, default=12)
    args = p.parse_args(argv)
    out = DOCS / "figures"
    data = load("mnist", data_dir=args.data_dir, progress=False)
    model = anynet.models.cnn((8, 16), dense=64, backend="numpy")
    result = anynet.train(
        data, model=model, epochs=args.epochs, limit=10_000, verbose=2, seed=0
    )
    print(result.summary())
    plots.save_report_plots(
        out, result.history, result.test_labels, result.test_predictions, data.test.images, result.classes
    )
    plots.plot_filters(result.model, out / "filters.png")
    first_seven = int((data.test.labels == 7).argmax())
    plots.plot_feature_maps(result.model, data.test.images[first_seven], out / "feature-maps.png")
    grid = runpy.run_path(str(DOCS.parent / "examples" / "augment_grid.py"))
    grid["main"](
        ["--out", str(DOCS / "augmentation.png"), *(["--data-dir", args.data_dir] * bool(args.data_dir))]
    )
    for png in sorted([*out.glob("*.png"), DOCS / "augmentation.png"]):
        print(f"{png.relative_to(DOCS.parent)}: {png.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
