"""``anynet.train(...)``: the one call that loads a dataset, builds a model, trains it and
reports how well it does. The CLI (``anynet train``) and the examples are built on it.

    import anynet
    result = anynet.train()                      # a strong MNIST MLP in a few minutes on a CPU
    result.test["accuracy"]                      # about 0.984
    model, history = anynet.train("emnist-standin", epochs=5, augment="standard")

Defaults: 15 epochs of the ``"mlp"`` preset (Flatten, Dense 512 ReLU, Dropout 0.2, Dense 256
ReLU, Dropout 0.2, Dense logits), Adam with cosine decay from ``lr=1e-3``, batches of 128, 10 %
of the training split held out (stratified) for validation, seed 0. The trained model carries
its classes and a :class:`~anynet.record.ModelInfo` in ``model.info``, so a saved file is
self-describing.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import get_backend, to_numpy
from ..distributed.comm import fail_fast, get_communicator, rank_backend, rank_zero_first
from ..losses import SoftmaxCrossEntropy
from ..models import MODEL_PRESETS, from_preset
from ..network import Network
from ..optimizers import Optimizer, get_optimizer
from ..record import ModelInfo, Preprocessing, TrainingSummary
from ..schedules import get_schedule
from .loop import TrainingDivergedError, TrainingInterrupted

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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class _Data:
    name: str
    classes: tuple
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    x_val: Any = None
    y_val: Any = None


def _resolve_data(dataset, data_dir, progress: bool) -> _Data:
    if isinstance(dataset, str):
        from ..data import load

        dataset = load(dataset, data_dir=data_dir, progress=progress)
    if hasattr(dataset, "train") and hasattr(dataset, "classes"):
        test = getattr(dataset, "test", None)
        return _Data(
            getattr(dataset, "name", "dataset"),
            tuple(str(c) for c in dataset.classes),
            dataset.train.images,
            dataset.train.labels,
            None if test is None else test.images,
            None if test is None else test.labels,
        )
    if isinstance(dataset, (tuple, list)) and len(dataset) in (2, 4):
        x_train, y_train = np.asarray(to_numpy(dataset[0])), np.asarray(to_numpy(dataset[1]))
        x_test = y_test = None
        if len(dataset) == 4 and dataset[2] is not None:
            x_test, y_test = np.asarray(to_numpy(dataset[2])), np.asarray(to_numpy(dataset[3]))
        if y_train.ndim != 1:
            raise ValueError(f"y_train must be 1-D class indices, got shape {y_train.shape}")
        k = int(max(y_train.max(), -1 if y_test is None else y_test.max())) + 1
        return _Data("arrays", tuple(str(i) for i in range(k)), x_train, y_train, x_test, y_test)
    raise TypeError(
        "dataset must be a name such as 'mnist', an anynet.data.Dataset, or arrays "
        f"(x_train, y_train[, x_test, y_test]); got {type(dataset).__name__}"
    )


def _limit_and_split(data: _Data, limit: int | None, validation, seed: int) -> None:
    """Keep a stratified subset of ``limit`` training samples, then hold out the validation
    part (a fraction, or given arrays)."""
    from ..data import stratified_split

    if limit is not None:
        if int(limit) < 1:
            raise ValueError(f"limit must be a positive number of samples, got {limit}")
        if int(limit) < len(data.y_train):
            keep = stratified_split(data.y_train, int(limit) / len(data.y_train), seed)[1]
            if len(keep) > int(limit):  # fewer samples than classes: keep a random `limit` of them
                keep = np.sort(np.random.default_rng(seed).choice(keep, int(limit), replace=False))
            data.x_train, data.y_train = data.x_train[keep], data.y_train[keep]
    if isinstance(validation, (tuple, list)):
        data.x_val, data.y_val = validation[0], validation[1]
    elif validation:
        fit_idx, val_idx = stratified_split(data.y_train, float(validation), seed)
        if len(val_idx) and len(fit_idx):  # too few samples to hold any out: no validation
            data.x_val, data.y_val = data.x_train[val_idx], data.y_train[val_idx]
            data.x_train, data.y_train = data.x_train[fit_idx], data.y_train[fit_idx]


def _make_optimizer(optimizer, lr, schedule, weight_decay, clip_norm=None) -> Optimizer:
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


def _make_augment(augment) -> tuple[Callable | None, str | None]:
    if augment is None or augment is False:
        return None, None
    if isinstance(augment, str):
        if augment.lower() in ("none", "off", ""):
            return None, None
        if augment.lower() != "standard":
            raise ValueError(f"unknown augmentation {augment!r}; use None, 'standard' or an Augmenter")
        from ..data.augment import Augmenter

        return Augmenter(**STANDARD_AUGMENT), "standard"
    if not callable(augment):
        raise TypeError(
            f"augment must be None, 'standard' or a callable (x, rng) -> x, got {type(augment).__name__}"
        )
    return augment, repr(augment)


def _preset(model: str) -> dict[str, Any]:
    try:
        return MODEL_PRESETS[model]
    except KeyError:
        raise ValueError(
            f"unknown model {model!r}; choose one of {', '.join(MODEL_PRESETS)} or pass an anynet.Network"
        ) from None


def _build_model(model, data: _Data, settings: dict[str, Any]) -> tuple[Network, str]:
    """The network to train (a preset built here, or the Network given) and its name."""
    opt = settings["opt"]
    if isinstance(model, Network):
        if (
            settings["hidden"] is not None
            or settings["dropout"] is not None
            or settings["loss"].label_smoothing
        ):
            raise ValueError(
                "hidden / dropout / label_smoothing describe a named model; the Network given is already built "
                "(give it SoftmaxCrossEntropy(label_smoothing=...) as its loss instead)"
            )
        if model.classes is None and (not model.built or model.num_outputs == len(data.classes)):
            model.classes = data.classes
        if (
            settings["optimizer"] != "adam"
            or settings["lr"] is not None
            or settings["weight_decay"]
            or settings["clip_norm"] is not None
        ):
            model.use_optimizer(opt)
        return model, "custom"
    if not isinstance(model, str):
        raise TypeError(f"model must be a preset name or a Network, got {type(model).__name__}")
    _preset(model)  # a clear error for an unknown name
    net = from_preset(
        model,
        len(data.classes),
        hidden=settings["hidden"],
        dropout=settings["dropout"],
        activation=settings["activation"],
        optimizer=opt,
        loss=settings["loss"],
        backend=settings["backend"],
        dtype=settings["dtype"],
        seed=settings["seed"],
        classes=data.classes,
    )
    return net, model


def _test_scores(net: Network, data: _Data) -> tuple[dict | None, np.ndarray | None, np.ndarray | None]:
    """Loss, accuracy and balanced accuracy on the test split, and the labels and predictions."""
    if data.x_test is None:
        return None, None, None
    from ..metrics import balanced_accuracy

    y_pred = to_numpy(net.predict(data.x_test)).astype(np.int64)
    y_true = np.asarray(data.y_test, dtype=np.int64)
    test = {
        **net.evaluate(data.x_test, data.y_test),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred, len(data.classes)),
    }
    return test, y_true, y_pred


def _summary(
    net: Network,
    model_name: str,
    batch_size: int,
    aug_name,
    seed: int,
    data: _Data,
    n_val: int,
    seconds: float,
    y_true,
) -> TrainingSummary:
    opt = net.optimizer
    return TrainingSummary(
        model=model_name,
        epochs=len(net.history.get("loss", [])),
        batch_size=batch_size,
        optimizer=type(opt).__name__,
        lr=opt.base_lr,
        schedule=opt.schedule_name,
        weight_decay=opt.weight_decay,
        augment=aug_name,
        seed=seed,
        backend=net.backend.spec,
        seconds=round(seconds, 2),
        train_samples=len(data.y_train),
        validation_samples=n_val,
        test_samples=0 if y_true is None else len(y_true),
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds") if seconds else "",
    )


def _record(net: Network, data: _Data, summary: TrainingSummary, history: dict, test: dict | None) -> None:
    """Fill ``net.info`` with what the model is for and how it was made."""
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


def train(
    dataset="mnist",
    model="mlp",
    backend="auto",
    epochs: int | None = None,
    batch_size: int = 128,
    optimizer="adam",
    lr: float | None = None,
    schedule="cosine",
    weight_decay: float = 0.0,
    augment=None,
    validation=0.1,
    seed: int = 0,
    data_dir=None,
    verbose: bool | int = True,
    save=None,
    hidden=None,
    dropout: float | None = None,
    activation: str = "relu",
    dtype: str = "float32",
    limit: int | None = None,
    callbacks=(),
    checkpoint_dir=None,
    resume=False,
    class_weight=None,
    clip_norm: float | None = None,
    label_smoothing: float = 0.0,
    distributed=None,
) -> TrainResult:
    """Train a model on a dataset and evaluate it on the test split.

    Args:
        dataset: a name (``"mnist"``, ``"emnist-balanced"``, ``"emnist-standin"``, ...: see
            ``anynet.data.dataset_names()``), an ``anynet.data.Dataset``, or arrays
            ``(x_train, y_train[, x_test, y_test])`` (images uint8 ``(n, 28, 28)`` or float).
        model: a preset name from :data:`~anynet.models.MODEL_PRESETS` (``"mlp-small"``,
            ``"mlp"``, ``"mlp-large"``) or an (unbuilt or built) :class:`~anynet.network.Network`.
        backend: ``"auto"`` (a GPU if one is usable, else the CPU), ``"cpu"``, or any name
            :func:`~anynet.backend.get_backend` takes
            (a Network given as ``model`` keeps its own backend).
        epochs: passes over the training data (default: the preset's, 15 for ``"mlp"``).
        batch_size: samples per optimisation step.
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"`` (Nesterov momentum 0.9) or ``"gd"``, or an
            Optimizer object (then ``lr``/``schedule``/``weight_decay`` are its own).
        lr: base learning rate (default: the preset's for Adam, else the optimizer's: Adam
            1e-3, SGD 0.05).
        schedule: ``"cosine"``, ``"step"``, ``"constant"``/``None`` or a schedule object.
        weight_decay: L2 (Adam, SGD) or decoupled (AdamW) weight decay.
        augment: ``None``, ``"standard"`` (:data:`STANDARD_AUGMENT`: rotation up to 10 degrees,
            scaling by up to 10 %, shifts up to 1.5 px and a mild elastic distortion), or a
            callable ``(x, rng) -> x`` applied to each training batch on the device, such as
            an ``anynet.data.Augmenter``.
        validation: fraction of the training split held out (stratified by class) to watch
            generalisation each epoch, an ``(x_val, y_val)`` pair, or ``None``.
        seed: seeds the split, the initial weights, the shuffles and the dropout masks.
        data_dir: where to look for dataset files first (default ``$ANYNET_DATA_DIR``).
        verbose: 0/False silent; 1/True progress bars (download, epochs; one line per epoch
            when stderr is not a terminal) and a summary line; 2 one line per epoch.
        save: a path to save the trained model to (``.safetensors``); never written when
            training diverged (:class:`~anynet.training.TrainingDivergedError`).
        hidden, dropout, activation: override the preset's hidden widths, dropout rate and
            activation (``"relu"``, ``"leaky_relu"``, ``"tanh"``, ``"sigmoid"``).
        dtype: ``"float32"`` or ``"float64"``.
        limit: train on a stratified subset of this many training samples (quick runs, tests).
        callbacks: extra :class:`~anynet.training.Callback` objects (e.g. ``EarlyStopping``).
        checkpoint_dir: write a full checkpoint there after every epoch and on Ctrl-C.
        resume: continue the run checkpointed in ``checkpoint_dir`` (same arguments otherwise;
            ``"auto"``: only when a checkpoint exists).
        class_weight: ``"balanced"``, ``{class: weight}`` or one weight per class, applied to
            each training sample's loss.
        clip_norm: clip the global gradient norm of each step to this (optimizer by name only).
        label_smoothing: eps in [0, 1) for a named model's cross-entropy: targets
            ``(1 - eps) * onehot + eps / classes`` (saved with the model).
        distributed: ``"mpi"`` or ``"nccl"`` (under ``mpiexec -n N``) or an
            :class:`anynet.distributed.Communicator`: data-parallel training, each rank on its
            shard of every ``batch_size`` batch; rank 0 alone prints and saves. See
            ``docs/cluster.md``.

    Returns:
        A :class:`TrainResult`; ``model, history = train(...)`` unpacks it.
    """
    comm = get_communicator(distributed)
    with fail_fast(comm, passthrough=(TrainingDivergedError, TrainingInterrupted)):
        if comm is not None and not comm.is_main:
            verbose, save = 0, None  # rank 0 alone prints and writes files
        if not isinstance(model, Network):
            backend = get_backend(rank_backend(backend, comm))  # fails before any loading
        lr, epochs = _preset_defaults(model, optimizer, lr, epochs)
        loss = SoftmaxCrossEntropy(label_smoothing)  # bad values fail before any loading
        opt = _make_optimizer(optimizer, lr, schedule, weight_decay, clip_norm)
        with rank_zero_first(comm):  # one download, not one per rank
            data = _resolve_data(dataset, data_dir, progress=bool(verbose))
        _limit_and_split(data, limit, validation, seed)
        settings = dict(
            optimizer=optimizer,
            opt=opt,
            lr=lr,
            weight_decay=weight_decay,
            hidden=hidden,
            dropout=dropout,
            activation=activation,
            backend=backend,
            dtype=dtype,
            seed=seed,
            clip_norm=clip_norm,
            loss=loss,
        )
        net, model_name = _build_model(model, data, settings)
        aug, aug_name = _make_augment(augment)
        n_val = 0 if data.y_val is None else len(data.y_val)
        # the record so far, so that checkpoints and ModelCheckpoint files describe themselves
        _record(
            net,
            data,
            _summary(net, model_name, batch_size, aug_name, seed, data, n_val, 0.0, None),
            net.history,
            None,
        )
        if verbose:
            _announce(model_name, data, net, epochs, n_val, comm)
        start = time.perf_counter()
        history = net.fit(
            data.x_train,
            data.y_train,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=None if data.y_val is None else (data.x_val, data.y_val),
            augment=aug,
            verbose=verbose,
            callbacks=list(callbacks),
            seed=seed + 1,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            class_weight=class_weight,
            distributed=comm,
            settings=_pinned(data, model_name, aug_name, limit, validation, seed),
        )
    seconds = time.perf_counter() - start
    report = (model_name, batch_size, aug_name, seed, n_val, seconds)
    return _finish(net, data, history, report, save, verbose, comm, checkpoint_dir)


def _pinned(data: _Data, model_name: str, aug_name, limit, validation, seed: int) -> dict:
    """What ``train`` adds to the settings a checkpoint pins: what decided the data split."""
    if isinstance(validation, (tuple, list)):
        validation = f"{len(validation[1])} given samples"
    return {
        "dataset": data.name,
        "limit": limit,
        "validation": validation,
        "seed": seed,
        "model": model_name,
        "augment": aug_name,
    }


def _preset_defaults(model, optimizer, lr, epochs) -> tuple[float | None, int]:
    """The learning rate and epochs a preset suggests, where the caller gave none."""
    preset = _preset(model) if isinstance(model, str) else {}
    if lr is None and "lr" in preset and str(optimizer).lower() in ("adam", "adamw"):
        lr = preset["lr"]
    epochs = int(preset.get("epochs", 10) if epochs is None else epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    return lr, epochs


def _announce(model_name: str, data: _Data, net: Network, epochs: int, n_val: int, comm) -> None:
    ranks = f", {comm.size} ranks ({comm.name})" if comm is not None else ""
    print(
        f"training {model_name} on {data.name} ({len(data.y_train)} train, {n_val} validation) "
        f"with {net.backend.spec}, {_plural(epochs, 'epoch')}{ranks}",
        flush=True,
    )


def _finish(
    net: Network, data: _Data, history: dict, report: tuple, save, verbose, comm, checkpoint_dir
) -> TrainResult:
    """Score the test split, fill the model record, save, and say how it went."""
    model_name, batch_size, aug_name, seed, n_val, seconds = report
    test, y_true, y_pred = _test_scores(net, data)
    summary = _summary(net, model_name, batch_size, aug_name, seed, data, n_val, seconds, y_true)
    _record(net, data, summary, history, test)
    ranks = (0, 1) if comm is None else (comm.rank, comm.size)
    result = TrainResult(net, history, test, data.name, data.classes, seconds, None, y_true, y_pred, *ranks)
    if save is not None:
        result.path = _save_final(result, Path(save), checkpoint_dir)
    if verbose and test is not None:
        print(
            f"test accuracy {test['accuracy']:.2%} (balanced {test['balanced_accuracy']:.2%}) "
            f"after {seconds:.1f} s",
            flush=True,
        )
    return result


class ModelNotSavedError(OSError):
    """The trained model could not be written where asked. ``result`` is the
    :class:`TrainResult`; ``saved_to`` where the model was kept instead (``None``: nowhere)."""

    def __init__(self, message: str, result: TrainResult, saved_to: Path | None):
        super().__init__(message)
        self.result, self.saved_to = result, saved_to


def _save_final(result: TrainResult, path: Path, checkpoint_dir) -> Path:
    """Save the trained model to ``path``; when that fails (a full disk), keep it in the
    checkpoint folder, the model home or the temporary folder, and say where."""
    from ..app.paths import anynet_home
    from ..io import save_model

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
