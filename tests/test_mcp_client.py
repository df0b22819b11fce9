"""A real client, run as users run it: the Spark History MCP server against the real SHS and sparkhist.

``mcp-apache-spark-history-server`` (PyPI, pinned in ``support/mcp_client.py``; it needs
Python >= 3.12 and runs from a venv of its own) is what people put between an LLM agent
and their History Server. Over every corpus (the generated 4.3.0 logs, the rich corpus,
the 4.0.1 logs, Apache's HistoryServerSuite logs), the real SHS and ``sparkhist serve``
run as processes on loopback ports over the same log directory, and the same calls are
made to each, by one batched driver per server (``support.mcp_client.DRIVER``):

- every method of its REST client (``SparkRestClient``) for every application (and every
  named attempt), every SQL execution, and the stage attempts of :func:`_chosen` (first,
  last, and those with failed or killed tasks, retries or not complete);
- every MCP tool, through a real MCP client session: applications, jobs, stages (those
  stages, each attempt, failed tasks), environment, executors (and their summary, thread
  dump), SQL executions (each, with plan, initial plan, aggregated metrics and stages),
  bottlenecks, resource timeline, and the comparisons (environments, performance, SQL
  executions, stages) between each app and the next.

The ids come from the real SHS's answers. Each answer (the client's models as JSON, or
the error it raised) must be equal. What is normalised, and why (nothing else is):

- ``lastUpdated``/``lastUpdatedEpoch`` of applications still running: the SHS sets them to
  the wall-clock time of its last scan of the in-progress log.
- In answers about an application still running, the numbers under
  :data:`WALL_CLOCK_WHEN_RUNNING`: the SHS measures a RUNNING task's duration as "now" minus
  its launch time at request time, and executors' ``totalDuration``, SQL executions'
  ``duration`` and the tools' figures derived from them follow (same rule as
  ``test_differential`` and the spark-history-cli test).
- The server URL, which differs by construction, wherever it is echoed.
- A tool's ``"API failures: a; b"`` message lists its parallel calls' failures in the order
  its threads finished: the parts are sorted.
- In an error's text (the generated client's exception string), the list of HTTP response
  headers: two different HTTP servers (Jetty, uvicorn) spell and choose transport headers
  differently (``Date``, ``Server``, header case, a random CSP nonce). The status, reason
  and body in the same text are compared, and REST errors are compared as
  (type, status, reason, body).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from support.both_servers import CORPORA
from support.mcp_client import DRIVER, ensure_mcp_venv
from support.real_shs import RealShs
from support.spark_setup import corpus_servers

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: Tools that take ``app_attempt_id`` (the others address the app's last attempt).
ATTEMPT_TOOLS = {"list_jobs", "list_stages", "list_stage_task_failures", "get_environment", "list_executors",
                 "get_executor_thread_dump", "list_sql_executions", "get_sql_execution"}


@pytest.fixture(scope="module")
def mcp_python() -> str:
    return str(ensure_mcp_venv())


@pytest.fixture(scope="module", params=CORPORA)
def servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RealShs, str]]:
    """(corpus, the real SHS, sparkhist's URL), both serving the corpus and listing the same apps."""
    yield from corpus_servers(request, tmp_path_factory, "mcp")


def _shs_json(shs: RealShs, path: str) -> Any:
    answer = shs.get(path)
    return answer.json() if answer.status_code == 200 else []


def _chosen(stages: list[dict[str, Any]], most: int = 6) -> list[tuple[int, int]]:
    """The stage attempts asked about one by one: the first and last stage, then those with
    failed or killed tasks, a retry, or not complete (at most ``most``: each costs the driver's
    models a stage with all its tasks, and the 2-core CI box runs everything else too)."""
    attempts = sorted({(s["stageId"], s["attemptId"]) for s in stages})
    notable = [(s["stageId"], s["attemptId"]) for s in stages
               if s["numFailedTasks"] or s["numKilledTasks"] or s["attemptId"] or s["status"] != "COMPLETE"]
    chosen = dict.fromkeys([*attempts[:1], *attempts[-1:], *sorted(notable)])
    return sorted(list(chosen)[:most])


def _plan(shs: RealShs) -> tuple[list[dict[str, Any]], set[str]]:
    """Every call, with ids from the real SHS's answers; and the ids of the apps still running."""
    apps = shs.get("applications").json()
    running = {a["id"] for a in apps if not a["attempts"][0]["completed"]}
    calls: list[dict[str, Any]] = []

    def rest(name: str, **args: Any) -> None:
        calls.append({"kind": "rest", "name": name, "args": args})

    def tool(name: str, **args: Any) -> None:
        calls.append({"kind": "tool", "name": name, "args": args})

    rest("list_applications")
    rest("list_applications", status=["completed"])
    rest("list_applications", status=["running"])
    rest("list_applications", limit=3)
    rest("list_applications", min_date="2015-02-10", max_end_date="2099-01-01T00:00:00.000GMT")
    tool("list_applications")
    tool("list_applications", status=["running"])
    tool("list_applications", limit=2)
    rest("get_application", app_id="no-such-app")
    tool("list_jobs", app_id="no-such-app")

    stages_of: dict[str, list[int]] = {}
    for app in apps:
        app_id = app["id"]
        rest("get_application", app_id=app_id)
        tool("list_applications", app_id=app_id)
        named = [a["attemptId"] for a in app["attempts"] if a.get("attemptId")]
        for attempt in named or [None]:
            base = f"applications/{app_id}" + (f"/{attempt}" if attempt else "")
            at = {"app_attempt_id": attempt} if attempt else {}
            stages = _shs_json(shs, f"{base}/stages")
            stage_attempts = _chosen(stages)
            sql_ids = [e["id"] for e in _shs_json(shs, f"{base}/sql?offset=0&length=100000")]
            job_ids = [j["jobId"] for j in _shs_json(shs, f"{base}/jobs")]
            executors = [e["id"] for e in _shs_json(shs, f"{base}/allexecutors")]
            # The REST client.
            rest("list_jobs", app_id=app_id, **at)
            rest("list_jobs", app_id=app_id, status=["FAILED"], offset=1, length=3, **at)
            rest("list_stages", app_id=app_id, **at)
            rest("list_stages", app_id=app_id, details=True, with_summaries=True, **at)
            rest("list_stages", app_id=app_id, status=["COMPLETE"], details=True, task_status=["FAILED"], **at)
            for stage_id in sorted({s for s, _ in stage_attempts}):
                rest("list_stage_attempts", app_id=app_id, stage_id=stage_id, **at)
            for stage_id, attempt_id in stage_attempts:
                ids = {"app_id": app_id, "stage_id": stage_id, "attempt_id": attempt_id, **at}
                rest("get_stage_attempt", **ids)
                rest("get_stage_task_summary", **ids)
                rest("list_stage_tasks", **ids)
            if stage_attempts:
                ids = {"app_id": app_id, "stage_id": stage_attempts[-1][0], "attempt_id": stage_attempts[-1][1], **at}
                rest("get_stage_attempt", **ids, details=False, with_summaries=True, quantiles="0.1,0.9")
                rest("list_stage_tasks", **ids, status="FAILED", sort_by="-runtime", offset=0, length=5)
            rest("get_stage_attempt", app_id=app_id, stage_id=9999, attempt_id=0, **at)
            rest("list_executors", app_id=app_id, **at)
            rest("list_all_executors", app_id=app_id, **at)
            rest("get_executor_thread_dump", app_id=app_id, executor_id="driver", **at)
            rest("get_environment", app_id=app_id, **at)
            rest("get_sql_list", app_id=app_id, **at)
            rest("get_sql_list", app_id=app_id, details=False, plan_description=True, offset=1, length=2, **at)
            for sql_id in sql_ids:
                rest("get_sql_execution", app_id=app_id, execution_id=sql_id, **at)
            rest("get_sql_execution", app_id=app_id, execution_id=9999, **at)
            # The MCP tools, as an agent calls them.
            for name, args in (
                ("list_jobs", {}), ("list_jobs", {"status": ["SUCCEEDED"], "sort_by": "duration"}),
                ("list_stages", {}), ("list_stages", {"with_summaries": True, "sort_by": "duration"}),
                ("get_environment", {}), ("get_environment", {"section": "spark"}),
                ("list_executors", {}), ("list_executors", {"include_inactive": True, "sort_by": "memory"}),
                ("list_executors", {"executor_id": "driver"}),
                ("get_executor_thread_dump", {"executor_id": "driver"}),
                ("list_sql_executions", {}), ("list_sql_executions", {"sort_by": "duration", "limit": 5}),
            ):
                tool(name, app_id=app_id, **args, **at)
            for job_id in job_ids[:3]:
                tool("list_jobs", app_id=app_id, job_id=job_id, **at)
            for sql_id in sql_ids:
                tool("get_sql_execution", app_id=app_id, execution_id=sql_id, include_plan=True,
                     include_initial_plan=True, include_aggregated_metrics=True, include_stages=True, **at)
                tool("get_sql_execution", app_id=app_id, execution_id=sql_id, **at)
            for executor in executors[:1]:
                tool("list_executors", app_id=app_id, executor_id=executor, include_inactive=True, **at)
        stages_now = _shs_json(shs, f"applications/{app_id}/stages")
        stages_of[app_id] = sorted({s["stageId"] for s in stages_now})
        for stage_id, attempt_id in _chosen(stages_now):
            tool("get_stage", app_id=app_id, stage_id=stage_id, attempt_id=attempt_id, with_summaries=True)
        for stage_id in sorted({s for s, _ in _chosen(stages_now)}):
            tool("get_stage", app_id=app_id, stage_id=stage_id)
            tool("list_stage_task_failures", app_id=app_id, stage_id=stage_id)
        tool("get_executor_summary", app_id=app_id)
        tool("get_job_bottlenecks", app_id=app_id)
        tool("get_resource_usage_timeline", app_id=app_id)
        tool("list_sql_executions", app_id=app_id)
    # Comparisons: each app with the next one.
    for one, two in zip(apps, apps[1:], strict=False):
        a, b = one["id"], two["id"]
        tool("compare_job_environments", app_id1=a, app_id2=b)
        tool("compare_job_performance", app_id1=a, app_id2=b)
        tool("compare_sql_executions", app_id1=a, app_id2=b, include_plan_diff=True)
        if stages_of[a] and stages_of[b]:
            tool("compare_stages", app_id1=a, stage_id1=stages_of[a][0], app_id2=b, stage_id2=stages_of[b][-1])
    return calls, running


def _drive(python: str, url: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done = subprocess.run([python, "-c", DRIVER], input=json.dumps({"url": url, "calls": calls}),
                          capture_output=True, text=True, timeout=1800, stdin=None)
    assert done.returncode == 0, done.stderr[-4000:]
    answer = json.loads(done.stdout)
    results: list[dict[str, Any]] = answer["results"]
    assert len(results) == len(calls)
    return results


#: The transport headers an error's text lists, from ``HTTP response headers:`` to the body.
_HEADERS = re.compile(r"HTTP response headers: .*?\n(?=HTTP response body|$)", re.S)
#: How a tool that makes its REST calls in parallel reports the failed ones: joined with "; " in
#: the order the threads finished (``parallel_execute``'s ``as_completed``).
_FAILURES = "API failures: "
#: Measured by the SHS at request time for an app still running (a RUNNING task's duration is
#: "now" minus its launch; executors, SQL executions and the tools' figures derived from them).
WALL_CLOCK_WHEN_RUNNING = {"duration", "totalDuration", "total_duration", "gc_pressure_ratio"}


def _normalize(value: Any, url: str, running: set[str], live: bool) -> Any:
    """See the module's docstring; ``live``: the call is about an app still running."""
    def walk(v: Any, in_running_app: bool) -> Any:
        if isinstance(v, dict):
            here = in_running_app or v.get("id") in running
            out = {}
            for key, item in v.items():
                if here and key == "lastUpdated":
                    out[key] = "<now>"
                elif here and key == "lastUpdatedEpoch":
                    out[key] = 0
                elif live and key in WALL_CLOCK_WHEN_RUNNING and isinstance(item, (int, float)):
                    out[key] = "<now>"
                elif key == "error" and isinstance(item, str) and item.startswith(_FAILURES):
                    out[key] = _FAILURES + "; ".join(sorted(walk(item, here)[len(_FAILURES):].split("; ")))
                else:
                    out[key] = walk(item, here)
            return out
        if isinstance(v, list):
            return [walk(x, in_running_app) for x in v]
        if isinstance(v, str):
            return _HEADERS.sub("HTTP response headers: <transport>\n", v.replace(url, "<server>"))
        return v

    return walk(value, False)


def _differences(theirs: Any, ours: Any, path: str = "") -> Iterator[str]:
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for key in sorted(theirs.keys() | ours.keys(), key=str):
            if key not in ours:
                yield f"{path}.{key}: SHS {json.dumps(theirs[key])[:200]}, sparkhist missing"
            elif key not in theirs:
                yield f"{path}.{key}: SHS missing, sparkhist {json.dumps(ours[key])[:200]}"
            else:
                yield from _differences(theirs[key], ours[key], f"{path}.{key}")
    elif isinstance(theirs, list) and isinstance(ours, list) and len(theirs) == len(ours):
        for i, (x, y) in enumerate(zip(theirs, ours, strict=True)):
            yield from _differences(x, y, f"{path}[{i}]")
    elif theirs != ours:
        yield f"{path or '.'}: SHS {json.dumps(theirs)[:300]}, sparkhist {json.dumps(ours)[:300]}"


def test_mcp_client_reads_sparkhist_like_the_real_shs(servers: tuple[str, RealShs, str], mcp_python: str) -> None:
    corpus, shs, sparkhist_url = servers
    calls, running = _plan(shs)
    with ThreadPoolExecutor(2) as pool:  # the two servers at once
        theirs_all, ours_all = pool.map(lambda url: _drive(mcp_python, url, calls), (shs.base_url, sparkhist_url))

    counts: Counter[str] = Counter()
    equal: Counter[str] = Counter()
    errors = Counter(("error" in r) for r in theirs_all)
    different: list[str] = []
    for call, theirs, ours in zip(calls, theirs_all, ours_all, strict=True):
        family = f"{call['kind']} {call['name']}"
        counts[family] += 1
        live = any(call["args"].get(k) in running for k in ("app_id", "app_id1", "app_id2"))
        a = _normalize(theirs, shs.base_url, running, live)
        b = _normalize(ours, sparkhist_url, running, live)
        if a == b:
            equal[family] += 1
            continue
        diff = list(_differences(a, b))
        different.append(f"{family} {json.dumps(call['args'])}:\n  " + "\n  ".join(diff[:8])
                         + (f"\n  ... {len(diff) - 8} more" if len(diff) > 8 else ""))
    print(f"\n[{corpus}] {len(calls)} MCP client calls ({sum(1 for c in calls if c['kind'] == 'rest')} REST, "
          f"{sum(1 for c in calls if c['kind'] == 'tool')} tools; {errors[True]} answered with an error by the SHS): "
          f"{len(calls) - len(different)} equal, {len(different)} different")
    for family in sorted(counts):
        print(f"  {family}: {equal[family]}/{counts[family]}")
    for problem in different:
        print(problem)
    assert errors[False] > errors[True], "most calls must succeed, or the comparison says little"
    assert different == []
