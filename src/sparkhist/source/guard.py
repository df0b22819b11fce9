"""One source's fault policy: circuit breaker + retries + health + call counters.

Every remote call of the HDFS and WebHDFS sources goes through :meth:`SourceGuard.run`::

    guard.run("stat", attempt, on_failure=rotate)

* the breaker is asked first; while it is open the call fails at once with
  :class:`CircuitOpen` (a :class:`~sparkhist.errors.SourceUnavailable` that is not
  retried within the call);
* ``attempt`` is one try, already bounded by its deadline, raising only
  ``sparkhist.errors`` classes. :class:`~sparkhist.errors.SourceUnavailable` counts as a
  failure of the endpoint, calls ``on_failure`` (e.g. rotate the NameNode list) and is
  retried with jittered backoff; any other outcome (including "not found") shows the
  endpoint answering; :class:`~sparkhist.source.faults.Throttled` (an object store's
  "slow down") is retried with the same backoff but says the endpoint is up, only
  busy: it never opens the breaker, and is counted in ``throttled``;
* ``calls`` counts attempts per operation (``list``, ``stat``, ``open``, ``read``, ...),
  i.e. the remote calls made, for tests and metrics.

:meth:`SourceGuard.health` is what ``/health`` shows for the source: ``ok`` (last call
answered), ``degraded`` (the last attempt failed or the breaker is trying again),
``offline`` (breaker open), with the time the state began and the last error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Final, TypeVar

from sparkhist.errors import SourceError, SourceUnavailable
from sparkhist.resilience.breaker import HALF_OPEN, OPEN, CircuitBreaker
from sparkhist.resilience.retry import Backoff, RetryPolicy
from sparkhist.source.base import HealthState, SourceHealth
from sparkhist.source.faults import Throttled

T = TypeVar("T")

__all__ = ["CircuitOpen", "SourceGuard", "default_retry"]

log = logging.getLogger("sparkhist.source")

OK: Final = "ok"
DEGRADED: Final = "degraded"
OFFLINE: Final = "offline"


class CircuitOpen(SourceUnavailable):
    """The source's breaker is open: failing fast without calling the endpoint."""

    retryable = False  # not within this call; the caller's next scan tries again


def default_retry(
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    *,
    retries: int = 3,
    timeout: float = 3.0,
) -> RetryPolicy:
    """``retries`` retries, 0.25 s doubling up to 2 s (±50 %) apart, within ``3 * timeout``.

    The backoff spans ~1.75 s in all, long enough for a graceful failover (both
    NameNodes standby for a moment). The budget bounds the calls whose attempts each
    cost a whole deadline (hung endpoints) to about three deadlines; a source also
    marks a deadline after which no endpoint answered at all as not retryable.
    """
    return RetryPolicy(attempts=retries + 1, backoff=Backoff(base=0.25, cap=2.0), budget=3 * timeout, sleep=sleep, clock=clock)


class SourceGuard:
    """Breaker, retries and health of one source (one endpoint: a nameservice or a host)."""

    def __init__(
        self,
        name: str,
        *,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.retry = retry or default_retry()
        self.breaker = breaker or CircuitBreaker(name, failure_threshold=5, reset_timeout=10.0)
        self.wall = wall
        self.calls: Counter[str] = Counter()  # op -> attempts (remote calls) made
        self.failures: Counter[str] = Counter()  # op -> attempts that failed as unavailable
        self.fast_failures = 0  # calls refused by the open breaker
        self.throttled: Counter[str] = Counter()  # op -> attempts answered "slow down"
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._state: HealthState = OK
        self._since = wall()
        self._lock = threading.Lock()

    def run(self, op: str, attempt: Callable[[], T], *, on_failure: Callable[[SourceUnavailable], None] | None = None) -> T:
        """One guarded call of ``op``: breaker check, attempts with retries, outcome recording."""

        def once() -> T:
            if not self.breaker.allow():
                with self._lock:
                    self.fast_failures += 1
                raise CircuitOpen(
                    f"{self.name}: circuit open after repeated failures (last: {self.breaker.last_error}); "
                    f"next trial in {self.breaker.retry_after():.1f}s"
                )
            with self._lock:
                self.calls[op] += 1
            try:
                result = attempt()
            except Throttled as exc:
                self.breaker.release()  # busy, not down: no failure, no success
                with self._lock:
                    self.throttled[op] += 1
                    self.last_error, self.last_error_at = f"{op}: {exc}", self.wall()
                raise
            except SourceUnavailable as exc:
                self.breaker.record_failure(exc)
                self._record(op, exc)
                if on_failure is not None:
                    on_failure(exc)
                raise
            except SourceError:
                self.breaker.record_success()  # the endpoint answered: "no such file" is an answer
                self._record(op, None)
                raise
            except BaseException:
                self.breaker.release()
                raise
            self.breaker.record_success()
            self._record(op, None)
            return result

        return self.retry.call(once)

    def _record(self, op: str, error: SourceUnavailable | None) -> None:
        with self._lock:
            if error is not None:
                self.failures[op] += 1
                self.last_error = f"{op}: {error}"
                self.last_error_at = self.wall()
            self._refresh()

    def _refresh(self) -> None:
        state: HealthState
        if self.breaker.state == OPEN:
            state = OFFLINE
        elif self.breaker.state == HALF_OPEN or self.breaker.consecutive_failures > 0:
            state = DEGRADED
        else:
            state = OK
        if state != self._state:
            log.log(logging.INFO if state == OK else logging.WARNING, "source %s is %s (was %s)", self.name, state, self._state)
            self._state, self._since = state, self.wall()

    @property
    def state(self) -> HealthState:
        with self._lock:
            self._refresh()
            return self._state

    def health(self) -> SourceHealth:
        with self._lock:
            self._refresh()
            out: SourceHealth = {
                "source": self.name,
                "state": self._state,
                "since": self._since,
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
                "breaker": {
                    "state": self.breaker.state,
                    "opened_at": self.breaker.opened_at,
                    "consecutive_failures": self.breaker.consecutive_failures,
                    "transitions": dict(self.breaker.transitions),
                    "retry_after": self.breaker.retry_after(),
                },
                "calls": dict(self.calls),
                "failures": dict(self.failures),
                "fast_failures": self.fast_failures,
            }
            if self.throttled:
                out["throttled"] = dict(self.throttled)
            return out
