"""The architecture a model file declares, checked without allocating it.

Before anything is built, :func:`check_architecture` checks a file's ``config``: known layer
kinds (``anynet.layers.LAYERS``), each layer's config against its class's constructor
(parameter names and annotated types, finite numbers), per-sample shapes of at most
:data:`MAX_FEATURES` values, at most :data:`MAX_LAYERS` layers and :data:`MAX_PARAMETERS`
parameters in all, counted from the shapes each layer declares (``param_shapes`` and
``buffer_shapes``: nothing is allocated). It returns the tensors such a network holds, with their
shapes, so that the file's tensors can be matched against them before any is read.
"""

from __future__ import annotations

import inspect
import math
import operator
import typing
from collections.abc import Callable
from typing import Any

from ..layers import LAYERS
from ..losses import get_loss
from .untrusted import finite, hint_name, matches, short

__all__ = ["MAX_FEATURES", "MAX_LAYERS", "MAX_PARAMETERS", "check_architecture"]

#: the most parameters a model file may declare
MAX_PARAMETERS = 100_000_000
#: the most values per sample at any layer's input or output
MAX_FEATURES = 2**24
#: the most layers a model file may have
MAX_LAYERS = 1_000

Fail = Callable[[str], Exception]


def check_architecture(config: dict, fail: Fail) -> dict[str, tuple[int, ...]]:
    """Check the declared architecture without allocating it (``fail(why)`` makes the error to
    raise); returns ``{"layers.<i>.<name>": shape}`` for every parameter and buffer."""
    layers = config.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise fail(f"'layers' should be a list of 1 to {MAX_LAYERS} layers, got {short(layers)}")
    _check_settings(config, fail)
    shape = _check_shape(config.get("input_shape"), "input_shape", fail)
    tensors: dict[str, tuple[int, ...]] = {}
    for i, entry in enumerate(layers):
        layer = _layer(i, entry, fail)
        name = f"layer {i} ({type(layer).__name__})"
        try:
            layer.input_shape = shape
            out = tuple(operator.index(d) for d in layer.output_shape(shape))
        except Exception as exc:
            raise fail(f"{name} cannot take inputs of shape {shape}: {exc}") from None
        out = _check_shape(out, f"{name} output", fail)
        budget = MAX_PARAMETERS - sum(math.prod(s) for s in tensors.values())
        for param, param_shape in _parameter_shapes(layer, shape, budget, name, fail).items():
            tensors[f"layers.{i}.{param}"] = param_shape
        shape = out
    if len(shape) != 1:
        raise fail(f"the last layer must give flat outputs (classes), got per-sample shape {shape}")
    classes = config.get("classes")
    if classes is not None and len(classes) != shape[0]:
        raise fail(f"{len(classes)} class names for a network with {shape[0]} outputs")
    return tensors


def _check_settings(config: dict, fail: Fail) -> None:
    checks = (
        ("loss", str),
        ("loss_options", dict[str, float]),
        ("classes", list[str] | None),
        ("dtype", typing.Literal["float32", "float64"]),
        ("seed", int),
    )
    for key, hint in checks:
        if key in config and not matches(config[key], hint):
            raise fail(f"{key!r} should be {hint_name(hint)}, got {short(config[key])}")
    if not 0 <= config.get("seed", 0) < 2**64:
        raise fail(f"'seed' should be in [0, 2**64), got {short(config['seed'])}")
    try:
        get_loss(config.get("loss", ""), config.get("loss_options"))
    except ValueError as exc:
        raise fail(str(exc)) from None


def _check_shape(shape, what: str, fail) -> tuple[int, ...]:
    """A per-sample shape: 1 to 8 positive integers, at most MAX_FEATURES values in all."""
    shape = list(shape) if isinstance(shape, tuple) else shape
    if not matches(shape, list[int]) or not 1 <= len(shape) <= 8 or min(shape) < 1:
        raise fail(f"{what} should be 1 to 8 positive integers, got {short(shape)}")
    if math.prod(shape) > MAX_FEATURES:
        raise fail(
            f"{what} {short(list(shape))} has {math.prod(shape):,} values per sample, "
            f"above the limit of {MAX_FEATURES:,} (anynet.io.MAX_FEATURES)"
        )
    return tuple(shape)


def _layer(i: int, entry, fail):
    """A layer from ``{"type", "config"}``, its config checked against its class's constructor."""
    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("type"), str)
        and isinstance(entry.get("config", {}), dict)
    ):
        raise fail(f"layer {i} should be {{'type': name, 'config': {{...}}}}, got {short(entry)}")
    kind, config = entry["type"], entry.get("config", {})
    cls = LAYERS.get(kind)
    if cls is None:
        raise fail(f"layer {i}: unknown layer type {short(kind)}; known: {', '.join(sorted(LAYERS))}")
    signature = inspect.signature(cls)
    try:
        signature.bind(**config)
    except TypeError as exc:
        raise fail(
            f"layer {i} ({kind}): config {short(config)} does not fit {kind}{signature}: {exc}"
        ) from None
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:
        hints = {}
    for key, value in config.items():
        if key in hints and not matches(value, hints[key]):
            raise fail(f"layer {i} ({kind}): {key}={short(value)} should be {hint_name(hints[key])}")
        if not finite(value):
            raise fail(f"layer {i} ({kind}): {key}={short(value)} is not finite")
    try:
        return cls(**config)
    except Exception as exc:
        raise fail(f"layer {i} ({kind}): {exc}") from None


def _parameter_shapes(
    layer: Any, shape: tuple, budget: int, name: str, fail: Fail
) -> dict[str, tuple[int, ...]]:
    """The parameters and buffers ``layer`` declares for inputs of ``shape``
    (``param_shapes``, ``buffer_shapes``: nothing is allocated), within ``budget`` values."""
    try:
        shapes = {**layer.param_shapes(shape), **layer.buffer_shapes(shape)}
        shapes = {k: tuple(operator.index(d) for d in s) for k, s in shapes.items()}
    except Exception as exc:
        raise fail(f"{name} cannot make its parameters for inputs of shape {shape}: {exc}") from None
    if sum(math.prod(s) for s in shapes.values()) > budget:
        raise fail(f"more than {MAX_PARAMETERS:,} parameters (at {name}; anynet.io.MAX_PARAMETERS)")
    return shapes
