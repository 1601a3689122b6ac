"""The drawing page and its JSON API, served by FastAPI.

    GET  /                    the drawing page (static, no CDN)
    GET  /api/health          {"status": "ok"}
    GET  /api/model           classes and a description of the model
    POST /api/predict         JSON {"image": "data:image/png;base64,...", "k": 5, "invert": "auto"}
    POST /api/predict/upload  multipart form: file=<image>, k=5, invert=auto
    GET  /openapi.json        the schema FastAPI generates (no /docs page: it needs a CDN)

Both predict routes answer ``{"prediction", "confidence", "top": [{"label", "probability"}],
"image28": "data:image/png;base64,..."}`` where ``image28`` is the 28x28 picture the network saw.
Bad requests (too large, not an image, no ink, malformed JSON or base64) get a 4xx status and
``{"detail": "<message>"}``; the server keeps serving.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
from pathlib import Path
from typing import Literal, Union

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from .. import imageprep
from ..predict import class_names, top_k
from .paths import NoModelError, default_model_path

__all__ = ["create_app", "serve", "default_model_path", "NoModelError", "MAX_IMAGE_BYTES"]

STATIC_DIR = Path(__file__).with_name("static")
#: Largest image accepted, in bytes (after base64 decoding).
MAX_IMAGE_BYTES = 2 * 1024 * 1024
#: Largest request body: a base64 image of MAX_IMAGE_BYTES plus room for the JSON / form fields.
MAX_BODY_BYTES = MAX_IMAGE_BYTES * 4 // 3 + 64 * 1024
MAX_K = 50

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?)(?P<b64>;base64)?,",
                       re.IGNORECASE)


# --------------------------------------------------------------------------- schema


class PredictRequest(BaseModel):
    image: str = Field(..., description="a PNG/JPEG/... image as a data URL "
                                        "(data:image/png;base64,...) or plain base64")
    k: int = Field(5, ge=1, le=MAX_K, description="how many of the most likely characters to return")
    invert: Union[Literal["auto"], bool] = Field(
        "auto", description="'auto' detects dark ink on light paper; true: dark ink; false: bright ink")


class Candidate(BaseModel):
    label: str
    probability: float


class PredictResponse(BaseModel):
    prediction: str = Field(..., description="the most likely character")
    confidence: float = Field(..., description="its probability")
    top: list[Candidate]
    image28: str = Field(..., description="the 28x28 input the network saw, as a PNG data URL "
                                          "(white ink on black)")


class ModelResponse(BaseModel):
    classes: list[str]
    num_classes: int
    input: str
    parameters: int | None = None
    backend: str | None = None
    description: str
    info: dict


# --------------------------------------------------------------------------- request size limit


class _BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413, whether it announces its
    length or is sent in chunks; nothing bigger is ever held in memory."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await _send_error(send, 400, "invalid Content-Length header")
            if int(length) > self.limit:
                return await _send_error(send, 413, _too_large(int(length), self.limit))
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, _too_large(received, self.limit, at_least=True))
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except HTTPException as e:  # raised while the body was still being read
            if started:
                raise
            await _send_error(send, e.status_code, str(e.detail))


def _too_large(n: int, limit: int, at_least: bool = False) -> str:
    return (f"request too large: {'over ' if at_least else ''}{n:,} bytes "
            f"(images up to {MAX_IMAGE_BYTES // 1024 // 1024} MB, request body up to {limit:,} bytes)")


async def _send_error(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- helpers


def _decode_image_field(text: str) -> bytes:
    """A data URL or plain base64 -> bytes; HTTPException(400/413) when it is not that."""
    text = text.strip()
    m = _DATA_URL.match(text)
    if m:
        if not m.group("b64"):
            raise HTTPException(400, "the data URL must be base64-encoded (data:image/png;base64,...)")
        mime = (m.group("mime") or "").lower()
        if mime and not mime.startswith("image/"):
            raise HTTPException(415, f"the data URL holds {mime}, not an image")
        text = text[m.end():]
    elif text.startswith("data:"):
        raise HTTPException(400, "malformed data URL: expected data:image/png;base64,<data>")
    if not text:
        raise HTTPException(400, "the image field is empty")
    if len(text) * 3 // 4 > MAX_IMAGE_BYTES:
        raise HTTPException(413, f"image too large: over {MAX_IMAGE_BYTES // 1024 // 1024} MB")
    try:
        data = base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError) as e:
        raise HTTPException(400, f"the image is not valid base64 ({e})") from None
    if not data:
        raise HTTPException(400, "the image field decodes to 0 bytes")
    return data


def _describe(model) -> dict:
    names = class_names(model)
    info = getattr(model, "info", None)
    info = info.to_dict() if hasattr(info, "to_dict") else {}
    try:
        info = json.loads(json.dumps(info, default=str))
    except (TypeError, ValueError):
        info = {}
    params = None
    if hasattr(model, "count_parameters"):
        try:
            params = int(model.count_parameters())
        except Exception:  # an unbuilt model: no parameter count to show
            params = None
    backend = getattr(getattr(model, "backend", None), "spec", None)
    return {
        "classes": list(names),
        "num_classes": len(names),
        "input": f"28x28 greyscale, ink bright on black, in [0, 1] ({imageprep.style_for(model).upper()} framing)",
        "parameters": params,
        "backend": None if backend is None else str(backend),
        "description": repr(model),
        "info": info,
    }


# --------------------------------------------------------------------------- the app


def create_app(model, *, title: str = "anynet") -> FastAPI:
    """A FastAPI app serving the drawing page and the prediction API for ``model``.

    ``model`` is anything with ``predict_proba((n, 784) float32)`` and ``classes`` (an
    :class:`anynet.network.Network`, say).
    """
    class_names(model)  # fail now, not at the first request, if the model has no classes
    lock = threading.Lock()  # layers keep forward caches: one prediction at a time
    description = _describe(model)
    style = imageprep.style_for(model)  # MNIST or EMNIST framing, as the model was trained

    app = FastAPI(title=f"{title} handwriting recognition",
                  description="Draw or upload a character; a from-scratch anynet network reads it.",
                  version=str(description["info"].get("anynet_version") or "0"),
                  docs_url=None, redoc_url=None)  # their pages load scripts from a CDN
    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                parts.append(f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'syntax')})")
                continue
            loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return JSONResponse(status_code=422,
                            content={"detail": "invalid request: " + "; ".join(parts)})

    def predict_bytes(data: bytes, k: int, invert) -> dict:
        if len(data) > MAX_IMAGE_BYTES:
            raise HTTPException(413, f"image too large: {len(data):,} bytes "
                                     f"(at most {MAX_IMAGE_BYTES:,})")
        try:
            image28 = imageprep.prepare(data, invert=invert, style=style)
        except imageprep.EmptyImageError as e:
            raise HTTPException(422, f"no character found: {e}") from None
        except imageprep.ImagePrepError as e:
            raise HTTPException(415 if "not an image" in str(e) else 400, str(e)) from None
        with lock:
            top = top_k(model, image28[None], k=k)[0]
        png = base64.b64encode(imageprep.to_png_bytes(image28)).decode("ascii")
        return {
            "prediction": top[0][0],
            "confidence": top[0][1],
            "top": [{"label": c, "probability": p} for c, p in top],
            "image28": "data:image/png;base64," + png,
        }

    error_responses = {
        400: {"description": "malformed request (bad base64, unreadable image)"},
        413: {"description": "image or request too large"},
        415: {"description": "not an image"},
        422: {"description": "invalid fields, or no ink in the image"},
    }

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/health")
    def health() -> dict:
        """Liveness: the server is up and has a model."""
        return {"status": "ok"}

    @app.get("/api/model", response_model=ModelResponse)
    def model_info() -> dict:
        """The classes the model tells apart and what it is."""
        return description

    @app.post("/api/predict", response_model=PredictResponse, responses=error_responses)
    def predict(req: PredictRequest) -> dict:
        """Recognise an image sent as a base64 data URL (e.g. ``canvas.toDataURL()``)."""
        return predict_bytes(_decode_image_field(req.image), req.k, req.invert)

    @app.post("/api/predict/upload", response_model=PredictResponse, responses=error_responses)
    def predict_upload(file: UploadFile = File(..., description="an image file (PNG, JPEG, ...)"),
                       k: int = Form(5, ge=1, le=MAX_K),
                       invert: str = Form("auto", pattern="^(auto|true|false)$")) -> dict:
        """Recognise an uploaded image file (multipart/form-data, field ``file``)."""
        data = file.file.read(MAX_IMAGE_BYTES + 1)
        if not data:
            raise HTTPException(400, "the uploaded file is empty")
        inv = {"auto": "auto", "true": True, "false": False}[invert]
        return predict_bytes(data, k, inv)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.model = model
    return app


def serve(model_path: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 8000,
          backend: str = "numpy", log_level: str = "info") -> None:
    """Load a model (by default the last one ``anynet train`` saved) and serve the page until
    interrupted. Raises :class:`NoModelError` with advice when there is no model."""
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError("serving needs uvicorn: pip install 'anynet[serve]'") from None
    from ..io import load_model

    path = Path(model_path).expanduser() if model_path is not None else default_model_path()
    if not path.is_file():
        raise NoModelError(f"no such model file: {path}")
    model = load_model(path, backend=backend)
    app = create_app(model)
    print(f"anynet: serving {path} ({len(class_names(model))} classes) "
          f"at http://{host}:{port}/  (Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, log_level=log_level)
