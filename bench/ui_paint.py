"""Web UI paint times in headless Chromium: sparkhist beside the stock SHS, same logs, same run.

    .venv/bin/python bench/ui_paint.py                    # / at 10,000 and 100,000 apps, a 12,000-task stage page
    .venv/bin/python bench/ui_paint.py --apps 2000        # other list sizes (repeatable)
    .venv/bin/python bench/ui_paint.py --quick            # 300 apps, the 400-task big app: a smoke run
    .venv/bin/python bench/ui_paint.py --only sparkhist   # or --only SHS
    .venv/bin/python bench/ui_paint.py --task-table 100000 --before f466f90   # task table pages, no browser

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
1/3 of the SHS's time, and under 1 s for ``/`` at 100,000 apps. A SHS that has not listed
every application after ``--shs-list-timeout`` seconds is measured as it is (its list
then shows fewer applications; the count it reached is printed).

``--task-table N``: the big app of N tasks alone, sparkhist only, no browser: the time of
the stage page and of ``taskTable`` pages (20 rows) sorted by several columns, both ways,
first, middle and last page; the first request of a column (which reads the stage's tasks)
apart from the others. ``--before REV`` runs the same requests against the source of a
git revision too (its ``src/`` exported to a temporary directory), for a before/after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
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
#: Time to the answer's first byte (the server's share of a paint), from the navigation's start.
_TTFB = """const n = performance.getEntriesByType('navigation')[0]; return n ? n.responseStart - n.startTime : null"""


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


def load(driver: Any, url: str, row_selector: str) -> tuple[float, float, float]:
    """(first contentful paint, first row shown, first byte), in ms from the navigation's start."""
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
    ttfb = driver.execute_script(_TTFB)
    return float(fcp or float("nan")) - nav, float(shown) - nav, float("nan") if ttfb is None else float(ttfb)


def measure(driver: Any, url: str, row_selector: str, repeat: int) -> dict[str, float]:
    load(driver, url, row_selector)  # warm-up: the server's first answer and the browser's caches
    runs = [load(driver, url, row_selector) for _ in range(repeat)]
    return {"fcp": statistics.median(r[0] for r in runs), "shown": statistics.median(r[1] for r in runs),
            "fcp_max": max(r[0] for r in runs), "shown_max": max(r[1] for r in runs),
            "ttfb": statistics.median(r[2] for r in runs)}


def stage_of(client: httpx.Client, server: servers.Server, app: str) -> int:
    stages = client.get(server.url(f"applications/{app}/stages"), timeout=SHOWN_TIMEOUT_S).json()
    return int(max(stages, key=lambda s: s["numCompleteTasks"])["stageId"])  # a skipped stage has no rows


def _listed(server: servers.Server, client: httpx.Client) -> int:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        return len(client.get(server.url("applications"), timeout=SHOWN_TIMEOUT_S).json())
    return 0


def run_server(kind: str, logs: corpus.Corpus, work: Path, args: argparse.Namespace, stage_page: bool,
               results: dict[str, dict[str, float]]) -> None:
    client = httpx.Client(timeout=60.0)
    store = work / f"{kind}-store-{logs.apps}"
    started = servers.shs(logs.log_dir) if kind == "SHS" else servers.sparkhist(logs.log_dir, store, work)
    try:
        with started as server:
            timeout = args.shs_list_timeout if kind == "SHS" else args.list_timeout
            partial = ""
            try:
                listed = servers.wait_listed(server, logs.apps, client, timeout)
                print(f"{kind}: {logs.apps:,} apps listed {listed:.1f}s after start", flush=True)
            except TimeoutError:
                reached = _listed(server, client)
                partial = f" (listed {reached:,} of {logs.apps:,} after {server.since_start():.0f}s)"
                print(f"{kind}: {partial.strip(' ()')}; measured as it is", flush=True)
            if kind == "sparkhist" and not args.list_only:
                servers.wait_first_scan(server, client, args.list_timeout)
            base = server.base_url
            with chromium() as driver:
                # The browser's floor on this machine now: a one-paragraph page with nothing to fetch.
                found = measure(driver, "data:text/html,<p>floor</p>", "p", args.repeat)
                results[f"{kind} run: browser floor (one-line page)"] = found
                found = measure(driver, base + "/", ROW_SELECTORS[(kind, "list")], args.repeat)
                results[f"{kind} / {logs.apps:,} apps{partial}"] = found
                print(f"  / : FCP {found['fcp']:.0f} ms, rows shown {found['shown']:.0f} ms", flush=True)
                if stage_page and logs.big_app_id and not args.list_only:
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
    p.add_argument("--shs-list-timeout", type=float, default=7200.0,
                   help="seconds to wait for the SHS to list every app; then it is measured as it is")
    p.add_argument("--list-only", action="store_true",
                   help="only /, measured once every app is listed (sparkhist still indexing them meanwhile)")
    p.add_argument("--task-table", type=int, metavar="N", help="task table pages of an N-task stage (no browser)")
    p.add_argument("--before", metavar="REV", help="with --task-table: the same against a git revision's source")
    p.add_argument("--task-log", nargs=2, metavar=("LOG_DIR", "APP_ID"),
                   help="with --task-table: this directory's app instead of bench/bigapp.py's (cached) run")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = p.parse_args(argv)
    if args.quick:
        args.apps, args.big_tasks, args.repeat = args.apps or [300], 400, 3
    args.apps = args.apps or [10_000, 100_000]
    return args


#: The ``taskTable`` sorts timed (the stage page's own request, then the columns people click).
TABLE_SORTS = ("Index", "Duration", "Launch Time", "Host", "Status")


def _timed(client: httpx.Client, url: str) -> float:
    t0 = time.perf_counter()
    response = client.get(url, timeout=SHOWN_TIMEOUT_S)
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
    return elapsed


def task_table_times(log_dir: Path, app: str, work: Path, env: dict[str, str] | None) -> dict[str, float]:
    """Milliseconds of the stage page and of taskTable pages in a fresh sparkhist over ``log_dir``."""
    client = httpx.Client(timeout=SHOWN_TIMEOUT_S)
    store = work / f"store-{time.monotonic_ns()}"
    out: dict[str, float] = {}
    try:
        with servers.sparkhist(log_dir, store, work, env=env) as server:
            servers.wait_listed(server, 1, client, 600)
            servers.wait_first_scan(server, client, 1800)
            stage = stage_of(client, server, app)
            total = int(client.get(server.url(f"applications/{app}/stages/{stage}/0/taskTable?length=1"),
                                   timeout=SHOWN_TIMEOUT_S).json()["recordsTotal"])
            table = server.url(f"applications/{app}/stages/{stage}/0/taskTable")
            page = f"{server.base_url}/history/{app}/stages/stage/?id={stage}&attempt=0"
            out["stage page, first"] = _timed(client, page)
            out["stage page, again"] = statistics.median(_timed(client, page) for _ in range(3))
            firsts, others = [], []
            for column in TABLE_SORTS:
                for i, (direction, start) in enumerate((("asc", 0), ("desc", 0), ("asc", total // 2),
                                                         ("desc", total // 2), ("asc", max(total - 20, 0)))):
                    ms = _timed(client, f"{table}?start={start}&length=20&columnNameToSort={column}"
                                        f"&order[0][dir]={direction}")
                    (firsts if i == 0 else others).append(ms)
            out["taskTable, first page of a column"] = statistics.median(firsts)
            out["taskTable, any other page"] = statistics.median(others)
            out["taskTable, worst page"] = max(firsts + others)
            out["tasks"] = float(total)
    finally:
        client.close()
        shutil.rmtree(store, ignore_errors=True)
    return out


def run_task_table(args: argparse.Namespace) -> int:
    if args.task_log:
        log_dir, app = Path(args.task_log[0]), args.task_log[1]
    else:
        big = corpus.ensure_big_log(args.task_table)
        assert big.big_app_id is not None
        log_dir, app = big.log_dir, big.big_app_id
    work = Path(tempfile.mkdtemp(prefix="sparkhist-task-table-"))
    runs: dict[str, dict[str, float]] = {}
    try:
        if args.before:
            old = work / "before"
            old.mkdir()
            archive = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "archive", args.before, "src"],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            env = {**os.environ, "PYTHONPATH": str(old / "src")}
            runs[f"before ({args.before})"] = task_table_times(log_dir, app, work, env)
        runs["now"] = task_table_times(log_dir, app, work, None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    names = list(next(iter(runs.values())))
    print(f"{'ms (' + str(args.task_table) + ' tasks)':<40}" + "".join(f"{k:>22}" for k in runs))
    for name in names:
        print(f"{name:<40}" + "".join(f"{r[name]:>22.0f}" for r in runs.values()))
    if args.json:
        print(json.dumps(runs, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.task_table:
        return run_task_table(args)
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
    print(f"{'page':<40} {'FCP ms':>9} {'rows shown ms':>14} {'first byte ms':>14}   (median of {args.repeat}; worst)")
    for name, found in results.items():
        print(f"{name:<40} {found['fcp']:>9.0f} {found['shown']:>14.0f} {found.get('ttfb', float('nan')):>14.0f}   "
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
