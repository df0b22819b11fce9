"""Bounds on what one request may ask, checked before any route runs.

Every request goes through :class:`RequestLimits`, which answers as the SHS's Jetty
does when it refuses a request line, so no handler (nor the log source behind the
on-demand lookup) ever sees one:

* a request target (path and query) over :data:`MAX_TARGET_BYTES` is a 414 (Jetty's
  8 KiB request-line buffer; the SHS answers ``Bad Message 414``);
* a path holding an encoded NUL (``%00``) or a broken escape (``%zz``) is a 400
  (Jetty's ``Bad Message 400``); any other decoded character reaches the routes.

The other bounds live where the value is read: at most
:data:`sparkhist.api.v1.params.MAX_QUANTILES` quantiles, each finite and in [0, 1]
(400); application ids longer than
:data:`sparkhist.scan.on_demand.MAX_APP_ID_LENGTH` (255) characters, or holding a
control character, are answered from the index alone, never looked up in the log
directory (404 ``unknown app``, as the SHS answers them). Connections are bounded in
:mod:`sparkhist.api.connections` (header read timeout, keep-alive, concurrency).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

#: Longest request target (raw path, ``?``, raw query) answered; longer is a 414. The
#: SHS's Jetty reads the request line into 8 KiB (``GET `` and `` HTTP/1.1`` included).
MAX_TARGET_BYTES = 8192 - len(b"GET  HTTP/1.1\r\n")

_BAD_PATH = re.compile(rb"%00|%(?![0-9A-Fa-f]{2})")


def _bad_message(status: int, reason: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Jetty's answer to a request line it cannot take: a short HTML body, then it closes."""
    body = f"<h1>Bad Message {status}</h1><pre>reason: {reason}</pre>".encode("latin-1")
    headers = [(b"content-type", b"text/html;charset=iso-8859-1"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    return body, headers


class RequestLimits:
    """ASGI middleware: refuses over-long request targets (414) and paths with an
    encoded NUL or a broken escape (400) with the SHS's answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = refuse(scope)
            if refusal is not None:
                status, reason = refusal
                body, headers = _bad_message(status, reason)
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def refuse(scope: Scope) -> tuple[int, str] | None:
    """``(status, reason)`` when the request line is refused, else None."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    query: bytes = scope.get("query_string", b"")
    if len(raw_path) + (len(query) + 1 if query else 0) > MAX_TARGET_BYTES:
        return 414, "URI Too Long"
    if b"%" in raw_path and _BAD_PATH.search(raw_path):
        return 400, "Bad Request"
    return None
