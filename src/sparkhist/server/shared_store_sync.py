"""A replica's background loop: the cache synced with the shared store's newest manifest.

Apart from :mod:`sparkhist.server.shared_store` (what step one of a replica's start needs),
so the scanner is imported after the first answer, as for any store
(:func:`sparkhist.server.runtime.complete_runtime` makes the loop).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from sparkhist.config import LogSources
from sparkhist.errors import SourceError, StoreError
from sparkhist.scan.loop import ScanLoop
from sparkhist.scan.scanner import ScanReport
from sparkhist.server.shared_store import ROLE, SharedStoreSource, catalog_log_source, replica_of

if TYPE_CHECKING:
    from sparkhist.scan.scanner import Scanner
    from sparkhist.server.opening import OpenedStore
    from sparkhist.store.disk import DiskBudget
    from sparkhist.store.lock import WriterLock

log = logging.getLogger("sparkhist.server")


class SyncLoop(ScanLoop):
    """A replica's background loop: every ``interval`` seconds, the cache synced with the
    newest manifest and the catalog's changes put into the index; never a scan, never a takeover.

    Each sync is reported as a scan (``listed``: the records; ``new``/``grown``/``removed``:
    what the sync added, changed, removed; ``sourceError`` when the store could not be reached).
    """

    def __init__(self, scanner: Scanner, lock: WriterLock, interval: float, source: SharedStoreSource,
                 budget: DiskBudget | None = None) -> None:
        super().__init__(scanner, lock, interval, role=ROLE)
        self.source = source
        self.budget = budget
        self.failing = False

    def tick(self) -> None:
        report = ScanReport(started=time.time())
        t0 = time.monotonic()
        try:
            changed = self.source.sync()
            for path in changed or ():  # what memory holds of a changed or removed log is stale
                for forget in self.scanner.on_reread:
                    forget(path)
        except (SourceError, StoreError, OSError) as exc:
            report.source_error = str(exc)
            # once per run of failures (the store's state change is logged too), not every interval
            log.log(logging.DEBUG if self.failing else logging.WARNING, "could not sync the cache with %s: %s; "
                    "serving the %d cached logs", self.source.url, exc, len(self.scanner.records),
                    extra={"event": "store_sync_failed"})
            changed = None
        self.failing = report.source_error is not None
        if changed is not None or self.scans == 0:
            self._follow_log_source()
            with self.scanner.lock:
                before = self.scanner.records
                self.scanner.reload_from_catalog()
                after = self.scanner.records
            report.new = sum(1 for p in after if p not in before)
            report.removed = sum(1 for p in before if p not in after)
            report.grown = sum(1 for p, r in after.items() if p in before and before[p] is not r
                               and before[p].to_dict() != r.to_dict())
            for path in before.keys() - after.keys():  # gone from the store: its cached snapshot goes too
                if self.scanner.snapshots is not None:
                    self.scanner.snapshots.delete(path)
                if self.budget is not None:
                    self.budget.forget(path)
        report.listed = len(self.scanner.records)
        report.unchanged = report.listed - report.new - report.grown
        report.duration = time.monotonic() - t0
        self.scans += 1
        self.last_scan_end = time.time()
        self.scanner.last_report = report
        for observer in self.scanner.on_report:
            try:
                observer(report)
            except Exception:  # an observer (metrics) must never break the loop
                log.exception("sync report observer failed")

    def _follow_log_source(self) -> None:
        """The log directory the job indexed with (what the listing entries show), as the synced
        catalog records it: a cache that was empty at start learns it from its first sync."""
        from sparkhist.store.catalog import Catalog

        try:
            catalog = Catalog(self.source.cache_dir, None, read_only=True)
        except StoreError:
            return
        try:
            source = catalog_log_source(catalog)
        finally:
            catalog.close()
        index = self.scanner.index
        if source is not None and source != index.log_source:
            log.info("listing entries show the log directories %s, as the shared store's manifest says",
                     [list(s) for s in (source.sources if isinstance(source, LogSources) else (source,))])
            with self.scanner.lock:
                index.log_source = source
                self.scanner.catalog.log_source = source
                for record in self.scanner.records.values():
                    index.update(record)


def replica_loop(opened: OpenedStore, scanner: Scanner, budget: DiskBudget) -> SyncLoop:
    """The background loop of a replica (made by :func:`sparkhist.server.runtime.complete_runtime`)."""
    shared = replica_of(opened)
    assert shared is not None
    return SyncLoop(scanner, opened.lock, opened.settings.store_sync_interval, shared, budget)
