"""A circuit breaker: stop calling an endpoint that keeps failing, probe it now and then.

::

    closed ──(failure_threshold consecutive failures)──▶ open
    open ──(reset_timeout elapsed, on the next request)──▶ half_open   (one trial call)
    half_open ──(trial succeeds)──▶ closed
    half_open ──(trial fails)──▶ open                                  (cool-down restarts)
    any ──(trip(why): proof from elsewhere that the endpoint is down)──▶ open

The breaker only decides; the caller asks :meth:`CircuitBreaker.allow` before a call and
reports :meth:`record_success` / :meth:`record_failure` after it. Time comes from an
injected ``clock`` (monotonic seconds), so tests step through every transition without
sleeping. Each transition is one log line on ``sparkhist.source`` and is counted in
:attr:`CircuitBreaker.transitions` (keyed by the new state) for metrics; :attr:`state`,
:attr:`opened_at` and :attr:`consecutive_failures` are plain attributes. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

log = logging.getLogger("sparkhist.source")


class CircuitBreaker:
    """One endpoint's breaker (one per source)."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, not {failure_threshold}")
        if reset_timeout < 0:
            raise ValueError(f"reset_timeout must not be negative, not {reset_timeout}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self.logger = logger
        self.state = CLOSED
        self.opened_at: float | None = None  # clock() of the last move to open
        self.changed_at: float = clock()  # clock() of the last transition
        self.consecutive_failures = 0
        self.transitions: Counter[str] = Counter()  # new state -> count
        self.last_error: str | None = None
        self._trial_in_flight = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, {self.state}, failures={self.consecutive_failures})"

    # -- decisions -----------------------------------------------------------------------
    def allow(self) -> bool:
        """Whether a call may go out now. In half-open state only one trial at a time."""
        with self._lock:
            if self.state == CLOSED:
                return True
            if self.state == OPEN:
                assert self.opened_at is not None
                if self.clock() - self.opened_at < self.reset_timeout:
                    return False
                self._move(HALF_OPEN, f"cool-down of {self.reset_timeout:.1f}s over, trying one call")
            if self._trial_in_flight:
                return False
            self._trial_in_flight = True
            return True

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when not open)."""
        with self._lock:
            if self.state != OPEN or self.opened_at is None:
                return 0.0
            return max(0.0, self.reset_timeout - (self.clock() - self.opened_at))

    # -- outcomes ------------------------------------------------------------------------
    def record_success(self) -> None:
        with self._lock:
            self.consecutive_failures = 0
            self._trial_in_flight = False
            if self.state != CLOSED:
                self._move(CLOSED, "call succeeded")

    def record_failure(self, error: BaseException | str | None = None) -> None:
        with self._lock:
            self.consecutive_failures += 1
            self._trial_in_flight = False
            if error is not None:
                self.last_error = str(error)
            if self.state == HALF_OPEN:
                self._move(OPEN, f"trial call failed: {self.last_error}")
            elif self.state == CLOSED and self.consecutive_failures >= self.failure_threshold:
                self._move(OPEN, f"{self.consecutive_failures} consecutive failures, last: {self.last_error}")

    def trip(self, why: str) -> None:
        """Open now, whatever the count: the caller has independent proof that the
        endpoint is down (e.g. a hung call, and no NameNode answered a probe either)."""
        with self._lock:
            self._trial_in_flight = False
            self.last_error = why
            if self.state != OPEN:
                self._move(OPEN, why)

    def release(self) -> None:
        """Forget a granted trial whose outcome says nothing about the endpoint."""
        with self._lock:
            self._trial_in_flight = False

    # -- internals -----------------------------------------------------------------------
    def _move(self, new: str, why: str) -> None:
        old, self.state = self.state, new
        now = self.clock()
        self.changed_at = now
        if new == OPEN:
            self.opened_at = now
        self.transitions[new] += 1
        level = logging.WARNING if new == OPEN else logging.INFO
        self.logger.log(level, "circuit %s: %s -> %s (%s)", self.name, old, new, why)
