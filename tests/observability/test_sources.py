"""ObservedSource: call outcomes, ok/degraded/offline with an injected clock, a backend's health()."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from sparkhist.errors import SourceNotFound, SourceUnavailable
from sparkhist.observability.sources import ObservedSource, backend_health
from sparkhist.source.base import BreakerHealth, HealthState, SourceHealth
from sparkhist.source.local import LocalSource


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def logdir(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "app-1").write_text("{}\n")
    return tmp_path / "logs"


def test_outcomes_and_delegation(logdir: Path) -> None:
    source = ObservedSource(LocalSource(str(logdir)))
    assert source.root == "file:" + str(logdir) and source.root_path == str(logdir)
    assert [e.name for e in source.list(source.root_path)] == ["app-1"]
    source.open(source.join(source.root_path, "app-1")).close()
    with pytest.raises(SourceNotFound):
        source.stat(source.join(source.root_path, "nope"))
    status = source.status()
    assert status.requests == {("list", "ok"): 1, ("open", "ok"): 1, ("stat", "missing"): 1}
    assert status.state == "ok", "a missing file is an answer, not a failure"
    assert (source.lists, source.opens) == (1, 1)  # the inner source's own counters


def test_lost_root_is_offline_until_it_lists_again(logdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    source = ObservedSource(LocalSource(str(logdir)), clock=clock)
    moved = logdir.with_name("moved")
    logdir.rename(moved)
    caplog.set_level(logging.INFO, "sparkhist.source")
    with pytest.raises(SourceNotFound):
        source.list(source.root_path)
    status = source.status()
    assert (status.state, status.up, status.since) == ("offline", False, 1_000.0)
    assert status.requests == {("list", "error"): 1}
    assert [r.event for r in caplog.records] == ["offline_entered"]  # type: ignore[attr-defined]

    clock.now += 30
    moved.rename(logdir)
    source.list(source.root_path)
    status = source.status()
    assert (status.state, status.since) == ("ok", 1_030.0)
    assert [r.event for r in caplog.records] == ["offline_entered", "offline_left"]  # type: ignore[attr-defined]


def test_other_failures_degrade_for_a_window(logdir: Path) -> None:
    clock = Clock()
    inner = LocalSource(str(logdir))
    source = ObservedSource(inner, clock=clock, window=60)

    def broken(path: str, offset: int = 0) -> Any:
        raise SourceUnavailable("Input/output error")

    inner.open = broken  # type: ignore[method-assign]
    with pytest.raises(SourceUnavailable):
        source.open(source.join(source.root_path, "app-1"))
    assert source.status().state == "degraded"
    assert source.status().last_error == "open: Input/output error"
    clock.now += 61
    assert source.status().state == "ok"


def report(state: HealthState, breaker: str | None = None, *, since: float | None = None,
           last_error: str | None = None) -> SourceHealth:
    """A source's own health report; ``breaker``: its breaker's state (None: it has none)."""
    return SourceHealth(
        source="nn", state=state, since=since, last_error=last_error, last_error_at=None,
        breaker=None if breaker is None else BreakerHealth(
            state=breaker, opened_at=None, consecutive_failures=0, transitions={}, retry_after=0.0),
    )


@pytest.mark.parametrize(
    ("raw", "state", "breaker"),
    [
        (report("ok", "closed"), "ok", "closed"),
        (report("degraded", "half_open"), "degraded", "half-open"),
        (report("offline", "open"), "offline", "open"),
        (report("ok"), "ok", "closed"),  # no breaker (local disk)
        # source.guard's own report (HDFS, WebHDFS)
        (report("degraded", "half_open", since=1.0, last_error="list: refused"), "degraded", "half-open"),
    ],
)
def test_backend_health_reads_the_source_report(raw: SourceHealth, state: str, breaker: str) -> None:
    class Backend(LocalSource):
        def health(self) -> SourceHealth:
            return raw

    health = backend_health(Backend("."))
    assert (health.state, health.breaker) == (state, breaker)
    assert (health.since, health.last_error) == (raw["since"], raw["last_error"])


def test_backend_health_merges_into_the_status(logdir: Path) -> None:
    class Hdfs(LocalSource):
        def __init__(self, root: str) -> None:
            super().__init__(root)
            self.report: Any = report("ok", "closed")

        def health(self) -> Any:
            if isinstance(self.report, Exception):
                raise self.report
            return self.report

    inner = Hdfs(str(logdir))
    source = ObservedSource(inner)
    assert source.status().state == "ok"
    inner.report = report("degraded", "open", last_error="nn1: connection refused", since=5.0)
    status = source.status()
    assert (status.state, status.breaker, status.last_error, status.since) == \
        ("degraded", "open", "nn1: connection refused", 5.0)
    inner.report = RuntimeError("health itself broke")
    assert source.status().state == "ok"  # seen from the call outcomes alone


def test_a_guarded_source_reports_its_breaker(logdir: Path) -> None:
    """The HDFS/WebHDFS sources' SourceGuard: an open breaker is offline, breaker 'open'."""
    from sparkhist.source.guard import SourceGuard, default_retry

    class Guarded(LocalSource):
        def __init__(self, root: str) -> None:
            super().__init__(root)
            self.guard = SourceGuard("nn", retry=default_retry(sleep=lambda s: None))
            self.up = True

        def list(self, path: str) -> Any:
            def attempt() -> Any:
                if not self.up:
                    raise SourceUnavailable("connection refused")
                return LocalSource.list(self, path)
            return self.guard.run("list", attempt)

        def health(self) -> SourceHealth:
            return self.guard.health()

    inner = Guarded(str(logdir))
    source = ObservedSource(inner)
    source.list(source.root_path)
    assert (source.status().state, source.status().breaker) == ("ok", "closed")
    inner.up = False
    for _ in range(3):
        with pytest.raises(SourceUnavailable):
            source.list(source.root_path)
    status = source.status()
    assert (status.state, status.breaker, status.up) == ("offline", "open", False)
    assert status.requests[("list", "error")] == 3


def test_the_rest_of_the_protocol_is_the_inner_sources(logdir: Path) -> None:
    """delete, calls, health and close go to the inner source, uncounted."""
    inner = LocalSource(str(logdir))
    source = ObservedSource(inner)
    source.stat(source.join(source.root_path, "app-1"))
    assert source.calls == {"stat": 1}
    assert source.health() == inner.health()
    source.delete(source.join(source.root_path, "app-1"))
    assert not (logdir / "app-1").exists()
    source.close()
    assert source.status().requests == {("stat", "ok"): 1}
