"""anynet.predict: top-k answers and the files -> predictions path used by `anynet predict`."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from anynet import imageprep
from anynet.predict import Prediction, class_names, predict_files, show_image, top_k

from .helpers import mnist_mlp


class FixedModel:
    """predict_proba returns the same probabilities for every image."""

    def __init__(self, probs, classes="abcd"):
        self.probs = np.asarray(probs, dtype=np.float32)
        self.classes = tuple(classes) if classes is not None else None
        self.num_outputs = len(self.probs)
        self.seen = None

    def predict_proba(self, x):
        self.seen = x
        return np.tile(self.probs, (len(x), 1))


def drawing(kind: str, size=280, width=18) -> Image.Image:
    img = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(img)
    s = size / 280
    if kind == "1":
        d.line([(140 * s, 40 * s), (150 * s, 240 * s)], fill=0, width=width)
    elif kind == "0":
        d.ellipse([85 * s, 40 * s, 195 * s, 240 * s], outline=0, width=width)
    elif kind == "7":
        d.line([(80 * s, 50 * s), (200 * s, 50 * s), (120 * s, 240 * s)], fill=0, width=width, joint="curve")
    return img


def test_top_k_orders_and_names():
    m = FixedModel([0.1, 0.6, 0.05, 0.25])
    images = np.zeros((3, 28, 28), dtype=np.float32)
    out = top_k(m, images, k=3)
    assert out == [[("b", pytest.approx(0.6)), ("d", pytest.approx(0.25)), ("a", pytest.approx(0.1))]] * 3
    assert m.seen.shape == (3, 784) and m.seen.dtype == np.float32
    assert len(top_k(m, images[0], k=10)[0]) == 4  # one image; k capped at the class count
    with pytest.raises(ValueError, match="k must"):
        top_k(m, images, k=0)
    with pytest.raises(ValueError, match="28, 28"):
        top_k(m, np.zeros((2, 10, 10)))


def test_class_names_default_to_indices():
    assert class_names(FixedModel([0.5, 0.5], classes=None)) == ("0", "1")
    with pytest.raises(ValueError, match="classes"):
        top_k(FixedModel([0.5, 0.5], classes="abc"), np.zeros((28, 28)))


def test_predict_files_reports_each_file(tmp_path):
    good = tmp_path / "seven.png"
    drawing("7").save(good)
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    paths = [good, blank, text, tmp_path / "missing.png"]
    results = predict_files(FixedModel([0.1, 0.6, 0.05, 0.25]), paths, k=2)
    assert [r.path for r in results] == [str(p) for p in paths]
    assert results[0].error is None and results[0].top[0] == ("b", pytest.approx(0.6))
    assert results[0].label == "b" and results[0].confidence == pytest.approx(0.6)
    assert results[0].image28.shape == (28, 28)
    assert "no ink" in results[1].error
    assert "not an image" in results[2].error
    assert "no such file" in results[3].error
    assert "b (60.0%)" in str(results[0]) and "error" in str(results[3])


def test_predict_files_show_writes_side_by_side_pictures(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    drawing("7").save(a / "digit.png")
    drawing("1").convert("RGB").save(b / "digit.jpg")  # same stem, other folder
    show = tmp_path / "seen"
    results = predict_files(
        FixedModel([0.1, 0.6, 0.05, 0.25]), [a / "digit.png", b / "digit.jpg"], show_dir=show
    )
    names = sorted(p.name for p in show.iterdir())
    assert names == ["digit-2.png", "digit.png"]
    assert {r.shown for r in results} == {str(show / n) for n in names}
    pic = Image.open(show / "digit.png")
    assert pic.width > 2 * 280 - 10 and pic.height >= 280  # original + the 28x28 enlarged
    right = np.asarray(pic.convert("L"))[10:290, -290:-10]
    expected = np.kron(imageprep.prepare(a / "digit.png"), np.ones((10, 10)))
    assert np.abs(right / 255.0 - expected).mean() < 0.01


def test_show_image_from_array():
    img28 = imageprep.prepare(drawing("0"))
    pic = show_image(img28, img28, "caption")
    assert pic.mode == "RGB" and pic.height > 280


def test_prediction_str():
    p = Prediction("x.png", top=[("3", 0.9), ("8", 0.05)])
    assert str(p) == "x.png: 3 (90.0%)  [8 5.0%]"


def test_drawn_digits_are_read_correctly(data_dir):
    model, _data = mnist_mlp(data_dir)
    for kind in "107":
        for size, width in ((280, 18), (600, 30), (200, 6)):
            top = top_k(model, imageprep.prepare(drawing(kind, size, width)), k=3)[0]
            assert top[0][0] == kind, (kind, size, width, top)


def test_model_reads_mnist_through_imageprep(data_dir):
    model, data = mnist_mlp(data_dir)
    images = data.test.images[:1000]
    labels = data.test.labels[:1000]
    raw = np.array([t[0][0] for t in top_k(model, images.astype(np.float32) / 255, k=1)])
    prepped = np.array([t[0][0] for t in top_k(model, imageprep.prepare_batch(images), k=1)])
    truth = np.array([data.classes[i] for i in labels])
    assert (raw == truth).mean() > 0.94
    assert (prepped == truth).mean() >= (raw == truth).mean() - 0.01
