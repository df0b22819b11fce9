"""Full application states for the per-application endpoints.

Interim design (until per-attempt snapshots land in the store): the state of an
attempt is built once from its log, on first request, and kept in a small LRU keyed
by (log path, log size) so a grown log is rebuilt. It never replays per request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

from sparkhist.reader.layout import is_rolling_dir, rolling_log, single_file_log
from sparkhist.reader.stream import read_lines
from sparkhist.source.base import Source
from sparkhist.store.applications import AppEntry, AttemptEntry


class OnDemandStates:
    def __init__(self, source: Source, new_state: Callable[[], Any], capacity: int = 16) -> None:
        self.source = source
        self.new_state = new_state
        self.capacity = capacity
        self._cache: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple[str, int], threading.Lock] = {}

    def get(self, app: AppEntry, attempt: AttemptEntry) -> Any:
        entry = self.source.stat(attempt.log_path)
        event_log = rolling_log(entry, self.source.list(entry.path)) if is_rolling_dir(entry) else single_file_log(entry)
        key = (attempt.log_path, event_log.total_size)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:  # one build per key, however many requests wait for it
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            state = self.new_state()
            for line, _ in read_lines(self.source, event_log):
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                state.apply(event)
            finish = getattr(state, "finish", None)
            if finish is not None:
                finish()
            with self._lock:
                self._cache[key] = state
                self._building.pop(key, None)
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
            return state
