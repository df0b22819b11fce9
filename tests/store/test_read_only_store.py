"""The reading commands (``verify``, ``apps``, ``status``) on a store in a read-only directory.

A store copied to read-only media, or mounted read-only for inspection, must be
readable by the commands that only read it; the writing ones (``serve``, ``scan``)
refuse it with one line and exit status 2 before doing anything.

The directory is really read-only: as root (CI) a tmpfs remounted read-only, since
root ignores permission bits; otherwise a copy without write permission. Each fixture
first proves that a write into it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.conformance import SPARK401
from support.server import copy_logs

SPARKHIST = [sys.executable, "-m", "sparkhist.cli"]
APPS = 13  # applications in the conformance logs, one log each


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SPARKHIST, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


class ReadOnlyCopies:
    """Copies of store directories in a read-only place (made read-only once filled)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mounts: list[Path] = []

    def copy(self, store: Path, name: str) -> Path:
        dest = self.root / name
        dest.mkdir(parents=True)
        if os.geteuid() == 0:
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(dest)],
                                     capture_output=True, text=True)
            if mounted.returncode != 0:
                pytest.skip(f"root without mount (tmpfs): {mounted.stderr.strip()}")
            self.mounts.append(dest)
            shutil.copytree(store, dest, dirs_exist_ok=True)
            subprocess.run(["mount", "-o", "remount,ro", str(dest)], check=True)
        else:
            shutil.copytree(store, dest, dirs_exist_ok=True)
            for path in [*dest.rglob("*"), dest]:
                path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        with pytest.raises(OSError):
            (dest / "probe").write_bytes(b"x")
        return dest

    def close(self) -> None:
        for mount in self.mounts:
            subprocess.run(["umount", str(mount)], check=False)
        if os.geteuid() != 0:
            for path in self.root.rglob("*"):
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[ReadOnlyCopies]:
    copies = ReadOnlyCopies(tmp_path / "ro")
    try:
        yield copies
    finally:
        copies.close()


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")


def _listed(apps_output: str) -> set[str]:
    return {line.split()[1] for line in apps_output.splitlines() if line.startswith("│ local-")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_reading_commands_on_a_read_only_copy_of_a_closed_store(tmp_path: Path, logs: Path,
                                                                read_only: ReadOnlyCopies) -> None:
    store = tmp_path / "store"
    assert run("scan", "--log-dir", str(logs), "--store", str(store)).returncode == 0
    assert not (store / "catalog.sqlite-wal").exists(), "a clean close leaves the catalog alone"
    copy = read_only.copy(store, "closed")

    verify = run("verify", "--store", str(copy))
    assert verify.returncode == 0, verify.stderr
    assert "catalog: 13 records, 0 damaged" in verify.stdout and verify.stdout.strip().endswith("store ok")

    apps = run("apps", "--store", str(copy))
    assert apps.returncode == 0, apps.stderr
    assert len(_listed(apps.stdout)) == APPS

    status = run("status", "--store", str(copy), "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    document = json.loads(status.stdout)
    assert document["status"] == "ok" and document["store"]["logs"] == 13
    assert sorted(os.listdir(copy)) == sorted(os.listdir(store)), "nothing written into the copy"


def _store_of_a_killed_server(tmp_path: Path, logs: Path) -> Path:
    """A store whose writer died: its catalog's recent transactions only in the -wal file."""
    store = tmp_path / "killed"
    port = _free_port()
    proc = subprocess.Popen([*SPARKHIST, "serve", "--log-dir", str(logs), "--store", str(store), "--port", str(port),
                             "--scan-interval", "3600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/details", timeout=2).json()["scan"]["lastSuccess"]:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("the first scan did not finish")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert (store / "catalog.sqlite-wal").stat().st_size > 0 and (store / "catalog.sqlite-shm").exists()
    return store


def test_reading_commands_on_a_read_only_copy_of_a_killed_writers_store(tmp_path: Path, logs: Path,
                                                                        read_only: ReadOnlyCopies) -> None:
    store = _store_of_a_killed_server(tmp_path, logs)
    copy = read_only.copy(store, "killed")
    apps = run("apps", "--store", str(copy))
    assert apps.returncode == 0, apps.stderr
    assert len(_listed(apps.stdout)) == APPS, "the transactions in the -wal file are read, not an older catalog"
    verify = run("verify", "--store", str(copy))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "catalog: 13 records, 0 damaged" in verify.stdout


def test_write_ahead_log_without_its_shm_file_is_one_clear_error(tmp_path: Path, logs: Path,
                                                                read_only: ReadOnlyCopies) -> None:
    store = _store_of_a_killed_server(tmp_path, logs)
    (store / "catalog.sqlite-shm").unlink()
    copy = read_only.copy(store, "no-shm")
    apps = run("apps", "--store", str(copy))
    lines = [line for line in apps.stderr.splitlines() if line.strip()]
    assert apps.returncode == 1 and len(lines) == 1, apps.stderr
    assert "write-ahead log" in lines[0] and "read-only" in lines[0] and "Traceback" not in apps.stderr


def test_writing_commands_refuse_a_read_only_store(tmp_path: Path, logs: Path, read_only: ReadOnlyCopies) -> None:
    store = tmp_path / "store"
    assert run("scan", "--log-dir", str(logs), "--store", str(store)).returncode == 0
    copy = read_only.copy(store, "refused")
    for args in (["serve", "--port", str(_free_port())], ["scan"]):
        result = run(*args, "--log-dir", str(logs), "--store", str(copy))
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"sparkhist: configuration error: store directory {copy} is not writable"), lines[0]
