"""anynet: from-scratch neural networks for handwritten digits and characters, written once
against the Python Array API standard and run on NumPy, CuPy, PyTorch or any compliant library."""

__version__ = "0.1.0"

from .backend import Backend, BackendError, available_backends, get_backend, to_numpy
from .callbacks import Callback, EarlyStopping, ProgressBar
from .io import ModelFileError, load_model, save_model
from .layers import Dense, Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .losses import MeanSquaredError, SoftmaxCrossEntropy, SoftmaxHalfSquaredError
from .models import mlp
from .network import Network
from .optimizers import SGD, Adam, AdamW, CosineDecay, GradientDescent, StepDecay

__all__ = [
    "__version__", "Backend", "BackendError", "available_backends", "get_backend", "to_numpy",
    "Callback", "EarlyStopping", "ProgressBar", "ModelFileError", "load_model", "save_model",
    "Dense", "Dropout", "Flatten", "LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Tanh",
    "MeanSquaredError", "SoftmaxCrossEntropy", "SoftmaxHalfSquaredError", "mlp", "Network",
    "SGD", "Adam", "AdamW", "CosineDecay", "GradientDescent", "StepDecay",
]

from .train import TrainResult, train  # noqa: E402  (issue 4: one-call training)

__all__ += ["train", "TrainResult"]
