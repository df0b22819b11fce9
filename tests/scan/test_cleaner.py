"""The cleaner: maxAge and maxNum as the SHS applies them, logs deleted from the source."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sparkhist.scan.cleaner import Cleaner, CleanerPolicy
from sparkhist.scan.scanner import Scanner
from sparkhist.source.local import LocalSource
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from support.conformance import SPARK401
from support.server import copy_logs

DAY = 86400.0


def _scanner(logs: Path, store: Path) -> Scanner:
    source = LocalSource(str(logs))
    scanner = Scanner(source, Catalog(str(store), source.root), ApplicationIndex())
    scanner.scan_once()
    return scanner


def test_max_age_removes_old_attempts_and_their_logs(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    scanner = _scanner(logs, tmp_path / "store")
    newest = max(a.attempts[0].last_updated for a in scanner.index.sorted_apps() if not a.running)
    # The completed apps were last updated at their log's mtime (the copy: now); running ones at scan time.
    later = newest / 1000 + 8 * DAY
    report = Cleaner(scanner, CleanerPolicy(max_age_s=7 * DAY), clock=lambda: later).clean()
    assert report.attempts_removed == 13 and report.logs_deleted == 13
    assert len(scanner.index) == 0 and os.listdir(logs) == []
    # and the store agrees after a restart
    scanner.catalog.close()
    assert _scanner(logs, tmp_path / "store").load() == 0


def test_max_age_keeps_recent_apps(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    old = logs / "local-1795972896863"
    os.utime(old, (time.time() - 30 * DAY, time.time() - 30 * DAY))
    scanner = _scanner(logs, tmp_path / "store")
    report = Cleaner(scanner, CleanerPolicy(max_age_s=7 * DAY)).clean()
    assert report.attempts_removed == 1
    assert scanner.index.get("local-1795972896863") is None and not old.exists()
    assert len(scanner.index) == 12


def test_max_num_deletes_completed_oldest_first_never_running(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    now = time.time()
    for i, name in enumerate(sorted(os.listdir(logs))):
        os.utime(logs / name, (now - 1000 + i, now - 1000 + i))
    scanner = _scanner(logs, tmp_path / "store")
    completed = sorted((a for a in scanner.index.sorted_apps() if not a.running), key=lambda a: a.attempts[0].last_updated)
    report = Cleaner(scanner, CleanerPolicy(max_num=10, delete_logs=False)).clean()
    assert report.attempts_removed == 3 and report.logs_deleted == 0
    assert [a.id for a in completed[:3]] == [a for a in (c.id for c in completed) if scanner.index.get(a) is None]
    # only running attempts are left to delete: the cleaner stops at them
    report = Cleaner(scanner, CleanerPolicy(max_num=1, delete_logs=False)).clean()
    assert all(a.running for a in scanner.index.sorted_apps()) and len(scanner.index) == 6


def test_log_without_app_id_expires(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app-garbage").write_bytes(b'{"Event":"SparkListenerLogStart","Spark Version":"4.0.1"}\n')
    scanner = _scanner(logs, tmp_path / "store")
    assert str(logs / "app-garbage") in scanner.records
    report = Cleaner(scanner, CleanerPolicy(max_age_s=DAY), clock=lambda: time.time() + 2 * DAY).clean()
    assert report.attempts_removed == 1 and not (logs / "app-garbage").exists()
