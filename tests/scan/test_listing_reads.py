"""The listing pass read by worker processes gives exactly what reading in the scanning process gives."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from sparkhist.config import load_settings
from sparkhist.errors import LogError
from sparkhist.events.listing import LISTING_PREFIXES
from sparkhist.scan import listing_reads, scanner
from sparkhist.server import build_runtime
from sparkhist.source.local import LocalSource
from support.conformance import SPARK401
from support.server import copy_logs

#: Fields of a record that are times of the scan itself (a log still being written is stamped when read).
_SCAN_TIMES = ("last_processed", "last_updated")


def _damaged_logs(logs: Path) -> None:
    """Beside the real logs: a zstd log damaged in its last frame (the tail the listing reads, so
    the whole log is read), a listing event that is not JSON."""
    whole = (logs / "local-1795972915174.zstd").read_bytes()
    near_end = len(whole) - 3000
    (logs / "local-damaged.zstd").write_bytes(whole[:near_end] + bytes(64) + whole[near_end + 64 :])
    plain = (logs / "local-1795972896863").read_bytes().split(b"\n")
    plain.insert(3, b'{"Event":"SparkListenerApplicationStart","App Name": broken')
    (logs / "local-malformed").write_bytes(b"\n".join(plain))


def _scan(logs: Path, store: Path, workers: int) -> tuple[dict[str, dict[str, Any]], dict[str, int], bool]:
    settings = load_settings({"log_dir": str(logs), "store_dir": str(store), "index_workers": workers,
                              "watch_log_dir": False}, environ={})
    runtime = build_runtime(settings)
    used: list[bool] = []
    listing_pool = runtime.scanner._listing_pool

    def spy(count: int) -> listing_reads.ListingPool | None:
        pool = listing_pool(count)
        used.append(pool is not None)
        return pool

    runtime.scanner._listing_pool = spy  # type: ignore[method-assign]
    try:
        runtime.scanner.indexer = None  # the listing pass alone
        report = runtime.scanner.scan_once()
        records = {path: {k: v for k, v in r.to_dict().items() if k not in _SCAN_TIMES}
                   for path, r in runtime.scanner.records.items()}
        counts = {"listed": report.listed, "new": report.new, "failed": report.failed, "bytes": report.bytes_read,
                  "lines": runtime.scanner.events_parsed, "errors": len(report.errors)}
        return records, counts, used == [True]
    finally:
        runtime.close()


def test_workers_and_the_scanning_process_read_the_same_listings(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    _damaged_logs(logs)
    monkeypatch.setattr(scanner, "PARALLEL_MIN", 2)  # these few logs go to the workers...
    monkeypatch.setattr(listing_reads, "CHUNK", 3)  # ...several tasks of a few logs each
    pooled, pooled_counts, pool_used = _scan(logs, tmp_path / "pooled", workers=2)
    assert pool_used
    alone, alone_counts, pool_used = _scan(logs, tmp_path / "alone", workers=1)
    assert not pool_used
    assert pooled_counts == alone_counts and alone_counts["listed"] == 15
    assert alone_counts["failed"] == 1  # the damaged log: listed from the lines before the damage
    assert sorted(pooled) == sorted(alone)
    assert [p for p in alone if pooled[p] != alone[p]] == []
    assert alone[str(logs / "local-damaged.zstd")]["error"]
    assert alone[str(logs / "local-malformed")]["listing"]["app_id"] == "local-1795972896863"


def test_a_log_that_vanished_before_its_read_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source error in a worker is the log's failure (tried again next scan), as in the scanning process."""
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    monkeypatch.setattr(scanner, "PARALLEL_MIN", 2)
    settings = load_settings({"log_dir": str(logs), "store_dir": str(tmp_path / "store"), "index_workers": 2,
                              "watch_log_dir": False}, environ={})
    runtime = build_runtime(settings)
    gone = logs / "eventlog_v2_local-1795972918271"
    discover = runtime.scanner._discover

    def discover_then_remove(*args: Any) -> Any:
        found = discover(*args)
        shutil.rmtree(gone)  # listed, then removed before any read
        return found

    runtime.scanner._discover = discover_then_remove  # type: ignore[method-assign]
    try:
        runtime.scanner.indexer = None
        report = runtime.scanner.scan_once()
        assert report.failed == 1 and list(report.errors) == [str(gone)]
        assert len(runtime.scanner.records) == 12
    finally:
        runtime.close()


def test_logs_a_failed_worker_did_not_read_are_read_in_the_scanning_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A broken pool (a worker killed, processes that cannot start) costs speed, not listings."""
    from concurrent.futures.process import BrokenProcessPool

    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    alone, alone_counts, _ = _scan(logs, tmp_path / "alone", workers=1)
    monkeypatch.setattr(scanner, "PARALLEL_MIN", 2)

    def broken(self: listing_reads.ListingPool, work: list[Any]) -> Any:
        for i, item in enumerate(work):
            yield item, BrokenProcessPool("a worker died") if i % 3 else listing_reads.read_listing(
                LocalSource(str(logs)), item)

    monkeypatch.setattr(listing_reads.ListingPool, "read", broken)
    pooled, pooled_counts, pool_used = _scan(logs, tmp_path / "pooled", workers=2)
    assert pool_used and pooled_counts == alone_counts and pooled == alone
    assert caplog.text.count("the listing workers failed") == 1


def test_a_worker_killed_before_the_reads_costs_no_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The workers start before the rolling directories are listed; one killed then (the pool broken
    before any read is handed over) leaves every log to the scanning process."""
    import os
    import signal
    import time

    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    alone, alone_counts, _ = _scan(logs, tmp_path / "alone", workers=1)
    monkeypatch.setattr(scanner, "PARALLEL_MIN", 2)
    start = listing_reads.ListingPool.start
    killed: list[int] = []

    def start_then_kill(self: listing_reads.ListingPool) -> None:
        start(self)
        executor = self._pool
        processes = executor._processes
        pid = next(iter(processes))
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        deadline = time.monotonic() + 30
        while not executor._broken and time.monotonic() < deadline:
            time.sleep(0.01)
        assert executor._broken

    monkeypatch.setattr(listing_reads.ListingPool, "start", start_then_kill)
    pooled, pooled_counts, pool_used = _scan(logs, tmp_path / "pooled", workers=2)
    assert killed and pool_used
    assert pooled_counts == alone_counts and pooled == alone
    assert caplog.text.count("the listing workers failed") == 1


@pytest.mark.parametrize("tail_decoded", [4096, 64 << 10])
def test_every_conformance_log_lists_by_head_and_tail_as_by_the_whole_read(tail_decoded: int,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Every log of the conformance data (every codec, single files and rolling, finished, in progress,
    broken): the head-and-tail read gives the whole read's listing, position (its line count aside)
    and error; with a small tail, the finished compressed logs are read by their head and tail."""
    from sparkhist.reader import layout, tail
    from sparkhist.reader.position import START
    from sparkhist.reader.stream import ReadStats, read_lines
    from sparkhist.scan import changes
    from support.conformance import CONFORMANCE

    monkeypatch.setattr(tail, "TAIL_DECODED", tail_decoded)
    directories = sorted({p.parent for p in CONFORMANCE.rglob("*") if p.is_file() and not p.name.endswith((".md", ".json"))})
    compared = skipped = 0
    for directory in directories:
        source = LocalSource(str(directory))
        for entry in source.list(str(directory)):
            if not layout.is_candidate(entry):
                continue
            try:
                event_log = layout.find_event_log(source, entry.path)
            except LogError:
                continue
            item = changes.fresh(event_log)
            stats = ReadStats()
            whole = listing_reads._read(source, item, read_lines(source, event_log, START, stats=stats,
                                                                 only=LISTING_PREFIXES), START, stats)
            read = listing_reads.read_listing(source, changes.fresh(event_log))
            assert read.listing == whole.listing, entry.path
            assert read.position.as_tuple()[:3] == whole.position.as_tuple()[:3], entry.path
            assert read.error == whole.error and read.failure is None and whole.failure is None
            compared += 1
            skipped += read.lines < whole.lines
    assert compared >= 40
    assert skipped >= (8 if tail_decoded == 4096 else 5)  # lines not decoded: the skip was made
