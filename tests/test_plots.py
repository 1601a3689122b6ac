"""The figures are written as non-empty PNG files; a missing matplotlib gives a clear error."""

import sys

import numpy as np
import pytest

from anynet import plots

PNG = b"\x89PNG\r\n\x1a\n"
HISTORY = {
    "loss": [0.9, 0.5, 0.3],
    "accuracy": [0.7, 0.85, 0.9],
    "val_loss": [0.6, 0.45, 0.4],
    "val_accuracy": [0.8, 0.86, 0.88],
}


def _sample(k=4, n=60, seed=0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, k, n))
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return y_true, y_pred, images


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG)


@pytest.fixture(autouse=True)
def _needs_matplotlib():
    pytest.importorskip("matplotlib")


def test_report_plots_written(tmp_path):
    y_true, y_pred, images = _sample()
    paths = plots.save_report_plots(tmp_path / "out", HISTORY, y_true, y_pred, images, classes="abcd")
    assert [p.name for p in paths] == ["history.png", "confusion.png", "misclassified.png"]
    assert all(_is_png(p) for p in paths)


def test_each_figure(tmp_path):
    y_true, y_pred, images = _sample(k=47, n=300)
    classes = [chr(c) for c in range(ord("A"), ord("A") + 47)]
    fig = plots.plot_confusion_matrix(y_true, y_pred, classes, tmp_path / "cm47.png")
    assert fig.axes and _is_png(tmp_path / "cm47.png")
    probs = np.full((300, 47), 1 / 47)
    plots.plot_misclassified(
        images.reshape(300, 784),
        y_true,
        y_pred,
        classes,
        tmp_path / "wrong.png",
        probabilities=probs,
        max_images=10,
    )
    assert _is_png(tmp_path / "wrong.png")
    plots.plot_history({"loss": [1.0], "accuracy": [0.5]}, tmp_path / "h.png")  # no validation
    assert _is_png(tmp_path / "h.png")
    # nothing misclassified still gives a picture
    plots.plot_misclassified(images[:5], y_true[:5], y_true[:5], path=tmp_path / "none.png")
    assert _is_png(tmp_path / "none.png")


def test_pyplot_state_untouched(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    plots.plot_history(HISTORY, tmp_path / "h.png")
    assert matplotlib.get_backend() == backend
    assert "matplotlib.pyplot" not in sys.modules or not __import__("matplotlib.pyplot").pyplot.get_fignums()


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        plots.plot_history({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="must match"):
        plots.plot_misclassified(np.zeros((3, 28, 28)), [0, 1], [0, 1])


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install 'anynet\[plots\]'"):
        plots.plot_history(HISTORY)


def test_filters_and_feature_maps(tmp_path):
    import anynet

    net = anynet.models.cnn((4, 6), dense=8, backend="numpy", seed=0)
    image = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    plots.plot_filters(net, tmp_path / "f.png")
    plots.plot_feature_maps(net, image, tmp_path / "m.png")
    plots.plot_feature_maps(net, image, tmp_path / "m2.png", layer=6)  # after the second Conv2D
    assert all(_is_png(tmp_path / name) for name in ("f.png", "m.png", "m2.png"))
    fig = plots.plot_filters(net, conv=1)
    assert "6 learned 3x3 filters" in fig.texts[0].get_text()
    mlp = anynet.mlp((4,), num_classes=2, backend="numpy", input_shape=(28, 28))
    with pytest.raises(ValueError, match="no built Conv2D"):
        plots.plot_filters(mlp)
    with pytest.raises(ValueError, match="no feature maps"):
        plots.plot_feature_maps(net, image, layer=len(net.layers) - 1)
