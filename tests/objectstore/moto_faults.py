"""moto's S3 server with faults injected in front of it: for throttling and 5xx only.

moto (``moto[server]``) is a Python imitation of S3, used here **only for fault
injection**: it answers in-process, so a WSGI layer in front of it can answer a chosen
number of requests with S3's own throttling error (``503 SlowDown``), a 500
``InternalError``, or an answer whose body stops half-way (the connection closes), which
a real server cannot be made to do on demand. Every test of what sparkhist *reads* runs against SeaweedFS (``servers.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>sparkhist-test</RequestId></Error>"
)
INTERNAL = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


class Faults:
    """What the next requests get: ``plan`` holds one action per request to come."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.plan: list[str] = []  # "slowdown" | "internal" | "truncate" | "pass"
        self.only: Callable[[dict[str, Any]], bool] = lambda environ: True
        self.injected: dict[str, int] = {}
        self.requests = 0

    def next(self, actions: Iterable[str], only: Callable[[dict[str, Any]], bool] | None = None) -> None:
        with self.lock:
            self.plan = list(actions)
            self.only = only or (lambda environ: True)

    def take(self, environ: dict[str, Any]) -> str:
        with self.lock:
            self.requests += 1
            if not self.plan or not self.only(environ):
                return "pass"
            action = self.plan.pop(0)
            self.injected[action] = self.injected.get(action, 0) + 1
            return action


class FaultyMoto:
    """moto's server on 127.0.0.1 (a free port) behind :class:`Faults`."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        self.faults = Faults()
        app = DomainDispatcherApplication(create_backend_app)
        faults = self.faults

        def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            action = faults.take(environ)
            if action == "slowdown":
                start_response("503 Slow Down", [("Content-Type", "application/xml"), ("Content-Length", str(len(SLOW_DOWN)))])
                return [SLOW_DOWN]
            if action == "internal":
                start_response("500 Internal Server Error",
                               [("Content-Type", "application/xml"), ("Content-Length", str(len(INTERNAL)))])
                return [INTERNAL]
            if action == "truncate":  # the answer's headers, then half its body, then the connection closes
                captured: dict[str, Any] = {}

                def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                    captured.update(status=status, headers=headers)
                    return lambda data: None

                body = b"".join(app(environ, capture))
                start_response(captured["status"], captured["headers"])
                return [body[: len(body) // 2]]
            return app(environ, start_response)

        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, wsgi, threaded=True, request_handler=MotoRequestHandler)
        self.port = int(self.server.server_address[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="moto", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self._thread.join(10)
