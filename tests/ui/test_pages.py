"""Every page of the web UI without JavaScript, over the real corpus (bundled samples and
every conformance log): each answers 200 and parses with balanced tags, every internal
link resolves (a crawl from ``/`` down to task pages and back), and the figures a page
shows are the API's (job and stage names and counts, task counts, executor addresses,
SQL plan operators)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from starlette.testclient import TestClient

from support.ui_corpus import ParsedPage, internal, texts, ui_server


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with ui_server(tmp_path_factory.mktemp("ui")) as (_, served):
        yield served


def _attempts(client: TestClient) -> list[tuple[str, str | None, str]]:
    """(app id, attempt id, base URL) of every attempt the API lists."""
    out = []
    for app in client.get("/api/v1/applications").json():
        for attempt in app["attempts"]:
            attempt_id = attempt.get("attemptId")
            base = f"/history/{quote(app['id'], safe='')}/" + (f"{quote(attempt_id, safe='')}/" if attempt_id else "")
            out.append((app["id"], attempt_id, base))
    return out


def _api(client: TestClient, app_id: str, attempt_id: str | None, rest: str) -> Any:
    path = f"/api/v1/applications/{quote(app_id, safe='')}/" + (f"{quote(attempt_id, safe='')}/" if attempt_id else "")
    response = client.get(path + rest)
    assert response.status_code == 200, (path + rest, response.text[:300])
    return response.json()


def _page(client: TestClient, url: str) -> tuple[str, ParsedPage]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[-500:])
    assert response.headers["content-type"].startswith("text/html")
    page = ParsedPage(response.text)
    assert page.problems == [], (url, page.problems[:5])
    return response.text, page


#: Pages whose links are checked but not followed: variants of one page (sort, page, size).
_VARIANT_PARAMS = ("task.", "sort=", "page=", "size=", "search=", "desc=")


@pytest.mark.slow
def test_crawl_from_the_list_down_to_tasks_and_back(client: TestClient) -> None:
    start = ["/", "/?showIncomplete=true"]
    seen: set[str] = set(start)
    todo = list(start)
    checked: dict[str, int] = {}
    kinds: set[str] = set()
    while todo:
        url = todo.pop()
        _, page = _page(client, url)
        path = urlsplit(url).path
        kinds.add(path.rsplit("/", 2)[-2] if path.startswith("/history/") else path)
        for href in page.links:
            target = internal(url, href)
            assert target is not None or href == "data:," or href.startswith(("http://", "https://")), (url, href)
            if target is None or target in seen:
                continue
            seen.add(target)
            if target.startswith(("/api/v1/", "/static/", "/health/", "/metrics")):  # not pages: they answer
                status = client.get(target).status_code
                checked[target] = status
                assert status == 200, (url, target, status)
            elif any(p in (urlsplit(target).query or "") for p in _VARIANT_PARAMS):
                _page(client, target)  # answers and parses; its own links are those of its page
            else:
                todo.append(target)
    assert {"jobs", "job", "stages", "stage", "executors", "environment", "SQL", "execution", "storage",
            "pool"} <= kinds, kinds
    assert any(t.endswith("/logs") for t in checked), "event log downloads are linked"
    assert len(seen) > 500, len(seen)


def test_app_list_pages_show_every_application_once(client: TestClient) -> None:
    apps = client.get("/api/v1/applications").json()
    completed = {a["id"] for a in apps if a["attempts"][0]["completed"]}
    running = {a["id"] for a in apps if not a["attempts"][0]["completed"]}
    assert completed and running
    for incomplete, wanted in ((False, completed), (True, running)):
        shown: list[str] = []
        page = 1
        while True:
            text, parsed = _page(client, f"/?showIncomplete={str(incomplete).lower()}&size=20&page={page}")
            rows = [r["data-app-id"] for r in parsed.by_attribute("data-app-id")]
            shown += list(dict.fromkeys(rows))
            if 'rel="next"' not in text:
                break
            page += 1
        assert sorted(shown) == sorted(wanted)
    # the SHS's order by default (end time descending, as the API), and a search
    _, parsed = _page(client, "/?size=500")
    order = list(dict.fromkeys(r["data-app-id"] for r in parsed.by_attribute("data-app-id")))
    assert order == [a["id"] for a in apps if a["id"] in completed]
    some = sorted(completed)[0]
    _, parsed = _page(client, "/?search=" + quote(some[-8:]))
    assert some in {r["data-app-id"] for r in parsed.by_attribute("data-app-id")}
    _, parsed = _page(client, "/?sort=id&desc=false&size=500")
    assert list(dict.fromkeys(r["data-app-id"] for r in parsed.by_attribute("data-app-id"))) == sorted(completed)


def test_figures_are_the_apis(client: TestClient) -> None:
    for app_id, attempt_id, base in _attempts(client):
        jobs = _api(client, app_id, attempt_id, "jobs")
        body, parsed = _page(client, base + "jobs/")
        assert sorted(int(str(r["data-job-id"])) for r in parsed.by_attribute("data-job-id")) == sorted(
            j["jobId"] for j in jobs)
        assert sorted(texts(body, "job-name")) == sorted(j["name"].strip() for j in jobs)
        for job in jobs[:3]:
            body, _ = _page(client, f"{base}jobs/job/?id={job['jobId']}")
            assert f"{job['numCompletedTasks']}/{job['numTasks']}" in body

        stages = _api(client, app_id, attempt_id, "stages")
        body, parsed = _page(client, base + "stages/")
        assert sorted((int(str(r["data-stage-id"])), int(str(r["data-stage-attempt"])))
                      for r in parsed.by_attribute("data-stage-id")) == sorted(
            (s["stageId"], s["attemptId"]) for s in stages)
        assert sorted(texts(body, "stage-name")) == sorted(s["name"].strip() for s in stages)
        for stage in stages[:4]:
            key = f"{stage['stageId']}/{stage['attemptId']}"
            tasks = _api(client, app_id, attempt_id, f"stages/{key}/taskList?length=1000000")
            body, parsed = _page(client, f"{base}stages/stage/?id={stage['stageId']}&attempt={stage['attemptId']}")
            assert texts(body, "stage-name") == [stage["name"].strip()]
            assert f'<span id="task-total">{len(tasks)}</span>' in body
            shown = [int(str(r["data-task-id"])) for r in parsed.by_attribute("data-task-id")]
            assert shown == [t["taskId"] for t in sorted(tasks, key=lambda t: (t["index"], t["taskId"]))][:20]
            summary = _api(client, app_id, attempt_id, f"stages/{key}?details=true")["executorSummary"]
            assert sorted(str(r["data-executor-id"]) for r in parsed.by_attribute("data-executor-id")) == sorted(summary)

        executors = _api(client, app_id, attempt_id, "allexecutors")
        body, _ = _page(client, base + "executors/")
        assert texts(body, "executor-address") == [x["hostPort"] for x in executors]

        executions = _api(client, app_id, attempt_id, "sql?length=1000")
        body, parsed = _page(client, base + "SQL/")
        assert len(parsed.by_attribute("data-execution-id")) == min(len(executions), 100)
        for execution in executions[:3]:
            body, _ = _page(client, f"{base}SQL/execution/?id={execution['id']}")
            assert sorted(texts(body, "node-name")) == sorted(n["nodeName"] for n in execution["nodes"])


def test_task_table_is_sorted_and_paged_on_the_server(client: TestClient) -> None:
    biggest = max(((s["numTasks"], a, s) for a in _attempts(client) for s in _api(client, a[0], a[1], "stages")),
                  key=lambda found: found[0])
    _, (app_id, attempt_id, base), stage = biggest
    key = f"{stage['stageId']}/{stage['attemptId']}"
    tasks = _api(client, app_id, attempt_id, f"stages/{key}/taskList?length=1000000")
    assert len(tasks) > 40, "two pages of 20 at least"
    url = f"{base}stages/stage/?id={stage['stageId']}&attempt={stage['attemptId']}&task.pageSize=20"
    _, parsed = _page(client, url + "&task.sort=ID&task.desc=true")
    shown = [int(str(r["data-task-id"])) for r in parsed.by_attribute("data-task-id")]
    assert shown == sorted((t["taskId"] for t in tasks), reverse=True)[:20]
    _, parsed = _page(client, url + "&task.sort=Duration&task.desc=true&task.page=1")
    shown = [int(str(r["data-task-id"])) for r in parsed.by_attribute("data-task-id")]
    durations = {t["taskId"]: t.get("duration", 0) for t in tasks}
    assert [durations[t] for t in shown] == sorted(durations.values(), reverse=True)[:20]
    _, parsed = _page(client, url + "&task.sort=Index&task.page=2")
    shown = [int(str(r["data-task-id"])) for r in parsed.by_attribute("data-task-id")]
    assert shown == [t["taskId"] for t in sorted(tasks, key=lambda t: (t["index"], t["taskId"]))][20:40]


@pytest.mark.parametrize("path", ["/history/no-such-app/", "/history/no-such-app/jobs/", "/nothing/here",
                                  "/history/local-1795972896863/jobs/job/?id=999999",
                                  "/history/local-1795972896863/stages/stage/?id=999999&attempt=0",
                                  "/history/local-1795972896863/no-such-page/", "/static/none.css"])
def test_unknown_things_are_404_pages(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    page = ParsedPage(response.text)
    assert page.problems == [] and "/static/sparkhist.css" in page.links


def test_attempt_urls_and_redirects(client: TestClient) -> None:
    response = client.get("/history/local-1795972896863/", follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == "/history/local-1795972896863/jobs/"
    response = client.get("/history/local-1795972896863/stages", follow_redirects=False)
    assert response.headers["location"] == "/history/local-1795972896863/stages/"
    multi = [a for a in client.get("/api/v1/applications").json() if len(a["attempts"]) > 1]
    assert multi
    app = multi[0]
    latest = app["attempts"][0]["attemptId"]
    response = client.get(f"/history/{app['id']}/jobs/", follow_redirects=False)
    assert response.headers["location"] == f"/history/{app['id']}/{latest}/jobs/"
    for attempt in app["attempts"]:
        assert client.get(f"/history/{app['id']}/{attempt['attemptId']}/").status_code == 200
    assert client.get(f"/history/{app['id']}/no-such-attempt/jobs/").status_code == 404


def test_assets_ship_in_the_package_and_nothing_comes_from_the_network(client: TestClient) -> None:
    for name, kind in (("sparkhist.css", "text/css"), ("sparkhist.js", "text/javascript")):
        response = client.get("/static/" + name)
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
    src = Path(__file__).resolve().parents[2] / "src" / "sparkhist"
    for path in [*(src / "render" / "templates").glob("ui_*.html"), *(src / "ui" / "static").iterdir()]:
        text = path.read_text()
        for marker in ('src="http', 'href="http', "url(http", "@import", "fonts.googleapis", "cdn."):
            assert marker not in text, (path.name, marker)
