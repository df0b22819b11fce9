"""One scan: list the log directory, decide what changed, read only that.

What counts as a change (size and completeness, never mtime) is decided by
:mod:`sparkhist.scan.changes`; a grown log is read from the position where the last
read stopped. The listing pass runs here, full indexing goes to
:mod:`sparkhist.scan.builds`, and records reach the catalog through
:class:`~sparkhist.store.write_behind.WriteBehind`. A failed listing changes nothing:
applications are only dropped after a *successful* listing no longer shows their log.

Several log directories (:class:`~sparkhist.source.multi.SourceSet`) are listed together; a
directory that cannot be listed keeps its applications (as a failed listing does) while the
others are scanned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from sparkhist.errors import LogError, SourceError, SourceNotFound, StoreError
from sparkhist.reader.layout import (
    IN_PROGRESS,
    EventLog,
    event_log_at,
    is_candidate,
    is_rolling_dir,
)
from sparkhist.scan import changes
from sparkhist.scan.builds import Result, build_all
from sparkhist.scan.indexer import Indexer
from sparkhist.scan.listing_reads import PARALLEL_MIN, ListingPool, ListingRead, read_listing
from sparkhist.scan.skips import ScanSkips
from sparkhist.scan.workers import BuildPool, IndexPool
from sparkhist.source.base import FileEntry, Source
from sparkhist.source.multi import PartialListing, directories, owner_of
from sparkhist.store.applications import ApplicationIndex, ListingRow
from sparkhist.store.catalog import Catalog
from sparkhist.store.disk import DiskBudget
from sparkhist.store.records import LogRecord
from sparkhist.store.snapshots import SnapshotStore
from sparkhist.store.write_behind import WriteBehind

log = logging.getLogger("sparkhist.scan")

Progress = Callable[[int, int], None]
#: A log's new record and its listing row as the index rendered it (None: not listed), which the
#: catalog write takes as it is: a row is rendered once per record.
Made = tuple[LogRecord, ListingRow | None]


@dataclass(slots=True)
class ScanReport:
    """What one scan did, for logs, the CLI and metrics."""

    started: float = 0.0
    duration: float = 0.0
    listed: int = 0
    new: int = 0
    grown: int = 0
    unchanged: int = 0
    removed: int = 0
    indexed: int = 0
    unsaved: int = 0
    failed: int = 0
    bytes_read: int = 0
    source_error: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    # Source calls this scan made (``list``, ``stat``, ``open``, ``read``... as the
    # backend counts them: remote attempts for HDFS), and rolling directories whose
    # listing was reused because their own entry did not change.
    source_calls: dict[str, int] = field(default_factory=dict)
    rolling_reused: int = 0

    @property
    def ok(self) -> bool:
        return self.source_error is None


class Scanner:
    """Keeps the catalog and the in-memory application index in step with the source.

    ``indexer``: full indexing after each listing pass (None: listing only), spread over
    ``pool``'s processes when given; ``snapshots`` and ``budget``: where its states are
    kept and the disk they may use (a removed or renamed log takes its state along).
    """

    def __init__(
        self,
        source: Source,
        catalog: Catalog,
        index: ApplicationIndex,
        *,
        indexer: Indexer | None = None,
        snapshots: SnapshotStore | None = None,
        budget: DiskBudget | None = None,
        pool: BuildPool | None = None,
        clock: Callable[[], float] = time.time,
        batch_size: int = 256,
    ) -> None:
        self.source = source
        self.catalog = catalog
        self.index = index
        self.indexer = indexer
        self.snapshots = snapshots
        self.budget = budget
        self.pool = pool  # worker processes for full indexing (None: in-process)
        self.clock = clock
        self.batch_size = batch_size
        self.records: dict[str, LogRecord] = {}
        self.last_report: ScanReport | None = None
        # For metrics (read at collect time): every finished scan is also given to the
        # ``on_report`` observers; the counters are cumulative since start.
        self.on_report: list[Callable[[ScanReport], None]] = []
        # Paths of logs read again from their start (shrunk, compacted, rewritten in place):
        # what memory holds of them (cached states, kept answers) is stale.
        self.on_reread: list[Callable[[str], None]] = []
        # Called when a scan's listing pass is over (its records written): everything the
        # scan found is listed, its full indexing (if any) is still to come.
        self.on_listed: list[Callable[[], None]] = []
        self.corrupt_records = 0  # damaged catalog rows dropped by load()
        self.events_parsed = 0  # lines read by the listing pass
        self.bytes_parsed = 0  # stored bytes read by the listing pass
        # Guards records/catalog/index updates: the scan loop and on-demand loads interleave.
        self._lock = threading.RLock()
        self._last_stamp_ms = 0  # the latest listing time or processing time given out: see scan_once
        # Set by a stop (SIGTERM): a scan under way ends after the log at hand, its finished
        # records written, so a stop takes a log's time, not a scan's.
        self.stopping = threading.Event()
        self.writes = WriteBehind(catalog, lambda: self.records, lock=self._lock)
        # What cannot be used, reported once per entry into the source's skip registry.
        self.skips = ScanSkips(source.skipped, index)
        # Rolling directory -> (its mtime in the parent listing, the completed log or layout
        # error found in it): see _discover. In memory only; a restart lists each once.
        self._rolling: dict[str, tuple[int, EventLog | str]] = {}

    @property
    def lock(self) -> threading.RLock:
        """Held while records, index and catalog change together (a cleaning pass holds it too)."""
        return self._lock

    # -- start-up ---------------------------------------------------------------
    def load(self, *, index_loaded: bool = False) -> int:
        """Fill memory from the catalog (no source access). Returns the number of records.

        ``index_loaded``: the index already holds the catalog's listing rows (the server
        loads them first, to answer the list before the records are decoded).
        """
        fill = not index_loaded and not len(self.index)
        result = self.catalog.load(entries=fill)
        rebuilt: dict[str, LogRecord] = {}
        if self.snapshots is not None:
            files = self.snapshots.file_names()
            with_snapshot = sum(1 for r in result.records.values() if r.snapshot_size >= 0)
            if len(files) > with_snapshot:
                # Rows lost with a damaged or deleted catalog come back from their snapshots.
                from sparkhist.store.rebuild import records_from_snapshots
                from sparkhist.store.snapshots import snapshot_name

                rebuilt = records_from_snapshots(self.snapshots, {snapshot_name(p) for p in result.records})
                if rebuilt:
                    result.records.update(rebuilt)
                    self.writes.put(rebuilt.values())
        self.records = result.records
        self.flush()  # rewrites everything if the catalog had to be replaced while loading
        if fill or index_loaded:
            if fill:
                self.index.load_entries(result.entries or [])
            else:  # rows whose record turned out damaged are not listed either
                for path in self.index.paths() - self.records.keys():
                    self.index.remove(path)
            if rebuilt:
                self.index.load(rebuilt.values())
        else:
            for record in self.records.values():
                self.index.update(record)
        if result.corrupt:
            self.corrupt_records += result.corrupt
            log.warning("%d damaged catalog records dropped; their logs will be read again", result.corrupt,
                        extra={"event": "catalog_corrupt", "records": result.corrupt})
        self.skips.loaded(self.records.values())
        return len(self.records)

    def reload_from_catalog(self) -> None:
        """Standby mode: follow what the writer committed, without touching the source."""
        result = self.catalog.load(repair=False)
        for path in [p for p in self.records if p not in result.records]:
            self.index.remove(path)
        for path, record in result.records.items():
            old = self.records.get(path)
            if old is None or old.to_dict() != record.to_dict():
                self.index.update(record)
        self.records = result.records

    # -- one scan ---------------------------------------------------------------
    def scan_once(self, progress: Progress | None = None) -> ScanReport:
        report = ScanReport(started=self.clock())
        t0 = time.monotonic()
        calls_before = dict(self.source.calls)
        try:
            entries = self.source.list(self.source.root_path)
        except SourceError as exc:
            report.source_error = str(exc)
            report.source_calls = _calls_since(calls_before, self.source.calls)
            report.duration = time.monotonic() - t0
            log.warning("listing %s failed: %s; keeping every indexed application", self.source.root, exc,
                        extra={"event": "listing_failed"})
            self._publish(report)
            return report

        # A first scan's (or many new logs') reading workers, started before the rolling
        # directories are listed: their start overlaps that listing.
        pool = self._listing_pool(len(entries) - len(self.records))
        if pool is not None:
            pool.start()
        try:
            logs, layout_errors = self._discover(entries, report)
            report.listed = len(logs) + len(layout_errors)
            for path, message in layout_errors.items():
                report.failed += 1
                report.errors[path] = message
                self._record_failure_without_log(path, message)

            seen = set(logs) | set(layout_errors)
            if isinstance(entries, PartialListing) and entries.unlisted:
                seen |= self._kept_unlisted(entries.unlisted, report)
            # Strictly after every time given out before it (the previous listing's, and the
            # processing times of the logs read since): a log marked unchanged or read by a scan
            # that ran in the same millisecond still counts as not seen since this listing.
            listed_ms = max(int(report.started * 1000), self._last_stamp_ms + 1)
            self._last_stamp_ms = listed_ms
            with self._lock:
                plan = changes.plan(logs, self.records)
                for path in plan.unchanged:
                    self.records[path].last_processed = listed_ms
            report.new, report.grown, report.unchanged = plan.new, plan.grown, len(plan.unchanged)

            self._read_listings(plan.work, report, progress, pool)
        except BaseException:
            if pool is not None:
                pool.close()  # _read_listings closes it once it runs
            raise
        if not self.stopping.is_set():
            for listed in self.on_listed:
                listed()
        if self.indexer is not None and not self.stopping.is_set():
            self._full_index(logs, report, progress)

        with self._lock:
            removed = changes.vanished(self.records, seen, listed_ms)
            for path in removed:
                self._drop(path)
            self.writes.delete(removed)
        report.removed = len(removed)
        report.source_calls = _calls_since(calls_before, self.source.calls)
        report.duration = time.monotonic() - t0
        self._publish(report)
        log.info(
            "scan: %d logs listed, %d new, %d grown, %d unchanged, %d removed, %d failed in %.3fs",
            report.listed, report.new, report.grown, report.unchanged, report.removed, report.failed, report.duration,
        )
        return report

    def _kept_unlisted(self, unlisted: Mapping[str, str], report: ScanReport) -> set[str]:
        """The logs of directories that could not be listed this time: kept as they are."""
        parts = [p for p in directories(self.source) if p.root_path in unlisted]
        for part in parts:
            why = unlisted[part.root_path]
            report.errors[part.root] = why
            log.warning("listing %s failed: %s; keeping its indexed applications", part.root, why,
                        extra={"event": "listing_failed"})
        with self._lock:
            return {path for path in self.records if owner_of(parts, path) is not None}

    def check_entries(self, paths: Iterable[str]) -> ScanReport:
        """A targeted check of some root entries (a file-system notification named them):
        each one stat'ed (a rolling directory listed), then decided and read like in a
        scan. An entry that is gone, or cannot be a log, is left to the next scan, which
        alone drops logs (it sees the whole directory)."""
        report = ScanReport(started=self.clock())
        t0 = time.monotonic()
        calls_before = dict(self.source.calls)
        wanted = set(paths)
        # A finished file is decided beside its .inprogress, if that is still there (then not renamed from it).
        wanted |= {p + IN_PROGRESS for p in wanted if not p.endswith(IN_PROGRESS)}
        entries: list[FileEntry] = []
        for path in sorted(wanted):
            try:
                entries.append(self.source.stat(path))
            except SourceNotFound:
                continue
            except SourceError as exc:
                log.debug("targeted check of %s: %s", path, exc)
        if entries:
            logs, layout_errors = self._discover_entries(entries)
            report.listed = len(logs) + len(layout_errors)
            with self._lock:
                plan = changes.plan(logs, self.records)
            report.new, report.grown, report.unchanged = plan.new, plan.grown, len(plan.unchanged)
            self._read_listings(plan.work, report, None)
            if self.indexer is not None and not self.stopping.is_set():
                self._full_index(logs, report, None)
        report.source_calls = _calls_since(calls_before, self.source.calls)
        report.duration = time.monotonic() - t0
        if report.new or report.grown:
            log.info("targeted check: %d entries, %d new, %d grown, %d indexed in %.3fs", report.listed, report.new,
                     report.grown, report.indexed, report.duration)
        return report

    def _discover_entries(self, entries: list[FileEntry]) -> tuple[dict[str, EventLog], dict[str, str]]:
        """The logs at some root entries (every rolling directory listed), under the scan's rules."""
        logs: dict[str, EventLog] = {}
        errors: dict[str, str] = {}
        for entry in entries:
            if not is_candidate(entry):
                continue
            try:
                logs[entry.path] = event_log_at(self.source, entry)
            except (LogError, SourceError) as exc:
                errors[entry.path] = str(exc)
        return logs, errors

    def _publish(self, report: ScanReport) -> None:
        self.last_report = report
        for observer in self.on_report:
            try:
                observer(report)
            except Exception:  # an observer (metrics) must never break a scan
                log.exception("scan report observer failed")

    def _read_listings(self, work: list[changes.Work], report: ScanReport, progress: Progress | None,
                       pool: ListingPool | None = None) -> None:
        """The listing pass over what changed, its records written a batch at a time.

        Many logs are read by worker processes (:mod:`sparkhist.scan.listing_reads`; ``pool``:
        ones already started, closed here) while this process makes their records; a few are
        read here.
        """
        batch = self.writes.batch(self.batch_size, self.index.log_source)
        if pool is None:
            pool = self._listing_pool(len(work))
        # Read here under the lock, as an on-demand load reads (it may read the same log).
        reads: Generator[tuple[changes.Work, ListingRead | BaseException | None]]
        reads = ((item, None) for item in work) if pool is None else pool.read(work)
        worker_failures = 0
        try:
            for done, (item, read) in enumerate(reads, 1):
                if self.stopping.is_set():
                    break
                if isinstance(read, BaseException):  # the worker failed (a source error is in the read): read here
                    if not worker_failures:  # once a pass: a broken pool fails every log after it
                        log.warning("the listing workers failed (%r); reading in the scanning process", read)
                    worker_failures += 1
                    read = None
                with self._lock:
                    made = self._index_log(item, report) if read is None else self._record(item, read, report)
                if progress:
                    progress(done, len(work))
                if made is not None:
                    batch.add(*made)
        finally:
            reads.close()  # a stop: the workers' reads not started are not run
            if pool is not None:
                pool.close()
        batch.flush()

    def _listing_pool(self, count: int) -> ListingPool | None:
        """Worker processes for a listing pass of ``count`` logs, when the scan has indexing
        workers (the same number, reading the same source) and enough logs to share."""
        if count < PARALLEL_MIN or not isinstance(self.pool, IndexPool) or self.pool.workers < 2:
            return None
        return ListingPool(self.pool.root, self.pool.options, self.pool.workers)

    def _full_index(self, logs: dict[str, EventLog], report: ScanReport, progress: Progress | None) -> None:
        """Bring every lagging snapshot up to date, newest log first."""
        assert self.indexer is not None
        with self._lock:
            lagging = changes.lagging(self.records, logs)
        by_path = {r.path: r for r in lagging}
        results = build_all(self.indexer, [logs[r.path] for r in lagging], pool=self.pool, budget=self.budget)
        batch = self.writes.batch(self.batch_size, self.index.log_source)
        for done, (event_log, result) in enumerate(self._until_stopped(results), 1):
            record = by_path[event_log.path]
            if isinstance(result, SourceError):
                report.errors[record.path] = str(result)
                if not self.skips.unusable(record.path, result):
                    log.warning("full index of %s failed: %s; will retry", record.path, result)
                report.failed += 1
                continue
            if isinstance(result, StoreError):
                report.errors[record.path] = str(result)
                log.error("cannot save the state of %s: %s; will retry", record.path, result)
                report.failed += 1
                continue
            if isinstance(result, BaseException):
                report.errors[record.path] = f"indexing failed: {result!r}"
                log.error("full index of %s failed: %r; will retry", record.path, result)
                report.failed += 1
                continue
            if not result.persisted:
                report.unsaved += 1
                continue  # disk full or critical: the next scan tries again
            record.snapshot_size = result.log_size
            record.snapshot_in_progress = result.in_progress
            report.indexed += 1
            if progress:
                progress(done, len(lagging))
            batch.add(record, self._listed_row(record))
        batch.flush()

    def _listed_row(self, record: LogRecord) -> ListingRow | None:
        """The index's listing row of ``record`` while it is the log's current record (its listing
        unchanged since the index rendered it), for the catalog write; None otherwise."""
        with self._lock:
            if self.records.get(record.path) is not record:
                return None
            entry = self.index.entry_of(record.path)
            return None if entry is None else entry.row

    def _until_stopped(self, results: Iterator[tuple[EventLog, Result]]) -> Iterator[tuple[EventLog, Result]]:
        """``results`` until a stop: what finished still counts, a build the stop cut short
        is no failure (its log stays lagging), and no further build starts."""
        for event_log, result in results:
            if self.stopping.is_set() and isinstance(result, BaseException):
                return
            yield event_log, result
            if self.stopping.is_set():
                return

    def flush(self) -> None:
        """Retry delayed catalog writes."""
        self.writes.flush()

    def forget(self, path: str) -> None:
        """Drop one log from the catalog, the index and the snapshots (the cleaner's removal)."""
        with self._lock:
            self._drop(path)
            self.writes.delete([path])

    def _drop(self, path: str) -> None:
        """(Under the lock.) Drop one log from memory, the index and the snapshots."""
        dropped = self.records.pop(path, None)
        self.index.remove(path)
        self.skips.dropped(path, None if dropped is None else dropped.app_id)
        if self.snapshots is not None:
            self.snapshots.delete(path)
        if self.budget is not None:
            self.budget.forget(path)

    def index_on_demand(self, app_id: str) -> bool:
        """Find and index the logs of ``app_id`` now; True when it is listed afterwards."""
        from sparkhist.scan.on_demand import find_logs

        found = False
        logs = (event_log for directory in directories(self.source) for event_log in find_logs(directory, app_id))
        for event_log in logs:
            path = event_log.path
            with self._lock:
                if path in self.records and not changes.changed(self.records[path], event_log):
                    continue
                rendered_for = self.index.log_source
                made = self._index_log(changes.fresh(event_log), ScanReport())
                if made is None:
                    continue
                record, row = made
                self.writes.put([record], None if row is None else {path: row}, rendered_for)
            log.info("on-demand load: indexed %s for %s", path, app_id)
            found = found or record.app_id == app_id
        return found

    def _discover(self, entries: list[FileEntry], report: ScanReport | None = None) -> tuple[dict[str, EventLog], dict[str, str]]:
        """The logs in the root listing; rolling directories are listed only when needed.

        A directory's mtime changes when an entry is added, renamed or removed in it
        (HDFS and local file systems alike), not when a file in it grows. So a
        *completed* rolling log (no ``appstatus_*.inprogress``) whose directory entry
        shows the same mtime as when it was last listed holds the same files: its
        listing is reused, costing no NameNode call. An in-progress one is listed every
        scan, since its last events file grows without touching the directory.
        """
        logs: dict[str, EventLog] = {}
        errors: dict[str, str] = {}
        known = self._rolling
        kept: dict[str, tuple[int, EventLog | str]] = {}
        for entry in entries:
            if not is_candidate(entry):
                self.skips.passed_over(entry)
                continue
            if is_rolling_dir(entry):
                cached = known.get(entry.path)
                if cached is not None and entry.mtime_ms > 0 and cached[0] == entry.mtime_ms:
                    kept[entry.path] = cached
                    if report is not None:
                        report.rolling_reused += 1
                    if isinstance(cached[1], str):
                        errors[entry.path] = cached[1]
                    else:
                        logs[entry.path] = cached[1]
                    continue
            try:
                event_log = event_log_at(self.source, entry)
                if is_rolling_dir(entry) and not event_log.in_progress:
                    kept[entry.path] = (entry.mtime_ms, event_log)
                logs[entry.path] = event_log
            except (LogError, SourceError) as exc:
                errors[entry.path] = str(exc)
                if isinstance(exc, LogError) and is_rolling_dir(entry):
                    kept[entry.path] = (entry.mtime_ms, str(exc))  # same files, same layout error
                if not self.skips.unusable(entry.path, exc):
                    log.warning("skipping %s: %s", entry.path, exc)
        self._rolling = kept
        return logs, errors

    def _index_log(self, item: changes.Work, report: ScanReport) -> Made | None:
        return self._record(item, read_listing(self.source, item), report)

    def _record(self, item: changes.Work, read: ListingRead, report: ScanReport) -> Made | None:
        """(Under the lock.) The record of one log's listing read, kept in memory and the index;
        with the listing row the index made of it."""
        event_log = item.log
        listing, position, error = read.listing, read.position, read.error
        if read.failure is not None:
            # Transient: keep what we had; the next scan tries again.
            report.failed += 1
            report.errors[event_log.path] = str(read.failure)
            if not self.skips.unusable(event_log.path, read.failure):
                log.warning("reading %s failed: %s; will retry", event_log.path, read.failure)
            return None
        report.bytes_read += read.bytes_read
        self.bytes_parsed += read.bytes_read
        self.events_parsed += read.lines
        # Never before a listing already taken: a log read after a listing counts as read since it.
        now_ms = max(int(self.clock() * 1000), self._last_stamp_ms)
        self._last_stamp_ms = now_ms
        previous = self.records.get(event_log.path)
        if item.reason == "renamed":
            previous = self.records.get(event_log.path + IN_PROGRESS)
            if previous is not None and self.snapshots is not None:
                self._move_snapshot(self.snapshots, previous.path, event_log)
        record = LogRecord(
            path=event_log.path,
            kind=event_log.kind,
            size_of_last=event_log.size_of_last,
            last_index=event_log.last_index,
            in_progress=event_log.in_progress,
            mtime_ms=event_log.mtime_ms,
            position=position,
            resume_file=event_log.files[min(position.file_index, len(event_log.files) - 1)].name,
            listing=listing,
            total_size=event_log.total_size,
            snapshot_size=previous.snapshot_size if previous is not None else -1,
            snapshot_in_progress=previous.snapshot_in_progress if previous is not None else False,
            last_updated=event_log.mtime_ms if listing.completed else now_ms,
            last_processed=now_ms,
            error=error,
            etag_of_last=event_log.etag_of_last,
        )
        if item.reason == "reread" and previous is not None and previous.snapshot_size >= 0:
            # The snapshot reflects bytes the log no longer holds (an object rewritten at the
            # same size keeps its size): rebuilt from the start, not continued.
            record.snapshot_size = -1
            if self.snapshots is not None:
                self.snapshots.delete(event_log.path)
            for listener in self.on_reread:
                listener(event_log.path)
        if error is not None:
            report.failed += 1
            report.errors[event_log.path] = error
        if item.reason == "renamed":
            old_path = event_log.path + IN_PROGRESS
            self.records.pop(old_path, None)
            self.index.remove(old_path)
            self.writes.delete([old_path])
        self.records[record.path] = record
        entry = self.index.update(record)
        self.skips.read(record)
        return record, None if entry is None else entry.row

    @staticmethod
    def _move_snapshot(store: SnapshotStore, old_path: str, event_log: EventLog) -> None:
        """A finished file replaced its ``.inprogress``: keep its state under the new name."""
        try:
            snapshot = store.read(old_path)
            if snapshot is not None:
                snapshot.log_path = event_log.path
                snapshot.resume_file = event_log.files[0].name
                store.write(snapshot)
        except StoreError as exc:
            log.warning("could not carry the state of %s over to %s: %s", old_path, event_log.path, exc)
        store.delete(old_path)

    def _record_failure_without_log(self, path: str, message: str) -> None:
        """A layout error: keep any listing we already had, remember the error."""
        record = self.records.get(path)
        if record is not None:
            record.error = message


def _calls_since(before: Mapping[str, int], now: Mapping[str, int]) -> dict[str, int]:
    """The source calls made between two readings of its cumulative counters."""
    return {op: n - before.get(op, 0) for op, n in sorted(now.items()) if n - before.get(op, 0)}
