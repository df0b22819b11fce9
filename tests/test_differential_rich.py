"""Differential test on the rich corpus: the whole REST API v1, answer for answer.

``test_differential.py`` compares sparkhist with the real SHS 4.0.1 over the base
corpus (codecs, layouts, crashed drivers). This does the same over
``support/rich_corpus.py``'s apps: joins and AQE, a failing SQL query, cached and
unpersisted RDDs in a still-running app, retried and killed tasks, a fetch failure
that re-runs a stage, a SIGKILLed executor, streaming. Beyond the base test's
variants it asks for every stage *attempt*, every job, SQL execution, executor and
RDD id, and the streaming endpoints.

The comparison itself (status, content type, parsed JSON, error text, zip entries)
and the normalisation (``lastUpdated``; wall-clock durations of running apps) are
``support/differential.py``'s, shared with the base test. Only the differences in :data:`ALLOWED` are
tolerated, each with its reason; everything else fails the test with the exact
field-level differences printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.differential import APP_LIST_QUERIES, PER_APP, PER_STAGE, Comparison, as_configured
from support.real_shs import RealShs
from support.rich_corpus import ensure_rich_corpus, load_manifest
from support.spark_setup import real_shs_and_runtime, require_spark

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: Per-app variants beyond the base test's :data:`PER_APP`.
RICH_PER_APP = [
    "/jobs?status=failed&status=SUCCEEDED", "/jobs?status=unknown",
    "/stages?status=complete&status=failed", "/stages?details=true&taskStatus=KILLED",
    "/stages?details=true&taskStatus=SUCCESS&taskStatus=failed", "/stages?details=true&withSummaries=true",
    "/stages?withSummaries=true&quantiles=0.1,0.9", "/stages?details=false&taskStatus=FAILED",
    "/sql?details=true", "/sql?planDescription=false", "/sql?offset=2&length=3", "/sql?offset=100&length=5",
    "/streaming/receivers", "/streaming/receivers/0", "/streaming/batches", "/streaming/batches?status=completed",
    "/streaming/batches/0", "/streaming/batches/0/operations", "/streaming/batches/0/operations/0",
    "/storage/rdd/", "/allexecutors/", "/environment/",
]
#: Per stage-attempt variants; ``{a}`` is the attempt id. :data:`PER_STAGE` asks attempt 0 only.
PER_ATTEMPT = [
    "/{a}", "/{a}?details=false", "/{a}?withSummaries=true", "/{a}?details=true&taskStatus=FAILED",
    "/{a}?details=true&taskStatus=killed", "/{a}/taskSummary", "/{a}/taskSummary?quantiles=0,0.5,1",
    "/{a}/taskList", "/{a}/taskList?length=200", "/{a}/taskList?status=failed", "/{a}/taskList?status=KILLED",
    "/{a}/taskList?status=running", "/{a}/taskList?sortBy=-runtime&length=3", "/{a}/taskList?offset=2&length=2",
]
PER_SQL = ["", "?details=false", "?planDescription=false", "?details=false&planDescription=false"]

# path pattern (re.fullmatch) -> why sparkhist may differ from the real SHS there
ALLOWED: dict[str, str] = {}


@pytest.fixture(scope="module")
def rich_corpus() -> Path:
    """The rich corpus's event-log directory (cached; the first run takes a few minutes)."""
    require_spark()
    return ensure_rich_corpus()


@pytest.fixture(scope="module")
def rich_manifest(rich_corpus: Path) -> list[dict[str, Any]]:
    return load_manifest(rich_corpus)


@pytest.fixture(scope="module")
def rich_both(rich_corpus: Path, rich_manifest, tmp_path_factory) -> Iterator[tuple[Any, RealShs]]:
    with real_shs_and_runtime(rich_corpus, len(rich_manifest), tmp_path_factory.mktemp("rich-diff-store"),
                              as_configured(rich_corpus)) as both:
        yield both


def _template(path: str) -> str:
    """The endpoint a path belongs to, for counting: ids replaced by placeholders."""
    path = re.sub(r"(local-\d+|app-\d+-\d+)", "{app}", path)
    path = re.sub(r"/stages/\d+(/\d+)?", lambda m: "/stages/{s}" + ("/{a}" if m[1] else ""), path)
    path = re.sub(r"/jobs/\d+", "/jobs/{j}", path)
    path = re.sub(r"/sql/\d+", "/sql/{q}", path)
    path = re.sub(r"/storage/rdd/\d+", "/storage/rdd/{r}", path)
    return re.sub(r"/executors/[^/]+/threads", "/executors/{e}/threads", path)


def _paths(shs: RealShs, manifest: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """Every request, with whether its app is still running (wall-clock fields then masked)."""
    running = {e["app_id"] for e in manifest if e["state"] != "finished"}
    paths: list[tuple[str, bool]] = [("/version", False)]
    paths += [("/applications" + q, False) for q in APP_LIST_QUERIES]
    for entry in manifest:
        app = entry["app_id"]
        live = app in running
        base = f"/applications/{app}"
        paths += [(base + p, live) for p in PER_APP + RICH_PER_APP]
        paths.append((base + "/logs", False))
        for job in sorted({j["jobId"] for j in shs.get(base + "/jobs").json()}):
            paths.append((f"{base}/jobs/{job}", live))
        stages = shs.get(base + "/stages").json()
        rdd_ids: set[int] = set()
        for stage_id in sorted({s["stageId"] for s in stages}):
            paths += [(f"{base}/stages/{stage_id}{p}", live) for p in PER_STAGE]
        for stage in stages:
            rdd_ids.update(stage["rddIds"])
            paths += [(f"{base}/stages/{stage['stageId']}" + p.format(a=stage["attemptId"]), live) for p in PER_ATTEMPT]
        for execution in shs.get(base + "/sql?details=false&planDescription=false").json():
            paths += [(f"{base}/sql/{execution['id']}{q}", live) for q in PER_SQL]
        rdd_ids.update(r["id"] for r in shs.get(base + "/storage/rdd").json())
        paths += [(f"{base}/storage/rdd/{rdd}", live) for rdd in sorted(rdd_ids)]
        for executor in shs.get(base + "/allexecutors").json():
            paths.append((f"{base}/executors/{executor['id']}/threads", live))
    return list(dict.fromkeys(paths))


def test_rich_corpus_exercises_what_it_claims(rich_manifest: list[dict[str, Any]]) -> None:
    """The corpus has what the comparison is meant to cover (else it would compare little)."""
    by_name = {e["name"]: e for e in rich_manifest}
    assert set(by_name) == {"rich-sql", "rich-rdd-killed", "rich-cluster", "rich-streaming"}
    assert by_name["rich-rdd-killed"]["state"] == "in-progress"
    cluster = by_name["rich-cluster"]
    assert cluster["events"].get("SparkListenerExecutorRemoved", 0) >= 1
    assert cluster["task_end_reasons"].get("FetchFailed", 0) >= 1, "no fetch failure happened"
    assert cluster["observed"]["fetch_failure_retry"]
    rdd = by_name["rich-rdd-killed"]
    assert rdd["events"].get("SparkListenerUnpersistRDD", 0) >= 1
    assert rdd["events"].get("SparkListenerBlockUpdated", 0) >= 1
    assert rdd["task_end_reasons"].get("TaskKilled", 0) >= 1
    assert rdd["task_end_reasons"].get("ExceptionFailure", 0) >= 1
    sql = by_name["rich-sql"]
    assert sql["events"].get("SparkListenerSQLAdaptiveExecutionUpdate", 0) >= 1
    streaming = by_name["rich-streaming"]
    assert streaming["events"].get("StreamingQueryListener$QueryProgressEvent", 0) >= 3
    assert streaming["task_end_reasons"].get("TaskKilled", 0) >= 1, "the stop killed no streaming task"


def test_every_endpoint_matches_the_real_shs_on_the_rich_corpus(rich_both, rich_manifest) -> None:
    client, shs = rich_both
    comparison = Comparison(_template, ALLOWED).run(_paths(shs, rich_manifest), client, shs)
    comparison.report()
    assert comparison.mismatches == {}
