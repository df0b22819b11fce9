"""Web UI paint times in headless Chromium: sparkhist beside the stock SHS, same logs, same run.

    .venv/bin/python bench/ui_paint.py                    # / at 10,000 and 100,000 apps, a 12,000-task stage page
    .venv/bin/python bench/ui_paint.py --apps 2000        # other list sizes (repeatable)
    .venv/bin/python bench/ui_paint.py --quick            # 300 apps, the 400-task big app: a smoke run
    .venv/bin/python bench/ui_paint.py --only sparkhist   # or --only SHS

Not a test, and not run in CI. For each corpus (N apps scaled from the conformance logs
plus the big app, as ``bench/run.py`` builds them) the SHS and then sparkhist are started
over the same directory; once every app is listed (and, for sparkhist, indexed) a fresh
headless Chromium (Debian ``chromium`` + ``chromium-driver``, selenium) loads each page
``--repeat`` times after one warm-up load and the medians are reported:

* **FCP**: ``first-contentful-paint`` from the Paint Timing API;
* **shown**: when the page's table has its first row in the DOM (polled). The SHS builds the application
  list and the task table in the browser from ``/api/v1`` (``historypage.js``,
  ``stagepage.js``), so its first paint comes before its rows; sparkhist's rows are in
  the HTML. Both figures are given so neither flatters either server.

Pages: ``/`` at each list size, and the big app's stage page (``/history/<app>/stages/stage/?id=S&attempt=0``).
Prints one table (and its JSON with ``--json``). The issue's target: sparkhist at most
1/3 of the SHS's time, and under 1 s for ``/`` at 100,000 apps.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

import corpus
import servers

#: How a page's first table row is found, per server and page.
ROW_SELECTORS = {
    ("SHS", "list"): "#history-summary-table tbody tr td:not(.dataTables_empty)",
    ("sparkhist", "list"): "tr[data-app-id]",
    ("SHS", "stage"): "#active-tasks-table tbody tr td:not(.dataTables_empty)",
    ("sparkhist", "stage"): "tr[data-task-id]",
}
SHOWN_TIMEOUT_S = 300.0

_FCP = """return (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null"""
_NAV = """const n = performance.getEntriesByType('navigation')[0]; return n ? n.startTime : 0"""


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    chromium_path, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium_path is None or driver_path is None:
        raise SystemExit("needs Debian chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.page_load_strategy = "normal"
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(SHOWN_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def load(driver: Any, url: str, row_selector: str) -> tuple[float, float]:
    """(first contentful paint, first row shown), in ms from the navigation's start."""
    driver.get("about:blank")
    driver.get(url)
    deadline = time.monotonic() + SHOWN_TIMEOUT_S
    shown: float | None = None
    # Page time when the first row exists: polled (the SHS adds its rows after the load event).
    script = ("const r = document.querySelector(arguments[0]); "
              "return r ? performance.now() : null")
    while shown is None:
        shown = driver.execute_script(script, row_selector)
        if shown is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {row_selector} on {url}")
            time.sleep(0.005)
    fcp = None
    while fcp is None and time.monotonic() < deadline:
        fcp = driver.execute_script(_FCP)
        if fcp is None:
            time.sleep(0.01)
    nav = float(driver.execute_script(_NAV) or 0)
    return float(fcp or float("nan")) - nav, float(shown) - nav


def measure(driver: Any, url: str, row_selector: str, repeat: int) -> dict[str, float]:
    load(driver, url, row_selector)  # warm-up: the server's first answer and the browser's caches
    runs = [load(driver, url, row_selector) for _ in range(repeat)]
    return {"fcp": statistics.median(r[0] for r in runs), "shown": statistics.median(r[1] for r in runs),
            "fcp_max": max(r[0] for r in runs), "shown_max": max(r[1] for r in runs)}


def stage_of(client: httpx.Client, server: servers.Server, app: str) -> int:
    stages = client.get(server.url(f"applications/{app}/stages"), timeout=SHOWN_TIMEOUT_S).json()
    return int(max(stages, key=lambda s: s["numCompleteTasks"])["stageId"])  # a skipped stage has no rows


def run_server(kind: str, logs: corpus.Corpus, work: Path, args: argparse.Namespace, stage_page: bool,
               results: dict[str, dict[str, float]]) -> None:
    client = httpx.Client(timeout=60.0)
    store = work / f"{kind}-store-{logs.apps}"
    started = servers.shs(logs.log_dir) if kind == "SHS" else servers.sparkhist(logs.log_dir, store, work)
    try:
        with started as server:
            listed = servers.wait_listed(server, logs.apps, client, args.list_timeout)
            print(f"{kind}: {logs.apps:,} apps listed {listed:.1f}s after start", flush=True)
            if kind == "sparkhist":
                servers.wait_first_scan(server, client, args.list_timeout)
            base = server.base_url
            with chromium() as driver:
                found = measure(driver, base + "/", ROW_SELECTORS[(kind, "list")], args.repeat)
                results[f"{kind} / {logs.apps:,} apps"] = found
                print(f"  / : FCP {found['fcp']:.0f} ms, rows shown {found['shown']:.0f} ms", flush=True)
                if stage_page and logs.big_app_id:
                    stage = stage_of(client, server, logs.big_app_id)
                    url = f"{base}/history/{logs.big_app_id}/stages/stage/?id={stage}&attempt=0"
                    found = measure(driver, url, ROW_SELECTORS[(kind, "stage")], args.repeat)
                    results[f"{kind} stage of {args.big_tasks:,} tasks"] = found
                    print(f"  stage page: FCP {found['fcp']:.0f} ms, rows shown {found['shown']:.0f} ms", flush=True)
    finally:
        client.close()
        shutil.rmtree(store, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--apps", type=int, action="append", help="list sizes (default 10,000 and 100,000)")
    p.add_argument("--big-tasks", type=int, default=corpus.BIG_TASKS)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--only", choices=("SHS", "sparkhist"))
    p.add_argument("--quick", action="store_true", help="300 apps and the 400-task big app")
    p.add_argument("--list-timeout", type=float, default=7200.0)
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = p.parse_args(argv)
    if args.quick:
        args.apps, args.big_tasks, args.repeat = args.apps or [300], 400, 3
    args.apps = args.apps or [10_000, 100_000]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kinds = [k for k in ("SHS", "sparkhist") if args.only in (None, k)]
    big = corpus.ensure_big_log(args.big_tasks)
    results: dict[str, dict[str, float]] = {}
    failed: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="sparkhist-ui-paint-"))
    try:
        for i, n in enumerate(sorted(args.apps)):
            logs = corpus.ensure_scaled(n, "rolling", big=big)  # Spark 4's default layout, the big app in it
            for kind in kinds:
                try:
                    run_server(kind, logs, work, args, stage_page=i == 0, results=results)
                except Exception as exc:  # noqa: BLE001 - a failed server is a row of n/a, not a lost run
                    failed.append(f"{kind} at {n:,} apps: {type(exc).__name__}: {str(exc)[:300]}")
                    print("failed:", failed[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{'page':<40} {'FCP ms':>9} {'rows shown ms':>14}   (median of {args.repeat}; worst)")
    for name, found in results.items():
        print(f"{name:<40} {found['fcp']:>9.0f} {found['shown']:>14.0f}   "
              f"({found['fcp_max']:.0f}; {found['shown_max']:.0f})")
    for name in [k for k in results if k.startswith("sparkhist")]:
        other = results.get("SHS" + name[len("sparkhist"):])
        if other:
            mine = results[name]
            print(f"{name[len('sparkhist '):]}: sparkhist/SHS FCP {mine['fcp'] / other['fcp']:.2f}, "
                  f"rows shown {mine['shown'] / other['shown']:.2f}")
    for line in failed:
        print("failed:", line)
    if args.json:
        print(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
