"""The change rules on plain data: new, grown, completed, renamed, shrunk, unchanged.

Size and completeness decide, never mtime; no source, no catalog.
"""

from __future__ import annotations

from sparkhist.events.listing import AttemptListing
from sparkhist.reader.layout import EventLog
from sparkhist.reader.position import START, Position
from sparkhist.scan import changes
from sparkhist.source.base import FileEntry
from sparkhist.store.records import LogRecord

ROOT = "/logs"


def single(name: str, size: int, *, mtime: int = 1_000, in_progress: bool | None = None) -> EventLog:
    live = name.endswith(".inprogress") if in_progress is None else in_progress
    entry = FileEntry(f"{ROOT}/{name}", name, size, mtime, False)
    return EventLog(entry.path, name, "single", None, live, (entry,))


def rolling(app: str, sizes: list[int], *, first: int = 1, in_progress: bool = False, mtime: int = 1_000) -> EventLog:
    name = f"eventlog_v2_{app}"
    path = f"{ROOT}/{name}"
    files = tuple(FileEntry(f"{path}/events_{first + i}_{app}", f"events_{first + i}_{app}", size, mtime, False)
                  for i, size in enumerate(sizes))
    return EventLog(path, name, "rolling", None, in_progress, files)


def record_of(event_log: EventLog, *, position: Position | None = None, app_id: str | None = "app",
              error: str | None = None, last_processed: int = 0, snapshot_size: int = -1) -> LogRecord:
    """The record a read of all of ``event_log`` would have left."""
    position = position or Position(len(event_log.files) - 1, event_log.size_of_last, 0, 10)
    return LogRecord(
        path=event_log.path, kind=event_log.kind, size_of_last=event_log.size_of_last, last_index=event_log.last_index,
        in_progress=event_log.in_progress, mtime_ms=event_log.mtime_ms, position=position,
        resume_file=event_log.files[position.file_index].name, listing=AttemptListing(app_id=app_id),
        total_size=event_log.total_size, snapshot_size=snapshot_size, snapshot_in_progress=event_log.in_progress,
        last_processed=last_processed, error=error,
    )


def decide(event_log: EventLog, *records: LogRecord, listed: tuple[EventLog, ...] = ()) -> changes.Work | None:
    logs = {e.path for e in (event_log, *listed)}
    return changes.decide(event_log, {r.path: r for r in records}, logs)


# -- one log --------------------------------------------------------------------
def test_an_unknown_log_is_new_and_read_from_the_start() -> None:
    work = decide(single("app-1", 500))
    assert work is not None and work.reason == "new" and work.start == START
    assert work.listing == AttemptListing()


def test_same_size_and_completeness_is_unchanged_whatever_the_mtime() -> None:
    before = single("app-1.inprogress", 500, mtime=1_000)
    assert decide(single("app-1.inprogress", 500, mtime=9_999), record_of(before)) is None


def test_a_touched_but_not_grown_log_is_unchanged_and_a_grown_one_with_the_same_mtime_is_not() -> None:
    before = single("app-1.inprogress", 500)
    assert not changes.changed(record_of(before), single("app-1.inprogress", 500, mtime=5_000))
    assert changes.changed(record_of(before), single("app-1.inprogress", 800, mtime=1_000))


def test_a_grown_log_is_read_on_from_where_the_last_read_stopped() -> None:
    before = single("app-1.inprogress", 500)
    record = record_of(before, position=Position(0, 480, 0, 7))
    work = decide(single("app-1.inprogress", 800), record)
    assert work is not None and work.reason == "grown"
    assert work.start == Position(0, 480, 0, 7)
    assert work.listing == record.listing and work.listing is not record.listing, "the record's listing is not read into"


def test_completing_in_place_is_a_change_even_at_the_same_size() -> None:
    before = rolling("app", [100, 200], in_progress=True)
    after = rolling("app", [100, 200], in_progress=False)
    work = decide(after, record_of(before))
    assert work is not None and work.reason == "grown"


def test_a_shrunk_single_file_is_read_again_from_the_start() -> None:
    work = decide(single("app-1", 300), record_of(single("app-1", 500)))
    assert work is not None and work.reason == "reread" and work.start == START
    assert work.listing == AttemptListing()


def test_a_log_that_failed_before_is_read_again_from_the_start() -> None:
    before = single("app-1", 500)
    work = decide(single("app-1", 900), record_of(before, error="truncated block"))
    assert work is not None and work.reason == "reread"


# -- rolling logs -----------------------------------------------------------------
def test_a_rolling_log_with_a_new_file_is_read_on() -> None:
    before = rolling("app", [100, 200], in_progress=True)
    after = rolling("app", [100, 200, 50], in_progress=True)
    work = decide(after, record_of(before))
    assert work is not None and work.reason == "grown"


def test_a_new_last_file_of_the_same_size_is_still_a_change() -> None:
    before = rolling("app", [100, 200], in_progress=True)
    after = rolling("app", [100, 200, 200], in_progress=True)
    assert changes.changed(record_of(before), after)


def test_a_compacted_rolling_log_is_read_again() -> None:
    before = rolling("app", [100, 200, 300], in_progress=True)
    record = record_of(before, position=Position(0, 100, 0, 3))  # stopped in events_1, now gone
    after = rolling("app", [400, 300, 20], first=2, in_progress=True)
    work = decide(after, record)
    assert work is not None and work.reason == "reread"


def test_a_rolling_log_whose_last_index_went_back_is_read_again() -> None:
    before = rolling("app", [100, 200, 300])
    after = rolling("app", [100, 350])
    assert not changes.can_resume(record_of(before), after)


# -- renamed .inprogress ------------------------------------------------------------
def test_the_finished_file_replacing_its_inprogress_reads_on_from_it() -> None:
    live = single("app-1.inprogress", 500)
    record = record_of(live, position=Position(0, 500, 0, 12))
    done = single("app-1", 640)
    work = decide(done, record)
    assert work is not None and work.reason == "renamed"
    assert work.start == Position(0, 500, 0, 12) and work.listing == record.listing


def test_a_renamed_file_smaller_than_its_inprogress_is_new() -> None:
    record = record_of(single("app-1.inprogress", 500))
    work = decide(single("app-1", 400), record)
    assert work is not None and work.reason == "new"


def test_an_inprogress_still_listed_was_not_renamed() -> None:
    live = single("app-1.inprogress", 500)
    work = decide(single("app-1", 640), record_of(live), listed=(live,))
    assert work is not None and work.reason == "new"


def test_a_broken_inprogress_is_not_carried_over() -> None:
    record = record_of(single("app-1.inprogress", 500), error="bad codec")
    assert changes.renamed_from(single("app-1", 640), {record.path: record}, set()) is None


def test_only_single_files_are_renamed() -> None:
    record = record_of(single("eventlog_v2_app.inprogress", 500))
    assert changes.renamed_from(rolling("app", [640]), {record.path: record}, set()) is None


# -- one scan -----------------------------------------------------------------------
def test_the_plan_counts_each_kind_and_puts_the_newest_log_first() -> None:
    kept = single("kept", 100, mtime=1)
    grown_before = single("grown.inprogress", 100, mtime=2)
    live = single("renamed.inprogress", 100, mtime=3)
    logs = [
        kept,
        single("grown.inprogress", 200, mtime=4),
        single("renamed", 150, mtime=5),
        single("new", 10, mtime=6),
        single("shrunk", 10, mtime=7),
    ]
    records = [record_of(kept), record_of(grown_before), record_of(live), record_of(single("shrunk", 99))]
    plan = changes.plan({e.path: e for e in logs}, {r.path: r for r in records})
    assert (plan.new, plan.grown, plan.unchanged) == (2, 2, [kept.path])
    assert [(w.log.name, w.reason) for w in plan.work] == [
        ("shrunk", "reread"), ("new", "new"), ("renamed", "renamed"), ("grown.inprogress", "grown")]


def test_the_plan_changes_no_record() -> None:
    before = single("app-1.inprogress", 100)
    record = record_of(before, last_processed=5)
    snapshot = record.to_dict()
    changes.plan({before.path: before, "/logs/x": single("x", 1)}, {record.path: record})
    assert record.to_dict() == snapshot


def test_only_logs_unlisted_and_not_indexed_since_the_listing_vanish() -> None:
    records = {
        "/logs/listed": record_of(single("listed", 1), last_processed=0),
        "/logs/gone": record_of(single("gone", 1), last_processed=999),
        "/logs/loaded-on-demand": record_of(single("loaded-on-demand", 1), last_processed=1_000),
    }
    assert changes.vanished(records, {"/logs/listed"}, listed_at_ms=1_000) == ["/logs/gone"]


def test_lagging_snapshots_are_of_listed_applications_newest_first() -> None:
    old, new = single("old", 100, mtime=1), single("new", 100, mtime=2)
    current = single("current", 100, mtime=3)
    records = {
        old.path: record_of(old),
        new.path: record_of(new),
        current.path: record_of(current, snapshot_size=100),
        "/logs/no-app": record_of(single("no-app", 5), app_id=None),
        "/logs/unlisted": record_of(single("unlisted", 5)),
    }
    lagging = changes.lagging(records, {old.path, new.path, current.path, "/logs/no-app"})
    assert [r.path for r in lagging] == [new.path, old.path]
