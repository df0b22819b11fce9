"""Responses with the SHS's headers, bodies and content types."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from sparkhist.render.encode import dumps

# Headers the SHS's Jetty sends on every API response (SHS_REFERENCE §1.1).
SHS_HEADERS = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "X-Frame-Options": "SAMEORIGIN",
    "X-XSS-Protection": "1; mode=block",
    "X-Content-Type-Options": "nosniff",
    "Vary": "Accept-Encoding",
}

_JETTY_404 = """<html>
<head>
<meta http-equiv="Content-Type" content="text/html;charset=ISO-8859-1"/>
<title>Error 404 Not Found</title>
</head>
<body><h2>HTTP ERROR 404 Not Found</h2>
<table>
<tr><th>URI:</th><td>{uri}</td></tr>
<tr><th>STATUS:</th><td>404</td></tr>
<tr><th>MESSAGE:</th><td>Not Found</td></tr>
<tr><th>SERVLET:</th><td>org.glassfish.jersey.servlet.ServletContainer-1</td></tr>
</table>

</body>
</html>
"""


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(dumps(payload), status_code=status, media_type=None,
                    headers={**SHS_HEADERS, "Content-Type": "application/json"})


def raw_json_response(body: bytes) -> Response:
    return Response(body, media_type=None, headers={**SHS_HEADERS, "Content-Type": "application/json"})


def text_error(status: int, message: str) -> Response:
    """The SHS's ``ErrorWrapper``: a bare message as ``text/plain``."""
    return Response(message, status_code=status, media_type=None,
                    headers={**SHS_HEADERS, "Content-Type": "text/plain"})


def date_error(message: str) -> Response:
    """``SimpleDateParam`` failures: 400, JSON content type, plain-text body (sic)."""
    return Response(message, status_code=400, media_type=None,
                    headers={**SHS_HEADERS, "Content-Type": "application/json"})


_JETTY_500 = """<html>
<head>
<meta http-equiv="Content-Type" content="text/html;charset=ISO-8859-1"/>
<title>Error 500 Request failed.</title>
</head>
<body><h2>HTTP ERROR 500 Request failed.</h2>
<table>
<tr><th>URI:</th><td>{uri}</td></tr>
<tr><th>STATUS:</th><td>500</td></tr>
<tr><th>MESSAGE:</th><td>Request failed.</td></tr>
<tr><th>SERVLET:</th><td>org.glassfish.jersey.servlet.ServletContainer-1</td></tr>
</table>

</body>
</html>
"""


def jetty_server_error(uri: str) -> Response:
    """A request the SHS fails with an exception: Jetty's HTML 500 page."""
    return Response(_JETTY_500.format(uri=uri), status_code=500, media_type=None,
                    headers={"Content-Type": "text/html;charset=iso-8859-1", "Cache-Control": "must-revalidate,no-cache,no-store"})


def jetty_not_found(uri: str) -> Response:
    """Jersey's failed parameter conversion: Jetty's HTML 404 page."""
    return Response(_JETTY_404.format(uri=uri), status_code=404, media_type=None,
                    headers={"Content-Type": "text/html;charset=iso-8859-1", "Cache-Control": "must-revalidate,no-cache,no-store"})
