"""Indexing with and without the analytics tables (issue 19: at most 10 % slower).

Indexes every log of the conformance directories into a fresh store, in this process
(one core), ``--rounds`` times each way, alternating, and prints the median wall time of
each and the slowdown. Not a test: ``.venv/bin/python bench/analytics_overhead.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

from sparkhist.reader.layout import find_event_log
from sparkhist.scan.indexer import Indexer
from sparkhist.source.factory import open_source
from sparkhist.state.app_state import AppState
from sparkhist.store.snapshots import SnapshotStore

CONFORMANCE = "/work/shared/conformance"
DIRS = (f"{CONFORMANCE}/spark-4.0.1/eventlogs", f"{CONFORMANCE}/apache-spark/spark-events")


def index_all(tables: bool) -> float:
    store = tempfile.mkdtemp(prefix="sparkhist-bench-")
    if tables:
        os.makedirs(os.path.join(store, "analytics"))  # what SPARKHIST_ANALYTICS_TABLES=true makes
    try:
        elapsed = 0.0
        for root in DIRS:
            source = open_source(root)
            indexer = Indexer(source, SnapshotStore(store), AppState)
            logs = [find_event_log(source, e.path) for e in source.list(root)]
            start = time.perf_counter()
            for event_log in logs:
                indexer.refresh(event_log)
            elapsed += time.perf_counter() - start
        return elapsed
    finally:
        shutil.rmtree(store)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    index_all(True)  # warm: imports, the engine, the page cache
    off: list[float] = []
    on: list[float] = []
    for _ in range(args.rounds):
        off.append(index_all(False))
        on.append(index_all(True))
    a, b = statistics.median(off), statistics.median(on)
    print(f"{os.cpu_count()} cores; tables off {a:.3f}s, on {b:.3f}s (median of {args.rounds}); "
          f"slowdown {100 * (b - a) / a:+.1f}%")


if __name__ == "__main__":
    main()
