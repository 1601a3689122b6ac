"""``anynet.train(...)``: the one call that loads a dataset, builds a model, trains it and
reports how well it does. The CLI (``anynet train``), sweeps and the examples are built on it.

    import anynet
    result = anynet.train()                      # a strong MNIST MLP in a few minutes on a CPU
    result.test["accuracy"]                      # about 0.984
    model, history = anynet.train("emnist-standin", epochs=5, augment="standard")
    anynet.train(anynet.TrainConfig(model="cnn", epochs=3))

Its settings are the fields of :class:`~anynet.config.TrainConfig`. Defaults: 15 epochs of the
``"mlp"`` preset (Flatten, Dense 512 ReLU, Dropout 0.2, Dense 256 ReLU, Dropout 0.2, Dense
logits), Adam with cosine decay from ``lr=1e-3``, batches of 128, 10 % of the training split held
out (stratified) for validation, seed 0. The trained model carries its classes and a
:class:`~anynet.record.ModelInfo` in ``model.info``, so a saved file is self-describing.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .backend import get_backend, to_numpy
from .config import TrainConfig
from .data import Augmenter
from .data.sources import RunData, limit_and_split
from .data.sources import resolve as resolve_data
from .distributed.comm import Communicator, fail_fast, rank_zero_first
from .distributed.groups import get_communicator, rank_backend
from .io import anynet_home, save_model
from .losses import SoftmaxCrossEntropy
from .metrics import balanced_accuracy
from .models import MODEL_PRESETS, from_preset
from .network import Network
from .optimizers import Optimizer, get_optimizer
from .record import ModelInfo, Preprocessing, TrainingSummary
from .schedules import get_schedule
from .training.errors import TrainingDivergedError, TrainingInterrupted

__all__ = ["STANDARD_AUGMENT", "ModelNotSavedError", "TrainResult", "train"]

#: ``augment="standard"``: mild distortions that keep characters readable (MNIST with the
#: ``"mlp"`` preset, 15 epochs: 98.5 % -> 99.0 % test).
STANDARD_AUGMENT = {
    "rotation": 10.0,
    "scale": 0.1,
    "translation": 1.5,
    "elastic_alpha": 20.0,
    "elastic_sigma": 4.0,
}


@dataclass
class TrainResult:
    """What :func:`train` returns. Unpacks as ``model, history = anynet.train(...)``.

    Attributes:
        model: the trained :class:`~anynet.network.Network` (classes and info filled in).
        history: per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``time``.
        test: ``loss``, ``accuracy`` and ``balanced_accuracy`` on the test split (``None``
            when there is no test split).
        dataset: the dataset's name.
        classes: the character of each class index.
        seconds: wall time of the training loop.
        path: where the model was saved (``None`` when ``save`` was not given).
        test_labels, test_predictions: host int64 arrays, for reports and plots.
        rank, world_size: this process's rank and the number of ranks (``distributed=``;
            only rank 0 prints, saves and should report).
    """

    model: Network
    history: dict
    test: dict | None
    dataset: str
    classes: tuple
    seconds: float
    path: Path | None = None
    test_labels: np.ndarray | None = field(default=None, repr=False)
    test_predictions: np.ndarray | None = field(default=None, repr=False)
    rank: int = 0
    world_size: int = 1

    def __iter__(self):
        yield self.model
        yield self.history

    def summary(self) -> str:
        """A few lines for people: data, model, time, validation and test accuracy."""
        t = self.model.info.training or TrainingSummary()
        lines = [
            f"dataset    {self.dataset}: {t.train_samples} train, {t.validation_samples} validation, "
            f"{t.test_samples} test, {len(self.classes)} classes",
            f"model      {t.model}: {self.model.count_parameters():,} parameters on {self.model.backend.spec}",
            f"training   {_plural(len(self.history.get('loss', [])), 'epoch')} in {self.seconds:.1f} s "
            f"({t.optimizer}, lr {t.lr}, {t.schedule} schedule, batch {t.batch_size}, "
            f"augment {t.augment or 'none'})",
        ]
        if self.history.get("val_accuracy"):
            lines.append(
                f"validation accuracy {self.history['val_accuracy'][-1]:.2%} "
                f"(best {max(self.history['val_accuracy']):.2%})"
            )
        if self.test is not None:
            lines.append(
                f"test accuracy       {self.test['accuracy']:.2%} "
                f"(balanced {self.test['balanced_accuracy']:.2%}, loss {self.test['loss']:.4f})"
            )
        if self.path is not None:
            lines.append(f"saved to   {self.path}")
        return "\n".join(lines)


class ModelNotSavedError(OSError):
    """The trained model could not be written where asked. ``result`` is the
    :class:`TrainResult`; ``saved_to`` where the model was kept instead (``None``: nowhere)."""

    def __init__(self, message: str, result: TrainResult, saved_to: Path | None):
        super().__init__(message)
        self.result, self.saved_to = result, saved_to


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---------------------------------------------------------------------- the run


def train(config: Any = None, /, **settings: Any) -> TrainResult:
    """Train a model on a dataset and evaluate it on the test split.

    ``train(config)`` takes a :class:`~anynet.config.TrainConfig`; ``train(**settings)`` its
    fields (see ``TrainConfig`` for each one's meaning and default); ``train(config, **settings)``
    the config with those changed. A first argument that is not a ``TrainConfig`` is the
    dataset: ``train("emnist-standin", epochs=5)``. The model is saved to ``save`` (never when
    training diverged: :class:`~anynet.training.TrainingDivergedError`).

    Returns:
        A :class:`TrainResult`; ``model, history = train(...)`` unpacks it.
    """
    config = _config(config, settings)
    comm = get_communicator(config.distributed)
    with fail_fast(comm, passthrough=(TrainingDivergedError, TrainingInterrupted)):
        if comm is not None and not comm.is_main:
            config = config.replace(verbose=0, save=None)  # rank 0 alone prints and writes files
        plan = _plan(config, comm)
        start = time.perf_counter()
        history = plan.net.fit(
            plan.data.x_train,
            plan.data.y_train,
            epochs=plan.epochs,
            batch_size=config.batch_size,
            validation_data=plan.data.validation,
            augment=plan.augment,
            verbose=config.verbose,
            callbacks=list(config.callbacks),
            seed=config.seed + 1,
            checkpoint_dir=config.checkpoint_dir,
            resume=config.resume,
            class_weight=config.class_weight,
            distributed=comm,
            compile=config.compile,
            settings=_pinned(plan, config),
        )
    return _finish(plan, history, time.perf_counter() - start, config, comm)


def _config(config: Any, settings: dict[str, Any]) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config.replace(**settings).check() if settings else config.check()
    if config is not None:
        if "dataset" in settings:
            raise TypeError("train() got the dataset twice: as the first argument and as dataset=")
        settings = {"dataset": config, **settings}
    return TrainConfig().replace(**settings).check()


@dataclass
class _Plan:
    """What a run is made of, once its settings are resolved."""

    data: RunData
    net: Network
    model_name: str
    epochs: int
    augment: Any
    augment_name: str | None

    @property
    def validation_samples(self) -> int:
        return 0 if self.data.validation is None else len(self.data.validation[1])


def _plan(config: TrainConfig, comm: Communicator | None) -> _Plan:
    """Resolve the settings (bad values fail before any data is loaded), load and split the
    data, and build the model."""
    model = config.model
    backend = config.backend
    if not isinstance(model, Network):
        backend = get_backend(rank_backend(backend, comm))
    lr, epochs = _preset_defaults(config)
    loss = SoftmaxCrossEntropy(config.label_smoothing)
    optimizer = _make_optimizer(config.optimizer, lr, config.schedule, config.weight_decay, config.clip_norm)
    augment, augment_name = _make_augment(config.augment)
    with rank_zero_first(comm):  # one download, not one per rank
        data = resolve_data(config.dataset, config.data_dir, progress=bool(config.verbose))
    limit_and_split(data, config.limit, config.validation, config.seed)
    net, model_name = _build_model(config.replace(backend=backend, lr=lr), data, optimizer, loss)
    plan = _Plan(data, net, model_name, epochs, augment, augment_name)
    _record(plan, config, 0.0, None)  # so that checkpoints and ModelCheckpoint files describe themselves
    if config.verbose:
        _announce(plan, comm)
    return plan


def _pinned(plan: _Plan, config: TrainConfig) -> dict:
    """What ``train`` adds to the settings a checkpoint pins: what decided the data split."""
    validation = config.validation
    if isinstance(validation, (tuple, list)):
        validation = f"{len(validation[1])} given samples"
    return {
        "dataset": plan.data.name,
        "limit": config.limit,
        "validation": validation,
        "seed": config.seed,
        "model": plan.model_name,
        "augment": plan.augment_name,
    }


def _announce(plan: _Plan, comm: Communicator | None) -> None:
    ranks = f", {comm.size} ranks ({comm.name})" if comm is not None else ""
    print(
        f"training {plan.model_name} on {plan.data.name} ({len(plan.data.y_train)} train, "
        f"{plan.validation_samples} validation) with {plan.net.backend.spec}, "
        f"{_plural(plan.epochs, 'epoch')}{ranks}",
        flush=True,
    )


# ---------------------------------------------------------------------- model and optimizer


def _preset(model: str) -> dict[str, Any]:
    try:
        return MODEL_PRESETS[model]
    except KeyError:
        raise ValueError(
            f"unknown model {model!r}; choose one of {', '.join(MODEL_PRESETS)} or pass an anynet.Network"
        ) from None


def _preset_defaults(config: TrainConfig) -> tuple[float | None, int]:
    """The learning rate and epochs a preset suggests, where the caller gave none."""
    preset = _preset(config.model) if isinstance(config.model, str) else {}
    lr = config.lr
    if lr is None and "lr" in preset and str(config.optimizer).lower() in ("adam", "adamw"):
        lr = preset["lr"]
    return lr, int(preset.get("epochs", 10) if config.epochs is None else config.epochs)


def _make_optimizer(optimizer: Any, lr: Any, schedule: Any, weight_decay: Any, clip_norm: Any) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        if lr is not None or weight_decay or clip_norm is not None:
            raise ValueError(
                "lr / weight_decay / clip_norm apply to an optimizer given by name; "
                "set them on the optimizer object instead"
            )
        return optimizer
    kwargs: dict[str, Any] = {"schedule": get_schedule(schedule), "clip_norm": clip_norm}
    if lr is not None:
        kwargs["lr"] = float(lr)
    name = str(optimizer).lower()
    if name == "sgd":
        kwargs.setdefault("lr", 0.05)
        kwargs["momentum"] = 0.9
        kwargs["nesterov"] = True
    if weight_decay:
        kwargs["weight_decay"] = float(weight_decay)
    return get_optimizer(name, **kwargs)


def _make_augment(augment: Any) -> tuple[Any, str | None]:
    if augment is None or augment is False:
        return None, None
    if isinstance(augment, str):
        if augment.lower() in ("none", "off", ""):
            return None, None
        if augment.lower() != "standard":
            raise ValueError(f"unknown augmentation {augment!r}; use None, 'standard' or an Augmenter")
        return Augmenter(**STANDARD_AUGMENT), "standard"
    if not callable(augment):
        raise TypeError(
            f"augment must be None, 'standard' or a callable (x, rng) -> x, got {type(augment).__name__}"
        )
    return augment, repr(augment)


def _build_model(config: TrainConfig, data: RunData, optimizer: Optimizer, loss: Any) -> tuple[Network, str]:
    """The network to train (a preset built here, or the Network given) and its name."""
    model = config.model
    if isinstance(model, Network):
        if config.hidden is not None or config.dropout is not None or config.label_smoothing:
            raise ValueError(
                "hidden / dropout / label_smoothing describe a named model; the Network given is already built "
                "(give it SoftmaxCrossEntropy(label_smoothing=...) as its loss instead)"
            )
        if model.classes is None and (not model.built or model.num_outputs == len(data.classes)):
            model.classes = data.classes
        default = TrainConfig()
        chosen = (config.optimizer, config.lr, config.weight_decay, config.clip_norm)
        if chosen != (default.optimizer, None, default.weight_decay, default.clip_norm):
            model.use_optimizer(optimizer)
        return model, "custom"
    if not isinstance(model, str):
        raise TypeError(f"model must be a preset name or a Network, got {type(model).__name__}")
    _preset(model)  # a clear error for an unknown name
    net = from_preset(
        model,
        len(data.classes),
        hidden=config.hidden,
        dropout=config.dropout,
        activation=config.activation,
        optimizer=optimizer,
        loss=loss,
        backend=config.backend,
        dtype=config.dtype,
        seed=config.seed,
        classes=data.classes,
    )
    return net, model


# ---------------------------------------------------------------------- the end of a run


def _finish(plan: _Plan, history: dict, seconds: float, config: TrainConfig, comm) -> TrainResult:
    """Score the test split, fill the model record, save, and say how it went."""
    test, y_true, y_pred = _test_scores(plan)
    _record(plan, config, seconds, (test, y_true))
    ranks = (0, 1) if comm is None else (comm.rank, comm.size)
    data = plan.data
    result = TrainResult(
        plan.net, history, test, data.name, data.classes, seconds, None, y_true, y_pred, *ranks
    )
    if config.save is not None:
        result.path = _save_final(result, Path(config.save), config.checkpoint_dir)
    if config.verbose and test is not None:
        print(
            f"test accuracy {test['accuracy']:.2%} (balanced {test['balanced_accuracy']:.2%}) "
            f"after {seconds:.1f} s",
            flush=True,
        )
    return result


def _test_scores(plan: _Plan) -> tuple[dict | None, np.ndarray | None, np.ndarray | None]:
    """Loss, accuracy and balanced accuracy on the test split, and the labels and predictions."""
    net, data = plan.net, plan.data
    if data.x_test is None:
        return None, None, None
    y_pred = to_numpy(net.predict(data.x_test)).astype(np.int64)
    y_true = np.asarray(data.y_test, dtype=np.int64)
    test = {
        **net.evaluate(data.x_test, data.y_test),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred, len(data.classes)),
    }
    return test, y_true, y_pred


def _record(plan: _Plan, config: TrainConfig, seconds: float, tested: tuple | None) -> None:
    """Fill ``net.info`` with what the model is for and how it was made (``tested``: the test
    scores and labels, once there are)."""
    net, data = plan.net, plan.data
    test, y_true = tested or (None, None)
    opt, history = net.optimizer, net.history
    summary = TrainingSummary(
        model=plan.model_name,
        epochs=len(history.get("loss", [])),
        batch_size=config.batch_size,
        optimizer=type(opt).__name__,
        lr=opt.base_lr,
        schedule=opt.schedule_name,
        weight_decay=opt.weight_decay,
        augment=plan.augment_name,
        seed=config.seed,
        backend=net.backend.spec,
        seconds=round(seconds, 2),
        train_samples=len(data.y_train),
        validation_samples=plan.validation_samples,
        test_samples=0 if y_true is None else len(y_true),
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds") if seconds else "",
    )
    metrics = {f"test_{k}": v for k, v in (test or {}).items()}
    if history.get("val_accuracy"):
        metrics["val_accuracy"] = history["val_accuracy"][-1]
    net.info = ModelInfo(
        dataset=data.name,
        preprocessing=Preprocessing.for_dataset(data.name),
        training=summary,
        history={k: [float(v) for v in vs] for k, vs in history.items()},
        metrics=metrics,
    )


def _save_final(result: TrainResult, path: Path, checkpoint_dir: Any) -> Path:
    """Save the trained model to ``path``; when that fails (a full disk), keep it in the
    checkpoint folder, the model home or the temporary folder, and say where."""
    try:
        return save_model(result.model, path)
    except OSError as exc:
        failure = exc
    spares = [Path(checkpoint_dir)] if checkpoint_dir is not None else []
    spares += [anynet_home() / "models", Path(tempfile.gettempdir())]
    for folder in spares:
        spare = folder / f"unsaved-{path.name}"
        if spare.resolve() == path.resolve():
            continue
        try:
            save_model(result.model, spare)
        except OSError:
            continue
        raise ModelNotSavedError(
            f"could not save the trained model: {failure}; it was saved to {spare} instead", result, spare
        ) from failure
    raise ModelNotSavedError(
        f"could not save the trained model: {failure}; nor in {', '.join(map(str, spares))}: "
        "free some space and train again",
        result,
        None,
    ) from failure
