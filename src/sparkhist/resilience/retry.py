"""Retries as small policies: a jittered exponential backoff and a retry loop around it.

Shape borrowed from tenacity (STYLE.md §4): the policy is data, the decision is a pure
function of an explicit :class:`RetryState`, and every side effect (sleeping, reading
the clock, drawing the jitter) is injected, so tests decide without waiting::

    policy = RetryPolicy(attempts=3, backoff=Backoff(base=0.1, cap=2.0))
    result = policy.call(fetch)                 # retries errors with ``retryable = True``

    slept = []
    RetryPolicy(attempts=3, sleep=slept.append, rand=lambda: 0.5).call(flaky)
    assert slept == [0.1, 0.2]

Giving up re-raises the last error unchanged (it already is a
:class:`~sparkhist.errors.SourceUnavailable` or similar), so callers catch one category.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

__all__ = ["Backoff", "RetryPolicy", "RetryState", "is_retryable"]

log = logging.getLogger("sparkhist.source")


@dataclass(frozen=True, slots=True)
class Backoff:
    """``min(cap, base * multiplier**(n-1)) * U(1 - jitter, 1 + jitter)`` before retry ``n``.

    ``jitter`` is the relative spread: 0.5 draws from [0.5x, 1.5x] (as hdfs-native's own
    failover sleep does), 0 gives the plain exponential. The result never exceeds ``cap``.
    """

    base: float = 0.1
    cap: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.multiplier < 1 or not 0 <= self.jitter <= 1:
            raise ValueError(f"invalid backoff {self}")

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry)."""
        if retry < 1:
            raise ValueError(f"retry numbers start at 1, not {retry}")
        raw = min(self.cap, self.base * self.multiplier ** (retry - 1))
        spread = 1.0 + self.jitter * (2.0 * rand() - 1.0)
        return min(self.cap, raw * spread)


def is_retryable(exc: BaseException) -> bool:
    """The default retry predicate: errors that say so (``SourceUnavailable.retryable``)."""
    return bool(getattr(exc, "retryable", False))


@dataclass(slots=True)
class RetryState:
    """Everything a retry decision may look at (tenacity's ``RetryCallState``)."""

    started: float  # clock() when the call began
    attempt: int = 0  # attempts made so far
    error: BaseException | None = None  # outcome of the last attempt
    next_sleep: float = 0.0  # what the policy decided to wait before the next one
    slept: float = 0.0  # total time spent sleeping


@dataclass(slots=True)
class RetryPolicy:
    """Up to ``attempts`` tries of one call, sleeping ``backoff`` between them.

    A retry is made only when ``retry_on(error)`` holds and, with a ``budget``, when the
    next attempt would still start within ``budget`` seconds of the first one. A
    ``before_sleep(state)`` hook sees each decision (for logs and metrics).
    """

    attempts: int = 3
    backoff: Backoff = field(default_factory=Backoff)
    budget: float | None = None
    retry_on: Callable[[BaseException], bool] = is_retryable
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = random.random
    before_sleep: Callable[[RetryState], None] | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")

    def should_retry(self, state: RetryState) -> bool:
        """Pure decision: may another attempt follow the one that just failed?"""
        if state.error is None or state.attempt >= self.attempts:
            return False
        if not self.retry_on(state.error):
            return False
        if self.budget is not None:
            elapsed = self.clock() - state.started
            if elapsed + state.next_sleep >= self.budget:
                return False
        return True

    def call(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` until it returns, a non-retryable error, or the policy gives up."""
        state = RetryState(started=self.clock())
        while True:
            state.attempt += 1
            try:
                return fn()
            except Exception as exc:
                state.error = exc
                state.next_sleep = self.backoff.delay(state.attempt, self.rand)
                if not self.should_retry(state):
                    raise
            if self.before_sleep is not None:
                self.before_sleep(state)
            else:
                log.debug("attempt %d failed (%s); retrying in %.3fs", state.attempt, state.error, state.next_sleep)
            self.sleep(state.next_sleep)
            state.slept += state.next_sleep
