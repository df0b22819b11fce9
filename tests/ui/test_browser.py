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


# ---------------------------------------------------------------------------------- keyboard and phone
#: What the keyboard can reach (as the browser's sequential focus does, less the disabled and hidden).
_FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]"
#: JS: whether the keyboard can reach focusable ``e`` (laid out, visible, not inside a closed section but its summary).
_REACHABLE = """function reachable(e) {
  const r = e.getBoundingClientRect();
  if (!(r.width > 0 && r.height > 0 && e.tabIndex >= 0 && getComputedStyle(e).visibility === 'visible')) return false;
  for (let d = e.closest('details:not([open])'); d; d = d.parentElement && d.parentElement.closest('details:not([open])')) {
    const summary = d.querySelector(':scope > summary'); if (!summary || !summary.contains(e)) return false; }
  return true; }"""
#: The active element, described: tag, text, its sort column or rel, and whether its focus shows.
_ACTIVE = """const e = document.activeElement; if (!e || e === document.body) return null;
const s = getComputedStyle(e), r = e.getBoundingClientRect();
return {tag: e.tagName.toLowerCase(), text: (e.textContent || '').trim().slice(0, 60),
        sort: e.dataset ? e.dataset.sort || null : null, rel: e.getAttribute('rel'), id: e.id, cls: e.getAttribute('class'),
        outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
        inView: r.bottom > 0 && r.right > 0 && r.top < innerHeight}"""


def _keys(driver: Any, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    chain = ActionChains(driver)
    for key in keys:
        chain.send_keys(key)
    chain.perform()


def _tab_until(driver: Any, wanted: Any, limit: int = 300) -> dict[str, Any]:
    """Press Tab until the active element satisfies ``wanted`` (the keyboard only); return it."""
    from selenium.webdriver.common.keys import Keys

    for _ in range(limit):
        _keys(driver, Keys.TAB)
        active = driver.execute_script(_ACTIVE)
        if active is not None and wanted(active):
            return dict(active)
    raise AssertionError(f"not reached with {limit} Tab presses")


def _wait_url(driver: Any, part: str) -> None:
    deadline = time.monotonic() + 20
    while part not in driver.current_url:
        assert time.monotonic() < deadline, (part, driver.current_url)
        time.sleep(0.05)
    driver.execute_script("return document.readyState")


def _shown_tasks(driver: Any) -> list[int]:
    return [int(x) for x in driver.execute_script(
        "return Array.from(document.querySelectorAll('tr[data-task-id]')).map(r => r.dataset.taskId)")]


def _biggest_stage(base_url: str) -> tuple[str, dict[str, Any]]:
    """(API path of the attempt, stage) of the stage with the most tasks in the corpus."""
    found: list[tuple[int, str, dict[str, Any]]] = []
    for app in _api(base_url, "applications"):
        for attempt in app["attempts"]:
            attempt_id = attempt.get("attemptId")
            api = f"applications/{quote(app['id'], safe='')}/" + (f"{quote(attempt_id, safe='')}/" if attempt_id else "")
            found.extend((s["numTasks"], api, s) for s in _api(base_url, api + "stages"))
    _, api, stage = max(found, key=lambda f: f[0])
    return api, stage


def test_the_keyboard_reaches_everything_in_order_and_operates_sort_paging_and_sections(
        base_url: str, browser: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    api, stage = _biggest_stage(base_url)
    key = f"{stage['stageId']}/{stage['attemptId']}"
    tasks = _api(base_url, f"{api}stages/{key}/taskList?length=1000000")
    assert len(tasks) > 40, "two pages of 20 at least"
    url = base_url + "/" + api.replace("applications/", "history/", 1) + \
        f"stages/stage/?id={stage['stageId']}&attempt={stage['attemptId']}"
    _visit(browser, url)
    positive = "return Array.from(document.querySelectorAll('[tabindex]')).filter(e => e.tabIndex > 0).length"
    assert browser.execute_script(positive) == 0  # no tab order of its own: the document's

    # The first Tab shows the skip link; Enter moves the focus to the page's content.
    _keys(browser, Keys.TAB)
    first = browser.execute_script(_ACTIVE)
    assert first["cls"] == "skip-link" and first["outline"] and first["inView"], first
    assert browser.execute_script("const r = document.activeElement.getBoundingClientRect(); return r.top >= 0 && r.height > 0")
    _keys(browser, Keys.ENTER)
    assert browser.execute_script("return document.activeElement.id") == "content"

    # Tabbing on from there goes through every link, field, button and summary of the page, in
    # document order, each with a visible focus ring, and then leaves the page.
    visited = browser.execute_script(_REACHABLE + """
        window.__visited = []; document.addEventListener('focusin', e => window.__visited.push(e.target));
        const content = document.getElementById('content');
        return Array.from(document.querySelectorAll(arguments[0])).filter(e => reachable(e)
            && (content.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING)).length""", _FOCUSABLE)
    seen: list[dict[str, Any]] = []
    for _ in range(visited + 5):
        _keys(browser, Keys.TAB)
        active = browser.execute_script(_ACTIVE)
        if active is None:
            break
        seen.append(active)
    in_order = browser.execute_script("""
        const v = window.__visited; for (let i = 1; i < v.length; i++) {
          if (!(v[i - 1].compareDocumentPosition(v[i]) & Node.DOCUMENT_POSITION_FOLLOWING))
            return [i, v[i - 1].outerHTML.slice(0, 80), v[i].outerHTML.slice(0, 80)];
        } return true""")
    assert in_order is True, in_order
    missed = browser.execute_script(_REACHABLE + """
        const content = document.getElementById('content'), v = new Set(window.__visited);
        return Array.from(document.querySelectorAll(arguments[0])).filter(e => reachable(e) && !v.has(e)
            && (content.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING)).map(e => e.outerHTML.slice(0, 100))""",
                                     _FOCUSABLE)
    assert len(seen) == visited and missed == [], (len(seen), visited, missed[:5])
    assert all(a["outline"] for a in seen), [a for a in seen if not a["outline"]][:3]
    sortable = browser.execute_script("return Array.from(document.querySelectorAll('th a[data-sort]')).map(a => a.dataset.sort)")
    assert sortable and sorted(a["sort"] for a in seen if a["sort"]) == sorted(sortable)
    assert any(a["rel"] == "next" for a in seen) and any(a["tag"] == "summary" for a in seen)
    assert any(a["tag"] == "select" for a in seen) and any(a["tag"] == "button" for a in seen)

    # Sorting with the keyboard: Tab to the Duration header, Enter; the rows are the API's tasks in that order.
    _visit(browser, url)
    _tab_until(browser, lambda a: a["sort"] == "Duration")
    _keys(browser, Keys.ENTER)
    _wait_url(browser, "task.sort=Duration")
    order = [t["taskId"] for t in sorted(tasks, key=lambda t: (t.get("duration", 0), t["taskId"]))]
    assert _shown_tasks(browser) == order[:20]
    assert browser.execute_script("return document.querySelector('th[aria-sort] a').dataset.sort") == "Duration"
    # ... Enter on it again: descending.
    _tab_until(browser, lambda a: a["sort"] == "Duration")
    _keys(browser, Keys.ENTER)
    _wait_url(browser, "task.desc=true")
    assert _shown_tasks(browser) == order[::-1][:20]
    # Paging with the keyboard: Tab to "Next", Enter: the second page of the same order.
    _tab_until(browser, lambda a: a["rel"] == "next")
    _keys(browser, Keys.ENTER)
    _wait_url(browser, "task.page=2")
    assert _shown_tasks(browser) == order[::-1][20:40]
    # The page size: arrows change the list without leaving the page; Apply (Enter) shows 100.
    _tab_until(browser, lambda a: a["tag"] == "select")
    _keys(browser, Keys.ARROW_DOWN)
    assert "task.page=2" in browser.current_url
    _tab_until(browser, lambda a: a["tag"] == "button")
    _keys(browser, Keys.ENTER)
    _wait_url(browser, "task.pageSize=100")
    assert len(_shown_tasks(browser)) == min(len(tasks), 100)

    # Collapsible sections open and close with Enter and Space on their summary.
    _visit(browser, url)
    summary = _tab_until(browser, lambda a: a["tag"] == "summary")
    is_open = "return document.activeElement.parentElement.open"
    before = browser.execute_script(is_open)
    _keys(browser, Keys.ENTER)
    assert browser.execute_script(is_open) is (not before), summary
    _keys(browser, Keys.SPACE)
    assert browser.execute_script(is_open) is before


def test_the_application_list_sorts_and_pages_with_the_keyboard(base_url: str, browser: Any) -> None:
    from selenium.webdriver.common.keys import Keys

    apps = _api(base_url, "applications")
    assert len(apps) > 20, "two pages at the default size"
    _visit(browser, base_url + "/")
    _tab_until(browser, lambda a: a["sort"] == "name")
    _keys(browser, Keys.ENTER)
    _wait_url(browser, "sort=name")
    names = browser.execute_script(
        "return Array.from(document.querySelectorAll('tr[data-app-id] td:nth-child(4)')).map(c => c.textContent)")
    assert names == sorted(names, reverse="desc=true" in browser.current_url) and names
    _tab_until(browser, lambda a: a["rel"] == "next")
    _keys(browser, Keys.ENTER)
    _wait_url(browser, "page=2")
    assert _rows(browser, "tr[data-app-id]") > 0


#: The main pages looked at on a phone (375 px) and at 1280 px.
def _main_urls(base_url: str) -> dict[str, str]:
    stages = _api(base_url, f"applications/{PHOTOGRAPHED}/stages")
    stage = max(stages, key=lambda s: s["numTasks"])
    executions = _api(base_url, f"applications/{PHOTOGRAPHED}/sql")
    base = f"{base_url}/history/{PHOTOGRAPHED}/"
    urls = {"app-list": base_url + "/", **{page.strip("/").lower(): base + page for page in MAIN_PAGES},
            "job": base + "jobs/job/?id=0",
            "stage": f"{base}stages/stage/?id={stage['stageId']}&attempt={stage['attemptId']}",
            "operations": base_url + "/operations/"}
    if executions:
        urls["sql-execution"] = f"{base}SQL/execution/?id={executions[0]['id']}"
    return urls


def test_on_a_phone_no_page_scrolls_sideways_and_tables_scroll_in_their_own_box(base_url: str, browser: Any) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    urls = _main_urls(base_url)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 375, "height": 800, "deviceScaleFactor": 1, "mobile": True})
    try:
        for name, url in urls.items():
            _visit(browser, url)
            width = browser.execute_script("return innerWidth")
            assert width == 375
            overflow = browser.execute_script("""return Array.from(document.querySelectorAll('body *')).filter(e => {
                const r = e.getBoundingClientRect(); if (r.right <= innerWidth + 0.5 || r.width === 0) return false;
                for (let p = e.parentElement; p; p = p.parentElement) {
                  const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return false; }
                return true; }).slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + (e.id || ''))""")
            assert browser.execute_script("return document.documentElement.scrollWidth <= innerWidth"), (name, overflow)
            # the tabs and links of the header wrap inside the screen
            assert browser.execute_script("return Array.from(document.querySelectorAll('header.top a'))"
                                          ".every(a => a.getBoundingClientRect().right <= innerWidth)"), name
            # every table scrolls inside its own box
            assert browser.execute_script("return Array.from(document.querySelectorAll('main table')).every(t => "
                                          "t.closest('.table-wrap, .figure-wrap') !== null)"), name
            height = int(browser.execute_script("return document.documentElement.scrollHeight"))
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": 375, "height": min(max(height, 800), 6000), "deviceScaleFactor": 1,
                                     "mobile": True})
            assert browser.save_screenshot(str(SCREENSHOTS / f"phone-{name}.png"))
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": 375, "height": 800, "deviceScaleFactor": 1, "mobile": True})
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert len(list(SCREENSHOTS.glob("phone-*.png"))) >= len(urls)
