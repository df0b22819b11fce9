"""The figures the UI draws on the server (SQL plan graph, timelines, DAGs, distributions,
the operations page), checked without JavaScript: each SVG parses, and what it draws is
what ``/api/v1`` (or ``/health/details``) answers for the same thing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from sparkhist.ui.graph import layered
from support.ui_corpus import ParsedPage, ui_server


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with ui_server(tmp_path_factory.mktemp("figures")) as (_, served):
        yield served


def _attempts(client: TestClient) -> list[tuple[str, str]]:
    """(API prefix, page base) of every attempt."""
    out = []
    for app in client.get("/api/v1/applications").json():
        for attempt in app["attempts"]:
            tail = f"{quote(app['id'], safe='')}/" + (f"{quote(attempt['attemptId'], safe='')}/"
                                                      if attempt.get("attemptId") else "")
            out.append((f"/api/v1/applications/{tail}", f"/history/{tail}"))
    return out


def _get(client: TestClient, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, (url, response.text[:300])
    return response.json()


class _Page(ParsedPage):
    body: str


def _page(client: TestClient, url: str) -> _Page:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    page = _Page(response.text)
    assert page.problems == [], (url, page.problems[:5])
    page.body = response.text
    return page


def _inside(page: _Page, svg_id: str) -> list[tuple[str, dict[str, str | None]]]:
    """The elements of the page's ``<svg id=svg_id>`` (parsed again from its source)."""
    body = page.body
    at = body.find(f'id="{svg_id}"')
    if at < 0:
        return []
    start = body.rfind("<svg", 0, at)
    inner = ParsedPage(body[start: body.index("</svg>", at) + len("</svg>")])
    assert inner.problems == [], inner.problems[:5]
    return inner.elements[1:]


def _overlap(a: Any, b: Any) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


# ---------------------------------------------------------------------------------- the layout
def test_layered_layout_puts_sources_on_top_and_never_overlaps_boxes() -> None:
    keys = list(range(12))
    edges = [(0, 2), (1, 2), (2, 3), (3, 4), (0, 4), (5, 6), (6, 4), (7, 8), (8, 9), (9, 10), (10, 11), (11, 7)]
    sizes = {k: (40.0 + 10 * (k % 3), 20.0 + 5 * (k % 4)) for k in keys}
    layout = layered(keys, sizes, edges)
    for a, b in itertools.combinations(layout.boxes.values(), 2):
        assert not _overlap(a, b), (a, b)
    for (src, dst) in edges[:-1]:  # the last one closes a cycle: left out
        assert layout.boxes[src].y + layout.boxes[src].h <= layout.boxes[dst].y
    assert {(r.source, r.target) for r in layout.routes} == set(edges[:-1])
    for route in layout.routes:
        (x0, y0), (x1, y1) = route.points[0], route.points[-1]
        assert (x0, y0) == (layout.boxes[route.source].cx, layout.boxes[route.source].y + layout.boxes[route.source].h)
        assert (x1, y1) == (layout.boxes[route.target].cx, layout.boxes[route.target].y)
    assert all(b.x + b.w <= layout.width and b.y + b.h <= layout.height for b in layout.boxes.values())


def test_layered_layout_of_a_deep_chain_and_of_nothing() -> None:
    keys = list(range(3000))
    layout = layered(keys, dict.fromkeys(keys, (10.0, 10.0)), list(itertools.pairwise(keys)))
    assert layout.boxes[2999].y > layout.boxes[0].y
    assert layered([], {}, []).boxes == {}


# ---------------------------------------------------------------------------------- SQL plan graph
def test_plan_graph_draws_the_apis_operators_clusters_and_edges(client: TestClient) -> None:
    drawn = 0
    for api, base in _attempts(client):
        for listed in _get(client, api + "sql?details=false&length=1000")[:4]:
            execution = _get(client, f"{api}sql/{listed['id']}")
            page = _page(client, f"{base}SQL/execution/?id={listed['id']}")
            svg = _inside(page, "plan-graph")
            operators = sorted(n["nodeId"] for n in execution["nodes"]
                               if not n["nodeName"].startswith("WholeStageCodegen"))
            codegen = {n["nodeId"]: n for n in execution["nodes"] if n["nodeName"].startswith("WholeStageCodegen")}
            if not operators:
                assert svg == []
                continue
            nodes = sorted(int(str(a["data-node-id"])) for t, a in svg if "plan-node" in str(a.get("class")))
            assert nodes == operators
            clusters = {int(str(a["data-node-id"])) for t, a in svg if "plan-cluster" in str(a.get("class"))}
            members = {n.get("wholeStageCodegenId") for n in execution["nodes"]} - {None}
            assert clusters == {k for k, n in codegen.items() if int(n["nodeName"].split("(")[1][:-1]) in members}
            assert sum(1 for t, a in svg if t == "path" and a.get("class") == "edge") == len(
                {(e["fromId"], e["toId"]) for e in execution["edges"]
                 if e["fromId"] in operators and e["toId"] in operators and e["fromId"] != e["toId"]})
            drawn += 1
    assert drawn >= 5


# ---------------------------------------------------------------------------------- timelines
def _keys(svg: list[tuple[str, dict[str, str | None]]], attribute: str) -> list[str]:
    return [str(a[attribute]) for _, a in svg if attribute in a]


def test_timelines_draw_the_apis_jobs_stages_executors_and_tasks(client: TestClient) -> None:
    checked = 0
    for api, base in _attempts(client):
        jobs = _get(client, api + "jobs")
        executors = _get(client, api + "allexecutors")
        page = _page(client, base + "jobs/")
        svg = _inside(page, "jobs-timeline")
        dated = [j for j in jobs if "submissionTime" in j]
        if not dated and not executors:
            assert svg == []
            continue
        assert sorted(map(int, _keys(svg, "data-timeline-job"))) == sorted(j["jobId"] for j in dated)[-500:]
        added = [a for t, a in svg if "executor-added" in str(a.get("class"))]
        removed = [a for t, a in svg if "executor-removed" in str(a.get("class"))]
        assert sorted(str(a["data-executor-id"]) for a in added) == sorted(x["id"] for x in executors)
        assert sorted(str(a["data-executor-id"]) for a in removed) == sorted(
            x["id"] for x in executors if "removeTime" in x)
        links = [str(a["href"]) for t, a in svg if t == "a"]
        assert links == [f"{base}jobs/job/?id={j}" for j in _keys(svg, "data-timeline-job")]

        stages = _get(client, api + "stages")
        for job in dated[:2]:
            svg = _inside(_page(client, f"{base}jobs/job/?id={job['jobId']}"), "job-timeline")
            assert sorted(_keys(svg, "data-timeline-stage")) == sorted(
                f"{s['stageId']}.{s['attemptId']}" for s in stages
                if s["stageId"] in job["stageIds"] and "submissionTime" in s)
        for stage in [s for s in stages if s["numTasks"]][:2]:
            page = _page(client, f"{base}stages/stage/?id={stage['stageId']}&attempt={stage['attemptId']}"
                                 "&task.pageSize=100")
            rows = [str(a["data-task-id"]) for a in page.by_attribute("data-task-id")]
            svg = _inside(page, "task-timeline")
            assert sorted(_keys(svg, "data-timeline-task")) == sorted(rows)
            lanes = {str(a.get("class")) for t, a in svg if t == "rect" and "phase" in str(a.get("class"))}
            table = _get(client, f"{api}stages/{stage['stageId']}/{stage['attemptId']}/taskTable?length=100")
            if any(t.get("taskMetrics", {}).get("executorRunTime") for t in table["aaData"]):
                assert "phase computing" in lanes
        checked += 1
    assert checked >= 20


# ---------------------------------------------------------------------------------- distributions and skew
_QUANTILES = ",".join(f"{i / 20:g}" for i in range(21))
_CHARTS = {"duration": ("duration",), "gc": ("jvmGcTime",), "shuffle-read": ("shuffleReadMetrics", "readBytes"),
           "shuffle-write": ("shuffleWriteMetrics", "writeBytes"), "spill-memory": ("memoryBytesSpilled",),
           "spill-disk": ("diskBytesSpilled",)}


def _field(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        record = record[part]
    return record


def test_distributions_and_skew_are_the_apis_quantiles_and_slowest_tasks(client: TestClient) -> None:
    drawn = 0
    for api, base in _attempts(client):
        for stage in _get(client, api + "stages")[:3]:
            key = f"{stage['stageId']}/{stage['attemptId']}"
            page = _page(client, f"{base}stages/stage/?id={stage['stageId']}&attempt={stage['attemptId']}")
            charts = [str(a["data-chart"]) for a in page.by_attribute("data-chart")]
            response = client.get(f"{api}stages/{key}/taskSummary?quantiles={_QUANTILES}")
            if response.status_code == 404:
                assert charts == [] and not page.by_attribute("data-ratio")
                continue
            summary = response.json()
            assert charts == [k for k, path in _CHARTS.items() if max(_field(summary, path)) > 0]
            durations = summary["duration"]
            ratio = str(page.by_attribute("data-ratio")[0]["data-ratio"])
            median, top = durations[10], durations[20]
            assert ratio == ("inf" if median == 0 and top > 0 else f"{top / median if median else 1.0:.2f}")
            slowest = _get(client, f"{api}stages/{key}/taskTable?start=0&length=5&columnNameToSort=Duration"
                                   "&order[0][dir]=desc")["aaData"]
            links = [a for a in page.by_attribute("data-task") if "slow-task" in str(a.get("class"))]
            assert [int(str(a["data-task"])) for a in links] == [t["taskId"] for t in slowest]
            for a in links:  # each leads to its row on the table sorted by duration
                target = _page(client, f"{base}stages/stage/{a['href']}".split("#")[0])
                assert str(a["data-task"]) in {str(r["data-task-id"]) for r in target.by_attribute("data-task-id")}
            drawn += 1
    assert drawn >= 10


# ---------------------------------------------------------------------------------- operations page
def test_operations_page_draws_the_health_document(client: TestClient) -> None:
    page = _page(client, "/operations/")
    doc = _get(client, "/health/details")
    assert page.body.count('data-field="status">' + doc["status"] + "<") == 1
    assert [str(a["data-source"]) for a in page.by_attribute("data-source")] == [
        s["logDirectory"] for s in doc["sources"]]
    meters = {str(a["data-meter"]): float(str(a["data-fraction"])) for a in page.by_attribute("data-meter")}
    assert set(meters) == {"disk", "filesystem", "memory", "lag"}
    store = doc["store"]
    assert meters["disk"] == pytest.approx(store["snapshotBytes"] / store["diskBudgetBytes"], abs=1e-4)
    assert meters["filesystem"] == pytest.approx(store["filesystemUsageRatio"], abs=2e-3)
    stacks = {str(a["data-stack"]): int(str(a["data-total"])) for a in page.by_attribute("data-stack")}
    assert stacks["applications"] == sum(store["applications"].values())
    assert stacks["last-scan"] == doc["scan"]["last"]["listed"]
    assert "/operations/" in _page(client, "/").links  # reachable from every page's header
    assert client.get("/operations", follow_redirects=False).headers["location"] == "/operations/"


def test_operations_page_of_a_degraded_server_lists_its_alerts_escaped() -> None:
    from sparkhist.render.html import render
    from sparkhist.ui.operations import operations_context

    hostile = '<script>alert(1)</script>"'
    doc = {"status": "degraded", "offline": True, "ready": True, "reasons": ["source offline: " + hostile],
           "sources": [{"logDirectory": "hdfs://nn/" + hostile, "state": "offline", "breaker": "open",
                        "since": "2026-12-07T05:21:55.255Z", "lastError": hostile,
                        "requests": {"ok": 3, "missing": 0, "error": 7}}],
           "scan": {"intervalSeconds": 10.0, "lagSeconds": 95.0, "scans": {"ok": 1, "failed": 9}, "last": None},
           "store": {"snapshotBytes": 95, "diskBudgetBytes": 100, "filesystemUsageRatio": 0.93},
           "memory": {}, "skipped": {"count": 1, "entries": [{"path": hostile, "reason": "corrupt"}]}}
    body = render("ui_operations.html", title="Operations", **operations_context(doc))
    page = ParsedPage(body)
    assert page.problems == []
    assert "<script>alert" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert [t for t, a in page.elements if "alert" in str(a.get("class")).split()] == ["li"]
    levels = {str(a["data-meter"]): str(a["class"]) for a in page.by_attribute("data-meter")}
    assert levels == {"disk": "meter level-bad", "filesystem": "meter level-bad", "lag": "meter level-bad"}
    assert 'class="badge state-offline"' in body
