"""``anynet predict``: the most likely characters for image files or dataset samples."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..network import Network, load_model
from ..predict import class_names, predict_files, show_image, top_k
from . import common
from .common import _command, _model_options, _positive_int, _say, _split
from .threads import _threads_option


def add(sub) -> None:
    """``anynet predict``."""
    p = _command(
        sub,
        "predict",
        run,
        "top-3 characters for image files or dataset samples",
        "Print the most likely characters, with probabilities, for each "
        "image (any size or colour: it is prepared MNIST-style first), or "
        "for the first N samples of a dataset split.",
        check=_images_or_dataset,
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    _model_options(p)
    _threads_option(p)
    p.add_argument("--dataset", "-d", default=None, help="predict samples of this dataset instead of files")
    p.add_argument("--split", default="test", choices=["test", "train"], help="split, with --dataset")
    p.add_argument("--limit", type=_positive_int, default=10, metavar="N", help="samples, with --dataset")
    p.add_argument("--top", "-k", type=_positive_int, default=3, help="how many guesses to show")
    p.add_argument(
        "--show",
        metavar="DIR",
        default=None,
        help="write a PNG per input showing the 28x28 image the network saw",
    )


def _images_or_dataset(args: argparse.Namespace) -> None:
    """A usage error unless exactly one of image files and ``--dataset`` is given."""
    if bool(args.images) == bool(args.dataset):
        args.parser.error("give image files or --dataset NAME (one of the two)")


def run(args: argparse.Namespace) -> int:
    path = common._model_path(args.model, "predict")
    model = load_model(path, backend=args.backend)
    if args.images:
        return _predict_files(model, args)
    return _predict_dataset(model, args)


def _format_top(top) -> str:
    return "   ".join(f"{c} {p:6.1%}" for c, p in top)


def _predict_files(model: Network, args: argparse.Namespace) -> int:
    results = predict_files(model, args.images, k=args.top, show_dir=args.show)
    width = max(len(r.path) for r in results)
    failed = 0
    for r in results:
        if r.error:
            failed += 1
            _say(f"anynet: error: {r.path}: {r.error}", file=sys.stderr)
        else:
            _say(f"{r.path:<{width}}  {_format_top(r.top)}")
    if args.show:
        _say(f"what the network saw: {Path(args.show)}{os.sep}")
    return 1 if failed else 0


def _predict_dataset(model: Network, args: argparse.Namespace) -> int:
    dataset = common._load_dataset(args.dataset, args.data_dir, True)
    split = _split(dataset, args.split)
    n = min(args.limit, len(split))
    images, labels = split.images[:n], split.labels[:n]
    if model.num_outputs != dataset.num_classes:
        raise ValueError(
            f"the model has {model.num_outputs} outputs but dataset {dataset.name!r} "
            f"has {dataset.num_classes} classes"
        )
    names = class_names(model)
    tops = top_k(model, images, k=args.top)
    right = 0
    for i, (label, top) in enumerate(zip(labels, tops)):
        truth = names[label]
        ok = top[0][0] == truth
        right += ok
        _say(f"#{i:<5d} true {truth}  {'ok   ' if ok else 'WRONG'}  {_format_top(top)}")
        if args.show:
            out = Path(args.show)
            out.mkdir(parents=True, exist_ok=True)
            show_image(images[i], images[i], f"true {truth}, read {top[0][0]} {top[0][1]:.1%}").save(
                out / f"{dataset.name}-{args.split}-{i:05d}.png"
            )
    _say(f"{right} of {n} correct ({right / n:.1%})")
    return 0
