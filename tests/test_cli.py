"""The command line, run as a user runs it: real processes, real signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

import sparkhist
from support.conformance import SPARK401
from support.server import copy_logs

SPARKHIST = [sys.executable, "-m", "sparkhist.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SPARKHIST, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_scan_then_apps(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    (logs / "garbage.zstd").write_bytes(os.urandom(1000))
    result = run("scan", "--log-dir", str(logs), "--store", str(tmp_path / "store"))
    assert result.returncode == 0, result.stderr
    assert "14 logs listed: 14 new" in result.stdout
    assert "13 applications" in result.stdout
    assert "skipped" in result.stdout and "garbage.zstd" in result.stdout

    table = run("apps", "--log-dir", str(logs), "--store", str(tmp_path / "store"))
    assert table.returncode == 0, table.stderr
    assert "local-1795972896863" in table.stdout and "gen-none-single-False" in table.stdout
    assert "running" in table.stdout and "completed" in table.stdout


def test_bad_configuration_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run("scan", "--store", str(tmp_path / "s"), env={"SPARKHIST_SCAN_INTERVAL": "often"})
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors == ["sparkhist: configuration error: bad value for SPARKHIST_SCAN_INTERVAL: 'often' (not a duration: 'often')"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_on_embedded_defaults_and_stop_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    proc = subprocess.Popen([*SPARKHIST, "serve", "--port", str(port), "--scan-interval", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        apps = []
        while time.monotonic() < deadline and len(apps) < 4:
            try:
                apps = httpx.get(f"http://127.0.0.1:{port}/api/v1/applications", timeout=2).json()
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert {a["id"] for a in apps} >= {"local-1795972918271", "local-1795972905472"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/version").json() == {"spark": sparkhist.SPARK_VERSION}
        assert (tmp_path / "xdg" / "sparkhist" / "store" / "catalog.sqlite").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in err
