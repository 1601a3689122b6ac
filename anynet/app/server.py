"""The drawing page and its JSON API, served by FastAPI.

    GET  /                    the drawing page (static, no CDN)
    GET  /api/health          {"status": "ok"}
    GET  /api/model           classes and a description of the model
    POST /api/predict         JSON {"image": "data:image/png;base64,...", "k": 5, "invert": "auto"}
    POST /api/predict/upload  multipart form: file=<image>, k=5, invert=auto
    GET  /openapi.json        the schema FastAPI generates (no /docs page: it needs a CDN)

HEAD is answered wherever GET is. Both predict routes answer ``{"prediction", "confidence",
"top": [{"label", "probability"}], "image28": "data:image/png;base64,..."}`` where ``image28`` is
the 28x28 picture the network saw. ``invert`` is ``"auto"``, ``"true"`` or ``"false"`` on both
routes (JSON also takes the booleans true / false). Refused requests get a 4xx or 503 status and
``{"detail": "<message>"}``; the server keeps serving:

    400  undecodable image data, bad Host header       403  a POST from another site
    408  request body too slow                          413  image, pixels or body too large
    415  not PNG / JPEG / WebP / BMP / GIF              422  invalid fields, or no ink found
    503  busy (Retry-After), or the model gave NaN / infinite probabilities

The limits and their settings (``create_app`` / ``serve`` keywords) are described in
``docs/serving.md``, defined in :mod:`anynet.app.settings` and enforced by :mod:`anynet.app.limits`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, StrictBool, field_validator

from .. import imageprep
from ..network import load_model
from ..predict import class_names, top_k
from .limits import BodyGuard, ComputeGate, header_timeout_protocol, open_image
from .paths import NoModelError, default_model_path
from .security import LOCAL_HOSTS, HeadAsGet, RequestGuard, allowed_hosts_for, strip_paths
from .settings import ConnectionLimits, Limits, limit_fields

__all__ = ["MAX_IMAGE_BYTES", "Limits", "NoModelError", "create_app", "default_model_path", "serve"]

STATIC_DIR = Path(__file__).with_name("static")
#: Largest image accepted by default, in bytes (after base64 decoding); ``max_image_bytes``.
MAX_IMAGE_BYTES = Limits.max_image_bytes
#: Largest request body by default: a base64 image of MAX_IMAGE_BYTES plus 64 KiB of fields.
MAX_BODY_BYTES = Limits().max_body_bytes
MAX_K = 50

_B64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)"
#: The ``image`` field: standard padded base64, optionally as a data URL.
IMAGE_PATTERN = r"^(?:data:(?:[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)?(?:;[A-Za-z0-9.+=_-]+)*;base64,)?" + _B64 + "$"
_DATA_URL = re.compile(r"^data:(?P<mime>[^;,]*)[^,]*,")
_INVERT = {"auto": "auto", "true": True, "false": False, True: True, False: False}


# --------------------------------------------------------------------------- schema


class PredictRequest(BaseModel):
    image: str = Field(
        ...,
        pattern=IMAGE_PATTERN,
        description="a PNG, JPEG, WebP, BMP or GIF image in base64 (padded, no "
        "whitespace), plain or as a data URL (data:image/png;base64,...)",
    )
    k: int = Field(
        5, ge=1, le=MAX_K, strict=True, description="how many of the most likely characters to return"
    )
    invert: Literal["auto", "true", "false"] | StrictBool = Field(
        "auto",
        description="'auto' detects dark ink on light paper; 'true' / true: the ink is "
        "dark (inverted first); 'false' / false: the ink is already bright",
    )

    @field_validator("k", mode="before")
    @classmethod
    def _integral_float(cls, value):
        """JSON Schema counts 5.0 as an integer; strings and booleans stay refused."""
        return int(value) if isinstance(value, float) and value.is_integer() else value


class Candidate(BaseModel):
    label: str
    probability: float = Field(..., ge=0, le=1)


class PredictResponse(BaseModel):
    prediction: str = Field(..., description="the most likely character")
    confidence: float = Field(..., ge=0, le=1, description="its probability")
    top: list[Candidate]
    image28: str = Field(
        ..., description="the 28x28 input the network saw, as a PNG data URL (white ink on black)"
    )


class ModelResponse(BaseModel):
    classes: list[str]
    num_classes: int
    input: str
    parameters: int | None = None
    backend: str | None = None
    description: str
    info: dict


class ErrorResponse(BaseModel):
    detail: str = Field(..., description="what was wrong, in words")


def _errors(descriptions: dict[int, str]) -> dict:
    """FastAPI ``responses=``: each status with its description and the ErrorResponse body."""
    return {code: {"model": ErrorResponse, "description": text} for code, text in descriptions.items()}


PREDICT_ERRORS = _errors(
    {
        400: "malformed request: the image data could not be decoded, or a bad Host header",
        403: "a POST from another site's page (Origin / Sec-Fetch-Site)",
        408: "the request body was not received within the body timeout",
        413: "the image (bytes or pixels) or the request body is too large",
        415: "not an image in a supported format (PNG, JPEG, WebP, BMP, GIF)",
        422: "invalid fields, or no ink found in the image",
        503: "busy (no worker free in time; see Retry-After), or the model produced non-finite "
        "probabilities (NaN / infinity) and cannot answer",
    }
)
GET_ERRORS = _errors({400: "bad Host header"})


# --------------------------------------------------------------------------- helpers


def _decode_image_field(text: str, max_bytes: int) -> bytes:
    """A data URL or plain base64 (already matched against IMAGE_PATTERN) -> bytes;
    HTTPException 415 for a non-image media type, 413 when too large."""
    m = _DATA_URL.match(text)
    if m:
        mime = m.group("mime").lower()
        if mime and not mime.startswith("image/"):
            raise HTTPException(415, f"the data URL holds {mime}, not an image")
        text = text[m.end() :]
    if len(text) * 3 // 4 > max_bytes + 2:
        raise HTTPException(413, f"image too large: over {max_bytes:,} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:  # not reached for pattern-checked text
        raise HTTPException(422, f"image: not valid base64 ({e})") from None


def _describe(model) -> dict:
    names = class_names(model)
    to_dict = getattr(getattr(model, "info", None), "to_dict", None)
    info = to_dict() if callable(to_dict) else {}
    try:
        info = strip_paths(json.loads(json.dumps(info, default=str)))
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
        "description": strip_paths(repr(model)),
        "info": info,
    }


class Predictor:
    """Image bytes -> the JSON answer, decoding and predicting in :class:`ComputeGate`'s
    worker threads."""

    def __init__(self, model, limits: Limits):
        self.model, self.limits = model, limits
        self.names = class_names(model)  # fail now, not at the first request
        self.style = imageprep.style_for(model)  # MNIST or EMNIST framing, as trained
        self.gate = ComputeGate(limits.max_concurrent, limits.queue_timeout)

    async def __call__(self, data: bytes, k: int, invert) -> dict:
        if len(data) > self.limits.max_image_bytes:
            raise HTTPException(
                413, f"image too large: {len(data):,} bytes (at most {self.limits.max_image_bytes:,})"
            )
        return await self.gate.run(self.predict, data, k, _INVERT[invert])

    def predict(self, data: bytes, k: int, invert) -> dict:
        """The blocking part: decode, prepare, predict (in a worker thread)."""
        image = open_image(data, self.limits.max_pixels)
        try:
            image28 = imageprep.prepare(image, invert=invert, style=self.style)
        except imageprep.EmptyImageError as e:
            raise HTTPException(422, f"no character found: {e}") from None
        except imageprep.ImagePrepError as e:
            raise HTTPException(400, str(e)) from None
        ranked = _checked(top_k(self.model, image28[None], k=len(self.names))[0])[:k]
        png = base64.b64encode(imageprep.to_png_bytes(image28)).decode("ascii")
        return {
            "prediction": ranked[0][0],
            "confidence": ranked[0][1],
            "top": [{"label": c, "probability": p} for c, p in ranked],
            "image28": "data:image/png;base64," + png,
        }


def _checked(ranked: list) -> list:
    """The model's (label, probability) list, or HTTPException(503) if it is not a
    distribution (NaN, infinity, values outside [0, 1])."""
    probs = [p for _, p in ranked]
    if not all(math.isfinite(p) and -1e-6 <= p <= 1 + 1e-6 for p in probs):
        bad = next(p for p in probs if not (math.isfinite(p) and -1e-6 <= p <= 1 + 1e-6))
        raise HTTPException(
            503,
            f"the model produced an invalid probability ({bad}) for this "
            "image: its output is not finite or not in [0, 1], so it cannot "
            "answer (the model file is probably broken, e.g. diverged "
            "training)",
        )
    return [(c, min(max(p, 0.0), 1.0)) for c, p in ranked]


# --------------------------------------------------------------------------- the app


async def _validation_error(request: Request, exc: RequestValidationError):
    """422 with one readable sentence per invalid field."""
    parts = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'syntax')})")
            continue
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        msg = err.get("msg")
        if err.get("type") == "string_pattern_mismatch" and loc == "image":
            msg = (
                "expected padded base64 without whitespace, plain or as a data URL "
                "(data:image/png;base64,...)"
            )
        parts.append(f"{loc}: {msg}" if loc else str(msg))
    return JSONResponse(status_code=422, content={"detail": "invalid request: " + "; ".join(parts)})


def _add_info_routes(app: FastAPI, description: dict) -> None:
    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/health", responses=GET_ERRORS)
    def health() -> dict:
        """Liveness: the server is up and has a model."""
        return {"status": "ok"}

    @app.get("/api/model", response_model=ModelResponse, responses=GET_ERRORS)
    def model_info() -> dict:
        """The classes the model tells apart and what it is."""
        return description


def _add_predict_routes(app: FastAPI, predictor: Predictor) -> None:
    limits = predictor.limits

    @app.post("/api/predict", response_model=PredictResponse, responses=PREDICT_ERRORS)
    async def predict(req: PredictRequest) -> dict:
        """Recognise an image sent as a base64 data URL (e.g. ``canvas.toDataURL()``)."""
        data = _decode_image_field(req.image, limits.max_image_bytes)
        return await predictor(data, req.k, req.invert)

    @app.post("/api/predict/upload", response_model=PredictResponse, responses=PREDICT_ERRORS)
    async def predict_upload(
        file: UploadFile = File(..., description="an image file (PNG, JPEG, WebP, BMP, GIF)"),
        k: int = Form(5, ge=1, le=MAX_K),
        invert: Literal["auto", "true", "false"] = Form("auto"),
    ) -> dict:
        """Recognise an uploaded image file (multipart/form-data, field ``file``)."""
        data = await file.read(limits.max_image_bytes + 1)
        if not data:
            raise HTTPException(415, "the uploaded file is empty (0 bytes), not an image")
        return await predictor(data, k, invert)


def create_app(
    model,
    *,
    title: str = "anynet",
    allowed_hosts=None,
    allowed_origins=(),
    max_image_bytes: int = Limits.max_image_bytes,
    max_pixels: int = Limits.max_pixels,
    max_concurrent: int = Limits.max_concurrent,
    queue_timeout: float = Limits.queue_timeout,
    body_timeout: float = Limits.body_timeout,
) -> FastAPI:
    """A FastAPI app serving the drawing page and the prediction API for ``model``.

    ``model`` is anything with ``predict_proba((n, 784) float32)`` and ``classes`` (an
    :class:`anynet.network.Network`, say); it must be safe to call from several threads.
    ``allowed_hosts``: names the Host header may carry (default :data:`LOCAL_HOSTS`;
    ``".example.com"`` for a domain and its subdomains, ``"*"`` for any); ``allowed_origins``:
    other sites whose pages may POST here. The other keywords are :class:`Limits`.
    """
    limits = Limits(
        max_image_bytes=max_image_bytes,
        max_pixels=max_pixels,
        max_concurrent=max_concurrent,
        queue_timeout=queue_timeout,
        body_timeout=body_timeout,
    )
    predictor = Predictor(model, limits)
    description = _describe(model)
    app = FastAPI(
        title=f"{title} handwriting recognition",
        description="Draw or upload a character; a from-scratch anynet network reads it.",
        version=str(description["info"].get("anynet_version") or "0"),
        docs_url=None,
        redoc_url=None,
    )  # their pages load scripts from a CDN
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    _add_info_routes(app, description)
    _add_predict_routes(app, predictor)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # added last = outermost: Host / Origin checks, then HEAD, then the body is read
    app.add_middleware(BodyGuard, limits=limits)
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        RequestGuard, allowed_hosts=allowed_hosts or LOCAL_HOSTS, allowed_origins=allowed_origins
    )
    app.state.model, app.state.limits = model, limits
    return app


def serve(
    model_path: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str = "cpu",
    log_level: str = "info",
    *,
    allowed_hosts=(),
    allowed_origins=(),
    **limits: Any,
) -> None:
    """Load a model (by default the last one ``anynet train`` saved) and serve the page until
    interrupted. Raises :class:`NoModelError` with advice when there is no model.

    ``allowed_hosts`` are added to localhost and ``host``. ``limits`` are the fields of
    :class:`Limits` (what one request may cost: :func:`create_app`'s keywords) and of
    :class:`ConnectionLimits` (``header_timeout``: seconds for a request's headers, then 408;
    ``keep_alive_timeout``: idle connections; ``max_connections``: then 503), each defaulting to
    its record's default.
    """
    request_limits, connection = _split_limits(limits)
    path = default_model_path() if model_path is None else Path(model_path).expanduser()
    model = load_model(path, backend=backend)  # checks the file first (anynet.io.model_file)
    hosts = allowed_hosts_for(host, allowed_hosts)
    app = create_app(model, allowed_hosts=hosts, allowed_origins=allowed_origins, **request_limits)
    print(
        f"anynet: serving {path} ({len(class_names(model))} classes) at http://{host}:{port}/  (Ctrl+C stops)"
    )
    if host in ("0.0.0.0", "::", ""):
        print(
            f"anynet: answering only to the host names {', '.join(hosts)}; "
            "add the name or address clients use with allowed_hosts (--allowed-host)"
        )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=header_timeout_protocol(connection.header_timeout),
        timeout_keep_alive=connection.keep_alive_timeout,
        limit_concurrency=connection.max_connections,
        h11_max_incomplete_event_size=16 * 1024,
    )


def _split_limits(limits: dict[str, Any]) -> tuple[dict[str, Any], ConnectionLimits]:
    """``serve``'s limit keywords: :class:`Limits` fields (for ``create_app``), and the
    :class:`ConnectionLimits` for uvicorn (checked: every limit > 0)."""
    request = {f.name for f in limit_fields(Limits)}
    connection = {f.name for f in limit_fields(ConnectionLimits)}
    if unknown := sorted(set(limits) - request - connection):
        raise TypeError(
            f"serve() got unknown limit(s) {', '.join(unknown)}; the limits are {', '.join([*request, *connection])}"
        )
    chosen = ConnectionLimits(**{k: v for k, v in limits.items() if k in connection})
    return {k: v for k, v in limits.items() if k in request}, chosen
