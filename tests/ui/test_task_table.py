"""The stage page's task table at 100,000 tasks, and its summary table.

A stage of 100,000 tasks is made from a real Spark 4 log (:func:`sparkhist.devtools.big.write_big_log`:
its task events renumbered), each task given its own duration and host so every sort has
something to order; it is indexed as the server indexes (chunked snapshot sections). Pages
sorted by duration, host and index, both ways, at the start, middle and end of the stage,
are the tasks in the order the generated durations and hosts give; a page request after the
first reads only the chunks holding its rows, never every task (the first request of the
page reads them once, for the quantiles and every column's order). Times are in
``bench/ui_paint.py --task-table`` (tests assert behaviour, not timings).

The summary table of a stage page is the API's ``withSummaries`` figures (five quantiles),
taken from the same ``taskSummary`` the charts draw.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from sparkhist.devtools.big import write_big_log
from sparkhist.devtools.scale import load_template
from sparkhist.render.format import metric
from sparkhist.state import sections
from sparkhist.ui.pages import SUMMARY_ROWS
from support.conformance import SPARK401
from support.server import runtime_for
from support.ui_corpus import ParsedPage, ui_server

TASKS = 100_000
APP = "local-4000000000100"
HOSTS = ("host-a", "host-b", "host-c", "host-d", "host-e", "host-f", "host-g")


def _duration(i: int) -> int:
    return (i * 7919) % 4999  # every value from 0 to 4998, scattered over the task ids


def _host(i: int) -> str:
    return HOSTS[(i * 31) % len(HOSTS)]


def _write_stage(dest: Path) -> None:
    """The 100,000-task app, each task's finish time and host its own."""
    template = load_template(SPARK401 / "eventlogs" / "local-1795972896863")
    raw = dest / "raw"
    raw.mkdir()
    path = write_big_log(template, raw, APP, TASKS)
    with path.open("rb") as src, (dest / APP).open("wb") as out:
        for line in src:
            if b'"SparkListenerTask' in line[:40]:
                event = orjson.loads(line)
                info = event["Task Info"]
                i = info["Task ID"]
                info["Host"] = _host(i)
                if event["Event"] == "SparkListenerTaskEnd":
                    info["Finish Time"] = info["Launch Time"] + _duration(i)
                line = orjson.dumps(event) + b"\n"
            out.write(line)
    path.unlink()
    raw.rmdir()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    base = tmp_path_factory.mktemp("tasks100k")
    logs = base / "logs"
    logs.mkdir()
    _write_stage(logs)
    with runtime_for(logs, base / "store") as (_, client):
        stages = client.get(f"/api/v1/applications/{APP}/stages").json()
        (stage,) = stages
        yield client, f"{stage['stageId']}/{stage['attemptId']}"


def _table(client: TestClient, key: str, column: str, direction: str, start: int, length: int = 20) -> dict[str, Any]:
    response = client.get(f"/api/v1/applications/{APP}/stages/{key}/taskTable", params={
        "start": start, "length": length, "columnNameToSort": column, "order[0][dir]": direction})
    assert response.status_code == 200, response.text[:300]
    found: dict[str, Any] = response.json()
    return found


pytestmark = pytest.mark.slow


def test_pages_of_100000_tasks_in_every_order_and_at_every_place(big: tuple[TestClient, str]) -> None:
    client, key = big
    ids = range(TASKS)
    orders = {"Duration": sorted(ids, key=lambda i: (_duration(i), i)), "Host": sorted(ids, key=lambda i: (_host(i), i)),
              "Index": list(ids), "ID": list(ids)}
    for column, ascending in orders.items():
        for direction, order in (("asc", ascending), ("desc", ascending[::-1])):
            for start in (0, 20, TASKS // 2 + 7, TASKS - 20, TASKS - 5):
                table = _table(client, key, column, direction, start)
                assert table["recordsTotal"] == str(TASKS) and table["recordsFiltered"] == str(TASKS)
                shown = [t["taskId"] for t in table["aaData"]]
                assert shown == order[start:start + 20], (column, direction, start)
    # the durations and hosts shown are the generated ones
    rows = _table(client, key, "Duration", "desc", 0, 5)["aaData"]
    assert [r["duration"] for r in rows] == [4998] * 5 and all(r["host"] == _host(r["taskId"]) for r in rows)
    assert _table(client, key, "Duration", "asc", TASKS, 20)["aaData"] == []


def test_a_page_request_reads_only_the_chunks_of_its_rows(big: tuple[TestClient, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    client, key = big
    _table(client, key, "Host", "asc", 0)  # the orders exist once any page was asked for
    from sparkhist.store import states

    read: list[str] = []
    every = states.SectionTasks.chunks
    groups = states.StoreStates.task_group

    def chunks(self: Any, st: Any, reverse: bool = False) -> Any:
        read.append("every task")
        return every(self, st, reverse)

    def task_group(self: Any, path: str, layout: Any, index: int, *, cache: bool = True) -> Any:
        read.append(f"chunk {index}")
        return groups(self, path, layout, index, cache=cache)

    monkeypatch.setattr(states.SectionTasks, "chunks", chunks)
    monkeypatch.setattr(states.StoreStates, "task_group", task_group)
    table = _table(client, key, "Host", "desc", TASKS // 2)
    assert len(table["aaData"]) == 20
    assert "every task" not in read
    # the 20 rows of one host, spread over the stage, come from at most 20 chunks of the ~98
    assert 0 < len(set(read)) <= 20 and len(set(read)) < TASKS // sections.GROUP_TASKS
    read.clear()
    table = _table(client, key, "Index", "asc", 40_000)
    assert [t["taskId"] for t in table["aaData"]] == list(range(40_000, 40_020))
    assert 0 < len(read) == len(set(read)) <= 2  # each chunk read once


def test_the_stage_page_pages_100000_tasks(big: tuple[TestClient, str]) -> None:
    client, key = big
    stage_id, attempt = key.split("/")
    url = f"/history/{APP}/stages/stage/?id={stage_id}&attempt={attempt}&task.sort=Duration&task.desc=true"
    order = sorted(range(TASKS), key=lambda i: (_duration(i), i))[::-1]
    for page in (1, 2_500, 5_000):
        response = client.get(f"{url}&task.page={page}")
        assert response.status_code == 200
        parsed = ParsedPage(response.text)
        assert parsed.problems == []
        shown = [int(str(r["data-task-id"])) for r in parsed.by_attribute("data-task-id")]
        assert shown == order[(page - 1) * 20:page * 20]
        assert f"Page {page} of 5000" in response.text
    assert re.search(r'id="task-total">100000<', client.get(url).text)


# ---------------------------------------------------------------------------------- the summary table
@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with ui_server(tmp_path_factory.mktemp("summary")) as (_, served):
        yield served


def _cells(body: str) -> dict[str, list[str]]:
    """The summary table's rows: label -> the five cells."""
    table = body.split('<table id="summary-metrics">', 1)[1].split("</table>", 1)[0]
    rows = {}
    for label, cells in re.findall(r'<th scope="row">([^<]*)</th>(.*?)</tr>', table, re.S):
        rows[label] = re.findall(r'<td class="num">([^<]*)</td>', cells)
    return rows


def test_the_summary_table_is_the_apis_five_quantiles(client: TestClient) -> None:
    checked = 0
    for app in client.get("/api/v1/applications").json():
        for attempt in app["attempts"]:
            prefix = app["id"] + (f"/{attempt['attemptId']}" if "attemptId" in attempt else "")
            for stage in client.get(f"/api/v1/applications/{prefix}/stages").json():
                key = f"{stage['stageId']}/{stage['attemptId']}"
                record = client.get(f"/api/v1/applications/{prefix}/stages/{key}?withSummaries=true").json()
                body = client.get(f"/history/{prefix}/stages/stage/?id={stage['stageId']}&attempt={stage['attemptId']}").text
                dist = record.get("taskMetricsDistributions")
                if not dist:
                    assert "summary-metrics" not in body
                    continue
                shown = _cells(body)
                assert shown, key
                for label, path, kind in SUMMARY_ROWS:
                    if label not in shown:
                        continue
                    value: Any = dist
                    for part in path:
                        value = value[part]
                    assert shown[label] == [str(metric(v, kind)).replace("&", "&amp;") for v in value], (prefix, key, label)
                assert "Duration" in shown
                checked += 1
    assert checked >= 20
