"""One scan: list the log directory, decide what changed, read only that.

Change is judged by size and completeness, never by mtime (SHS_REFERENCE §2.2):
sizes only grow, so "bigger" means "changed". A grown log is read from the position
where the last read stopped. A failed listing changes nothing: applications are only
dropped after a *successful* listing no longer shows their log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from sparkhist.errors import LogError, SourceError, SourceNotFound, StoreError
from sparkhist.events.listing import LISTING_PREFIXES, AttemptListing, apply_listing_line
from sparkhist.reader.layout import (
    IN_PROGRESS,
    EventLog,
    is_candidate,
    is_rolling_dir,
    rolling_log,
    single_file_log,
)
from sparkhist.reader.position import START, Position
from sparkhist.reader.stream import ReadStats, read_lines
from sparkhist.scan.indexer import Indexer
from sparkhist.scan.workers import Built, IndexPool
from sparkhist.source.base import FileEntry, Source
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from sparkhist.store.records import LogRecord

log = logging.getLogger("sparkhist.scan")

Progress = Callable[[int, int], None]


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


@dataclass(slots=True)
class _Work:
    log: EventLog
    start: Position
    listing: AttemptListing
    reason: str  # new | grown | renamed | reread


class Scanner:
    """Keeps the catalog and the in-memory application index in step with the source."""

    def __init__(
        self,
        source: Source,
        catalog: Catalog,
        index: ApplicationIndex,
        *,
        indexer: Indexer | None = None,
        clock: Callable[[], float] = time.time,
        batch_size: int = 256,
    ) -> None:
        self.source = source
        self.catalog = catalog
        self.index = index
        self.indexer = indexer
        self.pool: IndexPool | None = None  # worker processes for full indexing (None: in-process)
        self.clock = clock
        self.batch_size = batch_size
        self.records: dict[str, LogRecord] = {}
        self.last_report: ScanReport | None = None
        # For metrics (read at collect time): every finished scan is also given to the
        # ``on_report`` observers; the counters are cumulative since start.
        self.on_report: list[Callable[[ScanReport], None]] = []
        self.corrupt_records = 0  # damaged catalog rows dropped by load()
        self.events_parsed = 0  # lines read by the listing pass
        self.bytes_parsed = 0  # stored bytes read by the listing pass
        # Guards records/catalog/index updates: the scan loop and on-demand loads interleave.
        self._lock = threading.RLock()
        self._unsaved: dict[str, LogRecord] = {}  # records the catalog could not take yet
        # Rolling directory -> (its mtime in the parent listing, the completed log or layout
        # error found in it): see _discover. In memory only; a restart lists each once.
        self._rolling: dict[str, tuple[int, EventLog | str]] = {}
        self._catalog_generation = catalog.generation

    # -- start-up ---------------------------------------------------------------
    def load(self, *, index_loaded: bool = False) -> int:
        """Fill memory from the catalog (no source access). Returns the number of records.

        ``index_loaded``: the index already holds the catalog's listing rows (the server
        loads them first, to answer the list before the records are decoded).
        """
        fill = not index_loaded and not len(self.index)
        result = self.catalog.load(entries=fill)
        rebuilt: dict[str, LogRecord] = {}
        if self.indexer is not None:
            files = self.indexer.snapshots.file_names()
            with_snapshot = sum(1 for r in result.records.values() if r.snapshot_size >= 0)
            if len(files) > with_snapshot:
                # Rows lost with a damaged or deleted catalog come back from their snapshots.
                from sparkhist.store.rebuild import records_from_snapshots
                from sparkhist.store.snapshots import snapshot_name

                rebuilt = records_from_snapshots(self.indexer.snapshots, {snapshot_name(p) for p in result.records})
                if rebuilt:
                    result.records.update(rebuilt)
                    self._persist(list(rebuilt.values()))
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
        calls_before = _source_calls(self.source)
        try:
            entries = self.source.list(self.source.root_path)
        except SourceError as exc:
            report.source_error = str(exc)
            report.source_calls = _calls_since(self.source, calls_before)
            report.duration = time.monotonic() - t0
            log.warning("listing %s failed: %s; keeping every indexed application", self.source.root, exc,
                        extra={"event": "listing_failed"})
            self._publish(report)
            return report

        logs, layout_errors = self._discover(entries, report)
        report.listed = len(logs) + len(layout_errors)
        for path, message in layout_errors.items():
            report.failed += 1
            report.errors[path] = message
            self._record_failure_without_log(path, message)

        seen = set(logs) | set(layout_errors)
        with self._lock:
            work = self._plan(logs, report)

        done = 0
        pending: list[LogRecord] = []
        for item in work:
            with self._lock:
                record = self._index_log(item, report)
            if record is not None:
                pending.append(record)
            done += 1
            if progress:
                progress(done, len(work))
            if len(pending) >= self.batch_size:
                self._persist(pending)
                pending = []
        self._persist(pending)
        if self.indexer is not None:
            self._full_index(logs, report, progress)

        with self._lock:
            # Not seen by this listing, and not indexed on demand since it was taken.
            started_ms = int(report.started * 1000)
            removed = [p for p, r in self.records.items() if p not in seen and r.last_processed < started_ms]
            for path in removed:
                self.records.pop(path, None)
                self.index.remove(path)
                if self.indexer is not None:
                    self.indexer.snapshots.delete(path)
                    if self.indexer.budget is not None:
                        self.indexer.budget.forget(path)
            self._unpersist(removed)
        report.removed = len(removed)
        report.source_calls = _calls_since(self.source, calls_before)
        report.duration = time.monotonic() - t0
        self._publish(report)
        log.info(
            "scan: %d logs listed, %d new, %d grown, %d unchanged, %d removed, %d failed in %.3fs",
            report.listed, report.new, report.grown, report.unchanged, report.removed, report.failed, report.duration,
        )
        return report

    def _publish(self, report: ScanReport) -> None:
        self.last_report = report
        for observer in self.on_report:
            try:
                observer(report)
            except Exception:  # an observer (metrics) must never break a scan
                log.exception("scan report observer failed")

    def _full_index(self, logs: dict[str, EventLog], report: ScanReport, progress: Progress | None) -> None:
        """Bring every lagging snapshot up to date, newest log first."""
        assert self.indexer is not None
        with self._lock:
            lagging = [r for r in self.records.values() if r.path in logs and r.app_id is not None and r.needs_full_index]
        lagging.sort(key=lambda r: r.mtime_ms, reverse=True)
        pending: list[LogRecord] = []
        for done, (record, result) in enumerate(self._build_all(lagging, logs), 1):
            if isinstance(result, SourceError):
                report.errors[record.path] = str(result)
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
            pending.append(record)
            if progress:
                progress(done, len(lagging))
            if len(pending) >= self.batch_size:
                self._persist(pending)
                pending = []
        self._persist(pending)

    def _build_all(self, lagging: list[LogRecord], logs: dict[str, EventLog]):  # type: ignore[no-untyped-def]
        """(record, snapshot or Built or the exception) for each lagging record."""
        assert self.indexer is not None
        pool = self.pool
        if pool is None or len(lagging) < 2:
            for record in lagging:
                try:
                    yield record, self.indexer.refresh(logs[record.path])
                except (SourceError, StoreError) as exc:
                    yield record, exc
            return
        budget = self.indexer.budget
        jobs = [(logs[r.path], budget is None or budget.may_write()) for r in lagging]
        by_path = {r.path: r for r in lagging}
        for event_log, result in pool.run(jobs):
            if isinstance(result, Built):
                self.indexer.bytes_read += result.bytes_read
                self.indexer.events_parsed += result.lines
                self.indexer.builds += 1
                if result.persisted and budget is not None:
                    budget.wrote(result.log_path, result.snapshot_bytes)
                elif not result.persisted:
                    self.indexer.unsaved += 1
            yield by_path[event_log.path], result

    def _persist(self, records: list[LogRecord]) -> None:
        """Write records to the catalog; on failure (disk full) keep them to retry with the next write."""
        with self._lock:
            generation = self.catalog.generation
            if generation != self._catalog_generation:
                # The catalog was replaced after damage: it needs every record again.
                batch = {**self.records, **self._unsaved, **{r.path: r for r in records}}
            else:
                batch = {**self._unsaved, **{r.path: r for r in records}}
            if not batch:
                return
            try:
                self.catalog.put(batch.values())
            except StoreError as exc:
                if not self._unsaved:
                    log.error("%s; %d records kept in memory, retried at the next write", exc, len(batch))
                self._unsaved = batch
                return
            if self._unsaved:
                log.info("catalog writable again: %d delayed records saved", len(self._unsaved))
            self._unsaved = {}
            self._catalog_generation = generation

    def _unpersist(self, paths: list[str]) -> None:
        with self._lock:
            for path in paths:
                self._unsaved.pop(path, None)
            try:
                self.catalog.delete(paths)
            except StoreError as exc:
                if self.catalog.generation != self._catalog_generation:
                    self._persist([])  # replaced after damage: write what we hold (without the removed)
                else:
                    log.error("%s; the removed logs stay in the catalog until the next scan", exc)

    def flush(self) -> None:
        """Retry delayed catalog writes (the scan loop calls it every tick)."""
        self._persist([])

    def forget(self, path: str) -> None:
        """Drop one log from the catalog, the index and the snapshots (the cleaner's removal)."""
        with self._lock:
            self.records.pop(path, None)
            self.index.remove(path)
            if self.indexer is not None:
                self.indexer.snapshots.delete(path)
                if self.indexer.budget is not None:
                    self.indexer.budget.forget(path)
            self._unpersist([path])

    def index_on_demand(self, app_id: str) -> bool:
        """Find and index the logs of ``app_id`` now; True when it is listed afterwards."""
        from sparkhist.scan.on_demand import candidate_names

        found = False
        for name in candidate_names(app_id):
            path = self.source.join(self.source.root_path, name)
            try:
                entry = self.source.stat(path)
            except SourceNotFound:
                continue
            except SourceError as exc:
                log.warning("on-demand load of %s: %s", app_id, exc)
                break
            try:
                event_log = rolling_log(entry, self.source.list(path)) if is_rolling_dir(entry) else single_file_log(entry)
            except (LogError, SourceError) as exc:
                log.warning("on-demand load of %s: skipping %s: %s", app_id, path, exc)
                continue
            with self._lock:
                if path in self.records and not _changed(self.records[path], event_log):
                    continue
                record = self._index_log(_Work(event_log, START, AttemptListing(), "new"), ScanReport())
                if record is None:
                    continue
                self._persist([record])
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
                if is_rolling_dir(entry):
                    event_log = rolling_log(entry, self.source.list(entry.path))
                    if not event_log.in_progress:
                        kept[entry.path] = (entry.mtime_ms, event_log)
                    logs[entry.path] = event_log
                else:
                    logs[entry.path] = single_file_log(entry)
            except (LogError, SourceError) as exc:
                errors[entry.path] = str(exc)
                if isinstance(exc, LogError) and is_rolling_dir(entry):
                    kept[entry.path] = (entry.mtime_ms, str(exc))  # same files, same layout error
                log.warning("skipping %s: %s", entry.path, exc)
        self._rolling = kept
        return logs, errors

    def _plan(self, logs: dict[str, EventLog], report: ScanReport) -> list[_Work]:
        work: list[_Work] = []
        for path, event_log in logs.items():
            record = self.records.get(path)
            if record is None:
                renamed = self._renamed_from(event_log, logs)
                if renamed is not None:
                    work.append(_Work(event_log, renamed.position, AttemptListing.from_dict(renamed.listing.to_dict()), "renamed"))
                else:
                    work.append(_Work(event_log, START, AttemptListing(), "new"))
                report.new += 1
                continue
            if not _changed(record, event_log):
                report.unchanged += 1
                record.last_processed = int(report.started * 1000)
                continue
            report.grown += 1
            if _can_resume(record, event_log):
                work.append(_Work(event_log, record.position, AttemptListing.from_dict(record.listing.to_dict()), "grown"))
            else:
                work.append(_Work(event_log, START, AttemptListing(), "reread"))
        # Newest first, like the SHS: recent applications show up soonest.
        work.sort(key=lambda w: w.log.mtime_ms, reverse=True)
        return work

    def _renamed_from(self, event_log: EventLog, logs: dict[str, EventLog]) -> LogRecord | None:
        """The record of ``<path>.inprogress`` when a finished single file replaced it."""
        if event_log.kind != "single" or event_log.in_progress:
            return None
        old = self.records.get(event_log.path + IN_PROGRESS)
        if old is None or old.path in logs or old.error is not None:
            return None
        if old.size_of_last > event_log.size_of_last:
            return None
        return old

    def _index_log(self, item: _Work, report: ScanReport) -> LogRecord | None:
        event_log = item.log
        listing = item.listing
        position = item.start
        stats = ReadStats()
        error: str | None = None
        try:
            for line, after in read_lines(self.source, event_log, item.start, stats=stats, only=LISTING_PREFIXES):
                try:
                    apply_listing_line(listing, line)
                except orjson.JSONDecodeError as exc:
                    name = event_log.files[position.file_index].name
                    log.warning("%s line %d: malformed JSON skipped (%s)", name, after.line, exc)
                position = after
        except LogError as exc:
            error = str(exc)
            log.warning("log %s: %s (using the %d lines before it)", event_log.path, exc, position.line)
        except SourceError as exc:
            # Transient: keep what we had; the next scan tries again.
            report.failed += 1
            report.errors[event_log.path] = str(exc)
            log.warning("reading %s failed: %s; will retry", event_log.path, exc)
            return None
        report.bytes_read += stats.bytes_read
        self.bytes_parsed += stats.bytes_read
        self.events_parsed += stats.lines
        now_ms = int(self.clock() * 1000)
        previous = self.records.get(event_log.path)
        if item.reason == "renamed":
            previous = self.records.get(event_log.path + IN_PROGRESS)
            if previous is not None and self.indexer is not None:
                self._move_snapshot(previous.path, event_log)
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
        )
        if error is not None:
            report.failed += 1
            report.errors[event_log.path] = error
        if item.reason == "renamed":
            old_path = event_log.path + IN_PROGRESS
            self.records.pop(old_path, None)
            self.index.remove(old_path)
            self._unpersist([old_path])
        self.records[record.path] = record
        self.index.update(record)
        return record

    def _move_snapshot(self, old_path: str, event_log: EventLog) -> None:
        """A finished file replaced its ``.inprogress``: keep its state under the new name."""
        assert self.indexer is not None
        store = self.indexer.snapshots
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


def _source_calls(source: Source) -> dict[str, int]:
    """The source's cumulative call counters (``calls``), or nothing if it keeps none."""
    try:
        calls = getattr(source, "calls", None)
        return dict(calls) if calls else {}
    except Exception:  # noqa: BLE001 - counting must never break a scan
        return {}


def _calls_since(source: Source, before: dict[str, int]) -> dict[str, int]:
    now = _source_calls(source)
    return {op: n - before.get(op, 0) for op, n in sorted(now.items()) if n - before.get(op, 0)}


def _changed(record: LogRecord, event_log: EventLog) -> bool:
    if record.in_progress != event_log.in_progress:
        return True
    if event_log.kind == "rolling":
        if (event_log.last_index or 0) != (record.last_index or 0):
            return True
    return event_log.size_of_last != record.size_of_last


def _can_resume(record: LogRecord, event_log: EventLog) -> bool:
    """Whether the stored position still points into the same bytes."""
    if record.error is not None:
        return False
    if event_log.kind == "single":
        return event_log.size_of_last >= record.size_of_last
    if (event_log.last_index or 0) < (record.last_index or 0):
        return False
    index = record.position.file_index
    if index >= len(event_log.files) or event_log.files[index].name != record.resume_file:
        return False
    return True
