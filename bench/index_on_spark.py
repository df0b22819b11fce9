"""Indexing throughput on Spark (``sparkhist index-on-spark``) beside the single-node scan.

The same corpus (``bench/corpus.py``'s rolling corpus, a few hundred applications) is
indexed into a fresh store four ways: the single-node scan with 1 and 2 worker processes
(``bench/scan_once.py``, as ``sparkhist scan``), and ``sparkhist index-on-spark`` on
``local-cluster[1,1,1024]`` and ``local-cluster[2,1,1024]`` (a master, 1 or 2 workers, one
executor JVM of one core each, with their Python workers). For each: wall seconds of the
whole command, of the scan (listing pass, decisions, catalog, builds) and, on Spark, of
the Spark job (executors' registration included when they were not up yet); MB/s of log
read (stored bytes, and uncompressed JSON) and apps/s over the scan; the store's bytes per
app; the CPU other processes used meanwhile (``bench/noise.py``).

With ``--store-url URL`` (``file://``, ``hdfs://``, ``s3a://``...; Hadoop properties with
``--hadoop-conf k=v`` / ``--hadoop-conf-dir``) the Spark runs write a store location
(``URL/<run>``: snapshots uploaded by the executors, one catalog segment published by the
driver) instead of a shared directory; the table adds the publish seconds and the sizes are
read from the store location.

    python bench/index_on_spark.py [--apps 300] [--store-url URL] [--hadoop-conf k=v ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from corpus import ensure_scaled
from noise import ForeignLoad

HERE = Path(__file__).resolve().parent
SPARKHIST = Path(sys.executable).with_name("sparkhist")
SCAN = re.compile(r"(\d+) logs listed: (\d+) new.*; (\d+) applications; ([\d.]+)s")
JOB = re.compile(r"(\d+) logs built by (\d+) Spark jobs in ([\d.]+)s")
PUBLISHED = re.compile(r"published \S+: \d+ records, \d+ deleted in ([\d.]+)s")


def _spark_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return env


def single_node(log_dir: Path, store: Path, workers: int) -> dict[str, Any]:
    started = time.monotonic()
    out = subprocess.run([sys.executable, str(HERE / "scan_once.py"), str(log_dir), str(store), str(workers)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    return {"how": f"scan, {workers} worker{'s' if workers > 1 else ''}", "command": time.monotonic() - started,
            "scan": result["wall"], "job": None, "listed": result["listed"], "indexed": result["indexed"],
            "failed": result["failed"]}


def on_spark(log_dir: Path, store: Path | str, executors: int, flags: tuple[str, ...] = ()) -> dict[str, Any]:
    if isinstance(store, Path):
        shutil.rmtree(store, ignore_errors=True)
    master = f"local-cluster[{executors},1,1024]"
    started = time.monotonic()
    out = subprocess.run([str(SPARKHIST), "index-on-spark", "--master", master, "--conf", "spark.executor.memory=512m",
                          "--log-dir", str(log_dir), "--store", str(store), *flags],
                         capture_output=True, text=True, env=_spark_env(), check=True)
    command = time.monotonic() - started
    scan, job = SCAN.search(out.stdout), JOB.search(out.stdout)
    if scan is None or job is None:
        raise RuntimeError(f"unexpected output: {out.stdout}\n{out.stderr[-3000:]}")
    published = PUBLISHED.search(out.stdout)
    return {"how": f"index-on-spark, {master}", "command": command, "scan": float(scan.group(4)),
            "job": float(job.group(3)), "listed": int(scan.group(1)), "indexed": int(job.group(1)), "failed": 0,
            "publish": float(published.group(1)) if published else None}


def _remote_sizes(url: str, flags: tuple[str, ...]) -> tuple[int, int]:
    """(snapshot bytes, catalog segment bytes) of a store location."""
    from sparkhist.source.factory import SourceOptions
    from sparkhist.store.remote import RemoteStore

    conf = tuple(tuple(v.split("=", 1)) for k, v in zip(flags[::2], flags[1::2], strict=True) if k == "--hadoop-conf")
    conf_dir = next((v for k, v in zip(flags[::2], flags[1::2], strict=True) if k == "--hadoop-conf-dir"), None)
    options = SourceOptions(hadoop_conf_dir=conf_dir, hadoop_conf=conf)  # type: ignore[arg-type]
    with RemoteStore.open(url, options) as remote:
        source = remote.source
        sizes = {d: sum(e.size for e in source.list(source.join(source.root_path, d)) if not e.is_dir)
                 for d in ("snapshots", "catalog")}
    return sizes["snapshots"], sizes["catalog"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--store-url", default=None, help="a store location for the Spark runs (file://, hdfs://, s3a://)")
    parser.add_argument("--hadoop-conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--hadoop-conf-dir", default=None)
    args = parser.parse_args()
    flags = tuple(a for kv in args.hadoop_conf for a in ("--hadoop-conf", kv))
    flags += ("--hadoop-conf-dir", args.hadoop_conf_dir) if args.hadoop_conf_dir else ()
    url = args.store_url.rstrip("/") if args.store_url else None
    corpus = ensure_scaled(args.apps, "rolling")
    stored_mb, raw_mb = corpus.stored_bytes / 1e6, corpus.raw_mb
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ios-") as tmp:
        for how, run in (("scan1", lambda s: single_node(corpus.log_dir, s, 1)),
                         ("scan2", lambda s: single_node(corpus.log_dir, s, 2)),
                         ("spark1", lambda s: on_spark(corpus.log_dir, f"{url}/{s.name}" if url else s, 1, flags)),
                         ("spark2", lambda s: on_spark(corpus.log_dir, f"{url}/{s.name}" if url else s, 2, flags))):
            store = Path(tmp) / f"{how}-{os.getpid()}-{int(time.time())}"  # a fresh name on a store location too
            with ForeignLoad(interval=2.0) as noise:
                row = run(store)
            if url and how.startswith("spark"):
                row["snapshot_bytes"], row["catalog_bytes"] = _remote_sizes(f"{url}/{store.name}", flags)
            else:
                row["snapshot_bytes"] = sum(f.stat().st_size for f in (store / "snapshots").rglob("*") if f.is_file())
                row["catalog_bytes"] = (store / "catalog.sqlite").stat().st_size
            row["others_cores"] = round(noise.mean(), 2)
            row["noise"] = noise.summary()
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(f"corpus: {corpus.apps:,} {corpus.layout} apps, {stored_mb:.1f} MB stored, {raw_mb:.1f} MB uncompressed JSON "
          f"({corpus.log_dir})")
    print("| how | command s | scan s | Spark job s | logs built | stored MB/s | JSON MB/s | apps/s | other processes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        scan = row["scan"]
        job = f"{row['job']:.1f}" if row["job"] is not None else "n/a"
        print(f"| {row['how']} | {row['command']:.1f} | {scan:.1f} | {job} | {row['indexed']} | {stored_mb / scan:.2f} | "
              f"{raw_mb / scan:.2f} | {corpus.apps / scan:.1f} | {row['others_cores']:.2f} cores |")
    for row in rows:
        if row.get("publish") is not None:
            print(f"{row['how']}: segment and manifest published in {row['publish']:.2f}s "
                  f"({row['catalog_bytes'] / corpus.apps:.0f} bytes of catalog per app)")
    last = rows[-1]
    print(f"store per app: snapshots {last['snapshot_bytes'] / corpus.apps / 1e3:.1f} kB, "
          f"catalog {last['catalog_bytes'] / corpus.apps / 1e3:.2f} kB")
    if args.json:
        print(json.dumps({"apps": corpus.apps, "stored_mb": stored_mb, "raw_mb": raw_mb, "rows": rows}))


if __name__ == "__main__":
    main()
