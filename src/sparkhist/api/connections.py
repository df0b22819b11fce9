"""Connection bounds for the HTTP server: a header read timeout, a header size bound, keep-alive,
concurrency.

uvicorn bounds an idle connection *after* an answer (``timeout_keep_alive``) but not
one that has not finished its request: a client that connects and sends half a request
line (or one byte every few seconds) kept its connection, a file descriptor and a parser
buffer for as long as it liked; 1,000 of them stayed open for over 70 s. The SHS's
Jetty closes such a connection after 8 s of silence.

:class:`HeaderTimeoutProtocol` is uvicorn's httptools protocol (llhttp, in C: a kept
``/stages`` answer cost less server CPU than with h11, see ``bench/RESULTS.md``) plus
two bounds on a request's head:

* a timer that runs while the server waits for a request's line and headers (from the
  connection's start, or from the first byte of the next request on a kept-alive
  connection) and is not reset by more bytes; when it fires before the headers are
  complete the connection is closed. A request being answered is never cut;
* at most :data:`MAX_HEADER_BYTES` of request line and headers: a head still incomplete
  past that is a 400 (uvicorn's "Invalid HTTP request received.") and the connection
  closed, whether it came in one read or trickled in; llhttp itself has no such bound
  (uvicorn's h11 protocol had it from h11's buffer limit).

The number of open connections is bounded by ``limit_concurrency`` (beyond it, uvicorn
answers 503 at once). :func:`uvicorn_options` gives the ``uvicorn.Config`` arguments for
the settings.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sparkhist.config import Settings

#: Most bytes of request line and headers a request may have.
MAX_HEADER_BYTES = 16 * 1024
HEAD_END = b"\r\n\r\n"
INVALID_REQUEST = "Invalid HTTP request received."  # uvicorn's words for a request it cannot parse


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request head is not complete
    within :attr:`header_timeout` seconds, and refusing a head over :data:`MAX_HEADER_BYTES`."""

    header_timeout: float = 8.0
    _header_timer: asyncio.TimerHandle | None = None
    #: Between requests or in a head (not in a head's body or answer).
    _in_head: bool = True
    #: Bytes of the current head received so far (those after the last head's end).
    _head_bytes: int = 0
    #: Requests whose message ended: a change during one read means a head ended in it.
    _messages: int = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._in_head and self._head_bytes + len(data) > MAX_HEADER_BYTES:  # (a usual request never looks)
            end = data.find(HEAD_END)
            if end < 0 or self._head_bytes + end > MAX_HEADER_BYTES:
                self._refuse_head()
                return
        messages = self._messages
        super().data_received(data)
        if self.transport.is_closing():
            self._disarm_header_timer()
            return
        if self._in_head and self._messages != messages:  # a head ended in this read: what follows its end
            end = data.rfind(HEAD_END)  # (-1: the end came across two reads) is the next head's start
            self._head_bytes = len(data) - end - len(HEAD_END) if end >= 0 else 0
        elif self._in_head:
            self._head_bytes += len(data)
        if self._answering():
            self._disarm_header_timer()
        elif self._header_timer is None:
            self._arm_header_timer()  # the first byte of a request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        self._messages += 1
        super().on_message_complete()

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

    def _refuse_head(self) -> None:
        self._disarm_header_timer()
        self.logger.warning(INVALID_REQUEST)
        self.send_400_response(INVALID_REQUEST)  # then closes the connection

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self._answering() and not self.transport.is_closing():
            self.transport.close()  # silently, as Jetty does


def protocol_with_timeout(header_timeout: float) -> type[HeaderTimeoutProtocol]:
    """A :class:`HeaderTimeoutProtocol` class whose connections have ``header_timeout`` seconds."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": header_timeout})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The ``uvicorn.Config`` arguments that bound connections, from ``settings``."""
    return {
        "http": protocol_with_timeout(settings.http_header_timeout),
        "timeout_keep_alive": settings.http_keep_alive,
        "limit_concurrency": settings.http_max_connections,
        "loop": "auto",  # uvloop (a pinned dependency) when it imports, else asyncio's
        # The peer address stays the connection's: uvicorn would otherwise take it from a loopback
        # client's X-Forwarded-For, and the trusted-proxy check (sparkhist.access) must see the proxy.
        "proxy_headers": False,
    }
