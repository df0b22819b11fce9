"""A rolling upgrade with a hot standby keeps answering (issue 20).

The Helm chart's two-replica mode (``replicaCount: 2``) runs a writer and a hot standby
on one store; a rolling update replaces one pod at a time. This test plays that roll
with real ``sparkhist serve`` processes on one store and one log directory (the
Spark 4.0.1 conformance logs, finished and in progress, every codec and layout):

1. A serves as the writer, B as the standby (another port, the same store).
2. A client asks, every ~50 ms for the whole roll, for ``/api/v1/applications`` and one
   application's ``/jobs``, as a Service would route it: A's address first, then B's.
3. SIGTERM to A (the old pod goes); B takes over as the writer. A new log is added to
   the log directory; B lists and indexes it.
4. A2 (the new pod, on A's address) starts as the standby; SIGTERM to B; A2 takes over.

There is no older release to run here, so A2 runs the same code as A and B: the test
checks the hand-overs of a roll, not a change of version (a store of an older or newer
format is tests/deploy/test_restart_and_upgrade.py's business).

Asserted: no client request failed (each was answered 200 by at least one replica,
with the answers from before the roll; once the new application is listed it stays
listed), every process exits 0 on SIGTERM, the new log is listed at the end, no
finished log was read again (B read only the new log, A2 nothing; the standbys built
no state from a log), and ``sparkhist verify --store`` passes. The figures (stop and
takeover times, requests made, by replica) are printed.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.units import STOP_LIMIT, Served, base_env, free_port, serving
from sparkhist.devtools.scale import load_template, rewrite, write_log
from support.conformance import SPARK401

pytestmark = pytest.mark.slow

SPARKHIST = [sys.executable, "-m", "sparkhist.cli"]
SCAN_INTERVAL = 0.5  # the chart's default is 10 s: a takeover comes within one interval
POLL = 0.05
JOBS_OF = "local-1795972896863"  # a finished application
NEW_APP = "local-1795972999999"
TAKEOVER_LIMIT = 30.0  # the restart objective; a takeover is expected within one scan interval


class Client(threading.Thread):
    """Asks for ``paths`` every ``POLL`` seconds from the first replica of ``ports`` that
    answers 200; a request fails when none does, or when the answer is not the expected one."""

    def __init__(self, ports: list[int], checks: dict[str, Callable[[bytes], str | None]]) -> None:
        super().__init__(name="rolling-client", daemon=True)
        self.ports = ports  # replaced in place as pods come and go (A's address is A2's)
        self.checks = checks
        self.stop = threading.Event()
        self.requests = 0
        self.answered_by: Counter[int] = Counter()
        self.fallbacks = 0  # requests the first replica did not answer and another did
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                for path, check in self.checks.items():
                    self._one(client, path, check)
                self.stop.wait(POLL)

    def _one(self, client: httpx.Client, path: str, check: Callable[[bytes], str | None]) -> None:
        self.requests += 1
        tried = []
        for i, port in enumerate(list(self.ports)):
            try:
                answer = client.get(f"http://127.0.0.1:{port}{path}")
            except httpx.HTTPError as exc:
                tried.append(f"{port}: {type(exc).__name__}")
                continue
            if answer.status_code != 200:
                tried.append(f"{port}: {answer.status_code}")
                continue
            wrong = check(answer.content)
            if wrong is not None:
                self.failures.append(f"{path} from {port}: {wrong}")
            self.answered_by[port] += 1
            self.fallbacks += i > 0
            return
        self.failures.append(f"{path}: no replica answered ({', '.join(tried)})")


def _argv(logs: Path, store: Path, port: int) -> list[str]:
    return [*SPARKHIST, "serve", "--log-dir", str(logs), "--store", str(store), "--port", str(port),
            "--scan-interval", str(SCAN_INTERVAL)]


def _get(served: Served, path: str) -> Any:
    answer = httpx.get(served.base + path, timeout=10)
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return answer.json()


def _until(what: str, predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``predicate`` held (polled every 20 ms)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if predicate():
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _metrics(served: Served) -> dict[tuple[str, str], float]:
    text = httpx.get(served.base + "/metrics", timeout=10).text
    return {(s.name, s.labels.get("pass") or s.labels.get("result") or ""): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name in ("sparkhist_log_bytes_read_total", "sparkhist_cache_requests_total")}


def _read(figures: dict[tuple[str, str], float], what: str) -> float:
    return figures.get(("sparkhist_log_bytes_read_total", what), 0.0)


def _built(figures: dict[tuple[str, str], float]) -> float:
    return figures.get(("sparkhist_cache_requests_total", "build"), 0.0)


def _stop(served: Served, name: str) -> float:
    took = served.stop(signal.SIGTERM)
    assert served.proc.returncode == 0, f"{name} exited {served.proc.returncode}: {served.log_file.read_text()[-3000:]}"
    assert took < STOP_LIMIT, f"{name} took {took:.2f}s to stop"
    return took


def test_a_rolling_upgrade_with_the_standby_keeps_answering(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(SPARK401 / "eventlogs", logs)
    logged = len(list(logs.iterdir()))
    store = tmp_path / "store"
    env = base_env(SPARKHIST_INDEX_WORKERS="2")
    port_a, port_b = free_port(), free_port()

    with ExitStack() as stack:
        # 1. A writes, B stands by.
        a = stack.enter_context(serving(_argv(logs, store, port_a), env, port_a, tmp_path / "a.log"))
        a.wait_ready(120)
        _until("A to index every log", lambda: len(_get(a, "/api/v1/applications")) == logged
               and _get(a, "/health/details")["scan"]["lagSeconds"] == 0, 300)
        b = stack.enter_context(serving(_argv(logs, store, port_b), env, port_b, tmp_path / "b.log"))
        b.wait_ready(120)
        assert _get(a, "/health/details")["role"] == "writer" and _get(b, "/health/details")["role"] == "standby"

        jobs_path = f"/api/v1/applications/{JOBS_OF}/jobs"
        before_list = httpx.get(a.base + "/api/v1/applications", timeout=10).content
        before_jobs = httpx.get(a.base + jobs_path, timeout=30).content
        before_apps = orjson.loads(before_list)
        assert JOBS_OF in {app["id"] for app in before_apps} and orjson.loads(before_jobs)
        assert httpx.get(b.base + "/api/v1/applications", timeout=10).content == before_list
        assert httpx.get(b.base + jobs_path, timeout=30).content == before_jobs
        a_read = _metrics(a)

        new_listed = threading.Event()

        def check_list(body: bytes) -> str | None:
            apps = orjson.loads(body)
            listed = NEW_APP in {app["id"] for app in apps}
            if [app for app in apps if app["id"] != NEW_APP] != before_apps:
                return "the applications differ from before the roll"
            if new_listed.is_set() and not listed:
                return f"{NEW_APP} listed before, missing now"
            if listed:
                new_listed.set()
            return None

        def check_jobs(body: bytes) -> str | None:
            return None if body == before_jobs else "the jobs differ from before the roll"

        client = Client([port_a, port_b], {"/api/v1/applications": check_list, jobs_path: check_jobs})
        client.start()
        stack.callback(client.join, 10)
        stack.callback(client.stop.set)
        rolled_at = time.monotonic()
        time.sleep(1.0)

        # 2. The old pod goes: B takes over.
        sigterm_a = time.monotonic()
        a_stop = _stop(a, "A")
        _until("B to take over", lambda: _get(b, "/health/details")["role"] == "writer", TAKEOVER_LIMIT)
        b_takeover = time.monotonic() - sigterm_a

        # A new application's log arrives while B writes.
        template = load_template(SPARK401 / "eventlogs" / "eventlog_v2_local-1795972918271")
        new_log = write_log(logs, NEW_APP, rewrite(template, NEW_APP), codec="zstd", kind="rolling", in_progress=False)
        new_bytes = sum(p.stat().st_size for p in new_log.rglob("*") if p.is_file()) if new_log.is_dir() \
            else new_log.stat().st_size
        written_at = time.monotonic()
        _until("B to index the new log", lambda: NEW_APP in {x["id"] for x in _get(b, "/api/v1/applications")}
               and _get(b, "/health/details")["scan"]["lagSeconds"] == 0, 120)
        b_indexed = time.monotonic() - written_at

        # 3. The new pod, on A's address, stands by; then B goes and A2 takes over.
        a2 = stack.enter_context(serving(_argv(logs, store, port_a), env, port_a, tmp_path / "a2.log"))
        a2_ready = a2.wait_ready(120)
        assert _get(a2, "/health/details")["role"] == "standby"
        time.sleep(1.0)
        b_read = _metrics(b)
        sigterm_b = time.monotonic()
        b_stop = _stop(b, "B")
        _until("A2 to take over", lambda: _get(a2, "/health/details")["role"] == "writer", TAKEOVER_LIMIT)
        a2_takeover = time.monotonic() - sigterm_b
        time.sleep(1.0)
        client.stop.set()
        client.join(10)
        rolled = time.monotonic() - rolled_at

        final = _get(a2, "/api/v1/applications")
        assert NEW_APP in {app["id"] for app in final}, "the log added during the roll is listed at the end"
        assert [app for app in final if app["id"] != NEW_APP] == before_apps
        assert _get(a2, "/health/details")["takeovers"] == 1
        a2_read = _metrics(a2)
        a2_stop = _stop(a2, "A2")

    assert client.failures == [], f"{len(client.failures)} failed requests: {client.failures[:5]}"
    assert new_listed.is_set(), "the client never saw the new application"
    assert client.answered_by[port_b] > 10 and client.answered_by[port_a] > 10, client.answered_by

    # No finished log read again: B read the new log only (its listing pass, then its full
    # pass), A2 nothing; neither built a state from a log (snapshots answered).
    assert 0 < _read(b_read, "listing") <= new_bytes and _read(b_read, "full") == new_bytes, (b_read, new_bytes)
    assert _read(a2_read, "listing") == 0 and _read(a2_read, "full") == 0, a2_read
    assert _built(b_read) == 0 and _built(a2_read) == 0, (b_read, a2_read)

    done = subprocess.run([*SPARKHIST, "verify", "--store", str(store)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "store ok" in done.stdout, done.stdout + done.stderr

    print(f"\nROLLING UPGRADE over {logged} logs (+1 during the roll), scan interval {SCAN_INTERVAL}s: "
          f"A read {_read(a_read, 'listing'):.0f}+{_read(a_read, 'full'):.0f} bytes (listing+full) once; "
          f"A stopped in {a_stop:.2f}s, B writer {b_takeover:.2f}s after A's SIGTERM; new log ({new_bytes} bytes) "
          f"indexed by B in {b_indexed:.2f}s, read {_read(b_read, 'listing'):.0f}+{_read(b_read, 'full'):.0f} bytes; "
          f"A2 ready in {a2_ready:.2f}s; B stopped in {b_stop:.2f}s, A2 writer {a2_takeover:.2f}s after B's SIGTERM, "
          f"read 0 bytes; A2 stopped in {a2_stop:.2f}s. Client: {client.requests} requests in {rolled:.1f}s, "
          f"answered by A/A2 {client.answered_by[port_a]}, by B {client.answered_by[port_b]}, "
          f"{client.fallbacks} after the first replica did not answer, 0 failed")
