"""How much a request may cost the server: body size and time, image pixels, work at once.

* :class:`Limits` holds the settings (defined in :mod:`anynet.app.settings`; see
  ``docs/serving.md``).
* :class:`BodyGuard` (ASGI middleware) reads each request body before the app sees it: over
  ``max_body_bytes`` -> 413, not complete within ``body_timeout`` seconds -> 408. An oversized
  body is read and discarded (up to ``drain_bytes``) before the 413 is sent, so the client
  receives the answer instead of a reset connection.
* :func:`open_image` reads an image's header first and refuses formats other than PNG, JPEG,
  WebP, BMP and GIF (415) and pixel counts over ``max_pixels`` (413) before any pixel is decoded;
  big images are decoded reduced (JPEG draft mode) and shrunk to 1024 px.
* :class:`ComputeGate` runs decodes and predictions in worker threads, at most
  ``max_concurrent`` at once; a request that waits ``queue_timeout`` seconds for a slot -> 503.
* :func:`header_timeout_protocol`: uvicorn's h11 protocol that closes a connection whose request
  headers are not complete within ``header_timeout`` seconds (uvicorn has no such timeout).
"""

from __future__ import annotations

import io
import json

import anyio
from fastapi import HTTPException
from PIL import Image, UnidentifiedImageError

from .settings import Limits

__all__ = [
    "FORMATS",
    "REDUCE_TO",
    "BodyGuard",
    "ComputeGate",
    "Limits",
    "header_timeout_protocol",
    "open_image",
    "send_error",
]

#: Image formats the server decodes (Pillow names). Others (TIFF, EPS = Ghostscript, ...) -> 415.
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
#: Images whose longer side is larger are decoded reduced and shrunk to this many pixels
#: (the 28x28 result is made from at most 1024 px anyway: anynet.imageprep.WORK_SIZE).
REDUCE_TO = 1024


# --------------------------------------------------------------------------- ASGI helpers


async def send_error(send, status: int, message: str, close: bool = False, headers: tuple = ()) -> None:
    """Send ``{"detail": message}`` with ``status`` (and ``Connection: close`` when ``close``)."""
    body = json.dumps({"detail": message}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    if close:
        head.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class _Gone(Exception):
    """The client disconnected while sending its body."""


def _too_large(n: int, limit: int, at_least: bool = False) -> str:
    return (
        f"request too large: {'over ' if at_least else ''}{n:,} bytes "
        f"(the request body may have at most {limit:,} bytes)"
    )


class BodyGuard:
    """ASGI middleware: reads the whole request body (bounded in size and time) before calling
    the app, which then receives it in one message."""

    def __init__(self, app, limits: Limits):
        self.app, self.limits = app, limits

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        deadline = anyio.current_time() + self.limits.body_timeout
        try:
            body = await self._read(scope, receive, deadline)
        except _Refused as e:
            return await send_error(send, e.status, e.message, close=True)
        except _Gone:
            return None
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, scope, receive, deadline) -> bytes:
        limit = self.limits.max_body_bytes
        length = _content_length(scope)
        if length is not None and length > limit:
            if length <= self.limits.drain_bytes and not _expects_continue(scope):
                await self._drain(receive, deadline)
            raise _Refused(413, _too_large(length, limit))
        chunks, size = [], 0
        while True:
            message = await self._receive(receive, deadline)
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > limit:
                if more:
                    await self._drain(receive, deadline, size)
                raise _Refused(413, _too_large(size, limit, at_least=more))
            chunks.append(chunk)
            if not more:
                return b"".join(chunks)

    async def _receive(self, receive, deadline) -> dict:
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone()
            return message
        raise _Refused(408, f"request body not received within {self.limits.body_timeout:g} s")

    async def _drain(self, receive, deadline, read: int = 0) -> None:
        """Read and discard the rest of the body (up to ``drain_bytes`` and the deadline)."""
        try:
            while read <= self.limits.drain_bytes:
                message = await self._receive(receive, deadline)
                read += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
        except (_Refused, _Gone):
            return


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            if not value.isdigit():
                raise _Refused(400, "invalid Content-Length header")
            return int(value)
    return None


def _expects_continue(scope) -> bool:
    return any(
        name == b"expect" and value.lower() == b"100-continue" for name, value in scope.get("headers") or ()
    )


def _replay(body: bytes, receive):
    """A receive() that gives ``body`` once, then waits on the real one (for disconnects)."""
    given = False

    async def replay():
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# --------------------------------------------------------------------------- images


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Encoded bytes -> a decoded Pillow image, longer side at most :data:`REDUCE_TO`.

    Raises HTTPException: 415 for data that is not one of :data:`FORMATS`, 413 for more than
    ``max_pixels`` pixels (checked on the header, before decoding), 400 for corrupt pixel data.
    """
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as e:
        raise HTTPException(413, f"image has too many pixels ({e})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise HTTPException(
            415, "not an image in a supported format: send PNG, JPEG, WebP, BMP or GIF"
        ) from None
    w, h = img.size
    if w * h > max_pixels:
        raise HTTPException(
            413, f"image too large: {w}x{h} = {w * h:,} pixels (at most {max_pixels:,}); scale it down first"
        )
    try:
        return _decode_reduced(img)
    except Exception as e:  # corrupt data makes Pillow's decoders raise many kinds of errors
        raise HTTPException(400, f"could not decode the image: {e}") from None


def _decode_reduced(img: Image.Image) -> Image.Image:
    """Decode ``img``; one larger than REDUCE_TO is decoded reduced (JPEG) and shrunk."""
    if max(img.size) <= REDUCE_TO:
        img.load()
        return img
    img.draft(img.mode, (REDUCE_TO, REDUCE_TO))  # JPEG: the decoder scales by 1/2 .. 1/8
    img.load()
    if img.mode in ("1", "P", "PA") or img.mode.startswith("I;16"):  # resizable modes
        alpha = img.mode == "PA" or "transparency" in img.info
        img = img.convert("I" if img.mode.startswith("I;16") else "RGBA" if alpha else "L")
    img.thumbnail((REDUCE_TO, REDUCE_TO), Image.Resampling.BOX)
    return img


# --------------------------------------------------------------------------- concurrency


class ComputeGate:
    """Runs blocking work in worker threads, at most ``slots`` at once; waiting longer than
    ``wait_s`` for a slot raises HTTPException(503) with a Retry-After header."""

    def __init__(self, slots: int, wait_s: float):
        self.slots, self.wait_s = slots, wait_s
        self._semaphore = anyio.Semaphore(slots)

    async def run(self, fn, *args):
        with anyio.move_on_after(self.wait_s) as waited:
            await self._semaphore.acquire()
        if waited.cancelled_caught:
            raise HTTPException(
                503,
                f"server busy: all {self.slots} workers stayed occupied for {self.wait_s:g} s; try again",
                headers={"Retry-After": "5"},
            )
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            self._semaphore.release()


# --------------------------------------------------------------------------- header timeout


def header_timeout_protocol(seconds: float):
    """uvicorn's h11 protocol class, closing connections whose request headers take longer
    than ``seconds`` (answering 408 when part of a request had arrived)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11Protocol(H11Protocol):
        _timer = None
        _got_bytes = False

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            self._got_bytes = True
            super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc):
            if self._timer is not None:
                self._timer.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
            self._got_bytes = False
            self._timer = self.loop.call_later(seconds, self._expire)

        def _expire(self) -> None:
            self._timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return  # closed, or the headers came: the body has BodyGuard's timeout
            if self._got_bytes:
                body = json.dumps({"detail": f"request headers not received within {seconds:g} s"}).encode()
                self.transport.write(
                    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: "
                    b"application/json\r\nconnection: close\r\ncontent-length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
            self.transport.close()

    return HeaderTimeoutH11Protocol
