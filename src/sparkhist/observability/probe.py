"""Reads the numbers health and metrics report from the running parts, on demand.

One place computes each figure (the scan lag, the application counts, the disk
usage...), so ``/health/details`` and ``/metrics`` can never disagree. Nothing here
takes the scanner's lock: a scrape must not wait for a scan to finish a log.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sparkhist.files import FileSystemUsage
from sparkhist.observability.disk import DiskUsage
from sparkhist.observability.sources import ObservedSource, SourceStatus
from sparkhist.scan.loop import ScanLoop
from sparkhist.scan.scanner import Scanner, ScanReport
from sparkhist.source.skipped import Skip
from sparkhist.store.disk import DiskBudget
from sparkhist.store.records import LogRecord
from sparkhist.store.snapshots import SnapshotStore
from sparkhist.store.states import StoreStates

#: A writer that has not finished a listing for this many scan intervals is stalled.
STALLED_INTERVALS = 10
#: Store file-system usage from which the server reports itself degraded.
FILESYSTEM_FULL = 0.9


class ScanHistory:
    """What is kept of past scans: counts by outcome, the last one, the last successful one.

    Registered as a ``Scanner.on_report`` observer; ``observers`` get every report too
    (the metrics' duration histogram).
    """

    def __init__(self) -> None:
        self.counts = {"ok": 0, "failed": 0}
        self.last: ScanReport | None = None
        self.last_success: ScanReport | None = None
        self.observers: list[Callable[[ScanReport], None]] = []

    def record(self, report: ScanReport) -> None:
        self.counts["ok" if report.ok else "failed"] += 1
        self.last = report
        if report.ok:
            self.last_success = report
        for observer in self.observers:
            observer(report)


def report_end(report: ScanReport | None) -> float | None:
    """Wall-clock time a scan finished."""
    return None if report is None else report.started + report.duration


@dataclass(frozen=True, slots=True)
class CacheFigures:
    bytes: int
    budget: int
    entries: int
    evictions: dict[str, int]
    requests: dict[str, int]  # hit | load | build


@dataclass(frozen=True, slots=True)
class DiskFigures:
    """The snapshot disk budget's own accounting (``store.disk.DiskBudget``); zeros without one."""

    budget: int = 0
    snapshot_bytes: int = 0
    evictions: dict[str, int] = field(default_factory=dict)
    critical: bool = False
    write_failures: int = 0


@dataclass(frozen=True, slots=True)
class SkippedFigures:
    """One log directory's entries left out or read in part (``source.skipped``)."""

    log_dir: str
    entries: list[Skip]
    counts: dict[str, int]  # every reason of source.skipped.REASONS


@dataclass(frozen=True, slots=True)
class Rebuilding:
    log_path: str
    app_id: str | None
    reason: str


@dataclass
class Probe:
    """The running parts, read on demand. Built by the server once recovery is done."""

    store_dir: str
    scan_interval: float
    sources: list[ObservedSource]
    scanner: Scanner
    loop: ScanLoop
    states: StoreStates
    snapshots: SnapshotStore
    recovery_seconds: float
    started: float  # wall clock at process start-up (before recovery)
    ready_check: Callable[[], bool] = field(default=lambda: True)
    clock: Callable[[], float] = time.time
    disk_ttl: float = 30.0
    history: ScanHistory = field(default_factory=ScanHistory)
    response_cache: Any = None  # api.response_cache.ResponseCache, when on
    budget: DiskBudget | None = None  # the snapshots' disk budget, when there is one

    def __post_init__(self) -> None:
        self.store_dir = os.path.abspath(self.store_dir)
        self.disk = DiskUsage(self.store_dir, ttl=self.disk_ttl)
        self.scanner.on_report.append(self.history.record)
        self._apps_lock = threading.Lock()
        self._apps_version = -1
        self._apps = {"completed": 0, "running": 0}

    # -- process ---------------------------------------------------------------
    def ready(self) -> bool:
        return self.ready_check()

    @property
    def role(self) -> str:
        return self.loop.role

    @property
    def takeovers(self) -> int:
        return self.loop.takeovers

    # -- sources ---------------------------------------------------------------
    def source_statuses(self) -> list[SourceStatus]:
        return [s.status() for s in self.sources]

    def skipped(self) -> list[SkippedFigures]:
        """Each log directory's skipped entries (source.skipped: listing, reading and the scanner)."""
        return [SkippedFigures(s.root, s.skipped.entries(), s.skipped.counts()) for s in self.sources]

    # -- scanning ----------------------------------------------------------------
    def records(self) -> list[LogRecord]:
        for _ in range(3):
            try:
                return list(self.scanner.records.values())
            except RuntimeError:  # changed size while copying: try again
                continue
        return []

    def scan_lag(self, records: list[LogRecord] | None = None) -> float:
        """Age of the oldest change not indexed yet, in seconds (0 when all is indexed).

        A log's record lags when its snapshot does not reflect the size (or the
        completeness) the last listing saw: new, grown or finished since, or its full
        index failed. Its age is ``now - mtime``: the log changed then, and what is
        served does not show it. Logs without an ApplicationStart are never indexed
        and do not count. Changes after the last successful listing are invisible
        here; ``sparkhist_scan_last_success_timestamp_seconds`` covers those.
        """
        now = self.clock()
        oldest: float | None = None
        for record in self.records() if records is None else records:
            if record.app_id is not None and record.needs_full_index:
                mtime = record.mtime_ms / 1000
                oldest = mtime if oldest is None else min(oldest, mtime)
        return 0.0 if oldest is None else max(0.0, now - oldest)

    def applications(self) -> dict[str, int]:
        """Applications by status (their latest attempt running or completed); cached per index version."""
        index = self.scanner.index
        with self._apps_lock:
            if index.version != self._apps_version:
                version = index.version
                apps = index.sorted_apps()
                running = sum(1 for a in apps if a.running)
                self._apps = {"completed": len(apps) - running, "running": running}
                self._apps_version = version
            return dict(self._apps)

    def stalled_for(self) -> float | None:
        """Seconds since a writer last finished a successful listing, when over the limit."""
        if self.role != "writer":
            return None
        now = self.clock()
        since = report_end(self.history.last_success) or self.started
        limit = STALLED_INTERVALS * max(self.scan_interval, 1.0)
        return now - since if now - since > limit else None

    def parsed(self) -> dict[str, tuple[int, int]]:
        """(events, stored bytes) read by each pass since start."""
        indexer = self.scanner.indexer
        full = (0, 0) if indexer is None else (indexer.events_parsed, indexer.bytes_read)
        return {"listing": (self.scanner.events_parsed, self.scanner.bytes_parsed), "full": full}

    # -- store -------------------------------------------------------------------
    def corruptions(self) -> dict[str, int]:
        return {"catalog_record": self.scanner.corrupt_records, "snapshot": self.snapshots.corrupt_found}

    def rebuilding(self) -> list[Rebuilding]:
        """Applications whose snapshot was quarantined and not yet rebuilt."""
        quarantined = dict(self.snapshots.quarantined)
        records = self.scanner.records
        out = []
        for path, reason in sorted(quarantined.items()):
            record = records.get(path)
            out.append(Rebuilding(path, None if record is None else record.app_id, reason))
        return out

    def quarantined_files(self) -> int:
        try:
            return len(os.listdir(self.snapshots.quarantine_dir))
        except FileNotFoundError:
            return 0

    def disk_bytes(self) -> int:
        return self.disk.bytes()

    def disk_figures(self) -> DiskFigures:
        budget = self.budget
        if budget is None:
            return DiskFigures()
        return DiskFigures(
            budget=budget.policy.max_bytes,
            snapshot_bytes=budget.total,
            evictions=dict(budget.evictions),
            critical=budget.critical,
            write_failures=budget.write_failures,
        )

    def filesystem(self) -> FileSystemUsage:
        return self.disk.filesystem()

    # -- memory ------------------------------------------------------------------
    def cache(self) -> CacheFigures:
        states = self.states
        return CacheFigures(
            bytes=states.cached_bytes,
            budget=states.memory_budget,
            entries=states.cached_entries,
            evictions=dict(states.evictions),
            requests={"hit": states.hits, "load": states.loads, "build": states.builds},
        )


def rss_bytes() -> int | None:
    """Resident set size from ``/proc/self/statm`` (None where there is no /proc)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
