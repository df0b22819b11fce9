"""The scan loop's ``listed`` moment: what waits for a first scan's listing pass (the other
serving processes, :mod:`sparkhist.server.startup`) starts once every log found is listed and
written, before the full indexing, and never because of a stop."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from sparkhist.scan.indexer import Indexer
from sparkhist.scan.loop import ScanLoop
from sparkhist.scan.scanner import Scanner
from sparkhist.source.local import LocalSource
from sparkhist.state.app_state import AppState
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from sparkhist.store.lock import WriterLock
from sparkhist.store.snapshots import SnapshotStore
from support.conformance import SPARK401
from support.server import copy_logs

LOGS = 13  # the Spark 4.0.1 conformance logs


def _loop(log_dir: Path, store: Path) -> ScanLoop:
    source = LocalSource(str(log_dir))
    snapshots = SnapshotStore(str(store / "snapshots"))
    scanner = Scanner(source, Catalog(str(store), source.root), ApplicationIndex(),
                      indexer=Indexer(source, snapshots, AppState), snapshots=snapshots)
    return ScanLoop(scanner, WriterLock(str(store)), 60.0, role="writer")


def test_listed_once_every_log_is_written_and_before_the_full_indexing(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    loop = _loop(logs, tmp_path / "store")
    seen: list[tuple[int, int]] = []

    def at_listed() -> None:  # what another process reading the store would find at that moment
        reader = Catalog(str(tmp_path / "store"), loop.scanner.source.root, read_only=True)
        try:
            seen.append((len(reader.load_listing().entries), len(loop.scanner.snapshots.file_names())))
        finally:
            reader.close()

    loop.scanner.on_listed.insert(0, at_listed)  # before the loop's own: looked at before listed is set
    assert not loop.listed.is_set()
    loop.start()
    try:
        assert loop.listed.wait(60)
        assert seen[0] == (LOGS, 0), seen  # all listed in the catalog, no snapshot built yet
        deadline = time.monotonic() + 60
        while loop.scans < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert loop.scans == 1
        assert loop.scanner.snapshots.file_names()  # the full indexing came after
    finally:
        loop.stop()


def test_a_first_scan_that_cannot_list_still_ends_the_wait(tmp_path: Path) -> None:
    """A log directory that cannot be listed: the first tick ends with nothing listed, and what
    waits for the listing is not held up by it."""
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    loop = _loop(logs, tmp_path / "store")
    shutil.rmtree(logs)
    loop.start()
    try:
        assert loop.listed.wait(60)
        report = loop.scanner.last_report
        assert report is not None and report.source_error is not None
    finally:
        loop.stop()


def test_a_stop_never_sets_listed(tmp_path: Path) -> None:
    """Stopped during its first scan's listing pass, the loop does not say it listed: nothing
    waiting for that starts while the server stops."""
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    loop = _loop(logs, tmp_path / "store")
    in_pass = threading.Event()

    def stop_in_the_pass(done: int, total: int) -> None:
        in_pass.set()
        loop.stop_soon()

    scan_once = loop.scanner.scan_once
    loop.scanner.scan_once = lambda progress=None: scan_once(stop_in_the_pass)  # type: ignore[method-assign]
    loop.start()
    assert in_pass.wait(60)
    assert loop.stop()
    assert not loop.listed.is_set()
