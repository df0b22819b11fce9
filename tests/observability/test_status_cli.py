"""``sparkhist status``, run as a user runs it, against a store on disk and a live server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from sparkhist.observability.status import writer_pid
from support.conformance import SPARK401
from support.server import copy_logs, runtime_for

SPARKHIST = [sys.executable, "-m", "sparkhist.cli"]


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SPARKHIST, "status", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """The app on a real socket, in a thread of this process."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_healthy_store_on_disk(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    store = tmp_path / "store"
    with runtime_for(logs, store):
        assert writer_pid(str(store)) == os.getpid(), "the lock holder, read from /proc/locks"
        result = status("--store", str(store))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK" in result.stdout and f"pid {os.getpid()}" in result.stdout
        assert "7 completed, 6 running (13 logs)" in result.stdout
    assert writer_pid(str(store)) is None, "released: nobody writes the store"
    doc = json.loads(status("--store", str(store), "--json").stdout)
    assert doc["status"] == "ok" and doc["writerPid"] is None and doc["store"]["logs"] == 13


def test_no_store_is_unreachable(tmp_path: Path) -> None:
    result = status("--store", str(tmp_path / "nothing"))
    assert result.returncode == 2
    assert "UNREACHABLE" in result.stdout and "no catalog" in result.stdout


def test_server_unreachable(tmp_path: Path) -> None:
    result = status("--url", f"http://127.0.0.1:{_free_port()}", "--store", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "UNREACHABLE" in result.stdout and "cannot reach" in result.stdout


def test_live_server_healthy_then_offline(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    with runtime_for(logs, tmp_path / "store") as (runtime, _), serving(runtime.app) as url:
        result = status("--url", url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK" in result.stdout and "writer" in result.stdout and "7 completed, 6 running" in result.stdout

        logs.rename(tmp_path / "away")
        runtime.scanner.scan_once()
        result = status("--url", url)
        assert result.returncode == 1, result.stdout
        assert "DEGRADED" in result.stdout and "OFFLINE" in result.stdout and "no such directory" in result.stdout
        doc = json.loads(status("--url", url, "--json").stdout)
        assert doc["offline"] is True and doc["sources"][0]["state"] == "offline"
