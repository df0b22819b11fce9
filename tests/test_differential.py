"""Differential test: sparkhist and the real SHS 4.0.1, same logs, same requests.

The corpus is written by real Spark (every codec, single files and rolling
directories, finished and killed mid-run). The real ``HistoryServer`` from the
pyspark jars serves it on one side, sparkhist (a scanned store, HTTP through the
whole server) on the other; every endpoint and query variant is requested from both
and compared: status, content type, and the body as parsed JSON (text for errors).

Only the differences in :data:`ALLOWED` are tolerated, each with its reason.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from support.conformance import blank_last_updated
from support.server import runtime_for

pytestmark = [pytest.mark.spark, pytest.mark.slow]

APP_LIST_QUERIES = [
    "", "?status=completed", "?status=running", "?status=RUNNING&status=Completed", "?limit=2", "?limit=-1",
    "?minDate=2020-01-01", "?maxDate=2015-02-11T20:41:30.000GMT", "?minEndDate=2020-01-01",
    "?maxEndDate=2099-01-01T00:00:00.000GMT", "?minDate=2026-01-01T00:00:00.000PST",
    "?status=bogus", "?minDate=notadate", "?limit=abc",
]
PER_APP = [
    "", "/jobs", "/jobs?status=succeeded", "/jobs?status=failed", "/jobs?status=running", "/jobs/999", "/jobs/abc",
    "/stages", "/stages?status=complete", "/stages?status=failed", "/stages?status=active", "/stages?status=skipped",
    "/stages?status=pending", "/stages?details=true", "/stages?withSummaries=true", "/stages?details=true&taskStatus=FAILED",
    "/stages?status=bogus", "/stages/99", "/stages/flimflam",
    "/executors", "/allexecutors", "/executors/driver/threads", "/allmiscellaneousprocess",
    "/storage/rdd", "/storage/rdd/999", "/environment",
    "/sql", "/sql?details=false&planDescription=false", "/sql?offset=1&length=1", "/sql?offset=1&length=0", "/sql/99", "/sql/abc",
    "/streaming/statistics", "/1", "/1/jobs", "/jobs/", "/executors/",
]
PER_STAGE = [
    "", "?details=true", "/0", "/0?withSummaries=true&quantiles=0.01,0.5,0.99", "/0/taskSummary",
    "/0/taskSummary?quantiles=0.1,0.9", "/0/taskSummary?quantiles=0.05,%200.5", "/0/taskSummary?quantiles=abc",
    "/0/taskList", "/0/taskList?offset=1&length=2&sortBy=-runtime", "/0/taskList?sortBy=runtime",
    "/0/taskList?status=success", "/0/taskList?status=FAILED", "/0/taskList?sortBy=bogus", "/7",
]

# path pattern -> why sparkhist differs from the real SHS there
ALLOWED: dict[str, str] = {}
WALL_CLOCK_WHEN_RUNNING = {"totalDuration", "duration"}


def _normalize(body: Any, running: bool) -> Any:
    body = blank_last_updated(body)
    if not running:
        return body

    def mask(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ("<now>" if k in WALL_CLOCK_WHEN_RUNNING else mask(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [mask(x) for x in v]
        return v

    return mask(body)


def _content_type(value: str) -> str:
    return value.split(";")[0].strip().lower()


def _compare(path: str, ours, theirs, running: bool) -> str | None:
    if ours.status_code != theirs.status_code:
        return f"status {ours.status_code} != {theirs.status_code}"
    ct_ours, ct_theirs = _content_type(ours.headers.get("content-type", "")), _content_type(theirs.headers.get("content-type", ""))
    if ct_ours != ct_theirs:
        return f"content type {ct_ours} != {ct_theirs}"
    if ct_theirs == "text/html":
        return None  # Jetty's error page: same status and type is the contract
    if ct_theirs == "application/octet-stream":
        a, b = zipfile.ZipFile(io.BytesIO(ours.content)), zipfile.ZipFile(io.BytesIO(theirs.content))
        if [i.filename for i in a.infolist()] != [i.filename for i in b.infolist()]:
            return "zip entries differ"
        if any(a.read(n) != b.read(n) for n in a.namelist()):
            return "zip contents differ"
        return None
    if ours.status_code == 200 and ct_theirs == "application/json":
        if _normalize(ours.json(), running) != _normalize(theirs.json(), running):
            return "body differs"
        return None
    return None if ours.text == theirs.text else f"text {ours.text!r} != {theirs.text!r}"


def _template(path: str) -> str:
    return re.sub(r"local-\d+", "{app}", re.sub(r"/stages/\d+", "/stages/{s}", path))


@pytest.fixture(scope="module")
def both(spark_corpus: Path, real_shs_on_corpus, tmp_path_factory):
    with runtime_for(spark_corpus, tmp_path_factory.mktemp("diff-store")) as (runtime, client):
        yield runtime, client, real_shs_on_corpus


def test_every_endpoint_matches_the_real_shs(both, corpus_manifest) -> None:
    runtime, client, shs = both
    running = {e["app_id"] for e in corpus_manifest if e["state"] != "finished"}
    paths: list[tuple[str, bool]] = [("/version", False)]
    paths += [("/applications" + q, False) for q in APP_LIST_QUERIES]
    paths += [("/applications/nope-app", False), ("/applications/nope-app/jobs", False), ("/foobar", False)]
    for entry in corpus_manifest:
        app = entry["app_id"]
        base = f"/applications/{app}"
        paths += [(base + p, app in running) for p in PER_APP]
        paths += [(base + "/logs", False)]
        stages = shs.get(base + "/stages").json()
        for stage in {s["stageId"] for s in stages}:
            paths += [(f"{base}/stages/{stage}{p}", app in running) for p in PER_STAGE]
        for job in {j["jobId"] for j in shs.get(base + "/jobs").json()}:
            paths.append((f"{base}/jobs/{job}", app in running))

    results: Counter[str] = Counter()
    mismatches: dict[str, str] = {}
    for path, is_running in paths:
        theirs = shs.get(path)
        ours = client.get("/api/v1" + path)
        problem = _compare(path, ours, theirs, is_running)
        template = _template(path)
        if problem is None:
            results[f"{template} ok"] += 1
        elif any(re.fullmatch(p, path) for p in ALLOWED):
            results[f"{template} allowed"] += 1
        else:
            mismatches[path] = problem
    total = sum(results.values()) + len(mismatches)
    print(f"\n{total} requests, {total - len(mismatches)} identical or allowed, {len(mismatches)} different")
    by_endpoint: Counter[str] = Counter()
    for key, n in results.items():
        by_endpoint[key.rsplit(" ", 1)[0]] += n
    for template, n in sorted(by_endpoint.items()):
        print(f"  {n:4d}  {template}")
    for path, problem in sorted(mismatches.items()):
        print(f"  DIFFERENT {path}: {problem}")
    assert mismatches == {}
