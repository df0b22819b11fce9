"""The change rules with an object store's ETag: same size, another object -> read again.

Plain data, no source: :mod:`sparkhist.scan.changes` with entries that carry ETags.
"""

from __future__ import annotations

from sparkhist.events.listing import AttemptListing
from sparkhist.reader.layout import EventLog
from sparkhist.reader.position import START, Position
from sparkhist.scan import changes
from sparkhist.source.base import FileEntry
from sparkhist.store.records import LogRecord

ROOT = "s3a://logs/events"


def single(name: str, size: int, etag: str | None, mtime: int = 1_000) -> EventLog:
    entry = FileEntry(f"{ROOT}/{name}", name, size, mtime, False, etag)
    return EventLog(entry.path, name, "single", None, name.endswith(".inprogress"), (entry,))


def rolling(app: str, files: list[tuple[int, str]]) -> EventLog:
    path = f"{ROOT}/eventlog_v2_{app}"
    entries = tuple(FileEntry(f"{path}/events_{i + 1}_{app}", f"events_{i + 1}_{app}", size, 1_000, False, etag)
                    for i, (size, etag) in enumerate(files))
    return EventLog(path, f"eventlog_v2_{app}", "rolling", None, True, entries)


def record_of(event_log: EventLog) -> LogRecord:
    position = Position(len(event_log.files) - 1, event_log.size_of_last, 0, 10)
    return LogRecord(
        path=event_log.path, kind=event_log.kind, size_of_last=event_log.size_of_last, last_index=event_log.last_index,
        in_progress=event_log.in_progress, mtime_ms=event_log.mtime_ms, position=position,
        resume_file=event_log.files[-1].name, listing=AttemptListing(app_id="app"), total_size=event_log.total_size,
        etag_of_last=event_log.etag_of_last,
    )


def decide(event_log: EventLog, record: LogRecord) -> changes.Work | None:
    return changes.decide(event_log, {record.path: record}, {event_log.path})


def test_same_size_and_etag_is_unchanged_whatever_the_mtime() -> None:
    before = single("app-1", 500, '"a"')
    assert decide(single("app-1", 500, '"a"', mtime=99_999), record_of(before)) is None


def test_same_size_other_etag_is_a_rewritten_object_read_from_the_start() -> None:
    before = single("app-1", 500, '"a"')
    work = decide(single("app-1", 500, '"b"'), record_of(before))
    assert work is not None and work.reason == "reread" and work.start == START


def test_a_bigger_object_resumes_where_the_last_read_stopped() -> None:
    before = single("app-1.inprogress", 500, '"a"')
    work = decide(single("app-1.inprogress", 800, '"b"'), record_of(before))
    assert work is not None and work.reason == "grown" and work.start == record_of(before).position


def test_without_etags_size_alone_decides_as_before() -> None:
    before = single("app-1", 500, None)
    assert decide(single("app-1", 500, '"b"'), record_of(before)) is None, "a record from before ETags: unchanged"
    assert decide(single("app-1", 500, None), record_of(single("app-1", 500, '"a"'))) is None


def test_rolling_log_a_new_last_file_of_the_same_size_is_growth_not_a_rewrite() -> None:
    before = rolling("x", [(100, '"1"')])
    work = decide(rolling("x", [(100, '"1"'), (100, '"2"')]), record_of(before))
    assert work is not None and work.reason == "grown"


def test_rolling_log_its_last_file_rewritten_at_the_same_size_is_read_again() -> None:
    before = rolling("x", [(100, '"1"'), (50, '"2"')])
    work = decide(rolling("x", [(100, '"1"'), (50, '"3"')]), record_of(before))
    assert work is not None and work.reason == "reread"


def test_records_keep_the_etag_and_old_records_load_without_one() -> None:
    record = record_of(single("app-1", 500, '"a"'))
    assert LogRecord.from_dict(record.to_dict()).etag_of_last == '"a"'
    old = record.to_dict()
    del old["etag_of_last"]
    assert LogRecord.from_dict(old).etag_of_last is None
