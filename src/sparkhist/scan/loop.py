"""The background scan loop: the writer scans, a standby re-reads the catalog.

A standby (another process holds the store's writer lock) serves from the catalog
and tries to take the lock on every tick, so it takes over scanning within one
interval of the writer's death.

With a watch (:mod:`sparkhist.scan.watch`, one per local log directory), the writer also
checks the entries a file-system notification named as soon as it comes, between
scans, in the same thread (a check never runs beside a scan); a standby ignores them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sparkhist.scan.cleaner import Cleaner
from sparkhist.scan.scanner import Scanner
from sparkhist.source.base import Source
from sparkhist.source.local import LocalSource
from sparkhist.store.lock import WriterLock
from sparkhist.store.snapshots import SnapshotStore

if TYPE_CHECKING:
    from sparkhist.scan.watch import LogDirWatch

log = logging.getLogger("sparkhist.scan")

#: How long a stop waits for a scan under way to end (after the log at hand).
STOP_WAIT = 1.5


class ScanLoop:
    """Ticks every ``interval`` seconds. ``snapshots``: the state files a new writer
    cleans up after the one it replaces (temporary files of interrupted writes)."""

    def __init__(self, scanner: Scanner, lock: WriterLock, interval: float, *, role: str,
                 snapshots: SnapshotStore | None = None) -> None:
        self.scanner = scanner
        self.lock = lock
        self.snapshots = snapshots
        self.interval = interval
        self.role = role
        self.takeovers = 0
        self.cleaner: Cleaner | None = None
        self.cleaner_interval = 86400.0
        self._last_clean = float("-inf")
        self.scans = 0
        self.last_scan_end: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sparkhist-scan", daemon=True)
        # Notified entries waiting for a check (None among them: a full scan is wanted).
        self.watches: list[LogDirWatch] = []  # one per local log directory
        self.checks = 0
        self._wake = threading.Event()
        self._pending: set[str] = set()
        self._scan_wanted = False
        self._pending_lock = threading.Lock()
        self._watches_started = False
        # Set once the first scan has listed what it found (its listing pass, before its full
        # indexing), or its first tick has ended otherwise (a standby's read, a failed scan);
        # never by a stop. What would slow a cold start's listing waits for it.
        self.listed = threading.Event()
        scanner.on_listed.append(self._listed)

    def _listed(self) -> None:
        if not self._stop.is_set():
            self.listed.set()

    def start(self) -> None:
        self._thread.start()

    def _start_watches(self) -> None:
        """After the first scan: setting up a recursive watch walks every rolling directory
        (seconds of CPU at 10,000 logs) and would slow the first listing; a log written
        meanwhile is seen by the next scan, which starts at once after a long first one."""
        with self._pending_lock:  # not beside a stop
            if not self._watches_started:
                self._watches_started = True
                for watch in self.watches:
                    watch.start()

    @property
    def watch(self) -> LogDirWatch | None:
        """The first directory's watch (None: no local directory is watched)."""
        return self.watches[0] if self.watches else None

    def watch_local_directories(self, directories: Iterable[Source]) -> None:
        """A watch of each local directory among ``directories`` (each log directory's source,
        observed or not): notifications of any of them reach :meth:`notify`."""
        from sparkhist.scan.watch import LogDirWatch

        for source in directories:
            inner = getattr(source, "inner", source)
            if isinstance(inner, LocalSource):
                self.watches.append(LogDirWatch(inner.root_path, self.notify))

    def notify(self, entries: set[str] | None) -> None:
        """Root entries changed (None: many, scan everything): checked by the loop's thread at once."""
        with self._pending_lock:
            if entries is None:
                self._scan_wanted = True
            else:
                self._pending |= entries
        self._wake.set()

    def stop_soon(self) -> None:
        """Tell the loop and a scan under way to stop after the log at hand, without waiting
        (a signal handler's first step: the scan stops while the server finishes its requests)."""
        self._stop.set()
        self._wake.set()
        self.scanner.stopping.set()

    def stop(self, timeout: float = STOP_WAIT) -> bool:
        """Stop ticking; a scan under way ends after the log at hand (its indexing
        processes are stopped). True when the scan thread ended within ``timeout``
        seconds: then the writer lock is released. Otherwise the thread may still write,
        so the lock stays held (the process's exit releases it)."""
        self.stop_soon()
        if self.scanner.pool is not None:
            self.scanner.pool.stop()
        with self._pending_lock:  # no watch starts after this
            started, self._watches_started = self._watches_started, True
        for watch in self.watches if started else ():
            watch.stop(timeout=0.0)  # told to stop; its thread ends within its next timeout, unwaited
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the scan did not stop within %.1fs (one long log); not waiting for it", timeout,
                        extra={"event": "scan_stop_timeout"})
            return False
        self.lock.release()
        return True

    def _run(self) -> None:
        next_scan = time.monotonic()
        while not self._stop.is_set():
            with self._pending_lock:
                scan = self._scan_wanted or time.monotonic() >= next_scan
                pending, self._pending = self._pending, set()
                if scan:
                    self._scan_wanted = False
            try:
                if scan:
                    next_scan = time.monotonic() + self.interval
                    self.tick()  # sees whatever was notified before it listed
                elif pending and self.role == "writer":
                    self.scanner.check_entries(pending)
                    self.checks += 1
            except Exception:  # the loop must survive anything one scan does
                log.exception("scan failed; retrying in %.1fs", self.interval)
            if scan:
                self._listed()
                self._start_watches()
            self._wake.wait(max(0.0, next_scan - time.monotonic()))
            self._wake.clear()

    def tick(self) -> None:
        if self.lock.try_acquire():
            if self.role != "writer":
                self._take_over()
            self.scanner.scan_once()
            self.scans += 1
            self.last_scan_end = time.time()
            cleaning_due = time.monotonic() - self._last_clean >= self.cleaner_interval
            if self.cleaner is not None and cleaning_due and not self._stop.is_set():
                self.cleaner.clean()
                self._last_clean = time.monotonic()
        else:
            if self.role != "standby":
                log.info("store is written by pid %s; serving as read-only standby", self.lock.holder_pid(),
                         extra={"event": "standby"})
                self.role = "standby"
            self.scanner.reload_from_catalog()

    def _take_over(self) -> None:
        """The writer died (its lock freed): become the writer and resume its work."""
        t0 = time.monotonic()
        self.scanner.catalog.promote(self.scanner.source.root)
        self.scanner.load()
        if self.snapshots is not None:
            self.snapshots.remove_temp_files()
        self.role = "writer"
        self.takeovers += 1
        log.info("took over as the store's writer in %.3fs", time.monotonic() - t0, extra={"event": "takeover"})
