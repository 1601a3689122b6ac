"""The GPU path, checked without a GPU: the GPU check cannot report success when a contestant
failed, and ``torch:cuda`` names the device its tensors report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from anynet.backend import BackendError

ROOT = Path(__file__).resolve().parents[1]
VERDICT = ROOT / "benchmarks" / "gpu_verdict.py"


def verdict(tmp_path, result) -> subprocess.CompletedProcess:
    path = tmp_path / "speed.json"
    path.write_text(json.dumps(result))
    return subprocess.run([sys.executable, str(VERDICT), str(path)], capture_output=True, text=True)


def complete() -> dict:
    return {
        f"{who} b{b}": {"wall": 1.0} for who in ("anynet (cupy)", "PyTorch eager (cuda)") for b in (128, 8192)
    }


def test_a_complete_run_passes(tmp_path):
    assert verdict(tmp_path, complete() | {"device": "NVIDIA H200"}).returncode == 0


def test_an_errored_contestant_fails_the_check(tmp_path):
    run = verdict(tmp_path, complete() | {"cupy_error": "CUDARuntimeError: out of memory"})
    assert run.returncode == 1 and "cupy_error: CUDARuntimeError" in run.stderr


def test_a_missing_contestant_or_file_fails_the_check(tmp_path):
    partial = complete()
    del partial["PyTorch eager (cuda) b8192"]
    run = verdict(tmp_path, partial)
    assert run.returncode == 1 and "no result for PyTorch eager (cuda) b8192" in run.stderr
    missing = subprocess.run([sys.executable, str(VERDICT), str(tmp_path / "none.json")], capture_output=True)
    assert missing.returncode == 1


def test_the_gpu_check_script_uses_the_verdict():
    script = (ROOT / "benchmarks" / "gpu_check.sh").read_text()
    assert "benchmarks/gpu_verdict.py" in script and '[ "$contestants" = 0 ]' in script


def test_torch_cuda_means_the_current_device():
    """Every CUDA tensor reports ``cuda:<index>``, and ``torch.device("cuda")`` compares unequal
    to it: the backend's device carries the current index (checked with a stand-in CUDA)."""
    torch = pytest.importorskip("torch")
    from anynet.backend.torch import _cuda_device

    cuda = SimpleNamespace(current_device=lambda: 1, device_count=lambda: 2)
    fake = SimpleNamespace(cuda=cuda, device=torch.device)
    assert _cuda_device(fake, torch.device("cuda"), "cuda") == torch.device("cuda", 1)
    assert _cuda_device(fake, torch.device("cuda:0"), "cuda:0") == torch.device("cuda", 0)
    with pytest.raises(BackendError, match="2 CUDA GPU"):
        _cuda_device(fake, torch.device("cuda:5"), "cuda:5")
