"""The pod-restart and upgrade stories with real processes (issue 20).

* Restart: the store on its own tmpfs mount (a pod's volume), ``sparkhist serve`` stopped
  with SIGTERM (as the kubelet and systemd stop it) or SIGKILL (the grace period ran
  out, the OOM killer), then started again on the same mount: ``/ready`` within the
  recovery objective (< 30 s; the target is 1 s, printed), every application and its
  answers as before, no log read again, the store verifies.
* Upgrade: a store of the previous catalog format is migrated in place by this
  sparkhist (no log read again); a store of a newer format than this sparkhist knows is
  refused by ``apps`` and ``serve`` with one clear line and exit status 2, and left
  byte for byte as it was (an older release must not rebuild or downgrade it).
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.units import base_env, free_port, serving
from sparkhist.devtools.scale import load_template, scale
from sparkhist.store.catalog import FORMAT_VERSION
from support.conformance import SPARK401

pytestmark = pytest.mark.slow

SPARKHIST = [sys.executable, "-m", "sparkhist.cli"]
LOGS = 200
OBJECTIVE = 30.0
TARGET = 1.0


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("restart") / "logs"
    scale([load_template(p) for p in sorted((SPARK401 / "eventlogs").iterdir())], out, LOGS)
    return out


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    """The store's own file system: a tmpfs mounted for this test (root only, as in CI)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "volume"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _argv(logs: Path, store: Path, port: int, *extra: str) -> list[str]:
    return [*SPARKHIST, "serve", "--log-dir", str(logs), "--store", str(store), "--port", str(port),
            "--scan-interval", "3600", *extra]


def _bytes_read(base: str) -> dict[str, float]:
    text = httpx.get(base + "/metrics", timeout=5).text
    return {s.labels["pass"]: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == "sparkhist_log_bytes_read_total"}


def _answers(base: str, app_ids: list[str]) -> dict[str, bytes]:
    paths = ["/api/v1/applications"] + [f"/api/v1/applications/{a}/jobs" for a in app_ids[:: max(1, len(app_ids) // 10)]]
    out = {}
    for path in paths:
        answer = httpx.get(base + path, timeout=30)
        assert answer.status_code == 200, (path, answer.text[:200])
        out[path] = answer.content
    return out


def _all_listed(base: str) -> list[str]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        scan = httpx.get(base + "/health/details", timeout=10).json()["scan"]
        if scan["scans"]["ok"] >= 1:  # the first scan, listing and full pass, is over
            assert scan["last"]["failed"] == 0, scan
            apps = httpx.get(base + "/api/v1/applications", timeout=10).json()
            assert len(apps) == LOGS
            return sorted(a["id"] for a in apps)
        time.sleep(0.2)
    raise AssertionError("the first scan did not finish")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_pod_restart_on_the_same_volume(logs: Path, volume: Path, tmp_path: Path, sig: signal.Signals) -> None:
    store = volume / "store"
    port = free_port()
    env = base_env(SPARKHIST_INDEX_WORKERS="2")
    with serving(_argv(logs, store, port), env, port, tmp_path / "first.log") as first:
        first.wait_ready(120)
        app_ids = _all_listed(first.base)
        before = _answers(first.base, app_ids)
        took = first.stop(sig)
        if sig == signal.SIGTERM:
            assert first.proc.returncode == 0 and took < 3.0, (first.proc.returncode, took)
        else:
            assert first.proc.returncode == -signal.SIGKILL
    with serving(_argv(logs, store, port), env, port, tmp_path / "second.log") as second:
        ready = second.wait_ready(OBJECTIVE + 30)
        print(f"\nRESTART after {sig.name}: /ready {ready:.3f}s after the process started "
              f"(target {TARGET:.0f}s, objective {OBJECTIVE:.0f}s)")
        assert ready < OBJECTIVE
        after = _answers(second.base, app_ids)
        assert after == before, "the same applications and answers after the restart"
        read = _bytes_read(second.base)
        assert read.get("listing", 0) == 0 and read.get("full", 0) == 0, f"logs read again after the restart: {read}"
        assert second.stop(signal.SIGTERM) < 3.0
    done = subprocess.run([*SPARKHIST, "verify", "--store", str(store)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def _store_digest(store: Path) -> dict[str, str]:
    """Every stored byte (SQLite's shared-memory index, and an empty write-ahead log a
    reader creates beside the catalog, hold none)."""
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*")) if p.is_file() and p.name != "writer.lock"
            and not p.name.endswith("-shm") and not (p.name.endswith("-wal") and p.stat().st_size == 0)}


def _set_format(store: Path, version: str, *sql: str) -> None:
    db = sqlite3.connect(store / "catalog.sqlite")
    for statement in sql:
        db.execute(statement)
    db.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (version,))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _scanned_store(logs: Path, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    done = subprocess.run([*SPARKHIST, "scan", "--log-dir", str(logs), "--store", str(store)],
                          env=base_env(SPARKHIST_INDEX_WORKERS="2"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return store


def test_a_store_of_the_previous_format_is_migrated_in_place(logs: Path, tmp_path: Path) -> None:
    store = _scanned_store(logs, tmp_path)
    previous = str(FORMAT_VERSION - 1)  # format 2: listing rows without their app_id key
    _set_format(store, previous, "DROP INDEX listing_app", "ALTER TABLE listing DROP COLUMN app_id")
    port = free_port()
    with serving(_argv(logs, store, port), base_env(), port, tmp_path / "upgraded.log") as served:
        ready = served.wait_ready(OBJECTIVE)
        apps = httpx.get(served.base + "/api/v1/applications", timeout=10).json()
        assert len(apps) == LOGS
        assert httpx.get(f"{served.base}/api/v1/applications/{apps[0]['id']}/jobs", timeout=30).status_code == 200
        assert _bytes_read(served.base).get("listing", 0) == 0, "migrated, not rebuilt from the logs"
        served.stop()
    log = served.log_file.read_text()
    assert f"format version {previous} != {FORMAT_VERSION}; migrated in place" in log
    print(f"\nUPGRADE from format {previous}: /ready {ready:.3f}s")
    db = sqlite3.connect(store / "catalog.sqlite")
    assert db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone() == (str(FORMAT_VERSION),)
    db.close()


def test_a_store_of_a_newer_format_is_refused_and_left_alone(logs: Path, tmp_path: Path) -> None:
    store = _scanned_store(logs, tmp_path)
    newer = str(FORMAT_VERSION + 1)
    _set_format(store, newer)
    before = _store_digest(store)
    expected = f"has format {newer}, written by a newer sparkhist"
    for command in (["apps", "--store", str(store)],
                    ["serve", "--log-dir", str(logs), "--store", str(store), "--port", str(free_port())]):
        done = subprocess.run([*SPARKHIST, *command], env=base_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, (command[0], done.returncode, done.stderr[-2000:])
        errors = [line for line in done.stderr.splitlines() if line.startswith("sparkhist:")]
        assert len(errors) == 1 and expected in errors[0] and f"up to {FORMAT_VERSION}" in errors[0], done.stderr
        assert _store_digest(store) == before, f"{command[0]} changed a newer release's store"
