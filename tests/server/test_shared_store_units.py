"""A replica's runtime in this process, over a ``file://`` store published from the bundled samples.

No Spark here (``test_shared_store_replicas.py`` has the store written by index-on-spark and the
replicas as processes): what a replica does step by step, with its sync loop ticked by hand.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from sparkhist.config import LogSource, LogSources, bundled_samples, load_settings
from sparkhist.server import build_runtime
from sparkhist.server.shared_store import SharedStoreSource, catalog_log_source, replica_settings
from sparkhist.store.remote import RemoteStore
from sparkhist.store.segments import publish
from sparkhist.store.snapshots import SNAPSHOT_DIR
from support.differential import normalize
from support.server import copy_logs, runtime_for


@dataclass
class Store:
    url: str
    path: Path
    logs: Path
    single: Any  # the single-node runtime the store was published from
    single_client: TestClient


def _publish(runtime: Any, url: str, paths: list[str] | None = None) -> None:
    records = runtime.scanner.records
    chosen = list(records) if paths is None else paths
    with RemoteStore.open(url) as remote:
        for path in chosen:
            snapshot = Path(runtime.snapshots.path_for(path))
            if snapshot.exists():
                remote.put_atomic(f"{SNAPSHOT_DIR}/{snapshot.name}", snapshot.read_bytes())
        publish(remote, [records[p] for p in chosen], [], log_dir=runtime.source.root,
                log_source=runtime.settings.log_source)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    logs = copy_logs(Path(bundled_samples()), tmp_path / "logs")
    path = tmp_path / "store"
    path.mkdir()
    url = f"file://{path}"
    with runtime_for(logs, tmp_path / "single") as (runtime, client):
        _publish(runtime, url)
        yield Store(url, path, logs, runtime, client)


@pytest.fixture
def replica(store: Store, tmp_path: Path) -> Iterator[tuple[Any, TestClient]]:
    settings = replica_settings(load_settings({"store_dir": store.url}, environ={}), store.url, str(tmp_path / "cache"))
    runtime = build_runtime(settings)
    try:
        with TestClient(runtime.app) as client:
            yield runtime, client
    finally:
        runtime.close()


def _shared(runtime: Any) -> SharedStoreSource:
    source = runtime.source.inner
    assert isinstance(source, SharedStoreSource)
    return source


def test_a_replica_answers_as_the_single_node_it_was_published_from(store: Store, replica: tuple[Any, TestClient]) -> None:
    runtime, client = replica
    assert runtime.loop.role == "replica" and runtime.probe.role == "replica"
    listed = client.get("/api/v1/applications")
    assert listed.status_code == 200
    assert listed.content == store.single_client.get("/api/v1/applications").content
    apps = {a["id"]: not a["attempts"][0]["completed"] for a in listed.json()}
    assert len(apps) == len({r.app_id for r in store.single.scanner.records.values() if r.app_id})
    for app, running in apps.items():
        for path in ("", "/jobs", "/stages", "/executors", "/environment", "/sql", "/stages/0/0/taskList"):
            ours, theirs = client.get(f"/api/v1/applications/{app}{path}"), store.single_client.get(
                f"/api/v1/applications/{app}{path}")
            assert ours.status_code == theirs.status_code, (app, path)
            if running and ours.status_code == 200:  # durations measured at request time
                assert normalize(ours.json(), True) == normalize(theirs.json(), True), (app, path)
            else:
                assert ours.content == theirs.content, (app, path)
    cached = sorted(p.name for p in (Path(runtime.settings.store_dir) / SNAPSHOT_DIR).glob("*.snap"))
    assert cached == sorted(p.name for p in (store.path / SNAPSHOT_DIR).glob("*.snap"))
    assert _shared(runtime).fetches == len(cached)


def test_the_store_gone_is_offline_never_an_empty_catalog(store: Store, replica: tuple[Any, TestClient]) -> None:
    runtime, client = replica
    apps = {a["id"] for a in client.get("/api/v1/applications").json()}
    runtime.loop.tick()
    away = store.path.with_name("away")
    store.path.rename(away)
    try:
        runtime.loop.tick()
        assert {a["id"] for a in client.get("/api/v1/applications").json()} == apps  # not emptied
        health = client.get("/health/details").json()
        assert health["offline"] is True and health["sources"][0]["state"] == "offline"
        assert runtime.scanner.last_report.source_error is not None
        missing = client.get(f"/api/v1/applications/{sorted(apps)[0]}/jobs")  # its snapshot was never fetched
        assert missing.status_code == 503 and "cannot be reached" in missing.text
    finally:
        away.rename(store.path)
    runtime.loop.tick()
    assert client.get("/health/details").json()["offline"] is False
    assert client.get(f"/api/v1/applications/{sorted(apps)[0]}/jobs").status_code == 200


def test_a_changed_log_is_fetched_again_and_a_removed_one_leaves(store: Store, replica: tuple[Any, TestClient]) -> None:
    runtime, client = replica
    runtime.loop.tick()
    apps = sorted(a["id"] for a in client.get("/api/v1/applications").json())
    for app in apps:
        assert client.get(f"/api/v1/applications/{app}/jobs").status_code == 200
    gone = next(p for p, r in store.single.scanner.records.items() if r.app_id == apps[0])
    with RemoteStore.open(store.url) as remote:
        publish(remote, [], [gone])
    runtime.loop.tick()
    assert apps[0] not in {a["id"] for a in client.get("/api/v1/applications").json()}
    assert not Path(runtime.snapshots.path_for(gone)).exists()
    assert client.get(f"/api/v1/applications/{apps[0]}/jobs").status_code == 404


def test_concurrent_requests_for_one_uncached_snapshot_fetch_it_once(store: Store, replica: tuple[Any, TestClient]) -> None:
    runtime, client = replica
    app = client.get("/api/v1/applications").json()[0]["id"]
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(client.get(f"/api/v1/applications/{app}/stages").status_code))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * 8
    assert _shared(runtime).fetches == 1


def test_a_first_start_before_the_store_has_a_manifest_serves_nothing_until_it_has(store: Store, tmp_path: Path) -> None:
    empty = tmp_path / "empty-store"
    url = f"file://{empty}"
    settings = replica_settings(load_settings({"store_dir": url}, environ={}), url, str(tmp_path / "cache-2"))
    runtime = build_runtime(settings)
    try:
        with TestClient(runtime.app) as client:
            assert client.get("/api/v1/applications").json() == []
            store.path.rename(empty)  # the job's first run published
            runtime.loop.tick()
            assert len(client.get("/api/v1/applications").json()) == len(store.single.index)
            # the listing shows the log directory the job indexed, learnt from the first sync
            assert client.get("/api/v1/applications").content == store.single_client.get("/api/v1/applications").content
    finally:
        runtime.close()


@pytest.mark.parametrize(("source", "expected"), [
    (["logs", "file:/logs"], LogSource("logs", "file:/logs")),
    ([["a", "file:/a"], ["b", "hdfs://nn/b"]], LogSources((LogSource("a", "file:/a"), LogSource("b", "hdfs://nn/b")))),
    (None, None),
    ([["a"]], None),
])
def test_the_attempts_log_directories_come_from_the_synced_catalog(source: Any, expected: Any) -> None:
    class Meta:
        meta = {"listing_renders": orjson.dumps({"release": "4.3.0", "source": source}).decode()}

    assert catalog_log_source(Meta()) == expected  # type: ignore[arg-type]
