"""API latency under concurrent clients: a bounded number of requests, censored percentiles.

``concurrency`` clients each hold one keep-alive connection, opened in the warm-up (closed
loop: a client sends its next request as soon as the previous answer is read in full). A run stops issuing
after ``total`` requests or ``budget_s`` seconds, whichever comes first (a full 10k-app
listing is several MB per answer), and says how many it asked and how many were answered.
Requests still pending then get another ``budget_s``; one unanswered when that ends
(twice the budget) is given up, and its latency is **at least** the time it was pending:
it stays in the percentiles, censored at that time, never dropped. A percentile whose
rank falls on or above a censored value is a lower bound (``≥``, :attr:`Latency.p50_censored`).
Requests that failed (a non-200 answer, a transport error) are counted apart, by kind,
and are not in the percentiles. The very first request is timed alone (``first_ms``:
what the first user waits); then a few untimed ones warm the server up (JIT, caches)
before the timed run: a long-running server is warm.

The clients are one lean HTTP/1.1 client (asyncio streams, :class:`_Connection`), not
httpx: on a 2-core box the load generator shares the cores with the server, and httpx
spent ~2.6 ms of CPU per request, 3-4 times what a kept sparkhist answer costs the
server, so its own CPU set the figures. The requests are those httpx sends (its headers,
``Accept-Encoding`` included, so a server that compresses does so as before); a body is
read in full (``Content-Length`` or chunked) and not decoded. Both servers are measured
with the same client, which still takes CPU from them: both pay the same price.

**Closed loop and fixed rate.** :func:`measure` is a closed loop, and a closed loop omits
what a stalled server does: a client stuck on one request sends nothing else, so a stall
of many seconds is one sample, and the percentiles come from the clients still moving
(coordinated omission). :func:`measure_fixed_rate` is the correction wrk2 and
HdrHistogram's ``recordValueWithExpectedInterval`` make: requests are **scheduled** at a
constant total rate ``rate`` for ``duration_s`` seconds, request *i* due at ``i / rate``
after the start, on connection ``i mod concurrency`` (each connection has its own
schedule, one request every ``concurrency / rate`` seconds, the connections staggered);
a request whose time has come is sent as soon as its connection is free, and its latency
is measured **from the time it was due**, not from when it was sent, so a user who
arrived during a stall waits out the rest of it, and so does every user queued behind.
Requests still in flight or never sent when the run ends (pending ones get another
``duration_s``, as in the closed loop) are in the percentiles with the latency they had
then, as lower bounds.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

#: A request's latency: (seconds, censored), censored when it was still unanswered at the end.
Sample = tuple[float, bool]


@dataclass(frozen=True)
class Latency:
    asked: int  # requests sent in the timed run
    requests: int  # of those, answered 200
    first_ms: float  # the very first request, alone (before the warm-up and the timed run)
    errors: int  # non-200 answers or transport errors (not in the percentiles)
    error_kinds: dict[str, int]  # "HTTP 503", "ReadError", ... -> count
    unanswered: int  # still pending when the run ended: in the percentiles, censored
    p50_ms: float
    p99_ms: float
    mean_ms: float
    p50_censored: bool  # p50_ms is a lower bound (an unanswered request at or below its rank)
    p99_censored: bool
    per_second: float  # answered requests per second of the timed run
    cut_by_budget: bool  # fewer than ``total`` requests were sent within the budget
    rate: float | None = None  # fixed rate (open loop): the requests per second scheduled; None: closed loop
    unsent: int = 0  # fixed rate: scheduled requests never sent (their connection was busy): in ``unanswered``
    #: Every answered or unanswered request's (seconds, censored), in the order recorded.
    samples: tuple[Sample, ...] = field(default=(), repr=False)

    @property
    def fewer_answered(self) -> bool:
        """The server answered fewer requests than it was asked for."""
        return self.requests < self.asked

    def summary(self) -> str:
        return ((f"fixed rate {self.rate:g} req/s: " if self.rate is not None else "")
                + f"p50 {fmt_ms(self.p50_ms, self.p50_censored)}, p99 {fmt_ms(self.p99_ms, self.p99_censored)}, "
                f"{self.per_second:.0f} req/s, {self.requests}/{self.asked} answered"
                + (f", {self.unanswered} unanswered (censored)" if self.unanswered else "")
                + (f", {self.unsent} of them never sent" if self.unsent else "")
                + (f", {self.errors} failed" if self.errors else ""))


def fmt_ms(ms: float, censored: bool) -> str:
    return ("≥" if censored else "") + (f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms")


def censored_percentile(samples: list[Sample], q: float) -> Sample:
    """Nearest-rank percentile of ``samples``, some of them lower bounds (censored).

    The value at the rank is a lower bound of the true percentile, and exact when no
    censored value sorts at or below the rank (the values there are all known, and
    every true value is at least its bound)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1][0], any(censored for _, censored in ordered[:rank])


def summarize(samples: list[Sample], *, asked: int, first_ms: float, errors: dict[str, int], wall: float,
              cut_by_budget: bool, rate: float | None = None, unsent: int = 0) -> Latency:
    """The figures of one timed run: ``samples`` holds every answered or unanswered request."""
    if not samples:
        raise RuntimeError("no request of the timed run was answered or left pending")
    p50, p50_censored = censored_percentile(samples, 0.50)
    p99, p99_censored = censored_percentile(samples, 0.99)
    answered = sum(1 for _, censored in samples if not censored)
    return Latency(
        asked=asked, requests=answered, first_ms=first_ms, errors=sum(errors.values()), error_kinds=errors,
        unanswered=len(samples) - answered, p50_ms=p50 * 1000, p99_ms=p99 * 1000,
        mean_ms=sum(s for s, _ in samples) / len(samples) * 1000, p50_censored=p50_censored,
        p99_censored=p99_censored, per_second=answered / wall, cut_by_budget=cut_by_budget, rate=rate, unsent=unsent,
        samples=tuple(samples))


def measure(url: str, *, total: int, concurrency: int, budget_s: float, warmup: int = 20) -> Latency:
    """Closed loop: each client sends its next request when the previous answer is read."""
    return asyncio.run(_measure(url, total, concurrency, budget_s, warmup, None))


def measure_fixed_rate(url: str, *, rate: float, duration_s: float, concurrency: int, warmup: int = 20) -> Latency:
    """Open loop: ``rate`` requests per second scheduled for ``duration_s`` seconds over ``concurrency``
    connections, each timed from when it was due (the module's docstring)."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError("a fixed-rate run needs a positive rate and duration")
    return asyncio.run(_measure(url, max(1, round(rate * duration_s)), concurrency, duration_s, warmup, rate))


async def _measure(url: str, total: int, concurrency: int, budget_s: float, warmup: int, rate: float | None) -> Latency:
    async with httpx.AsyncClient(timeout=120.0) as client:
        t = time.perf_counter()
        first = await client.get(url)
        first_ms = (time.perf_counter() - t) * 1000
        if first.status_code != 200:
            raise RuntimeError(f"GET {url}: {first.status_code} {first.text[:300]}")
        request = _request_bytes(client, url)
    target = urlsplit(url)
    connections = [_Connection(target.hostname or "127.0.0.1", target.port or 80) for _ in range(concurrency)]
    try:
        # The warm-up opens every client's connection (one request each at least), so the timed run
        # measures answers on open keep-alive connections, not 50 connects at once: a JVM busy
        # elsewhere lets its accept queue overflow then, and an overflowed connect waits seconds.
        await _run(connections, request, max(min(warmup, total), concurrency), budget_s, [], {})
        samples: list[Sample] = []
        errors: dict[str, int] = {}
        started = time.perf_counter()
        if rate is None:
            asked, unsent = await _run(connections, request, total, budget_s, samples, errors), 0
        else:
            asked, unsent = total, await _run_fixed_rate(connections, request, rate, total, budget_s, samples, errors)
        wall = time.perf_counter() - started
    finally:
        for connection in connections:
            connection.close()
    return summarize(samples, asked=asked, first_ms=first_ms, errors=errors, wall=wall,
                     cut_by_budget=rate is None and asked < total, rate=rate, unsent=unsent)


def _request_bytes(client: httpx.AsyncClient, url: str) -> bytes:
    """The GET httpx sends for ``url`` (its request line and default headers), as bytes."""
    request = client.build_request("GET", url)
    target = request.url.raw_path.decode("ascii")
    head = [f"GET {target} HTTP/1.1".encode("ascii")] + [k + b": " + v for k, v in request.headers.raw]
    return b"\r\n".join(head) + b"\r\n\r\n"


class HttpError(Exception):
    """A malformed answer or a connection the server closed."""


class _Connection:
    """One keep-alive HTTP/1.1 connection: sends a request, reads one answer in full."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, request: bytes) -> int:
        """The status of the answer to ``request``, its body read in full. A kept connection the
        server closed while it was idle (its keep-alive timeout) is opened again, as a pool does:
        before the request when its end was seen, or when it ends before any byte of the answer."""
        if self.reader is not None and self.reader.at_eof():
            self.close()
        reused = self.writer is not None
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        assert self.reader is not None
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            if not reused or isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                raise
            self.close()
            return await self.get(request)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    while (await self.reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the end
                        pass
                    break
                await self.reader.readexactly(size + 2)
        elif "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        else:  # the body runs to the connection's end
            await self.reader.read()
            self.close()
            return status
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _run(connections: list[_Connection], request: bytes, total: int, budget_s: float,
               samples: list[Sample], errors: dict[str, int]) -> int:
    """Sends up to ``total`` requests within ``budget_s``, one client per connection; returns how many
    were sent. A client whose request is still unanswered at twice the budget is stopped and its
    connection closed (the next run opens it again)."""
    deadline = time.perf_counter() + budget_s
    issued = 0
    pending: dict[int, float] = {}  # client -> when its unanswered request was sent

    async def client(n: int) -> None:
        nonlocal issued
        connection = connections[n]
        try:
            while issued < total and time.perf_counter() < deadline:
                issued += 1
                t = pending[n] = time.perf_counter()
                try:
                    status = await connection.get(request)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                    del pending[n]
                    connection.close()
                    kind = "ReadError" if isinstance(exc, asyncio.IncompleteReadError) else type(exc).__name__
                    errors[kind] = errors.get(kind, 0) + 1
                    continue
                del pending[n]
                if status == 200:
                    samples.append((time.perf_counter() - t, False))
                else:
                    errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
        except asyncio.CancelledError:
            connection.close()  # an answer half read: the connection is of no further use
            raise

    clients = [asyncio.ensure_future(client(n)) for n in range(len(connections))]
    _, stalled = await asyncio.wait(clients, timeout=2 * budget_s)
    ended = time.perf_counter()
    samples.extend((ended - t, True) for t in pending.values())  # unanswered: at least this long
    for task in stalled:
        task.cancel()
    if stalled:
        await asyncio.gather(*stalled, return_exceptions=True)
    return issued


async def _run_fixed_rate(connections: list[_Connection], request: bytes, rate: float, count: int, duration_s: float,
                          samples: list[Sample], errors: dict[str, int]) -> int:
    """Sends ``count`` requests on a fixed schedule: request *i* is due ``i / rate`` seconds after the start,
    on connection ``i mod len(connections)``, sent when due or, if its connection is still busy, as soon as
    it is free; its latency runs from when it was due. Requests in flight at twice ``duration_s`` are given
    up (their connections closed), and they and the requests never sent are recorded, censored, with the
    time from when they were due to then. Returns how many were never sent."""
    width = len(connections)
    start = time.perf_counter()
    due_index = list(range(width))  # connection -> the index of its next (or in-flight) request
    in_flight: set[int] = set()

    async def client(n: int) -> None:
        connection = connections[n]
        try:
            while (i := due_index[n]) < count:
                due = start + i / rate
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                in_flight.add(n)
                try:
                    status = await connection.get(request)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                    connection.close()
                    kind = "ReadError" if isinstance(exc, asyncio.IncompleteReadError) else type(exc).__name__
                    errors[kind] = errors.get(kind, 0) + 1
                else:
                    if status == 200:
                        samples.append((time.perf_counter() - due, False))
                    else:
                        errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
                in_flight.discard(n)
                due_index[n] = i + width
        except asyncio.CancelledError:
            connection.close()
            raise

    clients = [asyncio.ensure_future(client(n)) for n in range(width)]
    _, stalled = await asyncio.wait(clients, timeout=2 * duration_s)
    ended = time.perf_counter()
    unsent = 0
    for n in range(width):
        first = due_index[n]
        if n in in_flight:
            samples.append((ended - (start + first / rate), True))
            first += width
        for i in range(first, count, width):  # never sent: at least the time from when it was due to the end
            samples.append((ended - (start + i / rate), True))
            unsent += 1
    for task in stalled:
        task.cancel()
    if stalled:
        await asyncio.gather(*stalled, return_exceptions=True)
    return unsent


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
        print(label, {n: r.summary() for n, r in results[label].items()}, "| others:", foreign[label], flush=True)

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
            shs_r = shs_results[name]
            ratio = "" if label.startswith("SHS") else \
                f" **{'≥' if shs_r.p50_censored else ''}{shs_r.p50_ms / r.p50_ms:.1f}×**"
            cells.append(f"{fmt_ms(r.p50_ms, r.p50_censored)} ({fmt_ms(r.p99_ms, r.p99_censored)}){ratio}")
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
