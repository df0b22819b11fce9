"""Circuit breaker state machine, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import logging

import pytest

from sparkhist.resilience.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 3, reset: float = 10.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker("hdfs://ns", failure_threshold=threshold, reset_timeout=reset, clock=clock), clock


def test_starts_closed_and_allows_calls() -> None:
    b, _ = make()
    assert b.state == CLOSED and b.allow()
    assert b.opened_at is None and sum(b.transitions.values()) == 0


def test_opens_after_n_consecutive_failures() -> None:
    b, clock = make(threshold=3)
    b.record_failure("e1")
    b.record_failure("e2")
    assert b.state == CLOSED
    b.record_failure("e3")
    assert b.state == OPEN
    assert b.opened_at == clock.now
    assert b.transitions == {OPEN: 1}
    assert b.last_error == "e3"
    assert not b.allow()


def test_a_success_resets_the_failure_count() -> None:
    b, _ = make(threshold=3)
    b.record_failure()
    b.record_failure()
    b.record_success()
    b.record_failure()
    b.record_failure()
    assert b.state == CLOSED and b.consecutive_failures == 2


def test_half_open_after_cool_down_lets_one_trial_through() -> None:
    b, clock = make(threshold=1, reset=10.0)
    b.record_failure()
    clock.now += 9.9
    assert not b.allow()
    assert b.retry_after() == pytest.approx(0.1)
    clock.now += 0.1
    assert b.allow()  # the trial
    assert b.state == HALF_OPEN
    assert not b.allow()  # only one trial at a time


def test_trial_success_closes() -> None:
    b, clock = make(threshold=1)
    b.record_failure()
    clock.now += 10
    assert b.allow()
    b.record_success()
    assert b.state == CLOSED and b.allow()
    assert b.transitions == {OPEN: 1, HALF_OPEN: 1, CLOSED: 1}


def test_trial_failure_reopens_and_restarts_the_cool_down() -> None:
    b, clock = make(threshold=1, reset=10.0)
    b.record_failure()
    clock.now += 10
    assert b.allow()
    b.record_failure("still down")
    assert b.state == OPEN and b.opened_at == clock.now
    clock.now += 5
    assert not b.allow()
    assert b.transitions[OPEN] == 2


def test_release_frees_a_trial_without_an_outcome() -> None:
    b, clock = make(threshold=1)
    b.record_failure()
    clock.now += 10
    assert b.allow()
    b.release()
    assert b.state == HALF_OPEN and b.allow()


def test_each_transition_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    b, clock = make(threshold=2)
    with caplog.at_level(logging.INFO, logger="sparkhist.source"):
        b.record_failure("boom")
        b.record_failure("boom")
        clock.now += 10
        b.allow()
        b.record_success()
    lines = [r.getMessage() for r in caplog.records if r.name == "sparkhist.source"]
    assert len(lines) == 3
    assert "closed -> open" in lines[0] and "boom" in lines[0]
    assert "open -> half_open" in lines[1]
    assert "half_open -> closed" in lines[2]
    assert caplog.records[0].levelno == logging.WARNING


@pytest.mark.parametrize("kwargs", [{"failure_threshold": 0}, {"reset_timeout": -1}])
def test_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", **kwargs)
