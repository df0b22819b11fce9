"""One sparkhist scan with a fresh store, timed from inside: wall and CPU seconds.

The same code path as ``sparkhist scan`` (``build_runtime`` + ``Scanner.scan_once``:
listing pass, full indexing, snapshots written), minus the interpreter start-up and
imports, which ``sparkhist scan``'s own figure leaves out too but its CPU time would
not. ``run.py`` runs it as a child process (a clean heap each time) and reads the JSON
it prints; ``profile_index.py`` calls :func:`scan` in-process.

    python bench/scan_once.py <log-dir> <store-dir> [<workers>]
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from sparkhist.config import load_settings
from sparkhist.server import build_runtime
from sparkhist.state import native_tasks


def scan(log_dir: Path, store: Path, workers: int | None = None) -> dict[str, Any]:
    """Scan ``log_dir`` into a new store at ``store`` (removed first).

    ``workers``: indexing processes (None: sparkhist's default, one per CPU; 1: all in
    this process, the only setting a profiler sees whole). ``cpu`` counts this
    process and its workers (reaped once the scan is over); ``wall`` only the scan.
    """
    shutil.rmtree(store, ignore_errors=True)
    flags: dict[str, Any] = {"log_dir": str(log_dir), "store_dir": str(store)}
    if workers is not None:
        flags["index_workers"] = workers
    runtime = build_runtime(load_settings(flags, environ={}))
    if not runtime.loop.lock.try_acquire():
        raise RuntimeError(f"store {store} is locked by another process")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        report = runtime.scanner.scan_once()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        pool = getattr(runtime.scanner, "pool", None)
        if pool is not None:
            pool.close()
        runtime.loop.lock.release()
        runtime.catalog.close()
    _reap_children()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return {"wall": wall, "cpu": cpu, "listed": report.listed, "indexed": report.indexed,
            "failed": report.failed, "errors": dict(report.errors),
            "native": native_tasks.native_decoder()[0] is not None}  # the compiled path (SPARKHIST_NATIVE)


def _reap_children(timeout: float = 30.0) -> None:
    """Wait for the worker processes to exit, so their CPU time is accounted."""
    deadline = time.monotonic() + timeout
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.02)


if __name__ == "__main__":
    print(json.dumps(scan(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)))
