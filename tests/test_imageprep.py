"""anynet.imageprep: a user's picture -> a 28x28 MNIST-style array."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from anynet import imageprep
from anynet.imageprep import EmptyImageError, ImagePrepError, prepare, prepare_batch

# --------------------------------------------------------------------------- helpers


def paper(size=(300, 300), color=255, mode="L"):
    return Image.new(mode, size, color)


def draw(kind: str, size=300, width=18, ink=0, background=255) -> Image.Image:
    """A character drawn with Pillow strokes, dark ink on light paper by default."""
    img = paper((size, size), background)
    d = ImageDraw.Draw(img)
    s = size / 300
    if kind == "1":
        d.line([(150 * s, 50 * s), (150 * s, 250 * s)], fill=ink, width=width)
    elif kind == "0":
        d.ellipse([95 * s, 50 * s, 205 * s, 250 * s], outline=ink, width=width)
    elif kind == "7":
        d.line(
            [(90 * s, 60 * s), (210 * s, 60 * s), (130 * s, 250 * s)], fill=ink, width=width, joint="curve"
        )
    else:
        raise ValueError(kind)
    return img


def bbox(a, level=0.0):
    rows = np.flatnonzero((a > level).any(axis=1))
    cols = np.flatnonzero((a > level).any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def centre_of_mass(a):
    m = a.sum()
    r = np.arange(a.shape[0])
    return (a.sum(axis=1) * r).sum() / m, (a.sum(axis=0) * r).sum() / m


def png_bytes(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


# --------------------------------------------------------------------------- output contract


def test_output_is_float32_28x28_in_unit_range():
    out = prepare(draw("7"))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.max() == pytest.approx(1.0, abs=0.02)
    assert out[0].sum() == 0 and out[-1].sum() == 0  # MNIST: a margin around the box


def test_dark_ink_is_inverted_and_matches_bright_ink():
    dark = prepare(draw("7"))
    bright = prepare(draw("7", ink=255, background=0))
    assert dark[14].max() > 0.5  # ink is bright in the result
    np.testing.assert_allclose(dark, bright, atol=1e-5)


def test_invert_can_be_forced():
    img = np.asarray(draw("1"))
    auto = prepare(img)
    np.testing.assert_allclose(prepare(img, invert=True), auto, atol=1e-6)
    # invert=False says the ink is bright: nothing here is brighter than the paper
    with pytest.raises(EmptyImageError):
        prepare(img, invert=False)
    np.testing.assert_allclose(prepare(255 - img, invert=False), auto, atol=1e-6)
    with pytest.raises(ValueError, match="invert"):
        prepare(img, invert="yes")


def test_crop_and_scale_longer_side_to_20_keeping_aspect_ratio():
    for w, h in [(40, 100), (100, 40), (60, 30), (150, 150)]:
        img = paper()
        ImageDraw.Draw(img).rectangle([17, 31, 17 + w - 1, 31 + h - 1], fill=0)
        out = prepare(img)
        r0, r1, c0, c1 = bbox(out, 0.5)
        assert max(r1 - r0, c1 - c0) == 20, (w, h)
        assert (c1 - c0) / (r1 - r0) == pytest.approx(w / h, rel=0.1), (w, h)


def test_small_drawing_is_scaled_up_to_20():
    img = paper((64, 64))
    ImageDraw.Draw(img).line([(30, 25), (30, 35)], fill=0, width=2)
    r0, r1, _, _ = bbox(prepare(img), 0.3)
    assert r1 - r0 in (20, 21)


@pytest.mark.parametrize("where", [(20, 20), (200, 30), (30, 210), (180, 190)])
def test_centre_of_mass_moves_to_14_14_wherever_the_character_is(where):
    img = paper()
    x, y = where
    ImageDraw.Draw(img).ellipse([x, y, x + 60, y + 80], outline=0, width=10)
    cy, cx = centre_of_mass(prepare(img))
    assert abs(cy - 14) <= 0.5 + 1e-6 and abs(cx - 14) <= 0.5 + 1e-6


def test_centring_never_pushes_ink_out_of_the_field():
    # a lopsided shape: a long thin bar and a heavy blob at one end
    img = paper((400, 400))
    d = ImageDraw.Draw(img)
    d.line([(20, 200), (380, 200)], fill=0, width=6)
    d.ellipse([20, 140, 140, 260], fill=0)
    out = prepare(img)
    _r0, _r1, c0, c1 = bbox(out)
    assert c1 - c0 >= 20  # the full width is still there, nothing was cut off
    assert c0 >= 0 and c1 <= 28
    assert centre_of_mass(out)[1] < 14  # it could not be centred fully


def test_result_depends_little_on_the_picture_size():
    small = prepare(draw("0", size=150, width=9))
    large = prepare(draw("0", size=900, width=54))
    assert np.abs(small - large).mean() < 0.03


def test_mnist_digits_pass_through_nearly_unchanged(data_dir):
    from anynet.data import load

    test = load("mnist", data_dir=data_dir, download=False, progress=False).test
    digits = test.images[:500]
    out = prepare_batch(digits)
    original = digits.astype(np.float32) / 255.0
    diff = np.abs(out - original)
    assert diff.mean() < 0.002
    assert (diff.max(axis=(1, 2)) < 0.15).mean() > 0.98
    # the same again as float input in [0, 1]
    np.testing.assert_allclose(prepare(original[0]), out[0], atol=1e-6)


def test_emnist_style_uses_a_24px_box_centred_by_the_box():
    img = paper()
    ImageDraw.Draw(img).polygon([(30, 30), (30, 150), (90, 150)], fill=0)  # lopsided mass
    out = prepare(img, style="emnist")
    r0, r1, c0, c1 = bbox(out, 0.5)
    assert r1 - r0 == 24 and (r0 + r1) / 2 == pytest.approx(14, abs=0.5)
    assert (c0 + c1) / 2 == pytest.approx(14, abs=0.5)
    assert centre_of_mass(out)[1] < 13  # the box, not the mass, is centred
    with pytest.raises(ValueError, match="style"):
        prepare(img, style="kmnist")


def test_style_for_reads_the_training_dataset():
    from anynet.record import ModelInfo, Preprocessing

    class M:
        info = ModelInfo()

    m = M()
    assert imageprep.style_for(m) == "mnist"
    m.info = ModelInfo(dataset="emnist-balanced")
    assert imageprep.style_for(m) == "emnist"
    m.info = ModelInfo(preprocessing=Preprocessing.for_dataset("emnist-standin"))
    assert imageprep.style_for(m) == "emnist"
    m.info = ModelInfo(dataset="mnist")
    assert imageprep.style_for(m) == "mnist"
    assert imageprep.style_for(object()) == "mnist"


def test_emnist_characters_pass_through_close_to_unchanged(data_dir):
    from anynet.data import load

    try:
        test = load("emnist-standin", data_dir=data_dir, download=False, progress=False).test
    except Exception as e:  # the EMNIST files are optional
        pytest.skip(f"no EMNIST data: {e}")
    chars = test.images[:300]
    out = prepare_batch(chars, style="emnist")
    assert np.abs(out - chars / 255.0).mean() < 0.03
    assert np.abs(prepare_batch(chars) - chars / 255.0).mean() > 0.04  # MNIST framing differs


# --------------------------------------------------------------------------- drawn characters


def test_drawn_one_is_tall_and_thin():
    out = prepare(draw("1"))
    r0, r1, c0, c1 = bbox(out, 0.3)
    assert r1 - r0 == 20 and c1 - c0 <= 5
    assert abs(centre_of_mass(out)[1] - 14) <= 0.5


def test_drawn_zero_is_a_ring_with_a_hole():
    out = prepare(draw("0"))
    r0, r1, c0, c1 = bbox(out, 0.3)
    assert r1 - r0 == 20 and 8 <= c1 - c0 <= 14
    assert out[14, 14] < 0.1  # the hole
    assert out[r0 + 1, 14] > 0.5 and out[r1 - 2, 14] > 0.5  # top and bottom of the ring
    assert out[14, c0 + 1] > 0.5 and out[14, c1 - 2] > 0.5  # its sides


def test_drawn_seven_has_a_bar_on_top_and_a_diagonal_below():
    out = prepare(draw("7"))
    r0, r1, c0, c1 = bbox(out, 0.3)
    top = out[r0 : r0 + 3, c0:c1].max(axis=0)
    assert (top > 0.5).mean() > 0.8  # the bar spans the width
    bottom = out[r1 - 3 : r1, c0:c1].max(axis=0)
    assert (bottom > 0.5).mean() < 0.5  # only the foot of the diagonal at the bottom
    # the diagonal runs from the right at the top to the left at the bottom
    mid = [np.argmax(out[r]) for r in range(r0 + 5, r1 - 2)]
    assert mid[0] > mid[-1]


def test_fine_pen_strokes_are_thickened_and_bold_strokes_are_not():
    thin = prepare(draw("1", size=600, width=3))
    bold = prepare(draw("1", size=300, width=18))
    for out in (thin, bold):
        width = (out[14] > 0.3).sum()
        assert 2 <= width <= 4, width


# --------------------------------------------------------------------------- kinds of input


def test_file_path_bytes_file_object_and_pil_agree(tmp_path):
    img = draw("7")
    path = tmp_path / "seven.png"
    img.save(path)
    ref = prepare(img)
    for source in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes()), np.asarray(img)):
        np.testing.assert_allclose(prepare(source), ref, atol=1e-6)


def test_jpeg_photo_like_input(tmp_path):
    img = draw("0").convert("RGB")
    path = tmp_path / "zero.jpg"
    img.save(path, quality=20)
    out, clean = prepare(path), prepare(draw("0"))
    assert np.corrcoef(out.ravel(), clean.ravel())[0, 1] > 0.9
    assert out[14, 14] < 0.1 and np.abs(np.array(bbox(out, 0.3)) - bbox(clean, 0.3)).max() <= 1


def test_rgba_transparent_background_is_white_paper():
    rgba = Image.new("RGBA", (200, 200), (0, 0, 0, 0))  # transparent *black*
    ImageDraw.Draw(rgba).line([(100, 30), (100, 170)], fill=(0, 0, 0, 255), width=12)
    out = prepare(rgba)
    assert bbox(out, 0.3)[1] - bbox(out, 0.3)[0] == 20
    np.testing.assert_allclose(prepare(np.asarray(rgba)), out, atol=1e-5)
    with pytest.raises(EmptyImageError):
        prepare(Image.new("RGBA", (50, 50), (0, 0, 0, 0)))


def test_colour_ink_on_tinted_paper():
    img = Image.new("RGB", (240, 240), (250, 240, 200))
    ImageDraw.Draw(img).line([(120, 30), (120, 210)], fill=(30, 40, 160), width=14)
    out = prepare(img)
    assert bbox(out, 0.3)[1] - bbox(out, 0.3)[0] == 20


def test_uneven_grey_noisy_paper_is_ignored():
    rng = np.random.default_rng(0)
    clean = np.asarray(draw("7"), dtype=np.float32) / 255.0
    yy, xx = np.mgrid[0:300, 0:300] / 300
    light = 0.8 - 0.2 * (yy + xx) / 2
    photo = np.clip(light * (0.2 + 0.8 * clean) + rng.normal(0, 0.03, clean.shape), 0, 1)
    out = prepare(photo.astype(np.float32))
    assert np.abs(out - prepare(draw("7"))).mean() < 0.03


def test_specks_away_from_the_character_do_not_change_the_crop():
    img = draw("1", size=400, width=24)
    d = ImageDraw.Draw(img)
    d.point([(10, 10), (390, 15), (20, 380), (385, 390)], fill=0)
    np.testing.assert_allclose(prepare(img), prepare(draw("1", size=400, width=24)), atol=1e-5)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int64, np.float32, np.float64, bool])
def test_array_dtypes(dtype):
    a = np.zeros((50, 40), dtype=np.float64)
    a[10:40, 18:22] = 1.0
    if dtype == np.uint8:
        a = a * 255
    elif dtype == np.uint16:
        a = a * 65535
    elif dtype == np.int64:
        a = a * 255
    out = prepare(a.astype(dtype))
    assert out.shape == (28, 28) and out.dtype == np.float32 and out.max() > 0.9


def test_rgb_and_single_channel_arrays():
    g = np.asarray(draw("1"))
    ref = prepare(g)
    np.testing.assert_allclose(prepare(np.stack([g] * 3, axis=-1)), ref, atol=1e-5)
    np.testing.assert_allclose(prepare(g[..., None]), ref, atol=1e-6)


def test_torch_tensor_input():
    torch = pytest.importorskip("torch")
    g = np.asarray(draw("1"))
    np.testing.assert_allclose(prepare(torch.from_numpy(g.copy())), prepare(g), atol=1e-6)


def test_prepare_batch():
    batch = prepare_batch([draw("1"), draw("0"), np.asarray(draw("7"))])
    assert batch.shape == (3, 28, 28) and batch.dtype == np.float32
    stack = np.stack([np.asarray(draw(k)) for k in "107"])
    np.testing.assert_allclose(prepare_batch(stack), batch, atol=1e-6)
    assert prepare_batch([]).shape == (0, 28, 28)
    with pytest.raises(EmptyImageError, match="image 1"):
        prepare_batch([draw("1"), paper()])


# --------------------------------------------------------------------------- no ink, bad input


@pytest.mark.parametrize(
    "image",
    [
        paper(),  # blank white
        paper(color=0),  # all black
        paper(color=128),  # uniform grey
        np.full((30, 30), 0.5, dtype=np.float32),
        np.random.default_rng(0).uniform(0.49, 0.51, (100, 100)).astype(np.float32),  # faint noise
        np.zeros((1, 1), dtype=np.uint8),
    ],
    ids=["white", "black", "grey", "grey-array", "faint-noise", "1x1"],
)
def test_no_ink_raises_empty_image_error(image):
    with pytest.raises(EmptyImageError, match="no ink"):
        prepare(image)
    assert issubclass(EmptyImageError, ValueError)


def test_unreadable_inputs_give_clear_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(png_bytes(draw("1"))[:200])
    cases = {
        tmp_path / "missing.png": "no such file",
        tmp_path: "directory",
        text: "not an image",
        truncated: "decode",
        b"": "empty",
        b"GIF89a garbage": "not an image|decode",
        None: "cannot read an image",
        12: "cannot read an image",
    }
    for source, message in cases.items():
        with pytest.raises(ImagePrepError, match=message):
            prepare(source)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((10, 10), np.nan, dtype=np.float32), "NaN"),
        (np.array([[0.0, np.inf]]), "NaN or infinite"),
        (np.zeros((2, 3, 4, 5)), "shape"),
        (np.zeros((10, 10, 2)), "shape"),
        (np.zeros(10), "shape"),
        (np.zeros((0, 10)), "no pixels"),
        (np.array([[0.0, 2.0]]), r"\[0, 1\]"),
        (np.array([[-1, 5]]), "0..255"),
        (np.array([["a", "b"]]), "dtype"),
        (np.array([[1 + 1j]]), "dtype"),
    ],
)
def test_bad_arrays_give_clear_errors(array, message):
    with pytest.raises(ImagePrepError, match=message):
        prepare(array)


def test_too_many_pixels_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(imageprep, "MAX_PIXELS", 10_000)
    with pytest.raises(ImagePrepError, match="too large"):
        prepare(png_bytes(paper((200, 200))))


def test_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        prepare(draw("1"), threshold=1.5)


def test_to_png_bytes_round_trip():
    out = prepare(draw("7"))
    back = np.asarray(Image.open(io.BytesIO(imageprep.to_png_bytes(out))), dtype=np.float32) / 255
    np.testing.assert_allclose(back, out, atol=1 / 255)
    assert imageprep.to_pil(out, scale=10).size == (280, 280)
