"""A replica of a shared store on the real HA HDFS (``serve --store hdfs://ns/... --cache DIR``).

The store is published to HDFS the way index-on-spark's driver publishes it (snapshots put
under ``snapshots/``, then a segment and a manifest through :mod:`sparkhist.store.segments`
over the HDFS source's ``put_atomic``), from a single-node scan of the bundled samples. A
replica runtime in this process syncs from it and fetches snapshots on demand; with both
NameNodes black-holed it serves every cached answer, answers 503 for the snapshot it never
fetched, and says it is offline; with them back it syncs and fetches again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sparkhist.config import bundled_samples, load_settings
from sparkhist.server import build_runtime
from sparkhist.server.shared_store import replica_settings
from sparkhist.source.factory import SourceOptions
from sparkhist.store.remote import RemoteStore
from sparkhist.store.segments import publish
from sparkhist.store.snapshots import SNAPSHOT_DIR
from support.server import copy_logs, runtime_for

from .conftest import HdfsEnv

pytestmark = [pytest.mark.slow]

BASE = "/sparkhist-replica-store"
#: Fails fast: one attempt, a one-second deadline per NameNode call, the breaker tries again after a second.
ENVIRON = {"SPARKHIST_SOURCE_TIMEOUT": "1s", "SPARKHIST_SOURCE_RETRIES": "0", "SPARKHIST_SOURCE_BREAKER_RESET": "1s"}


@pytest.fixture
def published(env: HdfsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any, TestClient]]:
    """The store's URL, and the single-node runtime (and its client) it was published from."""
    monkeypatch.setenv("HADOOP_CONF_DIR", env.conf_dir)
    client = env.direct()
    try:
        client.delete(BASE, True)
    except FileNotFoundError:
        pass
    url = f"hdfs://{env.ns}{BASE}"
    logs = copy_logs(Path(bundled_samples()), tmp_path / "logs")
    with runtime_for(logs, tmp_path / "single") as (single, single_client):
        options = SourceOptions.from_settings(load_settings({"store_dir": url}, environ=ENVIRON))
        with RemoteStore.open(url, options) as remote:
            records = single.scanner.records
            for path in records:
                snapshot = Path(single.snapshots.path_for(path))
                if snapshot.exists():
                    remote.put_atomic(f"{SNAPSHOT_DIR}/{snapshot.name}", snapshot.read_bytes())
            publish(remote, list(records.values()), [], log_dir=single.source.root, log_source=single.settings.log_source)
        yield url, single, single_client


def test_a_replica_of_an_hdfs_store_serves_from_its_cache_while_the_namenodes_are_unreachable(
        env: HdfsEnv, published: tuple[str, Any, TestClient], tmp_path: Path) -> None:
    url, single, single_client = published
    settings = replica_settings(load_settings({"store_dir": url}, environ=ENVIRON), url, str(tmp_path / "cache"))
    runtime = build_runtime(settings)
    try:
        with TestClient(runtime.app) as client:
            listed = client.get("/api/v1/applications")
            assert listed.content == single_client.get("/api/v1/applications").content
            apps = sorted(a["id"] for a in listed.json() if a["attempts"][0]["completed"])
            uncached, cached = apps[0], apps[1:]
            answers = {app: client.get(f"/api/v1/applications/{app}/stages").content for app in cached}
            for app in cached:
                assert answers[app] == single_client.get(f"/api/v1/applications/{app}/stages").content
            for proxy in (*env.rpc, *env.http):  # both NameNodes black-holed: calls hang until their deadline
                proxy.blackhole()
                proxy.cut()
            runtime.loop.tick()
            health = client.get("/health/details").json()
            assert health["offline"] is True
            assert health["sources"][0]["logDirectory"] == url and health["sources"][0]["state"] == "offline"
            for app in cached:
                assert client.get(f"/api/v1/applications/{app}/stages").content == answers[app]
            miss = client.get(f"/api/v1/applications/{uncached}/stages")
            assert miss.status_code == 503 and "cannot be reached" in miss.text
            env.all_pass()
            deadline = time.monotonic() + 20
            while client.get("/health/details").json()["offline"] and time.monotonic() < deadline:
                time.sleep(0.5)  # the breaker lets a trial call through once its reset time is over
                runtime.loop.tick()
            assert client.get("/health/details").json()["offline"] is False
            assert client.get(f"/api/v1/applications/{uncached}/stages").content == single_client.get(
                f"/api/v1/applications/{uncached}/stages").content
    finally:
        runtime.close()
