"""The access layer's own answers: 401 challenges and the SHS's Jetty error page for UI refusals."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope

from sparkhist.access.authn import Refusal
from sparkhist.render.html import render

#: Jetty's error pages are sent with these (ErrorHandler).
_JETTY_HEADERS = {"Content-Type": "text/html;charset=iso-8859-1", "Cache-Control": "must-revalidate,no-cache,no-store"}


def request_url(scope: Scope) -> str:
    """The URL Jetty 12 prints on its error page: scheme, the Host header, raw path and query."""
    host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None)
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    query: bytes = scope.get("query_string", b"")
    target = raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    return f"{scope.get('scheme', 'http')}://{host}{target}"


def jetty_page(scope: Scope, status: int, message: str) -> Response:
    """Jetty 12's error page for ``sendError(status, message)`` (the SHS 4.3's UI refusals)."""
    page = render("jetty12_error.html", status=status, message=message, uri=request_url(scope))
    return Response(page.encode("iso-8859-1", "replace"), status_code=status, media_type=None, headers=_JETTY_HEADERS)


def unauthorized(refusal: Refusal) -> Response:
    """401 with the scheme's challenge; the reason as plain text."""
    headers = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
    response = Response(refusal.reason + "\n", status_code=401, media_type=None, headers=headers)
    for key, value in refusal.headers:
        response.headers.append(key, value)
    return response
