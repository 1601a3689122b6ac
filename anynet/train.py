"""``anynet.train(...)``: the one call that loads a dataset, builds a model, trains it and
reports how well it does. The CLI (``anynet train``) and the examples are built on it.

    >>> import anynet
    >>> result = anynet.train()                      # a strong MNIST MLP in a few minutes on a CPU
    >>> result.test["accuracy"]
    0.984...
    >>> model, history = anynet.train("emnist-standin", epochs=5, augment="standard")

Defaults: 15 epochs of the ``"mlp"`` preset (Flatten, Dense 512 ReLU, Dropout 0.2, Dense 256
ReLU, Dropout 0.2, Dense logits), Adam with cosine decay from ``lr=1e-3``, batches of 128, 10 %
of the training split held out (stratified) for validation, seed 0. The trained model carries
its classes and a description of the expected inputs in ``model.info``, so a saved file is
self-describing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .backend import get_backend, to_numpy
from .models import mlp
from .network import Network
from .optimizers import Optimizer, get_optimizer, get_schedule

__all__ = ["train", "TrainResult", "MODEL_PRESETS", "PREPROCESSING", "STANDARD_AUGMENT"]

#: Named architectures for ``train(model=...)``: keyword arguments of :func:`anynet.models.mlp`
#: plus the number of epochs (and the Adam learning rate, where not 1e-3) that suit them.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "mlp-small": {"hidden": (256,), "dropout": 0.0, "epochs": 5, "lr": 2e-3,
                  "about": "784-256-k ReLU: trains in seconds, ~97.8% on MNIST"},
    "mlp": {"hidden": (512, 256), "dropout": 0.2, "epochs": 15,
            "about": "784-512-256-k ReLU, dropout 0.2: the default, ~98.5% on MNIST"},
    "mlp-large": {"hidden": (1024, 1024, 512), "dropout": 0.3, "epochs": 20,
                  "about": "784-1024-1024-512-k ReLU, dropout 0.3: for EMNIST and augmentation"},
}

#: What a model trained here expects as input (stored in ``model.info["preprocessing"]``).
PREPROCESSING = {
    "input": "28x28 grayscale, white ink on black, upright",
    "scale": "uint8 pixel / 255 -> [0, 1] (float inputs are used as given)",
    "layout": "(n, 28, 28) or (n, 784), row-major",
}

#: How the characters of a dataset family were framed in the 28x28 field (see anynet.imageprep).
FRAMING = {
    "mnist": "MNIST style: longer side scaled to 20 px, centre of mass at the middle of 28x28",
    "emnist": "EMNIST style: square frame padded by 2 px and scaled to 28x28 (longer side ~24 px, box centred)",
}


def _preprocessing(dataset_name: str) -> dict:
    style = "emnist" if str(dataset_name).lower().startswith("emnist") else "mnist"
    return {**PREPROCESSING, "dataset": dataset_name, "style": style, "framing": FRAMING[style]}


#: ``augment="standard"``: mild distortions that keep characters readable (MNIST with the
#: ``"mlp"`` preset, 15 epochs: 98.5 % -> 99.0 % test).
STANDARD_AUGMENT = {"rotation": 10.0, "scale": 0.1, "translation": 1.5,
                    "elastic_alpha": 20.0, "elastic_sigma": 4.0}


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

    def __iter__(self):
        yield self.model
        yield self.history

    def summary(self) -> str:
        """A few lines for people: data, model, time, validation and test accuracy."""
        info = self.model.info.get("training", {})
        lines = [
            f"dataset    {self.dataset}: {info.get('train_samples', '?')} train, "
            f"{info.get('validation_samples', 0)} validation, {info.get('test_samples', 0)} test, "
            f"{len(self.classes)} classes",
            f"model      {info.get('model', '?')}: {self.model.count_parameters():,} parameters on "
            f"{self.model.backend.spec}",
            f"training   {len(self.history.get('loss', []))} epochs in {self.seconds:.1f} s "
            f"({info.get('optimizer', '?')}, lr {info.get('lr', '?')}, {info.get('schedule', '?')} schedule, "
            f"batch {info.get('batch_size', '?')}, augment {info.get('augment') or 'none'})",
        ]
        if self.history.get("val_accuracy"):
            lines.append(f"validation accuracy {self.history['val_accuracy'][-1]:.2%} "
                         f"(best {max(self.history['val_accuracy']):.2%})")
        if self.test is not None:
            lines.append(f"test accuracy       {self.test['accuracy']:.2%} "
                         f"(balanced {self.test['balanced_accuracy']:.2%}, loss {self.test['loss']:.4f})")
        if self.path is not None:
            lines.append(f"saved to   {self.path}")
        return "\n".join(lines)


@dataclass
class _Data:
    name: str
    classes: tuple
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None


def _resolve_data(dataset, data_dir, progress: bool) -> _Data:
    if isinstance(dataset, str):
        from .data import load

        dataset = load(dataset, data_dir=data_dir, progress=progress)
    if hasattr(dataset, "train") and hasattr(dataset, "classes"):
        test = getattr(dataset, "test", None)
        return _Data(getattr(dataset, "name", "dataset"), tuple(str(c) for c in dataset.classes),
                     dataset.train.images, dataset.train.labels,
                     None if test is None else test.images, None if test is None else test.labels)
    if isinstance(dataset, (tuple, list)) and len(dataset) in (2, 4):
        x_train, y_train = np.asarray(to_numpy(dataset[0])), np.asarray(to_numpy(dataset[1]))
        x_test = y_test = None
        if len(dataset) == 4 and dataset[2] is not None:
            x_test, y_test = np.asarray(to_numpy(dataset[2])), np.asarray(to_numpy(dataset[3]))
        if y_train.ndim != 1:
            raise ValueError(f"y_train must be 1-D class indices, got shape {y_train.shape}")
        k = int(max(y_train.max(), -1 if y_test is None else y_test.max())) + 1
        return _Data("arrays", tuple(str(i) for i in range(k)), x_train, y_train, x_test, y_test)
    raise TypeError("dataset must be a name such as 'mnist', an anynet.data.Dataset, or arrays "
                    f"(x_train, y_train[, x_test, y_test]); got {type(dataset).__name__}")


def _stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    from .data import stratified_split

    if n >= len(labels):
        return np.arange(len(labels))
    if n < 1:
        raise ValueError(f"limit must be a positive number of samples, got {n}")
    return stratified_split(labels, n / len(labels), seed)[1]


def _make_optimizer(optimizer, lr, schedule, weight_decay) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        if lr is not None or weight_decay:
            raise ValueError("lr / weight_decay apply to an optimizer given by name; "
                             "set them on the optimizer object instead")
        return optimizer
    kwargs: dict[str, Any] = {"schedule": get_schedule(schedule)}
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
        from .data.augment import Augmenter

        return Augmenter(**STANDARD_AUGMENT), "standard"
    if not callable(augment):
        raise TypeError(f"augment must be None, 'standard' or a callable (x, rng) -> x, got {type(augment).__name__}")
    return augment, repr(augment)


def _build_model(model, num_classes, classes, hidden, dropout, activation, optimizer, backend,
                 dtype, seed) -> tuple[Network, str]:
    if isinstance(model, Network):
        if hidden is not None or dropout is not None:
            raise ValueError("hidden / dropout describe a named model; the Network given is already built")
        if model.classes is None and (not model.built or model.num_outputs == num_classes):
            model.classes = classes
        return model, "custom"
    if not isinstance(model, str):
        raise TypeError(f"model must be a preset name or a Network, got {type(model).__name__}")
    try:
        preset = MODEL_PRESETS[model]
    except KeyError:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODEL_PRESETS)} "
                         "or pass an anynet.Network") from None
    net = mlp(
        hidden=tuple(preset["hidden"] if hidden is None else hidden),
        num_classes=num_classes,
        activation=activation,
        dropout=preset["dropout"] if dropout is None else dropout,
        optimizer=optimizer,
        backend=backend,
        dtype=dtype,
        seed=seed,
        classes=classes,
    )
    return net, model


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
    verbose: bool = True,
    save=None,
    hidden=None,
    dropout: float | None = None,
    activation: str = "relu",
    dtype: str = "float32",
    limit: int | None = None,
    callbacks=(),
) -> TrainResult:
    """Train a model on a dataset and evaluate it on the test split.

    Args:
        dataset: a name (``"mnist"``, ``"emnist-balanced"``, ``"emnist-standin"``, ...: see
            ``anynet.data.dataset_names()``), an ``anynet.data.Dataset``, or arrays
            ``(x_train, y_train[, x_test, y_test])`` (images uint8 ``(n, 28, 28)`` or float).
        model: a preset name from :data:`MODEL_PRESETS` (``"mlp-small"``, ``"mlp"``,
            ``"mlp-large"``) or an (unbuilt or built) :class:`~anynet.network.Network`.
        backend: ``"auto"`` (CuPy if a GPU is usable, else NumPy), ``"numpy"``, ``"torch"``, ...
            (a Network given as ``model`` keeps its own backend).
        epochs: passes over the training data (default: the preset's, 12 for ``"mlp"``).
        batch_size: samples per optimisation step.
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"`` (Nesterov momentum 0.9) or ``"gd"``, or an
            Optimizer object (then ``lr``/``schedule``/``weight_decay`` are its own).
        lr: base learning rate (default: the preset's for Adam, else the optimizer's: Adam
            1e-3, SGD 0.05).
        schedule: ``"cosine"``, ``"step"``, ``"constant"``/``None`` or a schedule object.
        weight_decay: L2 (Adam, SGD) or decoupled (AdamW) weight decay.
        augment: ``None``, ``"standard"`` (random rotation up to 10 degrees, scaling by up to
            10 %, shifts up to 1.5 px and a mild elastic distortion: :data:`STANDARD_AUGMENT`),
            or a callable ``(x, rng) -> x`` applied to each training batch on the device, such
            as an ``anynet.data.Augmenter``.
        validation: fraction of the training split held out (stratified by class) to watch
            generalisation each epoch, an ``(x_val, y_val)`` pair, or ``None``.
        seed: seeds the split, the initial weights, the shuffles and the dropout masks.
        data_dir: where to look for dataset files first (default ``$ANYNET_DATA_DIR``).
        verbose: progress bars (download, epochs) and a summary line at the end.
        save: a path to save the trained model to (``.safetensors``).
        hidden, dropout, activation: override the preset's hidden widths, dropout rate and
            activation (``"relu"``, ``"leaky_relu"``, ``"tanh"``, ``"sigmoid"``).
        dtype: ``"float32"`` or ``"float64"``.
        limit: train on a stratified subset of this many training samples (quick runs, tests).
        callbacks: extra :class:`~anynet.callbacks.Callback` objects (e.g. ``EarlyStopping``).

    Returns:
        A :class:`TrainResult`; ``model, history = train(...)`` unpacks it.
    """
    if not isinstance(model, Network):
        backend = get_backend(backend)  # an unknown or unusable backend fails before any loading
    data = _resolve_data(dataset, data_dir, progress=verbose)
    x_train, y_train = data.x_train, data.y_train
    if limit is not None:
        keep = _stratified_subset(y_train, int(limit), seed)
        x_train, y_train = x_train[keep], y_train[keep]

    validation_data, n_val = None, 0
    if isinstance(validation, (tuple, list)):
        validation_data, n_val = (validation[0], validation[1]), len(validation[1])
    elif validation:
        from .data import stratified_split

        fit_idx, val_idx = stratified_split(y_train, float(validation), seed)
        validation_data = (x_train[val_idx], y_train[val_idx])
        x_train, y_train, n_val = x_train[fit_idx], y_train[fit_idx], len(val_idx)

    preset = MODEL_PRESETS.get(model) if isinstance(model, str) else None
    if lr is None and preset and "lr" in preset and str(optimizer).lower() in ("adam", "adamw"):
        lr = preset["lr"]
    opt = _make_optimizer(optimizer, lr, schedule, weight_decay)
    net, model_name = _build_model(model, len(data.classes), data.classes, hidden, dropout,
                                   activation, opt, backend, dtype, seed)
    if isinstance(model, Network):
        if optimizer != "adam" or lr is not None or weight_decay:
            net.optimizer = opt
            net._bind()
        opt = net.optimizer
    aug, aug_name = _make_augment(augment)
    if epochs is None:
        epochs = MODEL_PRESETS.get(model_name, {}).get("epochs", 10)
    if int(epochs) < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")

    if verbose:
        print(f"training {model_name} on {data.name} ({len(y_train)} train, {n_val} validation) "
              f"with {net.backend.spec}, {epochs} epochs", flush=True)
    start = time.perf_counter()
    history = net.fit(x_train, y_train, epochs=int(epochs), batch_size=batch_size,
                      validation_data=validation_data, augment=aug, verbose=verbose,
                      callbacks=list(callbacks), seed=seed + 1)
    seconds = time.perf_counter() - start

    test = y_pred = y_true = None
    if data.x_test is not None:
        from .metrics import balanced_accuracy

        probs = net.predict_proba(data.x_test)
        y_pred = to_numpy(net.xp.argmax(probs, axis=1)).astype(np.int64)
        y_true = np.asarray(data.y_test, dtype=np.int64)
        test = {**net.evaluate(data.x_test, data.y_test),
                "balanced_accuracy": balanced_accuracy(y_true, y_pred, len(data.classes))}

    sched = opt.schedule.get_config()["type"] if hasattr(opt.schedule, "get_config") else "custom"
    net.info.update({
        "dataset": data.name,
        "classes": list(data.classes),
        "preprocessing": _preprocessing(data.name),
        "training": {
            "model": model_name, "epochs": len(history.get("loss", [])), "batch_size": batch_size,
            "optimizer": type(opt).__name__, "lr": opt.base_lr, "schedule": sched,
            "weight_decay": opt.weight_decay, "augment": aug_name, "seed": seed,
            "backend": net.backend.spec, "seconds": round(seconds, 2),
            "train_samples": int(len(y_train)), "validation_samples": int(n_val),
            "test_samples": 0 if y_true is None else int(len(y_true)),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "history": {k: [float(v) for v in vs] for k, vs in history.items()},
        "metrics": {
            **({"val_accuracy": history["val_accuracy"][-1]} if history.get("val_accuracy") else {}),
            **({f"test_{k}": v for k, v in test.items()} if test else {}),
        },
    })
    path = None
    if save is not None:
        from .io import save_model

        path = save_model(net, save)
    result = TrainResult(net, history, test, data.name, data.classes, seconds, path, y_true, y_pred)
    if verbose and test is not None:
        print(f"test accuracy {test['accuracy']:.2%} (balanced {test['balanced_accuracy']:.2%}) "
              f"after {seconds:.1f} s" + (f"; saved to {path}" if path else ""), flush=True)
    return result
