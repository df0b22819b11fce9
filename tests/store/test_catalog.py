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


def test_damaged_index_page_replaces_the_catalog_and_rewrites_records(tmp_path: Path) -> None:
    """A catalog that still reads but fails on write (a broken index page) is replaced, not fatal."""
    from sparkhist.scan.scanner import Scanner
    from sparkhist.source.local import LocalSource
    from sparkhist.store.applications import ApplicationIndex
    from support.conformance import SPARK401
    from support.server import copy_logs

    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    source = LocalSource(str(logs))
    scanner = Scanner(source, Catalog(str(tmp_path / "store"), source.root), ApplicationIndex())
    scanner.scan_once()
    scanner.catalog.close()
    db_path = tmp_path / "store" / "catalog.sqlite"
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_logs_1'").fetchone()[0]
    db.close()
    with open(db_path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)

    again = Scanner(source, Catalog(str(tmp_path / "store"), source.root), ApplicationIndex())
    assert again.load() == 13 and len(again.index) == 13
    (logs / "local-1795972896863").unlink()  # a change forces a write to the damaged catalog
    report = again.scan_once()
    assert report.removed == 1 and len(again.index) == 12
    assert again.catalog.generation == 1 and "malformed" in again.catalog.damage
    again.catalog.close()
    reopened = Catalog(str(tmp_path / "store"), source.root)
    assert len(reopened.load().records) == 12
    assert any(p.name.startswith("catalog.sqlite") for p in (tmp_path / "store" / "quarantine").iterdir())
