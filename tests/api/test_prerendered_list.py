"""The pre-rendered application list is byte for byte what encoding the dicts gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.datastructures import QueryParams

from sparkhist.api.v1.applications import app_info, application_list, one_application
from sparkhist.events.listing import AttemptListing
from sparkhist.render.encode import dumps
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from sparkhist.store.records import LogRecord

NOW = 1_900_000_000_000


def _record(path: str, app_id: str, *, attempt: str | None = None, name: str | None = "app", start: int = 1_000,
            end: int = -1, updated: int = 5_000, user: str | None = "root", kind: str = "single") -> LogRecord:
    completed = end >= 0
    listing = AttemptListing(app_id=app_id, app_name=name, attempt_id=attempt, start_time=start, end_time=end,
                             duration=end - start if completed else 0, spark_user=user, completed=completed,
                             spark_version="4.0.1", got_env=True, view_acls="a,b")
    return LogRecord(path=path, kind=kind, size_of_last=10, last_index=None, in_progress=not completed, mtime_ms=1,
                     listing=listing, total_size=123, last_updated=updated)


RECORDS = [
    _record("/l/a", "app-a", end=9_000),
    _record("/l/b", "app-b", name=None, user=None, end=8_000),  # no name, no user: keys omitted
    _record("/l/c", "app-c", name='quotes " and \\ and\nnewline and ünïcødé \u2028', end=8_000),
    _record("/l/d.inprogress", "app-d"),  # running
    _record("/l/e_1", "app-e", attempt="1", start=100, end=200, kind="rolling"),
    _record("/l/e_2", "app-e", attempt="2", start=300, end=7_000, name="renamed"),  # two attempts: newest first
    _record("/l/f_1.inprogress", "app-f", attempt="1", start=10),  # a stale .inprogress beside the final log
    _record("/l/f_1", "app-f", attempt="1", start=10, end=50, updated=60),
    _record("/l/g", "app-g", name="", start=-1, end=-1, updated=-1),  # odd values stay as the SHS renders them
]

QUERIES = ["", "status=running", "status=completed", "limit=3", "minDate=1970-01-01T00:00:00.200GMT",
           "maxEndDate=1970-01-01T00:00:08.500GMT", "minEndDate=1970-01-01", "limit=0"]


def _expected(index: ApplicationIndex, query: str) -> bytes:
    """The dicts of the applications the filter keeps, encoded (the rendering before pre-rendered rows)."""
    by_fragment = {id(a.fragment): a for a in index.sorted_apps()}
    kept = [by_fragment[id(f)] for f in application_list(index, QueryParams(query), now_ms=NOW)]
    return dumps([app_info(a) for a in kept])


def _index_from_records() -> ApplicationIndex:
    index = ApplicationIndex()
    for record in RECORDS:
        index.update(record)
    return index


def _index_from_catalog(tmp_path: Path) -> ApplicationIndex:
    catalog = Catalog(str(tmp_path), "file:/l")
    catalog.put(RECORDS)
    catalog.close()
    catalog = Catalog(str(tmp_path), "file:/l")
    result = catalog.load_listing()
    catalog.close()
    assert result.corrupt == 0
    index = ApplicationIndex()
    index.load_entries(result.entries)
    return index


@pytest.mark.parametrize("source", ["records", "catalog"])
@pytest.mark.parametrize("query", QUERIES)
def test_list_bytes_equal_the_encoded_dicts(tmp_path: Path, source: str, query: str) -> None:
    index = _index_from_records() if source == "records" else _index_from_catalog(tmp_path)
    assert len(index) == 7
    body = dumps(application_list(index, QueryParams(query), now_ms=NOW))
    assert body == _expected(index, query)
    if not query:
        assert body == dumps([app_info(a) for a in index.sorted_apps()])
        # The SHS's order: end time descending (running apps, -1, last), then id descending.
        expected = sorted(index.sorted_apps(), key=lambda a: (a.attempts[0].end_time, a.id), reverse=True)
        assert [a.id for a in index.sorted_apps()] == [a.id for a in expected]


def test_single_application_answers_are_unchanged(tmp_path: Path) -> None:
    index = _index_from_catalog(tmp_path)
    e = one_application(index, "app-e")
    assert [a["attemptId"] for a in e["attempts"]] == ["2", "1"] and e["name"] == "renamed"
    f = one_application(index, "app-f")
    assert len(f["attempts"]) == 1 and f["attempts"][0]["completed"] is True  # the completed log wins
    assert "name" not in one_application(index, "app-b")
    # Listings decoded from the rows are the records' listings.
    by_path = {r.path: r for r in RECORDS}
    for app in index.sorted_apps():
        for attempt in app.attempts:
            assert attempt.listing == by_path[attempt.log_path].listing
            assert attempt.total_size == 123 and attempt.log_kind == by_path[attempt.log_path].kind
