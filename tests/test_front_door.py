"""A newcomer's first hour (issue 14): what the README promises, the documentation site's
pages and figures, and model files that follow the umask."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import anynet

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_test_command_is_the_one_ci_runs():
    command = "python -m pytest -q -rs"
    assert f"\n{command}\n" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    runs = [line.strip() for line in ci.splitlines() if line.strip().startswith("python -m pytest")]
    assert runs == [command]
    assert "mkdocs build --strict" in ci and ".[test,docs]" in ci


def test_readme_names_what_a_newcomer_needs():
    for needed in ("venv", "ANYNET_HOME", "ANYNET_CACHE_DIR", "ANYNET_DATA_DIR", "--data-dir", "--quiet"):
        assert needed in README, needed
    assert "--verbose" in README or "-v 2" in README
    assert "--threads" in README and "download.pytorch.org/whl/cpu" in README


def test_one_accuracy_figure_for_the_default_run():
    """The default `anynet train` is quoted with one figure wherever it is quoted."""
    from anynet.cli.entry import EPILOG

    texts = [README, (ROOT / "docs" / "index.md").read_text(encoding="utf-8"), EPILOG]
    figures = {m for t in texts for m in re.findall(r"defaults?\)?[^\n|]*?\| (9\d\.\d+)%", t)}
    figures |= {m for t in texts for m in re.findall(r"15 epochs: ~?(9\d\.\d+)%", t)}
    figures |= set(re.findall(r"default MLP on MNIST \(about (9\d\.\d+)%", EPILOG))
    assert len({f[:4] for f in figures}) == 1, figures


def test_site_pages_and_figures():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = re.findall(r":\s*([\w-]+\.md)\s*$", config, re.MULTILINE)
    for page in pages:
        assert (ROOT / "docs" / page).is_file(), page
    for page in ("index.md", "training.md", "data.md", "serving.md", "backends.md", "math.md"):
        assert page in pages
    assert "mkdocstrings" in config and "strict: true" in config
    convolution = (ROOT / "docs" / "convolution.md").read_text(encoding="utf-8")
    for figure in ("filters", "feature-maps", "history", "confusion", "misclassified"):
        png = ROOT / "docs" / "figures" / f"{figure}.png"
        assert f"figures/{figure}.png" in convolution
        assert png.is_file() and png.stat().st_size < 200_000, png
    assert "![the drawing page](drawing-page.png)" in (ROOT / "docs" / "serving.md").read_text()


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_saved_model_follows_the_umask(tmp_path, umask):
    net = anynet.mlp((4,), num_classes=2, backend="numpy", input_shape=(28, 28))
    old = os.umask(umask)
    try:
        path = anynet.save_model(net, tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
