"""What the scanner reports to its source's skip registry (:mod:`sparkhist.source.skipped`).

The source reports what it cannot list or open; the scanner reports what it read and
cannot use, so that nothing is passed over silently:

* a finished log of zero bytes (``empty``), or with bytes but no application start
  (``no_application``: garbage, a truncated copy...);
* a log whose data is damaged part-way (``damaged``: the lines before it are used);
* a rolling directory whose files make no log, an unknown codec (``bad_layout``);
* a directory named like a log (``directory``: only ``eventlog_v2_*`` directories are logs);
* a log that claims an application attempt another log already holds
  (``duplicate_application``: the listing shows one of them, as the SHS does);
* a log that cannot be read for a reason no retry fixes (permission denied, not a
  regular file any more...).

Each is one WARNING when it is new or changes (the registry's rule), not one per scan.
The scanner calls :class:`ScanSkips` at a few points: a root entry passed over, a
layout error, a read failure, a log read, a log dropped, the catalog loaded (which
reports again what the stored records show, so a restart reads no log to know it).
"""

from __future__ import annotations

import errno
import re
from collections import Counter
from collections.abc import Iterable

from sparkhist.errors import LayoutError, LogError, SourceError
from sparkhist.reader.layout import IN_PROGRESS, KNOWN_CODECS, ROLLING_DIR_PREFIX, is_hidden
from sparkhist.source import skipped as why
from sparkhist.source.base import FileEntry
from sparkhist.source.skipped import REASONS, SkippedLogs
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.records import LogRecord

__all__ = ["ScanSkips", "named_like_a_log", "reason_of_record"]

#: Application ids as Spark's cluster managers make them: YARN, standalone, local, Kubernetes.
_APP_ID = re.compile(r"^(application|app|local|spark)[-_]", re.IGNORECASE)
#: The reasons a read may fail for good (an OS error number of the cause).
_FOR_GOOD = {errno.EACCES: why.PERMISSION_DENIED, errno.EPERM: why.PERMISSION_DENIED, errno.ELOOP: why.SYMLINK_LOOP}
_ALL_BUT_DUPLICATE = frozenset(REASONS) - {why.DUPLICATE}


def named_like_a_log(name: str) -> bool:
    """A name an event log could have (an application id, a codec, ``.inprogress``)."""
    if is_hidden(name):
        return False
    stem = name[: -len(IN_PROGRESS)] if name.endswith(IN_PROGRESS) else name
    return stem != name or stem.rsplit(".", 1)[-1] in KNOWN_CODECS or bool(_APP_ID.match(stem))


def reason_of_record(record: LogRecord) -> tuple[str, str] | None:
    """Why a log just read is not (or only partly) used; None when it is fine.

    A log still being written without an application start is not reported, unless
    its data is damaged: Spark writes a few events before it (and an empty
    ``.inprogress`` file first).
    """
    if record.app_id is not None:
        return (why.DAMAGED, f"{record.error}; the events before it are used") if record.error else None
    if record.in_progress and not record.error:
        return None
    if record.total_size == 0:
        return why.EMPTY, "a log of zero bytes"
    detail = f"no SparkListenerApplicationStart in {record.total_size} bytes"
    return why.NO_APPLICATION, f"{detail} ({record.error})" if record.error else detail


def reason_of_error(exc: SourceError) -> str | None:
    """The skip reason of a read that failed for good; None for a failure worth retrying."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in _FOR_GOOD:
            return _FOR_GOOD[cause.errno]
        cause = cause.__cause__
    return None if exc.retryable else why.UNREADABLE


class ScanSkips:
    """The scanner's side of a source's :class:`~sparkhist.source.skipped.SkippedLogs`."""

    def __init__(self, skipped: SkippedLogs, index: ApplicationIndex) -> None:
        self.skipped = skipped
        self.index = index

    def passed_over(self, entry: FileEntry) -> None:
        """A root entry that is not a log (``is_candidate`` said no)."""
        if entry.is_dir and not entry.name.startswith(ROLLING_DIR_PREFIX) and named_like_a_log(entry.name):
            self.skipped.report(entry.path, why.DIRECTORY,
                                f"a directory named like a log; only {ROLLING_DIR_PREFIX}* directories are logs")

    def unusable(self, path: str, exc: LogError | SourceError) -> bool:
        """A log whose layout is wrong or that cannot be listed or read. True when reported
        (one warning, by the registry); False for a failure worth retrying (the caller logs it)."""
        if isinstance(exc, LayoutError):
            self.skipped.report(path, why.BAD_LAYOUT, str(exc))
            return True
        if isinstance(exc, LogError):
            self.skipped.report(path, why.DAMAGED, str(exc))
            return True
        reason = reason_of_error(exc)
        if reason is None:
            return False
        self.skipped.report(path, reason, str(exc))
        return True

    def read(self, record: LogRecord) -> None:
        """A log was read (or its record changed): report or clear it, and its duplicates."""
        found = reason_of_record(record)
        if found is None:
            self.skipped.clear(record.path, _ALL_BUT_DUPLICATE)  # read: whatever was wrong is gone
        else:
            self.skipped.report(record.path, *found)
        if record.app_id is not None:
            self.duplicates(record.app_id)

    def dropped(self, path: str, app_id: str | None) -> None:
        """A log left the catalog (deleted, renamed, cleaned): its entry goes, and a log it
        hid may now be the one listed."""
        self.skipped.clear(path)
        if app_id is not None:
            self.duplicates(app_id)

    def duplicates(self, app_id: str) -> None:
        """Logs of ``app_id`` that claim an attempt another log holds, as the index decided."""
        app = self.index.get(app_id)
        logs = self.index.logs_of(app_id)
        if app is None or len(logs) <= len(app.attempts):
            for entry in logs:
                self.skipped.clear(entry.log_path, (why.DUPLICATE,))
            return
        shown = {a.attempt_id: a.log_path for a in app.attempts}
        for entry in logs:
            current = self.skipped.get(entry.log_path)
            if current is not None and current.reason != why.DUPLICATE:
                continue  # one entry per log: its own problem comes first
            holder = shown.get(entry.attempt_id)
            if holder is None or holder == entry.log_path:
                self.skipped.clear(entry.log_path, (why.DUPLICATE,))
            else:
                attempt = f" attempt {entry.attempt_id}" if entry.attempt_id is not None else ""
                self.skipped.report(entry.log_path, why.DUPLICATE, f"application {app_id}{attempt} is listed from {holder}")

    def loaded(self, records: Iterable[LogRecord]) -> None:
        """After the catalog is loaded: what its records show, without reading a log."""
        apps: Counter[str] = Counter()
        for record in records:
            found = reason_of_record(record)
            if found is not None:
                self.skipped.report(record.path, *found)
            if record.app_id is not None:
                apps[record.app_id] += 1
        for app_id, count in apps.items():
            if count > 1:
                self.duplicates(app_id)
