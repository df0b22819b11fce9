"""A real HA HDFS whose NameNodes and DataNodes serve no WebHDFS (``dfs.webhdfs.enabled=false``).

Their HTTP ports answer, with 404 under ``/webhdfs/v1``: before, the first ``.inprogress``
log made the whole listing fail (``WebHDFS OPEN ... HTTP 404``, taken for "no such file"),
so not one application was listed. Now each in-progress log is read through native RPC
up to its last completed block, the listing succeeds, and the reason is reported once
(one WARNING, one entry in ``/health/details``, ``sparkhist_skipped_logs``). The same
holds when the HTTP ports refuse connections (a firewall's REJECT).

The cluster is this module's own (``webhdfs=false``), started once; ``TIMING`` lines
give its start and each scan.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sparkhist.config import load_settings
from sparkhist.scan.scanner import Scanner
from sparkhist.server import build_runtime
from sparkhist.source.hdfs import HdfsSource
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from support.metrics import scrape, value

from .cluster import ClusterError, HaCluster, HarnessUnavailable, build_harness
from .conftest import Timings

pytestmark = pytest.mark.slow

EVENTLOGS = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "spark-4.0.1" / "eventlogs"
DONE = ("local-1795972896863", "local-1795972905472.lz4")
LIVE_LOG = "local-1795972971772.inprogress"  # plain JSON lines: written line by line, as Spark does
LIVE_APP = "local-1795972971772"
BLOCK = 1 << 20


@pytest.fixture(scope="module")
def cluster(timings: Timings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaCluster]:
    t0 = time.monotonic()
    try:
        build_harness()
    except HarnessUnavailable as why:
        pytest.skip(str(why))
    ha = HaCluster(tmp_path_factory.mktemp("hdfs-no-webhdfs"), datanodes=1, block_size=BLOCK, webhdfs=False)
    try:
        ready = ha.start(timeout=240)
        timings.record("no-WebHDFS cluster start", jvm_to_ready=ha.start_seconds, inside_jvm=ready.startup_ms / 1000,
                       total=time.monotonic() - t0)
        yield ha
    except ClusterError as exc:
        pytest.fail(f"the HDFS harness failed: {exc}")
    finally:
        ha.stop()


def direct(ha: HaCluster) -> Any:
    import hdfs_native

    assert ha.ready is not None
    return hdfs_native.Client(f"hdfs://{ha.ready.nameservice}", ha.direct_config())


def log_dir_with_a_live_log(ha: HaCluster, base: str) -> str:
    """``base`` with two finished logs and one being written (hflushed, its first block complete)."""
    client = direct(ha)
    try:
        client.delete(base, True)
    except FileNotFoundError:
        pass
    client.mkdirs(base, create_parent=True)
    for name in DONE:
        with client.create(f"{base}/{name}") as w:
            w.write((EVENTLOGS / name).read_bytes())
    live = f"{base}/{LIVE_LOG}"
    ha.cmd(f"wopen {live}")
    for line in (EVENTLOGS / LIVE_LOG).read_text().splitlines():
        ha.cmd(f"wtext {live} {line}")
    ha.cmd(f"wlines {live} 0 12000 80")  # > 1 block: the first one completes, RPC can read it
    ha.cmd(f"hflush {live}")
    return live


def test_the_cluster_serves_no_webhdfs(cluster: HaCluster) -> None:
    import httpx

    assert cluster.ready is not None
    host, port = cluster.ready.http[0]
    response = httpx.get(f"http://{host}:{port}/webhdfs/v1/?op=LISTSTATUS", timeout=10)
    assert response.status_code == 404 and "RemoteException" not in response.text


def test_an_inprogress_log_without_webhdfs_fails_nothing(cluster: HaCluster, timings: Timings, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    base = "/no-webhdfs/events"
    live = log_dir_with_a_live_log(cluster, base)
    assert cluster.ready is not None
    monkeypatch.setenv("HADOOP_CONF_DIR", cluster.ready.conf_dir)
    settings = load_settings({"log_dir": f"hdfs://{cluster.ready.nameservice}{base}", "store_dir": str(tmp_path / "store"),
                              "index_workers": 1}, environ={})
    runtime = build_runtime(settings)
    assert runtime.loop.lock.try_acquire()
    caplog.set_level(logging.WARNING)
    try:
        with TestClient(runtime.app) as client:
            t0 = time.monotonic()
            report = runtime.scanner.scan_once()
            first_scan = time.monotonic() - t0
            assert report.ok, report.source_error  # before: "WebHDFS OPEN ... HTTP 404": nothing listed
            apps = {a["id"]: a for a in client.get("/api/v1/applications").json()}
            assert set(apps) == {"local-1795972896863", "local-1795972905472", LIVE_APP}
            assert apps[LIVE_APP]["attempts"][0]["completed"] is False
            assert report.failed == 0, report.errors

            # Read through RPC: exactly the completed block.
            assert runtime.scanner.records[f"hdfs://{cluster.ready.nameservice}{live}"].size_of_last == BLOCK

            t1 = time.monotonic()
            for _ in range(2):
                assert runtime.scanner.scan_once().ok
            later_scans = (time.monotonic() - t1) / 2

            # The reason, once: one entry, one warning over three scans, one metric sample.
            health = client.get("/health/details").json()
            skipped = health["skipped"]
            assert [(e["path"], e["reason"], e["action"]) for e in skipped["entries"]] == [
                (runtime.source.root, "webhdfs_unavailable", "degraded")
            ]
            assert "HTTP 404" in skipped["entries"][0]["detail"]
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "webhdfs unavailable" in r.getMessage()]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]
            assert value(scrape(client), "sparkhist_skipped_logs", reason="webhdfs_unavailable") == 1
            assert health["sources"][0]["state"] == "ok"
    finally:
        runtime.close()
        cluster.cmd(f"wclose {live}")
    timings.record("no WebHDFS: scans", first=first_scan, later=later_scans)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_firewalled_http_port_degrades_only_inprogress_logs(cluster: HaCluster, timings: Timings, tmp_path: Path) -> None:
    """HTTP ports that refuse connections: the listing costs no retry storm, and says so once."""
    base = "/no-webhdfs/firewalled"
    live = log_dir_with_a_live_log(cluster, base)
    assert cluster.ready is not None
    ns = cluster.ready.nameservice
    closed = {f"dfs.namenode.http-address.{ns}.nn{i}": f"127.0.0.1:{_closed_port()}" for i in (0, 1)}
    source = HdfsSource(f"hdfs://{ns}{base}", conf_dir=cluster.ready.conf_dir, overrides=closed, rpc_timeout=2.0,
                        read_timeout=2.0)
    scanner = Scanner(source, Catalog(str(tmp_path / "store"), source.root), ApplicationIndex())
    try:
        t0 = time.monotonic()
        report = scanner.scan_once()
        first = time.monotonic() - t0
        assert report.ok and report.failed == 0, (report.source_error, report.errors)
        assert {a.id for a in scanner.index.sorted_apps()} == {"local-1795972896863", "local-1795972905472", LIVE_APP}
        # What RPC can read, not the length the NameNode heard at the hflush (before: that, never read).
        assert scanner.records[f"hdfs://{ns}{live}"].size_of_last == BLOCK
        [entry] = source.skipped.entries()
        assert (entry.path, entry.reason) == (source.root, "webhdfs_unavailable")
        assert "does not answer" in entry.detail
        assert source.health()["state"] == "ok"  # WebHDFS has a breaker of its own
    finally:
        scanner.catalog.close()
        source.close()
        cluster.cmd(f"wclose {live}")
    timings.record("firewalled WebHDFS: scan", seconds=first)
