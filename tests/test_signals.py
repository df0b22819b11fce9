"""SIGTERM and SIGINT stop sparkhist within 3 s at any point of a first scan.

A real ``sparkhist serve`` (two indexing worker processes) over 600 logs copied from
real Spark logs gets the signal in the middle of its first scan: in the listing pass,
or in the full indexing pass while its workers build. It must exit 0 within
``STOP_LIMIT`` seconds with no worker left behind, the store must verify, and the next
start must read only what the stopped scan had not finished: its listing pass reads
exactly the logs that have no catalog record, its full pass no more than the logs
whose state was not built. Before, a stop waited for the whole scan (10 s here: the
scan loop's join timeout, after which the catalog was closed under the still running
scan, which then quarantined it as damaged).

``sparkhist scan`` stops the same way on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sparkhist.devtools.scale import load_template, scale
from sparkhist.store.catalog import Catalog
from sparkhist.store.records import LogRecord
from support.conformance import SPARK401

SPARKHIST = [sys.executable, "-m", "sparkhist.cli"]
LOGS = 600
STOP_LIMIT = 3.0
ENV = {**os.environ, "SPARKHIST_INDEX_WORKERS": "2"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 logs (every codec and layout of the real Spark logs, finished and in progress); read only."""
    logs = tmp_path_factory.mktemp("signals") / "logs"
    templates = [load_template(p) for p in sorted((SPARK401 / "eventlogs").iterdir())]
    scale(templates, logs, LOGS)
    return logs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_bytes(path: Path) -> int:
    """Stored bytes of a log: the file, or the files of a rolling directory."""
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out.update(int(c) for c in (task / "children").read_text().split())
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "(gone)"


#: How an indexing worker's and multiprocessing's resource tracker's command lines start.
_WORKER = "from multiprocessing.spawn import spawn_main"
_TRACKER = "from multiprocessing.resource_tracker import main"


def _gone(pids: list[int], what: str, timeout: float = 30.0) -> None:
    """Wait for processes that exit on their own once their parent is gone (reparented, then reaped by init)."""
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"{what} outlived the server by {timeout:.0f}s: {left}"


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class Server:
    def __init__(self, logs: Path, store: Path, log_file: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        with open(log_file, "w") as err:
            self.proc = subprocess.Popen(
                [*SPARKHIST, "serve", "--log-dir", str(logs), "--store", str(store), "--port", str(self.port),
                 "--scan-interval", "3600"], stdout=subprocess.DEVNULL, stderr=err, env=ENV)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"{self.base}/metrics", timeout=5).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def bytes_read(self, which: str) -> float:
        return self.metrics()[("sparkhist_log_bytes_read_total", (("pass", which),))]

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.log_file.read_text()}"
            try:
                if check():
                    return
            except (httpx.HTTPError, KeyError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def stop(self, sig: signal.Signals) -> float:
        """Send ``sig``; the seconds until the process exited."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return time.monotonic() - t0


@contextmanager
def serving(logs: Path, store: Path, log_file: Path) -> Iterator[Server]:
    server = Server(logs, store, log_file)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(30)


def _records(store: Path) -> dict[str, LogRecord]:
    catalog = Catalog(str(store), None, read_only=True)
    try:
        result = catalog.load(repair=False)
        assert result.corrupt == 0
        return result.records
    finally:
        catalog.close()


def _verify(store: Path) -> None:
    result = subprocess.run([*SPARKHIST, "verify", "--store", str(store)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("store ok")


@pytest.mark.parametrize(("sig", "phase"), [(signal.SIGTERM, "full"), (signal.SIGINT, "listing")])
def test_serve_stops_within_3s_mid_scan_and_resumes(tmp_path: Path, corpus: Path, sig: signal.Signals,
                                                    phase: str) -> None:
    store = tmp_path / "store"
    with serving(corpus, store, tmp_path / "first.log") as server:
        children: set[int] = set()  # seen while the server ran
        if phase == "listing":
            server.wait_for("the listing pass", lambda: server.bytes_read("listing") > 0)
        else:
            def building() -> bool:
                children.update(_children(server.proc.pid))
                snapshots = store / "snapshots"
                return (any(_WORKER in _cmdline(pid) for pid in children) and snapshots.is_dir()
                        and len(os.listdir(snapshots)) >= 10)

            server.wait_for("the workers' builds", building)
        seconds = server.stop(sig)
        log = server.log_file.read_text()
        print(f"\n{sig.name} in the {phase} pass: stopped in {seconds:.2f}s")
        assert server.proc.returncode == 0, log
        assert seconds <= STOP_LIMIT, f"stopping took {seconds:.2f}s (limit {STOP_LIMIT}s)\n{log}"
        # Told apart by their command lines now (a child read between its fork and its exec shows the server's).
        left = {pid: _cmdline(pid) for pid in children if _running(pid)}
        assert not [pid for pid, cmdline in left.items() if _WORKER in cmdline], "an indexing worker outlived the server"
        # What is left exits by itself: multiprocessing's resource tracker reads the end of its pipe, which
        # the server's exit closes (so it goes after the server, not before), or a child is already exiting
        # (an empty command line).
        assert all(_TRACKER in cmdline or not cmdline for cmdline in left.values()), left
        _gone(list(left), f"children of the server ({left})")
        assert "Traceback" not in log and " ERROR " not in log, log
        assert log.rstrip().endswith("stopped"), log

    _verify(store)
    records = _records(store)
    logs = {str(p): p for p in corpus.iterdir()}
    unread = [p for p in logs if p not in records]
    unbuilt = [p for p in logs if p not in records or records[p].needs_full_index]
    assert unbuilt, "the scan was not stopped before its end"
    if phase == "full":
        assert len(unbuilt) < LOGS and not unread, "stopped in the full pass, after the listing pass"
    else:
        assert unread, "stopped in the listing pass"

    # The restart reads what was not finished, and nothing else.
    with serving(corpus, store, tmp_path / "second.log") as server:
        server.wait_for("the first scan", lambda: server.metrics()[("sparkhist_scans_total", (("outcome", "ok"),))] >= 1)
        listing, full = server.bytes_read("listing"), server.bytes_read("full")
        listed = httpx.get(f"{server.base}/api/v1/applications", timeout=30).json()
        assert server.stop(signal.SIGTERM) <= STOP_LIMIT and server.proc.returncode == 0
    assert len(listed) == LOGS
    assert listing == sum(_log_bytes(logs[p]) for p in unread), "the listing pass read a log it had finished"
    assert 0 < full <= sum(_log_bytes(logs[p]) for p in unbuilt), "the full pass read a log it had finished"
    _verify(store)


def test_scan_command_stops_on_ctrl_c_and_the_next_scan_goes_on(tmp_path: Path, corpus: Path) -> None:
    store = tmp_path / "store"
    proc = subprocess.Popen([*SPARKHIST, "scan", "--log-dir", str(corpus), "--store", str(store)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    snapshots = store / "snapshots"
    deadline = time.monotonic() + 120
    while not (snapshots.is_dir() and len(os.listdir(snapshots)) >= 10):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    seconds = time.monotonic() - t0
    print(f"\nsparkhist scan: SIGINT in the full pass, stopped in {seconds:.2f}s")
    assert seconds <= STOP_LIMIT
    assert proc.returncode == 128 + signal.SIGINT, out + err
    assert [line for line in err.splitlines() if line.strip() and " INFO " not in line] == [
        "sparkhist: scan stopped by SIGINT; what was read is stored, the next scan goes on from there"], err
    _verify(store)

    records = _records(store)
    unbuilt = [r for r in records.values() if r.needs_full_index]
    assert len(records) == LOGS and 0 < len(unbuilt) < LOGS
    again = subprocess.run([*SPARKHIST, "scan", "--log-dir", str(corpus), "--store", str(store)],
                           capture_output=True, text=True, timeout=300, env=ENV)
    assert again.returncode == 0, again.stderr
    assert f"{LOGS} logs listed: 0 new, 0 grown, {LOGS} unchanged" in again.stdout, again.stdout
    assert not [r for r in _records(store).values() if r.needs_full_index]
    _verify(store)


def test_serve_stopped_before_it_listens(tmp_path: Path, corpus: Path) -> None:
    """A SIGTERM during the start (store opened, nothing bound yet) is the same clean stop."""
    store = tmp_path / "store"
    port = _free_port()
    proc = subprocess.Popen([*SPARKHIST, "serve", "--log-dir", str(corpus), "--store", str(store), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    assert proc.stderr is not None
    for line in proc.stderr:
        if ": serving " in line:  # the settings are checked, the start goes on
            break
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 <= STOP_LIMIT
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    _verify(store)


def _serving_processes_answering(port: int, count: int, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/details", timeout=5).json()["serving"]["answering"] == count:
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("the serving processes never all answered")


@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)],
                         ids=["sigterm", "ctrl-c-twice"])
def test_serving_processes_stop_cleanly(tmp_path: Path, signals: tuple[signal.Signals, ...]) -> None:
    """A server with serving processes, stopped by SIGTERM or by Ctrl-C pressed twice (SIGINT to the
    whole process group, as a terminal sends it): every process exits 0 within the limit, each serving
    process after its clean-up (it logs that it stopped), none is started again, and nothing prints a
    traceback (uvicorn raises the signal again once it returns; asyncio's runner took Ctrl-C as a
    KeyboardInterrupt)."""
    port = _free_port()
    proc = subprocess.Popen([*SPARKHIST, "serve", "--log-dir", str(SPARK401 / "eventlogs"), "--store",
                             str(tmp_path / "store"), "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**ENV, "SPARKHIST_SERVE_PROCESSES": "3"})
    try:
        _serving_processes_answering(port, 3, proc)
        serving = _children(proc.pid)
        t0 = time.monotonic()
        for sig in signals:
            if sig == signal.SIGINT:
                os.killpg(proc.pid, sig)  # a terminal's Ctrl-C: every process of the group
            else:
                proc.send_signal(sig)
            time.sleep(0.1)
        _, err = proc.communicate(timeout=60)
        assert time.monotonic() - t0 <= STOP_LIMIT
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert "exited with status" not in err, err  # no serving process died before it was told to stop
    stopped = {int(line.split("serving process ")[1].split()[0]) for line in err.splitlines()
               if "serving process" in line and line.endswith(" stopped")}
    started = {int(line.split("serving process ")[1].split()[0]) for line in err.splitlines()
               if "serving process" in line and line.endswith(" started")}
    assert len(started) == 2 and stopped == started, err
    assert serving >= started  # the processes seen running were those
    assert not any(Path(f"/proc/{pid}").exists() and "replica" in _cmdline(pid) for pid in started)
