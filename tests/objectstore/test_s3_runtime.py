"""A whole sparkhist runtime over ``s3a://`` on a real S3 server (SeaweedFS).

* **Same answers**: the conformance logs (every codec, rolling, in-progress, several
  attempts) are uploaded to S3 and also copied to a local directory; two runtimes scan
  them (the S3 one with two indexing worker processes, which reach S3 through the
  settings alone) and every endpoint of every application is asked of both.
* **Faults**, each with the runtime on its default settings (3 s per request or listing
  page, 3 retries, breaker reset 10 s) and a ``TIMING`` line:
  the server stopped (connections refused) and started again; the server hung
  (SIGSTOP: connections accepted, nothing answered) and continued; a log truncated
  mid-line, then completed, then rewritten at the same size. During each outage every
  API answer comes from the store, unchanged, and ``/health/details`` says offline.
"""

from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sparkhist.config import load_settings
from sparkhist.server import Runtime, build_runtime
from support.differential import PER_APP, PER_STAGE, normalize
from support.metrics import scrape, value

from .conftest import Timings, put_all, upload_tree
from .servers import SeaweedFS

pytestmark = pytest.mark.slow

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"
SPARK_LOGS = CONFORMANCE / "spark-4.0.1" / "eventlogs"
APACHE_LOGS = CONFORMANCE / "apache-spark" / "spark-events"
#: Bounds for a loaded 2-core machine: the promise is "seconds", these are generous.
DETECT_LIMIT = 60.0
RECOVER_LIMIT = 60.0
OUTAGE_S = float(os.environ.get("SPARKHIST_S3_OUTAGE_S", "30"))


@contextmanager
def runtime_on(log_dir: str, store: Path, *, hadoop_conf: dict[str, str] | None = None,
               workers: int = 1) -> Iterator[tuple[Runtime, TestClient]]:
    flags: dict[str, Any] = {"log_dir": log_dir, "store_dir": str(store), "index_workers": workers}
    if hadoop_conf:
        flags["hadoop_conf"] = tuple(f"{k}={v}" for k, v in hadoop_conf.items())
    runtime = build_runtime(load_settings(flags, environ={}))
    assert runtime.loop.lock.try_acquire()
    try:
        with TestClient(runtime.app) as client:
            yield runtime, client
    finally:
        runtime.close()


def all_paths(client: TestClient) -> list[tuple[str, bool]]:
    """Every endpoint of every application and attempt (with its stages and jobs), and whether it runs."""
    paths: list[tuple[str, bool]] = [("/applications", False), ("/applications?status=running", False),
                                     ("/applications?status=completed", False)]
    for app in client.get("/api/v1/applications").json():
        running = not all(a.get("completed", True) for a in app["attempts"])
        bases = [f"/applications/{app['id']}"]
        bases += [f"/applications/{app['id']}/{a['attemptId']}" for a in app["attempts"] if "attemptId" in a]
        for base in bases:
            paths += [(base + p, running) for p in PER_APP if not p.startswith("/1")]
            paths.append((base + "/logs", False))
            stages = client.get("/api/v1" + base + "/stages")
            for stage in sorted({s["stageId"] for s in stages.json()} if stages.status_code == 200 else set()):
                paths += [(f"{base}/stages/{stage}{p}", running) for p in PER_STAGE]
            jobs = client.get("/api/v1" + base + "/jobs")
            for job in sorted({j["jobId"] for j in jobs.json()} if jobs.status_code == 200 else set()):
                paths.append((f"{base}/jobs/{job}", running))
    return paths


def same_answer(ours: Any, theirs: Any, running: bool) -> str | None:
    mine, other = (ours.status_code, ours.headers.get("content-type")), (theirs.status_code, theirs.headers.get("content-type"))
    if mine != other:
        return f"{mine} != {other}"
    if theirs.headers.get("content-type", "").startswith("application/json") and theirs.status_code == 200:
        return None if normalize(ours.json(), running) == normalize(theirs.json(), running) else "body differs"
    if theirs.headers.get("content-type", "").startswith("application/octet-stream"):
        # The same files with the same bytes; a rolling log's files come in each store's
        # listing order (S3: by key; a local directory: as the file system lists them), as
        # the SHS zips them.
        a, b = zipfile.ZipFile(io.BytesIO(ours.content)), zipfile.ZipFile(io.BytesIO(theirs.content))
        same = sorted(a.namelist()) == sorted(b.namelist()) and all(a.read(n) == b.read(n) for n in a.namelist())
        return None if same else "zip differs"
    return None if ours.content == theirs.content else "text differs"


def test_same_answers_from_s3_as_from_a_local_copy(seaweed: SeaweedFS, bucket: tuple[str, Any], tmp_path: Path,
                                                  timings: Timings) -> None:
    name, store = bucket
    local = tmp_path / "logs"
    shutil.copytree(SPARK_LOGS, local)
    for p in APACHE_LOGS.iterdir():
        shutil.copy(p, local / p.name)
    for p in [local, *local.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    t0 = time.monotonic()
    objects = upload_tree(store, local, "spark-events")
    upload = time.monotonic() - t0

    with runtime_on(str(local), tmp_path / "store-local") as (local_runtime, theirs), \
            runtime_on(f"s3a://{name}/spark-events", tmp_path / "store-s3", hadoop_conf=seaweed.hadoop_conf(),
                       workers=2) as (runtime, ours):
        assert local_runtime.scanner.scan_once().ok
        t0 = time.monotonic()
        report = runtime.scanner.scan_once()
        scan = time.monotonic() - t0
        assert report.ok and report.failed == 0, report
        calls = dict(runtime.source.inner.calls)  # this process's requests (the workers' are their own)
        paths = all_paths(theirs)
        apps = theirs.get("/api/v1/applications").json()
        assert len(apps) >= 25 and len(ours.get("/api/v1/applications").json()) == len(apps)
        mismatches = {}
        for path, running in paths:
            problem = same_answer(ours.get("/api/v1" + path), theirs.get("/api/v1" + path), running)
            if problem:
                mismatches[path] = problem
        assert mismatches == {}, dict(list(mismatches.items())[:20])
        # Rescan: nothing changed, nothing is read; the listing is one request a page.
        before = dict(runtime.source.inner.calls)
        rescan = runtime.scanner.scan_once()
        after = dict(runtime.source.inner.calls)
        assert rescan.ok and rescan.new == rescan.grown == 0
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
        assert delta == {"list": 1, "list_page": 1}, delta
    timings.record("s3 same answers", apps=len(apps), objects=objects, requests_compared=len(paths), upload=upload,
                   first_scan=scan, first_scan_calls=str(calls).replace(" ", ""))


def copy_some(store: Any, prefix: str) -> list[str]:
    names = ["local-1795972896863", "local-1795972905472.lz4", "local-1795972911639.snappy",
             "eventlog_v2_local-1795972918271"]
    for n in names:
        p = SPARK_LOGS / n
        if p.is_dir():
            put_all(store, [(f"{prefix}/{n}/{f.name}", f.read_bytes()) for f in p.iterdir()])
        else:
            put_all(store, [(f"{prefix}/{n}", p.read_bytes())])
    return ["local-1795972896863", "local-1795972905472", "local-1795972911639", "local-1795972918271"]


def answers(client: TestClient, apps: list[str]) -> dict[str, bytes]:
    out = {}
    for url in ["/api/v1/applications"] + [f"/api/v1/applications/{a}{r}" for a in apps
                                          for r in ("", "/jobs", "/stages", "/executors", "/environment")]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        out[url] = response.content
    return out


def outage(runtime: Runtime, client: TestClient, before: dict[str, bytes], apps: list[str],
           fault_at: float) -> dict[str, float | int]:
    """Scans until the breaker opens, then keeps scanning and asking the API for OUTAGE_S."""
    detect = breaker_open = None
    scans = []
    while time.monotonic() - fault_at < DETECT_LIMIT + 30:
        t0 = time.monotonic()
        report = runtime.scanner.scan_once()
        scans.append(time.monotonic() - t0)
        if not report.ok and detect is None:
            detect = time.monotonic() - fault_at
        if value(scrape(client), "sparkhist_source_breaker_state") == 2:
            breaker_open = time.monotonic() - fault_at
            break
        time.sleep(0.2)
    assert detect is not None and detect < DETECT_LIMIT, f"no failing scan within {DETECT_LIMIT}s"
    assert breaker_open is not None, "the breaker never opened"
    samples = scrape(client)
    assert value(samples, "sparkhist_source_up") == 0 and value(samples, "sparkhist_offline") == 1
    assert value(samples, "sparkhist_applications", status="completed") == len(apps), "no application dropped"
    doc = client.get("/health/details").json()
    assert doc["status"] == "degraded" and doc["offline"] is True, doc
    assert doc["sources"][0]["state"] == "offline" and doc["sources"][0]["lastError"]
    assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200
    t0 = time.monotonic()
    assert answers(client, apps) == before, "answers during the fault come from the store, unchanged"
    serve = time.monotonic() - t0
    t0 = time.monotonic()
    assert not runtime.scanner.scan_once().ok
    fast_fail = time.monotonic() - t0
    requests = 0
    while time.monotonic() - fault_at < OUTAGE_S:
        assert not runtime.scanner.scan_once().ok
        assert answers(client, apps) == before
        requests += len(before)
        time.sleep(1.0)
    return {"detect": detect, "breaker_open": breaker_open, "first_failed_scan": scans[0], "fast_fail_scan": fast_fail,
            "serve_all_during_fault": serve, "requests_during": requests}


def recovery(runtime: Runtime, client: TestClient, before: dict[str, bytes], apps: list[str], lifted_at: float) -> float:
    recover = None
    while time.monotonic() - lifted_at < RECOVER_LIMIT:
        if runtime.scanner.scan_once().ok:
            samples = scrape(client)
            if value(samples, "sparkhist_source_up") == 1 and value(samples, "sparkhist_source_breaker_state") == 0:
                recover = time.monotonic() - lifted_at
                break
        time.sleep(0.25)
    assert recover is not None, f"not recovered within {RECOVER_LIMIT}s"
    doc = client.get("/health/details").json()
    assert doc["offline"] is False and doc["sources"][0]["state"] == "ok", doc
    assert answers(client, apps) == before, "identical to the undisturbed answers"
    return recover


@pytest.mark.parametrize("fault", ["stopped", "hung"])
def test_runtime_serves_from_the_store_while_s3_is_gone(seaweed: SeaweedFS, bucket: tuple[str, Any], tmp_path: Path,
                                                       timings: Timings, fault: str) -> None:
    name, store = bucket
    apps = copy_some(store, "events")
    with runtime_on(f"s3a://{name}/events", tmp_path / "store", hadoop_conf=seaweed.hadoop_conf()) as (runtime, client):
        inner = runtime.source.inner
        assert (inner.timeout, inner.guard.breaker.reset_timeout) == (3.0, 10.0), "the defaults"
        report = runtime.scanner.scan_once()
        assert report.ok and report.failed == 0, report
        before = answers(client, apps)
        fault_at = time.monotonic()
        if fault == "stopped":
            seaweed.kill()
        else:
            seaweed.pause()
        try:
            figures = outage(runtime, client, before, apps, fault_at)
        finally:
            lifted_at = time.monotonic()
            if fault == "stopped":
                restart = seaweed.start()
            else:
                seaweed.resume()
                restart = 0.0
        recover = recovery(runtime, client, before, apps, lifted_at)
        health = inner.health()
        assert health["breaker"]["transitions"].get("open", 0) >= 1
    timings.record(f"s3 server {fault}", **figures, outage=time.monotonic() - fault_at, server_restart=restart,
                   recover_after_lift=recover, recover_after_server_up=recover - restart)


def test_truncated_then_completed_then_rewritten_log(seaweed: SeaweedFS, bucket: tuple[str, Any], tmp_path: Path,
                                                      timings: Timings) -> None:
    """A log cut mid-line (as a copy that stopped part-way leaves it), the whole log under
    the same key later (a bigger object: read on from where the last read stopped), then
    another object of the same size (a new ETag: read again from the start)."""
    name, store = bucket
    data = (SPARK_LOGS / "local-1795972896863").read_bytes()
    cut = data.index(b"\n", len(data) // 2) + 40  # mid-line
    store.put("events/local-1795972896863.inprogress", data[:cut])
    with runtime_on(f"s3a://{name}/events", tmp_path / "store", hadoop_conf=seaweed.hadoop_conf()) as (runtime, client):
        report = runtime.scanner.scan_once()
        assert report.ok and report.failed == 0, report
        apps = client.get("/api/v1/applications").json()
        assert [a["id"] for a in apps] == ["local-1795972896863"] and not apps[0]["attempts"][0]["completed"]
        partial_jobs = len(client.get("/api/v1/applications/local-1795972896863/jobs").json())

        store.put("events/local-1795972896863.inprogress", data)
        report = runtime.scanner.scan_once()
        assert report.ok and report.grown == 1, report
        assert report.bytes_read < len(data) - cut + 64 * 1024, "read on from where it stopped, not from the start"
        full_jobs = len(client.get("/api/v1/applications/local-1795972896863/jobs").json())
        assert full_jobs > partial_jobs

        version = client.get("/api/v1/applications/local-1795972896863").json()["attempts"][0]["appSparkVersion"]
        assert version == "4.0.1"

        # Same size, other bytes (the Spark version 4.0.1 -> 4.0.9): another object, a new ETag.
        rewritten = data.replace(b'"Spark Version":"4.0.1"', b'"Spark Version":"4.0.9"', 1)
        assert len(rewritten) == len(data) and rewritten != data
        store.put("events/local-1795972896863.inprogress", rewritten)
        report = runtime.scanner.scan_once()
        assert report.ok and report.grown == 1 and report.bytes_read >= len(data) - 64, "read again from the start"
        version = client.get("/api/v1/applications/local-1795972896863").json()["attempts"][0]["appSparkVersion"]
        assert version == "4.0.9", "the answers are the rewritten log's"
        assert len(client.get("/api/v1/applications/local-1795972896863/jobs").json()) == full_jobs
    timings.record("s3 truncated log", cut_at=cut, size=len(data))
