"""The web UI in a real browser: headless Chromium (Debian ``chromium`` + ``chromium-driver``,
driven by selenium) loads the main pages of every application of the real corpus over
HTTP with no console error and no failed request, shows the API's figures, and writes
screenshots of the main pages at 1280 px to ``screenshots/`` (ignored by git) for review."""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn

from support.server import runtime_for
from support.ui_corpus import ui_server

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
#: The application whose main pages are photographed (SQL, cached RDDs, several stages).
PHOTOGRAPHED = "local-1795972896863"
MAIN_PAGES = ["jobs/", "stages/", "executors/", "environment/", "SQL/", "storage/"]


#: A Content-Security-Policy without 'unsafe-inline' (as the access layer will send): the
#: pages must work under it, so a style attribute, inline script or handler is a console error.
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'"


def _with_csp(app: Any) -> Any:
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def send_with_csp(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"content-security-policy", CSP.encode())]}
            await send(message)

        await app(scope, receive, send_with_csp if scope["type"] == "http" else send)

    return wrapped


@contextmanager
def _served(app: Any) -> Iterator[str]:
    """``app`` served over HTTP on a free port, in a thread, under :data:`CSP`: its base URL."""
    app = _with_csp(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with ui_server(tmp_path_factory.mktemp("browser")) as (runtime, _), _served(runtime.app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("Debian chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def _visit(driver: Any, url: str) -> None:
    """Load ``url``; fail on a console error or a request that failed or answered >= 400."""
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(url)
    driver.execute_script("return document.readyState")
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == [], (url, errors)
    failed = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.loadingFailed":
            failed.append(message["params"])
        elif message["method"] == "Network.responseReceived" and message["params"]["response"]["status"] >= 400:
            failed.append(message["params"]["response"]["url"])
    assert failed == [], (url, failed)


def _rows(driver: Any, selector: str) -> int:
    return int(driver.execute_script(f"return document.querySelectorAll({json.dumps(selector)}).length"))


def _api(base_url: str, path: str) -> Any:
    import httpx

    return httpx.get(base_url + "/api/v1/" + path, timeout=30).json()


def test_main_pages_of_every_application_load_cleanly(base_url: str, browser: Any) -> None:
    _visit(browser, base_url + "/")
    _visit(browser, base_url + "/?showIncomplete=true")
    # the script ran: dates are in the browser's zone, the UTC text kept as their title
    assert browser.execute_script("return document.querySelector('time').title.endsWith(' UTC')")
    visited = 0
    for app in _api(base_url, "applications"):
        for attempt in app["attempts"]:
            attempt_id = attempt.get("attemptId")
            api = f"applications/{quote(app['id'], safe='')}/" + (f"{quote(attempt_id, safe='')}/" if attempt_id else "")
            base = base_url + "/" + api.replace("applications/", "history/", 1)
            for page in MAIN_PAGES:
                _visit(browser, base + page)
                visited += 1
            _visit(browser, base + "jobs/")
            assert _rows(browser, "tr[data-job-id]") == len(_api(base_url, api + "jobs"))
            stages = _api(base_url, api + "stages")
            _visit(browser, base + "stages/")
            assert _rows(browser, "tr[data-stage-id]") == len(stages)
            if stages:
                stage = stages[-1]
                _visit(browser, f"{base}stages/stage/?id={stage['stageId']}&attempt={stage['attemptId']}")
                tasks = _api(base_url, f"{api}stages/{stage['stageId']}/{stage['attemptId']}/taskList?length=20")
                assert _rows(browser, "tr[data-task-id]") == len(tasks)
            executors = _api(base_url, api + "allexecutors")
            _visit(browser, base + "executors/")
            shown = browser.execute_script(
                "return Array.from(document.querySelectorAll('.executor-address')).map(e => e.textContent)")
            assert shown == [x["hostPort"] for x in executors]
    assert visited >= 6 * 20


def test_links_lead_from_the_list_down_to_a_task_and_back(base_url: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _visit(browser, base_url + "/?search=" + PHOTOGRAPHED)
    browser.find_element(By.CSS_SELECTOR, f'tr[data-app-id="{PHOTOGRAPHED}"] a.app-link').click()
    assert browser.current_url.endswith(f"/history/{PHOTOGRAPHED}/jobs/")
    browser.find_element(By.CSS_SELECTOR, "a.job-name").click()
    assert "/jobs/job/?id=" in browser.current_url
    browser.find_element(By.CSS_SELECTOR, "a.stage-name").click()
    assert "/stages/stage/?id=" in browser.current_url
    assert _rows(browser, "tr[data-task-id]") > 0
    browser.find_element(By.LINK_TEXT, "Back to all stages").click()
    assert browser.current_url.endswith("/stages/")
    browser.find_element(By.CSS_SELECTOR, "a.brand").click()
    assert browser.current_url == base_url + "/"


def test_screenshots_of_the_main_pages(base_url: str, browser: Any) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    stages = _api(base_url, f"applications/{PHOTOGRAPHED}/stages")
    stage = max(stages, key=lambda s: s["numTasks"])
    executions = _api(base_url, f"applications/{PHOTOGRAPHED}/sql")
    base = f"{base_url}/history/{PHOTOGRAPHED}/"
    shots = {"app-list": base_url + "/", "incomplete": base_url + "/?showIncomplete=true",
             **{page.strip("/").lower() or page: base + page for page in MAIN_PAGES},
             "job": base + "jobs/job/?id=0",
             "stage": f"{base}stages/stage/?id={stage['stageId']}&attempt={stage['attemptId']}",
             "not-found": base_url + "/history/no-such-app/jobs/", "operations": base_url + "/operations/"}
    if executions:
        shots["sql-execution"] = f"{base}SQL/execution/?id={executions[0]['id']}"
    for name, url in shots.items():
        if name == "not-found":
            browser.get(url)
        else:
            _visit(browser, url)
        height = int(browser.execute_script("return document.documentElement.scrollHeight"))
        browser.set_window_size(1280, min(max(height, 600), 4000))
        assert int(browser.execute_script("return document.documentElement.scrollWidth")) <= 1280 or name in (
            "environment", "stage"), f"{name} scrolls sideways at 1280 px"
        assert browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        browser.set_window_size(1280, 1000)
    assert len(list(SCREENSHOTS.glob("*.png"))) >= len(shots)


# ---------------------------------------------------------------------------------- the generated Spark corpus
@pytest.fixture(scope="module")
def corpus_url(spark_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with runtime_for(spark_corpus, tmp_path_factory.mktemp("corpus-store")) as (runtime, _), \
            _served(runtime.app) as url:
        yield url


def _js(driver: Any, script: str) -> Any:
    return driver.execute_script("return " + script)


def test_every_page_of_the_generated_corpus_loads_cleanly_with_the_apis_figures(corpus_url: str, browser: Any) -> None:
    """Every page of every application pyspark wrote (finished, killed, rolling, every codec):
    no console error, no failed request, and the API's figures on it, figures drawn in SVG too."""
    apps = _api(corpus_url, "applications")
    assert len(apps) >= 10
    _visit(browser, corpus_url + "/")
    _visit(browser, corpus_url + "/?showIncomplete=true")
    _visit(browser, corpus_url + "/operations/")
    assert _rows(browser, "figure[data-meter]") >= 3
    pages = 0
    for app in apps:
        for attempt in app["attempts"]:
            attempt_id = attempt.get("attemptId")
            api = f"applications/{quote(app['id'], safe='')}/" + (f"{quote(attempt_id, safe='')}/" if attempt_id else "")
            base = corpus_url + "/" + api.replace("applications/", "history/", 1)
            for page in MAIN_PAGES:
                _visit(browser, base + page)
                pages += 1
            jobs = _api(corpus_url, api + "jobs")
            _visit(browser, base + "jobs/")
            assert _rows(browser, "tr[data-job-id]") == len(jobs)
            assert sorted(map(int, _js(browser, "Array.from(document.querySelectorAll('#jobs-timeline [data-timeline-job]'))"
                                               ".map(e => e.dataset.timelineJob)"))) == sorted(
                j["jobId"] for j in jobs if "submissionTime" in j)
            for job in jobs:
                _visit(browser, f"{base}jobs/job/?id={job['jobId']}")
                assert _js(browser, "document.querySelector('.job-name').textContent") == job["name"]
                pages += 1
            stages = _api(corpus_url, api + "stages")
            for stage in stages:
                key = f"{stage['stageId']}/{stage['attemptId']}"
                _visit(browser, f"{base}stages/stage/?id={stage['stageId']}&attempt={stage['attemptId']}")
                pages += 1
                total = int(_api(corpus_url, f"{api}stages/{key}/taskTable?length=1")["recordsTotal"])
                assert _js(browser, "document.getElementById('task-total').textContent") == str(total)
                shown = _rows(browser, "tr[data-task-id]")
                assert shown == min(total, 20)
                assert _rows(browser, "#task-timeline [data-timeline-task]") == shown
                if stage["numCompleteTasks"]:
                    assert _rows(browser, "figure[data-chart='duration']") == 1
            for execution in _api(corpus_url, api + "sql?length=1000"):
                detail = _api(corpus_url, f"{api}sql/{execution['id']}")
                _visit(browser, f"{base}SQL/execution/?id={execution['id']}")
                pages += 1
                drawn = _js(browser, "Array.from(document.querySelectorAll('#plan-graph g.plan-node'))"
                                     ".map(e => Number(e.dataset.nodeId))")
                assert sorted(drawn) == sorted(n["nodeId"] for n in detail["nodes"]
                                               if not n["nodeName"].startswith("WholeStageCodegen"))
                # every operator's box is inside the drawing and no two boxes overlap
                boxes = _js(browser, "Array.from(document.querySelectorAll('#plan-graph g.plan-node > rect'))"
                                     ".map(r => { const b = r.getBBox(); return [b.x, b.y, b.width, b.height]; })")
                for (x0, y0, w0, h0), (x1, y1, w1, h1) in itertools.combinations(boxes, 2):
                    assert not (x0 < x1 + w1 and x1 < x0 + w0 and y0 < y1 + h1 and y1 < y0 + h0)
            for rdd in _api(corpus_url, api + "storage/rdd"):
                _visit(browser, f"{base}storage/rdd/?id={rdd['id']}")
                pages += 1
            executors = _api(corpus_url, api + "allexecutors")
            _visit(browser, base + "executors/")
            assert _js(browser, "Array.from(document.querySelectorAll('.executor-address')).map(e => e.textContent)") == [
                x["hostPort"] for x in executors]
    assert pages >= 20 * len(apps)
