"""Every Python example in README.md and docs/ runs, as written, in the order of its page (one
namespace per page), so a documented name or argument that does not exist fails the suite.

Training examples are run short: ``anynet.train`` is called with at most 1 epoch on at most
3,000 training images. What is checked here is that the documented code runs end to end; the
accuracies the pages quote are measured by ``benchmarks/accuracy.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import anynet

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def test_the_pages_hold_python_examples():
    assert sum(len(_blocks(p)) for p in PAGES) >= 4, "the example collector found nothing"


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_python_examples_run(page, data_dir, tmp_path, monkeypatch):
    real_train = anynet.train

    def short_train(*args, **kwargs):
        kwargs["epochs"] = min(kwargs.get("epochs") or 1, 1)
        kwargs["limit"] = min(kwargs.get("limit") or 3000, 3000)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(anynet, "train", short_train)
    monkeypatch.setenv("ANYNET_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for i, code in enumerate(_blocks(page)):
        try:
            exec(compile(code, f"{page.name} example {i + 1}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(
                f"{page.relative_to(ROOT)}, example {i + 1} failed: {type(exc).__name__}: {exc}\n{code}"
            ) from exc
