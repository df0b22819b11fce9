"""Full indexing in worker processes gives exactly what the in-process path gives."""

from __future__ import annotations

from pathlib import Path

import orjson

from sparkhist.config import load_settings
from sparkhist.server import build_runtime
from starlette.testclient import TestClient
from support.conformance import SPARK401
from support.server import copy_logs


def _mask(payload):
    if isinstance(payload, dict):
        return {k: (0 if k in ("duration", "totalDuration") else _mask(v)) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_mask(v) for v in payload]
    return payload


def _answers(log_dir: Path, store: Path, workers: int) -> dict[str, bytes]:
    runtime = build_runtime(load_settings({"log_dir": str(log_dir), "store_dir": str(store), "index_workers": workers}, environ={}))
    try:
        report = runtime.scanner.scan_once()
        assert report.indexed == 13 and report.failed == 0
        assert (runtime.scanner.pool is not None) == (workers > 1)
        out = {}
        with TestClient(runtime.app) as client:
            for app in runtime.index.sorted_apps():
                for resource in ("/jobs", "/stages?details=true", "/allexecutors", "/sql", "/environment"):
                    body = client.get(f"/api/v1/applications/{app.id}{resource}").content
                    if app.running:  # durations of what still runs are measured at request/scan time
                        body = orjson.dumps(_mask(orjson.loads(body)))
                    out[app.id + resource] = body
            assert runtime.states.builds == 0  # every answer came from a snapshot the scan wrote
        return out
    finally:
        runtime.close()


def test_pool_and_in_process_agree(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    pooled = _answers(logs, tmp_path / "pooled", workers=2)
    alone = _answers(logs, tmp_path / "alone", workers=1)
    assert pooled.keys() == alone.keys() and len(pooled) == 65
    assert [k for k in pooled if pooled[k] != alone[k]] == []
