"""The catalog's listing rows: a restart serves the same list, byte for byte, from them alone.

``serve`` answers ``/api/v1/applications`` from the listing rows before any record is
decoded; a damaged row must then be absent (never wrong), and come back after a scan.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from sparkhist.api.app import create_app
from sparkhist.config import load_settings
from sparkhist.server.first_answer import early_context
from sparkhist.server.opening import OpenedStore, open_store
from sparkhist.server.pending import PendingRuntime
from sparkhist.server.runtime import Runtime, complete_runtime
from sparkhist.store.catalog import FORMAT_VERSION, Catalog
from support.conformance import SPARK401
from support.server import copy_logs, runtime_for

URL = "/api/v1/applications"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """Logs, a store scanned from them (kept clean: tests copy it) and the list it serves."""
    base = tmp_path_factory.mktemp("listing")
    logs = copy_logs(SPARK401 / "eventlogs", base / "logs")
    with runtime_for(logs, base / "store") as (_, client):
        body = client.get(URL).content
    return logs, base / "store", body


def _copy(store: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(store, dest)
    return dest


@contextmanager
def _early(logs: Path, store: Path) -> Iterator[tuple[OpenedStore, PendingRuntime, TestClient]]:
    """What ``serve`` answers from before the rest of the runtime exists."""
    opened = open_store(load_settings({"log_dir": str(logs), "store_dir": str(store)}, environ={}), listing=True)
    pending = PendingRuntime()
    app = create_app(early_context(opened, pending))
    runtime = None
    try:
        with TestClient(app) as client:
            yield opened, pending, client
            runtime = pending.runtime
    finally:
        if runtime is not None:
            runtime.close()
        else:
            opened.lock.release()
            opened.catalog.close()


def _complete(opened: OpenedStore, pending: PendingRuntime, client: TestClient) -> Runtime:
    runtime = complete_runtime(opened, client.app)  # type: ignore[arg-type]
    pending.set(runtime)
    return runtime


def test_restart_serves_the_same_list_from_the_listing_rows_alone(built, tmp_path: Path) -> None:
    logs, clean, before = built
    store = _copy(clean, tmp_path / "store")
    with _early(logs, store) as (opened, pending, client):
        assert not pending.ready and client.get("/ready").status_code == 503
        assert client.get(URL).content == before  # no record decoded, no runtime yet
        runtime = _complete(opened, pending, client)
        assert client.get("/ready").status_code == 200
        assert client.get(URL).content == before
        report = runtime.scanner.scan_once()
        assert report.ok and report.new == report.grown == 0, "a restart re-reads no unchanged log"
        assert client.get(URL).content == before
        apps = orjson.loads(before)
        one = apps[0]["id"]
        assert orjson.loads(client.get(f"{URL}/{one}").content) == apps[0]
        assert client.get(f"{URL}/{one}/jobs").status_code == 200
    # The in-process runtime (tests, `sparkhist scan`) gives the same answer too.
    with runtime_for(logs, store, scan=False) as (_, client):
        assert client.get(URL).content == before


def _tamper(store: Path, sql: str) -> str:
    """Run ``sql`` on one listing row (its path bound as ``?``); returns that app's log path."""
    db = sqlite3.connect(store / "catalog.sqlite")
    path = db.execute("SELECT path FROM listing ORDER BY path LIMIT 1 OFFSET 3").fetchone()[0]
    db.execute(sql, (path,))
    db.commit()
    db.close()
    return path


FLIPS = {
    "entry": "UPDATE listing SET entry = CAST(replace(CAST(entry AS TEXT), '\"completed\": ', '\"completed\":  ') AS BLOB) "
             "WHERE path = ?",
    "head": "UPDATE listing SET head = CAST(substr(head, 1, 9) || X'7F' || substr(head, 11) AS BLOB) WHERE path = ?",
    # A flipped byte that also turned the column into (invalid) text.
    "head as text": "UPDATE listing SET head = substr(head, 1, 9) || X'FF' || substr(head, 11) WHERE path = ?",
    "checksum": "UPDATE listing SET checksum = checksum + 1 WHERE path = ?",
    "row deleted": "DELETE FROM listing WHERE path = ?",
}


@pytest.mark.parametrize("damage", list(FLIPS))
def test_a_damaged_listing_row_is_never_served(built, tmp_path: Path, damage: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    logs, clean, before = built
    store = _copy(clean, tmp_path / "store")
    damaged = _tamper(store, FLIPS[damage])
    expected = orjson.loads(before)
    with _early(logs, store) as (opened, pending, client):
        listed = orjson.loads(client.get(URL).content)
        # Absent, never wrong: every entry served is exactly the clean store's.
        assert len(listed) == len(expected) - 1 and all(app in expected for app in listed)
        runtime = _complete(opened, pending, client)
        # Its record came back from its snapshot (the scan's times are not in a snapshot).
        assert runtime.scanner.corrupt_records == 1 and damaged in runtime.scanner.records
        assert _blank(orjson.loads(client.get(URL).content)) == _blank(expected)
        assert runtime.scanner.scan_once().ok
        # The log was indexed again: everything is back, identical but for the scan time
        # a running application's lastUpdated is.
        again = orjson.loads(client.get(URL).content)
        assert [a["id"] for a in again] == [a["id"] for a in expected]
        assert _blank(again) == _blank(expected)
    assert Catalog(str(store), None, read_only=True).load().corrupt == 0


def _blank(apps: list[dict]) -> list[dict]:
    return [{**a, "attempts": [{k: v for k, v in t.items() if not k.startswith("lastUpdated")} for t in a["attempts"]]}
            for a in apps]


#: How to turn this format's catalog into an older one.
OLDER_FORMATS = {
    "1": ["DROP TABLE listing"],  # records only
    "2": ["DROP INDEX listing_app", "ALTER TABLE listing DROP COLUMN app_id",  # listing rows without app_id keys
          "DROP INDEX logs_seq", "DROP TABLE removed", "ALTER TABLE logs DROP COLUMN seq"],
    "3": ["DROP INDEX logs_seq", "DROP TABLE removed", "ALTER TABLE logs DROP COLUMN seq",  # no change sequence
          "DELETE FROM meta WHERE key IN ('change_seq', 'change_epoch', 'removed_floor')"],
}


@pytest.mark.parametrize("version", sorted(OLDER_FORMATS))
def test_an_older_catalog_is_migrated_in_place(built, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                               version: str) -> None:
    logs, clean, before = built
    store = _copy(clean, tmp_path / "store")
    db = sqlite3.connect(store / "catalog.sqlite")
    for sql in OLDER_FORMATS[version]:
        db.execute(sql)
    db.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (version,))
    db.commit()
    db.close()
    with caplog.at_level(logging.WARNING, logger="sparkhist.store"):
        with _early(logs, store) as (opened, pending, client):
            assert client.get(URL).content == before
            runtime = _complete(opened, pending, client)
            assert runtime.scanner.scan_once().new == 0, "migrated, not rebuilt from the logs"
    assert f"format version {version} != {FORMAT_VERSION}; migrated in place" in caplog.text
    catalog = Catalog(str(store), None, read_only=True)
    assert catalog.meta["format_version"] == str(FORMAT_VERSION)
    assert len(catalog.load_listing().entries) == 13
    apps = orjson.loads(before)
    for app in apps:
        assert [e.app_id for e in catalog.listed_attempts(app["id"])] == [app["id"]] * len(app["attempts"])
    assert catalog.listed_attempts("local-0") == []


def test_unchanged_listing_rows_are_not_rewritten(built, tmp_path: Path) -> None:
    logs, clean, _ = built
    store = _copy(clean, tmp_path / "store")
    catalog = Catalog(str(store), f"file:{logs}")
    records = catalog.load().records
    db = sqlite3.connect(store / "catalog.sqlite")
    rowids = dict(db.execute("SELECT path, rowid FROM listing").fetchall())
    for record in records.values():
        record.last_processed += 1  # what an unchanged log's scan does
    catalog.put(records.values())
    assert dict(db.execute("SELECT path, rowid FROM listing").fetchall()) == rowids  # not replaced
    first = next(r for r in records.values() if r.app_id is not None)
    first.listing.app_name = "renamed"
    catalog.put([first])
    entry = db.execute("SELECT entry FROM listing WHERE path = ?", (first.path,)).fetchone()[0]
    assert b'"name": "renamed"' in entry
    db.close()
    catalog.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("first", ["list", "details"])
def test_serve_process_restart(built, tmp_path: Path, first: str) -> None:
    """A real ``sparkhist serve`` on the store: the same list, and a first request for an
    application's details does not wait for the first answer that never comes before it."""
    import http.client
    import os
    import signal
    import subprocess
    import sys
    import time

    logs, clean, before = built
    store = _copy(clean, tmp_path / "store")
    app_id = orjson.loads(before)[0]["id"]
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sparkhist.cli", "serve", "--log-dir", str(logs), "--store",
                             str(store), "--port", str(port), "--scan-interval", "3600"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})

    def get(path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if first == "details":
                    t0 = time.monotonic()
                    status, body = get(f"{URL}/{app_id}/jobs")
                    assert status == 200 and time.monotonic() - t0 < 15
                assert get(URL) == (200, before)
                break
            except ConnectionRefusedError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        while get("/ready")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert get(URL) == (200, before)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]


def test_null_fields_of_a_damaged_row_count_as_damage(tmp_path: Path) -> None:
    """NOT NULL holds for what sparkhist writes; a damaged page can still decode as NULLs."""
    catalog = Catalog(str(tmp_path), "file:/logs")
    catalog._fetch = lambda sql: [(1, None, b"{}", None), (2, b"short", None, 5)]  # type: ignore[method-assign]
    result = catalog.load_listing(repair=False)
    assert result.entries == [] and result.corrupt == 2
    catalog.close()
