"""Failure scenario 1: ``kill -9`` at any instant of a scan, again and again.

200 logs copied from real Spark logs (every codec and layout, finished and in
progress), some of them growing while the scans run. Each cycle starts a real
``sparkhist scan`` process and kills it with SIGKILL at a random moment; after every
cycle the store must open and verify. At the end, a completed scan over the crashed
store must answer exactly like a store built in one clean run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparkhist.devtools.scale import load_template, rewrite, scale, write_log
from sparkhist.reader.encoders import ENCODERS
from sparkhist.store.verify import verify_store
from support.conformance import SPARK401
from support.server import runtime_for

CYCLES = int(os.environ.get("SPARKHIST_CRASH_CYCLES", "50"))
WALL_CLOCK_KEYS = {"lastUpdated", "lastUpdatedEpoch", "totalDuration", "duration"}


class GrowingLogs:
    """In-progress single-file logs (plain and zstd) that get more events each cycle."""

    def __init__(self, dest: Path, count: int) -> None:
        template = load_template(SPARK401 / "eventlogs" / "local-1795972896863")
        self.logs = []
        for i in range(count):
            codec = None if i % 2 == 0 else "zstd"
            app_id = f"local-8{i:012d}"
            lines = rewrite(template, app_id)
            path = write_log(dest, app_id, lines[:20], codec=codec, kind="single", in_progress=True)
            self.logs.append([path, codec, lines, 20])

    def grow(self, rng: random.Random) -> None:
        for log in self.logs:
            path, codec, lines, written = log
            if written >= len(lines):
                continue
            more = lines[written : written + rng.randint(1, 15)]
            with open(path, "ab") as f:
                f.write(ENCODERS[codec](b"".join(line + b"\n" for line in more), 32768))
            log[3] = written + len(more)


def _scan(logs: Path, store: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sparkhist.cli", "scan", "--log-dir", str(logs), "--store", str(store), "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _exited_within(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _answers(logs: Path, store: Path) -> dict[str, bytes]:
    """Every answer a client would ask for, from a store (no scan), wall-clock fields masked."""
    import orjson

    out: dict[str, bytes] = {}
    with runtime_for(logs, store, scan=False) as (runtime, client):
        apps = client.get("/api/v1/applications").json()
        out["applications"] = orjson.dumps(_mask(apps))
        for app in apps:
            base = f"/api/v1/applications/{app['id']}"
            for resource in ("", "/jobs", "/stages", "/stages?details=true", "/allexecutors", "/environment", "/sql",
                             "/storage/rdd"):
                response = client.get(base + resource)
                out[base + resource] = str(response.status_code).encode() + orjson.dumps(_mask(response.json()))
        assert runtime.states.builds == 0, "a complete store must serve every app from snapshots"
    return out


def _mask(payload):
    if isinstance(payload, dict):
        return {k: (0 if k in WALL_CLOCK_KEYS else _mask(v)) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_mask(v) for v in payload]
    return payload


@pytest.mark.slow
def test_kill_minus_nine_loop(tmp_path: Path) -> None:
    rng = random.Random(20261129)
    logs = tmp_path / "logs"
    templates = [load_template(p) for p in sorted((SPARK401 / "eventlogs").iterdir())]
    scale(templates, logs, 190)
    growing = GrowingLogs(logs, 10)
    assert len(os.listdir(logs)) == 200
    store = tmp_path / "store"

    # The kill instant is drawn from the length of the last scan that ran to its end,
    # so the kills land inside scans on a fast machine as on a slow one.
    killed_mid_scan = 0
    scan_seconds = 2.5
    for cycle in range(CYCLES):
        growing.grow(rng)
        started = time.monotonic()
        with _scan(logs, store) as proc:  # the exit closes its stderr pipe
            if _exited_within(proc, rng.uniform(0.15, 0.9) * scan_seconds):
                scan_seconds = time.monotonic() - started
            else:
                proc.send_signal(signal.SIGKILL)
                killed_mid_scan += 1
            proc.communicate(timeout=60)
        report = verify_store(str(store)) if (store / "catalog.sqlite").exists() else None
        if report is not None:
            assert report.ok, f"cycle {cycle}: {report.damaged_records} damaged records, {report.damaged_snapshots}"
    assert killed_mid_scan >= CYCLES // 2, "most kills must land inside a scan"

    # Let the crashed store finish, then compare with one clean run over the same bytes.
    with _scan(logs, store) as final:
        _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err.decode()
    assert not [n for n in os.listdir(store / "snapshots") if n.endswith(".tmp")], "half-written files left behind"
    clean_store = tmp_path / "clean"
    with _scan(logs, clean_store) as clean:
        _, err = clean.communicate(timeout=600)
    assert clean.returncode == 0, err.decode()

    crashed, fresh = _answers(logs, store), _answers(logs, clean_store)
    assert len(fresh) == 1 + 200 * 8
    assert crashed.keys() == fresh.keys()
    different = [k for k in fresh if crashed[k] != fresh[k]]
    assert different == []
    print(f"\n{CYCLES} kill -9 cycles, {killed_mid_scan} inside a scan; {len(fresh)} answers identical")
