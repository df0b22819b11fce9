"""The ready-made analytics views at 10,000 and 100,000 applications (issue 19: under 1 s each).

Builds a store whose tables hold N attempts: every log of the conformance directories and
the bundled samples is indexed for real (tables on), compacted, and the table files are
then grown to N attempts by copying those real rows under new application ids (the
attempt key and ``app_id`` rewritten, every figure kept), which is what a store of N
such applications would hold. Then times, with a fresh engine each round (first query:
views made, table files checksummed), right after one more attempt was indexed (views made
again over the new pending rows), and warm: each view of ``/analytics/``,
the whole page's queries, the trend of the most frequent name, and the same page filtered
by ACLs to half of the attempts. Not a test: ``.venv/bin/python bench/analytics_views.py
[--apps 10000 100000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import xxhash

from sparkhist.analytics.batch import flush
from sparkhist.analytics.compaction import compact, stored_columns
from sparkhist.analytics.layout import KEY_COLUMN, analytics_dir, current_tables, table_file_name, tables_dir
from sparkhist.analytics.pending import tombstone, write_batch
from sparkhist.analytics.query import Engine
from sparkhist.analytics.tables import TABLES
from sparkhist.reader.layout import find_event_log
from sparkhist.scan.indexer import Indexer
from sparkhist.source.factory import open_source
from sparkhist.state.app_state import AppState
from sparkhist.store.snapshots import SnapshotStore
from sparkhist.ui.analytics_views import TREND_SQL, VIEWS

ROOT = Path(__file__).resolve().parents[1]
DIRS = ("/work/shared/conformance/spark-4.0.1/eventlogs", "/work/shared/conformance/apache-spark/spark-events",
        str(ROOT / "src" / "sparkhist" / "samples" / "eventlogs"))


def base_store(store: str) -> None:
    os.makedirs(analytics_dir(store))
    snapshots = SnapshotStore(store)
    for root in DIRS:
        source = open_source(root)
        indexer = Indexer(source, snapshots, AppState)
        for entry in source.list(root):
            indexer.refresh(find_event_log(source, entry.path))
    flush(store)
    compact(store)


def grow(store: str, apps: int) -> int:
    """Rewrite every table file with ``apps`` attempts' worth of the real rows; the attempts held."""
    current, _ = current_tables(store)
    con = duckdb.connect()
    row = con.execute(f"SELECT count(*) FROM read_parquet('{current['applications'].path}')").fetchone()
    base = int(row[0]) if row else 0
    copies = -(-apps // base)
    for table in TABLES:
        old = current[table.name]
        names = [n for n, _ in stored_columns(table)]
        renamed = ", ".join(
            f"{KEY_COLUMN} || '-' || c AS {KEY_COLUMN}" if n == KEY_COLUMN
            else ("CASE WHEN c = 0 THEN app_id ELSE app_id || '-' || c END AS app_id" if n == "app_id" else n)
            for n in names)
        temp = os.path.join(tables_dir(store), table.name + ".grow.tmp")
        con.execute(f"COPY (SELECT {renamed} FROM read_parquet('{old.path}'), range({copies}) r(c)) "
                    f"TO '{temp}' (FORMAT parquet, COMPRESSION snappy)")
        digest = xxhash.xxh64_hexdigest(Path(temp).read_bytes())
        os.replace(temp, os.path.join(tables_dir(store), table_file_name(table.name, old.generation + 1, digest)))
        os.unlink(old.path)
    con.close()
    return base * copies


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(store: str, rounds: int) -> dict[str, tuple[float, float, float]]:
    """name -> (median s: fresh engine, after a change, warm)."""
    queries = [(v.key, v.sql, None) for v in VIEWS]
    trend_name = "Spark shell"
    queries.append(("trend", TREND_SQL, {"name": trend_name}))
    out: dict[str, tuple[float, float, float]] = {}
    keys = None
    changes = 0

    def change() -> None:
        nonlocal changes
        changes += 1
        write_batch(store, [tombstone(f"bench-change-{changes}")])  # one more pending file: the views are remade
    for name, sql, params in [*queries, ("page", None, None), ("page, ACL half", None, None)]:
        cold: list[float] = []
        changed: list[float] = []
        warm: list[float] = []
        for _ in range(rounds):
            engine = Engine(store, timeout=60, max_rows=1_000_000)
            try:
                if name.startswith("page"):
                    allowed = None
                    if name != "page":
                        if keys is None:
                            con = duckdb.connect()
                            path = current_tables(store)[0]["applications"].path
                            keys = [r[0] for r in con.execute(f"SELECT {KEY_COLUMN} FROM read_parquet('{path}')")
                                    .fetchall()][::2]
                            con.close()
                        allowed = keys
                    items = [(v.sql, None) for v in VIEWS]
                    run = functools.partial(engine.run_all, items, allowed)
                else:
                    run = functools.partial(engine.run, sql, params=params)
                cold.append(timed(run))
                change()
                changed.append(timed(run))
                warm.append(timed(run))
            finally:
                engine.close()
        out[name] = (statistics.median(cold), statistics.median(changed), statistics.median(warm))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="sparkhist-bench-views-")
    try:
        base = os.path.join(work, "base")
        base_store(base)
        for apps in args.apps:
            store = os.path.join(work, f"apps-{apps}")
            shutil.copytree(base, store)
            held = grow(store, apps)
            size = sum(os.path.getsize(os.path.join(tables_dir(store), n)) for n in os.listdir(tables_dir(store)))
            print(f"\n{held:,} attempts, table files {size / 2**20:.1f} MiB, {os.cpu_count()} cores "
                  f"(DuckDB 1 thread); median of {args.rounds} (s): fresh engine / after a change / warm")
            for name, (cold, changed, warm) in measure(store, args.rounds).items():
                print(f"  {name:<16} {cold:7.3f} {changed:7.3f} {warm:7.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
