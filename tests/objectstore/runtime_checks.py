"""What the object-store runtime tests share: a runtime over a log-directory URL, the
comparison of every endpoint of every application, and the outage and recovery checks.

No test-only tuning: the runtimes run on the default settings (3 s per request or
listing page, 3 retries, breaker reset 10 s), so the printed times are what an operator
gets out of the box.
"""

from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from sparkhist.config import load_settings
from sparkhist.server import Runtime, build_runtime
from support.differential import PER_APP, PER_STAGE, normalize, without_log_source
from support.metrics import scrape, seconds_until_recovered, value

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"
SPARK_LOGS = CONFORMANCE / "spark-4.0.1" / "eventlogs"
APACHE_LOGS = CONFORMANCE / "apache-spark" / "spark-events"
#: Bounds for a loaded 2-core machine: the promise is "seconds", these are generous.
DETECT_LIMIT = 60.0
RECOVER_LIMIT = 60.0
OUTAGE_S = float(os.environ.get("SPARKHIST_S3_OUTAGE_S", "30"))
#: Four logs of the corpus (plain, lz4, snappy, rolling) and their applications, for the fault tests.
SOME_LOGS = ("local-1795972896863", "local-1795972905472.lz4", "local-1795972911639.snappy",
             "eventlog_v2_local-1795972918271")
SOME_APPS = ["local-1795972896863", "local-1795972905472", "local-1795972911639", "local-1795972918271"]


def local_corpus(dest: Path) -> Path:
    """A writable local copy of the conformance logs: Spark 4.0.1's and the Apache SHS suite's."""
    shutil.copytree(SPARK_LOGS, dest)
    for p in APACHE_LOGS.iterdir():
        shutil.copy(p, dest / p.name)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


def compare_with_local(ours: TestClient, local_runtime: Runtime, theirs: TestClient) -> tuple[int, int]:
    """Scans the local one, asks both every endpoint of every application; (applications, requests)."""
    assert local_runtime.scanner.scan_once().ok
    paths = all_paths(theirs)
    apps = theirs.get("/api/v1/applications").json()
    assert len(ours.get("/api/v1/applications").json()) == len(apps)
    mismatches = {}
    for path, running in paths:
        problem = same_answer(ours.get("/api/v1" + path), theirs.get("/api/v1" + path), running)
        if problem:
            mismatches[path] = problem
    assert mismatches == {}, dict(list(mismatches.items())[:20])
    return len(apps), len(paths)


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


@dataclass(frozen=True)
class BesideLocal:
    """A runtime over an object store, scanned once and compared with a local copy's."""

    runtime: Runtime
    apps: int
    requests: int
    objects: int
    upload_s: float
    first_scan_s: float
    first_scan_calls: dict[str, int]  # this process's requests in the first scan (the workers' are their own)


@contextmanager
def scanned_beside_local(log_url: str, tmp_path: Path, hadoop_conf: dict[str, str],
                         upload: Callable[[Path], int]) -> Iterator[BesideLocal]:
    """The conformance logs copied locally and ``upload``ed (it returns the objects written) to
    the store ``log_url`` names; a runtime over each (the remote one with two indexing worker
    processes), the remote one scanned once without failure, and every endpoint of every
    application asked of both: the remote runtime stays open for more checks."""
    local = local_corpus(tmp_path / "logs")
    t0 = time.monotonic()
    objects = upload(local)
    uploaded = time.monotonic() - t0
    with runtime_on(str(local), tmp_path / "store-local") as (local_runtime, theirs), \
            runtime_on(log_url, tmp_path / "store-remote", hadoop_conf=hadoop_conf, workers=2) as (runtime, ours):
        t0 = time.monotonic()
        report = runtime.scanner.scan_once()
        scan = time.monotonic() - t0
        assert report.ok and report.failed == 0, report
        calls = dict(runtime.source.inner.calls)
        apps, requests = compare_with_local(ours, local_runtime, theirs)
        assert apps >= 25
        yield BesideLocal(runtime, apps, requests, objects, uploaded, scan, calls)


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
        # the same logs from another place: only the attempts' log directory may differ
        same = without_log_source(normalize(ours.json(), running)) == without_log_source(normalize(theirs.json(), running))
        return None if same else "body differs"
    if theirs.headers.get("content-type", "").startswith("application/octet-stream"):
        # The same files with the same bytes; a rolling log's files come in each store's
        # listing order (S3: by key; a local directory: as the file system lists them), as
        # the SHS zips them.
        a, b = zipfile.ZipFile(io.BytesIO(ours.content)), zipfile.ZipFile(io.BytesIO(theirs.content))
        same = sorted(a.namelist()) == sorted(b.namelist()) and all(a.read(n) == b.read(n) for n in a.namelist())
        return None if same else "zip differs"
    return None if ours.content == theirs.content else "text differs"


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
    recover = seconds_until_recovered(runtime, client, lifted_at, RECOVER_LIMIT)
    assert recover is not None, f"not recovered within {RECOVER_LIMIT}s"
    doc = client.get("/health/details").json()
    assert doc["offline"] is False and doc["sources"][0]["state"] == "ok", doc
    assert answers(client, apps) == before, "identical to the undisturbed answers"
    return recover
