"""``TrainConfig``: what to train, on what, and how, in one typed record.

Every setting of :func:`anynet.train`, the ``anynet train`` command, sweeps
(:mod:`anynet.tune`) and the scikit-learn estimators is a field here, with its help text and the
rule its value follows. The command line builds its options from the fields (flags, help,
choices and the parsing of their text), and :meth:`TrainConfig.check` applies the same rules to
values given in Python, so each setting is described and checked in one place.

    config = TrainConfig(dataset="emnist-standin", model="cnn", epochs=5, augment="standard")
    anynet.train(config)                     # or anynet.train(dataset=..., model=..., ...)
    config.replace(lr=3e-4)                  # a changed copy
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Rule", "Setting", "TrainConfig", "setting_of"]


@dataclass(frozen=True)
class Rule:
    """The values a setting takes: ``test`` on a number (``integer``: whole numbers only), said
    as ``expected`` in messages. ``none`` lists the words that mean ``None`` on a command line."""

    expected: str
    test: Callable[[float], bool]
    integer: bool = False
    none: tuple[str, ...] = ()

    def holds(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and (not float(value).is_integer() or isinstance(value, float)):
            return False
        return math.isfinite(value) and self.test(value)

    def parse(self, text: str) -> Any:
        """A command-line value: the number, or ``None`` for one of the ``none`` words."""
        if text.strip().lower() in self.none:
            return None
        try:
            value: Any = int(text) if self.integer else float(text)
        except ValueError:
            raise ValueError(f"expected {self.expected}, got {text!r}") from None
        if not self.holds(value):
            raise ValueError(f"expected {self.expected}, got {text}")
        return value


POSITIVE = Rule("a finite number > 0", lambda v: v > 0)
NON_NEGATIVE = Rule("a finite number >= 0", lambda v: v >= 0)
RATE = Rule("a number in [0, 1)", lambda v: 0 <= v < 1)
FRACTION = Rule("a fraction in (0, 1) or 'none'", lambda v: 0 < v < 1, none=("none", "off", "0"))
COUNT = Rule("a whole number >= 1", lambda v: v >= 1, integer=True)
SEED = Rule("a whole number in [0, 2**63)", lambda v: 0 <= v < 2**63, integer=True)


def _widths(text: str) -> tuple[int, ...]:
    """``"512,256"`` as ``(512, 256)``."""
    try:
        widths = tuple(int(w) for w in text.replace(" ", "").split(",") if w)
    except ValueError:
        raise ValueError(f"expected widths like 512,256, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise ValueError(f"expected positive widths like 512,256, got {text!r}")
    return widths


@dataclass(frozen=True)
class Setting:
    """What a field of :class:`TrainConfig` says about itself: help text, command-line flags
    (``()``: not on the command line), choices, the rule for numbers, a parser for text, and
    what else it takes in Python."""

    help: str
    flags: tuple[str, ...] = ()
    #: what else the setting takes in Python, beyond the command line's values
    python: str = ""
    choices: tuple[Any, ...] | None = None
    rule: Rule | None = None
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None

    def from_text(self, text: str) -> Any:
        """The value of a command-line word (raises ValueError saying what was expected)."""
        if self.rule is not None:
            return self.rule.parse(text)
        return self.parse(text) if self.parse is not None else text


def _setting(default: Any, help: str, *flags: str, factory: Any = None, **options: Any) -> Any:
    meta = {"setting": Setting(help, tuple(flags), **options)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def setting_of(name: str) -> Setting:
    """The :class:`Setting` of field ``name`` of :class:`TrainConfig`."""
    for f in dataclasses.fields(TrainConfig):
        if f.name == name:
            return f.metadata["setting"]
    raise KeyError(name)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (see the module). Field defaults are the ones of
    ``anynet.train`` and ``anynet train``; ``None`` means "the preset's" where a preset has one."""

    # ------------------------------------------------------------------ what to train
    dataset: Any = _setting(
        "mnist",
        "mnist, emnist-balanced, emnist-standin (offline EMNIST-47), emnist-digits, ...",
        "--dataset",
        "-d",
        python="an anynet.data.Dataset or arrays (x_train, y_train[, x_test, y_test])",
    )
    model: Any = _setting(
        "mlp",
        "a preset: mlp-small, mlp, mlp-large, cnn or cnn-large",
        "--model",
        "-m",
        python="an anynet.Network",
    )
    hidden: tuple[int, ...] | None = _setting(
        None, "hidden widths (default: the model's)", "--hidden", parse=_widths, metavar="W1,W2,..."
    )
    dropout: float | None = _setting(None, "dropout rate (default: the model's)", "--dropout", rule=RATE)
    activation: str = _setting(
        "relu",
        "hidden activation of a named model",
        "--activation",
        choices=("relu", "leaky_relu", "tanh", "sigmoid"),
    )
    label_smoothing: float = _setting(
        0.0,
        "cross-entropy label smoothing: targets (1-EPS)*onehot + EPS/classes",
        "--label-smoothing",
        rule=RATE,
        metavar="EPS",
    )
    # ------------------------------------------------------------------ how
    epochs: int | None = _setting(
        None, "passes over the data (default: the preset's, e.g. 15 for mlp)", "--epochs", "-e", rule=COUNT
    )
    batch_size: int = _setting(128, "samples per step", "--batch-size", "-b", rule=COUNT)
    optimizer: Any = _setting(
        "adam",
        "optimizer",
        "--optimizer",
        choices=("adam", "adamw", "sgd", "gd"),
        python="an anynet Optimizer object",
    )
    lr: float | None = _setting(
        None, "base learning rate (default: adam 1e-3 (2e-3 for mlp-small), sgd 0.05)", "--lr", rule=POSITIVE
    )
    schedule: Any = _setting(
        "cosine",
        "learning-rate schedule (warmup, warmup-cosine and onecycle change it every step)",
        "--schedule",
        choices=("cosine", "step", "constant", "warmup", "warmup-cosine", "onecycle"),
    )
    weight_decay: float = _setting(
        0.0, "weight decay (L2; decoupled for adamw)", "--weight-decay", rule=NON_NEGATIVE
    )
    clip_norm: float | None = _setting(
        None, "clip the gradients' global L2 norm to X", "--clip-norm", rule=POSITIVE, metavar="X"
    )
    class_weight: Any = _setting(
        None,
        "weight each class's loss by the inverse of its frequency",
        "--class-weight",
        choices=("balanced",),
        python="{class: weight} or one weight per class",
    )
    augment: Any = _setting(
        None,
        "random rotation / scaling / shifts / elastic distortion of training images",
        "--augment",
        choices=("none", "standard"),
        python="a callable (x, rng) -> x applied to each batch on the device",
    )
    validation: Any = _setting(
        0.1,
        "share of the training data held out for validation ('none' to train on all)",
        "--validation",
        rule=FRACTION,
        metavar="FRACTION",
    )
    limit: int | None = _setting(
        None,
        "train on a stratified subset of N training images (quick runs)",
        "--limit",
        rule=COUNT,
        metavar="N",
    )
    seed: int = _setting(0, "seed for the split, weights, shuffles and dropout", "--seed", rule=SEED)
    # ------------------------------------------------------------------ on what
    backend: Any = _setting("auto", "array backend (see anynet info)", "--backend")
    dtype: str = _setting("float32", "float type", choices=("float32", "float64"))
    data_dir: Any = _setting(
        None, "folder with dataset files, searched first (default: $ANYNET_DATA_DIR, then the cache)"
    )
    distributed: Any = _setting(
        None,
        "data-parallel over the processes of mpiexec (docs/cluster.md): mpi, or nccl for several GPUs",
        "--distributed",
        choices=("mpi", "nccl"),
    )
    compile: bool = _setting(
        False,
        "run each training step as one compiled function (the jax backend; docs/backends.md)",
        "--compile",
    )
    # ------------------------------------------------------------------ what comes out
    verbose: int = _setting(
        1,
        "0 silent, 1 a progress bar (one line per epoch when not on a terminal), 2 one line per epoch",
        "--verbose",
        "-v",
        choices=(0, 1, 2),
        parse=int,
    )
    save: Any = _setting(None, "model file to write (.safetensors)")
    callbacks: tuple = _setting((), "extra anynet.training.Callback objects", factory=tuple)
    checkpoint_dir: Any = _setting(
        None,
        "write a resumable checkpoint there every epoch (Ctrl-C saves one too)",
        "--checkpoint-dir",
        metavar="DIR",
    )
    resume: Any = _setting(
        False,
        "continue the run saved in the checkpoint folder ('auto': only if a checkpoint is there)",
        "--resume",
    )

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (unknown names raise TypeError naming the known ones)."""
        unknown = sorted(set(changes) - set(names()))
        if unknown:
            raise TypeError(f"unknown setting(s) {', '.join(unknown)}; the settings are {', '.join(names())}")
        return dataclasses.replace(self, **changes)

    def check(self) -> TrainConfig:
        """Every number against its rule (a ValueError naming the setting); returns self. Names
        (optimizer, schedule, ...) are checked where they are used, which knows them all."""
        for f in dataclasses.fields(self):
            value, rule = getattr(self, f.name), f.metadata["setting"].rule
            numeric = value is not None and not isinstance(value, (tuple, list))
            if rule is not None and numeric and not rule.holds(value):
                raise ValueError(f"{f.name} must be {rule.expected}, got {value!r}")
        return self


def _attributes() -> str:
    """The ``Attributes:`` section of :class:`TrainConfig`'s docstring, from the settings."""
    lines = ["", "", "    Attributes:"]
    for f in dataclasses.fields(TrainConfig):
        setting = f.metadata["setting"]
        flags = f" (``{'``, ``'.join(setting.flags)}``)" if setting.flags else ""
        also = f"; in Python also {setting.python}" if setting.python else ""
        lines.append(f"        {f.name}: {setting.help}{also}{flags}.")
    return "\n".join(lines) + "\n"


TrainConfig.__doc__ = (TrainConfig.__doc__ or "").rstrip() + _attributes()


def names() -> list[str]:
    """The names of the settings, in order."""
    return [f.name for f in dataclasses.fields(TrainConfig)]
