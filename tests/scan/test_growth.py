"""A log that grows while sparkhist serves it: only new bytes are read, answers stay exact.

For every codec (and a rolling log), an in-progress application gets more events in
steps. After each step one scan brings the store up to date; its answers must equal
those of a store built from scratch on the same bytes, and the scan may read only
the appended bytes plus at most one block or frame it resumes inside.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from sparkhist.devtools.scale import load_template, rewrite
from sparkhist.reader.encoders import ENCODERS, LZ4_END
from support.conformance import SPARK401
from support.server import runtime_for

BLOCK = 32768
RESOURCES = ("", "/jobs", "/stages?details=true", "/allexecutors", "/sql", "/environment")
WALL_CLOCK_KEYS = {"lastUpdated", "lastUpdatedEpoch", "totalDuration", "duration"}


#: The log directory an attempt shows (each index below reads its own copy of the logs).
LOG_SOURCE_KEYS = {"logSourceName", "logSourceFullPath"}


def _mask(payload: Any) -> Any:
    if isinstance(payload, dict):
        return {k: (0 if k in WALL_CLOCK_KEYS else "<log dir>" if k in LOG_SOURCE_KEYS else _mask(v))
                for k, v in payload.items()}
    if isinstance(payload, list):
        return [_mask(v) for v in payload]
    return payload


def _encode(codec: str | None, lines: list[bytes], first: bool) -> bytes:
    data = ENCODERS[codec](b"".join(line + b"\n" for line in lines), BLOCK)
    if codec == "lz4":
        data = data[: -len(LZ4_END)]  # a live lz4 stream has no end block yet
    if codec == "snappy" and not first:
        data = data[16:]  # one stream header, as a live SnappyOutputStream writes
    return data


def _answers(client: TestClient, app_id: str) -> dict[str, object]:
    base = f"/api/v1/applications/{app_id}"
    return {r: _mask(orjson.loads(client.get(base + r).content)) for r in RESOURCES}


@pytest.mark.parametrize("codec", [None, "lz4", "lzf", "snappy", "zstd"])
@pytest.mark.parametrize("kind", ["single", "rolling"])
def test_growth_in_steps(tmp_path: Path, codec: str | None, kind: str) -> None:
    app_id = "local-7000000000001"
    lines = rewrite(load_template(SPARK401 / "eventlogs" / "local-1795972896863"), app_id)
    logs = tmp_path / "logs"
    logs.mkdir()
    suffix = f".{codec}" if codec else ""
    if kind == "single":
        path = logs / f"{app_id}{suffix}.inprogress"
    else:
        (logs / f"eventlog_v2_{app_id}").mkdir()
        (logs / f"eventlog_v2_{app_id}" / f"appstatus_{app_id}.inprogress").write_bytes(b"")
        path = logs / f"eventlog_v2_{app_id}" / f"events_1_{app_id}{suffix}"
    steps = [12, 30, 55, 80, len(lines)]
    written = 0
    with runtime_for(logs, tmp_path / "store", scan=False) as (runtime, client):
        for step, upto in enumerate(steps):
            appended = _encode(codec, lines[written:upto], first=written == 0)
            with open(path, "ab") as f:
                f.write(appended)
            written = upto
            before = runtime.scanner.indexer.bytes_read
            report = runtime.scanner.scan_once()
            assert report.failed == 0, report.errors
            read = runtime.scanner.indexer.bytes_read - before
            if step:
                assert read <= len(appended) + BLOCK + 64, f"step {step}: read {read} bytes for {len(appended)} new"
            ours = _answers(client, app_id)

            fresh_logs = tmp_path / f"fresh{step}"
            shutil.copytree(logs, fresh_logs)
            with runtime_for(fresh_logs, tmp_path / f"fresh-store{step}") as (_, fresh_client):
                assert ours == _answers(fresh_client, app_id), f"step {step} differs from a fresh index"
        jobs = client.get(f"/api/v1/applications/{app_id}/jobs").json()
        assert len(jobs) == 10
        assert client.get(f"/api/v1/applications/{app_id}").json()["attempts"][0]["completed"] is True
