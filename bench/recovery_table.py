"""The design's recovery objectives, measured: prints (objective, measured, pass/fail).

    python bench/recovery_table.py                     # realistic: 2,000 apps, 50,000-task apps
    python bench/recovery_table.py --apps 200 --tasks 5000   # what the tests use

Rows (``tests/test_recovery_objectives.py`` runs the same functions on small data):

a. restart < 30 s: a store built over N scaled logs, then a new runtime started as
   ``sparkhist serve`` starts one (the catalog's listing rows first, the rest of the
   runtime after the answer); time from opening the store to a complete
   ``/api/v1/applications`` answer; no log opened. ``bench/restart.py`` times a real
   ``sparkhist serve`` process the same way, at 10,000 and 100,000 applications.
b. memory pressure < 10 s: a tight ``memory_budget`` (1.5 states), a burst of
   concurrent requests for large applications; the longest stretch the cache spends
   over its budget (sampled every 5 ms) or, after the burst, until it is back under.
c. corruption rebuilt < 5 min: a snapshot damaged (one byte flipped, the cached state
   dropped); time until the application answers correctly again.
d. network partition, degraded but serving: the log directory renamed away (what a
   lost mount looks like locally): health degraded/offline, every API answer served
   unchanged; renamed back: time until a scan succeeds and health is ok.
e. NameNode failover < 30 s: needs the MiniDFSCluster harness; measured by
   ``tests/hdfs/test_runtime_offline.py::test_namenode_failover_recovery_objective``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from sparkhist.config import load_settings
from sparkhist.devtools.big import write_big_log
from sparkhist.devtools.scale import load_template, scale
from sparkhist.server import Runtime, build_runtime

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATES = REPO.parent / "shared" / "conformance" / "spark-4.0.1" / "eventlogs"
#: A completed single-file log with jobs, stages and tasks: the template of big apps.
BIG_TEMPLATE = "local-1795972896863"
PER_APP = ("", "/jobs", "/stages", "/executors", "/environment")


@dataclass(frozen=True)
class Objective:
    name: str
    limit: float  # seconds


OBJECTIVES = {
    "a": Objective("restart", 30.0),
    "b": Objective("memory pressure", 10.0),
    "c": Objective("corruption rebuilt", 300.0),
    # No number in the design beyond "degraded but serving": recovery is "the next
    # scan"; 30 s (3 default scan intervals) is the bound checked.
    "d": Objective("network partition: degraded, serving", 30.0),
    "e": Objective("NameNode failover", 30.0),
}


@dataclass
class Result:
    row: str
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.seconds < OBJECTIVES[self.row].limit


# -- helpers ---------------------------------------------------------------------------------
@contextmanager
def runtime(log_dir: Path, store: Path, **settings: Any) -> Iterator[tuple[Runtime, TestClient]]:
    rt = build_runtime(load_settings({"log_dir": str(log_dir), "store_dir": str(store), **settings}, environ={}))
    assert rt.loop.lock.try_acquire(), "the store has another writer"
    try:
        with TestClient(rt.app) as client:
            yield rt, client
    finally:
        rt.close()


def copy_logs(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def answers(client: TestClient, apps: list[str]) -> dict[str, tuple[int, bytes]]:
    urls = ["/api/v1/applications"] + [f"/api/v1/applications/{a}{r}" for a in apps for r in PER_APP]
    out = {}
    for url in urls:
        response = client.get(url)
        out[url] = (response.status_code, response.content)
    return out


def opened(rt: Runtime) -> int:
    return sum(n for (op, _), n in rt.source._requests.items() if op == "open")


# -- a. restart --------------------------------------------------------------------------------
def measure_restart(templates_dir: Path, work: Path, *, apps: int = 200, index_workers: int = 2) -> Result:
    logs, store = work / "restart-logs", work / "restart-store"
    templates = [load_template(p) for p in sorted(templates_dir.iterdir())]
    scale(templates, logs, apps)
    t_index = time.monotonic()
    with runtime(logs, store, index_workers=index_workers) as (rt, _):
        report = rt.scanner.scan_once()
        assert report.ok, report
    index_seconds = time.monotonic() - t_index

    # As ``serve`` starts: the catalog's listing rows answer the list, the rest follows.
    from sparkhist.api.app import create_app
    from sparkhist.server.first_answer import early_context
    from sparkhist.server.opening import open_store
    from sparkhist.server.pending import PendingRuntime
    from sparkhist.server.runtime import complete_runtime

    settings = load_settings({"log_dir": str(logs), "store_dir": str(store), "index_workers": index_workers}, environ={})
    t0 = time.monotonic()
    early = open_store(settings, listing=True)
    pending = PendingRuntime()
    app = create_app(early_context(early, pending))
    rt: Runtime | None = None
    try:
        with TestClient(app) as client:
            response = client.get("/api/v1/applications")
            assert response.status_code == 200, response.text[:300]
            listed = len(response.json())
            seconds = time.monotonic() - t0
            rt = complete_runtime(early, app)
            pending.set(rt)
            complete = time.monotonic() - t0
            assert client.get("/api/v1/applications").content == response.content
        return Result("a", seconds, {"apps": listed, "opened": opened(rt), "recovery_seconds": rt.recovery_seconds,
                                     "runtime_complete_seconds": round(complete, 3),
                                     "first_index_seconds": round(index_seconds, 1)})
    finally:
        if rt is not None:
            rt.close()
        else:
            early.lock.release()
            early.catalog.close()


# -- b. memory pressure --------------------------------------------------------------------------
def measure_memory_pressure(templates_dir: Path, work: Path, *, apps: int = 4, tasks: int = 5_000, rounds: int = 2,
                            threads: int = 4) -> Result:
    logs, store = work / "memory-logs", work / "memory-store"
    logs.mkdir(parents=True)
    template = load_template(templates_dir / BIG_TEMPLATE)
    ids = [f"local-7{i:018d}" for i in range(apps)]
    for app_id in ids:
        write_big_log(template, logs, app_id, tasks)
    with runtime(logs, store, index_workers=1) as (rt, client):
        assert rt.scanner.scan_once().ok
        states = rt.states
        assert client.get(f"/api/v1/applications/{ids[0]}/stages").status_code == 200
        one = max(states.cached_bytes, 1)
        budget = int(1.5 * one)
        states.memory_budget = budget
        evictions_before = dict(states.evictions).get("memory", 0)

        samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def monitor() -> None:
            while not stop.is_set():
                samples.append((time.monotonic(), states.cached_bytes))
                time.sleep(0.005)

        errors: list[str] = []

        def burst(k: int) -> None:
            with TestClient(rt.app) as c:
                for r in range(rounds):
                    for j in range(apps):
                        app_id = ids[(j + k + r) % apps]
                        for res in ("/stages", "/jobs", "/executors"):
                            response = c.get(f"/api/v1/applications/{app_id}{res}")
                            if response.status_code != 200:
                                errors.append(f"{app_id}{res}: {response.status_code}")

        watcher = threading.Thread(target=monitor, daemon=True)
        watcher.start()
        t0 = time.monotonic()
        workers = [threading.Thread(target=burst, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        burst_end = time.monotonic()
        # After the burst: back under budget (bounded wait).
        while states.cached_bytes > budget and time.monotonic() - burst_end < 60:
            time.sleep(0.01)
        after = time.monotonic() - burst_end
        stop.set()
        watcher.join()
        assert not errors, errors[:5]

        longest, start = 0.0, None
        peak = 0
        for ts, nbytes in samples:
            peak = max(peak, nbytes)
            if nbytes > budget:
                start = ts if start is None else start
                longest = max(longest, ts - start)
            else:
                start = None
        seconds = max(longest, after)
        return Result("b", seconds, {
            "budget": budget, "state_bytes": one, "peak_bytes": peak, "final_bytes": states.cached_bytes,
            "memory_evictions": dict(states.evictions).get("memory", 0) - evictions_before,
            "burst_seconds": round(burst_end - t0, 2), "longest_over_budget": round(longest, 3),
            "after_burst": round(after, 3), "requests": threads * rounds * apps * 3,
        })


# -- c. corruption -------------------------------------------------------------------------------
def measure_corruption(templates_dir: Path, work: Path, *, logs: Path | None = None, app: str = BIG_TEMPLATE) -> Result:
    logs = logs or copy_logs(templates_dir, work / "corrupt-logs")
    with runtime(logs, work / "corrupt-store", index_workers=1) as (rt, client):
        assert rt.scanner.scan_once().ok
        before = answers(client, [app])
        assert all(status == 200 for status, _ in before.values())
        log_path = rt.index.get(app).attempts[0].log_path
        snapshot = Path(rt.snapshots.path_for(log_path))
        blob = bytearray(snapshot.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        snapshot.write_bytes(bytes(blob))
        rt.states.invalidate(log_path)  # the next request reads the damaged snapshot
        t0 = time.monotonic()
        identical = False
        while time.monotonic() - t0 < OBJECTIVES["c"].limit + 30:
            if answers(client, [app]) == before:
                identical = True
                break
            time.sleep(0.1)
        seconds = time.monotonic() - t0
        store = client.get("/health/details").json()["store"]
        return Result("c", seconds, {"identical": identical, "quarantined": store["quarantinedFiles"],
                                     "corruptions": store["corruptions"].get("snapshot", 0),
                                     "snapshot_bytes": len(blob)})


# -- d. network partition (local equivalent) -------------------------------------------------------
def measure_partition(templates_dir: Path, work: Path, *, logs: Path | None = None) -> Result:
    logs = logs or copy_logs(templates_dir, work / "partition-logs")
    away = logs.with_name(logs.name + "-away")
    with runtime(logs, work / "partition-store", index_workers=1) as (rt, client):
        assert rt.scanner.scan_once().ok
        apps = [a["id"] for a in client.get("/api/v1/applications").json()]
        before = answers(client, apps)
        time.sleep(1.1)
        # Running applications' executors report their uptime: those bodies move with
        # the clock whatever the source does; their status is still compared.
        moving = {u for u, v in answers(client, apps).items() if v != before[u]}

        def same(now: dict[str, tuple[int, bytes]]) -> bool:
            return all(now[u][0] == 200 and (u in moving or now[u] == before[u]) for u in before)

        logs.rename(away)
        t_fault = time.monotonic()
        failed = not rt.scanner.scan_once().ok
        detect = time.monotonic() - t_fault
        doc = client.get("/health/details").json()
        degraded = failed and doc["status"] == "degraded" and doc["offline"] is True and bool(doc["reasons"])
        served = same(answers(client, apps))
        away.rename(logs)
        t0 = time.monotonic()
        ok_after = False
        while time.monotonic() - t0 < OBJECTIVES["d"].limit + 30:
            if rt.scanner.scan_once().ok and client.get("/health/details").json()["status"] == "ok":
                ok_after = True
                break
            time.sleep(0.1)
        seconds = time.monotonic() - t0
        ok_after = ok_after and same(answers(client, apps))
        return Result("d", seconds, {"degraded": degraded, "served": served, "ok_after": ok_after,
                                     "detect": round(detect, 3), "apps": len(apps), "time_dependent_bodies": len(moving)})


# -- the table -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=2000, help="logs in the restart store (row a)")
    parser.add_argument("--tasks", type=int, default=50_000, help="tasks per large application (row b)")
    parser.add_argument("--big-apps", type=int, default=3, help="large applications in the burst (row b)")
    parser.add_argument("--templates", type=Path, default=DEFAULT_TEMPLATES)
    parser.add_argument("--workdir", type=Path, default=None, help="kept when given; a temporary directory otherwise")
    parser.add_argument("--rows", default="abcd")
    args = parser.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="sparkhist-recovery-"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    try:
        if "a" in args.rows:
            results.append(measure_restart(args.templates, work, apps=args.apps))
        if "b" in args.rows:
            results.append(measure_memory_pressure(args.templates, work, apps=args.big_apps, tasks=args.tasks))
        if "c" in args.rows or "d" in args.rows:
            big = work / "big-logs"
            copy_logs(args.templates, big)
            write_big_log(load_template(args.templates / BIG_TEMPLATE), big, "local-8000000000000", args.tasks)
            if "c" in args.rows:
                results.append(measure_corruption(args.templates, work, logs=big, app="local-8000000000000"))
            if "d" in args.rows:
                results.append(measure_partition(args.templates, work, logs=big))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'row':<4}{'objective':<40}{'limit':>9}{'measured':>12}  result  details")
    for r in results:
        o = OBJECTIVES[r.row]
        print(f"{r.row:<4}{o.name:<40}{o.limit:>8.0f}s{r.seconds:>11.3f}s  {'PASS' if r.passed else 'FAIL':<6}  "
              + " ".join(f"{k}={v}" for k, v in r.details.items()))
    print(f"{'e':<4}{OBJECTIVES['e'].name:<40}{OBJECTIVES['e'].limit:>8.0f}s{'-':>12}   see tests/hdfs/test_runtime_offline.py")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
