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

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Timings, put_all, upload_tree
from .runtime_checks import (
    SOME_APPS,
    SOME_LOGS,
    SPARK_LOGS,
    answers,
    compare_with_local,
    outage,
    recovery,
    runtime_on,
    scanned_beside_local,
)
from .servers import SeaweedFS

pytestmark = pytest.mark.slow


def test_same_answers_from_s3_as_from_a_local_copy(seaweed: SeaweedFS, bucket: tuple[str, Any], tmp_path: Path,
                                                  timings: Timings) -> None:
    name, store = bucket
    with scanned_beside_local(f"s3a://{name}/spark-events", tmp_path, seaweed.hadoop_conf(),
                              lambda local: upload_tree(store, local, "spark-events")) as done:
        # Rescan: nothing changed, nothing is read; the listing is one request a page.
        runtime = done.runtime
        before = dict(runtime.source.inner.calls)
        rescan = runtime.scanner.scan_once()
        after = dict(runtime.source.inner.calls)
        assert rescan.ok and rescan.new == rescan.grown == 0
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
        assert delta == {"list": 1, "list_page": 1}, delta
    timings.record("s3 same answers", apps=done.apps, objects=done.objects, requests_compared=done.requests,
                   upload=done.upload_s, first_scan=done.first_scan_s,
                   first_scan_calls=str(done.first_scan_calls).replace(" ", ""))


def copy_some(store: Any, prefix: str) -> list[str]:
    for n in SOME_LOGS:
        p = SPARK_LOGS / n
        if p.is_dir():
            put_all(store, [(f"{prefix}/{n}/{f.name}", f.read_bytes()) for f in p.iterdir()])
        else:
            put_all(store, [(f"{prefix}/{n}", p.read_bytes())])
    return SOME_APPS


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


@pytest.mark.spark
def test_logs_appear_as_s3a_makes_them_visible(seaweed: SeaweedFS, bucket: tuple[str, Any], tmp_path: Path,
                                               spark_corpus: Path, timings: Timings) -> None:
    """What S3A shows while Spark writes: a rolling log's ``appstatus_*.inprogress`` marker
    at once and each ``events_N`` file when it has rolled; the last one and the final
    ``appstatus_*`` when the application ends (a copy, then a delete of the marker). Each
    scan reads only the new file, and the finished log answers as a local copy does."""
    name, store = bucket
    rolling = next(p for p in sorted(spark_corpus.glob("eventlog_v2_*"))
                   if len(list(p.glob("events_*"))) >= 3 and not list(p.glob("appstatus_*.inprogress")))
    app = rolling.name[len("eventlog_v2_"):]
    events = sorted(rolling.glob("events_*"), key=lambda p: int(p.name.split("_")[1]))
    prefix = f"events/{rolling.name}"
    store.put(f"{prefix}/appstatus_{app}.inprogress", b"")
    with runtime_on(f"s3a://{name}/events", tmp_path / "store", hadoop_conf=seaweed.hadoop_conf()) as (runtime, client):
        report = runtime.scanner.scan_once()
        assert report.ok and report.failed == 1, "a rolling log with no events file yet: its layout error alone"
        read = []
        for i, f in enumerate(events):
            store.put(f"{prefix}/{f.name}", f.read_bytes())
            report = runtime.scanner.scan_once()
            assert report.ok and report.failed == 0, report
            assert (report.new, report.grown) == ((1, 0) if i == 0 else (0, 1)), report
            read.append(report.bytes_read)
            apps = {a["id"]: a for a in client.get("/api/v1/applications").json()}
            if i < len(events) - 1:  # the last file holds the ApplicationEnd event
                assert not apps[app]["attempts"][0]["completed"]
        for i, f in enumerate(events):
            assert read[i] <= f.stat().st_size + 64 * 1024, (i, read, "only the new file is read")
        store.put(f"{prefix}/appstatus_{app}", b"")
        store.delete(f"{prefix}/appstatus_{app}.inprogress")
        report = runtime.scanner.scan_once()
        assert report.ok and report.grown == 1, report
        assert client.get("/api/v1/applications").json()[0]["attempts"][0]["completed"]
        local = tmp_path / "local"
        local.mkdir()
        shutil.copytree(rolling, local / rolling.name)
        with runtime_on(str(local), tmp_path / "store-local") as (local_runtime, theirs):
            apps, requests = compare_with_local(client, local_runtime, theirs)
    timings.record("s3 rolling log file by file", files=len(events), bytes_read_per_scan=str(read).replace(" ", ""),
                   requests_compared=requests)
