"""API latency under concurrent clients: httpx async, a bounded number of requests.

``concurrency`` clients share one connection pool of the same size; each sends its
next request as soon as the previous answer is read in full. A run stops after
``total`` requests or ``budget_s`` seconds, whichever comes first (a full 10k-app
listing is several MB per answer), and says how many it did. A request still unanswered
``budget_s`` after the budget ran out is given up and counted as an error
(``unanswered after 2× the budget``): a server that stalls under load shows as failed
requests, and one endpoint's run never takes more than twice its budget. The very first request
is timed alone (``first_ms``: what the first user waits); then a few untimed ones warm
the server up (JIT, caches) before the timed run: a long-running server is warm.

The clients run on the same machine as the server, so on a small box they take CPU
from it; both servers pay the same price.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Latency:
    requests: int
    first_ms: float  # the very first request, alone (before the warm-up and the timed run)
    errors: int  # non-200 answers or transport errors
    error_kinds: dict[str, int]  # "HTTP 503", "ReadTimeout", ... -> count
    p50_ms: float
    p99_ms: float
    mean_ms: float
    per_second: float
    cut_by_budget: bool


def measure(url: str, *, total: int, concurrency: int, budget_s: float, warmup: int = 20) -> Latency:
    return asyncio.run(_measure(url, total, concurrency, budget_s, warmup))


async def _measure(url: str, total: int, concurrency: int, budget_s: float, warmup: int) -> Latency:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120.0) as client:
        t = time.perf_counter()
        first = await client.get(url)
        first_ms = (time.perf_counter() - t) * 1000
        if first.status_code != 200:
            raise RuntimeError(f"GET {url}: {first.status_code} {first.text[:300]}")
        await _run(client, url, min(warmup, total), concurrency, budget_s, [], {})
        latencies: list[float] = []
        errors: dict[str, int] = {}
        started = time.perf_counter()
        await _run(client, url, total, concurrency, budget_s, latencies, errors)
        wall = time.perf_counter() - started
    done = sorted(latencies)
    if not done:
        raise RuntimeError(f"no request to {url} completed")
    return Latency(
        requests=len(done),
        first_ms=first_ms,
        errors=sum(errors.values()),
        error_kinds=errors,
        p50_ms=_percentile(done, 0.50) * 1000,
        p99_ms=_percentile(done, 0.99) * 1000,
        mean_ms=sum(done) / len(done) * 1000,
        per_second=len(done) / wall,
        cut_by_budget=len(done) + sum(errors.values()) < total,
    )


#: The error kind of a request still unanswered when an endpoint's run ends.
UNANSWERED = "unanswered after 2× the budget"


async def _run(client: httpx.AsyncClient, url: str, total: int, concurrency: int, budget_s: float,
               latencies: list[float], errors: dict[str, int]) -> None:
    deadline = time.perf_counter() + budget_s
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < total and time.perf_counter() < deadline:
            issued += 1
            t = time.perf_counter()
            try:
                response = await client.get(url)
                await response.aread()
            except httpx.TransportError as exc:
                kind = type(exc).__name__
                errors[kind] = errors.get(kind, 0) + 1
                continue
            if response.status_code == 200:
                latencies.append(time.perf_counter() - t)
            else:
                kind = f"HTTP {response.status_code}"
                errors[kind] = errors.get(kind, 0) + 1

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    _, stalled = await asyncio.wait(workers, timeout=2 * budget_s)
    for task in stalled:
        task.cancel()
    if stalled:
        await asyncio.gather(*stalled, return_exceptions=True)
        errors[UNANSWERED] = errors.get(UNANSWERED, 0) + len(stalled)


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


# --------------------------------------------------------------------------- serving processes and freshness
#
#     .venv/bin/python bench/latency.py serving [--apps 300] [--processes 1,2,4] [--requests 3000]
#     .venv/bin/python bench/latency.py freshness [--logs 50] [--processes 2]
#
# ``serving``: the 50-client p50 of the list, the big app's /stages and its /taskList on the
# real SHS 4.3.0 (in memory, as shipped) and on sparkhist with each count of serving
# processes, one after the other over the same directory (rolling + zstd apps and the
# 12,000-task log), with the CPU the machine's other processes used meanwhile.
# ``freshness``: sparkhist with a 60 s scan interval; ``--logs`` copies of a real log moved
# into its directory one at a time; the time from the rename to the first list that
# names it (polled every 5 ms), median and p95.


def _endpoints(client: httpx.Client, base_url: str, app: str) -> dict[str, str]:
    stages = client.get(f"{base_url}/api/v1/applications/{app}/stages").json()
    big = max(stages, key=lambda s: s["numTasks"])
    return {
        "list": f"{base_url}/api/v1/applications",
        "stages": f"{base_url}/api/v1/applications/{app}/stages",
        "tasks": f"{base_url}/api/v1/applications/{app}/stages/{big['stageId']}/{big['attemptId']}/taskList",
    }


def _serving_main(args: Any) -> None:
    import tempfile
    from pathlib import Path

    import corpus
    import noise
    import servers

    big = corpus.ensure_big_log()
    logs = corpus.ensure_scaled(args.apps, "rolling", big=big)
    n_apps = args.apps + 1
    work = Path(tempfile.mkdtemp(prefix="sparkhist-bench-serving-"))
    results: dict[str, dict[str, Latency]] = {}
    foreign: dict[str, str] = {}

    def run(label: str, server: servers.Server) -> None:
        with httpx.Client(timeout=600) as client:
            servers.wait_listed(server, n_apps, client, 1200)
            if server.kind == "sparkhist":
                servers.wait_first_scan(server, client, 1200)
            endpoints = _endpoints(client, server.base_url, logs.big_app_id)
            for url in endpoints.values():  # each answer once (the states and kept answers built)
                client.get(url)
        with noise.ForeignLoad(interval=2.0) as load:
            results[label] = {name: measure(url, total=args.requests, concurrency=args.concurrency, budget_s=args.budget)
                              for name, url in endpoints.items()}
        foreign[label] = load.summary()
        print(label, {n: f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, {r.per_second:.0f}/s, {r.errors} errors"
                      for n, r in results[label].items()}, "| others:", foreign[label], flush=True)

    with servers.shs(logs.log_dir) as shs:
        run("SHS 4.3.0", shs)
    for count in args.processes:
        env = {**os.environ, "SPARKHIST_SERVE_PROCESSES": str(count)}
        store = work / f"store-{count}"
        with servers.sparkhist(logs.log_dir, store, work, env) as sh:
            if count > 1:
                _wait_serving(sh.base_url, count)
            run(f"sparkhist, {count} serving process{'es' if count > 1 else ''}", sh)
    shs_results = results["SHS 4.3.0"]
    print(f"\n| {args.concurrency} clients, p50 (p99) | " + " | ".join(results) + " |")
    print("|---|" + "---:|" * len(results))
    for name in ("list", "stages", "tasks"):
        cells = []
        for label, by_name in results.items():
            r = by_name[name]
            ratio = "" if label.startswith("SHS") else f" **{shs_results[name].p50_ms / r.p50_ms:.1f}×**"
            cells.append(f"{r.p50_ms:.1f} ms ({r.p99_ms:.0f}){ratio}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for label, summary in foreign.items():
        print(f"- others' CPU during {label}: {summary}")


def _wait_serving(base_url: str, count: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            serving = httpx.get(f"{base_url}/health/details", timeout=30).json().get("serving") or {}
            if serving.get("answering") == count:
                return
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{count} serving processes not answering after {timeout:.0f}s")


def _freshness_main(args: Any) -> None:
    import tempfile
    from pathlib import Path

    import corpus  # noqa: F401  (puts src/ on sys.path)
    import noise
    import servers
    from sparkhist.config import bundled_samples
    from sparkhist.devtools.scale import load_template, rewrite, write_log

    work = Path(tempfile.mkdtemp(prefix="sparkhist-bench-freshness-"))
    log_dir, stage = work / "logs", work / "stage"
    log_dir.mkdir()
    stage.mkdir()
    template = load_template(Path(bundled_samples()) / "local-1795972905472.lz4")
    first = write_log(stage, "local-1795972800000", rewrite(template, "local-1795972800000"), codec=template.codec,
                      kind="single", in_progress=False)
    first.rename(log_dir / first.name)
    env = {**os.environ, "SPARKHIST_SERVE_PROCESSES": str(args.processes)}
    delays: list[float] = []
    with servers.sparkhist(log_dir, work / "store", work, env, scan_interval="60") as sh, \
            httpx.Client(timeout=30) as client, noise.ForeignLoad(interval=2.0) as load:
        servers.wait_listed(sh, 1, client, 300)
        if args.processes > 1:
            _wait_serving(sh.base_url, args.processes)
        for i in range(1, args.logs + 1):
            app = f"local-17959728{i:05d}"
            staged = write_log(stage, app, rewrite(template, app), codec=template.codec, kind="single",
                               in_progress=False)
            t0 = time.perf_counter()
            staged.rename(log_dir / staged.name)
            needle = app.encode()
            while needle not in client.get(f"{sh.base_url}/api/v1/applications").content:
                if time.perf_counter() - t0 > 60:
                    raise TimeoutError(f"{app} not listed within 60 s")
                time.sleep(0.005)
            delays.append(time.perf_counter() - t0)
            time.sleep(0.2)
        scan = client.get(f"{sh.base_url}/health/details").json()["scan"]
        scans = sum(scan["scans"].values())
    done = sorted(delays)
    print(f"freshness over {len(done)} new logs, {args.processes} serving process(es), scan interval 60 s: "
          f"median {_percentile(done, 0.5) * 1000:.0f} ms, p95 {_percentile(done, 0.95) * 1000:.0f} ms, "
          f"max {done[-1] * 1000:.0f} ms; scans since the start: {scans} (the first one included); others' CPU: {load.summary()}")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    serving = sub.add_parser("serving", help="50-client latency: the SHS 4.3.0 and sparkhist with N serving processes")
    serving.add_argument("--apps", type=int, default=300)
    serving.add_argument("--processes", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2, 4])
    serving.add_argument("--requests", type=int, default=3000)
    serving.add_argument("--concurrency", type=int, default=50)
    serving.add_argument("--budget", type=float, default=40.0)
    fresh = sub.add_parser("freshness", help="seconds from a new log's rename to its listing")
    fresh.add_argument("--logs", type=int, default=50)
    fresh.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    if args.what == "serving":
        _serving_main(args)
    else:
        _freshness_main(args)


if __name__ == "__main__":
    main()
