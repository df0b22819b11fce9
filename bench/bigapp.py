"""Child process: one real Spark application with one stage of many tiny tasks.

Run by :func:`bench.corpus.ensure_big_log` (never imported by it: this file's bytes
are part of the cache key, so editing the workload regenerates the log).

``spark.range(0, tasks, 1, tasks).count()`` is a SQL query whose first stage has one
task per partition (a partial aggregate per task, all in the JVM: no Python worker);
every TaskEnd carries the task metrics plus the SQL accumulators, about 5 kB of JSON,
so 12,000 tasks make a log of ~60 MB uncompressed. The event log uses Spark 4's
defaults (rolling, zstd): exactly what a cluster would write.

    python bench/bigapp.py <tasks> <eventlog-dir> <work-dir>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(tasks: int, log_dir: Path, work: Path) -> None:
    from pyspark.sql import SparkSession

    conf = {
        "spark.master": "local[2]",
        "spark.app.name": f"bench-big-{tasks}-tasks",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": "1g",
        "spark.local.dir": str(work / "local"),
        "spark.sql.warehouse.dir": str(work / "warehouse"),
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"file:{log_dir}",
    }
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    app_id = spark.sparkContext.applicationId
    spark.sparkContext.setJobDescription(f"count over {tasks} partitions")
    count = spark.range(0, tasks, 1, tasks).count()
    if count != tasks:
        raise AssertionError(f"counted {count}, expected {tasks}")
    (work / "result.json").write_text(json.dumps({"app_id": app_id}))
    spark.stop()  # writes ApplicationEnd and drops the .inprogress marker
    driver = spark.sparkContext._gateway.proc
    driver.stdin.close()  # the py4j gateway JVM exits on stdin EOF ...
    driver.wait(timeout=60)  # ... and is reaped here


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
