"""The runtime being completed in the background, for the requests that need it.

``serve`` answers before its runtime is complete (:mod:`sparkhist.server.startup`):
a request that needs the rest (``/metrics``, ``/health/details``, an on-demand load)
waits here, and asks the start-up to complete it now rather than after the first answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sparkhist.errors import ServiceUnavailable

if TYPE_CHECKING:
    from sparkhist.server.runtime import Runtime

#: Longest a request that needs the full runtime waits for it while the server starts.
STARTUP_WAIT = 600.0

#: Requests answered before the metrics existed that are counted once they do (at most).
_OBSERVED_MAX = 100_000


class PendingRuntime:
    """The runtime once complete; until then, what the HTTP layer is given in its place
    (metrics, health and readiness) waits for it or counts requests for later."""

    def __init__(self, on_wanted: Callable[[], None] = lambda: None) -> None:
        self.runtime: Runtime | None = None
        self.failed: BaseException | None = None
        self._done = threading.Event()
        self.wanted = threading.Event()  # a request waits for the runtime: complete it now
        self._on_wanted = on_wanted
        self._lock = threading.Lock()
        self._observed: list[tuple[str, int, float]] = []  # requests answered before the metrics existed

    def set(self, runtime: Runtime | None, failed: BaseException | None = None) -> None:
        with self._lock:
            self.runtime, self.failed = runtime, failed
            if runtime is not None and runtime.metrics is not None:
                for args in self._observed:
                    runtime.metrics.observe_request(*args)
            self._observed = []
        self._done.set()

    def want(self) -> None:
        """A request needs what is still being made: ask the start-up to make it now."""
        self.wanted.set()
        self._on_wanted()

    def wait(self, timeout: float = STARTUP_WAIT) -> Runtime:
        self.want()
        if not self._done.wait(timeout) or self.runtime is None:
            raise ServiceUnavailable(f"sparkhist is starting: {self.failed or 'the store is still loading'}")
        return self.runtime

    @property
    def ready(self) -> bool:
        return self.runtime is not None

    # -- what the HTTP layer is given --------------------------------------------------
    def observe_request(self, route: str, status: int, seconds: float) -> None:
        runtime = self.runtime
        if runtime is None:
            with self._lock:
                if self.runtime is None:
                    if len(self._observed) < _OBSERVED_MAX:
                        self._observed.append((route, status, seconds))
                    return
                runtime = self.runtime
        assert runtime.metrics is not None
        runtime.metrics.observe_request(route, status, seconds)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        metrics = self.wait().metrics
        assert metrics is not None
        return metrics.exposition(accept)

    def health(self) -> dict[str, Any]:
        from sparkhist.observability.health import health_document

        probe = self.wait().probe
        assert probe is not None
        return health_document(probe)

    def is_ready(self) -> bool:
        runtime = self.runtime
        return runtime is not None and runtime.probe is not None and runtime.probe.ready()
