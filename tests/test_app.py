"""The web app's JSON API (FastAPI TestClient): good requests, and bad ones that must get a
4xx with a message while the server keeps serving."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

with warnings.catch_warnings():  # starlette's note about httpx vs httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from PIL import Image, ImageDraw

from anynet.app import paths, server
from anynet.models import mlp
from anynet.record import ModelInfo

from .helpers import data_url

BASE = "http://127.0.0.1"  # the app answers only to local host names by default


@pytest.fixture(scope="module")
def model():
    """A small untrained network: the API's behaviour does not depend on its accuracy."""
    net = mlp(
        hidden=(16,), num_classes=10, classes="0123456789", backend="numpy", seed=1, input_shape=(28, 28)
    )
    return net


@pytest.fixture(scope="module")
def client(model):
    with TestClient(server.create_app(model), base_url=BASE) as c:
        yield c


def png(img: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def seven(size=280) -> Image.Image:
    img = Image.new("L", (size, size), 255)
    ImageDraw.Draw(img).line([(70, 60), (210, 60), (120, 230)], fill=0, width=18)
    return img


def assert_good(r, k=5):
    assert r.status_code == 200, r.text
    body = r.json()
    assert next(c["label"] for c in body["top"]) == body["prediction"]
    assert len(body["top"]) == k
    probs = [c["probability"] for c in body["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert body["confidence"] == probs[0]
    assert all(c["label"] in "0123456789" for c in body["top"])
    assert body["image28"].startswith("data:image/png;base64,")
    seen = Image.open(io.BytesIO(base64.b64decode(body["image28"].split(",", 1)[1])))
    assert seen.size == (28, 28)
    return body


def assert_still_serving(client):
    assert client.get("/api/health").json() == {"status": "ok"}
    assert_good(client.post("/api/predict", json={"image": data_url(png(seven()))}))


# --------------------------------------------------------------------------- good requests


def test_health_model_page_and_schema(client):
    assert client.get("/api/health").json() == {"status": "ok"}
    info = client.get("/api/model").json()
    assert info["classes"] == list("0123456789") and info["num_classes"] == 10
    assert info["parameters"] == 28 * 28 * 16 + 16 + 16 * 10 + 10
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for asset in ("/static/app.js", "/static/style.css"):
        r = client.get(asset)
        assert r.status_code == 200 and "http" not in r.text
    assert client.get("/docs").status_code == 404  # Swagger UI would load a CDN
    schema = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/predict/upload", "/api/health", "/api/model"} <= set(schema["paths"])


def test_predict_json_data_url(client, model):
    body = assert_good(client.post("/api/predict", json={"image": data_url(png(seven()))}))
    # the same answer as the library gives for the same picture
    from anynet import imageprep
    from anynet.predict import top_k

    expected = top_k(model, imageprep.prepare(seven()), k=5)[0]
    assert [(c["label"], pytest.approx(c["probability"], abs=1e-6)) for c in body["top"]] == [
        (c, pytest.approx(p, abs=1e-6)) for c, p in expected
    ]


def test_predict_variants(client):
    raw = base64.b64encode(png(seven())).decode()
    assert_good(client.post("/api/predict", json={"image": raw}))  # bare base64
    assert_good(client.post("/api/predict", json={"image": raw, "k": 3}), k=3)
    assert_good(client.post("/api/predict", json={"image": raw, "k": 50}), k=10)  # all classes
    assert_good(client.post("/api/predict", json={"image": raw, "invert": True}))
    assert_good(client.post("/api/predict", json={"image": data_url(png(seven(), "JPEG"), "image/jpeg")}))
    # a canvas export: transparent background, black strokes
    rgba = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([(140, 40), (140, 240)], fill=(0, 0, 0, 255), width=18)
    assert_good(client.post("/api/predict", json={"image": data_url(png(rgba))}))


def test_predict_upload(client):
    r = client.post("/api/predict/upload", files={"file": ("seven.png", png(seven()), "image/png")})
    assert_good(r)
    r = client.post(
        "/api/predict/upload",
        data={"k": "2", "invert": "true"},
        files={"file": ("seven.jpg", png(seven(), "JPEG"), "image/jpeg")},
    )
    assert_good(r, k=2)


# --------------------------------------------------------------------------- bad requests


BIG = b"\x89PNG" + b"\0" * (server.MAX_IMAGE_BYTES + 10)

BAD_JSON = {
    # the schema's pattern for "image" refuses these as invalid fields (422)
    "not base64": ({"image": "data:image/png;base64,@@@not base64@@@"}, 422, "base64"),
    "bad padding": ({"image": "abc"}, 422, "base64"),
    "whitespace": ({"image": "iVBO Rw0K"}, 422, "base64"),
    "empty image": ({"image": ""}, 422, "base64"),
    "empty data url": ({"image": "data:image/png;base64,"}, 422, "base64"),
    "not base64 data url": ({"image": "data:image/png,rawdata"}, 422, "base64"),
    "malformed data url": ({"image": "data:;;;"}, 422, "data URL"),
    "text data url": ({"image": data_url(b"hello", "text/plain")}, 415, "not an image"),
    "not an image": ({"image": base64.b64encode(b"hello world").decode()}, 415, "not an image"),
    "truncated png": ({"image": data_url(png(seven())[:300])}, 400, "decode"),
    "blank canvas": ({"image": data_url(png(Image.new("L", (280, 280), 255)))}, 422, "no ink"),
    "transparent canvas": ({"image": data_url(png(Image.new("RGBA", (280, 280))))}, 422, "no ink"),
    "missing field": ({"picture": "x"}, 422, "image"),
    "wrong type": ({"image": 12}, 422, "image"),
    "k zero": ({"image": "x", "k": 0}, 422, "k"),
    "k huge": ({"image": "x", "k": 10**6}, 422, "k"),
    "bad invert": ({"image": "x", "invert": "maybe"}, 422, "invert"),
    "not an object": (["image"], 422, "invalid"),
    "too large": ({"image": data_url(BIG)}, 413, "too large"),
}


@pytest.mark.parametrize("case", list(BAD_JSON))
def test_bad_json_requests_get_4xx_with_a_message(client, case):
    payload, status, message = BAD_JSON[case]
    r = client.post("/api/predict", json=payload)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and message.lower() in detail.lower()
    assert_still_serving(client)


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"image=abc", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_bodies(client, body, content_type):
    r = client.post("/api/predict", content=body, headers={"content-type": content_type})
    assert 400 <= r.status_code < 500, r.text
    assert isinstance(r.json()["detail"], str)
    assert_still_serving(client)


def test_oversized_bodies_get_413(client):
    # announced length
    r = client.post(
        "/api/predict",
        content=b"x" * (server.MAX_BODY_BYTES + 1),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413 and "too large" in r.json()["detail"]

    # chunked, no length announced
    def chunks():
        for _ in range(64):
            yield b"x" * 65536

    for url, ctype in (
        ("/api/predict", "application/json"),
        ("/api/predict/upload", "multipart/form-data; boundary=b"),
    ):
        r = client.post(url, content=chunks(), headers={"content-type": ctype})
        assert r.status_code == 413, r.text
    assert_still_serving(client)


@pytest.mark.parametrize(
    "files, data, status, message",
    [
        ({"file": ("x.png", b"", "image/png")}, None, 415, "empty"),
        ({"file": ("x.txt", b"just text", "text/plain")}, None, 415, "not an image"),
        ({"file": ("x.png", png(Image.new("L", (64, 64), 255)), "image/png")}, None, 422, "no ink"),
        ({"file": ("x.png", BIG[: server.MAX_IMAGE_BYTES + 1], "image/png")}, None, 413, "too large"),
        ({"file": ("x.png", png(seven()), "image/png")}, {"k": "0"}, 422, "k"),
        ({"file": ("x.png", png(seven()), "image/png")}, {"invert": "perhaps"}, 422, "invert"),
        ({"other": ("x.png", png(seven()), "image/png")}, None, 422, "file"),
        (None, {"file": "not a file"}, 422, "file"),
    ],
)
def test_bad_uploads_get_4xx_with_a_message(client, files, data, status, message):
    r = client.post("/api/predict/upload", files=files, data=data)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    assert_still_serving(client)


def test_wrong_method_and_path(client):
    assert client.get("/api/predict").status_code == 405
    assert client.get("/api/nothing").status_code == 404
    assert_still_serving(client)


# --------------------------------------------------------------------------- serve() and the default model


def test_default_model_path(tmp_path, monkeypatch):
    monkeypatch.setenv("ANYNET_HOME", str(tmp_path / "home"))
    with pytest.raises(paths.NoModelError, match="anynet train"):
        paths.default_model_path()
    model_file = tmp_path / "m.safetensors"
    model_file.write_bytes(b"x")
    record = paths.record_last_model(model_file)
    assert record == tmp_path / "home" / "last_model"
    assert paths.default_model_path() == model_file.resolve()
    model_file.unlink()
    with pytest.raises(paths.NoModelError, match="no longer exists"):
        paths.default_model_path()
    assert issubclass(paths.NoModelError, FileNotFoundError)


def test_serve_uses_the_recorded_model(tmp_path, monkeypatch, model):
    from anynet.io import save_model

    monkeypatch.setenv("ANYNET_HOME", str(tmp_path))
    with pytest.raises(paths.NoModelError):
        server.serve()
    path = save_model(model, tmp_path / "model.safetensors")
    paths.record_last_model(path)
    ran = {}

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.update(app=app, **kw))
    server.serve(port=8123)
    assert ran["port"] == 8123 and ran["host"] == "127.0.0.1"
    with TestClient(ran["app"], base_url=BASE) as c:
        assert c.get("/api/model").json()["classes"] == list("0123456789")
        assert_good(c.post("/api/predict", json={"image": data_url(png(seven()))}))
    with pytest.raises(FileNotFoundError):
        server.serve(model_path=tmp_path / "missing.safetensors")


def test_create_app_needs_classes():
    class NoClasses:
        def predict_proba(self, x):
            return np.zeros((len(x), 3))

    with pytest.raises(ValueError, match="classes"):
        server.create_app(NoClasses())


def test_emnist_model_gets_emnist_framing():
    net = mlp(hidden=(8,), num_classes=3, classes="ABC", backend="numpy", input_shape=(28, 28))
    net.info = ModelInfo(dataset="emnist-balanced")
    with TestClient(server.create_app(net), base_url=BASE) as c:
        assert "EMNIST" in c.get("/api/model").json()["input"]
        body = c.post("/api/predict", json={"image": data_url(png(seven())), "k": 3}).json()
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image28"].split(",")[1]))))
    rows = np.flatnonzero((seen > 128).any(axis=1))
    assert rows[-1] + 1 - rows[0] == 24
