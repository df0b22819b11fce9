"""Application states for the per-application endpoints, from the store.

A request loads the attempt's verified snapshot (never the log) and keeps it in a
small LRU. When there is no usable snapshot yet (the scan has not reached the log,
or the snapshot was quarantined), the state is built right away from the log (an
on-demand load): a writer saves it, a standby keeps it in memory only. When that
is impossible too (the source is offline), the answer is a clear 503.
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sparkhist.errors import LogError, ServiceUnavailable, SourceError, StoreError
from sparkhist.reader.layout import is_rolling_dir, rolling_log, single_file_log
from sparkhist.reader.layout import EventLog
from sparkhist.scan.indexer import Indexer
from sparkhist.store.applications import AppEntry, AttemptEntry

log = logging.getLogger("sparkhist.store")

#: Memory of an AppState, measured with tracemalloc (tests/store/test_memory_budget.py
#: keeps these honest): tasks cost ~1,450 bytes each in memory for ~285 pickled; the
#: rest (jobs, stages, SQL plans, environment) ~3.3 times its pickled size.
_PICKLE_TO_MEMORY = 3.3
_TASK_PICKLED = 285
_TASK_MEMORY = 1450


def estimate_state_bytes(state: Any) -> int:
    """Rough memory footprint of a cached state (its own ``estimated_bytes()`` when it has one).

    The pickled size scaled by a measured factor: cheap next to the snapshot load it
    follows (~2 ms for a 160 kB state), and good enough to watch against a budget.
    """
    own = getattr(state, "estimated_bytes", None)
    if callable(own):
        return int(own())
    pickled = getattr(state, "_pickled_bytes", None)
    if not pickled:
        try:
            pickled = len(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:  # an unpicklable test double: count nothing rather than fail the request
            return 0
    tasks = len(getattr(state, "tasks", ()) or ())
    return int(max(0, pickled - tasks * _TASK_PICKLED) * _PICKLE_TO_MEMORY + tasks * _TASK_MEMORY)


class StoreStates:
    def __init__(self, indexer: Indexer, *, is_writer: Callable[[], bool], capacity: int = 100_000,
                 memory_budget: int = 0) -> None:
        self.indexer = indexer
        self.is_writer = is_writer
        self.capacity = capacity
        self._cache: OrderedDict[str, tuple[int, bool, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.loads = 0
        self.builds = 0
        # Memory accounting: the byte estimate hook, the bytes it says the cache holds,
        # and evictions by reason. Over ``memory_budget`` (bytes, 0 = none) the least
        # recently used states leave the cache (they reload from their snapshots).
        self.size_of: Callable[[Any], int] = estimate_state_bytes
        self.memory_budget = memory_budget
        self.cached_bytes = 0
        self._bytes: dict[str, int] = {}
        self._last_size: dict[str, int] = {}  # size of each state when last loaded (kept after eviction)
        self.evictions: dict[str, int] = {}

    def get(self, app: AppEntry, attempt: AttemptEntry) -> Any:
        path = attempt.log_path
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and not self._stale(cached, attempt):
                self._cache.move_to_end(path)
                self.hits += 1
                return cached[2]
        snapshot = None
        self._make_room(path)
        if self.indexer.budget is not None:
            self.indexer.budget.touch(path)
        try:
            snapshot = self.indexer.snapshots.read(path)
        except StoreError:
            snapshot = None  # quarantined or unreadable: rebuilt below
        if snapshot is None or snapshot.log_size < self._known_size(attempt):
            snapshot = self._build(app, path)
            self.builds += 1
        else:
            self.loads += 1
        snapshot.state.finish(attempt.last_updated)  # unfinished tasks run until the attempt's lastUpdated, as in the SHS
        nbytes = self.size_of(snapshot.state)
        with self._lock:
            old = self._cache.get(path)
            if old is not None and old[0] < snapshot.log_size:
                self._count_eviction(path, "stale")
            self._cache[path] = (snapshot.log_size, snapshot.in_progress, snapshot.state)
            self.cached_bytes += nbytes - self._bytes.get(path, 0)
            self._bytes[path] = nbytes
            self._last_size[path] = nbytes
            self._cache.move_to_end(path)
            while len(self._cache) > self.capacity:
                evicted, _ = self._cache.popitem(last=False)
                self._drop(evicted, "capacity")
            while self.memory_budget and self.cached_bytes > self.memory_budget and len(self._cache) > 1:
                evicted, _ = self._cache.popitem(last=False)
                self._drop(evicted, "memory")
        return snapshot.state

    def _make_room(self, path: str) -> None:
        """Evict before loading a state, so the budget holds at the peak too.

        The incoming size is the one measured at its last load, else an upper bound from
        the snapshot's pickled size (tasks, the densest part, cost ~5.1x in memory).
        """
        if not self.memory_budget:
            return
        incoming = self._last_size.get(path) or int(self.indexer.snapshots.pickled_size(path) * _TASK_MEMORY / _TASK_PICKLED)
        if not incoming:
            return
        with self._lock:
            while self._cache and self.cached_bytes + incoming > self.memory_budget:
                evicted, _ = self._cache.popitem(last=False)
                self._drop(evicted, "memory")

    def _drop(self, path: str, reason: str) -> None:
        """Account for an entry that left the cache (call with the lock held)."""
        self.cached_bytes -= self._bytes.pop(path, 0)
        self._count_eviction(path, reason)

    @property
    def cached_entries(self) -> int:
        return len(self._cache)

    def _count_eviction(self, path: str, reason: str) -> None:
        self.evictions[reason] = self.evictions.get(reason, 0) + 1
        log.debug("state of %s evicted from the cache (%s)", path, reason,
                  extra={"event": "eviction", "reason": reason, "log_path": path})

    def _known_size(self, attempt: AttemptEntry) -> int:
        return attempt.total_size

    def _stale(self, cached: tuple[int, bool, Any], attempt: AttemptEntry) -> bool:
        return cached[0] < attempt.total_size

    def _build(self, app: AppEntry, path: str) -> Any:
        try:
            event_log = self._event_log(path)
            return self.indexer.refresh(event_log, persist=self.is_writer())
        except (SourceError, LogError, StoreError) as exc:
            raise ServiceUnavailable(f"application {app.id} is unavailable: {exc}") from exc

    def _event_log(self, path: str) -> EventLog:
        source = self.indexer.source
        entry = source.stat(path)
        return rolling_log(entry, source.list(path)) if is_rolling_dir(entry) else single_file_log(entry)

    def invalidate(self, path: str) -> None:
        with self._lock:
            if self._cache.pop(path, None) is not None:
                self._drop(path, "invalidated")
