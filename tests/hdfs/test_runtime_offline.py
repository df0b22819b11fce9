"""A whole sparkhist runtime over a real HA HDFS, with both NameNodes taken away and back.

``build_runtime`` opens ``hdfs://<nameservice>/<dir>`` through the harness's client
configuration (``HADOOP_CONF_DIR``), whose NameNode addresses are the TCP proxies of
``conftest.py``. Real Spark 4.0.1 event logs are copied into HDFS. While both
NameNodes are unreachable (``refuse``: connections refused; ``blackhole``: accepted,
never answered), every API answer must come from the store, unchanged; a scan fails
without dropping an application; ``/health/details`` and ``/metrics`` say offline, with
the breaker open. The outage lasts a minute (``SPARKHIST_HDFS_OUTAGE_S``), scans and API
requests going on all along. Once the proxies pass again the next scans recover by themselves.

Each scenario prints a ``TIMING`` line: ``detect`` is the time from the fault to the
first failed scan (``sparkhist_source_up`` 0 at that point), ``recover`` from lifting
the fault to the first successful scan with the metrics back to up/closed.

No test-only tuning: the runtime runs with the default settings (``SPARKHIST_SOURCE_*``:
3 s per NameNode call or listing page, 3 retries within 3 deadlines, breaker reset
10 s), so the printed times are what an operator gets out of the box. Before those
defaults (one deadline for a whole listing, 3 attempts, 30 s breaker reset, even with
the test's 2 s/4 s tuning) the black-hole case measured detect=15.4 s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sparkhist.config import load_settings
from sparkhist.server import Runtime, build_runtime
from support.metrics import scrape, seconds_until_recovered, value

from .conftest import HdfsEnv, Timings

pytestmark = pytest.mark.slow

EVENTLOGS = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "spark-4.0.1" / "eventlogs"
LOGS = ("local-1795972896863", "local-1795972905472.lz4", "local-1795972911639.snappy", "eventlog_v2_local-1795972918271")
APPS = ("local-1795972896863", "local-1795972905472", "local-1795972911639", "local-1795972918271")
PER_APP = ("", "/jobs", "/stages", "/executors", "/environment", "/allexecutors")
#: Bounds for a loaded 2-core machine: the promise is "seconds", these are generous.
DETECT_LIMIT = 60.0
RECOVER_LIMIT = 60.0
#: How long the whole cluster stays unreachable (the issue's scenario: a minute).
OUTAGE_S = float(os.environ.get("SPARKHIST_HDFS_OUTAGE_S", "60"))


def fresh_dir(env: HdfsEnv, base: str) -> Any:
    """An empty HDFS directory ``base`` (whatever an earlier run left there is deleted);
    returns the direct client that made it."""
    client = env.direct()
    try:
        client.delete(base, True)
    except FileNotFoundError:
        pass
    client.mkdirs(base, create_parent=True)
    return client


def copy_into_hdfs(env: HdfsEnv, base: str) -> None:
    if not EVENTLOGS.is_dir():
        pytest.skip(f"no conformance logs at {EVENTLOGS}")
    client = fresh_dir(env, base)
    for name in LOGS:
        local = EVENTLOGS / name
        files = sorted(local.iterdir()) if local.is_dir() else [local]
        if local.is_dir():
            client.mkdirs(f"{base}/{name}")
        for f in files:
            dest = f"{base}/{name}/{f.name}" if local.is_dir() else f"{base}/{name}"
            with client.create(dest) as w:
                w.write(f.read_bytes())


@contextmanager
def hdfs_runtime(env: HdfsEnv, base: str, store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Runtime, TestClient]]:
    monkeypatch.setenv("HADOOP_CONF_DIR", env.conf_dir)
    settings = load_settings({"log_dir": f"hdfs://{env.ns}{base}", "store_dir": str(store), "index_workers": 1}, environ={})
    runtime = build_runtime(settings)
    inner = runtime.source.inner
    assert (inner.rpc_timeout, inner.list_timeout, inner.guard.breaker.reset_timeout) == (3.0, 3.0, 10.0), "the defaults"
    assert runtime.loop.lock.try_acquire()
    try:
        with TestClient(runtime.app) as client:
            yield runtime, client
    finally:
        runtime.close()


def answers(client: TestClient) -> dict[str, bytes]:
    out = {}
    for url in ["/api/v1/applications"] + [f"/api/v1/applications/{a}{r}" for a in APPS for r in PER_APP]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        out[url] = response.content
    return out


def set_fault(env: HdfsEnv, mode: str) -> None:
    for p in (*env.rpc, *env.http):
        getattr(p, mode)()
        p.cut()  # connections already open see the fault too


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_runtime_serves_from_the_store_while_hdfs_is_unreachable(env: HdfsEnv, timings: Timings, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    base = f"/tests/runtime-{mode}"
    copy_into_hdfs(env, base)
    with hdfs_runtime(env, base, tmp_path / "store", monkeypatch) as (runtime, client):
        report = runtime.scanner.scan_once()
        assert report.ok and report.failed == 0, report
        listed = {a["id"] for a in client.get("/api/v1/applications").json()}
        assert listed == set(APPS)
        before = answers(client)
        samples = scrape(client)
        assert value(samples, "sparkhist_source_up") == 1 and value(samples, "sparkhist_source_breaker_state") == 0

        # -- fault: both NameNodes (RPC and HTTP) unreachable ---------------------------------
        fault_wall = time.time()
        t_fault = time.monotonic()
        set_fault(env, mode)
        failed_scans = 0
        detect = None
        scan_seconds = []
        while time.monotonic() - t_fault < DETECT_LIMIT + 30:
            t0 = time.monotonic()
            report = runtime.scanner.scan_once()
            scan_seconds.append(time.monotonic() - t0)
            if not report.ok:
                failed_scans += 1
                if detect is None:
                    detect = time.monotonic() - t_fault
                if value(scrape(client), "sparkhist_source_breaker_state") == 2:
                    break
            time.sleep(0.2)
        assert detect is not None and detect < DETECT_LIMIT, f"no failing scan within {DETECT_LIMIT}s"
        assert report.source_error, report

        samples = scrape(client)
        assert value(samples, "sparkhist_source_up") == 0
        assert value(samples, "sparkhist_offline") == 1
        assert value(samples, "sparkhist_source_state", state="offline") == 1
        assert value(samples, "sparkhist_source_breaker_state") == 2, "the breaker opened"
        assert value(samples, "sparkhist_scans_total", outcome="failed") >= 1
        assert value(samples, "sparkhist_applications", status="completed") == len(APPS), "no application dropped"

        doc = client.get("/health/details").json()
        assert doc["status"] == "degraded" and doc["offline"] is True
        src = doc["sources"][0]
        assert src["state"] == "offline" and src["lastError"], src
        assert any("offline" in r for r in doc["reasons"]), doc["reasons"]
        since = datetime.strptime(src["since"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
        assert fault_wall - 1 <= since <= time.time() + 1, ("offline since the fault", src["since"])
        assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200

        t_serve = time.monotonic()
        during = answers(client)
        serve_seconds = time.monotonic() - t_serve
        assert during == before, "answers during the fault come from the store, unchanged"
        assert {a["id"] for a in client.get("/api/v1/applications").json()} == set(APPS)
        # One more failing scan (breaker open: fails fast) still drops nothing.
        t0 = time.monotonic()
        assert not runtime.scanner.scan_once().ok
        fast_fail = time.monotonic() - t0
        assert answers(client) == before

        # The outage lasts a minute: scans keep failing (at once while the breaker is open,
        # one deadline when it half-opens to probe); every API request is answered from the store.
        requests_during = 0
        while time.monotonic() - t_fault < OUTAGE_S:
            assert not runtime.scanner.scan_once().ok
            assert answers(client) == before
            requests_during += len(before)
            time.sleep(1.0)
        outage = time.monotonic() - t_fault

        # -- lift the fault ---------------------------------------------------------------------
        env.all_pass()
        t_lift = time.monotonic()
        recover = seconds_until_recovered(runtime, client, t_lift, RECOVER_LIMIT)
        assert recover is not None, f"not recovered within {RECOVER_LIMIT}s"
        samples = scrape(client)
        assert value(samples, "sparkhist_offline") == 0
        assert value(samples, "sparkhist_source_state", state="ok") == 1
        doc = client.get("/health/details").json()
        assert doc["offline"] is False and doc["sources"][0]["state"] == "ok", doc
        assert answers(client) == before, "identical to the undisturbed answers"
    timings.record(f"runtime offline ({mode})", outage=outage, requests_during=requests_during, detect=detect,
                   recover=recover, failed_scans=failed_scans,
                   first_failed_scan=scan_seconds[0], fast_fail_scan=fast_fail, serve_all_during_fault=serve_seconds)


def test_namenode_failover_recovery_objective(env: HdfsEnv, timings: Timings, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Recovery objective (e): NameNode failover < 30 s until a scan succeeds again.

    First a graceful failover (nn0 standby, nn1 active; the runtime's client still tries
    nn0 first), then the old active one unreachable as after a crash (its proxy refuses).
    """
    base = "/tests/runtime-failover"
    copy_into_hdfs(env, base)
    with hdfs_runtime(env, base, tmp_path / "store", monkeypatch) as (runtime, client):
        assert runtime.scanner.scan_once().ok
        before = answers(client)
        t0 = time.monotonic()
        env.cluster.cmd("failover 0 1")
        recover = None
        while time.monotonic() - t0 < 60:
            if runtime.scanner.scan_once().ok:
                recover = time.monotonic() - t0
                break
            time.sleep(0.2)
        assert recover is not None and recover < 30.0, f"failover recovery {recover}s breaks the < 30 s objective"
        # And with the old active one unreachable (its proxy refuses), as after a crash.
        env.rpc[0].refuse()
        env.rpc[0].cut()
        t1 = time.monotonic()
        recover2 = None
        while time.monotonic() - t1 < 60:
            if runtime.scanner.scan_once().ok:
                recover2 = time.monotonic() - t1
                break
            time.sleep(0.2)
        assert recover2 is not None and recover2 < 30.0, f"recovery with nn0 gone {recover2}s breaks the < 30 s objective"
        assert answers(client) == before
    timings.record("objective: NN failover", recover=recover, recover_old_active_gone=recover2, objective="<30s")
