"""The server's limits as plain values: what one request may cost (:class:`Limits`, enforced by
:mod:`anynet.app.limits`) and what uvicorn allows (:class:`ConnectionLimits`).

Each limit's default, unit and help text live here and nowhere else: ``create_app`` and
``serve`` take their defaults from these records, and ``anynet serve`` builds its options
(``--max-image-bytes N``, ...) from their fields. Nothing here needs FastAPI, so the command's
help shows the defaults without the ``serve`` extra installed. See ``docs/serving.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConnectionLimits", "Limits", "limit_fields"]


def _limit(default: Any, help: str, unit: str = "") -> Any:
    """A limit's field: ``help`` says what it bounds, ``unit`` is "bytes", "pixels",
    "seconds" or "" (a count)."""
    return field(default=default, metadata={"help": help, "unit": unit})


def _check_positive(record: Any) -> None:
    for f in limit_fields(type(record)):
        if not getattr(record, f.name) > 0:
            raise ValueError(f"{f.name} must be positive, not {getattr(record, f.name)!r}")


@dataclass(frozen=True)
class Limits:
    """The resource limits of each request (defaults suit one small machine); an image's bytes
    are counted encoded, after base64 decoding."""

    max_image_bytes: int = _limit(2 * 1024 * 1024, "largest image accepted, in bytes", "bytes")
    max_pixels: int = _limit(25_000_000, "largest image, width x height, checked before decoding", "pixels")
    max_concurrent: int = _limit(2, "decodes and predictions running at once")
    queue_timeout: float = _limit(10.0, "seconds a request may wait for a slot, then 503", "seconds")
    body_timeout: float = _limit(30.0, "seconds to receive a request body, then 408", "seconds")
    drain_bytes: int = 16 * 1024 * 1024  #: oversized body read and discarded before the 413

    def __post_init__(self):
        _check_positive(self)
        if self.drain_bytes < 0:
            raise ValueError(f"drain_bytes must be >= 0, not {self.drain_bytes!r}")

    @property
    def max_body_bytes(self) -> int:
        """Largest request body: a base64 image of ``max_image_bytes`` plus 64 KiB of fields."""
        return self.max_image_bytes * 4 // 3 + 64 * 1024


@dataclass(frozen=True)
class ConnectionLimits:
    """What uvicorn allows each connection (``serve`` only)."""

    header_timeout: float = _limit(10.0, "seconds to receive a request's headers, then 408", "seconds")
    keep_alive_timeout: int = _limit(5, "seconds an idle connection stays open", "seconds")
    max_connections: int = _limit(100, "connections at once, then 503")

    def __post_init__(self):
        _check_positive(self)


def limit_fields(record: type) -> list[dataclasses.Field]:
    """The fields of ``record`` (:class:`Limits` or :class:`ConnectionLimits`) that are limits
    a user sets (those with a help text), in order."""
    return [f for f in dataclasses.fields(record) if "help" in f.metadata]
