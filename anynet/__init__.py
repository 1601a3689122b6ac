"""anynet: from-scratch neural networks for handwritten digits and characters, written once
against the Python Array API standard and run on NumPy, CuPy, PyTorch or any compliant library."""

from importlib.metadata import PackageNotFoundError, version

from .backend import Backend, BackendError, available_backends, backend_of, get_backend, to_numpy
from .io import ModelFileError, load_model, save_model
from .layers import Dense, Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .losses import MeanSquaredError, SoftmaxCrossEntropy, SoftmaxHalfSquaredError
from .models import mlp
from .network import Network
from .optimizers import SGD, Adam, AdamW, GradientDescent
from .record import ModelInfo
from .schedules import CosineDecay, StepDecay
from .training import Callback, EarlyStopping, ProgressBar, TrainResult, train

try:
    __version__ = version("anynet")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "SGD", "Adam", "AdamW", "Backend", "BackendError", "Callback", "CosineDecay", "Dense",
    "Dropout", "EarlyStopping", "Flatten", "GradientDescent", "LeakyReLU", "MeanSquaredError",
    "ModelFileError", "ModelInfo", "Network", "ProgressBar", "ReLU", "Sigmoid", "Softmax",
    "SoftmaxCrossEntropy", "SoftmaxHalfSquaredError", "StepDecay", "Tanh", "TrainResult",
    "__version__", "available_backends", "backend_of", "get_backend", "load_model", "mlp",
    "save_model", "to_numpy", "train",
]
