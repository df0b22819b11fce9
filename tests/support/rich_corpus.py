"""A second corpus of real pyspark event logs (4.3.0, the dev pin), rich in what the base corpus lacks.

The base corpus (``corpus.py``) covers codecs and layouts with one small workload.
This one covers the *scheduler* and *SQL* stories the REST API has to tell:

- ``rich-sql``: broadcast and sort-merge joins, AQE (coalesced shuffle partitions, a
  skew-join split, plan updates, driver-side metric updates), a Python UDF, a cached
  DataFrame beside an unpersisted one, a parquet write and read, a SQL query that
  fails at run time (``errorMessage``), and commands that run queries inside them
  (``CREATE TABLE ... AS SELECT``, ``INSERT``, ``CACHE TABLE``, one ``INSERT`` that fails):
  nested executions whose ``rootExecutionId`` is another execution's id. Executor metrics
  are polled (``spark.executor.metrics.pollingInterval``) and logged per stage
  (``spark.eventLog.logStageExecutorMetrics``, which also logs the driver's
  ``ExecutorMetricsUpdate`` events, one a second here).
- ``rich-rdd-killed``: RDD shuffles, RDDs cached at several storage levels (one only
  partly), an unpersisted RDD, flaky tasks that fail their first attempt and are retried
  (``local[2,3]``; one on the reduce side, after reading its shuffle input), a cancelled
  job group (KILLED tasks with shuffle-read metrics), a tagged job; then the driver is
  SIGKILLed mid-job, so the app stays *running* with non-empty ``storage/rdd``.
- ``rich-cluster``: ``local-cluster[2,1,1024]`` (two executor JVMs): a flaky task retried
  on an executor, and a **fetch failure**: one executor is frozen (SIGSTOP) after its map
  outputs were written, a reduce task on the other executor times out fetching from it,
  the map stage is re-run as attempt 1, then the frozen executor is SIGKILLed (a dead
  executor with a remove reason; tasks lost with it; the worker starts a replacement).
  Speculation is on and a task is slow enough to be speculated, but no trace of that
  can reach the log (see ``_cluster_workload``). Before that, a reduce task fails its first
  attempt after reading shuffle blocks from both executors (remote and local reads in a
  failed task's metrics). Executor metrics are polled and logged per stage and executor,
  as in ``rich-sql``, and the app ends with ``SparkContext.stop(3)``: exit code 3 in its
  application-end event (an app that exits non-zero).
- ``rich-streaming``: a DStream app (``pyspark.streaming`` still ships in 4.x) and a
  structured-streaming query (rate source, stateful aggregation, memory sink) run for a
  few micro-batches, then stopped while a task stalls (killed tasks, a cancelled stage).

Caveats found on the way, so nobody looks for them in these logs:

- ``/streaming/*`` answers 404 ``no streaming listener attached to <name>`` even for the
  DStream app: DStream listener events are never written to the event log
  (``StreamingListenerBus.WrappedStreamingListenerEvent.logEvent`` is false, SPARK-12140).
- Without ``spark.eventLog.logBlockUpdates.enabled`` (off by default) the log has no
  BlockUpdated events and the SHS lists no cached RDD at all, so the sql, rdd and cluster
  apps turn it on.

Same caching scheme as ``corpus.py`` (whose helpers are imported, not copied):
``~/.cache/sparkhist/rich-corpus-<key>/{eventlogs,manifest.json}``, ``<key>`` hashing this
file, ``corpus.py`` and the pyspark version, built in a temporary sibling and renamed into place under a
file lock. What each app actually exercised (e.g. whether the fetch failure happened) is
measured by the app itself and recorded in the manifest under ``observed``.

``python tests/support/rich_corpus.py`` builds the corpus (if needed) and prints its path.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import operator
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (the app subprocess): make ``support`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import corpus
from support.corpus import (
    AppSpec,
    _describe,
    _kill_driver_mid_job,
    _wait_until,
    ensure_generated,
    event_log_conf,
    launch_app,
    load_manifest,
    run_apps,
    start_spark,
    stop_spark,
)

__all__ = ["RichSpec", "ensure_rich_corpus", "load_manifest", "rich_specs"]

PREFIX = "rich-corpus"


@dataclass(frozen=True)
class RichSpec:
    """One application. ``kind`` picks the workload; ``name`` becomes the Spark app name."""

    name: str
    kind: str  # "sql" | "rdd" | "cluster" | "streaming"
    master: str
    codec: str
    rolling: bool
    killed: bool = False
    #: ``SparkContext.stop(exit_code)``: the application-end event's ``ExitCode``.
    exit_code: int = 0

    def as_corpus_spec(self) -> AppSpec:
        return AppSpec(self.name, self.codec, self.rolling, killed=self.killed)


def rich_specs() -> list[RichSpec]:
    """The first app runs alone and seeds the driver class archive, so it is the SQL one."""
    return [
        RichSpec("rich-sql", "sql", "local[2]", "zstd", rolling=True),
        RichSpec("rich-cluster", "cluster", "local-cluster[2,1,1024]", "none", rolling=False, exit_code=3),
        RichSpec("rich-rdd-killed", "rdd", "local[2,3]", "none", rolling=False, killed=True),
        RichSpec("rich-streaming", "streaming", "local[2]", "zstd", rolling=False),
    ]


# --------------------------------------------------------------------------- cache


def rich_corpus_key() -> str:
    """Hash of this generator, the shared machinery in ``corpus.py``, and pyspark's version."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(Path(corpus.__file__).read_bytes())
    digest.update(importlib.metadata.version("pyspark").encode())
    return digest.hexdigest()[:16]


def ensure_rich_corpus() -> Path:
    """Return the directory of event logs, generating the corpus if needed (a few minutes)."""
    return ensure_generated(PREFIX, rich_corpus_key(), generate)


# --------------------------------------------------------------------------- parent side


def generate(out: Path, specs: list[RichSpec] | None = None) -> list[dict[str, Any]]:
    """Run every app into ``out/eventlogs`` and write ``out/manifest.json``."""
    return run_apps(out, rich_specs() if specs is None else specs, _run_app)


def _run_app(spec: RichSpec, log_dir: Path, work: Path, driver_opts: str) -> dict[str, Any]:
    info = launch_app(__file__, spec, log_dir, work, driver_opts)
    entry = _describe(spec.as_corpus_spec(), log_dir, info["app_id"])
    entry.update(kind=spec.kind, master=spec.master, seconds=info["seconds"],
                 observed=info.get("observed", {}), **_event_census(log_dir / entry["path"]))
    return entry


def _event_census(path: Path) -> dict[str, Any]:
    """What the log holds: events by type and task ends by reason (codecs none and zstd only)."""
    files = sorted(path.glob("events_*"), key=lambda f: int(f.name.split("_")[1])) if path.is_dir() else [path]
    events: dict[str, int] = {}
    reasons: dict[str, int] = {}
    exit_codes: list[int] = []
    nested: list[int] = []  # executions whose root is another execution
    failed_shuffle_reads = 0  # failed task attempts that had read shuffle blocks
    for file in files:
        raw = file.read_bytes()
        if ".zstd" in file.name:
            import zstandard

            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with contextlib.suppress(zstandard.ZstdError):  # an in-progress log ends mid-frame
                raw = reader.read()
        for line in raw.decode(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:  # a torn last line
                continue
            name = event["Event"].rsplit(".", 1)[-1]
            events[name] = events.get(name, 0) + 1
            if name == "SparkListenerTaskEnd":
                reason = event["Task End Reason"]["Reason"]
                reasons[reason] = reasons.get(reason, 0) + 1
                read = (event.get("Task Metrics") or {}).get("Shuffle Read Metrics") or {}
                if reason == "ExceptionFailure" and read.get("Total Records Read", 0) > 0:
                    failed_shuffle_reads += 1
            elif name == "SparkListenerApplicationEnd" and "ExitCode" in event:
                exit_codes.append(event["ExitCode"])
            elif name == "SparkListenerSQLExecutionStart" and event.get("rootExecutionId", event["executionId"]) != event[
                    "executionId"]:
                nested.append(event["executionId"])
    return {"events": dict(sorted(events.items())), "task_end_reasons": dict(sorted(reasons.items())),
            "exit_codes": exit_codes, "nested_executions": nested, "failed_shuffle_reads": failed_shuffle_reads}


# --------------------------------------------------------------------------- child side


def _spark_conf(spec: RichSpec, log_dir: Path, work: Path) -> dict[str, str]:
    conf = event_log_conf(spec, spec.master, 8, log_dir, work)
    # A made-up secret: the event log writer redacts it (environment endpoint).
    conf["spark.sparkhist.rich.password"] = "hunter2"
    if spec.kind in ("sql", "rdd", "cluster"):
        # Off by default; without BlockUpdated events the SHS lists no cached RDD at all.
        conf["spark.eventLog.logBlockUpdates.enabled"] = "true"
    if spec.kind in ("sql", "cluster"):
        # Executor metrics polled between heartbeats, per-stage peaks per executor in the log
        # (SparkListenerStageExecutorMetrics) and the driver's ExecutorMetricsUpdate events,
        # at every (1 s) heartbeat.
        conf.update({
            "spark.executor.metrics.pollingInterval": "200ms",
            "spark.executor.heartbeatInterval": "1s",
            "spark.eventLog.logStageExecutorMetrics": "true",
        })
    if spec.kind == "cluster":
        conf.update({
            "spark.executor.memory": "512m",
            "spark.executor.cores": "1",
            # Speculation: only outside local[*] (TaskSchedulerImpl), so here.
            "spark.speculation": "true",
            "spark.speculation.interval": "100ms",
            "spark.speculation.multiplier": "1.5",
            "spark.speculation.quantile": "0.5",
            "spark.speculation.minTaskRuntime": "200ms",
            "spark.speculation.efficiency.enabled": "false",
            # Fetch failure: no host-local disk shortcut (both executors share a host and
            # would read each other's files), a short idle timeout and no fetch retries.
            "spark.shuffle.readHostLocalDisk": "false",
            "spark.shuffle.io.connectionTimeout": "4s",
            "spark.shuffle.io.maxRetries": "0",
            "spark.locality.wait": "0s",
        })
    if spec.kind == "streaming":
        conf["spark.sql.streaming.checkpointLocation"] = str(work / "checkpoints")
    return conf


def _app_main(spec: RichSpec, log_dir: Path, work: Path) -> None:
    spark, app_id = start_spark(_spark_conf(spec, log_dir, work), work)
    result = work / "result.json"
    observed: dict[str, Any] = {}

    def record() -> None:
        result.write_text(json.dumps({"app_id": app_id, "observed": observed}))

    workload = {"sql": _sql_workload, "rdd": _rdd_workload, "cluster": _cluster_workload,
                "streaming": _streaming_workload}[spec.kind]
    workload(spark, work, observed)
    record()
    if spec.killed:
        _kill_driver_mid_job(spark, log_dir, app_id)  # never returns
    if spec.exit_code:
        # pyspark's stop() has no exit code; the JVM SparkContext's stop(exitCode) posts it in
        # the application-end event. stop_spark's second stop() is then a no-op.
        spark.sparkContext._jsc.sc().stop(spec.exit_code)
    stop_spark(spark)


def _expect_failure(action: Any, what: str) -> str:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        action()
    except (Py4JJavaError, PySparkException) as error:  # PySparkException: AnalysisException, PythonException...
        return type(error).__name__
    raise AssertionError(f"{what} was meant to fail but succeeded")


def _sql_workload(spark: Any, work: Path, observed: dict[str, Any]) -> None:
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    sc = spark.sparkContext
    sc.setJobDescription(None)
    # Broadcast hash join (explicit hint), AQE coalesces the 8 small shuffle partitions.
    big = spark.range(0, 20_000).withColumn("k", F.col("id") % 100)
    small = spark.range(0, 100).withColumnRenamed("id", "k").withColumn("label", F.concat(F.lit("L"), F.col("k")))
    big.join(F.broadcast(small), "k").groupBy("label").count().collect()

    # Sort-merge join with a skewed key: AQE's OptimizeSkewedJoin splits the big partition.
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    spark.conf.set("spark.sql.adaptive.skewJoin.skewedPartitionThresholdInBytes", "1KB")
    spark.conf.set("spark.sql.adaptive.skewJoin.skewedPartitionFactor", "2")
    spark.conf.set("spark.sql.adaptive.advisoryPartitionSizeInBytes", "4KB")
    skewed = spark.range(0, 20_000).select(
        F.when(F.col("id") < 15_000, F.lit(0)).otherwise(F.col("id") % 50).alias("k"), F.col("id").alias("v"))
    other = spark.range(0, 50).select(F.col("id").alias("k"), (F.col("id") * 2).alias("w"))
    joined = skewed.join(other, "k")
    joined.agg(F.sum("v"), F.sum("w")).collect()
    plan = joined._jdf.queryExecution().executedPlan().toString()
    observed["sort_merge_join"] = "SortMergeJoin" in plan or "AdaptiveSparkPlan" in plan
    spark.conf.unset("spark.sql.autoBroadcastJoinThreshold")

    # A Python UDF (BatchEvalPython), a cached and an unpersisted DataFrame.
    shout = F.udf(lambda s: s.upper() + "!", StringType())
    cached = spark.range(0, 5_000).selectExpr("id", "id % 10 AS m", "cast(id AS string) AS s").cache()
    cached.count()
    cached.groupBy("m").agg(F.max(shout("s")).alias("loudest")).collect()
    dropped = spark.range(0, 2_000).selectExpr("id * 3 AS t").cache()
    dropped.count()
    dropped.unpersist(blocking=True)

    # Write and read parquet (output and input metrics, a file scan node).
    out = str(work / "out.parquet")
    cached.write.mode("overwrite").parquet(out)
    spark.read.parquet(out).where("m = 3").count()

    # A query that fails while running: assert_true raises in the executor.
    observed["failing_sql"] = _expect_failure(
        lambda: spark.sql("SELECT assert_true(id < 50, 'id too big') FROM range(100)").collect(), "assert_true")
    # A query that fails in analysis never runs: no SQL execution, good to have beside.
    observed["analysis_error"] = _expect_failure(lambda: spark.sql("SELECT nope FROM range(1)").collect(), "bad column")

    # Commands that run a query inside them: each inner query is a nested execution whose
    # rootExecutionId is the command's. CACHE TABLE caches eagerly (a count inside it).
    spark.sql("CREATE TABLE rich_ctas USING parquet AS SELECT id, id % 3 AS m FROM range(1000)")
    spark.sql("INSERT INTO rich_ctas SELECT id, id % 3 FROM range(10)")
    spark.sql("CACHE TABLE rich_cached AS SELECT m, count(*) AS n FROM rich_ctas GROUP BY m")
    spark.sql("UNCACHE TABLE rich_cached")
    # A command whose inner query fails: an errorMessage on a nested execution and its root.
    observed["failing_insert"] = _expect_failure(
        lambda: spark.sql("INSERT INTO rich_ctas SELECT assert_true(id < 5, 'too big'), 0 FROM range(10)").collect(),
        "a failing INSERT")


def _flaky(iterator: Any) -> Any:
    """Partition 1 fails its first attempt, after reading its input; the retry succeeds."""
    from pyspark import TaskContext

    items = list(iterator)  # so a failed reduce task carries shuffle-read metrics
    ctx = TaskContext.get()
    if ctx.partitionId() == 1 and ctx.attemptNumber() == 0:
        raise RuntimeError("flaky: the first attempt of partition 1 fails on purpose")
    return items


def _read_then_sleep(iterator: Any) -> Any:
    """Consume the partition, then hang until the task is killed."""
    count = sum(1 for _ in iterator)
    time.sleep(60)
    return [count]


def _rdd_workload(spark: Any, work: Path, observed: dict[str, Any]) -> None:
    from pyspark import StorageLevel

    sc = spark.sparkContext
    sc.setJobDescription("shuffle with a flaky task")
    pairs = sc.parallelize(range(50_000), 4).mapPartitions(_flaky).map(lambda x: (x % 50, x)).reduceByKey(operator.add, 3)
    observed["flaky_count"] = pairs.count()
    # Reduce side: partition 1, the smallest, fails after reading its shuffle input, so the
    # failed attempt's metrics would shift the stage's shuffle-read quantiles if counted.
    sc.setJobDescription("reduce side: a flaky task that read its shuffle input")
    keys = [0] * 600 + [1] * 10 + [2] * 300
    sc.parallelize(keys, 2).map(lambda k: (k, k)).partitionBy(3, lambda k: k).mapPartitions(_flaky).count()

    sc.setJobDescription("cache at several storage levels")
    memory = sc.parallelize(range(20_000), 4).map(lambda x: x * 3).setName("memory-only").persist(StorageLevel.MEMORY_ONLY)
    memory.count()
    disk = sc.parallelize(range(20_000), 3).map(str).setName("disk-only").persist(StorageLevel.DISK_ONLY)
    disk.count()
    reduced = pairs.mapValues(lambda v: v * 2).setName("memory-and-disk-2").persist(StorageLevel.MEMORY_AND_DISK_2)
    reduced.count()
    partial = sc.parallelize(range(10_000), 4).map(lambda x: -x).setName("partly-cached").cache()
    partial.take(1)  # computes (and caches) the first partition only
    gone = sc.parallelize(range(1_000), 2).setName("unpersisted").cache()
    gone.count()
    gone.unpersist(blocking=True)
    memory.count()  # read from the cache

    sc.setJobDescription("tagged job")
    sc.addJobTag("sparkhist-rich-tag")
    sc.parallelize(range(100), 2).sum()
    sc.removeJobTag("sparkhist-rich-tag")

    # A job group cancelled while its tasks run: KILLED tasks (which read their shuffle
    # input first, so they carry shuffle-read metrics), a failed job.
    def doomed() -> None:
        sc.setJobGroup("doomed", "cancelled while running", interruptOnCancel=True)
        with contextlib.suppress(Exception):
            pairs.mapPartitions(_read_then_sleep).count()

    thread = threading.Thread(target=doomed, daemon=True)
    thread.start()
    _wait_until(lambda: bool(sc.statusTracker().getActiveStageIds())
                and all(sc.statusTracker().getStageInfo(s).numActiveTasks >= 2
                        for s in sc.statusTracker().getActiveStageIds()), "the doomed tasks to run")
    time.sleep(0.5)
    sc.cancelJobGroup("doomed")
    thread.join(timeout=60)
    observed["cancelled_group"] = not thread.is_alive()
    sc.setLocalProperty("spark.jobGroup.id", None)
    sc.setLocalProperty("spark.job.description", None)
    sc.setJobDescription("after the cancel")
    observed["memory_only_sum"] = memory.sum()


def _executor_pids(app_id: str) -> dict[str, int]:
    """Executor id -> pid of local-cluster's CoarseGrainedExecutorBackend JVMs of ``app_id``."""
    pids: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"org.apache.spark.executor.CoarseGrainedExecutorBackend" in args and app_id.encode() in args:
            executor_id = args[args.index(b"--executor-id") + 1].decode()
            pids[executor_id] = int(proc.name)
    return pids


def _cluster_workload(spark: Any, work: Path, observed: dict[str, Any]) -> None:
    sc = spark.sparkContext
    app_id = sc.applicationId
    tracker = sc.statusTracker()

    def registered() -> int:  # executors the driver knows (the driver itself excluded)
        return len(sc._jsc.sc().statusTracker().getExecutorInfos()) - 1

    _wait_until(lambda: len(_executor_pids(app_id)) == 2 and registered() == 2,
                "two executors to register", timeout=120)

    # Also warms a Python worker on each executor: the first task of a worker pays its
    # start-up, which would otherwise inflate the median speculation compares with.
    sc.setJobDescription("a flaky task retried on an executor")
    sc.parallelize(range(1_000), 4).mapPartitions(_flaky).count()

    # Speculation: 4 tasks on 2 slots, one much slower than the median. The driver marks
    # it speculatable, but nothing of that reaches the log: EventLoggingListener does not
    # log SpeculativeTaskSubmitted (4.0.1 bytecode), and the copy never launches, since a
    # copy may not run on a host that already runs the task (TaskSetManager
    # .hasAttemptOnHost) and local-cluster has one host. Kept so the attempt is on record.
    sc.setJobDescription("one slow task: speculation")

    def slow_last(x: int) -> int:
        time.sleep(2.0 if x == 3 else 0.2)
        return x

    sc.parallelize(range(4), 4).map(slow_last).collect()

    # Each map task takes a moment, so both executors get some.
    def slow_pair(x: int) -> tuple[int, int]:
        if x % 1000 == 0:
            time.sleep(0.3)
        return (x % 8, x)

    # A reduce task that fails after reading shuffle blocks from both executors (one remote,
    # one local), then succeeds on retry: a failed task's remote and local shuffle-read metrics.
    sc.setJobDescription("reduce side: a flaky task that read remote shuffle blocks")
    sc.parallelize(range(4_000), 4).map(slow_pair).partitionBy(3).mapPartitions(_flaky).count()

    # Map outputs on both executors (each map task takes a moment, so both get some).
    sc.setJobGroup("fetch-failure", "map outputs on both executors, then one executor freezes")

    shuffled = sc.parallelize(range(4_000), 4).map(slow_pair).partitionBy(4)
    shuffled.count()
    victim = "0"
    pid = _executor_pids(app_id)[victim]
    os.kill(pid, signal.SIGSTOP)  # alive to the OS (TCP accepts), silent to Spark
    outcome: dict[str, Any] = {}

    def reread() -> None:
        sc.setJobGroup("fetch-failure", "reduce side reads a frozen executor's map output")
        try:
            outcome["count"] = shuffled.mapValues(lambda v: v + 1).count()
        except Exception as error:  # noqa: BLE001 - any failure is recorded, then generation fails  # pragma: no cover
            outcome["error"] = repr(error)

    thread = threading.Thread(target=reread, daemon=True)
    thread.start()

    def retried() -> bool:
        for stage_id in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage_id)
            if info is not None and (info.currentAttemptId > 0 or info.numFailedTasks > 0):
                return True
        return False

    try:
        _wait_until(retried, "a fetch failure", timeout=90)
        observed["fetch_failure_seen_live"] = True
    except TimeoutError:
        observed["fetch_failure_seen_live"] = False
    os.kill(pid, signal.SIGKILL)  # works on a stopped process: the executor dies
    observed["killed_executor"] = victim
    thread.join(timeout=150)
    if "count" not in outcome:
        raise RuntimeError(f"the fetch-failure job did not succeed: {outcome}")
    attempts = {}
    for job_id in tracker.getJobIdsForGroup("fetch-failure"):
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds if job else []:
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                attempts[stage_id] = info.currentAttemptId
    observed["stage_attempts"] = {str(k): v for k, v in sorted(attempts.items())}
    observed["fetch_failure_retry"] = any(v > 0 for v in attempts.values())

    sc.setLocalProperty("spark.jobGroup.id", None)
    sc.setJobDescription("after the executor died")
    _wait_until(lambda: registered() >= 1, "an executor to be available", timeout=60)
    sc.parallelize(range(100), 2).map(lambda x: (x % 3, x)).reduceByKey(operator.add).collect()
    observed["executors_at_end"] = sorted(_executor_pids(app_id))


def _streaming_workload(spark: Any, work: Path, observed: dict[str, Any]) -> None:
    from pyspark.sql import functions as F
    from pyspark.streaming import StreamingContext

    sc = spark.sparkContext
    # A DStream app: a queue of RDDs, one per 1 s batch.
    ssc = StreamingContext(sc, 1)
    queue = [sc.parallelize(range(i * 10, i * 10 + 10), 2) for i in range(4)]
    batches: list[int] = []
    stream = ssc.queueStream(queue).map(lambda x: (x % 3, 1)).reduceByKey(operator.add)
    stream.foreachRDD(lambda rdd: batches.append(len(rdd.collect())))
    ssc.start()
    _wait_until(lambda: len(batches) >= 4, "four DStream batches", timeout=60)
    ssc.stop(stopSparkContext=False, stopGraceFully=False)
    observed["dstream_batches"] = len(batches)

    # Structured streaming: rate source, stateful aggregation, memory sink, a few batches.
    # Then a flag file makes one row in 50 stall its task (a Python UDF sleeps on it),
    # so the stop below always lands while tasks run: killed tasks, their stage and job
    # cancelled by the stop (not only when the timing happens to allow it).
    flag = str(work / "stall-streaming-tasks")
    stalled = flag + ".stalled"  # written by the task that stalls: the stop waits for it

    def bucket_of(value: int) -> int:
        if value % 50 == 0 and os.path.exists(flag):
            with open(stalled, "w"):
                pass
            time.sleep(30)
        return value % 5

    query = (
        spark.readStream.format("rate").option("rowsPerSecond", 50).load()
        .groupBy(F.udf(bucket_of, "long")(F.col("value")).alias("bucket")).count()
        .writeStream.format("memory").queryName("rate_counts").outputMode("complete")
        .trigger(processingTime="1 second").start()
    )
    _wait_until(lambda: sum(1 for p in query.recentProgress if p["numInputRows"] > 0) >= 3,
                "three non-empty micro-batches", timeout=90)
    Path(flag).touch()
    _wait_until(lambda: os.path.exists(stalled), "a stalled streaming task", timeout=90)
    time.sleep(0.5)
    query.stop()
    # The stopped query's job is cancelled at once, but its stalled task ends (TaskKilled)
    # only once its Python worker is killed (spark.python.task.killTimeout, 2 s): wait for
    # it, or the app would end first and leave the task running in the log.
    executors = sc._jsc.sc().statusTracker()
    _wait_until(lambda: sum(e.numRunningTasks() for e in executors.getExecutorInfos()) == 0,
                "the stopped query's tasks to end", timeout=60)
    observed["structured_batches"] = len(query.recentProgress)
    observed["rate_buckets"] = spark.sql("SELECT count(*) AS n FROM rate_counts").collect()[0]["n"]


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--app":
        _app_main(RichSpec(**json.loads(sys.argv[2])), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        print(ensure_rich_corpus())
