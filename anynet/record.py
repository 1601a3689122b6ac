""":class:`ModelInfo`: a typed record of what a model is for and how it was made.

A model file stores it as JSON beside the architecture (``Network.get_config()``) and the
weights. The layout on disk is the one anynet 0.1.0 wrote (format ``anynet-model/1``), so files
from either version load into this record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .data.registry import FRAMING, framing_style

__all__ = ["FORMAT", "ModelInfo", "Preprocessing", "TrainingSummary"]

#: the model-file format this version writes
FORMAT = "anynet-model/1"


@dataclass
class Preprocessing:
    """What a model expects as input."""

    input: str = "28x28 grayscale, white ink on black, upright"
    scale: str = "uint8 pixel / 255 -> [0, 1] (float inputs are used as given)"
    layout: str = "(n, 28, 28) or (n, 784), row-major"
    dataset: str | None = None
    style: str = "mnist"
    framing: str = FRAMING["mnist"]

    @classmethod
    def for_dataset(cls, name: str | None) -> Preprocessing:
        """The preprocessing of a model trained on dataset ``name`` (its framing style)."""
        style = framing_style(name)
        return cls(dataset=name, style=style, framing=FRAMING[style])


@dataclass
class TrainingSummary:
    """How a model was trained (filled in by :func:`anynet.train`)."""

    model: str = "custom"
    epochs: int = 0
    batch_size: int | None = None
    optimizer: str = ""
    lr: float | None = None
    schedule: str = ""
    weight_decay: float = 0.0
    augment: str | None = None
    seed: int | None = None
    backend: str = ""
    seconds: float = 0.0
    train_samples: int = 0
    validation_samples: int = 0
    test_samples: int = 0
    finished: str = ""


@dataclass
class ModelInfo:
    """Everything about a model but its architecture and weights.

    Attributes:
        dataset: the dataset it was trained on (``None`` when unknown).
        preprocessing: what it expects as input, including the framing style.
        training: how it was trained (``None`` for a model not made by ``anynet.train``).
        history: per-epoch ``loss``, ``accuracy``, ``val_*``, ``lr``, ``time``.
        metrics: final figures (``val_accuracy``, ``test_accuracy``, ...).
        anynet_version: the anynet version that wrote the file (``None`` before saving).
        path: the file the model was loaded from (never written to a file).
    """

    dataset: str | None = None
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    training: TrainingSummary | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    anynet_version: str | None = None
    path: str | None = None

    @property
    def style(self) -> str:
        """``"mnist"`` or ``"emnist"``: how the training images were framed."""
        if self.preprocessing.dataset is None and self.dataset is not None:
            return framing_style(self.dataset)
        return self.preprocessing.style

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data, without the local ``path``."""
        data = dataclasses.asdict(self)
        data.pop("path")
        return data

    def to_metadata(self) -> dict[str, Any]:
        """The ``preprocessing`` and ``info`` entries of a model file's metadata."""
        info = {
            "dataset": self.dataset,
            "training": _asdict(self.training),
            "history": self.history,
            "metrics": self.metrics,
        }
        return {"preprocessing": dataclasses.asdict(self.preprocessing), "info": info}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], path: str | None = None) -> ModelInfo:
        """The record stored in a model file's metadata (written by any anynet version)."""
        info = meta.get("info") or {}
        training = info.get("training")
        return cls(
            dataset=info.get("dataset"),
            preprocessing=_known(Preprocessing, meta.get("preprocessing") or {}),
            training=None if not training else _known(TrainingSummary, training),
            history={k: [float(v) for v in vs] for k, vs in (info.get("history") or {}).items()},
            metrics={k: float(v) for k, v in (info.get("metrics") or {}).items()},
            anynet_version=meta.get("anynet_version"),
            path=path,
        )


def _asdict(record: Any) -> dict[str, Any] | None:
    return None if record is None else dataclasses.asdict(record)


def _known(cls: Any, data: dict[str, Any]) -> Any:
    """``cls(**data)`` with the keys ``cls`` does not know dropped (newer or older writers)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
