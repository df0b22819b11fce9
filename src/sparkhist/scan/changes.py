"""What changed since the last scan: pure rules on listed logs and stored records.

Change is judged by size and completeness, never by mtime (SHS_REFERENCE §2.2):
sizes only grow, so "bigger" means "changed". In an object store a log's last file
also has an ETag: a different ETag at the same size is an object rewritten in place,
changed and read again from the start. For each listed log:

* no record: ``renamed`` when it is the finished single file that replaced a known
  ``<path>.inprogress`` no bigger than itself, read on from where that one stopped;
  otherwise ``new``, read from the start;
* a record, and the same completeness, size (and, rolling, last index): unchanged;
* otherwise ``grown`` (read on from the stored position) when that position still
  points into the same bytes, else ``reread`` from the start (shrunk, compacted,
  rolled back, or damaged before).

A log is dropped only when a listing no longer shows it and nothing indexed it
since that listing was taken (an on-demand load). Nothing here reads a source or
writes a store; the scanner applies these decisions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from sparkhist.events.listing import AttemptListing
from sparkhist.reader.layout import IN_PROGRESS, EventLog
from sparkhist.reader.position import START, Position
from sparkhist.store.records import LogRecord

Reason = Literal["new", "grown", "renamed", "reread"]


@dataclass(slots=True)
class Work:
    """One log to read by the listing pass: from ``start``, on top of ``listing``."""

    log: EventLog
    start: Position
    listing: AttemptListing
    reason: Reason


@dataclass(slots=True)
class Plan:
    """The decisions of one scan."""

    work: list[Work]  # newest log first
    new: int  # new or renamed logs
    grown: int  # grown, completed or shrunk logs (``grown`` or ``reread``)
    unchanged: list[str]  # paths of the logs that did not change


def fresh(event_log: EventLog) -> Work:
    """Read ``event_log`` from its start, as a log never seen before."""
    return Work(event_log, START, AttemptListing(), "new")


def changed(record: LogRecord, event_log: EventLog) -> bool:
    """Whether ``event_log`` differs from what ``record`` read: completeness, size, last index."""
    if record.in_progress != event_log.in_progress:
        return True
    if event_log.kind == "rolling":
        if (event_log.last_index or 0) != (record.last_index or 0):
            return True
    if event_log.size_of_last != record.size_of_last:
        return True
    return rewritten(record, event_log)


def rewritten(record: LogRecord, event_log: EventLog) -> bool:
    """Whether the last file is the same file (same last index) but another object of the same
    size: both ETags known and different."""
    return (record.etag_of_last is not None and event_log.etag_of_last is not None
            and record.etag_of_last != event_log.etag_of_last and event_log.size_of_last == record.size_of_last
            and (event_log.last_index or 0) == (record.last_index or 0))


def can_resume(record: LogRecord, event_log: EventLog) -> bool:
    """Whether the stored position still points into the same bytes."""
    if record.error is not None:
        return False
    if rewritten(record, event_log):
        return False
    if event_log.kind == "single":
        return event_log.size_of_last >= record.size_of_last
    if (event_log.last_index or 0) < (record.last_index or 0):
        return False
    index = record.position.file_index
    if index >= len(event_log.files) or event_log.files[index].name != record.resume_file:
        return False
    return True


def renamed_from(event_log: EventLog, records: Mapping[str, LogRecord], logs: Collection[str]) -> LogRecord | None:
    """The record of ``<path>.inprogress`` when a finished single file replaced it.

    ``logs``: the paths of this listing (an ``.inprogress`` still listed was not renamed).
    """
    if event_log.kind != "single" or event_log.in_progress:
        return None
    old = records.get(event_log.path + IN_PROGRESS)
    if old is None or old.path in logs or old.error is not None:
        return None
    if old.size_of_last > event_log.size_of_last:
        return None
    return old


def decide(event_log: EventLog, records: Mapping[str, LogRecord], logs: Collection[str]) -> Work | None:
    """What to read of ``event_log`` (None: it did not change)."""
    record = records.get(event_log.path)
    if record is None:
        renamed = renamed_from(event_log, records, logs)
        if renamed is None:
            return fresh(event_log)
        return Work(event_log, renamed.position, _copy(renamed.listing), "renamed")
    if not changed(record, event_log):
        return None
    if can_resume(record, event_log):
        return Work(event_log, record.position, _copy(record.listing), "grown")
    return Work(event_log, START, AttemptListing(), "reread")


def plan(logs: Mapping[str, EventLog], records: Mapping[str, LogRecord]) -> Plan:
    """The decision for every listed log; the work newest first, like the SHS (recent
    applications show up soonest)."""
    result = Plan([], 0, 0, [])
    for path, event_log in logs.items():
        work = decide(event_log, records, logs)
        if work is None:
            result.unchanged.append(path)
            continue
        if work.reason in ("new", "renamed"):
            result.new += 1
        else:
            result.grown += 1
        result.work.append(work)
    result.work.sort(key=lambda w: w.log.mtime_ms, reverse=True)
    return result


def vanished(records: Mapping[str, LogRecord], seen: Collection[str], listed_at_ms: int) -> list[str]:
    """Logs to drop: not in a listing taken at ``listed_at_ms``, nor indexed since."""
    return [p for p, r in records.items() if p not in seen and r.last_processed < listed_at_ms]


def lagging(records: Mapping[str, LogRecord], logs: Collection[str]) -> list[LogRecord]:
    """Listed applications whose snapshot lags their log, newest log first."""
    out = [r for r in records.values() if r.path in logs and r.app_id is not None and r.needs_full_index]
    out.sort(key=lambda r: r.mtime_ms, reverse=True)
    return out


def _copy(listing: AttemptListing) -> AttemptListing:
    """A listing to read on into, leaving the record's own untouched."""
    return AttemptListing.from_dict(listing.to_dict())
