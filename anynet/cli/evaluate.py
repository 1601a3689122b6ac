"""``anynet evaluate``: accuracy, per-class table and most confused pairs of a saved model."""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..backend import to_numpy
from ..network import load_model
from . import common
from .common import _command, _model_options, _positive_int, _report, _require, _say, _split, _write_plots
from .threads import _threads_option


def add(sub) -> None:
    """``anynet evaluate``."""
    p = _command(
        sub,
        "evaluate",
        run,
        "accuracy and per-class report of a saved model",
        "Evaluate a saved model on a dataset split: accuracy, balanced "
        "accuracy, per-class table and most confused pairs.",
    )
    _model_options(p)
    _threads_option(p)
    p.add_argument(
        "--dataset", "-d", default=None, help="dataset (default: the one the model was trained on)"
    )
    p.add_argument("--split", default="test", choices=["test", "train"], help="which split")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="only the first N images")
    p.add_argument(
        "--plots", metavar="DIR", default=None, help="write confusion.png and misclassified.png into DIR"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no download progress bar")


def run(args: argparse.Namespace) -> int:
    if args.plots:
        _require("matplotlib", "plots", "--plots")
    path = common._model_path(args.model, "evaluate")
    model = load_model(path, backend=args.backend)
    dataset = common._load_dataset(args.dataset or model.info.dataset or "mnist", args.data_dir, args.quiet)
    split = _split(dataset, args.split)
    images, labels = split.images[: args.limit], split.labels[: args.limit]
    classes = tuple(model.classes) if model.classes else tuple(dataset.classes)
    if model.num_outputs != dataset.num_classes:
        raise ValueError(
            f"{path} has {model.num_outputs} outputs but dataset {dataset.name!r} has "
            f"{dataset.num_classes} classes; pass the dataset it was trained on (--dataset)"
        )
    start = time.perf_counter()
    probs = np.asarray(to_numpy(model.predict_proba(images)), dtype=np.float64)
    scores = model.evaluate(images, labels)
    seconds = time.perf_counter() - start
    y_pred = probs.argmax(axis=1)
    _say(f"model    {path}")
    _say(
        f"data     {dataset.name} {args.split} split: {len(labels)} images, {len(classes)} classes "
        f"({seconds:.2f} s on {model.backend.spec})"
    )
    _say(f"loss     {scores['loss']:.4f} ({model.loss.name})")
    _say(_report(labels, y_pred, classes))
    if args.plots:
        _write_plots(args.plots, model.info.history, labels, y_pred, images, classes, probs)
    return 0
