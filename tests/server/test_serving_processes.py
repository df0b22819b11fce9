"""Several serving processes on one port over one store (``SPARKHIST_SERVE_PROCESSES``), with real processes.

Which process answered a request is read from the kernel, not from the answer: the
server-side socket of the client's connection (``/proc/net/tcp``) is found among the
file descriptors of each serving process (``/proc/<pid>/fd``). So every process is
asked, and its bodies compared with the others', without a header that exists for tests.
"""

from __future__ import annotations

import difflib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sparkhist.config import bundled_samples
from sparkhist.devtools.scale import load_template, rewrite, write_log
from support.serving import free_port, serve_process

pytestmark = pytest.mark.slow

PROCESSES = 3
#: How long after one process lists a new log every other one must list it too (the catalog
#: is followed every 50 ms; generous for a busy machine).
FOLLOW_BOUND = 1.0


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    logs: Path
    stage: Path
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, object]:
        document: dict[str, object] = httpx.get(self.url + "/health/details", timeout=30).json()
        return document

    def serving(self) -> dict[str, object]:
        serving = self.health()["serving"]
        assert isinstance(serving, dict)
        return serving


def _wait(predicate: object, timeout: float, what: str, served: Served | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if callable(predicate) and predicate():
                return
        except (httpx.TransportError, OSError, KeyError):
            pass
        if time.monotonic() > deadline:
            tail = served.log_file.read_text()[-3000:] if served is not None else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    logs, stage = tmp_path / "logs", tmp_path / "stage"
    shutil.copytree(bundled_samples(), logs)
    stage.mkdir()
    port = free_port()
    log_file = tmp_path / "serve.log"
    env = {**os.environ, "SPARKHIST_SERVE_PROCESSES": str(PROCESSES), "SPARKHIST_SCAN_INTERVAL": "60",
           "SPARKHIST_INDEX_WORKERS": "1"}
    with serve_process(port, ["--log-dir", str(logs), "--store", str(tmp_path / "store")], env, log_file) as proc:
        s = Served(proc, port, logs, stage, log_file)
        _wait(lambda: s.serving()["answering"] == PROCESSES, 120, "every serving process to answer", s)
        yield s
    assert proc.returncode == 0, log_file.read_text()[-3000:]


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the accepted socket of the connection from ``client_port`` (IPv4 loopback)."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
                return fields[9]
    return None


def _owner(inode: str, pids: list[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


def ask(served: Served, path: str, pids: list[int]) -> tuple[int, int, bytes]:
    """One request on a new connection: (answering pid, status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
    try:
        conn.connect()
        assert conn.sock is not None
        client_port = conn.sock.getsockname()[1]
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        inode = _server_socket_inode(served.port, client_port)
        pid = _owner(inode, pids) if inode is not None else None
        assert pid is not None, f"no serving process holds the connection from port {client_port}"
        return pid, response.status, body
    finally:
        conn.close()


def ask_each(served: Served, path: str, pids: list[int], *, max_requests: int = 200) -> dict[int, set[bytes]]:
    """Bodies of ``path`` by answering process, until every process answered at least twice."""
    bodies: dict[int, set[bytes]] = {}
    counts: dict[int, int] = {}
    for _ in range(max_requests):
        pid, status, body = ask(served, path, pids)
        assert status == 200, (path, status, body[:300])
        bodies.setdefault(pid, set()).add(body)
        counts[pid] = counts.get(pid, 0) + 1
        if len(counts) == len(pids) and min(counts.values()) >= 2:
            break
    assert set(bodies) == set(pids), f"{path}: answered by {sorted(counts.items())}, expected every one of {pids}"
    return bodies


def new_log(served: Served, app_id: str) -> Path:
    """A copy of a real Spark log with a new application id, moved into the log directory at once."""
    template = load_template(Path(bundled_samples()) / "local-1795972905472.lz4")
    staged = write_log(served.stage, app_id, rewrite(template, app_id), codec=template.codec, kind="single",
                       in_progress=False)
    return staged.rename(served.logs / staged.name)


def test_every_process_gives_the_same_answers(served: Served) -> None:
    serving = served.serving()
    pids = serving["pids"]
    assert isinstance(pids, list) and len(set(pids)) == PROCESSES and pids[0] == served.proc.pid
    apps = httpx.get(served.url + "/api/v1/applications", timeout=30).json()
    assert len(apps) == 4
    done = next(a["id"] for a in apps if a["attempts"][0]["completed"])
    for path in ["/api/v1/applications", f"/api/v1/applications/{done}", f"/api/v1/applications/{done}/jobs",
                 f"/api/v1/applications/{done}/stages", f"/api/v1/applications/{done}/environment",
                 f"/api/v1/applications/{done}/executors", "/api/v1/applications?status=completed"]:
        distinct = set().union(*ask_each(served, path, pids).values())
        assert len(distinct) == 1, f"{path}: {len(distinct)} different bodies across processes"
    # A log added: once one process lists it, every process does within FOLLOW_BOUND, with one body.
    app_id = "local-1795972999001"
    new_log(served, app_id)
    first_seen: float | None = None
    seen_by: set[int] = set()
    deadline = time.monotonic() + 30
    while seen_by != set(pids):
        assert time.monotonic() < deadline, f"listed by {seen_by} only"
        pid, status, body = ask(served, "/api/v1/applications", pids)
        assert status == 200
        if app_id.encode() in body:
            if first_seen is None:
                first_seen = time.monotonic()
            seen_by.add(pid)
        elif first_seen is not None:
            assert time.monotonic() - first_seen < FOLLOW_BOUND, f"process {pid} still does not list {app_id}"
    for path in ["/api/v1/applications", f"/api/v1/applications/{app_id}/jobs",
                 f"/api/v1/applications/{app_id}/stages"]:
        distinct = set().union(*ask_each(served, path, pids).values())
        first, second, *_ = [*sorted(distinct), b""]
        diff = difflib.unified_diff(first.decode().splitlines(), second.decode().splitlines(), lineterm="")
        assert len(distinct) == 1, f"{path}: different bodies across processes after the new log\n" + "\n".join(diff)
    # What only the server process knows is its answer, whichever process is asked.
    for pid, docs in ask_each(served, "/health/details", pids).items():
        assert {json.loads(d)["pid"] for d in docs} == {served.proc.pid}, pid
        assert all(json.loads(d)["serving"]["pids"] == pids for d in docs), pid
    assert set().union(*ask_each(served, "/ready", pids).values()) == {b'{\n  "ready": true\n}'}


def test_a_killed_serving_process_is_replaced_while_the_others_answer(served: Served) -> None:
    pids = served.serving()["pids"]
    assert isinstance(pids, list)
    victim = pids[1]
    results: list[tuple[float, int]] = []  # (time, status or -1 for a transport error)
    stop = threading.Event()

    def clients() -> None:
        with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:  # new connections
            while not stop.is_set():
                try:
                    status = client.get(served.url + "/api/v1/applications").status_code
                except httpx.TransportError:
                    status = -1
                results.append((time.monotonic(), status))

    workers = [threading.Thread(target=clients) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.0)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: served.serving()["answering"] < PROCESSES or served.serving()["restarts"] >= 1, 10,
              "the death to be seen", served)
        health = served.health()
        serving = health["serving"]
        assert isinstance(serving, dict)
        if serving["answering"] < PROCESSES:
            assert health["status"] == "degraded" and any("serving processes" in r for r in health["reasons"])  # type: ignore[union-attr]
        _wait(lambda: served.serving()["answering"] == PROCESSES, 120, "a new serving process", served)
        time.sleep(1.0)
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    serving = served.serving()
    assert serving["restarts"] == 1 and victim not in serving["pids"]  # type: ignore[operator]
    assert served.health()["status"] == "ok"
    before = [s for t, s in results if t < killed_at]
    after = [s for t, s in results if t > killed_at + 0.5]
    assert before and all(s == 200 for s in before)
    # The others kept answering: requests after the kill (and through the restart) succeeded.
    assert len(after) >= 20 and all(s == 200 for s in after), sorted(set(after))
    assert served.proc.poll() is None


def test_the_shared_port_sends_at_once() -> None:
    """An accepted connection does not wait for the client's delayed ACK before each answer (TCP_NODELAY)."""
    import socket

    from sparkhist.server.serving import listen_socket

    server = listen_socket("127.0.0.1", 0)
    try:
        server.listen(1)
        port = server.getsockname()[1]
        twin = listen_socket("127.0.0.1", port)  # another process's socket on the same port (SO_REUSEPORT)
        twin.close()
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = server.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        server.close()


def test_health_is_degraded_while_a_serving_process_is_missing() -> None:
    from sparkhist.server.serving import with_serving

    class Processes:
        def __init__(self, answering: int) -> None:
            self.answering = answering

        def status(self) -> dict[str, object]:
            return {"processes": 3, "answering": self.answering, "restarts": 1, "pids": [1, 2, 3][:self.answering]}

    processes = Processes(2)
    health = with_serving(lambda: {"status": "ok", "reasons": []}, lambda: processes)  # type: ignore[arg-type,return-value]
    doc = health()
    assert doc["status"] == "degraded" and doc["reasons"] == ["1 of 3 serving processes not answering (being started again)"]
    processes.answering = 3
    assert health() == {"status": "ok", "reasons": [], "serving": processes.status()}
    assert with_serving(lambda: {"status": "ok"}, lambda: None)() == {"status": "ok"}


def _agreed(served: Served, pids: list[int], path: str, check: object, timeout: float = 90.0) -> bytes:
    """Asks until every process answers ``path`` with a body ``check`` accepts; then they must all give one body."""
    assert callable(check)
    latest: dict[int, bytes] = {}
    deadline = time.monotonic() + timeout
    while not (set(latest) == set(pids) and all(check(json.loads(b)) for b in latest.values())):
        assert time.monotonic() < deadline, f"{path}: not every process got there: " + str(
            {pid: check(json.loads(b)) for pid, b in latest.items()})
        pid, status, body = ask(served, path, pids)
        assert status == 200, (path, status, body[:300])
        latest[pid] = body
    distinct = set().union(*ask_each(served, path, pids).values())
    assert len(distinct) == 1, f"{path}: {len(distinct)} different bodies across processes"
    return distinct.pop()


def test_grown_completed_and_deleted_logs_are_seen_by_every_process(served: Served) -> None:
    """A log that grows, is renamed when complete (a new record replaces the .inprogress one) and is
    deleted: each change reaches every process, and they answer alike after each."""
    pids = served.serving()["pids"]
    assert isinstance(pids, list)
    app_id = "local-1795972999002"
    lines = rewrite(load_template(Path(bundled_samples()) / "local-1795972905472.lz4"), app_id)
    end = next(i for i, line in enumerate(lines) if b'"Event":"SparkListenerApplicationEnd"' in line)
    half = end // 2
    staged = write_log(served.stage, app_id, lines[:half], codec=None, kind="single", in_progress=True)
    live = staged.rename(served.logs / staged.name)

    def attempt(apps: object) -> dict[str, object] | None:
        assert isinstance(apps, list)
        found = [a["attempts"][0] for a in apps if a["id"] == app_id]
        return found[0] if found else None

    url = "/api/v1/applications"
    first = _agreed(served, pids, url, lambda apps: (a := attempt(apps)) is not None and not a["completed"])
    with live.open("ab") as sink:  # the application goes on: the log grows in place
        sink.write(b"".join(line + b"\n" for line in lines[half:end]))
    grown = _agreed(served, pids, url, lambda apps: (a := attempt(apps)) is not None and not a["completed"]
                    and a != attempt(json.loads(first)))
    assert grown != first
    with live.open("ab") as sink:
        sink.write(b"".join(line + b"\n" for line in lines[end:]))
    live.rename(served.logs / app_id)  # complete: Spark renames the .inprogress file
    _agreed(served, pids, url, lambda apps: (a := attempt(apps)) is not None and bool(a["completed"]))
    _agreed(served, pids, f"{url}/{app_id}/jobs", lambda jobs: isinstance(jobs, list) and len(jobs) > 0)
    (served.logs / app_id).unlink()
    gone = "local-1795972905472"
    (served.logs / f"{gone}.lz4").unlink()
    _agreed(served, pids, url, lambda apps: attempt(apps) is None and gone not in {a["id"] for a in apps})  # type: ignore[union-attr]


def test_serving_processes_start_once_the_first_scan_has_listed_every_log(tmp_path: Path) -> None:
    """A cold start over many logs: the other serving processes start after the first scan's
    listing pass (which takes every core), so each loads the whole listing at once instead of
    following the catalog's every batch beside it. Each one's first listing holds every log."""
    logs, stage = tmp_path / "logs", tmp_path / "stage"
    logs.mkdir()
    stage.mkdir()
    template = load_template(Path(bundled_samples()) / "local-1795972905472.lz4")
    count = 4000
    for i in range(count):
        app_id = f"local-17959{i:08d}"
        write_log(logs, app_id, rewrite(template, app_id), codec=None, kind="single", in_progress=False)
    port = free_port()
    log_file = tmp_path / "serve.log"
    env = {**os.environ, "SPARKHIST_SERVE_PROCESSES": "2", "SPARKHIST_SCAN_INTERVAL": "60",
           "SPARKHIST_INDEX_WORKERS": "1"}
    args = ["--log-dir", str(logs), "--store", str(tmp_path / "store"), "--log-level", "info"]
    with serve_process(port, args, env, log_file) as proc:
        s = Served(proc, port, logs, stage, log_file)
        _wait(lambda: s.serving()["answering"] == 2, 120, "the serving process to answer", s)
        started = re.findall(r"serving process \d+: (\d+) applications listed", log_file.read_text())
        assert started == [str(count)], log_file.read_text()[-3000:]
    assert proc.returncode == 0, log_file.read_text()[-3000:]
