"""Application states for the per-application endpoints, from the store.

A request loads the attempt's verified *summary* (the snapshot's first section: the
state without its tasks) and keeps it in a small LRU; a request that needs the tasks
of a stage attempt loads the task sections holding them, cached in the same LRU and
accounted separately against the memory budget (:mod:`sparkhist.store.snapshots`).
A big stage attempt is chunked: a ``taskList`` page loads only the chunks it shows
(and the stage's small index for a run-time order or a status filter), and a request
that needs every task (quantiles, details) reads the chunks one at a time without
caching them, so what it holds is one chunk, not the stage.
When there is no usable snapshot yet (the scan has not reached the log, or the
snapshot was quarantined), the state is built right away from the log (an on-demand
load): a writer saves it, a standby keeps it in memory only. When that is impossible
too (the source is offline), the answer is a clear 503.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sparkhist.errors import LogError, ServiceUnavailable, SourceError, StoreError
from sparkhist.state import sections
from sparkhist.state.app_state import AppState
from sparkhist.state.entities import Stage, Task
from sparkhist.store.applications import AppEntry, AttemptEntry
from sparkhist.store.disk import DiskBudget
from sparkhist.store.snapshots import Layout, Snapshot, SnapshotChanged, SnapshotStore

log = logging.getLogger("sparkhist.store")

#: Memory of an AppState, measured with tracemalloc (tests/store/test_memory_budget.py
#: keeps these honest): tasks cost ~1,450 bytes each in memory for ~285 pickled; the
#: rest (jobs, stages, SQL plans, environment) ~3.3 times its pickled size.
_PICKLE_TO_MEMORY = 3.3
_TASK_PICKLED = 285
_TASK_MEMORY = 1450


def estimate_state_bytes(state: AppState, pickled: int = 0) -> int:
    """Rough memory footprint of a cached state whose pickle is ``pickled`` bytes (0: measured here).

    The pickled size scaled by a measured factor: free when the state was read from a
    snapshot (:attr:`Snapshot.pickled_bytes`), cheap next to a build otherwise (~2 ms
    for a 160 kB state), and good enough to watch against a budget.
    """
    if not pickled:
        pickled = len(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    return estimate_bytes(pickled, len(state.tasks))


def estimate_bytes(pickled: int, tasks: int) -> int:
    """Memory of ``pickled`` bytes holding ``tasks`` tasks, once unpickled."""
    return int(max(0, pickled - tasks * _TASK_PICKLED) * _PICKLE_TO_MEMORY + tasks * _TASK_MEMORY)


class BuildSnapshot(Protocol):
    """Builds the up-to-date snapshot of the log at ``log_path`` from the log itself, and
    saves it when ``persist`` (the server passes :meth:`sparkhist.scan.indexer.Indexer.build`).

    Raises :class:`SourceError`, :class:`LogError` or :class:`StoreError` when it cannot.
    """

    def __call__(self, log_path: str, *, persist: bool) -> Snapshot: ...


@dataclass(frozen=True, slots=True)
class AttemptState:
    """What a request reads of one attempt: its state, and how to read its tasks."""

    state: AppState
    #: Reads the tasks of a stage attempt from the snapshot's sections when ``state`` is
    #: a summary; None when ``state`` holds its tasks.
    tasks: sections.StageTasks | None


@dataclass(slots=True)
class _StateEntry:
    """A cached state: a snapshot's summary, or a whole state built from the log."""

    log_size: int  # the log's size the state reflects
    state: AppState
    layout: Layout | None  # where the summary's tasks are; None when the state holds them


@dataclass(slots=True)
class _SectionEntry:
    """A cached task section (a task group or a stage index)."""

    generation: int  # of the snapshot file it was read from
    content: Any


#: Cache keys: the log path for a state, (log path, section) for a task section.
_Key = str | tuple[str, int]


class StoreStates:
    def __init__(self, snapshots: SnapshotStore, budget: DiskBudget | None, build: BuildSnapshot, *,
                 is_writer: Callable[[], bool], capacity: int = 100_000, memory_budget: int = 0) -> None:
        self.snapshots = snapshots
        self.budget = budget  # told which snapshots are read, for its least recently used eviction
        self.build = build
        self.is_writer = is_writer
        self.capacity = capacity
        self._cache: OrderedDict[_Key, _StateEntry | _SectionEntry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.loads = 0
        self.builds = 0
        self.section_loads = 0  # task sections read from snapshots
        self.section_hits = 0
        # Memory accounting: the bytes the estimates say the cache holds, and evictions
        # by reason. Over ``memory_budget`` (bytes, 0 = none) the least recently used
        # entries leave the cache (they reload from their snapshots).
        self.memory_budget = memory_budget
        self.cached_bytes = 0
        self._bytes: dict[_Key, int] = {}
        self._last_size: dict[_Key, int] = {}  # size of each entry when last loaded (kept after eviction)
        self.evictions: dict[str, int] = {}
        self.on_invalidate: list[Callable[[str], None]] = []
        #: Brings a log's snapshot into the store when it is missing or older than the log (a replica's
        #: fetch from its shared store, :mod:`sparkhist.server.shared_store`); None: built from the log.
        self.fetch: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ summaries
    def get(self, app: AppEntry, attempt: AttemptEntry) -> AttemptState:
        """The attempt's state: its summary (no task) when it comes from a snapshot."""
        path = attempt.log_path
        with self._lock:
            cached = self._cache.get(path)
            # Not only grown: a log replaced by a shorter one (re-indexed from its start) is stale too.
            if isinstance(cached, _StateEntry) and cached.log_size == attempt.total_size:
                self._cache.move_to_end(path)
                self.hits += 1
                return self._attempt_state(path, cached)
        self._make_room(path, self._last_size.get(path) or int(self.snapshots.pickled_size(path) * _PICKLE_TO_MEMORY))
        if self.budget is not None:
            self.budget.touch(path)
        loaded: tuple[Snapshot, Layout] | None
        try:
            loaded = self.snapshots.read_summary(path)
        except StoreError:
            loaded = None  # quarantined or unreadable: rebuilt below
        if self.fetch is not None and (loaded is None or loaded[0].log_size < attempt.total_size):
            self.fetch(path)  # ServiceUnavailable (a 503 saying why) when it cannot
            try:
                loaded = self.snapshots.read_summary(path)
            except StoreError:
                loaded = None
        layout: Layout | None = None
        if loaded is None or loaded[0].log_size < attempt.total_size:
            snapshot = self._build(app, path)
            self.builds += 1
        else:
            snapshot, layout = loaded  # the summary's tasks are in the sections of ``layout``
            self.loads += 1
        state: AppState = snapshot.state
        state.finish(attempt.last_updated)  # unfinished tasks run until the attempt's lastUpdated, as in the SHS
        nbytes = estimate_state_bytes(state, snapshot.pickled_bytes)
        entry = _StateEntry(snapshot.log_size, state, layout)
        with self._lock:
            old = self._cache.get(path)
            if isinstance(old, _StateEntry) and old.log_size < snapshot.log_size:
                self._count_eviction(path, "stale")
            self._drop_sections(path, keep=layout.generation if layout is not None else None)
            self._put(path, entry, nbytes)
        return self._attempt_state(path, entry)

    def _attempt_state(self, path: str, entry: _StateEntry) -> AttemptState:
        tasks = None if entry.layout is None else SectionTasks(self, path, entry.layout)
        return AttemptState(entry.state, tasks)

    # ------------------------------------------------------------------ task sections
    def task_group(self, path: str, layout: Layout, index: int, *, cache: bool = True) -> sections.TaskGroup:
        """Task group ``index`` of the snapshot ``layout`` was read from."""
        group: sections.TaskGroup = self._section(path, layout, index, list, cache=cache)
        return group

    def stage_index(self, path: str, layout: Layout, index: int) -> sections.StageIndex:
        """Stage index section ``index`` of the snapshot ``layout`` was read from."""
        stage_index: sections.StageIndex = self._section(path, layout, index, sections.StageIndex)
        return stage_index

    def _section(self, path: str, layout: Layout, index: int, kind: type, *, cache: bool = True) -> Any:
        """Section ``index`` (a task group or a stage index); one not in the cache is read
        and, unless ``cache`` is false (a scan over every chunk), kept there."""
        key = (path, index)
        with self._lock:
            cached = self._cache.get(key)
            if isinstance(cached, _SectionEntry) and cached.generation == layout.generation:
                self._cache.move_to_end(key)
                self.section_hits += 1
                return cached.content
        section = layout.sections[index]
        is_index = index >= layout.task_sections_end
        # a stage index is an array and a bytes object: its pickle is its memory
        nbytes = section.raw_length + 256 if is_index else estimate_bytes(section.raw_length, layout.section_tasks[index])
        if cache:
            self._make_room(key, nbytes)
        try:
            content = self.snapshots.read_section(path, layout, index, kind)
        except SnapshotChanged:
            self.invalidate(path)
            raise
        except StoreError as exc:  # damaged (now quarantined) or unreadable: the request starts over
            self.invalidate(path)
            raise SnapshotChanged(f"task section {index} of {path}: {exc}") from exc
        self.section_loads += 1
        if cache:
            with self._lock:
                self._put(key, _SectionEntry(layout.generation, content), nbytes)
        return content

    # ------------------------------------------------------------------ accounting
    def _put(self, key: _Key, entry: _StateEntry | _SectionEntry, nbytes: int) -> None:
        """Cache ``entry`` and enforce capacity and budget (call with the lock held)."""
        self._cache[key] = entry
        self.cached_bytes += nbytes - self._bytes.get(key, 0)
        self._bytes[key] = nbytes
        self._last_size[key] = nbytes
        self._cache.move_to_end(key)
        while len(self._cache) > self.capacity:
            evicted, _ = self._cache.popitem(last=False)
            self._drop(evicted, "capacity")
        while self.memory_budget and self.cached_bytes > self.memory_budget and len(self._cache) > 1:
            evicted, _ = self._cache.popitem(last=False)
            self._drop(evicted, "memory")

    def _make_room(self, key: _Key, incoming: int) -> None:
        """Evict before loading a summary or a section, so the budget holds at the peak too.

        The incoming size is the one measured at its last load, else an estimate from the
        section's uncompressed size in the snapshot's table.
        """
        if not self.memory_budget or not incoming:
            return
        with self._lock:
            while self._cache and self.cached_bytes + incoming > self.memory_budget:
                evicted, _ = self._cache.popitem(last=False)
                self._drop(evicted, "memory")

    def _drop(self, key: _Key, reason: str) -> None:
        """Account for an entry that left the cache (call with the lock held)."""
        self.cached_bytes -= self._bytes.pop(key, 0)
        self._count_eviction(key, reason)

    def _drop_sections(self, path: str, keep: int | None) -> None:
        """Forget the task sections of ``path`` not of generation ``keep`` (lock held)."""
        stale = [k for k, v in self._cache.items()
                 if isinstance(k, tuple) and k[0] == path and isinstance(v, _SectionEntry) and v.generation != keep]
        for key in stale:
            del self._cache[key]
            self._drop(key, "stale")

    @property
    def cached_entries(self) -> int:
        return len(self._cache)

    def _count_eviction(self, key: _Key, reason: str) -> None:
        self.evictions[reason] = self.evictions.get(reason, 0) + 1
        log.debug("%s evicted from the cache (%s)", key, reason,
                  extra={"event": "eviction", "reason": reason, "log_path": key if isinstance(key, str) else key[0]})

    def _build(self, app: AppEntry, path: str) -> Snapshot:
        try:
            return self.build(path, persist=self.is_writer())
        except (SourceError, LogError, StoreError) as exc:
            raise ServiceUnavailable(f"application {app.id} is unavailable: {exc}") from exc

    def invalidate(self, path: str) -> None:
        """Forget what memory holds of ``path`` (its next request reads the store), here
        and in every listener of :attr:`on_invalidate` (e.g. kept rendered answers)."""
        with self._lock:
            if self._cache.pop(path, None) is not None:
                self._drop(path, "invalidated")
            self._drop_sections(path, keep=None)
        for listener in self.on_invalidate:
            listener(path)


class SectionTasks(sections.StageTasks):
    """The tasks of the stage attempts of one snapshot's summary, read from its sections."""

    def __init__(self, states: StoreStates, path: str, layout: Layout) -> None:
        self.states = states
        self.path = path
        self.layout = layout

    def _group(self, index: int, key: sections.StageKey, cache: bool = True) -> list[Task]:
        return sections.tasks_of_group(self.states.task_group(self.path, self.layout, index, cache=cache), key)

    def all(self, st: Stage) -> list[Task]:
        key = (st.info.stage_id, st.info.attempt_id)
        if key in self.layout.stage_chunks:
            return [t for chunk in self.chunks(st) for t in chunk]
        index = self.layout.stage_sections.get(key)
        return [] if index is None else self._group(index, key)

    def chunks(self, st: Stage, reverse: bool = False) -> Iterator[list[Task]]:
        key = (st.info.stage_id, st.info.attempt_id)
        chunked = self.layout.stage_chunks.get(key)
        if chunked is None:
            yield self.all(st)
            return
        indices: Iterable[int] = reversed(chunked[0]) if reverse else chunked[0]
        for index in indices:
            yield self._group(index, key, cache=False)

    def page(self, st: Stage, sort_by: str, statuses: set[str] | None, offset: int,
             length: int) -> list[Task] | None:
        key = (st.info.stage_id, st.info.attempt_id)
        chunked = self.layout.stage_chunks.get(key)
        if chunked is None:
            return None  # one section at most: the caller sorts it
        chunk_sections, starts, index_section = chunked
        total = starts[-1]
        if sort_by == "ID" and not statuses:
            positions: list[int] = list(range(min(offset, total), min(offset + length, total)))
        else:
            stage_index = self.states.stage_index(self.path, self.layout, index_section)
            order: Iterable[int] = range(total)
            if sort_by == "INCREASING_RUNTIME":
                order = stage_index.by_runtime
            elif sort_by == "DECREASING_RUNTIME":
                order = reversed(stage_index.by_runtime)
            if statuses:
                codes = {sections.STATUS_CODES[s] for s in statuses if s in sections.STATUS_CODES}
                marks = stage_index.statuses
                order = (p for p in order if marks[p] in codes)
            positions = list(itertools.islice(order, offset, offset + length))
        return self.at(st, positions)

    def at(self, st: Stage, positions: list[int]) -> list[Task]:
        key = (st.info.stage_id, st.info.attempt_id)
        chunked = self.layout.stage_chunks.get(key)
        if chunked is None:
            return super().at(st, positions)
        chunk_sections, starts, _ = chunked
        loaded: dict[int, list[Task]] = {}
        out = []
        for p in positions:
            c = bisect.bisect_right(starts, p) - 1
            chunk = loaded.get(c)
            if chunk is None:
                chunk = loaded[c] = self._group(chunk_sections[c], key)
            out.append(chunk[p - starts[c]])
        return out
