"""API latency under concurrent clients: httpx async, a bounded number of requests.

``concurrency`` clients share one connection pool of the same size; each sends its
next request as soon as the previous answer is read in full. A run stops after
``total`` requests or ``budget_s`` seconds, whichever comes first (a full 10k-app
listing is several MB per answer), and says how many it did. The very first request
is timed alone (``first_ms``: what the first user waits); then a few untimed ones warm
the server up (JIT, caches) before the timed run: a long-running server is warm.

The clients run on the same machine as the server, so on a small box they take CPU
from it; both servers pay the same price.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

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

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]
