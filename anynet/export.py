"""ONNX export by tracing: the network's own inference forward, run on ndonnx arrays.

ndonnx is an Array API library whose arrays are symbolic ONNX values, so the layers written
once against the standard trace themselves: :func:`export_onnx` builds a twin of the network on
the ndonnx backend, feeds it a symbolic input with a free batch dimension ``N`` and writes the
graph of its forward pass and output probabilities. Nothing is re-implemented for export:
every layer kind exports (Dense, the activations, Dropout as the identity, Flatten, Conv2D,
the poolings, BatchNorm with its running statistics).

The ONNX model takes ``x``: float ``(N, *input_shape)`` scaled to [0, 1] (as anynet feeds its
layers: a uint8 image divided by 255; a 28x28 MNIST-style image for the ``mlp``/``cnn`` presets,
``(N, 1, 28, 28)`` for a CNN), and gives ``probabilities``: ``(N, classes)``. Its metadata holds
the classes and the anynet version. Needs ``pip install 'anynet[onnx]'`` (ndonnx; onnxruntime to
run the file). See ``docs/deploy.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._version import __version__
from .io.files import write_atomically
from .network import Network

__all__ = ["OPSET", "export_onnx"]

#: the ONNX operator set the exported graphs use (ndonnx's)
OPSET = 21


def export_onnx(net: Network, path: Any) -> Path:
    """Write ``net``'s inference (input ``x``, output ``probabilities``, batch size free) to
    ``path`` as an ONNX model; returns the path. The file is written atomically."""
    model = onnx_model(net)
    path = Path(path)
    write_atomically(path, model.SerializeToString())
    return path


def onnx_model(net: Network) -> Any:
    """The ONNX ``ModelProto`` of ``net``'s inference, traced with ndonnx (checked by ONNX's
    own checker)."""
    try:
        import ndonnx as ndx
        import onnx
    except ImportError as exc:
        raise ImportError(f"ONNX export needs ndonnx and onnx ({exc}): pip install 'anynet[onnx]'") from None
    if not net.built:
        raise ValueError("cannot export a network without weights: fit or build it first")
    assert net.input_shape is not None
    twin = Network.from_config(net.get_config(), backend="ndonnx")
    twin.set_weights(net.get_weights())
    x = ndx.argument(shape=("N", *net.input_shape), dtype=getattr(ndx, net.dtype_name))
    probabilities = twin.loss.probabilities(twin.forward(x))
    model = ndx.build({"x": x}, {"probabilities": probabilities})
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"  # the same free size as x
    model.producer_name, model.producer_version = "anynet", __version__
    _describe(model, net)
    if (opset := model.opset_import[0].version) != OPSET:
        raise RuntimeError(
            f"ndonnx built opset {opset}, anynet exports opset {OPSET}: update anynet.export.OPSET"
        )
    onnx.checker.check_model(model)
    return model


def _describe(model: Any, net: Network) -> None:
    """What a user of the file needs to know, in its metadata."""
    entries = {
        "classes": json.dumps(list(net.classes) if net.classes else None),
        "input": f"x: {net.dtype_name} (N, {', '.join(map(str, net.input_shape or ()))}) in [0, 1]",
        "anynet_version": __version__,
        "loss": net.loss.name,
    }
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
