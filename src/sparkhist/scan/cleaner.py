"""Retention: ``spark.history.fs.cleaner.*`` semantics (SHS_REFERENCE §2.7).

* age: an application whose oldest attempt was last updated before ``now - maxAge``
  loses the attempts older than that; a log that never produced an application id
  (corrupt, unparseable) goes once it has not been seen for ``maxAge``;
* count: above ``maxNum`` logs, *completed* attempts go, oldest application first.

A deleted attempt leaves the catalog, its snapshot is dropped, and its log is
deleted from the source when the source can (permission errors are logged, not
fatal: the attempt stays out of the index either way).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sparkhist.errors import SourceError
from sparkhist.scan.scanner import Scanner
from sparkhist.store.applications import AppEntry, AttemptEntry

log = logging.getLogger("sparkhist.cleaner")


@dataclass(frozen=True)
class CleanerPolicy:
    max_age_s: float = 7 * 86400
    max_num: int = 2**31 - 1
    delete_logs: bool = True


@dataclass
class CleanReport:
    attempts_removed: int = 0
    logs_deleted: int = 0
    delete_failures: int = 0


class Cleaner:
    def __init__(self, scanner: Scanner, policy: CleanerPolicy, clock: Callable[[], float] = time.time) -> None:
        self.scanner = scanner
        self.policy = policy
        self.clock = clock

    def clean(self) -> CleanReport:
        report = CleanReport()
        max_time = int((self.clock() - self.policy.max_age_s) * 1000)
        scanner = self.scanner
        with scanner.lock:
            for app in list(scanner.index.sorted_apps()):
                if min(a.last_updated for a in app.attempts) < max_time:
                    for attempt in app.attempts:
                        if attempt.last_updated < max_time:
                            self._remove(attempt.log_path, report)
            for path, record in list(scanner.records.items()):
                if record.app_id is None and record.last_processed <= max_time:
                    self._remove(path, report)
            excess = len(scanner.records) - self.policy.max_num
            if excess > 0:
                for app in sorted(scanner.index.sorted_apps(), key=_oldest_attempt):
                    if excess <= 0:
                        break
                    for attempt in [a for a in app.attempts if a.listing.completed]:
                        self._remove(attempt.log_path, report)
                        excess -= 1
                if excess > 0:
                    log.warning("cannot clean down to %d logs: only running attempts are left", self.policy.max_num)
        if report.attempts_removed:
            log.info("cleaner removed %d attempts (%d logs deleted, %d could not be deleted)",
                     report.attempts_removed, report.logs_deleted, report.delete_failures)
        return report

    def _remove(self, path: str, report: CleanReport) -> None:
        scanner = self.scanner
        if path not in scanner.records:
            return
        if self.policy.delete_logs:
            try:
                scanner.source.delete(path)
                report.logs_deleted += 1
            except SourceError as exc:
                report.delete_failures += 1
                log.warning("cleaner could not delete %s: %s", path, exc)
        scanner.forget(path)
        report.attempts_removed += 1


def _oldest_attempt(app: AppEntry) -> int:
    return min(_updated(a) for a in app.attempts)


def _updated(attempt: AttemptEntry) -> int:
    return attempt.last_updated
