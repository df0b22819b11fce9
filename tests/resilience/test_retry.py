"""Retry policy and backoff: decisions tested without sleeping (injected sleep/clock/rand)."""

from __future__ import annotations

import pytest

from sparkhist.errors import SourceError, SourceNotFound, SourceUnavailable
from sparkhist.resilience.retry import Backoff, RetryPolicy, RetryState, is_retryable


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def flaky(failures: list[BaseException], value: str = "ok"):
    calls = []

    def fn() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return value

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


# -- backoff ------------------------------------------------------------------------------
def test_backoff_is_exponential_without_jitter() -> None:
    b = Backoff(base=0.1, cap=10.0, multiplier=2.0, jitter=0.0)
    assert [b.delay(n) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.4, 0.8])


def test_backoff_is_capped() -> None:
    b = Backoff(base=1.0, cap=3.0, jitter=0.0)
    assert b.delay(10) == 3.0


@pytest.mark.parametrize("r, factor", [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5)])
def test_backoff_jitter_spreads_around_the_exponential(r: float, factor: float) -> None:
    b = Backoff(base=0.2, cap=10.0, jitter=0.5)
    assert b.delay(2, rand=lambda: r) == pytest.approx(0.4 * factor)


def test_backoff_jitter_never_exceeds_the_cap() -> None:
    b = Backoff(base=1.0, cap=1.0, jitter=0.5)
    assert b.delay(5, rand=lambda: 1.0) == 1.0


@pytest.mark.parametrize("kwargs", [{"base": -1}, {"multiplier": 0.5}, {"jitter": 1.5}])
def test_backoff_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_backoff_retry_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        Backoff().delay(0)


# -- retry loop -----------------------------------------------------------------------------
def policy(clock: FakeClock, **kwargs) -> RetryPolicy:
    kwargs.setdefault("backoff", Backoff(base=0.1, cap=1.0, jitter=0.0))
    return RetryPolicy(sleep=clock.sleep, clock=clock, rand=lambda: 0.5, **kwargs)


def test_success_needs_no_sleep() -> None:
    clock = FakeClock()
    assert policy(clock).call(lambda: 42) == 42
    assert clock.slept == []


def test_retryable_errors_are_retried_with_backoff() -> None:
    clock = FakeClock()
    fn = flaky([SourceUnavailable("a"), SourceUnavailable("b")])
    assert policy(clock, attempts=3).call(fn) == "ok"
    assert len(fn.calls) == 3
    assert clock.slept == pytest.approx([0.1, 0.2])


def test_gives_up_after_attempts_and_reraises_the_last_error() -> None:
    clock = FakeClock()
    last = SourceUnavailable("third")
    fn = flaky([SourceUnavailable("1"), SourceUnavailable("2"), last])
    with pytest.raises(SourceUnavailable) as info:
        policy(clock, attempts=3).call(fn)
    assert info.value is last
    assert len(fn.calls) == 3
    assert len(clock.slept) == 2  # no sleep after the last attempt


@pytest.mark.parametrize("error", [SourceNotFound("gone"), SourceError("permanent"), ValueError("bug")])
def test_permanent_errors_are_not_retried(error: Exception) -> None:
    clock = FakeClock()
    fn = flaky([error])
    with pytest.raises(type(error)):
        policy(clock, attempts=5).call(fn)
    assert len(fn.calls) == 1
    assert clock.slept == []


def test_budget_stops_retrying_before_it_is_exceeded() -> None:
    clock = FakeClock()

    def slow_failure() -> None:
        clock.now += 1.0  # each attempt takes a second (e.g. a deadline)
        raise SourceUnavailable("timeout")

    with pytest.raises(SourceUnavailable):
        policy(clock, attempts=10, budget=2.5).call(slow_failure)
    # attempt 1 ends at 1.0, sleep 0.1 -> attempt 2 ends at 2.1; 2.1 + 0.2 < 2.5 -> attempt 3
    # ends at 3.3: over budget, stop.
    assert clock.slept == pytest.approx([0.1, 0.2])


def test_custom_predicate_and_before_sleep_hook() -> None:
    clock = FakeClock()
    seen: list[tuple[int, BaseException | None, float]] = []

    def hook(s: RetryState) -> None:
        seen.append((s.attempt, s.error, s.next_sleep))

    fn = flaky([KeyError("x")])
    result = policy(clock, retry_on=lambda e: isinstance(e, KeyError), before_sleep=hook).call(fn)
    assert result == "ok"
    assert len(seen) == 1
    attempt, error, next_sleep = seen[0]
    assert attempt == 1 and isinstance(error, KeyError) and next_sleep == pytest.approx(0.1)


def test_should_retry_is_a_pure_decision() -> None:
    p = RetryPolicy(attempts=2, clock=lambda: 0.0)
    assert p.should_retry(RetryState(started=0.0, attempt=1, error=SourceUnavailable("x")))
    assert not p.should_retry(RetryState(started=0.0, attempt=2, error=SourceUnavailable("x")))
    assert not p.should_retry(RetryState(started=0.0, attempt=1, error=SourceNotFound("x")))
    assert not p.should_retry(RetryState(started=0.0, attempt=1, error=None))


def test_base_exceptions_are_never_swallowed() -> None:
    clock = FakeClock()
    fn = flaky([KeyboardInterrupt()])
    with pytest.raises(KeyboardInterrupt):
        policy(clock, attempts=3, retry_on=lambda e: True).call(fn)
    assert len(fn.calls) == 1


def test_is_retryable_reads_the_error_class() -> None:
    assert is_retryable(SourceUnavailable("x"))
    assert not is_retryable(SourceNotFound("x"))
    assert not is_retryable(RuntimeError("x"))


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
