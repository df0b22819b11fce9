"""Scanner + API over a real HA HDFS, with faults *during* a scan (default settings).

Each scenario first indexes the same HDFS directory undisturbed into one store, then
again into a fresh store while the fault hits the scan (started from the scan's own
progress callback, so it lands between the scan's calls), lets the next scans catch up,
and requires every API answer to equal the undisturbed one: nothing lost, nothing
wrong. Printed ``TIMING`` lines: the disturbed scan's duration, how many scans it took
to be complete, the failed attempts the retries absorbed, and ``recover`` (from the
fault to the first complete scan). ``test_rescan_rpc_count`` counts NameNode calls.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sparkhist.scan.scanner import ScanReport

from .conftest import HdfsEnv, Timings
from .test_runtime_offline import APPS, EVENTLOGS, LOGS, answers, copy_into_hdfs, fresh_dir, hdfs_runtime

pytestmark = pytest.mark.slow

SCAN_LIMIT = 60.0


def baseline(env: HdfsEnv, base: str, store: Path, monkeypatch: pytest.MonkeyPatch, collect=answers) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    with hdfs_runtime(env, base, store, monkeypatch) as (runtime, client):
        report = runtime.scanner.scan_once()
        assert report.ok and report.failed == 0, report
        return collect(client)


def scan_until_complete(runtime, first: ScanReport, t_fault: float) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """Scans until one is clean; (scans it took including ``first``, seconds from the fault)."""
    report, scans = first, 1
    while not (report.ok and report.failed == 0):
        assert time.monotonic() - t_fault < SCAN_LIMIT, f"no complete scan within {SCAN_LIMIT}s: {report}"
        time.sleep(0.2)
        report = runtime.scanner.scan_once()
        scans += 1
    return scans, time.monotonic() - t_fault


def fault_on_first_progress(action) -> tuple:  # type: ignore[no-untyped-def]
    """A progress callback that starts ``action`` in a thread at the first call."""
    state: dict = {"thread": None, "t": None}

    def progress(done: int, total: int) -> None:
        if state["thread"] is None:
            state["t"] = time.monotonic()
            state["thread"] = threading.Thread(target=action, name="fault")
            state["thread"].start()

    return progress, state


def test_rescan_rpc_count(env: HdfsEnv, timings: Timings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """N unchanged rolling directories: a rescan costs 1 NameNode call (the root listing), not 1+N."""
    base = "/tests/scan-rpc"
    copy_into_hdfs(env, base)
    client = env.direct()
    src = EVENTLOGS / "eventlog_v2_local-1795972918271"
    extra = 8
    for i in range(extra):  # more completed rolling logs (copies under other names)
        d = f"{base}/eventlog_v2_local-{i:04d}"
        client.mkdirs(d)
        for f in src.iterdir():
            with client.create(f"{d}/{f.name.replace('1795972918271', f'{i:04d}')}") as w:
                w.write(f.read_bytes())
    rolling = 1 + extra
    with hdfs_runtime(env, base, tmp_path / "store", monkeypatch) as (runtime, _):
        first = runtime.scanner.scan_once()
        assert first.ok and first.failed == 0, first
        assert first.source_calls["list"] == 1 + rolling
        second = runtime.scanner.scan_once()
        assert second.ok and second.unchanged == len(LOGS) + extra
        assert second.source_calls == {"list": 1}, second.source_calls  # no stat, no open, no read
        assert second.rolling_reused == rolling
    timings.record("rescan RPCs", rolling_dirs=rolling, first_scan=str(first.source_calls).replace(" ", ""),
                   rescan_before=f"list={1 + rolling}", rescan_now=str(second.source_calls).replace(" ", ""))


def test_graceful_failover_during_a_scan(env: HdfsEnv, timings: Timings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = "/tests/scan-failover"
    copy_into_hdfs(env, base)
    expected = baseline(env, base, tmp_path / "undisturbed", monkeypatch)
    gap_ms = 500  # both NameNodes standby meanwhile, as while a ZKFC fences

    with hdfs_runtime(env, base, tmp_path / "store", monkeypatch) as (runtime, client):
        progress, fault = fault_on_first_progress(lambda: env.cluster.cmd(f"failover 0 1 {gap_ms}"))
        t0 = time.monotonic()
        report = runtime.scanner.scan_once(progress)
        scan_seconds = time.monotonic() - t0
        fault["thread"].join(60)
        scans, recover = scan_until_complete(runtime, report, fault["t"])
        assert env.cluster.state()["nn1"] == "active"
        assert answers(client) == expected, "identical to the undisturbed run"
        assert {a["id"] for a in client.get("/api/v1/applications").json()} == set(APPS)
        failed_attempts = runtime.source.inner.guard.failures.total()
        # The next scan after the failover goes straight to nn1.
        t1 = time.monotonic()
        assert runtime.scanner.scan_once().ok
        next_scan = time.monotonic() - t1
    timings.record("scan: graceful failover", scan=scan_seconds, scans_to_complete=scans, recover=recover,
                   failed_attempts=failed_attempts, next_scan=next_scan)


def test_active_namenode_killed_during_a_scan(
    env: HdfsEnv, timings: Timings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kill -9`` as the client sees it: every connection to nn0 reset and new ones refused
    at once, nn0 stopped; nn1 made active one second later (a ZKFC's reaction)."""
    base = "/tests/scan-kill"
    copy_into_hdfs(env, base)
    expected = baseline(env, base, tmp_path / "undisturbed", monkeypatch)
    times: dict[str, float] = {}
    during: list[int] = []
    api = {}

    def crash() -> None:
        env.rpc[0].refuse()
        env.http[0].refuse()
        env.rpc[0].cut()
        env.http[0].cut()
        env.cluster.cmd("kill 0")
        t = time.monotonic()
        while time.monotonic() - t < 1.0:  # the API while no NameNode is active: from the store
            during.append(api["client"].get("/api/v1/applications").status_code)
            time.sleep(0.1)
        t = time.monotonic()
        env.cluster.cmd("active 1")
        times["failover_cmd"] = time.monotonic() - t

    with hdfs_runtime(env, base, tmp_path / "store", monkeypatch) as (runtime, client):
        api["client"] = client
        progress, fault = fault_on_first_progress(crash)
        t0 = time.monotonic()
        report = runtime.scanner.scan_once(progress)
        scan_seconds = time.monotonic() - t0
        fault["thread"].join(60)
        scans, recover = scan_until_complete(runtime, report, fault["t"])
        assert during and set(during) == {200}, during
        assert answers(client) == expected, "identical to the undisturbed run"
        inner = runtime.source.inner
        failed_attempts = inner.guard.failures.total()
        assert inner.order[0] == "nn1", inner.order
        assert inner.health()["state"] == "ok"
    timings.record("scan: kill active nn", scan=scan_seconds, scans_to_complete=scans, recover=recover,
                   failover_cmd=times.get("failover_cmd", -1.0), failed_attempts=failed_attempts)


def test_active_namenode_hangs_during_a_scan(
    env: HdfsEnv, timings: Timings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nn0 black-holed (accepts, never answers) and nn1 made active: the scan loses one
    deadline (3 s by default), rotates to nn1 and completes; later scans never wait."""
    base = "/tests/scan-hang"
    copy_into_hdfs(env, base)
    expected = baseline(env, base, tmp_path / "undisturbed", monkeypatch)

    def hang() -> None:
        env.rpc[0].blackhole()
        env.http[0].blackhole()
        env.rpc[0].cut()  # the open connection hangs too (its bytes go nowhere from now on)
        env.http[0].cut()
        env.cluster.cmd("failover 0 1")

    with hdfs_runtime(env, base, tmp_path / "store", monkeypatch) as (runtime, client):
        progress, fault = fault_on_first_progress(hang)
        t0 = time.monotonic()
        report = runtime.scanner.scan_once(progress)
        scan_seconds = time.monotonic() - t0
        fault["thread"].join(60)
        scans, recover = scan_until_complete(runtime, report, fault["t"])
        assert answers(client) == expected, "identical to the undisturbed run"
        inner = runtime.source.inner
        assert inner.order[0] == "nn1", inner.order
        assert recover < 3.0 + 1.0 + 5.0, "about one deadline and one probe (+ slack for a loaded machine)"
        t1 = time.monotonic()
        assert runtime.scanner.scan_once().ok
        next_scan = time.monotonic() - t1
        assert next_scan < 1.0
    timings.record("scan: active nn hangs", scan=scan_seconds, scans_to_complete=scans, recover=recover,
                   failed_attempts=inner.guard.failures.total(), next_scan=next_scan)


def test_datanode_lost_while_the_scanner_reads(env: HdfsEnv, timings: Timings, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A 6 MB event log (6 blocks, 2 replicas): DataNode 0 stops after the scan's third
    read; the rest comes from the other replicas, and the answers are unchanged."""
    base = "/tests/scan-datanode"
    client = fresh_dir(env, base)
    lines = (EVENTLOGS / "local-1795972896863").read_bytes().splitlines(keepends=True)
    pad = b'{"Event":"org.example.Padding","pad":"%s"}\n' % (b"x" * 1000)  # unknown event: skipped
    body = lines[:-1] + [pad] * 6000 + lines[-1:]
    with client.create(f"{base}/local-1795972896863") as w:
        w.write(b"".join(body))
    collect = lambda c: answers_for(c, "local-1795972896863")  # noqa: E731
    expected = baseline(env, base, tmp_path / "undisturbed", monkeypatch, collect)

    with hdfs_runtime(env, base, tmp_path / "store", monkeypatch) as (runtime, api):
        inner = runtime.source.inner
        inner.chunk_size = 512 << 10  # more reads per log, so the fault lands mid-read
        real = inner._read_rpc
        reads = {"n": 0, "after_kill": [], "killed": None}

        def read_rpc(p, holder, pos, size):  # type: ignore[no-untyped-def]
            reads["n"] += 1
            if reads["n"] == 3:
                env.cluster.cmd("killdn 0")
                reads["killed"] = time.monotonic()
            t = time.monotonic()
            out = real(p, holder, pos, size)
            if reads["killed"] is not None:
                reads["after_kill"].append(time.monotonic() - t)
            return out

        monkeypatch.setattr(inner, "_read_rpc", read_rpc)
        report = runtime.scanner.scan_once()
        scans, recover = scan_until_complete(runtime, report, reads["killed"] or time.monotonic())
        assert reads["killed"] is not None, "the log was read in more than 3 chunks"
        assert collect(api) == expected, "identical to the undisturbed run"
        failures = inner.guard.failures["read"]
    timings.record("scan: datanode lost mid-read", worst_read_after_kill=max(reads["after_kill"]), scans_to_complete=scans,
                   recover=recover, read_failures_retried=failures)


def answers_for(client, app: str) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    out = {}
    resources = ("", "/jobs", "/stages", "/executors", "/environment", "/allexecutors")
    for url in ["/api/v1/applications"] + [f"/api/v1/applications/{app}{r}" for r in resources]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        out[url] = response.content
    return out


def test_indexing_workers_reach_hdfs_through_the_settings_alone(env: HdfsEnv, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``--hadoop-conf-dir`` given as a setting, not in the environment: the worker
    processes that do the full indexing must resolve the nameservice with it too."""
    from starlette.testclient import TestClient

    from sparkhist.config import load_settings
    from sparkhist.server import build_runtime

    base = "/tests/scan-workers"
    copy_into_hdfs(env, base)
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)  # spawned workers inherit the environment
    settings = load_settings({"log_dir": f"hdfs://{env.ns}{base}", "store_dir": str(tmp_path / "store"),
                              "hadoop_conf_dir": env.conf_dir, "index_workers": 2}, environ={})
    runtime = build_runtime(settings)
    try:
        assert runtime.scanner.pool is not None, "full indexing runs in worker processes"
        report = runtime.scanner.scan_once()
        assert report.ok and report.failed == 0, report
        with TestClient(runtime.app) as client:
            assert {a["id"] for a in client.get("/api/v1/applications").json()} == set(APPS)
            for app in APPS:
                assert client.get(f"/api/v1/applications/{app}/stages").status_code == 200
            assert runtime.states.builds == 0, "every app was indexed by a worker, not rebuilt on request"
    finally:
        runtime.close()


#: Hadoop's metrics reach JMX through a cache of this many seconds (metrics2's default jmx cache TTL is 10 s).
JMX_CACHE = 11.0


def _listing_rpcs(env: HdfsEnv) -> int:
    """getListing RPCs the NameNodes served so far (one per page), from their own JMX counters,
    read once the JMX cache of every earlier reading has expired. Each JVM counted once (the
    harness may run both NameNodes in one JVM: both HTTP servers then show the same beans)."""
    import httpx

    assert env.cluster.ready is not None
    time.sleep(JMX_CACHE)
    by_jvm: dict[str, int] = {}
    for host, port in env.cluster.ready.http:
        url = f"http://{host}:{port}/jmx"
        jvm = httpx.get(url, params={"qry": "java.lang:type=Runtime"}, timeout=10).json()["beans"][0]["Name"]
        beans = httpx.get(url, params={"qry": "Hadoop:service=NameNode,name=NameNodeActivity*"}, timeout=10).json()
        by_jvm[jvm] = sum(int(bean["GetListingOps"]) for bean in beans["beans"])
    return sum(by_jvm.values())


def test_unchanged_rescan_costs_one_listing_rpc_per_page(env: HdfsEnv, timings: Timings, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: a scan of an unchanged directory costs at most one listing RPC per page of
    ``dfs.ls.limit`` (1000) entries, as the NameNodes count them (``GetListingOps``)."""
    base = "/tests/scan-pages"
    copy_into_hdfs(env, base)
    client = env.direct()
    extra = 2100  # entries that are no log (plain directories): listed, passed over; the root is 3 pages
    for i in range(extra):
        client.mkdirs(f"{base}/not-a-log-{i:05d}")
    pages = -(-(len(LOGS) + extra) // 1000)
    with hdfs_runtime(env, base, tmp_path / "store", monkeypatch) as (runtime, _):
        first = runtime.scanner.scan_once()
        assert first.ok and first.failed == 0, first
        before = _listing_rpcs(env)
        second = runtime.scanner.scan_once()
        rpcs = _listing_rpcs(env) - before
        assert second.ok and second.unchanged == len(LOGS), second
        assert second.source_calls == {"list": 1}, second.source_calls
        assert 1 <= rpcs <= pages, f"{rpcs} getListing RPCs for {pages} pages"
    timings.record("unchanged rescan, listing RPCs", entries=len(LOGS) + extra, pages=pages, rpcs=rpcs)
