"""Full indexing in worker processes gives exactly what the in-process path gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import orjson
import pytest
from starlette.testclient import TestClient

from sparkhist.config import load_settings
from sparkhist.server import build_runtime
from support.conformance import SPARK401
from support.server import copy_logs


def _mask(payload: Any) -> Any:
    if isinstance(payload, dict):
        return {k: (0 if k in ("duration", "totalDuration") else _mask(v)) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_mask(v) for v in payload]
    return payload


def _answers(log_dir: Path, store: Path, workers: int) -> dict[str, bytes]:
    runtime = build_runtime(load_settings({"log_dir": str(log_dir), "store_dir": str(store), "index_workers": workers},
                                          environ={}))
    try:
        report = runtime.scanner.scan_once()
        assert report.indexed == 13 and report.failed == 0
        assert (runtime.scanner.pool is not None) == (workers > 1)
        out = {}
        with TestClient(runtime.app) as client:
            for app in runtime.index.sorted_apps():
                for resource in ("/jobs", "/stages?details=true", "/allexecutors", "/sql", "/environment"):
                    body = client.get(f"/api/v1/applications/{app.id}{resource}").content
                    if app.running:  # durations of what still runs are measured at request/scan time
                        body = orjson.dumps(_mask(orjson.loads(body)))
                    out[app.id + resource] = body
            assert runtime.states.builds == 0  # every answer came from a snapshot the scan wrote
        return out
    finally:
        runtime.close()


def test_pool_and_in_process_agree(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    pooled = _answers(logs, tmp_path / "pooled", workers=2)
    alone = _answers(logs, tmp_path / "alone", workers=1)
    assert pooled.keys() == alone.keys() and len(pooled) == 65
    assert [k for k in pooled if pooled[k] != alone[k]] == []


def test_workers_die_with_a_killed_server(tmp_path: Path) -> None:
    """SIGKILL of the process that owns the pool leaves no indexing worker behind."""
    import signal
    import subprocess
    import sys
    import time

    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    code = (
        "import sys, os, time\n"
        "from sparkhist.config import load_settings\n"
        "from sparkhist.server import build_runtime\n"
        "rt = build_runtime(load_settings({'log_dir': sys.argv[1], 'store_dir': sys.argv[2], 'index_workers': 2}, environ={}))\n"
        "rt.scanner.scan_once()\n"
        "print(' '.join(str(p) for p in rt.scanner.pool._pool._processes), flush=True)\n"
        "time.sleep(600)\n"
    )
    with subprocess.Popen([sys.executable, "-c", code, str(logs), str(tmp_path / "store")],
                          stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert len(workers) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = _living(workers)
    assert alive == [], f"workers outlived their parent: {alive}"


def test_failed_full_index_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sparkhist.errors import SourceUnavailable

    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    runtime = build_runtime(load_settings({"log_dir": str(logs), "store_dir": str(tmp_path / "s"), "index_workers": 1},
                                          environ={}))
    try:
        def failing(*args: object, **kwargs: object) -> NoReturn:
            raise SourceUnavailable("gone")

        monkeypatch.setattr(runtime.scanner.indexer, "refresh", failing)
        report = runtime.scanner.scan_once()
        assert report.indexed == 0 and report.failed == 13 and len(report.errors) == 13
    finally:
        runtime.close()


def _living(pids: list[int]) -> list[int]:
    """The processes of ``pids`` that exist and are not zombies."""
    living = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            living.append(pid)
    return living


def test_idle_workers_exit_and_come_back_when_needed(tmp_path: Path) -> None:
    """A pool unused for ``idle_seconds`` is shut down (its processes exit, their memory is
    given back); the next indexing starts a new one and gives the same answers."""
    import time

    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    runtime = build_runtime(load_settings({"log_dir": str(logs), "store_dir": str(tmp_path / "s"), "index_workers": 2},
                                          environ={}))
    try:
        pool = runtime.scanner.pool
        assert pool is not None
        pool.idle_seconds = 0.5
        assert runtime.scanner.scan_once().indexed == 13
        workers = list(pool._pool._processes)  # type: ignore[union-attr]
        assert pool.alive and len(_living(workers)) == 2
        deadline = time.monotonic() + 30
        while (pool.alive or _living(workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pool.alive and _living(workers) == [], "idle workers stayed"

        # More logs to index: a new pool starts, and indexes them like the first one did.
        from sparkhist.devtools.scale import load_template, scale

        templates = [load_template(p) for p in sorted(logs.iterdir()) if not p.name.endswith(".inprogress")][:3]
        scale(templates, logs, 3, id_prefix="local-8")
        report = runtime.scanner.scan_once()
        assert report.indexed == 3 and report.failed == 0
        assert pool.started == 2
        assert runtime.states.builds == 0 and len(runtime.index) == 16
        with TestClient(runtime.app) as client:
            for app in runtime.index.sorted_apps():
                assert client.get(f"/api/v1/applications/{app.id}/stages").status_code == 200
        assert runtime.states.builds == 0, "every new app's snapshot was written by the new pool"
    finally:
        runtime.close()


def _jobs(logs: Path) -> list[tuple[Any, bool]]:
    from sparkhist.reader.layout import find_event_log
    from sparkhist.source.factory import open_source

    source = open_source(str(logs))
    try:
        return [(find_event_log(source, str(p)), False) for p in sorted(logs.iterdir())[:4]]
    finally:
        source.close()


def test_a_stopped_pool_runs_nothing_and_raises_nothing(tmp_path: Path) -> None:
    """After a stop, a run (a scan moving to its full indexing as the server stops) starts no
    worker and gives every job a cancellation as its result instead of raising."""
    from concurrent.futures import CancelledError

    from sparkhist.scan.workers import IndexPool

    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    pool = IndexPool(str(logs), str(tmp_path / "store"), 2)
    pool.stop()
    jobs = _jobs(logs)
    results = list(pool.run(jobs))
    assert [log for log, _ in results] == [log for log, _ in jobs]
    assert all(isinstance(result, CancelledError) for _, result in results)
    assert pool.started == 0 and not pool.alive


def test_a_pool_shut_down_under_a_run_gives_each_job_an_error(tmp_path: Path) -> None:
    """The other order of the same race: the stop shuts the executor down after the run took
    it. Submitting fails; each job gets that failure as its result (it raised out of the scan,
    which logged a traceback as a failed scan on an ordinary SIGTERM)."""
    from sparkhist.scan.workers import IndexPool

    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    pool = IndexPool(str(logs), str(tmp_path / "store"), 2)
    try:
        jobs = _jobs(logs)
        assert not any(isinstance(r, BaseException) for _, r in pool.run(jobs[:1]))
        executor = pool._pool
        assert executor is not None
        executor.shutdown(wait=True)
        results = list(pool.run(jobs))
        assert [log for log, _ in results] == [log for log, _ in jobs]
        assert all(isinstance(result, RuntimeError) for _, result in results)
    finally:
        pool.stop()


def test_a_killed_worker_costs_one_run_and_the_next_starts_a_new_pool(tmp_path: Path) -> None:
    """A worker killed (as the kernel's OOM killer does) breaks its pool: that run's jobs fail,
    one result each; the broken pool is dropped, so the next run starts a new one and builds.
    Before, the broken pool stayed and every later scan failed on it."""
    import os
    import signal
    import time

    from sparkhist.scan.workers import IndexPool

    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    pool = IndexPool(str(logs), str(tmp_path / "store"), 2)
    try:
        jobs = _jobs(logs)
        assert not any(isinstance(r, BaseException) for _, r in pool.run(jobs[:2]))
        assert pool._pool is not None
        first = pool._pool
        workers = list(first._processes)
        manager = first._executor_manager_thread
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _living([victim]) and time.monotonic() < deadline:
            time.sleep(0.05)
        broken = list(pool.run(jobs))
        assert len(broken) == len(jobs)
        assert any(isinstance(result, BaseException) for _, result in broken)
        # The broken pool's other workers are gone and its manager thread has ended: that
        # thread's clean-up joins the workers, and the interpreter's exit joins the thread
        # (a worker left alive, ignoring SIGTERM, hung the process at exit).
        assert manager is not None
        manager.join(10)
        assert not manager.is_alive()
        assert _living(workers) == []
        again = list(pool.run(jobs))
        assert not any(isinstance(result, BaseException) for _, result in again), again
        assert pool.started == 2
    finally:
        pool.stop()
