"""A Source wrapper that counts every call by outcome and tells ok / degraded / offline.

Why a wrapper: every backend (local, HDFS, S3) would otherwise count its own calls in
its own way; wrapping once at the seam counts them all alike, and the backends stay
free of metrics code. What a backend knows beyond its call outcomes (the HDFS source's
retries and circuit breaker) is in its ``health()`` (a
:class:`~sparkhist.source.base.SourceHealth`); that answer is merged in.

States of one log directory:

- ``offline``: the log directory itself cannot be listed (the last listing of the
  root failed), or the backend says so. sparkhist serves from the store only.
- ``degraded``: another call (a stat, an open, the listing of a rolling log) failed
  within the last ``window`` seconds, or the backend says so (e.g. a breaker
  half-open). Failures of the root listing do not linger here: once the directory
  lists again, the source is ``ok``.
- ``ok``: otherwise.

Each change of state is one log line (``event`` ``offline_entered``,
``offline_left`` or ``source_state``).
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sparkhist.errors import SourceError, SourceNotFound
from sparkhist.resilience.breaker import CLOSED, HALF_OPEN, OPEN
from sparkhist.source.base import ByteStream, FileEntry, Source, SourceHealth
from sparkhist.source.skipped import SkippedLogs

log = logging.getLogger("sparkhist.source")

STATES = ("ok", "degraded", "offline")  # in order of severity
BREAKER_STATES = ("closed", "half-open", "open")  # their gauge values are 0, 1, 2
OUTCOMES = ("ok", "missing", "error")
#: resilience.breaker's states as BREAKER_STATES spells them.
_BREAKER_NAMES = {CLOSED: "closed", HALF_OPEN: "half-open", OPEN: "open"}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BackendHealth:
    """What a backend's own ``health()`` says, as the status needs it (defaults: nothing to report)."""

    state: str = "ok"
    since: float | None = None
    last_error: str | None = None
    breaker: str = "closed"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """The health of one log directory at one instant."""

    log_dir: str
    state: str
    since: float
    last_error: str | None
    last_error_at: float | None
    breaker: str
    requests: dict[tuple[str, str], int] = field(default_factory=dict)  # (op, outcome) -> calls

    @property
    def up(self) -> bool:
        return self.state != "offline"


class ObservedSource:
    """Delegates to ``inner``; ``list``/``stat``/``open`` are counted as ok, missing or error.

    A missing file is an answer, not a failure (``missing``), except for the log
    directory itself: a log directory that vanished is the source failing. The rest of
    the :class:`~sparkhist.source.base.Source` protocol (``delete``, ``calls``,
    ``health``, ``close``) is the inner source's, uncounted; so are attributes of a
    backend beyond it (``opens``, ``guard``...).
    """

    def __init__(self, inner: Source, *, clock: Callable[[], float] = time.time, window: float = 60.0) -> None:
        self.inner = inner
        self._clock = clock
        self._window = window
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._root_failed = False
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        self._last_failure_at: float | None = None  # of a call other than the root listing
        self._state = "ok"
        self._since = clock()

    @property
    def root(self) -> str:
        return self.inner.root

    @property
    def root_path(self) -> str:
        return self.inner.root_path

    @property
    def calls(self) -> Mapping[str, int]:
        return self.inner.calls

    @property
    def skipped(self) -> SkippedLogs:
        return self.inner.skipped

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def list(self, path: str) -> builtins.list[FileEntry]:
        return self._call("list", path, lambda: self.inner.list(path))

    def stat(self, path: str) -> FileEntry:
        return self._call("stat", path, lambda: self.inner.stat(path))

    def open(self, path: str, offset: int = 0) -> ByteStream:
        return self._call("open", path, lambda: self.inner.open(path, offset))

    def delete(self, path: str) -> None:
        self.inner.delete(path)

    def join(self, parent: str, name: str) -> str:
        return self.inner.join(parent, name)

    def health(self) -> SourceHealth:
        """The inner source's own report (:meth:`status` is this wrapper's, merged)."""
        return self.inner.health()

    def close(self) -> None:
        self.inner.close()

    def _call(self, op: str, path: str, fn: Callable[[], T]) -> T:
        is_root = op == "list" and path == self.inner.root_path
        try:
            result = fn()
        except SourceNotFound as exc:
            self._record(op, "error" if is_root else "missing", exc if is_root else None, is_root)
            raise
        except SourceError as exc:
            self._record(op, "error", exc, is_root)
            raise
        self._record(op, "ok", None, is_root)
        return result

    def _record(self, op: str, outcome: str, exc: Exception | None, is_root: bool) -> None:
        now = self._clock()
        with self._lock:
            key = (op, outcome)
            self._requests[key] = self._requests.get(key, 0) + 1
            if exc is not None:
                self._last_error, self._last_error_at = f"{op}: {exc}", now
            if is_root:
                self._root_failed = exc is not None
            elif exc is not None:
                self._last_failure_at = now
            changed = self._derived_locked(now) != self._state
        if changed or is_root:  # the backend's view is asked at most once per scan otherwise
            self.status()

    def _derived_locked(self, now: float) -> str:
        if self._root_failed:
            return "offline"
        if self._last_failure_at is not None and now - self._last_failure_at < self._window:
            return "degraded"
        return "ok"

    def status(self) -> SourceStatus:
        """The current state (merging the backend's ``health()``), logging a change once."""
        backend = backend_health(self.inner)
        now = self._clock()
        with self._lock:
            state = worst(self._derived_locked(now), backend.state)
            if backend.breaker == "open":
                state = worst(state, "degraded")
            previous = self._state
            if state != previous:
                self._state, self._since = state, backend.since or now
            status = SourceStatus(
                log_dir=self.inner.root,
                state=state,
                since=self._since,
                last_error=self._last_error if self._last_error is not None else backend.last_error,
                last_error_at=self._last_error_at,
                breaker=backend.breaker,
                requests=dict(self._requests),
            )
        if state != previous:
            _log_transition(status, previous)
        return status


def observe(source: Source) -> ObservedSource:
    """``source`` observed; when it reads several log directories (a
    :class:`~sparkhist.source.multi.SourceSet`), each directory is observed too, so each has its
    own state (:func:`observed_directories`)."""
    from sparkhist.source.multi import SourceSet

    if isinstance(source, SourceSet):
        source = SourceSet([ObservedSource(s) for s in source.sources])
    return ObservedSource(source)


def observed_directories(source: ObservedSource) -> list[ObservedSource]:
    """Each log directory's observed source: ``source``'s own when it reads one directory."""
    from sparkhist.source.multi import directories

    parts = directories(source)
    if len(parts) > 1 and all(isinstance(p, ObservedSource) for p in parts):
        return [p for p in parts if isinstance(p, ObservedSource)]
    return [source]


def _log_transition(status: SourceStatus, previous: str) -> None:
    event = "offline_entered" if status.state == "offline" else "offline_left" if previous == "offline" else "source_state"
    level = logging.INFO if status.state == "ok" else logging.WARNING
    log.log(level, "log directory %s is %s (was %s)%s", status.log_dir, status.state, previous,
            f": {status.last_error}" if status.state != "ok" and status.last_error else "",
            extra={"event": event, "log_dir": status.log_dir, "state": status.state, "previous": previous})


def worst(a: str, b: str) -> str:
    return a if STATES.index(a) >= STATES.index(b) else b


def backend_health(source: Source) -> BackendHealth:
    """The source's own ``health()``, as :meth:`ObservedSource.status` merges it.

    A source whose ``health()`` raises is reported as it is seen from its call outcomes
    alone: health must never break metrics or ``/health``.
    """
    try:
        health = source.health()
    except Exception as exc:  # noqa: BLE001 - health must never break metrics or /health
        log.debug("health() of %s failed: %s", source.root, exc)
        return BackendHealth()
    breaker = health["breaker"]
    return BackendHealth(
        state=health["state"],
        since=health["since"],
        last_error=health["last_error"],
        breaker="closed" if breaker is None else _BREAKER_NAMES.get(breaker["state"], "closed"),
    )
