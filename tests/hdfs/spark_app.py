"""A pyspark 4.0.1 application that writes its event log into the test HDFS.

Run by ``test_spark_writes_hdfs.py`` as ``python spark_app.py <event-log-dir URL>`` with
``HADOOP_CONF_DIR`` pointing at the harness's client configuration. Protocol on stdout:
``RUNNING <app id>`` once a job has finished and the log has been flushed, then it waits
for a line on stdin, runs one more job, stops, and prints ``DONE``.
"""

from __future__ import annotations

import sys


def main() -> None:
    from pyspark.sql import SparkSession

    log_dir = sys.argv[1]
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("sparkhist-hdfs-test")
        .config("spark.eventLog.enabled", "true")
        .config("spark.eventLog.dir", log_dir)
        .config("spark.eventLog.compress", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "512m")
        .getOrCreate()
    )
    sc = spark.sparkContext
    sc.setLogLevel("ERROR")
    spark.range(10_000).selectExpr("sum(id) AS s").collect()
    print(f"RUNNING {sc.applicationId}", flush=True)
    sys.stdin.readline()
    spark.range(1_000).selectExpr("id % 3 AS k").groupBy("k").count().collect()
    spark.stop()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
