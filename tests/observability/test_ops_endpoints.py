"""/health, /ready, /health/details and /metrics on a runtime over the conformance logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sparkhist.api.app import ServerContext, create_app
from sparkhist.server import Runtime
from sparkhist.source.local import LocalSource
from sparkhist.store.applications import ApplicationIndex
from support.conformance import SPARK401
from support.metrics import names, scrape, value
from support.server import copy_logs, runtime_for

#: Every sample /metrics must expose (histograms by their _count), before any incident.
EXPECTED_SAMPLES = {
    "sparkhist_build_info", "sparkhist_ready", "sparkhist_store_recovery_seconds",
    "sparkhist_role", "sparkhist_takeovers_total",
    "sparkhist_source_requests_total", "sparkhist_source_up", "sparkhist_source_breaker_state",
    "sparkhist_source_state", "sparkhist_offline",
    "sparkhist_scan_duration_seconds_count", "sparkhist_scan_duration_seconds_bucket", "sparkhist_scans_total",
    "sparkhist_scan_interval_seconds", "sparkhist_scan_lag_seconds", "sparkhist_scan_last_timestamp_seconds",
    "sparkhist_scan_last_success_timestamp_seconds", "sparkhist_scan_failed_logs",
    "sparkhist_applications", "sparkhist_event_logs", "sparkhist_events_parsed_total", "sparkhist_log_bytes_read_total",
    "sparkhist_store_disk_bytes", "sparkhist_store_disk_budget_bytes", "sparkhist_store_snapshot_bytes",
    "sparkhist_store_disk_critical", "sparkhist_store_snapshot_write_failures_total", "sparkhist_store_evictions_total",
    "sparkhist_store_filesystem_usage_ratio", "sparkhist_store_filesystem_free_bytes",
    "sparkhist_corruptions_total", "sparkhist_store_rebuilding_applications",
    "sparkhist_cache_memory_bytes", "sparkhist_cache_memory_budget_bytes", "sparkhist_cache_applications",
    "sparkhist_cache_requests_total", "sparkhist_cache_evictions_total",
    "sparkhist_api_requests_total", "sparkhist_api_request_duration_seconds_count",
    "sparkhist_api_request_duration_seconds_bucket",
    "process_resident_memory_bytes", "process_start_time_seconds",
}


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[Runtime, TestClient]]:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    with runtime_for(logs, tmp_path / "store") as pair:
        yield pair


def test_health_is_cheap_liveness(served: tuple[Runtime, TestClient]) -> None:
    _, client = served
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["alive"] is True


def test_ready_once_recovered(served: tuple[Runtime, TestClient]) -> None:
    _, client = served
    response = client.get("/ready")
    assert (response.status_code, response.json()) == (200, {"ready": True})


def test_ready_is_503_until_recovery_is_done(tmp_path: Path) -> None:
    recovered = False
    ctx = ServerContext(index=ApplicationIndex(), source=LocalSource(str(tmp_path)), states=None,  # type: ignore[arg-type]
                        handle_app_resource=lambda *a, **k: None, ready=lambda: recovered)
    with TestClient(create_app(ctx)) as client:
        response = client.get("/ready")
        assert (response.status_code, response.json()) == (503, {"ready": False})
        assert client.get("/health").status_code == 200, "liveness does not depend on readiness"
        recovered = True
        assert client.get("/ready").status_code == 200
        assert client.get("/metrics").status_code == 404  # no metrics wired


def test_health_details_document(served: tuple[Runtime, TestClient]) -> None:
    runtime, client = served
    doc = client.get("/health/details").json()
    assert doc["status"] == "ok" and doc["reasons"] == [] and doc["offline"] is False and doc["ready"] is True
    assert doc["role"] == "writer" and doc["takeovers"] == 0 and doc["recoverySeconds"] >= 0

    [source] = doc["sources"]
    assert source["logDirectory"] == runtime.source.root
    assert source["state"] == "ok" and source["breaker"] == "closed" and source["lastError"] is None
    assert source["since"].endswith("Z") and source["requests"]["ok"] > 0

    scan = doc["scan"]
    assert scan["lagSeconds"] == 0 and scan["lastScan"] and scan["lastSuccess"] == scan["lastScan"]
    assert scan["lastDurationSeconds"] > 0 and scan["scans"] == {"ok": 1, "failed": 0}
    assert scan["last"]["new"] == 13 and scan["last"]["sourceError"] is None

    store = doc["store"]
    assert store["applications"] == {"completed": 7, "running": 6} and store["logs"] == 13
    assert store["diskBytes"] > 0 and 0 < store["filesystemUsageRatio"] < 1 and store["filesystemFreeBytes"] > 0
    assert store["diskBudgetBytes"] == runtime.settings.store_max_disk
    assert store["corruptions"] == {"catalog_record": 0, "snapshot": 0}
    assert store["quarantinedFiles"] == 0 and store["rebuilding"] == []

    memory = doc["memory"]
    assert memory["cacheBytes"] == 0 and memory["cachedApplications"] == 0 and memory["rssBytes"] > 10_000_000
    assert "cacheBudgetBytes" in memory


def test_metrics_exposition(served: tuple[Runtime, TestClient]) -> None:
    _, client = served
    client.get("/api/v1/applications")
    response = client.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = scrape(client)
    assert EXPECTED_SAMPLES <= names(samples), sorted(EXPECTED_SAMPLES - names(samples))
    assert all(n.startswith(("sparkhist_", "process_", "python_")) for n in names(samples))
    assert value(samples, "sparkhist_ready") == 1
    assert value(samples, "sparkhist_role", role="writer") == 1
    assert value(samples, "sparkhist_role", role="standby") == 0
    assert value(samples, "sparkhist_source_up") == 1 and value(samples, "sparkhist_offline") == 0
    assert value(samples, "sparkhist_source_breaker_state") == 0


def test_metrics_speak_openmetrics_when_asked(served: tuple[Runtime, TestClient]) -> None:
    _, client = served
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_every_runtime_has_its_own_registry(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    with runtime_for(logs, tmp_path / "one") as (_, first), runtime_for(logs, tmp_path / "two", scan=False) as (_, second):
        first.get("/api/v1/applications")
        assert value(scrape(first), "sparkhist_applications") == 13
        assert value(scrape(second), "sparkhist_applications") == 0
        assert ("sparkhist_api_requests_total", frozenset({("route", "/api/v1/applications"), ("status", "200")})) \
            not in scrape(second)
