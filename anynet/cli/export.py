"""``anynet export``: a saved model as an ONNX file, for onnxruntime and other ONNX engines."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..export import OPSET, export_onnx
from ..io.files import check_write_target
from ..network import load_model
from .common import _command, _model_path, _require, _say


def add(sub) -> None:
    """``anynet export``."""
    p = _command(
        sub,
        "export",
        run,
        "a saved model as an ONNX file (onnxruntime, ...)",
        "Trace the model's inference with ndonnx and write it as an ONNX file: input x, float "
        "(N, *input shape) in [0, 1]; output probabilities (N, classes); the batch size N is free "
        f"(opset {OPSET}; docs/deploy.md).",
        data=False,
    )
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument(
        "--model", "-m", metavar="FILE", default=None, help="model file (default: the last trained)"
    )


def run(args: argparse.Namespace) -> int:
    for module in ("ndonnx", "onnx"):
        _require(module, "onnx", "anynet export")
    out = Path(args.out).expanduser()
    check_write_target(out)  # before any work: only a regular file (or nothing) is replaced
    path = _model_path(args.model, "export")
    model = load_model(path)
    export_onnx(model, out)
    classes = model.num_outputs
    shape = ", ".join(map(str, model.input_shape or ()))
    _say(f"wrote {out} (ONNX opset {OPSET}) from {path}")
    _say(f"  input  x: {model.dtype_name} (N, {shape}) in [0, 1]")
    _say(f"  output probabilities: {model.dtype_name} (N, {classes})")
    return 0
