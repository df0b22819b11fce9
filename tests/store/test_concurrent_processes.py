"""Failure scenario 7: several processes on one store.

Two ``sparkhist serve`` processes share a store: the first holds the writer lock, the
second serves read-only as a standby. ``scan`` and ``verify`` run beside them without
damaging anything. The writer is then killed with SIGKILL while clients poll both
servers: the standby must answer every request and take over scanning within seconds.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from sparkhist.devtools.scale import load_template, rewrite, scale, write_log
from support.conformance import SPARK401


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(logs: Path, store: Path, port: int, log_file: Path) -> subprocess.Popen[bytes]:
    with open(log_file, "wb") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "sparkhist.cli", "serve", "--log-dir", str(logs), "--store", str(store),
             "--port", str(port), "--scan-interval", "0.5"],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )


def _wait(predicate, what: str, timeout: float = 60.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _details(port: int) -> dict:
    return httpx.get(f"http://127.0.0.1:{port}/health/details", timeout=5).json()


def _apps(port: int) -> list[dict]:
    return httpx.get(f"http://127.0.0.1:{port}/api/v1/applications", timeout=5).json()


@pytest.mark.slow
def test_standby_serves_and_takes_over_after_kill_minus_nine(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    templates = [load_template(SPARK401 / "eventlogs" / n) for n in ("local-1795972896863", "eventlog_v2_local-1795972918271")]
    scale(templates, logs, 30)
    store = tmp_path / "store"
    port_a, port_b = _free_port(), _free_port()
    writer = _serve(logs, store, port_a, tmp_path / "a.log")
    standby = None
    try:
        _wait(lambda: len(_apps(port_a)) == 30 and _details(port_a)["scan"]["lagSeconds"] == 0, "the writer to index 30 apps",
              timeout=300)
        standby = _serve(logs, store, port_b, tmp_path / "b.log")
        _wait(lambda: len(_apps(port_b)) == 30, "the standby to serve the catalog", timeout=120)
        assert _details(port_a)["role"] == "writer" and _details(port_b)["role"] == "standby"

        # A CLI scan and verify beside the two servers: clear words, nothing damaged.
        scan = subprocess.run([sys.executable, "-m", "sparkhist.cli", "scan", "--log-dir", str(logs), "--store", str(store)],
                              capture_output=True, text=True, timeout=120)
        assert scan.returncode == 0 and f"being written by pid {writer.pid}" in scan.stderr
        verify = subprocess.run([sys.executable, "-m", "sparkhist.cli", "verify", "--store", str(store)],
                                capture_output=True, text=True, timeout=120)
        assert verify.returncode == 0 and "store ok" in verify.stdout, verify.stdout + verify.stderr

        # Clients poll both servers while the writer dies.
        failures: list[str] = []
        counts = {"a": 0, "b": 0}
        stop = threading.Event()
        app_id = _apps(port_b)[0]["id"]

        def poll(name: str, port: int, must_succeed: bool) -> None:
            with httpx.Client(timeout=5) as client:
                while not stop.is_set():
                    for path in ("/api/v1/applications", f"/api/v1/applications/{app_id}/jobs"):
                        try:
                            response = client.get(f"http://127.0.0.1:{port}{path}")
                            ok = response.status_code == 200
                        except httpx.HTTPError as exc:
                            ok, response = False, exc
                        if ok:
                            counts[name] += 1
                        elif must_succeed:
                            failures.append(f"{name} {path}: {response}")
                    time.sleep(0.01)

        pollers = [threading.Thread(target=poll, args=("a", port_a, False)),
                   threading.Thread(target=poll, args=("b", port_b, True))]
        for t in pollers:
            t.start()
        time.sleep(1.0)
        killed_at = time.monotonic()
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        takeover = _wait(lambda: _details(port_b)["role"] == "writer", "the standby to take over", timeout=60)
        # The new writer scans: a log added after the kill shows up.
        write_log(logs, "local-9000000000099", rewrite(templates[1], "local-9000000000099"),
                  codec="zstd", kind="rolling", in_progress=False)
        caught_up = _wait(lambda: len(_apps(port_b)) == 31, "the new writer to index a new log", timeout=120)
        time.sleep(0.5)
        stop.set()
        for t in pollers:
            t.join(10)
        assert failures == [], failures[:5]
        assert counts["b"] > 50
        assert _details(port_b)["takeovers"] == 1
        print(f"\ntakeover {takeover:.2f}s after kill -9; new log listed {takeover + caught_up:.2f}s after; "
              f"{counts['b']} standby requests, 0 failed; since kill {time.monotonic() - killed_at:.1f}s")
        assert takeover < 30.0  # the design's objective for a restart; measured well under 1 s on an idle machine
    finally:
        for proc in (writer, standby):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
