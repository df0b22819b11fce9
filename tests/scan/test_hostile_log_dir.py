"""A log directory with hostile entries: each is skipped on its own, once, and said so.

Real parts only: symbolic links that loop (``ln -s loopx loopx``), dangle or leave the
directory; FIFOs, a bound UNIX socket and a character device named like logs; a name
that is not UTF-8; files and directories this process may not read (as ``nobody``
through ``setpriv`` when the tests run as root, as CI does); empty files, garbage, a
directory named like a log, two logs of one application. Each test first asserts
what used to break (a failed listing, a read that never returns, a silent skip), then
the skip's one warning, its ``/health/details`` entry and ``sparkhist_skipped_logs``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sparkhist.config import load_settings
from sparkhist.errors import SourceError
from sparkhist.scan.scanner import Scanner
from sparkhist.server import Runtime, build_runtime
from sparkhist.source.local import LocalSource
from sparkhist.source.skipped import SkippedLogs
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from support.conformance import SPARK401
from support.metrics import scrape, value

EVENTLOGS = SPARK401 / "eventlogs"
LOGS = {
    "local-1795972896863": "local-1795972896863",
    "local-1795972905472.lz4": "local-1795972905472",
    "eventlog_v2_local-1795972918271": "local-1795972918271",
}
LATE = ("local-1795972911639.snappy", "local-1795972911639")  # added to a populated store
HANG_LIMIT = 30.0  # seconds: a read that blocks on a FIFO never ends


def make_logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in LOGS:
        src = EVENTLOGS / name
        if src.is_dir():
            shutil.copytree(src, logs / name)
        else:
            shutil.copyfile(src, logs / name)
    for path in [logs, *logs.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return logs


def scanner_for(logs: Path, store: Path) -> Scanner:
    source = LocalSource(str(logs))
    return Scanner(source, Catalog(str(store), source.root), ApplicationIndex())


@contextmanager
def runtime(logs: Path, store: Path) -> Iterator[tuple[Runtime, TestClient]]:
    settings = load_settings({"log_dir": str(logs), "store_dir": str(store), "index_workers": 1}, environ={})
    rt = build_runtime(settings)
    try:
        assert rt.loop.lock.try_acquire()
        with TestClient(rt.app) as client:
            yield rt, client
    finally:
        rt.close()


def app_ids(client: TestClient) -> set[str]:
    return {a["id"] for a in client.get("/api/v1/applications").json()}


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """``fn()``'s result, or a failure when it has not returned after ``seconds`` (a blocked read)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still blocked after {seconds:.0f}s")
    if "error" in out:
        raise out["error"]
    return out.get("value")


def release_fifo(path: Path) -> None:
    """Unblocks a reader stuck in open() on a FIFO (for the code before the fix): a writer comes and goes."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # nobody reading it


def skip_warnings(caplog: pytest.LogCaptureFixture) -> dict[str, int]:
    """WARNING lines of skipped entries, per path."""
    out: dict[str, int] = {}
    for r in caplog.records:
        if r.levelno >= logging.WARNING and getattr(r, "event", None) == "log_skipped":
            path = r.__dict__["log_path"]
            out[path] = out.get(path, 0) + 1
    return out


def skipped_doc(client: TestClient) -> dict[str, tuple[str, str]]:
    doc = client.get("/health/details").json()
    return {e["path"]: (e["reason"], e["action"]) for e in doc["skipped"]["entries"]}


# -- symbolic links ------------------------------------------------------------------------
def test_a_symlink_loop_never_takes_the_directory_offline(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    logs = make_logs(tmp_path)
    os.symlink("loopx", logs / "loopx")  # ln -s loopx loopx
    os.symlink("loop-b", logs / "local-1795970000001")  # a two-link loop, named like a log
    os.symlink("local-1795970000001", logs / "loop-b")
    caplog.set_level(logging.INFO)

    with runtime(logs, tmp_path / "fresh") as (rt, client):
        report = rt.scanner.scan_once()
        assert report.ok, report.source_error  # before: ELOOP failed the listing, 0 applications
        assert app_ids(client) == set(LOGS.values())
        # A populated store discovers what is new despite the loop.
        shutil.copyfile(EVENTLOGS / LATE[0], logs / LATE[0])
        for _ in range(2):
            assert rt.scanner.scan_once().ok
        assert app_ids(client) == {*LOGS.values(), LATE[1]}

        doc = client.get("/health/details").json()
        assert doc["sources"][0]["state"] == "ok" and not doc["offline"]
        loops = {str(logs / n) for n in ("loopx", "local-1795970000001", "loop-b")}
        assert skipped_doc(client) == {p: ("symlink_loop", "skipped") for p in loops}
        assert doc["skipped"]["byReason"] == {"symlink_loop": 3}
        samples = scrape(client)
        assert value(samples, "sparkhist_skipped_logs", reason="symlink_loop") == 3
        assert value(samples, "sparkhist_skipped_logs", reason="not_regular_file") == 0
        assert value(samples, "sparkhist_source_up") == 1
        assert skip_warnings(caplog) == dict.fromkeys(loops, 1), "one warning per entry, not one per scan"

        # Fixed: the loop removed, its entry goes (and no other).
        os.unlink(logs / "loopx")
        assert rt.scanner.scan_once().ok
        assert set(skipped_doc(client)) == loops - {str(logs / "loopx")}


def test_dangling_links_and_links_out_of_the_directory_are_skipped(tmp_path: Path) -> None:
    logs = make_logs(tmp_path)
    secret = tmp_path / "secret.json"
    secret.write_text('{"Event":"SparkListenerApplicationStart","App ID":"stolen","App Name":"x","Timestamp":1}\n')
    os.symlink(tmp_path / "nowhere", logs / "local-1795970000002")
    os.symlink(secret, logs / "local-1795970000003")
    os.symlink("../secret.json", logs / "local-1795970000004")
    os.symlink("/etc", logs / "eventlog_v2_local-1795970000005")
    os.symlink("local-1795972896863", logs / "app-inside.inprogress")  # inside: still read (an .inprogress twin)
    scanner = scanner_for(logs, tmp_path / "store")

    report = scanner.scan_once()
    assert report.ok, report.source_error
    assert {a.id for a in scanner.index.sorted_apps()} == set(LOGS.values()), "nothing read through a link that leaves"
    found = {e.path: e.reason for e in scanner.source.skipped.entries()}
    twins = {str(logs / "app-inside.inprogress"), str(logs / "local-1795972896863")}
    [duplicate] = [p for p in found if p in twins]  # the index lists one of the two, the other is said so
    assert found == {
        str(logs / "local-1795970000002"): "dangling_link",
        str(logs / "local-1795970000003"): "outside_directory",
        str(logs / "local-1795970000004"): "outside_directory",
        str(logs / "eventlog_v2_local-1795970000005"): "outside_directory",
        duplicate: "duplicate_application",
    }


# -- FIFOs, sockets, devices -----------------------------------------------------------------
def test_fifos_sockets_and_devices_are_never_opened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    logs = make_logs(tmp_path)
    fifos = [logs / "local-1795970000010", logs / "local-1795970000011.inprogress",
             logs / "eventlog_v2_local-1795972918271" / "notes"]
    for fifo in fifos:
        os.mkfifo(fifo)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(logs / "local-1795970000012.lz4"))
    specials = [*fifos, logs / "local-1795970000012.lz4"]
    if os.geteuid() == 0:
        os.mknod(logs / "local-1795970000013", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # a /dev/null
        specials.append(logs / "local-1795970000013")
    caplog.set_level(logging.INFO)
    source = LocalSource(str(logs))
    try:
        # Opening one (a FIFO put in place after a listing) fails at once instead of waiting for a writer.
        with pytest.raises(SourceError, match="not a regular file"):
            within(HANG_LIMIT, lambda: source.open(str(fifos[0])))
        listed = {e.name for e in source.list(source.root_path)}
        assert listed == set(LOGS)
        caplog.clear()  # the runtime's source below has a registry of its own

        with runtime(logs, tmp_path / "store") as (rt, client):
            for _ in range(3):
                report = within(HANG_LIMIT, rt.scanner.scan_once)
                assert report.ok and report.failed == 0, (report.source_error, report.errors)
            assert app_ids(client) == set(LOGS.values())
            assert skipped_doc(client) == {str(p): ("not_regular_file", "skipped") for p in specials}
            assert value(scrape(client), "sparkhist_skipped_logs", reason="not_regular_file") == len(specials)
            assert skip_warnings(caplog) == {str(p): 1 for p in specials}
            detail = {e.path: e.detail for e in rt.source.skipped.entries()}
            assert "a FIFO" in detail[str(fifos[0])] and "a socket" in detail[str(logs / "local-1795970000012.lz4")]
    finally:
        sock.close()
        for fifo in fifos:
            release_fifo(fifo)


def test_opening_refuses_what_leaves_the_log_directory_after_the_listing(tmp_path: Path) -> None:
    """The open path (no full path resolution per open) keeps the listing's rules for entries
    swapped after it: a file or a rolling log's directory turned into a link out, a loop."""
    logs = make_logs(tmp_path)
    rolling = logs / "eventlog_v2_local-1795972918271"
    [events] = [p.name for p in rolling.iterdir() if p.name.startswith("events_")]
    outside = tmp_path / "outside"
    shutil.copytree(rolling, outside)
    source = LocalSource(str(logs))
    inside = source.open(str(rolling / events))
    with inside:
        assert inside.read() == (rolling / events).read_bytes()

    # A link to a file of the same directory is opened; one out of it is not.
    os.symlink(events, rolling / "twin")
    with source.open(str(rolling / "twin")) as twin:
        assert twin.read() == (rolling / events).read_bytes()
    os.symlink(outside / events, rolling / "escape")
    with pytest.raises(SourceError, match="real path leaves its directory"):
        source.open(str(rolling / "escape"))
    os.symlink("loop", rolling / "loop")
    with pytest.raises(SourceError):
        source.open(str(rolling / "loop"))

    # The rolling log's directory swapped for a link out of the log directory: its files are refused.
    shutil.rmtree(rolling)
    os.symlink(outside, rolling)
    with pytest.raises(SourceError, match="directory's real path leaves the log directory"):
        source.open(str(rolling / events))
    # ... and for a link to another directory inside the log directory (as the listing allows), opened.
    os.unlink(rolling)
    shutil.copytree(outside, logs / "eventlog_v2_local-1795972918272")
    os.symlink("eventlog_v2_local-1795972918272", rolling)
    with source.open(str(rolling / events), 3) as moved:
        assert moved.read() == (outside / events).read_bytes()[3:]

    # A single-file log swapped for a link out of the log directory, after the listing.
    single = logs / "local-1795972896863"
    single.unlink()
    os.symlink(outside / events, single)
    with pytest.raises(SourceError, match="real path leaves its directory"):
        source.open(str(single))


# -- names ---------------------------------------------------------------------------------------
def test_a_name_that_is_not_utf8_is_skipped(tmp_path: Path) -> None:
    logs = make_logs(tmp_path)
    bad = os.fsencode(logs) + b"/local-1795970000020\xff\xfe"
    with open(bad, "wb") as f:
        f.write((EVENTLOGS / "local-1795972896863").read_bytes().replace(b"local-1795972896863", b"local-1795970000020"))

    with runtime(logs, tmp_path / "store") as (rt, client):
        report = rt.scanner.scan_once()
        assert report.ok and report.failed == 0, (report.source_error, report.errors)
        assert app_ids(client) == set(LOGS.values())
        assert rt.scanner.scan_once().ok  # and the next scan, with the catalog written
        entries = client.get("/health/details").json()["skipped"]["entries"]
        assert [(e["path"], e["reason"]) for e in entries] == [(f"{logs}/local-1795970000020\\xff\\xfe", "undecodable_name")]


# -- permissions -----------------------------------------------------------------------------------
SCAN_AS_NOBODY = """
import json, sys
from sparkhist.scan.scanner import Scanner
from sparkhist.source.local import LocalSource
from sparkhist.source.skipped import SkippedLogs
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
source = LocalSource(sys.argv[1])
scanner = Scanner(source, Catalog(sys.argv[2], source.root), ApplicationIndex())
reports = [scanner.scan_once() for _ in range(2)]
print(json.dumps({
    "ok": [r.ok for r in reports], "errors": reports[-1].errors,
    "apps": sorted(a.id for a in scanner.index.sorted_apps()),
    "skipped": {e.path: e.reason for e in source.skipped.entries()},
}))
"""


@pytest.fixture()
def open_dir() -> Iterator[Path]:
    """A directory any user may enter (pytest's own tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="sparkhist-perm-"))
    path.chmod(0o755)
    yield path
    for p in [path, *path.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(path)


def test_entries_this_process_may_not_read_are_skipped(open_dir: Path) -> None:
    """Real permission problems: the scan runs as an unprivileged user (root reads everything)."""
    base = open_dir
    logs = make_logs(base)
    store = base / "store"
    store.mkdir()
    private = base / "private"
    private.mkdir(mode=0o700)
    shutil.copyfile(EVENTLOGS / "local-1795972908554.lzf", private / "log")
    closed_file = logs / "local-1795972915174.zstd"
    shutil.copyfile(EVENTLOGS / closed_file.name, closed_file)
    closed_file.chmod(0o000)
    closed_dir = logs / "eventlog_v2_local-1795972921414"
    shutil.copytree(EVENTLOGS / closed_dir.name, closed_dir)
    closed_dir.chmod(0o000)
    os.symlink(private / "log", logs / "local-1795972908554.lzf")  # its target's directory is closed
    command = [sys.executable, "-c", SCAN_AS_NOBODY, str(logs), str(store)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: no unprivileged user to test with")
        os.chown(store, 65534, 65534)
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=base,
                          env={**os.environ, "HOME": str(store)})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ok"] == [True, True] and out["errors"] == {}
    assert out["apps"] == sorted(LOGS.values())
    assert out["skipped"] == {
        str(closed_file): "permission_denied",
        str(closed_dir): "permission_denied",
        str(logs / "local-1795972908554.lzf"): "permission_denied",
    }
    # Before: the file failed at every scan ("reading ... failed; will retry"), the directory too.
    assert done.stderr.count("permission denied") == 3, done.stderr[-3000:]


# -- what the scanner reads and cannot use -----------------------------------------------------------------
def test_empty_garbage_directories_and_duplicates_are_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    logs = make_logs(tmp_path)
    (logs / "local-1795970000030").write_bytes(b"")
    (logs / "local-1795970000031.lz4").write_bytes(os.urandom(5000))
    (logs / "app-20261207000000-0001").write_bytes(b"\x00\x01 not json at all\n" * 200)
    (logs / "local-1795970000033.inprogress").mkdir()
    (logs / "lost+found").mkdir()  # not named like a log: not reported
    shutil.copyfile(logs / "local-1795972896863", logs / "local-1795972896863-copy")  # same application, twice
    caplog.set_level(logging.INFO)
    expected = {
        str(logs / "local-1795970000030"): ("empty", "skipped"),
        str(logs / "local-1795970000031.lz4"): ("no_application", "skipped"),
        str(logs / "app-20261207000000-0001"): ("no_application", "skipped"),
        str(logs / "local-1795970000033.inprogress"): ("directory", "skipped"),
    }
    store = tmp_path / "store"

    with runtime(logs, store) as (rt, client):
        for _ in range(3):
            assert rt.scanner.scan_once().ok
        assert app_ids(client) == set(LOGS.values())
        found = skipped_doc(client)
        [duplicate] = [p for p in found if found[p][0] == "duplicate_application"]
        assert duplicate in {str(logs / "local-1795972896863"), str(logs / "local-1795972896863-copy")}
        assert {p: r for p, r in found.items() if p != duplicate} == expected
        assert skip_warnings(caplog) == dict.fromkeys(found, 1), "one warning per entry, not one per scan"
        samples = scrape(client)
        for reason, count in {"empty": 1, "no_application": 2, "directory": 1, "duplicate_application": 1}.items():
            assert value(samples, "sparkhist_skipped_logs", reason=reason) == count

        # An entry that goes away is no longer reported.
        os.unlink(logs / "local-1795970000030")
        os.unlink(duplicate)
        assert rt.scanner.scan_once().ok
        assert skipped_doc(client) == {p: r for p, r in expected.items() if not p.endswith("0030")}

    # A restart knows them from the catalog, without opening a log (invariant 2).
    with runtime(logs, store) as (rt, client):
        assert rt.scanner.scan_once().ok
        assert rt.source.inner.opens == 0
        assert skipped_doc(client) == {p: r for p, r in expected.items() if not p.endswith("0030")}


def test_a_listing_clears_only_what_a_listing_reported(caplog: pytest.LogCaptureFixture) -> None:
    """The scanner's reports (e.g. a rolling directory it could not list) survive the next root
    listing, so they are not cleared and warned again at every scan; a listing's own report
    goes when the entry lists fine, and everything under an entry that is gone goes with it."""
    caplog.set_level(logging.INFO)
    skipped = SkippedLogs("file:/logs")
    skipped.report("/logs/fifo", "not_regular_file", "a FIFO")
    skipped.after_listing("/logs", ["/logs/fifo", "/logs/eventlog_v2_a", "/logs/eventlog_v2_b"], ["/logs/fifo"])
    skipped.report("/logs/eventlog_v2_a", "permission_denied", "cannot list")  # by the scanner
    skipped.report("/logs/eventlog_v2_b/pipe", "not_regular_file", "a FIFO")  # a rolling directory's listing
    skipped.after_listing("/logs/eventlog_v2_b", ["/logs/eventlog_v2_b/pipe"], ["/logs/eventlog_v2_b/pipe"])
    for _ in range(3):  # scans: the root lists fine again, the scanner reports the same again
        skipped.after_listing("/logs", ["/logs/fifo", "/logs/eventlog_v2_a", "/logs/eventlog_v2_b"], ["/logs/fifo"])
        skipped.report("/logs/eventlog_v2_a", "permission_denied", "cannot list")
    assert [e.path for e in skipped.entries()] == ["/logs/eventlog_v2_a", "/logs/eventlog_v2_b/pipe", "/logs/fifo"]
    assert skip_warnings(caplog) == {"/logs/fifo": 1, "/logs/eventlog_v2_a": 1, "/logs/eventlog_v2_b/pipe": 1}

    skipped.after_listing("/logs", ["/logs/fifo", "/logs/eventlog_v2_a"], [])  # fifo fixed, b deleted
    assert [e.path for e in skipped.entries()] == ["/logs/eventlog_v2_a"]
    assert skipped.counts()["permission_denied"] == 1 and sum(skipped.counts().values()) == 1
