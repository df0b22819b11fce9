"""NameNode-friendly scanning: what a rescan costs in source calls.

A rolling log's directory changes its mtime when a file is added, renamed or removed in
it, not when a file in it grows (Linux and HDFS alike). So an unchanged *completed*
rolling log costs no listing of its own on a rescan; an in-progress one is still listed,
because its last events file grows in place. The counts come from ``ScanReport.source_calls``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from sparkhist.scan.scanner import Scanner
from sparkhist.source.local import LocalSource
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from support.conformance import SPARK401

EVENTLOGS = SPARK401 / "eventlogs"
DONE = EVENTLOGS / "eventlog_v2_local-1795972918271"  # completed, zstd
PLAIN = EVENTLOGS / "local-1795972896863"  # completed single file, plain JSON lines
N_DONE = 12


def plant(src: Path, dest: Path) -> None:
    """A writable copy of a rolling log directory."""
    dest.mkdir(parents=True)
    for f in src.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())


def make_scanner(log_dir: Path, store: Path) -> Scanner:
    source = LocalSource(str(log_dir))
    return Scanner(source, Catalog(str(store), source.root), ApplicationIndex())


def bump_dir_mtime(path: Path) -> None:
    """Make sure a change lands in another millisecond than the last listing saw."""
    time.sleep(0.01)


def test_dir_mtime_semantics_on_this_file_system(tmp_path: Path) -> None:
    d = tmp_path / "eventlog_v2_x"
    d.mkdir()
    f = d / "events_1_x"
    f.write_bytes(b"a\n")
    before = d.stat().st_mtime_ns
    time.sleep(0.01)
    with f.open("ab") as out:
        out.write(b"b\n")
    assert d.stat().st_mtime_ns == before, "a growing file leaves its directory's mtime alone"
    (d / "appstatus_x.inprogress").write_bytes(b"")
    added = d.stat().st_mtime_ns
    assert added != before
    time.sleep(0.01)
    os.rename(d / "appstatus_x.inprogress", d / "appstatus_x")
    assert d.stat().st_mtime_ns != added, "a rename inside the directory changes its mtime"


def test_rescan_lists_only_the_root_and_in_progress_rolling_dirs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for i in range(N_DONE):
        plant(DONE, logs / f"eventlog_v2_local-{i:04d}")
    # An application still running, rolling, plain text: half its events written so far.
    lines = PLAIN.read_bytes().splitlines(keepends=True)
    live = logs / "eventlog_v2_local-1795972896863"
    live.mkdir()
    events = live / "events_1_local-1795972896863"
    events.write_bytes(b"".join(lines[: len(lines) // 2]))
    (live / "appstatus_local-1795972896863.inprogress").write_bytes(b"")
    shutil.copyfile(EVENTLOGS / "local-1795972905472.lz4", logs / "local-1795972905472.lz4")
    scanner = make_scanner(logs, tmp_path / "store")

    first = scanner.scan_once()
    assert first.ok and first.new == N_DONE + 2 and first.failed == 0, first
    assert first.source_calls["list"] == 1 + N_DONE + 1 and first.rolling_reused == 0

    second = scanner.scan_once()
    assert second.ok and second.unchanged == N_DONE + 2
    # Before: 1 + 13 lists per rescan. Now: the root and the one in-progress directory.
    assert second.source_calls == {"list": 2}, second.source_calls
    assert second.rolling_reused == N_DONE
    print(f"\nRPC first scan={first.source_calls} rescan={second.source_calls} ({N_DONE} completed rolling dirs reused)")

    # The in-progress log grows (its directory's mtime does not change): still seen.
    mtime = live.stat().st_mtime_ns
    with events.open("ab") as out:
        out.write(b"".join(lines[len(lines) // 2 : -1]))
    assert live.stat().st_mtime_ns == mtime
    # A completed log loses a file and gets a new one: its directory's mtime moves.
    done0 = logs / "eventlog_v2_local-0000"
    bump_dir_mtime(done0)
    (done0 / "appstatus_local-1795972918271").rename(done0 / "appstatus_local-1795972918271.inprogress")
    third = scanner.scan_once()
    assert third.source_calls.get("list") == 3, third.source_calls
    assert third.rolling_reused == N_DONE - 1
    assert third.grown == 2 and third.failed == 0, third  # the live one, and done0 now "in progress"
    app = scanner.index.get("local-1795972896863")
    assert app is not None and app.running

    # Both complete: the last events are written and the appstatus files renamed, so
    # both directories are listed once more, then reused like the others.
    with events.open("ab") as out:
        out.write(lines[-1])
    bump_dir_mtime(live)
    os.rename(live / "appstatus_local-1795972896863.inprogress", live / "appstatus_local-1795972896863")
    os.rename(done0 / "appstatus_local-1795972918271.inprogress", done0 / "appstatus_local-1795972918271")
    fourth = scanner.scan_once()
    assert fourth.source_calls.get("list") == 3 and fourth.grown == 2, fourth
    app = scanner.index.get("local-1795972896863")
    assert app is not None and not app.running
    fifth = scanner.scan_once()
    assert fifth.source_calls == {"list": 1} and fifth.rolling_reused == N_DONE + 1, fifth
    assert fifth.unchanged == N_DONE + 2 and fifth.source_calls.get("open", 0) == 0

    # A removed rolling directory leaves the listing (and the reuse cache).
    shutil.rmtree(logs / "eventlog_v2_local-0005")
    sixth = scanner.scan_once()
    assert sixth.removed == 1 and sixth.source_calls == {"list": 1} and sixth.rolling_reused == N_DONE
    assert "eventlog_v2_local-0005" not in str(scanner._rolling)


def test_a_broken_rolling_dir_is_not_relisted_until_it_changes(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    broken = logs / "eventlog_v2_app-broken"
    broken.mkdir(parents=True)
    (broken / "events_1_app-broken").write_bytes(b"")
    scanner = make_scanner(logs, tmp_path / "store")
    first = scanner.scan_once()
    assert first.failed == 1 and "no appstatus" in first.errors[str(broken)]
    second = scanner.scan_once()
    assert second.failed == 1 and second.source_calls == {"list": 1}
    bump_dir_mtime(broken)
    (broken / "appstatus_app-broken.inprogress").write_bytes(b"")
    third = scanner.scan_once()
    assert third.source_calls == {"list": 2} and str(broken) not in third.errors
