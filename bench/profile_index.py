"""Profile sparkhist's indexing path: where does a scan spend its time?

    .venv/bin/python bench/profile_index.py [--apps 200] [--big-tasks 12000] [--top 25]

Two workloads, both from ``bench/corpus.py``: the big log alone, and ``--apps``
scaled apps (rolling + zstd). Each is scanned with a fresh store (listing pass, full
index, snapshots written): unprofiled first, for the honest time, with sparkhist's
default indexing workers and with one (in-process); then under ``cProfile`` with one
worker, so that no work hides in another process (cProfile roughly doubles
Python-heavy code and times blocking calls such as fsync as they are), printing the
top costs by cumulative and by own time. With ``--pyinstrument`` (if installed) a
sampling profile is printed too.

For the big log, an on-demand request's build (what a running server does for a log it has
not indexed yet) is timed apart: kept in memory, saved, and the request's memory estimate.

The compiled path (``native/``, issue 16) is timed on and off, each in a fresh process
(``SPARKHIST_NATIVE=1``/``0``, one worker): CPU seconds (median of 5, with the load
average), MB/s per core, and the ratio.
``--cpu-clock`` has cProfile count CPU time instead of wall time (on a busy machine the
wall clock charges other processes' time to whatever was running).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import corpus
from scan_once import scan


def native_on_and_off(logs: corpus.Corpus, work: Path, repeat: int = 5) -> None:
    """The indexing CPU (user + sys, workers included) with the compiled path and without,
    each the median of ``repeat`` fresh processes with one worker (``scan_once.py``), runs
    of the two paths interleaved; the load average is printed with it (the machine is shared)."""
    runs: dict[str, list[float]] = {"0": [], "1": []}
    load = os.getloadavg()[0]
    for _ in range(repeat):
        for native in ("0", "1"):
            out = subprocess.run([sys.executable, str(Path(__file__).with_name("scan_once.py")), str(logs.log_dir),
                                  str(work / f"store-native-{native}"), "1"], check=True, capture_output=True, text=True,
                                 env={**os.environ, "SPARKHIST_NATIVE": native}).stdout
            runs[native].append(json.loads(out.splitlines()[-1])["cpu"])
    load = max(load, os.getloadavg()[0])
    median = {native: statistics.median(cpus) for native, cpus in runs.items()}
    for native, label in (("0", "Python path (SPARKHIST_NATIVE=0)"), ("1", "compiled path (sparkhist_native)")):
        print(f"{label}: {median[native]:.3f}s CPU, {logs.raw_mb / median[native]:.1f} MB/s per core "
              f"(median of {repeat}, 1 worker, fresh process; runs {', '.join(f'{c:.3f}' for c in sorted(runs[native]))})")
    print(f"compiled / Python: {median['0'] / median['1']:.2f}x less CPU (load average up to {load:.1f})")


def on_demand_parts(logs: corpus.Corpus, work: Path, repeat: int = 5) -> None:
    """What an API request's build of a log not indexed yet costs in a running server
    (``StoreStates.get`` -> ``Indexer.build``), in CPU seconds, median of ``repeat``, in this
    process: the build kept in memory (a serving process's), the build saved (the writer's),
    and the request's memory estimate of the state it got (``estimate_state_bytes`` with the
    size the snapshot carries)."""
    from sparkhist.config import load_settings
    from sparkhist.reader.layout import find_event_log
    from sparkhist.server import build_runtime
    from sparkhist.store.states import estimate_state_bytes

    store = work / "store-on-demand"
    shutil.rmtree(store, ignore_errors=True)
    runtime = build_runtime(load_settings({"log_dir": str(logs.log_dir), "store_dir": str(store)}, environ={}))
    indexer = runtime.scanner.indexer
    assert indexer is not None
    runs: dict[str, list[float]] = {"unsaved build": [], "saved build": [], "memory estimate": []}
    try:
        for _ in range(repeat):
            for log_path in sorted(str(p) for p in logs.log_dir.iterdir()):
                for persist, label in ((False, "unsaved build"), (True, "saved build")):
                    shutil.rmtree(indexer.snapshots.dir, ignore_errors=True)
                    os.makedirs(indexer.snapshots.dir)
                    t = time.process_time()
                    snapshot = indexer.refresh(find_event_log(runtime.source, log_path), persist=persist)
                    runs[label].append(time.process_time() - t)
                    if not persist:
                        t = time.process_time()
                        estimate_state_bytes(snapshot.state, snapshot.pickled_bytes)
                        runs["memory estimate"].append(time.process_time() - t)
                    del snapshot
    finally:
        runtime.catalog.close()
        shutil.rmtree(store, ignore_errors=True)
    print(f"an on-demand request's build, CPU median of {repeat} (load average {os.getloadavg()[0]:.1f}): "
          + ", ".join(f"{label} {statistics.median(times):.3f}s" for label, times in runs.items()))


def profile(name: str, logs: corpus.Corpus, work: Path, top: int, use_pyinstrument: bool,
            cpu_clock: bool = False) -> None:
    store = work / "store"
    print(f"\n=== {name}: {logs.apps:,} apps, {logs.stored_bytes / 1e6:.1f} MB stored, "
          f"{logs.raw_mb:.1f} MB uncompressed, {logs.events:,} events")
    for workers, label in ((None, "default workers (one per CPU)"), (1, "1 worker (all in-process)")):
        result = scan(logs.log_dir, store, workers)
        wall, cpu = result["wall"], result["cpu"]
        print(f"unprofiled scan, {label}: {wall:.2f}s wall, {cpu:.2f}s CPU (workers included) -> "
              f"{logs.raw_mb / wall:.1f} MB/s, {logs.raw_mb / cpu:.1f} MB/s per core, "
              f"{logs.events / cpu:,.0f} events/s per core "
              f"({result['listed']} logs listed, {result['indexed']} fully indexed, {result['failed']} failed)")
    native_on_and_off(logs, work)
    if logs.apps == 1:
        on_demand_parts(logs, work)
    profiler = cProfile.Profile(time.process_time) if cpu_clock else cProfile.Profile()
    profiler.enable()
    wall_p = scan(logs.log_dir, store, 1)["wall"]
    profiler.disable()
    print(f"under cProfile (1 worker, so every call is seen): {wall_p:.2f}s wall")
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(order).print_stats(top)
        body = out.getvalue()
        start = body.find("   ncalls")
        print(f"\n--- top {top} by {order} ---")
        print(body[start:].rstrip() if start >= 0 else body.rstrip())
    if use_pyinstrument:
        try:
            from pyinstrument import Profiler
        except ImportError:
            print("\n(pyinstrument is not installed; cProfile only)")
            return
        sampler = Profiler()
        sampler.start()
        scan(logs.log_dir, store, 1)
        sampler.stop()
        print(sampler.output_text(unicode=True, color=False, show_all=False))


def profile_restart(store: Path, log_dir: Path, top: int) -> None:
    """A warm restart's own cost: opening the store left by the last scan (no scan)."""
    from sparkhist.config import load_settings
    from sparkhist.server import build_runtime

    settings = load_settings({"log_dir": str(log_dir), "store_dir": str(store)}, environ={})
    t = time.perf_counter()
    runtime = build_runtime(settings)
    unprofiled = time.perf_counter() - t
    apps = len(runtime.index)
    runtime.catalog.close()
    profiler = cProfile.Profile()
    profiler.enable()
    runtime = build_runtime(settings)
    profiler.disable()
    runtime.catalog.close()
    print(f"\n=== warm restart: build_runtime on the store of {apps:,} apps: {unprofiled * 1000:.0f} ms unprofiled "
          f"(imports already done; a new process adds them)")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    body = out.getvalue()
    start = body.find("   ncalls")
    print(f"--- top {top} by cumulative ---")
    print(body[start:].rstrip() if start >= 0 else body.rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--big-tasks", type=int, default=corpus.BIG_TASKS)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("--only", choices=("big", "corpus"), help="profile one workload only")
    parser.add_argument("--cpu-clock", action="store_true", help="cProfile counts CPU time, not wall time")
    args = parser.parse_args()
    big = corpus.ensure_big_log(args.big_tasks)
    work = Path(tempfile.mkdtemp(prefix="sparkhist-profile-"))
    try:
        if args.only in (None, "big"):
            profile("big log", big, work, args.top, args.pyinstrument, args.cpu_clock)
        if args.only in (None, "corpus"):
            scaled = corpus.ensure_scaled(args.apps, "rolling")
            profile(f"{args.apps} rolling+zstd apps", scaled, work, args.top, args.pyinstrument, args.cpu_clock)
            profile_restart(work / "store", scaled.log_dir, args.top)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
