"""``anynet serve``: the drawing page and its HTTP API with a saved model.

The limit options (``--max-image-bytes``, ``--body-timeout``, ...) are the fields of
:class:`anynet.app.settings.Limits` and :class:`~anynet.app.settings.ConnectionLimits`, with
their help texts and defaults; a limit given is passed on to :func:`anynet.app.server.serve`,
whose own defaults (the same records) apply otherwise."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import socket
from collections.abc import Callable
from typing import cast

from ..app.settings import ConnectionLimits, Limits, limit_fields
from . import common
from .common import _command, _model_options, _positive_int, _require
from .threads import _threads_option

#: the modules of the ``serve`` extra, checked before any work
SERVE_EXTRA = ("fastapi", "uvicorn")
#: the limits ``anynet serve`` takes as options, in order
LIMITS = (*limit_fields(Limits), *limit_fields(ConnectionLimits))
#: a limit's unit -> the metavar of its option and how its default is shown
_UNITS: dict[str, tuple[str, Callable[[float], str]]] = {
    "bytes": ("N", lambda n: f"{n / 2**20:g} MiB"),
    "pixels": ("N", lambda n: f"{n / 1e6:g} M"),
    "seconds": ("S", lambda n: f"{n:g}"),
    "": ("N", lambda n: f"{n:g}"),
}


def add(sub) -> None:
    """``anynet serve``."""
    p = _command(
        sub,
        "serve",
        run,
        "web page to draw characters and see predictions",
        "Serve the drawing page and its HTTP API with a saved model.",
        data=False,
    )
    _model_options(p)
    _threads_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=_port, default=8000, help="port (1-65535)")
    p.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="also answer requests for this host name (repeatable; the localhost names and --host always)",
    )
    p.add_argument(
        "--allowed-origin",
        action="append",
        metavar="URL",
        help="accept POSTs from pages of this origin (repeatable)",
    )
    for limit in LIMITS:
        _limit_option(p, limit)


def _limit_option(p: argparse.ArgumentParser, limit: dataclasses.Field) -> None:
    """``--NAME N``: a limit, its help and default from its field (default None: not given)."""
    metavar, show = _UNITS[limit.metadata["unit"]]
    default = cast(float, limit.default)  # every limit has a number as its default
    p.add_argument(
        "--" + limit.name.replace("_", "-"),
        type=_positive_float if isinstance(default, float) else _positive_int,
        metavar=metavar,
        help=f"{limit.metadata['help']} (default {show(default)})",
    )


def _port(text: str) -> int:
    """An argparse type: a port number."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number (1-65535), got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {value}")
    return value


def _positive_float(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    for module in SERVE_EXTRA:
        _require(module, "serve", "anynet serve")
    path = common._model_path(args.model, "serve")
    _check_port(args.host, args.port)
    from ..app import server  # the serve extra (FastAPI, uvicorn), checked above

    limits = {f.name: getattr(args, f.name) for f in LIMITS if getattr(args, f.name) is not None}
    server.serve(
        model_path=path,
        host=args.host,
        port=args.port,
        backend=args.backend,
        allowed_hosts=args.allowed_host or (),
        allowed_origins=args.allowed_origin or (),
        **limits,
    )
    return 0


def _check_port(host: str, port: int) -> None:
    """Fail with a clear message when the server could not listen on ``host:port``."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError) as exc:
        raise OSError(f"cannot listen on {host}:{port}: unknown address ({exc})") from None
    with socket.socket(family, kind, proto) as sock:
        if os.name != "nt":  # as uvicorn does: a port left in TIME_WAIT is free
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(
                    f"port {port} on {host} is already in use (another anynet serve?); "
                    "choose another with --port"
                ) from None
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
