"""A bad setting or an unusable path: one line on stderr, exit status 2, nothing bound or written.

Every case runs the real ``sparkhist`` command in a subprocess. Before these checks
each one was a Python traceback with exit status 1, or worse a server that started
anyway: ``--port 0`` on a random port, ``--scan-interval 0`` busy-looping, a log
directory that does not exist serving an empty list. Those never exit, so every run
here has a deadline and a timeout is a failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support.conformance import SPARK401
from support.server import copy_logs

SPARKHIST = [sys.executable, "-m", "sparkhist.cli"]
DEADLINE = 30.0


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([*SPARKHIST, *args], capture_output=True, text=True, timeout=DEADLINE,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"sparkhist {' '.join(args)} still running after {DEADLINE:.0f}s: it started "
                             "instead of refusing the setting") from exc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit status 2 and exactly one line on stderr, naming the problem."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, f"exit {result.returncode}, stderr:\n{result.stderr}"
    assert len(lines) == 1, f"not one line:\n{result.stderr}"
    assert lines[0].startswith("sparkhist: configuration error: "), lines[0]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")


@pytest.mark.parametrize(("args", "env", "words"), [
    (["--port", "70000"], {}, ["--port", "70000", "1-65535"]),
    (["--port", "0"], {}, ["--port", "'0'", "1-65535"]),  # was: a random port
    (["--port", "http"], {}, ["--port", "not a port number"]),
    ([], {"SPARKHIST_PORT": "-1"}, ["SPARKHIST_PORT", "1-65535"]),
    (["--scan-interval", "0"], {}, ["--scan-interval", "more than 0"]),  # was: a busy loop
    ([], {"SPARKHIST_SCAN_INTERVAL": "0ms"}, ["SPARKHIST_SCAN_INTERVAL", "more than 0"]),
    ([], {"SPARKHIST_INDEX_WORKERS": "0"}, ["SPARKHIST_INDEX_WORKERS", "more than 0"]),
    ([], {"SPARKHIST_CLEANER_INTERVAL": "0s"}, ["SPARKHIST_CLEANER_INTERVAL", "more than 0"]),
    ([], {"SPARKHIST_CLEANER_MAX_NUM": "-5"}, ["SPARKHIST_CLEANER_MAX_NUM", "negative"]),
])
def test_bad_value_refused_before_anything_is_written(tmp_path: Path, logs: Path, args: list[str],
                                                      env: dict[str, str], words: list[str]) -> None:
    store = tmp_path / "store"
    result = run("serve", "--log-dir", str(logs), "--store", str(store), *args, env=env)
    assert_refused(result, *words)
    assert not store.exists(), "the store was created before the setting was checked"


@pytest.mark.parametrize(("args", "words"), [
    (["serve", "--log-level", "verbose"], ["--log-level", "verbose"]),
    (["scan", "--port", "18080"], ["--port"]),
    (["serve", "--no-such-flag"], ["--no-such-flag"]),
])
def test_usage_error_is_one_line_too(tmp_path: Path, args: list[str], words: list[str]) -> None:
    result = run(*args, "--store", str(tmp_path / "store"))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("sparkhist: usage error: ") and all(w in lines[0] for w in words), lines[0]
    assert not (tmp_path / "store").exists()


def test_bad_interval_in_properties_file(tmp_path: Path, logs: Path) -> None:
    props = tmp_path / "spark-defaults.conf"
    props.write_text("spark.history.fs.update.interval 0s\n")
    result = run("serve", "--log-dir", str(logs), "--store", str(tmp_path / "store"), "--properties-file", str(props))
    assert_refused(result, "spark.history.fs.update.interval", str(props))


def test_binary_properties_file(tmp_path: Path, logs: Path) -> None:
    props = tmp_path / "spark-defaults.conf"
    props.write_bytes(b"spark.history.ui.port=18080\n\xff\xfe\x00\x81binary")
    for command in ("serve", "scan", "apps", "verify"):
        result = run(command, "--log-dir", str(logs), "--store", str(tmp_path / "store"), "--properties-file", str(props))
        assert_refused(result, str(props), "not UTF-8")


def test_store_that_cannot_be_created(logs: Path) -> None:
    # /proc takes no new directory, whoever asks (root included).
    for command in ("serve", "scan"):
        port = ["--port", str(free_port())] if command == "serve" else []
        result = run(command, "--log-dir", str(logs), "--store", "/proc/sparkhist-store/x", *port)
        assert_refused(result, "/proc/sparkhist-store/x", "cannot be created")


def test_store_that_is_a_file(tmp_path: Path, logs: Path) -> None:
    store = tmp_path / "store"
    store.write_text("not a directory")
    for command in ("serve", "scan", "apps", "verify"):
        assert_refused(run(command, "--log-dir", str(logs), "--store", str(store)), str(store), "not a directory")


def test_reading_commands_on_a_missing_store(tmp_path: Path) -> None:
    store = tmp_path / "nothing-here"
    for command in ("apps", "verify"):
        assert_refused(run(command, "--store", str(store)), str(store), "does not exist")
    assert not store.exists(), "a reading command created the store"


def test_port_in_use(tmp_path: Path, logs: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        store = tmp_path / "store"
        result = run("serve", "--log-dir", str(logs), "--store", str(store), "--port", str(port))
        assert_refused(result, f"127.0.0.1:{port}", "in use")
    assert not store.exists()


def test_unresolvable_host(tmp_path: Path, logs: Path) -> None:
    result = run("serve", "--log-dir", str(logs), "--store", str(tmp_path / "store"), "--host", "no-such-host.invalid")
    assert_refused(result, "no-such-host.invalid")


@pytest.mark.parametrize("command", ["serve", "scan"])
def test_missing_log_dir_with_an_empty_store(tmp_path: Path, command: str) -> None:
    # The SHS refuses to start too ("Logging directory specified does not exist").
    missing, store = tmp_path / "no-logs", tmp_path / "store"
    port = ["--port", str(free_port())] if command == "serve" else []
    result = run(command, "--log-dir", str(missing), "--store", str(store), *port)
    assert_refused(result, str(missing), "does not exist")
    assert not store.exists()


def test_missing_log_dir_refused_when_the_store_holds_another_directory(tmp_path: Path, logs: Path) -> None:
    store = tmp_path / "store"
    assert run("scan", "--log-dir", str(logs), "--store", str(store)).returncode == 0
    other = tmp_path / "elsewhere"
    assert_refused(run("serve", "--log-dir", str(other), "--store", str(store), "--port", str(free_port())), str(other))


def test_missing_log_dir_served_offline_when_the_store_holds_its_applications(tmp_path: Path, logs: Path) -> None:
    store = tmp_path / "store"
    scanned = run("scan", "--log-dir", str(logs), "--store", str(store))
    assert scanned.returncode == 0, scanned.stderr
    expected = {line.split()[1] for line in run("apps", "--store", str(store)).stdout.splitlines()
                if line.startswith("│ local-")}
    assert len(expected) == 13
    for path in sorted(logs.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    logs.rmdir()

    port = free_port()
    proc = subprocess.Popen([*SPARKHIST, "serve", "--log-dir", str(logs), "--store", str(store), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline, health, apps = time.monotonic() + 30, {}, []
        while time.monotonic() < deadline:
            try:
                apps = httpx.get(f"{base}/api/v1/applications", timeout=2).json()
                health = httpx.get(f"{base}/health/details", timeout=2).json()
                if health.get("sources") and health["sources"][0]["state"] == "offline":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert {app["id"] for app in apps} == expected, "the store's applications are served"
        source = health["sources"][0]
        assert source["state"] == "offline" and "no such directory" in source["lastError"], source
        assert health["status"] == "degraded"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    warnings = [line for line in err.splitlines() if " WARNING " in line and "does not exist" in line]
    assert len(warnings) == 1 and str(logs) in warnings[0] and "13 applications" in warnings[0], err
    assert "offline" in warnings[0]
