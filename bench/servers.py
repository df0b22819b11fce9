"""The two servers under test, started, watched and stopped the same way.

* the stock SHS 4.3.0 through ``tests/support/real_shs.py`` (the JVM command line
  Spark's launcher builds, ``-Xmx1g`` like ``SPARK_DAEMON_MEMORY``'s default, the
  full JIT: no C1-only fast start, since we time it);
* ``sparkhist serve`` as a user runs it, in its own process.

Every clock starts at ``t0``, taken just before the process is spawned, so a figure
"from process start" includes JVM or interpreter start-up. Only processes started
here are ever signalled, by their own id.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

import corpus  # noqa: F401  (puts tests/ and src/ on sys.path)
from support.real_shs import run_real_shs

CLOCK_TICK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 120.0


class ServerDied(RuntimeError):
    pass


@dataclass
class Server:
    kind: str  # "SHS" | "sparkhist"
    base_url: str
    pid: int
    t0: float  # time.monotonic() just before the process was spawned
    log_file: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}/api/v1/{path.lstrip('/')}"

    def since_start(self) -> float:
        return time.monotonic() - self.t0

    def peak_rss_mb(self) -> float:
        """VmHWM of the process plus that of each living descendant (the whole JVM with
        every thread; sparkhist with its indexing workers). A sum of peaks: never less
        than the peak of the sum."""
        return sum(_status_kb(pid, "VmHWM") for pid in _tree(self.pid)) / 1024

    def rss_mb(self) -> float:
        """Current ``VmRSS`` of the process and its living descendants."""
        return sum(_status_kb(pid, "VmRSS") for pid in _tree(self.pid)) / 1024

    def process_count(self) -> int:
        return len(_tree(self.pid))

    def worker_count(self) -> int:
        """Living indexing workers (``multiprocessing`` spawned children; not its resource tracker)."""
        count = 0
        for pid in _tree(self.pid)[1:]:
            with contextlib.suppress(OSError):
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    count += 1
        return count

    def rss_breakdown(self) -> str:
        """Each process's VmHWM, the server's first: ``"95 + 60 + 58 MB"``."""
        return " + ".join(f"{_status_kb(pid, 'VmHWM') / 1024:.0f}" for pid in _tree(self.pid)) + " MB"

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its descendants, living or reaped
        (``utime + stime + cutime + cstime``: worker processes count)."""
        total = 0
        for pid in _tree(self.pid):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(v) for v in fields[11:15])
        return total / CLOCK_TICK

    def alive(self) -> bool:
        return Path(f"/proc/{self.pid}").exists()

    def log_tail(self, n_bytes: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_file.read_bytes()[-n_bytes:].decode(errors="replace")
        return "(no log)"


# --------------------------------------------------------------------------- start / stop


@contextlib.contextmanager
def shs(log_dir: Path, store: Path | None = None) -> Iterator[Server]:
    """The stock SHS; ``store=None`` is its default (listing and UIs in memory)."""
    kwargs: dict[str, Any] = {"store_path": store}
    if "fast_start" in inspect.signature(run_real_shs).parameters:
        kwargs["fast_start"] = False  # the real SHS runs with the full JIT
    t0 = time.monotonic()
    with run_real_shs(log_dir, **kwargs) as real:
        yield Server("SHS", real.base_url, real.process.pid, t0, real.log_file)


@contextlib.contextmanager
def sparkhist(log_dir: Path, store: Path, workdir: Path, env: dict[str, str] | None = None, *,
              scan_interval: str = "1") -> Iterator[Server]:
    """``sparkhist serve`` on a free loopback port, scanning every second like the SHS above.

    ``env``: the environment (``run.py`` points ``PYTHONPATH`` at a frozen copy of the
    source, so the whole run measures one version of the code; ``SPARKHIST_SERVE_PROCESSES``
    says how many processes answer). ``scan_interval``: a long one leaves new logs to the
    file-system notifications (the freshness figure)."""
    port = _free_port()
    log_file = workdir / f"sparkhist-serve-{port}.log"
    cmd = [*sparkhist_command(), "serve", "--log-dir", str(log_dir), "--store", str(store),
           "--host", "127.0.0.1", "--port", str(port), "--scan-interval", scan_interval, "--log-level", "warning"]
    t0 = time.monotonic()
    with log_file.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    server = Server("sparkhist", f"http://127.0.0.1:{port}", proc.pid, t0, log_file)
    try:
        _wait_for_version(server, proc)
        yield server
    finally:
        _stop(proc)


def sparkhist_command() -> list[str]:
    """The ``sparkhist`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("sparkhist")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sparkhist.cli"]


def _wait_for_version(server: Server, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServerDied(f"sparkhist exited with {proc.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(server.url("version")).status_code == 200:
                    return
            time.sleep(0.01)
    raise TimeoutError(f"sparkhist did not answer within {START_TIMEOUT_S}s:\n{server.log_tail()}")


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM, SIGKILL after ``grace_s``; then anything left in the session we created
    for it (indexing workers outlive a killed parent) is killed too."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # our own process group (start_new_session)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- waiting


def wait_listed(server: Server, n_apps: int, client: httpx.Client, timeout: float) -> float:
    """Seconds from process start to the first ``/applications`` answer listing ``n_apps``.

    Polls with a pause of 5% of the time elapsed (20 ms to 2 s): fine resolution for a
    fast start, while a server still building a 10k-app listing spends little of its
    time rendering it for us. The same poller is used for both servers.
    """
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            response = client.get(server.url("applications"))
            answered = server.since_start()
            if response.status_code == 200:
                seen = len(orjson.loads(response.content))
                if seen >= n_apps:
                    return answered
        if not server.alive():
            raise ServerDied(f"{server.kind} died while listing:\n{server.log_tail()}")
        time.sleep(min(2.0, max(0.02, 0.05 * server.since_start())))
    raise TimeoutError(f"{server.kind} listed {seen} of {n_apps} apps after {timeout:.0f}s:\n{server.log_tail()}")


@dataclass
class ScanDone:
    since_start: float  # process start to the moment the first scan was seen finished
    duration: float  # the scan's own duration, as sparkhist reports it in /health
    cpu_seconds: float  # CPU of the whole process, start-up included, at that moment
    health: dict[str, Any]


def wait_first_scan(server: Server, client: httpx.Client, timeout: float) -> ScanDone:
    """Wait until sparkhist's first scan (listing and full indexing) has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError, ValueError):
            status = _scan_status(server, client)
            if status is not None:
                cpu = server.cpu_seconds()
                scans, duration, health = status
                if scans > 1:  # the first scan's own figures are gone: bound it by the time since start,
                    duration = server.since_start()  # and say nothing of what it indexed
                    health = _without_last_scan(health)
                return ScanDone(server.since_start(), duration, cpu, health)
        if not server.alive():
            raise ServerDied(f"sparkhist died while scanning:\n{server.log_tail()}")
        time.sleep(0.2)
    raise TimeoutError(f"sparkhist's first scan did not finish within {timeout:.0f}s")


def _without_last_scan(health: dict[str, Any]) -> dict[str, Any]:
    """``health`` without the last scan's figures (those of a later scan than the one waited for)."""
    scan = {k: v for k, v in (health.get("scan") or {}).items() if k != "last"}
    return {**{k: v for k, v in health.items() if k != "lastScan"}, "scan": scan}


def _scan_status(server: Server, client: httpx.Client) -> tuple[int, float, dict[str, Any]] | None:
    """(scans finished, duration of the last one, the health document), None before the first.

    ``/health/details`` (``scan.scans.ok`` and ``scan.lastDurationSeconds``) or the older
    ``/health`` (``lastScan.durationSeconds``).
    """
    response = client.get(f"{server.base_url}/health/details")
    if response.status_code == 200:
        health = response.json()
        scan = health.get("scan") or {}
        scans = sum((scan.get("scans") or {}).values())
        if scans and scan.get("lastDurationSeconds") is not None:
            return scans, float(scan["lastDurationSeconds"]), health
        return None
    health = client.get(f"{server.base_url}/health").json()
    last = health.get("lastScan")
    if last is None:
        return None
    return (1 if last.get("new") else 2), float(last["durationSeconds"]), health


def scan_indexed(health: dict[str, Any]) -> int | None:
    """Logs the first scan indexed in full, when the health document says."""
    last = (health.get("scan") or {}).get("last") or health.get("lastScan") or {}
    value = last.get("indexed")
    return None if value is None else int(value)


def scan_failures(health: dict[str, Any]) -> int:
    """Logs the first scan skipped, from either health document."""
    last = (health.get("scan") or {}).get("last") or health.get("lastScan") or {}
    return int(last.get("failed") or 0)


def timed_get(client: httpx.Client, url: str) -> tuple[float, Any]:
    """Seconds for one GET that must answer 200, and its JSON."""
    t = time.perf_counter()
    response = client.get(url, follow_redirects=True)
    elapsed = time.perf_counter() - t
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:500]}")
    return elapsed, orjson.loads(response.content)


# --------------------------------------------------------------------------- /proc


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return pids


def _status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0
