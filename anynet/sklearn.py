"""scikit-learn estimators: anynet networks behind the ``fit`` / ``predict`` interface, usable
in ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``. scikit-learn is optional: importing
this module without it raises ImportError with the install command.

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from anynet.sklearn import MLPClassifier
    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), epochs=20))
    clf.fit(X, y).score(X_test, y_test)

Inputs may be NumPy, CuPy or PyTorch arrays (they are checked on the host, then trained on
``backend``); labels may be of any type (``classes_`` keeps them); ``predict`` returns them and
``predict_proba`` returns host float64 arrays, as scikit-learn expects. ``random_state`` seeds
the weights, the shuffles and the dropout masks. The fitted network is ``network_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("anynet.sklearn needs scikit-learn: pip install scikit-learn") from exc

from . import models
from .backend import to_numpy
from .config import TrainConfig
from .models import mlp
from .network import Network
from .optimizers import get_optimizer

__all__ = ["CNNClassifier", "MLPClassifier"]


def _host(a: Any) -> Any:
    """CuPy / PyTorch arrays to NumPy (anything else is left to scikit-learn's checks)."""
    if a is None or isinstance(a, (np.ndarray, list, tuple)) or not hasattr(a, "__dlpack__"):
        return a
    return to_numpy(a)


class _AnynetClassifier(ClassifierMixin, BaseEstimator):
    """Shared by the classifiers: label encoding, training and prediction."""

    def _build(self, n_features: int, n_classes: int):
        raise NotImplementedError

    def _check_settings(self) -> None:
        """The settings the estimators share with ``anynet.train``, against the same rules
        (:class:`~anynet.config.TrainConfig`): a ValueError names the one that is off."""
        TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            clip_norm=self.clip_norm,
            dropout=self.dropout,
            seed=self.random_state if isinstance(self.random_state, int) else 0,
        ).check()

    def _optimizer(self):
        return get_optimizer(
            self.optimizer,
            lr=self.lr,
            schedule=self.schedule,
            weight_decay=self.weight_decay,
            clip_norm=self.clip_norm,
        )

    def _encode(self, X, y, reset: bool, classes=None):
        X, y = validate_data(self, _host(X), _host(y), reset=reset, dtype=(np.float32, np.float64))
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if reset:
            self.classes_ = np.unique(y) if classes is None else np.asarray(classes)
            if len(self.classes_) < 2:
                raise ValueError(f"{type(self).__name__} needs at least 2 classes, got 1 class")
        index = np.searchsorted(self.classes_, y)
        if np.any(index >= len(self.classes_)) or np.any(
            self.classes_[np.minimum(index, len(self.classes_) - 1)] != y
        ):
            raise ValueError(f"y holds labels not in classes_ {list(self.classes_)}")
        return np.asarray(X, dtype=np.float32), index.astype(np.int64)

    def fit(self, X, y):
        """Train from scratch (or, with ``warm_start``, on from the current weights)."""
        self._check_settings()
        warm = self.warm_start and hasattr(self, "network_")
        X, yi = self._encode(X, y, reset=not warm, classes=getattr(self, "classes_", None) if warm else None)
        if not warm:
            self.network_ = self._build(X.shape[1], len(self.classes_))
        self._train(X, yi, self.epochs)
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch on ``(X, y)``; the first call needs ``classes`` (all labels there will be),
        later ones may repeat them but not change them."""
        self._check_settings()
        first = not hasattr(self, "network_")
        if first and classes is None:
            raise ValueError("the first call to partial_fit needs classes=[every label]")
        if not first and classes is not None and not np.array_equal(self.classes_, np.unique(classes)):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on last call to partial_fit, was: {self.classes_!r}"
            )
        X, yi = self._encode(X, y, reset=first, classes=np.unique(classes) if first else None)
        if first:
            self.network_ = self._build(X.shape[1], len(self.classes_))
        self._train(X, yi, 1)
        return self

    def _train(self, X, yi, epochs: int) -> None:
        net = self.network_
        net.fit(
            X,
            yi,
            epochs=int(epochs),
            batch_size=min(int(self.batch_size), len(yi)),
            class_weight=self._class_weight(),
            verbose=self.verbose,
        )
        self.n_iter_ = getattr(self, "n_iter_", 0) + int(epochs)
        self.loss_ = float(net.history["loss"][-1])

    def _class_weight(self):
        """``class_weight`` for the training loop: label keys become indices into ``classes_``."""
        if not isinstance(self.class_weight, dict):
            return self.class_weight
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        unknown = [key for key in self.class_weight if key not in index]
        if unknown:
            raise ValueError(
                f"class_weight keys {unknown!r} are not labels in classes_ {self.classes_.tolist()!r} "
                "(class_weight takes {label: weight})"
            )
        return {index[key]: weight for key, weight in self.class_weight.items()}

    def predict_proba(self, X):
        """Class probabilities, host float64, one column per entry of ``classes_``."""
        check_is_fitted(self, "network_")
        X = validate_data(self, _host(X), reset=False, dtype=(np.float32, np.float64))
        p = to_numpy(self.network_.predict_proba(np.asarray(X, dtype=np.float32))).astype(np.float64)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable label of each row (of the type of ``classes_``)."""
        check_is_fitted(self, "network_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __getstate__(self):
        """For copies and joblib: the network travels as its config and host weights."""
        state = dict(self.__dict__)
        net = state.pop("network_", None)
        if net is not None:
            state["_network"] = {
                "config": net.get_config(),
                "weights": net.get_weights(),
                "backend": net.backend.spec,
            }
        return state

    def __setstate__(self, state):
        saved = state.pop("_network", None)
        self.__dict__.update(state)
        if saved is not None:
            net = Network.from_config(saved["config"], backend=saved["backend"])
            net.set_weights(saved["weights"])
            net.use_optimizer(self._optimizer())
            self.network_ = net


class MLPClassifier(_AnynetClassifier):
    """A multi-layer perceptron (:func:`anynet.mlp`) as a scikit-learn classifier.

    Args:
        hidden_layer_sizes: widths of the hidden layers (an int ``n``: one layer, ``(n,)``).
        activation: ``"relu"``, ``"leaky_relu"``, ``"tanh"`` or ``"sigmoid"``.
        dropout: dropout rate after each hidden layer.
        epochs: passes over the data per ``fit`` (``partial_fit``: one).
        batch_size, optimizer, lr, schedule, weight_decay, clip_norm: as in ``anynet.train``.
        class_weight: ``None``, ``"balanced"`` or ``{label: weight}`` (keys are values of
            ``classes_``; labels left out weigh 1).
        backend: any name :func:`anynet.get_backend` takes (``"cpu"``, ``"auto"``, a library name...).
        random_state: an int seed (``None``: 0, so fits are repeatable).
        warm_start: ``fit`` continues from the current weights instead of starting afresh.
        verbose: 0, 1 or 2 as in ``Network.fit``.
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        dropout=0.0,
        epochs=30,
        batch_size=32,
        optimizer="adam",
        lr=1e-3,
        schedule=None,
        weight_decay=0.0,
        clip_norm=None,
        class_weight=None,
        backend="cpu",
        dtype="float32",
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        self.hidden_layer_sizes, self.activation, self.dropout = hidden_layer_sizes, activation, dropout
        self.epochs, self.batch_size, self.optimizer, self.lr = epochs, batch_size, optimizer, lr
        self.schedule, self.weight_decay, self.clip_norm = schedule, weight_decay, clip_norm
        self.class_weight, self.backend, self.dtype = class_weight, backend, dtype
        self.random_state, self.warm_start, self.verbose = random_state, warm_start, verbose

    def _build(self, n_features, n_classes):
        return mlp(
            hidden=_hidden_sizes(self.hidden_layer_sizes),
            num_classes=n_classes,
            activation=self.activation,
            dropout=self.dropout,
            optimizer=self._optimizer(),
            backend=self.backend,
            dtype=self.dtype,
            seed=_seed(self.random_state),
            classes=[str(c) for c in self.classes_],
            input_shape=(n_features,),
        )


class CNNClassifier(_AnynetClassifier):
    """A convolutional network (:func:`anynet.models.cnn`) as a scikit-learn classifier; rows
    of ``X`` are images flattened row-major to ``image_shape`` (one channel). The other
    arguments, ``class_weight`` among them, are as in :class:`MLPClassifier`. Raises
    NotImplementedError when this anynet has no ``cnn`` builder."""

    def __init__(
        self,
        image_shape=(28, 28),
        widths=(32, 64, 128),
        dense=256,
        dropout=0.4,
        epochs=10,
        batch_size=64,
        optimizer="adam",
        lr=1e-3,
        schedule=None,
        weight_decay=0.0,
        clip_norm=None,
        class_weight=None,
        backend="cpu",
        dtype="float32",
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        self.image_shape, self.widths, self.dense, self.dropout = image_shape, widths, dense, dropout
        self.epochs, self.batch_size = epochs, batch_size
        self.optimizer, self.lr, self.schedule, self.weight_decay = optimizer, lr, schedule, weight_decay
        self.clip_norm, self.class_weight, self.backend, self.dtype = clip_norm, class_weight, backend, dtype
        self.random_state, self.warm_start, self.verbose = random_state, warm_start, verbose

    def _build(self, n_features, n_classes):
        builder = getattr(models, "cnn", None)
        if builder is None:
            raise NotImplementedError(
                "CNNClassifier needs anynet.models.cnn, which this anynet does not have; use MLPClassifier"
            )
        shape = (1, *(int(d) for d in self.image_shape))
        if int(np.prod(shape)) != n_features:
            raise ValueError(
                f"X has {n_features} features per row, image_shape {self.image_shape} needs "
                f"{int(np.prod(shape))}"
            )
        return builder(
            widths=tuple(self.widths),
            num_classes=n_classes,
            dense=int(self.dense),
            dropout=self.dropout,
            optimizer=self._optimizer(),
            backend=self.backend,
            dtype=self.dtype,
            seed=_seed(self.random_state),
            classes=[str(c) for c in self.classes_],
            input_shape=shape,
        )


def _hidden_sizes(sizes) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of positive ints (an int ``n`` is ``(n,)``)."""
    items = tuple(sizes) if hasattr(sizes, "__iter__") and not isinstance(sizes, str) else (sizes,)
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in items):
        raise ValueError(f"hidden_layer_sizes must be a positive int or a sequence of them, got {sizes!r}")
    return tuple(int(n) for n in items)


def _seed(random_state) -> int:
    if random_state is None:
        return 0
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31))
    return int(random_state)
