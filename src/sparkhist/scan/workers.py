"""Full indexing in worker processes, so every core parses.

Each worker keeps its own source, snapshot store and indexer, reads a log, builds its
state and writes the snapshot itself (atomically, like the in-process path); only a
small summary comes back. Workers are started with ``spawn``: the server is
multi-threaded, and forking it could inherit a held lock.

Workers live only while there is indexing to do: a pool left unused for
``idle_seconds`` is shut down (its processes exit and give their memory back), and the
next indexing starts a new one (~0.3 s of CPU per worker). A server that has indexed
everything is then one process.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sparkhist.reader.layout import EventLog

if TYPE_CHECKING:
    from sparkhist.analytics.pending import Entry
    from sparkhist.scan.indexer import Indexer
    from sparkhist.source.factory import SourceOptions
    from sparkhist.store.snapshots import SnapshotStore


@dataclass(frozen=True, slots=True)
class Built:
    """What the parent needs of a snapshot built in a worker."""

    log_path: str
    log_size: int
    in_progress: bool
    persisted: bool
    snapshot_bytes: int
    bytes_read: int
    lines: int
    rows: Entry | None = None  # the attempt's analytics rows, for the scanning process to write (tables on)


class BuildPool(Protocol):
    """Where full indexing runs when not in the scanning process: :class:`IndexPool` (worker
    processes) or :class:`~sparkhist.scan.on_spark.SparkIndexPool` (a Spark cluster)."""

    def run(self, jobs: list[tuple[EventLog, bool]]) -> Iterator[tuple[EventLog, Built | BaseException]]:
        """Build every (log, persist) job; one result per job."""
        ...

    def stop(self) -> None:
        """Stop now: builds not started are not run."""
        ...

    def close(self) -> None: ...


#: A pool unused this long is shut down (its workers exit).
IDLE_SECONDS = 30.0
#: On a stop, how long the builds under way may take to finish before their processes are killed.
STOP_GRACE = 0.5

_worker: tuple[Indexer, SnapshotStore] | None = None  # this worker's indexer and the store it writes

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Pool initializer: a worker must not outlive a server killed with SIGKILL.

    Linux delivers SIGKILL to the worker when its parent dies (``PR_SET_PDEATHSIG``);
    the parent check covers a parent that died before the call.

    SIGINT and SIGTERM are the parent's to handle: a Ctrl-C (sent to the whole process
    group) or a service manager's SIGTERM to every process must not fail the builds
    under way one by one before the parent knows it is stopping; the parent stops its
    workers itself (:meth:`IndexPool.stop`).
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
    except (OSError, AttributeError):
        pass  # not Linux: workers still exit when the call queue closes
    if os.getppid() != parent_pid:
        os._exit(0)


def _indexer(root: str, store_dir: str, options: SourceOptions | None) -> tuple[Indexer, SnapshotStore]:
    global _worker
    if _worker is None:
        from sparkhist.scan.indexer import Indexer
        from sparkhist.source.factory import open_source
        from sparkhist.state.app_state import AppState
        from sparkhist.store.snapshots import SnapshotStore

        snapshots = SnapshotStore(store_dir)
        _worker = Indexer(open_source(root, options), snapshots, AppState), snapshots
    return _worker


def build_in_worker(root: str, store_dir: str, options: SourceOptions | None, event_log: EventLog,
                    persist: bool) -> Built:
    indexer, snapshots = _indexer(root, store_dir, options)
    before_bytes, before_lines = indexer.bytes_read, indexer.events_parsed
    rows: list[Entry] = []
    indexer.rows_to = rows.append  # written by the scanning process, several attempts per file
    snapshot = indexer.refresh(event_log, persist=persist)
    size = 0
    if snapshot.persisted:
        try:
            size = os.path.getsize(snapshots.path_for(event_log.path))
        except OSError:
            size = 0
    return Built(event_log.path, snapshot.log_size, snapshot.in_progress, snapshot.persisted, size,
                 indexer.bytes_read - before_bytes, indexer.events_parsed - before_lines, rows[-1] if rows else None)


class IndexPool:
    """A lazily started pool of indexing processes."""

    def __init__(self, root: str, store_dir: str, workers: int, options: SourceOptions | None = None,
                 idle_seconds: float = IDLE_SECONDS) -> None:
        """``options``: the source settings the server was given (flags included); without
        them a worker reads only the ``SPARKHIST_*`` environment."""
        self.root = root
        self.options = options
        self.store_dir = store_dir
        self.workers = workers
        self.idle_seconds = idle_seconds
        self.started = 0  # pools started so far (one per stretch of indexing)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._running = 0  # run() calls in progress
        self._last_used = time.monotonic()
        self._timer: threading.Timer | None = None
        self._stopped = False  # by stop(): no pool is started again

    @property
    def alive(self) -> bool:
        return self._pool is not None

    def run(self, jobs: list[tuple[EventLog, bool]]) -> Iterator[tuple[EventLog, Built | BaseException]]:
        """Build every (log, persist) job; results come back in submission order.

        A job that cannot run gets an exception as its result, never raised: after
        :meth:`stop` (no pool is started for it: a stop racing a scan's move to its full
        indexing), or when the pool was shut down or broken meanwhile (a worker killed, e.g.
        by the kernel's OOM killer). A broken pool is dropped, so the next run starts a new one.
        """
        with self._lock:
            if self._stopped:
                pool = None
            else:
                if self._pool is None:
                    self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_die_with_parent, initargs=(os.getpid(),))
                    self.started += 1
                pool = self._pool
                self._running += 1
        if pool is None:
            for event_log, _ in jobs:
                yield event_log, CancelledError("the indexing workers are stopped")
            return
        try:
            futures: list[tuple[EventLog, Future[Built]]] = []
            refused: RuntimeError | None = None
            for event_log, persist in jobs:
                try:
                    futures.append((event_log, pool.submit(build_in_worker, self.root, self.store_dir, self.options,
                                                           event_log, persist)))
                except RuntimeError as exc:  # shut down (a stop) or broken since: the rest cannot run
                    refused = exc
                    break
            for event_log, future in futures:
                # Not yielded inside the try: a caller that stops early (a stop) closes this
                # generator, and the GeneratorExit must not be taken for a failed build.
                try:
                    result: Built | BaseException = future.result()
                except Exception as exc:  # noqa: BLE001 - reported per log by the caller (a cancel, a broken pool too)
                    result = exc
                yield event_log, result
            for event_log, _ in jobs[len(futures):]:
                yield event_log, refused or CancelledError()
        finally:
            with self._lock:
                self._running -= 1
                self._last_used = time.monotonic()
                if self._pool is pool and getattr(pool, "_broken", False):  # private: nothing public tells it
                    # The executor's own clean-up of a broken pool sends SIGTERM to the
                    # workers left and joins them: ours ignore SIGTERM, so they are killed
                    # here, or that join (and the interpreter's exit after it) waits forever.
                    _kill(_processes_of(pool))
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = None
                self._arm_retirement()

    def _arm_retirement(self) -> None:
        """(Under the lock.) Check again once the pool may have been idle long enough."""
        if self._timer is None and self._pool is not None and self.idle_seconds >= 0:
            self._timer = threading.Timer(self.idle_seconds, self._retire_if_idle)
            self._timer.daemon = True
            self._timer.start()

    def _retire_if_idle(self) -> None:
        with self._lock:
            self._timer = None
            if self._pool is None or self._running:
                return
            idle = time.monotonic() - self._last_used
            if idle < self.idle_seconds:
                self._arm_retirement()  # used meanwhile: look again later
                return
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop now (SIGTERM, Ctrl-C): builds not started are cancelled, those under way
        get ``grace`` seconds to finish, then their processes are killed.

        A killed build leaves at most a temporary file (snapshots are written to a
        temporary name, then renamed), which the next writer removes; its log stays
        lagging in the catalog and is built again. Waiting for running builds, as
        :meth:`close` lets them run, could take as long as the largest log.
        """
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = _processes_of(pool)
        pool.shutdown(wait=False, cancel_futures=True)  # each idle worker gets its "exit" sentinel
        deadline = time.monotonic() + grace
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        _kill(processes)


def _processes_of(pool: ProcessPoolExecutor) -> list[multiprocessing.process.BaseProcess]:
    """The pool's worker processes (private: shutdown() drops them, nothing public names them)."""
    return list((getattr(pool, "_processes", None) or {}).values())


def _kill(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """SIGKILL the living ones (workers ignore SIGTERM: see _die_with_parent) and reap them."""
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(1.0)
