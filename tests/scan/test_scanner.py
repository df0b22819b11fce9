"""The scanner: new, grown, renamed, deleted and broken logs; restarts that open nothing."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import orjson
import pytest

from sparkhist.scan.scanner import Scanner
from sparkhist.source.local import LocalSource
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from support.conformance import SPARK401
from support.server import copy_logs

PLAIN_DONE = SPARK401 / "eventlogs" / "local-1795972896863"


def make_scanner(log_dir: Path, store: Path) -> Scanner:
    source = LocalSource(str(log_dir))
    return Scanner(source, Catalog(str(store), source.root), ApplicationIndex())


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")


def test_first_scan_lists_every_app(corpus: Path, tmp_path: Path) -> None:
    scanner = make_scanner(corpus, tmp_path / "store")
    report = scanner.scan_once()
    assert report.ok and report.failed == 0 and report.new == 13
    assert len(scanner.index) == 13
    running = {a.id for a in scanner.index.sorted_apps() if a.running}
    assert running == {"local-1795972971424", "local-1795972971540", "local-1795972971665",
                       "local-1795972971772", "local-1795972972873", "local-1795972973157"}


def test_restart_opens_no_unchanged_log(corpus: Path, tmp_path: Path) -> None:
    first = make_scanner(corpus, tmp_path / "store")
    first.scan_once()
    expected = [(a.id, a.attempts[0].listing) for a in first.index.sorted_apps()]
    first.catalog.close()

    second = make_scanner(corpus, tmp_path / "store")
    assert second.load() == 13
    assert [(a.id, a.attempts[0].listing) for a in second.index.sorted_apps()] == expected
    report = second.scan_once()
    assert second.source.opens == 0, "an unchanged log was opened after a restart"
    assert report.unchanged == 13 and report.new == report.grown == 0
    # one listing of the root plus one per rolling directory, nothing else
    assert second.source.lists == 1 + 3


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_growing_log_reads_only_new_bytes_and_rename_completes(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = _lines(PLAIN_DONE)
    live = logs / "local-1795972896863.inprogress"
    cut = len(lines) // 2
    live.write_bytes(b"".join(lines[:cut]))
    scanner = make_scanner(logs, tmp_path / "store")

    scanner.scan_once()
    app = scanner.index.get("local-1795972896863")
    assert app is not None and app.running

    # The app writes more, including its end event, and is still .inprogress.
    before = live.stat().st_size
    with live.open("ab") as f:
        f.write(b"".join(lines[cut:]))
    report = scanner.scan_once()
    assert report.grown == 1
    assert report.bytes_read == live.stat().st_size - before
    assert not scanner.index.get("local-1795972896863").running

    # Spark renames the file when the app stops: same app, completed, read from where it was.
    final = logs / "local-1795972896863"
    os.rename(live, final)
    report = scanner.scan_once()
    assert report.bytes_read == 0
    assert list(scanner.records) == [str(final)]
    app = scanner.index.get("local-1795972896863")
    assert len(app.attempts) == 1 and app.attempts[0].listing.completed
    assert app.attempts[0].last_updated == final.stat().st_mtime_ns // 1_000_000


def test_logs_deleted_between_scans_in_the_same_millisecond_leave_at_once(corpus: Path, tmp_path: Path) -> None:
    """The first scan lists at one millisecond and reads its logs in the next; the second scan
    starts in that same next millisecond (a fast disk): its listing still counts as taken after
    those reads, so the logs deleted in between leave at once."""
    source = LocalSource(str(corpus))
    times = iter([1_800_000_000.0004])  # the first scan's start; every later reading is 1 ms on

    def clock() -> float:
        return next(times, 1_800_000_000.0014)

    scanner = Scanner(source, Catalog(str(tmp_path / "store"), source.root), ApplicationIndex(), clock=clock)
    first = scanner.scan_once()
    assert first.new >= 3
    (corpus / "local-1795972905472.lz4").unlink()
    shutil.rmtree(corpus / "eventlog_v2_local-1795972918271")
    assert scanner.scan_once().removed == 2
    assert scanner.index.get("local-1795972905472") is None
    assert scanner.index.get("local-1795972918271") is None


def test_deleted_log_leaves_the_listing(corpus: Path, tmp_path: Path) -> None:
    scanner = make_scanner(corpus, tmp_path / "store")
    scanner.scan_once()
    (corpus / "local-1795972905472.lz4").unlink()
    shutil.rmtree(corpus / "eventlog_v2_local-1795972918271")
    report = scanner.scan_once()
    assert report.removed == 2
    assert scanner.index.get("local-1795972905472") is None
    assert scanner.index.get("local-1795972918271") is None
    assert len(scanner.index) == 11


def test_failed_listing_keeps_everything(corpus: Path, tmp_path: Path) -> None:
    scanner = make_scanner(corpus, tmp_path / "store")
    scanner.scan_once()
    corpus.rename(tmp_path / "gone")
    report = scanner.scan_once()
    assert not report.ok and "no such directory" in report.source_error
    assert len(scanner.index) == 13 and report.removed == 0
    (tmp_path / "gone").rename(corpus)
    assert scanner.scan_once().ok


def test_bad_logs_are_skipped_with_reasons(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = _lines(PLAIN_DONE)
    # a malformed line in the middle of a finished log: logged with its line number, skipped
    broken = list(lines)
    broken[10] = b'{"Event":"SparkListenerEnvironmentUpdate", this is not json\n'
    (logs / "app-broken-middle").write_bytes(b"".join(broken))
    (logs / "app-garbage").write_bytes(os.urandom(50_000))
    (logs / "app-garbage.zstd").write_bytes(os.urandom(50_000))
    (logs / "app-empty").write_bytes(b"")
    (logs / ".hidden").write_bytes(b"".join(lines))
    rolling = logs / "eventlog_v2_app-missing"
    rolling.mkdir()
    (rolling / "events_1_app-missing").write_bytes(b"".join(lines[:20]))
    (rolling / "events_3_app-missing").write_bytes(b"".join(lines[20:]))
    (rolling / "appstatus_app-missing").write_bytes(b"")
    (logs / "app-unknown-codec.brotli").write_bytes(b"x")
    shutil.copy(PLAIN_DONE, logs / "local-1795972896863")

    caplog.set_level(logging.WARNING)
    scanner = make_scanner(logs, tmp_path / "store")
    report = scanner.scan_once()
    assert report.ok
    assert scanner.index.get("local-1795972896863") is not None
    assert "Found missing event log file" in report.errors[str(rolling)]
    assert "unknown compression codec" in report.errors[str(logs / "app-unknown-codec.brotli")]
    assert any("app-broken-middle line 11" in r.getMessage() for r in caplog.records)
    # the broken-middle log is the same app as the good copy: still listed, still one app
    assert len(scanner.index) == 1
    assert str(logs / ".hidden") not in scanner.records


def test_damaged_catalog_row_is_reindexed(corpus: Path, tmp_path: Path) -> None:
    import sqlite3

    scanner = make_scanner(corpus, tmp_path / "store")
    scanner.scan_once()
    scanner.catalog.close()
    db = sqlite3.connect(tmp_path / "store" / "catalog.sqlite")
    db.execute("UPDATE logs SET record = replace(record, 'gen-', 'GEN-') WHERE path LIKE '%local-1795972905472.lz4'")
    db.commit()
    db.close()

    again = make_scanner(corpus, tmp_path / "store")
    assert again.load() == 12
    report = again.scan_once()
    assert report.new == 1
    assert again.index.get("local-1795972905472").name == "gen-lz4-single-True"


def test_on_demand_load_before_the_scan(tmp_path: Path) -> None:
    """A request for an app the scan has not reached indexes it at once (a few stats, no listing)."""
    from support.server import runtime_for

    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    with runtime_for(logs, tmp_path / "store", scan=False) as (runtime, client):
        assert len(runtime.index) == 0
        lists = runtime.source.lists
        app = client.get("/api/v1/applications/local-1795972918271")
        assert app.status_code == 200 and app.json()["name"] == "gen-zstd-roll-True"
        jobs = client.get("/api/v1/applications/local-1795972915174/jobs")
        assert jobs.status_code == 200 and len(jobs.json()) == 10
        assert runtime.source.lists == lists + 1  # the rolling directory's own listing only
        # unknown ids are remembered: the second miss costs no file-system call
        assert client.get("/api/v1/applications/app-404").status_code == 404
        opens, stats_before = runtime.source.opens, runtime.source.lists
        assert client.get("/api/v1/applications/app-404").text == "unknown app: app-404"
        assert (runtime.source.opens, runtime.source.lists) == (opens, stats_before)
        # the scan later finds them already indexed
        report = runtime.scanner.scan_once()
        assert report.unchanged == 2 and report.new == 11


def _stored_rows(store: Path) -> dict[str, tuple[bytes, bytes]]:
    """The catalog's listing rows as written (read through a connection of its own)."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(store / "catalog.sqlite")) as db:
        rows = db.execute("SELECT path, CAST(head AS BLOB), CAST(entry AS BLOB) FROM listing").fetchall()
    return {path: (bytes(head), bytes(entry)) for path, head, entry in rows}


def _rows_agree(scanner: Scanner, store: Path) -> int:
    """The index and the catalog hold, for every listed record, the row the record renders to."""
    from sparkhist.store.applications import listing_row

    rendered = {path: listing_row(record, scanner.catalog.log_source)
                for path, record in scanner.records.items() if record.app_id is not None}
    index_rows = {path: entry.row for path, entry in scanner.index.snapshot()[0].items()}
    stored = _stored_rows(store)
    assert [p for p in rendered if stored.get(p) != rendered[p]] == []
    assert stored == index_rows == rendered
    return len(stored)


def test_index_and_catalog_hold_the_same_listing_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row is rendered once per record and shared by the index and the catalog write: both hold the
    row the record renders to, through an on-demand load, a first scan read by listing workers with
    full indexing after it, a restart, and a log completed (renamed, grown) after it."""
    from sparkhist.config import load_settings
    from sparkhist.scan import scanner as scanner_module
    from sparkhist.server import build_runtime
    from support.server import runtime_for

    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    store = tmp_path / "store"
    monkeypatch.setattr(scanner_module, "PARALLEL_MIN", 2)  # these few logs go to the listing workers
    environ = {"SPARKHIST_INDEX_WORKERS": "2", "SPARKHIST_WATCH_LOG_DIR": "false"}
    with runtime_for(logs, store, scan=False, environ=environ) as (runtime, client):
        assert client.get("/api/v1/applications/local-1795972918271").status_code == 200
        assert _rows_agree(runtime.scanner, store) == 1
        used: list[bool] = []
        listing_pool = runtime.scanner._listing_pool

        def spy(count: int) -> object:
            pool = listing_pool(count)
            used.append(pool is not None)
            return pool

        runtime.scanner._listing_pool = spy  # type: ignore[assignment,method-assign]
        report = runtime.scanner.scan_once()
        assert used == [True] and report.new == 12 and report.indexed == 13
        assert _rows_agree(runtime.scanner, store) == 13

    settings = load_settings({"log_dir": str(logs), "store_dir": str(store), "index_workers": 1,
                              "watch_log_dir": False}, environ={})
    running = logs / "local-1795972971772.inprogress"
    before = _stored_rows(store)[str(running)]
    runtime = build_runtime(settings)
    try:
        assert len(runtime.index) == 13 and _rows_agree(runtime.scanner, store) == 13
        assert runtime.scanner.scan_once().unchanged == 13
        end = orjson.dumps({"Event": "SparkListenerApplicationEnd", "Timestamp": 1795972999000})
        with running.open("ab") as f:
            f.write(end + b"\n")
        running.rename(logs / "local-1795972971772")
        report = runtime.scanner.scan_once()
        assert (report.new, report.removed) == (1, 0)  # a rename is read as a new log, its old path dropped
        assert _rows_agree(runtime.scanner, store) == 13
        after = _stored_rows(store)[str(logs / "local-1795972971772")]
        assert after != before and runtime.index.get("local-1795972971772").attempts[0].completed  # type: ignore[union-attr]
    finally:
        runtime.close()


def test_a_catalog_showing_another_log_source_renders_its_own_rows(corpus: Path, tmp_path: Path) -> None:
    """The index's rows are taken by the catalog only when rendered for the log source the catalog shows."""
    from sparkhist.config import LogSource
    from sparkhist.store.applications import listing_row

    source = LocalSource(str(corpus))
    shown, other = LogSource("logs", "file:" + source.root), LogSource("elsewhere", "hdfs://nn:8020/elsewhere")
    store = tmp_path / "store"
    scanner = Scanner(source, Catalog(str(store), source.root, log_source=shown), ApplicationIndex(other))
    assert scanner.scan_once().new == 13
    records = {path: r for path, r in scanner.records.items() if r.app_id is not None}
    stored = _stored_rows(store)
    index_rows = {path: entry.row for path, entry in scanner.index.snapshot()[0].items()}
    assert stored == {path: listing_row(r, shown) for path, r in records.items()}
    assert index_rows == {path: listing_row(r, other) for path, r in records.items()}
    assert all(stored[path] != index_rows[path] for path in records)
