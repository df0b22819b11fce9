"""ObservedSource: call outcomes, ok/degraded/offline with an injected clock, a backend's health()."""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import Any

import pytest

from sparkhist.errors import SourceNotFound, SourceUnavailable
from sparkhist.observability.sources import ObservedSource, backend_health
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


class Breaker(enum.Enum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


@pytest.mark.parametrize(
    ("raw", "state", "breaker"),
    [
        ({"state": "ok", "breaker": "closed"}, "ok", "closed"),
        ({"status": "degraded", "breaker_state": 1}, "degraded", "half-open"),
        ({"state": "offline", "breaker": Breaker.OPEN}, "offline", "open"),
        ({"state": "down", "breaker": {"nn1": "closed", "nn2": "half_open"}}, "offline", "half-open"),
        ({"state": "weird", "breaker": 7}, "ok", "closed"),
        # source.guard's own shape (HDFS, WebHDFS)
        ({"state": "degraded", "since": 1.0, "last_error": "list: refused",
          "breaker": {"state": "half_open", "opened_at": 1.0, "consecutive_failures": 2, "retry_after": 0.0}},
         "degraded", "half-open"),
        ({"state": "ok", "breaker": {"state": "closed", "opened_at": None, "consecutive_failures": 1}}, "ok", "closed"),
    ],
)
def test_backend_health_is_read_leniently(raw: dict[str, Any], state: str, breaker: str) -> None:
    class Backend:
        def health(self) -> dict[str, Any]:
            return raw

    health = backend_health(Backend())
    assert (health.state, health.breaker) == (state, breaker)


def test_backend_health_merges_into_the_status(logdir: Path) -> None:
    class Hdfs(LocalSource):
        def __init__(self, root: str) -> None:
            super().__init__(root)
            self.report: Any = {"state": "ok", "breaker": "closed"}

        def health(self) -> Any:
            if isinstance(self.report, Exception):
                raise self.report
            return self.report

    inner = Hdfs(str(logdir))
    source = ObservedSource(inner)
    assert source.status().state == "ok"
    inner.report = {"state": "degraded", "breaker": "open", "last_error": "nn1: connection refused", "since": 5.0}
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

        def health(self) -> dict[str, Any]:
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
