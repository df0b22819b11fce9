"""Connection bounds for the HTTP server: a header read timeout, keep-alive, concurrency.

uvicorn bounds an idle connection *after* an answer (``timeout_keep_alive``) but not
one that has not finished its request: a client that connects and sends half a request
line (or one byte every few seconds) kept its connection, a file descriptor and an h11
buffer for as long as it liked; 1,000 of them stayed open for over 70 s. The SHS's
Jetty closes such a connection after 8 s of silence.

:class:`HeaderTimeoutProtocol` is uvicorn's h11 protocol plus one timer: it runs while
the server waits for a request's line and headers (from the connection's start, or
from the first byte of the next request on a kept-alive connection) and is not reset
by more bytes; when it fires before the headers are complete the connection is closed.
A request being answered is never cut. The headers themselves are bounded by h11's
buffer (:data:`MAX_HEADER_BYTES`: a longer head is a 400), the number of open
connections by ``limit_concurrency`` (beyond it, uvicorn answers 503 at once).

:func:`uvicorn_options` gives the ``uvicorn.Config`` arguments for the settings.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from sparkhist.config import Settings

#: Most bytes of request line and headers h11 buffers (its own default, written down).
MAX_HEADER_BYTES = 16 * 1024


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is not complete
    within :attr:`header_timeout` seconds."""

    header_timeout: float = 8.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._answering():
            self._disarm_header_timer()
        elif self._header_timer is None and not self.transport.is_closing():
            self._arm_header_timer()  # the first byte of a request on a kept-alive connection

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Waiting again: an idle connection is uvicorn's keep-alive's to close; the next
        # request's first byte starts the header timer.
        self._disarm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _answering(self) -> bool:
        """A request's head is complete and its answer is not sent yet."""
        return self.cycle is not None and not self.cycle.response_complete

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self._answering() and not self.transport.is_closing():
            self.transport.close()  # silently, as Jetty does (connection_lost tells h11)


def protocol_with_timeout(header_timeout: float) -> type[HeaderTimeoutProtocol]:
    """A :class:`HeaderTimeoutProtocol` class whose connections have ``header_timeout`` seconds."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": header_timeout})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The ``uvicorn.Config`` arguments that bound connections, from ``settings``."""
    return {
        "http": protocol_with_timeout(settings.http_header_timeout),
        "timeout_keep_alive": settings.http_keep_alive,
        "limit_concurrency": settings.http_max_connections,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "loop": "auto",  # uvloop (a pinned dependency) when it imports, else asyncio's
        # The peer address stays the connection's: uvicorn would otherwise take it from a loopback
        # client's X-Forwarded-For, and the trusted-proxy check (sparkhist.access) must see the proxy.
        "proxy_headers": False,
    }
