"""Application states for the per-application endpoints, from the store.

A request loads the attempt's verified snapshot (never the log) and keeps it in a
small LRU. When there is no usable snapshot yet (the scan has not reached the log,
or the snapshot was quarantined), the state is built right away from the log (an
on-demand load): a writer saves it, a standby keeps it in memory only. When that
is impossible too (the source is offline), the answer is a clear 503.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sparkhist.errors import LogError, ServiceUnavailable, SourceError, StoreError
from sparkhist.reader.layout import is_rolling_dir, rolling_log, single_file_log
from sparkhist.reader.layout import EventLog
from sparkhist.scan.indexer import Indexer
from sparkhist.store.applications import AppEntry, AttemptEntry


class StoreStates:
    def __init__(self, indexer: Indexer, *, is_writer: Callable[[], bool], capacity: int = 32) -> None:
        self.indexer = indexer
        self.is_writer = is_writer
        self.capacity = capacity
        self._cache: OrderedDict[str, tuple[int, bool, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.loads = 0
        self.builds = 0

    def get(self, app: AppEntry, attempt: AttemptEntry) -> Any:
        path = attempt.log_path
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and not self._stale(cached, attempt):
                self._cache.move_to_end(path)
                self.hits += 1
                return cached[2]
        snapshot = None
        try:
            snapshot = self.indexer.snapshots.read(path)
        except StoreError:
            snapshot = None  # quarantined or unreadable: rebuilt below
        if snapshot is None or snapshot.log_size < self._known_size(attempt):
            snapshot = self._build(app, path)
            self.builds += 1
        else:
            self.loads += 1
        snapshot.state.finish()
        with self._lock:
            self._cache[path] = (snapshot.log_size, snapshot.in_progress, snapshot.state)
            self._cache.move_to_end(path)
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return snapshot.state

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
            self._cache.pop(path, None)
