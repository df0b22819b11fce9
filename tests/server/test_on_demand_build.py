"""A serving process asked for an application the scan has not reached: the writer builds it once.

The serving process asks the server process for the on-demand load; the server process
(the store's writer) lists the log and builds and saves its snapshot before it answers, so
the serving process answers from that snapshot instead of replaying the log itself (and the
scan, which may be on the same log, waits for that build instead of making its own). With
the watch off and a long scan interval, only the request can have built it: the snapshot is
in the store the moment a serving process has answered.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from server.test_serving_processes import Served, ask, new_log
from sparkhist.config import bundled_samples
from sparkhist.store.snapshots import snapshot_name
from support.serving import free_port, serve_process

pytestmark = pytest.mark.slow


def test_a_serving_process_answers_from_the_writers_build(tmp_path: Path) -> None:
    logs, stage, store = tmp_path / "logs", tmp_path / "stage", tmp_path / "store"
    shutil.copytree(bundled_samples(), logs)
    stage.mkdir()
    port = free_port()
    log_file = tmp_path / "serve.log"
    env = {**os.environ, "SPARKHIST_SERVE_PROCESSES": "3", "SPARKHIST_SCAN_INTERVAL": "3600",
           "SPARKHIST_WATCH_LOG_DIR": "0", "SPARKHIST_INDEX_WORKERS": "1"}
    with serve_process(port, ["--log-dir", str(logs), "--store", str(store)], env, log_file) as proc:
        served = Served(proc, port, logs, stage, log_file)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if served.serving()["answering"] == 3:
                    break
            except Exception:  # noqa: BLE001 - not answering yet
                pass
            time.sleep(0.1)
        pids = served.serving()["pids"]  # the server process first
        assert isinstance(pids, list) and len(pids) == 3, served.serving()
        writer = pids[0]
        by_serving = 0
        for n in range(40):  # a new log each time, until serving processes took several first requests
            app_id = f"local-17959729{n:05d}"
            log = new_log(served, app_id)
            snapshot = store / "snapshots" / snapshot_name(str(log))
            pid, status, body = ask(served, f"/api/v1/applications/{app_id}/jobs", pids)
            assert status == 200 and body.startswith(b"["), (status, body[:300])
            if pid != writer:
                by_serving += 1
                assert snapshot.is_file(), f"{app_id}: answered by serving process {pid} without the writer's snapshot"
            if by_serving >= 3:
                break
        assert by_serving >= 3, "no serving process took a first request"
    assert proc.returncode == 0, log_file.read_text()[-3000:]
