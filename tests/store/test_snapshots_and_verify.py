"""Snapshots: atomic, verified on read, quarantined when damaged; ``sparkhist verify``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparkhist.errors import StoreCorrupt
from sparkhist.reader.position import Position
from sparkhist.store.snapshots import Snapshot, SnapshotStore
from support.conformance import SPARK401
from support.server import copy_logs, runtime_for


def _snapshot(path: str = "/logs/a") -> Snapshot:
    return Snapshot(path, Position(0, 10, 2, 5), "a", 100, False, {"jobs": list(range(1000))})


def test_round_trip_and_no_temp_left(tmp_path: Path) -> None:
    store = SnapshotStore(str(tmp_path))
    store.write(_snapshot())
    assert store.read("/logs/a").state == {"jobs": list(range(1000))}
    assert store.read("/logs/missing") is None
    assert os.listdir(store.dir) == [os.path.basename(store.path_for("/logs/a"))]


@pytest.mark.parametrize("damage", ["flip", "truncate", "zeros", "empty"])
def test_damaged_snapshot_is_quarantined(tmp_path: Path, damage: str) -> None:
    store = SnapshotStore(str(tmp_path))
    store.write(_snapshot())
    path = Path(store.path_for("/logs/a"))
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0x40
    elif damage == "truncate":
        blob = blob[: len(blob) - 7]
    elif damage == "zeros":
        blob = bytearray(len(blob))
    else:
        blob = bytearray()
    path.write_bytes(bytes(blob))
    with pytest.raises(StoreCorrupt):
        store.read("/logs/a")
    assert not path.exists()
    assert len(os.listdir(store.quarantine_dir)) == 1
    assert "/logs/a" in store.quarantined


def _verify(store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sparkhist.cli", "verify", "--store", str(store)],
                          capture_output=True, text=True, timeout=120)


def test_verify_reports_damage_per_application_and_server_rebuilds(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    with runtime_for(logs, tmp_path / "store") as (runtime, client):
        expected = client.get("/api/v1/applications/local-1795972896863/stages").json()
        victim = Path(runtime.snapshots.path_for(str(logs / "local-1795972896863")))

    ok = _verify(tmp_path / "store")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "13 ok, 0 damaged" in ok.stdout and "store ok" in ok.stdout

    blob = bytearray(victim.read_bytes())
    blob[100] ^= 0xFF
    victim.write_bytes(bytes(blob))
    bad = _verify(tmp_path / "store")
    assert bad.returncode == 1
    assert "DAMAGED local-1795972896863" in bad.stdout and "checksum mismatch" in bad.stdout

    # The server never serves the damaged state: it quarantines it and rebuilds from the log.
    with runtime_for(logs, tmp_path / "store", scan=False) as (runtime, client):
        assert client.get("/api/v1/applications/local-1795972896863/stages").json() == expected
        assert runtime.states.builds == 1
    assert _verify(tmp_path / "store").returncode == 0
