"""A serving process's catalog follow (``CatalogFollower``) over a real catalog written by a real writer.

The records are real: the bundled sample logs scanned and indexed by a runtime, then
copied under new paths and ids. After every change the follower's records and index
must equal what a fresh full read of the catalog gives (the reference), whether the
change was read as a delta or the follower had to read everything again.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from sparkhist.config import bundled_samples, load_settings
from sparkhist.scan.scanner import Scanner
from sparkhist.server import build_runtime
from sparkhist.server.replica import CatalogFollower
from sparkhist.source.local import LocalSource
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from sparkhist.store.records import LogRecord


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[LogRecord]:
    """The bundled samples' records, as a scan with full indexing writes them."""
    work = tmp_path_factory.mktemp("seed")
    logs = work / "logs"
    shutil.copytree(bundled_samples(), logs)
    rt = build_runtime(load_settings({"log_dir": str(logs), "store_dir": str(work / "store"), "index_workers": 1},
                                     environ={}))
    try:
        assert rt.loop.lock.try_acquire()
        assert rt.scanner.scan_once().ok
        found = [r for r in rt.scanner.records.values() if r.app_id is not None]
    finally:
        rt.close()
    assert len(found) == 4
    return found


@dataclass
class Pair:
    """A writer's catalog, and a serving process's objects following it."""

    logs: Path
    store: Path
    seeds: list[LogRecord]
    writer: Catalog
    reader: Catalog
    scanner: Scanner
    follower: CatalogFollower

    def record(self, i: int, *, size: int | None = None) -> LogRecord:
        seed = self.seeds[i % len(self.seeds)]
        record = LogRecord.from_dict(seed.to_dict())
        new_id = f"local-9{i:012d}"
        record.path = str(self.logs / new_id)
        record.listing.app_id = new_id
        if size is not None:
            record.size_of_last = size
        return record

    def listed(self) -> set[str]:
        return {app.id for app in self.scanner.index.sorted_apps()}

    def check(self) -> None:
        """The follower holds what a fresh full read of the catalog holds, and lists the same."""
        fresh = Catalog(str(self.store), None, read_only=True)
        try:
            reference = fresh.load(repair=False).records
        finally:
            fresh.close()
        assert {p: r.to_dict() for p, r in self.scanner.records.items()} == {p: r.to_dict() for p, r in reference.items()}
        index = ApplicationIndex()
        index.load(reference.values())
        expected = [(a.id, orjson.dumps(a.fragment)) for a in index.sorted_apps()]
        assert [(a.id, orjson.dumps(a.fragment)) for a in self.scanner.index.sorted_apps()] == expected


def _pair(tmp_path: Path, seeds: list[LogRecord], apps: int) -> Pair:
    logs = tmp_path / "logs"
    logs.mkdir()
    source = LocalSource(str(logs))
    store = tmp_path / "store"
    writer = Catalog(str(store), source.root)
    reader = Catalog(str(store), None, read_only=True)
    scanner = Scanner(source, reader, ApplicationIndex())
    pair = Pair(logs, store, seeds, writer, reader, scanner, CatalogFollower(scanner, os.getpid()))
    for start in range(0, apps, 5000):
        writer.put([pair.record(i) for i in range(start, min(apps, start + 5000))])
    scanner.load()
    pair.follower.reload()
    return pair


@pytest.fixture
def pair(tmp_path: Path, seeds: list[LogRecord]) -> Iterator[Pair]:
    p = _pair(tmp_path, seeds, 20)
    try:
        yield p
    finally:
        p.reader.close()
        p.writer.close()


def test_new_grown_and_deleted_logs_are_followed_as_deltas(pair: Pair) -> None:
    assert pair.listed() == {f"local-9{i:012d}" for i in range(20)}
    reloads = pair.follower.reloads
    pair.writer.put([pair.record(20), pair.record(21)])  # new
    pair.writer.put([pair.record(3, size=pair.record(3).size_of_last + 100)])  # grown (a new record for its path)
    pair.writer.delete([str(pair.logs / "local-9000000000005"), str(pair.logs / "local-9000000000006")])
    pair.follower.follow()
    assert pair.follower.reloads == reloads and pair.follower.deltas == 1
    assert "local-9000000000020" in pair.listed() and "local-9000000000005" not in pair.listed()
    assert pair.scanner.records[str(pair.logs / "local-9000000000003")].size_of_last == pair.record(3).size_of_last + 100
    pair.check()
    # A log deleted and written again between two follows is listed; one written then deleted is not.
    pair.writer.delete([str(pair.logs / "local-9000000000007")])
    pair.writer.put([pair.record(7)])
    pair.writer.put([pair.record(22)])
    pair.writer.delete([str(pair.logs / "local-9000000000022")])
    pair.follower.follow()
    assert "local-9000000000007" in pair.listed() and "local-9000000000022" not in pair.listed()
    assert pair.follower.reloads == reloads and pair.follower.deltas == 2
    pair.check()
    # A record that stops being listed (no app id) leaves the index.
    hidden = pair.record(8)
    hidden.listing.app_id = None
    pair.writer.put([hidden])
    pair.follower.follow()
    assert "local-9000000000008" not in pair.listed()
    pair.check()


def test_a_rebuilt_catalog_is_read_again_in_full(pair: Pair) -> None:
    """The writer empties the catalog for a rebuild (here: another log directory): not a delta."""
    pair.writer.close()
    pair.writer = Catalog(str(pair.store), "file:/elsewhere")
    pair.writer.put([pair.record(40)])
    reloads = pair.follower.reloads
    pair.follower.follow()
    assert pair.follower.reloads == reloads + 1
    assert pair.listed() == {"local-9000000000040"}
    pair.check()


def test_a_replaced_catalog_file_is_opened_and_read_again(pair: Pair) -> None:
    """The writer moved a damaged database aside and started a new file: the reader's
    connection still reads the old one until it sees the file changed."""
    pair.writer.close()
    quarantine = pair.store / "q"
    quarantine.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if (pair.store / f"catalog.sqlite{suffix}").exists():
            os.replace(pair.store / f"catalog.sqlite{suffix}", quarantine / f"catalog.sqlite{suffix}")
    pair.writer = Catalog(str(pair.store), str(pair.logs))
    pair.writer.put([pair.record(50), pair.record(51)])
    reloads = pair.follower.reloads
    pair.follower.follow()
    assert pair.follower.reloads == reloads + 1
    assert pair.listed() == {"local-9000000000050", "local-9000000000051"}
    pair.check()


def test_a_gap_in_the_tombstones_means_a_full_read(pair: Pair) -> None:
    """Tombstones older than the reader's mark were pruned: a deletion may be missing, so read everything."""
    pair.writer.delete([str(pair.logs / "local-9000000000001")])
    db = sqlite3.connect(pair.store / "catalog.sqlite")
    try:
        seq = int(db.execute("SELECT value FROM meta WHERE key = 'change_seq'").fetchone()[0])
        db.execute("DELETE FROM removed")  # as a prune past the reader's mark leaves it
        db.execute("INSERT OR REPLACE INTO meta VALUES ('removed_floor', ?)", (str(seq),))
        db.commit()
    finally:
        db.close()
    reloads = pair.follower.reloads
    pair.follower.follow()
    assert pair.follower.reloads == reloads + 1
    assert "local-9000000000001" not in pair.listed()
    pair.check()


@pytest.mark.parametrize("table", ["logs", "listing"])
def test_a_damaged_changed_row_is_not_listed(pair: Pair, table: str) -> None:
    """A changed log whose record, or whose stored listing row (which a follow takes), is damaged
    is not listed, as a full read does not list it."""
    pair.writer.put([pair.record(30)])
    db = sqlite3.connect(pair.store / "catalog.sqlite")
    try:
        db.execute(f"UPDATE {table} SET checksum = checksum + 1 WHERE path = ?", (str(pair.logs / "local-9000000000030"),))
        db.commit()
    finally:
        db.close()
    pair.follower.follow()
    assert "local-9000000000030" not in pair.listed()
    pair.check()  # a full read drops the damaged row too


def test_a_follow_takes_the_stored_rows_without_rendering_them(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows a delta brings are the writer's, as stored: none is rendered again here (a cold
    start's 10,000 rows cost a serving process 1.2 s of CPU when each was)."""
    pair.writer.put([pair.record(i) for i in range(40, 60)])
    pair.writer.put([pair.record(3, size=pair.record(3).size_of_last + 100)])
    import sparkhist.store.applications as applications

    def no_rendering(*args: object, **kwargs: object) -> None:
        raise AssertionError("a listing row was rendered by the follow")

    monkeypatch.setattr(applications, "listing_row", no_rendering)
    pair.follower.follow()
    monkeypatch.undo()
    assert {f"local-9{i:012d}" for i in range(40, 60)} <= pair.listed()
    pair.check()


@pytest.mark.slow
def test_a_delta_follow_at_100k_entries_costs_what_changed(tmp_path: Path, seeds: list[LogRecord]) -> None:
    """One new log at 100,000 catalog entries: the follow reads one row, not the catalog.

    Measured against a full read of the same catalog in the same process (CPU time of
    this thread, so other load on the machine counts for neither)."""
    apps = 100_000
    pair = _pair(tmp_path, seeds, apps)
    try:
        deltas, fulls = [], []
        for r in range(3):
            record = pair.record(apps + r)
            pair.writer.put([record])
            c0 = time.thread_time()
            pair.follower.follow()
            deltas.append(time.thread_time() - c0)
            assert pair.scanner.index.get(record.app_id) is not None
        pair.writer.put([pair.record(apps + 10)])
        c0 = time.thread_time()
        pair.follower.reload()
        fulls.append(time.thread_time() - c0)
        assert len(pair.scanner.index) == apps + 4
        delta, full = statistics.median(deltas), fulls[0]
        assert delta * 100 < full, f"a delta follow took {delta * 1000:.2f} ms, a full read {full * 1000:.0f} ms"
        assert delta < 0.05, f"a delta follow of one log took {delta * 1000:.1f} ms of CPU at {apps:,} entries"
    finally:
        pair.reader.close()
        pair.writer.close()
