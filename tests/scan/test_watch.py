"""File-system notifications of a local log directory (``sparkhist.scan.watch``), and the
freshness they give ``sparkhist serve``: a new or grown log listed long before the next
periodic scan could have run (the scan interval is set to 60 s here).

The delays are measured and recorded (``record_property``); the assertion is the form
that cannot flake on a busy machine: listed within 5 s, so through a notification.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from sparkhist.config import bundled_samples
from sparkhist.devtools.scale import Template, load_template, rewrite, write_log
from sparkhist.scan.watch import LogDirWatch, top_entry
from support.serving import free_port, serve_process

if TYPE_CHECKING:
    from sparkhist.server.runtime import Runtime

#: Well before the 60 s scan interval: only a notification can list a log this soon.
LISTED_WITHIN = 5.0
SCAN_INTERVAL = "60"


def _until(predicate: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``predicate`` held (polled every 10 ms), or None after ``timeout``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if predicate():
                return time.monotonic() - t0
        except (httpx.TransportError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    return None


# -- the watch alone ------------------------------------------------------------------------
class Seen:
    def __init__(self) -> None:
        self.batches: list[set[str] | None] = []
        self.lock = threading.Lock()

    def __call__(self, entries: set[str] | None) -> None:
        with self.lock:
            self.batches.append(entries)

    def entries(self) -> set[str]:
        with self.lock:
            return set().union(*(b for b in self.batches if b is not None))

    def storms(self) -> int:
        with self.lock:
            return sum(1 for b in self.batches if b is None)


def test_top_entry() -> None:
    assert top_entry("/logs", "/logs/app-1") == "/logs/app-1"
    assert top_entry("/logs", "/logs/eventlog_v2_app-1/events_2_app-1") == "/logs/eventlog_v2_app-1"
    assert top_entry("/logs", "/logs") is None
    assert top_entry("/logs", "/elsewhere/app-1") is None


def test_the_watch_names_root_entries_survives_its_root_and_calls_a_storm(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    seen = Seen()
    watch = LogDirWatch(str(root), seen, storm=100)
    watch.start()
    try:
        assert watch.watching.wait(10)
        (root / "app-1").write_bytes(b"x")
        (root / "eventlog_v2_app-2").mkdir()
        assert _until(lambda: str(root / "eventlog_v2_app-2") in seen.entries(), 5) is not None
        (root / "eventlog_v2_app-2" / "events_1_app-2").write_bytes(b"y")
        assert _until(lambda: {str(root / "app-1"), str(root / "eventlog_v2_app-2")} <= seen.entries(), 5) is not None
        os.mkfifo(root / "a-fifo")  # named, never opened by the watch
        assert _until(lambda: str(root / "a-fifo") in seen.entries(), 5) is not None
        # A storm: one "scan everything" instead of one check per entry.
        for i in range(1000):
            (root / f"storm-{i:05d}").write_bytes(b"")
        assert _until(lambda: seen.storms() >= 1, 10) is not None
        # The root deleted, then a file where it was, then a directory again: watched again.
        shutil.rmtree(root)
        assert _until(lambda: not watch.watching.is_set(), 10) is not None
        root.write_bytes(b"not a directory")
        time.sleep(1.5)
        assert not watch.watching.is_set() and watch.failures >= 1
        root.unlink()
        root.mkdir()
        assert _until(watch.watching.is_set, 30) is not None
        time.sleep(0.3)
        (root / "app-3").write_bytes(b"z")
        assert _until(lambda: str(root / "app-3") in seen.entries(), 5) is not None
    finally:
        watch.stop()
    assert not watch._thread.is_alive()


# -- sparkhist serve --------------------------------------------------------------------------
@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    logs: Path
    stage: Path
    log_file: Path
    template: Template

    def listed(self) -> dict[str, Any]:
        return {a["id"]: a for a in httpx.get(self.url + "/api/v1/applications", timeout=30).json()}

    def jobs(self, app_id: str) -> int:
        response = httpx.get(f"{self.url}/api/v1/applications/{app_id}/jobs", timeout=30)
        return len(response.json()) if response.status_code == 200 else -1


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    logs, stage = tmp_path / "logs", tmp_path / "stage"
    logs.mkdir()
    stage.mkdir()
    shutil.copy(Path(bundled_samples()) / "local-1795972905472.lz4", logs)
    port = free_port()
    log_file = tmp_path / "serve.log"
    env = {**os.environ, "SPARKHIST_SCAN_INTERVAL": SCAN_INTERVAL, "SPARKHIST_SERVE_PROCESSES": "1",
           "SPARKHIST_INDEX_WORKERS": "1"}
    template = load_template(Path(bundled_samples()) / "local-1795972905472.lz4")
    with serve_process(port, ["--log-dir", str(logs), "--store", str(tmp_path / "store")], env, log_file) as proc:
        s = Served(proc, f"http://127.0.0.1:{port}", logs, stage, log_file, template)
        ready = _until(lambda: httpx.get(s.url + "/ready", timeout=10).status_code == 200 and len(s.listed()) == 1, 120)
        assert ready is not None, log_file.read_text()[-3000:]
        time.sleep(0.5)  # the first scan is over: what follows is seen through notifications only
        yield s
    assert proc.returncode == 0, log_file.read_text()[-3000:]


def _split(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """The lines before the first job, and the rest."""
    first_job = next(i for i, line in enumerate(lines) if line.startswith(b'{"Event":"SparkListenerJobStart"'))
    return lines[:first_job], lines[first_job:]


@pytest.mark.slow
def test_new_and_grown_logs_are_listed_before_any_scan(served: Served, record_property: Callable[[str, object], None]) -> None:
    delays: dict[str, float] = {}

    def listed_within(what: str, predicate: Callable[[], bool]) -> None:
        delay = _until(predicate, LISTED_WITHIN)
        assert delay is not None, f"{what}: not seen within {LISTED_WITHIN}s\n{served.log_file.read_text()[-3000:]}"
        delays[what] = delay

    t = served.template

    def moved_in_before_jobs(app: str, kind: str, what: str) -> tuple[Path, list[bytes]]:
        """An in-progress log of ``app`` up to its first job moved in and listed; the lines left to write."""
        head, rest = _split(rewrite(t, app))
        staged = write_log(served.stage, app, head, codec=None, kind=kind, in_progress=True)
        moved = staged.rename(served.logs / staged.name)
        listed_within(what, lambda: app in served.listed())
        assert served.jobs(app) == 0
        return moved, rest

    # A finished single file, moved in at once.
    app = "local-1795972990001"
    staged = write_log(served.stage, app, rewrite(t, app), codec=t.codec, kind="single", in_progress=False)
    staged.rename(served.logs / staged.name)
    listed_within("new single file", lambda: app in served.listed())
    assert served.jobs(app) > 0

    # An .inprogress file that grows, then is renamed to its finished name.
    app = "local-1795972990002"
    live, rest = moved_in_before_jobs(app, "single", "new .inprogress file")
    with live.open("ab") as f:
        f.write(b"".join(line + b"\n" for line in rest))
    listed_within(".inprogress growth", lambda: served.jobs(app) > 0)
    live.rename(served.logs / live.name.removesuffix(".inprogress"))
    listed_within(".inprogress renamed", lambda: served.listed()[app]["attempts"][0]["completed"] is True)
    assert len([a for a in served.listed() if a == app]) == 1

    # A rolling directory: moved in, a second events file, then its appstatus finished.
    app = "local-1795972990003"
    rolling, rest = moved_in_before_jobs(app, "rolling", "new rolling directory")
    part = served.stage / f"events_2_{app}"
    part.write_bytes(b"".join(line + b"\n" for line in rest))
    part.rename(rolling / part.name)
    listed_within("rolling directory's new events file", lambda: served.jobs(app) > 0)
    (rolling / f"appstatus_{app}.inprogress").rename(rolling / f"appstatus_{app}")
    listed_within("rolling directory finished", lambda: served.listed()[app]["attempts"][0]["completed"] is True)

    for what, delay in delays.items():
        record_property(what, round(delay, 3))
    print("freshness (s):", {k: round(v, 3) for k, v in delays.items()})
    # Listed through notifications: the only scan was the first one, at the start.
    assert served.log_file.read_text().count("sparkhist.scan: scan: ") == 1, served.log_file.read_text()[-3000:]


@pytest.mark.slow
def test_hostile_changes_keep_the_server_serving(served: Served) -> None:
    t = served.template

    def answers() -> None:
        assert httpx.get(served.url + "/api/v1/applications", timeout=30).status_code == 200

    # A storm of 10,000 new files: one full scan, the server answering meanwhile.
    junk = served.stage / "junk"
    junk.mkdir()
    for i in range(10_000):
        (junk / f"junk-{i:05d}").write_bytes(b"not a log\n")
    for name in os.listdir(junk):
        os.rename(junk / name, served.logs / name)
    answers()
    # A FIFO (never opened), a rolling directory replaced by a file.
    os.mkfifo(served.logs / "local-1795972990010.inprogress")
    app = "local-1795972990011"
    staged = write_log(served.stage, app, rewrite(t, app), codec=None, kind="rolling", in_progress=False)
    rolling = staged.rename(served.logs / staged.name)
    assert _until(lambda: app in served.listed(), 60) is not None, served.log_file.read_text()[-3000:]
    shutil.rmtree(rolling)
    rolling.write_bytes(b"a file now\n")
    answers()
    # The watched root deleted, then made again: a log put there is still listed before any scan.
    shutil.rmtree(served.logs)
    answers()
    served.logs.mkdir()
    app = "local-1795972990012"
    staged = write_log(served.stage, app, rewrite(t, app), codec=t.codec, kind="single", in_progress=False)
    staged.rename(served.logs / staged.name)
    assert _until(lambda: app in served.listed(), 30) is not None, served.log_file.read_text()[-3000:]
    answers()
    assert served.proc.poll() is None


@dataclass
class HeldFirstScan:
    """A runtime whose first scan waits for ``release`` once it has set ``scanning``."""

    runtime: Runtime
    watch: LogDirWatch
    scanning: threading.Event
    release: threading.Event


def _held_first_scan(tmp_path: Path) -> HeldFirstScan:
    from sparkhist.config import load_settings
    from sparkhist.server import build_runtime

    logs = tmp_path / "logs"
    logs.mkdir()
    runtime = build_runtime(load_settings({"log_dir": str(logs), "store_dir": str(tmp_path / "store"),
                                           "index_workers": 1, "scan_interval": 3600}, environ={}))
    (watch,) = runtime.loop.watches
    held = HeldFirstScan(runtime, watch, threading.Event(), threading.Event())
    scan_once = runtime.scanner.scan_once

    def first_scan(*args: Any) -> Any:
        held.scanning.set()
        held.release.wait(30)
        return scan_once(*args)

    runtime.scanner.scan_once = first_scan  # type: ignore[method-assign]
    return held


def test_the_watch_starts_once_the_first_scan_is_over(tmp_path: Path) -> None:
    """Setting up a recursive watch walks every rolling directory: not beside the first listing."""
    held = _held_first_scan(tmp_path)
    runtime, watch = held.runtime, held.watch
    logs = Path(runtime.settings.log_dir)
    try:
        runtime.loop.start()
        assert held.scanning.wait(30)
        time.sleep(0.5)
        assert not watch.watching.is_set()  # the first scan is under way: no watch yet
        held.release.set()
        assert watch.watching.wait(30)  # then notifications are followed
        (logs / "app-1").write_bytes(b"")
        assert _until(lambda: runtime.loop.checks > 0 or str(logs / "app-1") in runtime.loop._pending, 10) is not None
    finally:
        held.release.set()
        runtime.loop.stop()
        runtime.close()


def test_a_loop_stopped_during_its_first_scan_never_starts_its_watch(tmp_path: Path) -> None:
    held = _held_first_scan(tmp_path)
    runtime, watch = held.runtime, held.watch
    try:
        runtime.loop.start()
        assert held.scanning.wait(30)
        stopper = threading.Thread(target=runtime.loop.stop, kwargs={"timeout": 30})
        stopper.start()
        time.sleep(0.2)
        held.release.set()
        stopper.join(30)
        time.sleep(0.5)
        assert not watch.watching.is_set() and not watch._thread.is_alive()
    finally:
        held.release.set()
        runtime.close()
