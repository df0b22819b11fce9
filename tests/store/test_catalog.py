"""The catalog's format version and checksums."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sparkhist.events.listing import AttemptListing
from sparkhist.reader.position import Position
from sparkhist.store.catalog import Catalog
from sparkhist.store.records import LogRecord


def record(path: str, app_id: str) -> LogRecord:
    return LogRecord(path=path, kind="single", size_of_last=10, last_index=None, in_progress=False, mtime_ms=1,
                     position=Position(0, 10, 0, 3), listing=AttemptListing(app_id=app_id, app_name="n", start_time=5))


def test_round_trip(tmp_path: Path) -> None:
    catalog = Catalog(str(tmp_path), "file:/logs")
    catalog.put([record("/logs/a", "a"), record("/logs/b", "b")])
    catalog.close()
    loaded = Catalog(str(tmp_path), "file:/logs").load()
    assert loaded.corrupt == 0
    assert loaded.records["/logs/a"].to_dict() == record("/logs/a", "a").to_dict()


@pytest.mark.parametrize("change", ["version", "log_dir"])
def test_other_version_or_directory_is_rebuilt(tmp_path: Path, change: str, caplog: pytest.LogCaptureFixture) -> None:
    catalog = Catalog(str(tmp_path), "file:/logs")
    catalog.put([record("/logs/a", "a")])
    catalog.close()
    if change == "version":
        db = sqlite3.connect(tmp_path / "catalog.sqlite")
        db.execute("UPDATE meta SET value = '0' WHERE key = 'format_version'")
        db.commit()
        db.close()
    reopened = Catalog(str(tmp_path), "file:/logs" if change == "version" else "file:/other")
    assert reopened.load().records == {}
    assert "rebuilding it from the logs" in caplog.text


def test_checksum_mismatch_drops_only_that_row(tmp_path: Path) -> None:
    catalog = Catalog(str(tmp_path), "file:/logs")
    catalog.put([record("/logs/a", "a"), record("/logs/b", "b")])
    catalog._db.execute("UPDATE logs SET checksum = checksum + 1 WHERE path = '/logs/a'")
    result = catalog.load()
    assert result.corrupt == 1 and list(result.records) == ["/logs/b"]
    assert catalog.load().corrupt == 0  # the damaged row was removed
