"""Full indexing: every event of a log into an :class:`AppState`, saved as a snapshot.

A snapshot records the position it reflects, so a grown log is continued from there,
never replayed: only the new bytes (plus at most one block or frame) are read. One
build per log at a time, whoever asks (the scan loop or an API request).
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import os
import pickle
import threading
from collections.abc import Callable
from typing import Any

import orjson

from sparkhist.analytics import batch, pending
from sparkhist.analytics.layout import analytics_dir
from sparkhist.errors import LogError, StoreCorrupt, StoreError
from sparkhist.reader.layout import EventLog, find_event_log
from sparkhist.reader.position import START
from sparkhist.reader.stream import ReadStats, read_lines
from sparkhist.source.base import Source
from sparkhist.state import native_tasks
from sparkhist.state.app_state import AppState
from sparkhist.state.events import MALFORMED, check_shape
from sparkhist.store.disk import DiskBudget
from sparkhist.store.snapshots import Snapshot, SnapshotStore, snapshot_name

log = logging.getLogger("sparkhist.index")


class Indexer:
    def __init__(self, source: Source, snapshots: SnapshotStore, new_state: Callable[[], Any],
                 budget: DiskBudget | None = None) -> None:
        self.source = source
        self.snapshots = snapshots
        self.new_state = new_state
        self.budget = budget
        self.unsaved = 0  # states built but not written (disk full or critical)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Threads waiting for another's build of a log, and that build's snapshot, handed to them
        # (a request and the scan asking for the same new log at once: one replay, not a replay
        # and a read of the snapshot it wrote).
        self._waiting: dict[str, int] = {}
        self._handoff: dict[str, Snapshot] = {}
        self.builds = 0
        self.bytes_read = 0
        self.events_parsed = 0  # lines read by full indexing (for metrics)
        # Make the analytics rows after each snapshot, when the store keeps the tables (its
        # analytics/ directory exists: made by the writer with SPARKHIST_ANALYTICS_TABLES on),
        # and hand them to ``rows_to``: this process's buffer of the store (None), or a worker's
        # build summary (the scanning process buffers them, analytics.batch).
        self.tables = True
        self.rows_to: Callable[[pending.Entry], None] | None = None
        if budget is not None:  # an evicted snapshot's rows go with it
            budget.on_evict.append(self._drop_rows)

    def _drop_rows(self, log_path: str) -> None:
        store_dir = os.path.dirname(self.snapshots.dir)
        if os.path.isdir(analytics_dir(store_dir)):
            self.take_rows(pending.tombstone_of_log(log_path))

    def take_rows(self, entry: pending.Entry) -> None:
        """Analytics rows made here or by a worker: into this process's buffer of the store."""
        batch.buffer_for(os.path.dirname(self.snapshots.dir)).add(entry)

    def _lock_for(self, path: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(path, threading.Lock())

    def refresh(self, event_log: EventLog, *, persist: bool = True) -> Snapshot:
        """The up-to-date snapshot of ``event_log``, reading only what it lacks.

        Raises :class:`SourceError` when the source fails (the old snapshot stays). When
        the snapshot cannot be saved (disk full or over the critical watermark) the state
        is still returned, with ``persisted`` False, and a later scan saves it.
        """
        path = event_log.path
        lock = self._lock_for(path)
        if not lock.acquire(blocking=False):
            with self._locks_guard:
                self._waiting[path] = self._waiting.get(path, 0) + 1
            lock.acquire()
            with self._locks_guard:
                self._waiting[path] -= 1
                handed = self._handoff.get(path)
                if not self._waiting[path]:
                    del self._waiting[path]
                    self._handoff.pop(path, None)
            if (handed is not None and handed.log_size == event_log.total_size
                    and handed.in_progress == event_log.in_progress and (handed.persisted or not persist)):
                lock.release()
                return handed
        try:
            snapshot = self._refresh(event_log, persist)
            with self._locks_guard:
                if self._waiting.get(path):
                    self._handoff[path] = snapshot
            return snapshot
        finally:
            lock.release()

    def _refresh(self, event_log: EventLog, persist: bool) -> Snapshot:
        """:meth:`refresh`, the log's lock held."""
        previous = self._previous(event_log)
        if (previous is not None and previous.log_size == event_log.total_size
                and previous.in_progress == event_log.in_progress):
            previous.persisted = True
            return previous
        if previous is not None:
            state, start = previous.state, previous.position
        else:
            state, start = self.new_state(), START
        position = start
        stats = ReadStats()
        lines = read_lines(self.source, event_log, start, stats=stats)
        fast = native_tasks.fast_path()  # task events decoded by the compiled module, when installed
        gc_enabled = gc.isenabled()
        gc.disable()  # the state grows by objects per task: collections meanwhile walk it, again and again (~10% CPU)
        try:
            for line, after in lines:
                if fast is not None and fast(state, line):
                    position = after
                    continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    position = after
                    continue  # already reported with its line number by the listing pass
                if isinstance(event, dict):
                    try:
                        check_shape(event)
                        state.apply(event)
                    except MALFORMED as exc:  # valid JSON of the wrong shape: skipped like invalid JSON
                        log.warning("%s line %d: malformed %.100r event skipped (%s: %s)", event_log.path, after.line,
                                    event.get("Event"), type(exc).__name__, exc)
                position = after
        except LogError as exc:
            log.warning("log %s: %s (state built from the %d lines before it)", event_log.path, exc, position.line)
        finally:
            if gc_enabled:
                gc.enable()
            lines.close()  # a read stopped early closes its file now, not at garbage collection
            self.bytes_read += stats.bytes_read
            self.events_parsed += stats.lines
        state.finish()
        resume_file = event_log.files[min(position.file_index, len(event_log.files) - 1)].name
        # The size read with the previous snapshot stays the grown state's memory estimate
        # (an underestimate, but no second pickling of the state); a saved one's is measured
        # as it is written; an unsaved new one's is estimated here.
        snapshot = Snapshot(event_log.path, position, resume_file, event_log.total_size, event_log.in_progress, state,
                            log_mtime_ms=event_log.mtime_ms,
                            pickled_bytes=0 if previous is None else previous.pickled_bytes)
        self.builds += 1
        snapshot.persisted = persist and self._save(snapshot)
        if not snapshot.persisted and not snapshot.pickled_bytes:
            snapshot.pickled_bytes = pickled_size(state)
        return snapshot

    def build(self, log_path: str, *, persist: bool) -> Snapshot:
        """:meth:`refresh` of the log at ``log_path``, found on the source first (an API
        request's build: it knows the path only).

        Raises :class:`SourceError` (:class:`SourceNotFound` when the log is gone) or
        :class:`LayoutError` when the log cannot be found or read.
        """
        return self.refresh(find_event_log(self.source, log_path), persist=persist)

    def _save(self, snapshot: Snapshot) -> bool:
        """Write the snapshot if the disk allows; False leaves it for a later retry."""
        if self.budget is not None and not self.budget.may_write():
            self.unsaved += 1
            return False
        try:
            size = self.snapshots.write(snapshot)
        except StoreError as exc:
            self.unsaved += 1
            if self.budget is not None:
                self.budget.write_failures += 1
                self.budget.enforce()
            log.error("%s; serving it from memory, will save it later", exc)
            return False
        if self.budget is not None:
            self.budget.wrote(snapshot.log_path, size)
        store_dir = os.path.dirname(self.snapshots.dir)
        if self.tables and os.path.isdir(analytics_dir(store_dir)):
            try:
                stamp = os.stat(os.path.join(self.snapshots.dir, snapshot_name(snapshot.log_path))).st_mtime_ns
                (self.rows_to or self.take_rows)(pending.entry_of(snapshot, stamp))
            except (OSError, StoreError) as exc:  # the snapshot is saved; the writer's next repair writes them
                log.warning("analytics rows of %s not written: %s", snapshot.log_path, exc)
        return True

    def _previous(self, event_log: EventLog) -> Snapshot | None:
        try:
            snapshot = self.snapshots.read(event_log.path)
        except StoreCorrupt:
            return None  # quarantined; rebuilt from the log below
        except StoreError as exc:
            log.warning("%s; rebuilding from the log", exc)
            return None
        if snapshot is None:
            return None
        if isinstance(snapshot.state, AppState) and not snapshot.state.read_as_answered():
            return None  # read as another release reads logs: start over
        index = snapshot.position.file_index
        if snapshot.log_size > event_log.total_size or index >= len(event_log.files):
            return None  # the log shrank or was replaced: start over
        if event_log.files[index].name != snapshot.resume_file:
            return None  # a rolling log was compacted under us
        return snapshot


#: Tasks pickled to measure a task's pickled size in :func:`pickled_size`.
_TASK_SAMPLE = 64


def pickled_size(state: Any) -> int:
    """About the bytes ``state`` pickles to, what a memory estimate reads
    (:func:`sparkhist.store.states.estimate_state_bytes`), without pickling every task: an
    :class:`AppState`'s fields but its tasks pickled, and its tasks as a sample of them
    pickled times their number (~5 ms for 12,000 tasks instead of ~70 ms). 0 for anything
    else (the estimate then measures it).
    """
    if not isinstance(state, AppState):
        return 0
    rest = {f.name: getattr(state, f.name) for f in dataclasses.fields(state) if f.name != "tasks"}
    size = len(pickle.dumps(rest, protocol=pickle.HIGHEST_PROTOCOL))
    tasks = state.tasks
    if tasks:
        sample = list(itertools.islice(tasks.values(), _TASK_SAMPLE))
        size += len(pickle.dumps(sample, protocol=pickle.HIGHEST_PROTOCOL)) * len(tasks) // len(sample)
    return size
