"""anynet: from-scratch neural networks for handwritten digits and characters, written once
against the Python Array API standard and run on NumPy, CuPy, PyTorch or any compliant library."""

from ._version import __version__
from .backend import Backend, BackendError, available_backends, backend_of, get_backend, to_numpy
from .config import TrainConfig
from .export import export_onnx
from .io import ModelFileError, save_model
from .layers import (
    AveragePool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .losses import MeanSquaredError, SoftmaxCrossEntropy, SoftmaxHalfSquaredError
from .models import cnn, mlp
from .network import Network, load_model
from .optimizers import SGD, Adam, AdamW, GradientDescent
from .record import ModelInfo
from .run import TrainResult, train
from .schedules import CosineDecay, LinearWarmup, OneCycle, StepDecay, WarmupCosine
from .training import (
    Callback,
    CSVLogger,
    EarlyStopping,
    EpochLogger,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
    TerminateOnNaN,
    TrainingDivergedError,
    TrainingInterrupted,
    WeightAveraging,
    lr_find,
)

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "AveragePool2D",
    "Backend",
    "BackendError",
    "BatchNorm",
    "CSVLogger",
    "Callback",
    "Conv2D",
    "CosineDecay",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "EpochLogger",
    "Flatten",
    "GlobalAveragePooling2D",
    "GradientDescent",
    "LeakyReLU",
    "LinearWarmup",
    "MaxPool2D",
    "MeanSquaredError",
    "ModelCheckpoint",
    "ModelFileError",
    "ModelInfo",
    "Network",
    "OneCycle",
    "ProgressBar",
    "ReLU",
    "ReduceLROnPlateau",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "SoftmaxHalfSquaredError",
    "StepDecay",
    "Tanh",
    "TerminateOnNaN",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "WarmupCosine",
    "WeightAveraging",
    "__version__",
    "available_backends",
    "backend_of",
    "cnn",
    "export_onnx",
    "get_backend",
    "load_model",
    "lr_find",
    "mlp",
    "save_model",
    "to_numpy",
    "train",
]
