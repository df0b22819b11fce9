"""Indexing with and without the analytics tables (issue 19: at most 10 % slower).

Indexes every log of the given directories (by default the conformance logs) into a
fresh store, in this process (one core), ``--rounds`` times each way, alternating, and
prints the median CPU time of each and the slowdown, the median and range of each
round's own slowdown (its two runs side by side), and the load average before and
after (the box may be shared: CPU time, not wall). With the tables on, the time includes
folding every attempt's pending rows into the table files (one compaction at the end, as
the writer's loop does once they are due). Not a test:
``.venv/bin/python bench/analytics_overhead.py [DIR ...]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

from sparkhist.analytics.batch import flush
from sparkhist.analytics.compaction import compact
from sparkhist.reader.layout import find_event_log
from sparkhist.scan.indexer import Indexer
from sparkhist.source.factory import open_source
from sparkhist.state.app_state import AppState
from sparkhist.store.snapshots import SnapshotStore

CONFORMANCE = "/work/shared/conformance"
DIRS = (f"{CONFORMANCE}/spark-4.0.1/eventlogs", f"{CONFORMANCE}/apache-spark/spark-events")


def index_all(tables: bool, dirs: list[str]) -> tuple[float, float]:
    """(CPU s indexing, CPU s of the one compaction after it)."""
    store = tempfile.mkdtemp(prefix="sparkhist-bench-")
    if tables:
        os.makedirs(os.path.join(store, "analytics"))  # what SPARKHIST_ANALYTICS_TABLES=true makes
    try:
        elapsed = 0.0
        for root in dirs:
            source = open_source(root)
            indexer = Indexer(source, SnapshotStore(store), AppState)
            logs = [find_event_log(source, e.path) for e in source.list(root)]
            start = time.process_time()
            for event_log in logs:
                indexer.refresh(event_log)
            if tables:
                flush(store)  # the last rows buffered, written as a scan's end writes them
            elapsed += time.process_time() - start
        folded = 0.0
        if tables:
            start = time.process_time()
            compact(store)
            folded = time.process_time() - start
        return elapsed, folded
    finally:
        shutil.rmtree(store)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("dirs", nargs="*", default=list(DIRS))
    args = parser.parse_args()
    load = os.getloadavg()[0]
    index_all(True, args.dirs)  # warm: imports, the engine, the page cache
    off: list[float] = []
    on: list[float] = []
    folds: list[float] = []
    for _ in range(args.rounds):
        off.append(index_all(False, args.dirs)[0])
        indexing, folded = index_all(True, args.dirs)
        on.append(indexing)
        folds.append(folded)
    a, b, c = statistics.median(off), statistics.median(on), statistics.median(folds)
    # Each round's own ratio too: the box is shared, and a round's two runs see the same load.
    paired = sorted(100 * (n + f - o) / o for o, n, f in zip(off, on, folds, strict=True))
    print(f"{os.cpu_count()} cores, load average {load:.1f} -> {os.getloadavg()[0]:.1f}; CPU s, median of {args.rounds}: "
          f"tables off {a:.3f}; on {b:.3f} indexing ({100 * (b - a) / a:+.1f}%) + {c:.3f} compaction = "
          f"{100 * (b + c - a) / a:+.1f}%; per round {statistics.median(paired):+.1f}% "
          f"({paired[0]:+.1f}% .. {paired[-1]:+.1f}%)")


if __name__ == "__main__":
    main()
