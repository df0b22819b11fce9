"""Responses with the SHS's headers, bodies and content types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from sparkhist.render.encode import dumps_chunks
from sparkhist.render.html import render

# Headers the SHS's Jetty sends on every API response (SHS_REFERENCE §1.1).
SHS_HEADERS = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "X-Frame-Options": "SAMEORIGIN",
    "X-XSS-Protection": "1; mode=block",
    "X-Content-Type-Options": "nosniff",
    "Vary": "Accept-Encoding",
}


#: A JSON answer longer than this is streamed (chunked) instead of sent in one body.
STREAM_ABOVE = 1 << 20


def json_response(payload: Any, status: int = 200) -> Response:
    return json_chunks_response(dumps_chunks(payload), status)


def json_chunks_response(chunks: Iterator[bytes], status: int = 200) -> Response:
    """An answer from its encoded pieces (:func:`~sparkhist.render.encode.dumps_chunks`).

    Up to :data:`STREAM_ABOVE` bytes it is one body (with its ``Content-Length``, as
    before); beyond, the rest is encoded while it is sent, so a request holds its
    records and a piece or two, never the whole body (bytes identical either way).
    """
    head: list[bytes] = []
    size = 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > STREAM_ABOVE:
            return StreamingResponse(_sent_after(head, chunks), status_code=status, media_type=None,
                                     headers={**SHS_HEADERS, "Content-Type": "application/json"})
    return Response(b"".join(head), status_code=status, media_type=None,
                    headers={**SHS_HEADERS, "Content-Type": "application/json"})


def _sent_after(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    """``head`` then ``rest``, each piece let go once handed over."""
    head.reverse()
    while head:
        yield head.pop()
    yield from rest


def raw_json_response(body: bytes) -> Response:
    return Response(body, media_type=None, headers={**SHS_HEADERS, "Content-Type": "application/json"})


def gzip_json_response(compressed: bytes) -> Response:
    """A JSON answer gzip-compressed, as the SHS's Jetty sends one to a client that accepts gzip."""
    return Response(compressed, media_type=None,
                    headers={**SHS_HEADERS, "Content-Type": "application/json", "Content-Encoding": "gzip"})


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value accepts gzip: ``gzip`` listed without ``q=0``, or else ``*`` so."""
    accepted: dict[str, bool] = {}
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        q = params.strip()
        accepted[coding.strip()] = not (q.startswith("q=") and _is_zero(q[2:]))
    for coding in ("gzip", "x-gzip", "*"):
        if coding in accepted:
            return accepted[coding]
    return False


def _is_zero(value: str) -> bool:
    try:
        return float(value) == 0.0
    except ValueError:
        return False


def text_error(status: int, message: str) -> Response:
    """The SHS's ``ErrorWrapper``: a bare message as ``text/plain``."""
    return Response(message, status_code=status, media_type=None,
                    headers={**SHS_HEADERS, "Content-Type": "text/plain"})


def date_error(message: str) -> Response:
    """``SimpleDateParam`` failures: 400, JSON content type, plain-text body (sic)."""
    return Response(message, status_code=400, media_type=None,
                    headers={**SHS_HEADERS, "Content-Type": "application/json"})


#: Jetty's error pages (ErrorHandler, via Jersey's ``sendError``): the servlet Jersey runs in.
_JERSEY_SERVLET = "org.glassfish.jersey.servlet.ServletContainer-1"
_JETTY_HEADERS = {"Content-Type": "text/html;charset=iso-8859-1", "Cache-Control": "must-revalidate,no-cache,no-store"}


def _jetty_error_page(status: int, message: str, uri: str) -> Response:
    """Jetty's HTML error page, byte for byte: the URI escaped as Jetty escapes it, and the
    body in the ISO-8859-1 its header declares (``?`` for what that cannot hold, as Jetty)."""
    page = render("jetty_error.html", status=status, message=message, uri=uri, servlet=_JERSEY_SERVLET)
    return Response(page.encode("iso-8859-1", "replace"), status_code=status, media_type=None, headers=_JETTY_HEADERS)


def jetty_server_error(uri: str) -> Response:
    """A request the SHS fails with an exception: Jetty's HTML 500 page."""
    return _jetty_error_page(500, "Request failed.", uri)


def jetty_not_found(uri: str) -> Response:
    """Jersey's failed parameter conversion: Jetty's HTML 404 page."""
    return _jetty_error_page(404, "Not Found", uri)
