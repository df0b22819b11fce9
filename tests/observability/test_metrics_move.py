"""Metrics and health move when things happen: scans, damage, a lost source, requests, takeovers."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from sparkhist.config import load_settings
from sparkhist.errors import SourceUnavailable
from sparkhist.server import build_runtime
from support.conformance import SPARK401
from support.metrics import scrape, value
from support.server import copy_logs, runtime_for

APP = "local-1795972896863"  # a completed single-file log


@pytest.fixture()
def logs(tmp_path: Path) -> Path:
    return copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")


def test_a_scan_counts_what_it_parsed(logs: Path, tmp_path: Path) -> None:
    with runtime_for(logs, tmp_path / "store", scan=False) as (runtime, client):
        before = scrape(client)
        assert value(before, "sparkhist_applications", status="completed") == 0
        assert value(before, "sparkhist_events_parsed_total", **{"pass": "listing"}) == 0
        assert value(before, "sparkhist_scan_duration_seconds_count") == 0
        assert value(before, "sparkhist_scan_last_timestamp_seconds") == 0

        assert runtime.loop.lock.try_acquire()
        runtime.scanner.scan_once()
        after = scrape(client)
        assert value(after, "sparkhist_applications", status="completed") == 7
        assert value(after, "sparkhist_applications", status="running") == 6
        assert value(after, "sparkhist_event_logs") == 13
        for name, events in (("listing", 300), ("full", 800)):  # the listing pass skips completed logs' middles
            assert value(after, "sparkhist_events_parsed_total", **{"pass": name}) > events
            assert value(after, "sparkhist_log_bytes_read_total", **{"pass": name}) > 1_000_000
        assert value(after, "sparkhist_scan_duration_seconds_count") == 1
        assert value(after, "sparkhist_scans_total", outcome="ok") == 1
        assert time.time() - value(after, "sparkhist_scan_last_success_timestamp_seconds") < 60
        assert value(after, "sparkhist_source_requests_total", op="open", outcome="ok") > 0
        assert value(after, "sparkhist_store_disk_bytes") > 0

        runtime.scanner.scan_once()  # nothing changed: nothing more parsed
        again = scrape(client)
        assert value(again, "sparkhist_events_parsed_total") == value(after, "sparkhist_events_parsed_total")
        assert value(again, "sparkhist_scan_duration_seconds_count") == 2


def test_damaged_snapshot_is_counted_and_rebuilt(logs: Path, tmp_path: Path) -> None:
    with runtime_for(logs, tmp_path / "store") as (runtime, client):
        log_path = runtime.index.get(APP).attempts[0].log_path
        snapshot = Path(runtime.snapshots.path_for(log_path))
        blob = bytearray(snapshot.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        snapshot.write_bytes(bytes(blob))

        assert client.get(f"/api/v1/applications/{APP}/jobs").status_code == 200
        samples = scrape(client)
        assert value(samples, "sparkhist_corruptions_total", kind="snapshot") == 1
        assert value(samples, "sparkhist_corruptions_total", kind="catalog_record") == 0
        assert value(samples, "sparkhist_cache_requests_total", result="build") == 1
        store = client.get("/health/details").json()["store"]
        assert store["corruptions"]["snapshot"] == 1 and store["quarantinedFiles"] == 1
        assert store["rebuilding"] == []  # rebuilt from the log at once, and saved


def test_damaged_catalog_record_is_counted_at_start(logs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with runtime_for(logs, store):
        pass
    with sqlite3.connect(store / "catalog.sqlite") as db:
        db.execute("UPDATE logs SET record = CAST(record || 'x' AS BLOB) WHERE path LIKE ?", (f"%{APP}",))
    with runtime_for(logs, store, scan=False) as (_, client):
        samples = scrape(client)
        assert value(samples, "sparkhist_corruptions_total", kind="catalog_record") == 1


def test_lost_log_directory_sets_offline_then_recovers(logs: Path, tmp_path: Path) -> None:
    with runtime_for(logs, tmp_path / "store") as (runtime, client):
        logs.rename(tmp_path / "away")
        report = runtime.scanner.scan_once()
        assert not report.ok

        samples = scrape(client)
        assert value(samples, "sparkhist_source_up") == 0
        assert value(samples, "sparkhist_offline") == 1
        assert value(samples, "sparkhist_source_state", state="offline") == 1
        assert value(samples, "sparkhist_source_requests_total", op="list", outcome="error") == 1
        assert value(samples, "sparkhist_scans_total", outcome="failed") == 1
        doc = client.get("/health/details").json()
        assert doc["status"] == "degraded" and doc["offline"] is True
        assert "no such directory" in doc["sources"][0]["lastError"]
        assert doc["sources"][0]["state"] == "offline"
        assert any("offline" in reason for reason in doc["reasons"])
        assert doc["store"]["applications"] == {"completed": 7, "running": 6}, "still served from the store"
        assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200

        (tmp_path / "away").rename(logs)
        assert runtime.scanner.scan_once().ok
        samples = scrape(client)
        assert value(samples, "sparkhist_source_up") == 1 and value(samples, "sparkhist_offline") == 0
        doc = client.get("/health/details").json()
        assert doc["status"] == "ok" and doc["offline"] is False and doc["sources"][0]["state"] == "ok"


def test_failing_reads_degrade_the_source(logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with runtime_for(logs, tmp_path / "store", scan=False) as (runtime, client):
        inner = runtime.source.inner

        def broken_open(path: str, offset: int = 0) -> None:
            raise SourceUnavailable(f"cannot open {path}: Input/output error")

        monkeypatch.setattr(inner, "open", broken_open)
        assert runtime.loop.lock.try_acquire()
        runtime.scanner.scan_once()
        doc = client.get("/health/details").json()
        assert doc["sources"][0]["state"] == "degraded" and doc["offline"] is False
        assert "Input/output error" in doc["sources"][0]["lastError"]
        samples = scrape(client)
        assert value(samples, "sparkhist_source_state", state="degraded") == 1
        assert value(samples, "sparkhist_source_up") == 1
        assert value(samples, "sparkhist_scan_failed_logs") > 0


def test_scan_lag_is_the_age_of_the_oldest_unindexed_change(logs: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with runtime_for(logs, tmp_path / "store", scan=False) as (runtime, client):
        indexer = runtime.scanner.indexer
        assert indexer is not None
        refresh = indexer.refresh

        def failing(*args: object, **kwargs: object) -> None:
            raise SourceUnavailable("the NameNode is gone")

        monkeypatch.setattr(indexer, "refresh", failing)
        monkeypatch.setattr(runtime.scanner, "pool", None)  # index in-process, where the failure is injected
        assert runtime.loop.lock.try_acquire()
        runtime.scanner.scan_once()  # listed every log, indexed none
        oldest = min(r.mtime_ms for r in runtime.scanner.records.values()) / 1000
        lag = value(scrape(client), "sparkhist_scan_lag_seconds")
        assert lag == pytest.approx(time.time() - oldest, abs=30)

        monkeypatch.setattr(indexer, "refresh", refresh)
        runtime.scanner.scan_once()
        assert value(scrape(client), "sparkhist_scan_lag_seconds") == 0
        assert client.get("/health/details").json()["scan"]["lagSeconds"] == 0


def test_api_requests_by_route_template(logs: Path, tmp_path: Path) -> None:
    with runtime_for(logs, tmp_path / "store") as (_, client):
        for _ in range(2):
            assert client.get(f"/api/v1/applications/{APP}/jobs").status_code == 200
        assert client.get(f"/api/v1/applications/{APP}/stages/0/0/taskList").status_code == 200
        assert client.get("/api/v1/applications/nope-app").status_code == 404
        client.get("/api/v1/applications")
        samples = scrape(client)
        requests = {dict(labels)["route"]: v for (name, labels), v in samples.items() if name == "sparkhist_api_requests_total"}
        assert requests["/api/v1/applications/{appId}/jobs"] == 2
        assert requests["/api/v1/applications/{appId}/stages/{stageId}/{stageAttemptId}/taskList"] == 1
        assert value(samples, "sparkhist_api_requests_total", route="/api/v1/applications/{appId}", status="404") == 1
        assert value(samples, "sparkhist_api_requests_total", route="/api/v1/applications", status="200") == 1
        assert not any(APP in route or "nope" in route for route in requests), "raw paths leak into labels"
        assert value(samples, "sparkhist_api_request_duration_seconds_count",
                     route="/api/v1/applications/{appId}/jobs") == 2


def test_cache_memory_and_evictions(logs: Path, tmp_path: Path) -> None:
    with runtime_for(logs, tmp_path / "store") as (runtime, client):
        runtime.states.capacity = 1
        apps = [a.id for a in runtime.index.sorted_apps()[:2]]
        for app in apps:
            assert client.get(f"/api/v1/applications/{app}/jobs").status_code == 200
        samples = scrape(client)
        assert value(samples, "sparkhist_cache_applications") == 1
        assert value(samples, "sparkhist_cache_evictions_total", reason="capacity") == 1
        assert value(samples, "sparkhist_cache_memory_bytes") > 100_000
        assert value(samples, "sparkhist_cache_requests_total", result="load") == 2

        runtime.states.invalidate(runtime.index.get(apps[1]).attempts[0].log_path)
        samples = scrape(client)
        assert value(samples, "sparkhist_cache_evictions_total", reason="invalidated") == 1
        assert value(samples, "sparkhist_cache_memory_bytes") == 0
        assert client.get("/health/details").json()["memory"]["evictions"] == {"capacity": 1, "invalidated": 1}


def test_standby_takes_over_and_counts_it(logs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with runtime_for(logs, store) as (writer, _):
        settings = load_settings({"log_dir": str(logs), "store_dir": str(store)}, environ={})
        standby = build_runtime(settings)
        try:
            from starlette.testclient import TestClient

            with TestClient(standby.app) as client:
                samples = scrape(client)
                assert value(samples, "sparkhist_role", role="standby") == 1
                assert value(samples, "sparkhist_role", role="writer") == 0
                assert client.get("/health/details").json()["role"] == "standby"

                writer.loop.lock.release()  # the writer "dies"
                standby.loop.tick()
                samples = scrape(client)
                assert value(samples, "sparkhist_takeovers_total") == 1
                assert value(samples, "sparkhist_role", role="writer") == 1
                assert value(samples, "sparkhist_scans_total", outcome="ok") == 1
        finally:
            standby.loop.lock.release()
            standby.catalog.close()
