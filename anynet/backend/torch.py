"""PyTorch tensors on the CPU or a CUDA GPU, with PyTorch's own generator on the device."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Array, Backend, BackendError, Shape

__all__ = ["TorchBackend", "TorchRandom"]


class TorchBackend(Backend):
    library = "torch"
    install_hint = (
        "pip install torch --index-url https://download.pytorch.org/whl/cpu "
        "(the CPU build; see pytorch.org for CUDA builds)"
    )

    @classmethod
    def create(cls, device: str | None = None) -> TorchBackend:
        torch = cls.import_module()
        try:
            dev = torch.device(device or "cpu")
        except RuntimeError as exc:
            raise BackendError(f"torch has no device {device!r} ({exc})") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(
                f"backend 'torch:{device}' needs a CUDA GPU, and PyTorch sees none "
                "here; use 'torch' (CPU) instead"
            )
        if dev.type == "cuda":
            dev = _cuda_device(torch, dev, device)
        from array_api_compat import torch as xp

        return cls(xp, dev, torch)

    @property
    def device_label(self) -> str:
        return str(self.device)

    def describe_devices(self) -> list[str]:
        cuda = self.module.cuda
        if self.device.type != "cuda":
            return []
        return [f"torch:cuda:{i}  {cuda.get_device_name(i)}" for i in range(cuda.device_count())]

    @property
    def accelerator(self) -> bool:
        return self.device.type == "cuda"

    def set_threads(self, threads: int) -> None:
        self.module.set_num_threads(int(threads))

    def synchronize(self) -> None:
        if self.accelerator:
            self.module.cuda.synchronize(self.device)

    def owns(self, a) -> bool:
        return isinstance(a, self.module.Tensor)

    def from_host(self, a: np.ndarray) -> np.ndarray:
        # torch refuses to wrap read-only memory (np.frombuffer, mmap)
        return a.copy() if isinstance(a, np.ndarray) and not a.flags.writeable else a

    @staticmethod
    def array_to_host(a) -> np.ndarray:
        return a.detach().cpu().numpy()

    def random(self, seed: int | None = None) -> TorchRandom:
        return TorchRandom(self, seed)


def _cuda_device(torch: Any, dev: Any, spec: str | None) -> Any:
    """``cuda`` as ``cuda:<current device>``: every CUDA tensor reports its device with an
    index, and ``torch.device("cuda")`` compares unequal to ``cuda:0``."""
    index = torch.cuda.current_device() if dev.index is None else dev.index
    count = torch.cuda.device_count()
    if not 0 <= index < count:
        raise BackendError(f"torch has no device {spec!r}: this machine has {count} CUDA GPU(s)")
    return torch.device("cuda", index)


class TorchRandom:
    """PyTorch's own generator on the tensor's device (CPU or CUDA)."""

    def __init__(self, backend: TorchBackend, seed: int | None):
        self.backend = backend
        self.generator = backend.module.Generator(device=backend.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    def get_state(self) -> dict:
        """The generator's position (a host uint8 array), for checkpoints."""
        return {"kind": "state", "state": np.array(self.generator.get_state().numpy())}

    def set_state(self, state: dict) -> None:
        self.generator.set_state(self.backend.module.from_numpy(np.array(state["state"], dtype=np.uint8)))

    def permutation(self, n: int) -> Array:
        torch = self.backend.module
        return torch.randperm(n, generator=self.generator, device=self.backend.device)

    def uniform(self, shape: Shape, low: float = 0.0, high: float = 1.0, dtype=None) -> Array:
        out = self.backend.module.rand(
            tuple(shape),
            generator=self.generator,
            device=self.backend.device,
            dtype=self.backend.float_dtype(dtype),
        )
        return out * (high - low) + low if (low, high) != (0.0, 1.0) else out

    def normal(self, shape: Shape, mean: float = 0.0, std: float = 1.0, dtype=None) -> Array:
        out = self.backend.module.randn(
            tuple(shape),
            generator=self.generator,
            device=self.backend.device,
            dtype=self.backend.float_dtype(dtype),
        )
        return out * std + mean if (mean, std) != (0.0, 1.0) else out
