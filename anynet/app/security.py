"""Who may use the app, and what it shows.

* :class:`RequestGuard` (ASGI middleware): the ``Host`` header must name this server (an
  allow-list; stops DNS rebinding: a page on evil.example whose name later resolves to
  127.0.0.1) -> else 400; a POST made by a browser from another site (its ``Origin`` or
  ``Sec-Fetch-Site`` header says so) -> 403. Clients that send neither header (curl, scripts)
  pass; no CORS headers are ever sent, so other sites cannot read answers either.
* :class:`HeadAsGet` (ASGI middleware): HEAD is answered wherever GET is, without the body.
* :func:`strip_paths`: absolute filesystem paths in model metadata -> their file names.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .limits import send_error

__all__ = ["LOCAL_HOSTS", "HeadAsGet", "RequestGuard", "allowed_hosts_for", "strip_paths"]

#: Names the server answers to by default (plus the address it is bound to).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]")


def _split_host(value: str) -> tuple[str, str | None]:
    """``"Example.com:8000"`` -> ``("example.com", "8000")``; ``"[::1]:80"`` -> ``("::1", "80")``."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host.rstrip("."), port
    return value.rstrip("."), None


def _norm_host(pattern: str) -> str:
    pattern = pattern.strip().lower()
    return pattern[1:-1] if pattern.startswith("[") and pattern.endswith("]") else pattern


def allowed_hosts_for(bind: str | None, extra=()) -> tuple[str, ...]:
    """The default allow-list: :data:`LOCAL_HOSTS`, the bound address (unless it is a wildcard
    such as 0.0.0.0) and ``extra``."""
    hosts = list(LOCAL_HOSTS) + list(extra)
    if bind and bind not in _WILDCARD_BINDS:
        hosts.append(bind)
    return tuple(dict.fromkeys(_norm_host(h) for h in hosts))


def _host_matches(host: str, patterns) -> bool:
    for p in patterns:
        if p == "*" or host == p or (p.startswith(".") and (host == p[1:] or host.endswith(p))):
            return True
    return False


def _netloc(host: str, port: str | None, scheme: str | None = None) -> str:
    default = {"http": "80", "https": "443"}
    if port is None or port == default.get(scheme or "") or (scheme is None and port in ("80", "443")):
        return host
    return f"{host}:{port}"


def _same_origin(origin: str, host_header: str) -> bool:
    try:
        o = urlsplit(origin)
        port = None if o.port is None else str(o.port)
    except ValueError:
        return False
    if o.scheme not in ("http", "https") or not o.hostname:
        return False
    return _netloc(o.hostname, port, o.scheme) == _netloc(*_split_host(host_header))


class RequestGuard:
    """ASGI middleware: Host allow-list for every request, same-origin check for POSTs.

    ``allowed_hosts``: names (``example.com``), ``.example.com`` for the domain and its
    subdomains, ``*`` for any. ``allowed_origins``: extra origins (``https://example.com``)
    whose pages may POST here, ``*`` for any.
    """

    def __init__(self, app, allowed_hosts, allowed_origins=()):
        self.app = app
        self.hosts = tuple(_norm_host(h) for h in allowed_hosts)
        self.origins = frozenset(o.strip().lower().rstrip("/") for o in allowed_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                return await send_error(send, *refusal)
        await self.app(scope, receive, send)

    def refusal(self, scope) -> tuple[int, str] | None:
        """``(status, message)`` when the request must be refused, else None."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or ()}
        host = headers.get("host")
        if not host:
            return 400, "missing Host header"
        if not _host_matches(_split_host(host)[0], self.hosts):
            shown = ", ".join(f"[{h}]" if ":" in h else h for h in self.hosts)
            return 400, (
                f"Host {host!r} is not allowed: this server answers to {shown} "
                "(add names with allowed_hosts / --allowed-host)"
            )
        if scope["method"] in _SAFE_METHODS:
            return None
        return self._cross_site(headers, host)

    def _cross_site(self, headers: dict, host: str) -> tuple[int, str] | None:
        origin = headers.get("origin")
        if origin is not None:
            if (
                "*" in self.origins
                or origin.strip().lower().rstrip("/") in self.origins
                or _same_origin(origin, host)
            ):
                return None
            return 403, (
                f"cross-origin request refused: Origin {origin!r} is not this server "
                f"({host}) (add it with allowed_origins / --allowed-origin)"
            )
        site = headers.get("sec-fetch-site", "").lower()
        if site not in ("", "same-origin", "none"):
            return 403, f"cross-site request refused (Sec-Fetch-Site: {site})"
        return None


class HeadAsGet:
    """ASGI middleware: a HEAD request is handled as GET and its body is dropped (headers,
    Content-Length included, are kept)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def without_body(message):
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


_ABS_PATH = re.compile(r"(?<![\w.:/~\\])(?:~[\w.-]*/|/|[A-Za-z]:\\|\\\\)[^\s'\",;]+")


def _basename(match: re.Match) -> str:
    parts = [p for p in re.split(r"[/\\]", match.group(0)) if p]
    return parts[-1] if parts else ""


def strip_paths(value):
    """``value`` (JSON-like) with every absolute path (``/home/me/x.safetensors``,
    ``~/m.st``, ``C:\\m.st``) in its strings replaced by the file name."""
    if isinstance(value, dict):
        return {k: strip_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strip_paths(v) for v in value]
    if isinstance(value, str):
        return _ABS_PATH.sub(_basename, value)
    return value
