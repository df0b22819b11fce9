"""``SparkListenerExecutorMetricsUpdate`` and ``SparkListenerStageExecutorMetrics``, live against the real SHS.

Real Spark writes the log: local mode with ``spark.eventLog.logStageExecutorMetrics=true``
logs the driver's heartbeats (``SparkListenerExecutorMetricsUpdate``, with the running
tasks' accumulator updates and per-stage executor peaks) and a
``SparkListenerStageExecutorMetrics`` per stage and executor. Tasks sleep across several
heartbeats; an application killed mid-stage keeps tasks that never end, whose metrics
are those of their last heartbeat. The real SHS of the installed pyspark and sparkhist
serve the same directory (given as the same ``file:`` string); executors, stages (with
their executor summaries and peaks), tasks and SQL answers must be equal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sparkhist.state.app_state import AppState
from support.differential import PER_STAGE, Comparison, as_configured
from support.real_shs import RealShs, java_executable, run_real_shs
from support.server import runtime_for

pytestmark = [pytest.mark.spark, pytest.mark.slow]

_APP = textwrap.dedent("""
    import sys, time
    from pyspark.sql import SparkSession
    log_dir, mode = sys.argv[1], sys.argv[2]
    spark = (SparkSession.builder.master("local[2]").appName("heartbeats-" + mode)
             .config("spark.eventLog.enabled", "true").config("spark.eventLog.dir", "file:" + log_dir)
             .config("spark.eventLog.logStageExecutorMetrics", "true")
             .config("spark.eventLog.rolling.enabled", "false").config("spark.eventLog.compress", "false")
             .config("spark.eventLog.buffer.kb", "1k")
             .config("spark.executor.heartbeatInterval", "300ms")
             .config("spark.executor.metrics.pollingInterval", "100ms")
             .config("spark.sql.adaptive.enabled", "false")
             .config("spark.ui.enabled", "false").getOrCreate())
    sc = spark.sparkContext
    def slow(seconds):
        def run(it):
            n = sum(1 for _ in it)  # the shuffle read is done: heartbeats carry its metrics meanwhile
            time.sleep(seconds)
            return [n]
        return run
    pairs = sc.parallelize(range(20000), 4).map(lambda x: (x % 13, x))
    pairs.reduceByKey(lambda a, b: a + b, 3).mapPartitions(slow(1.5)).collect()
    # SQL: equal row counts per task, so the "max" metrics tie; each task sleeps on its last
    # row, so heartbeats carry its SQL metrics before its end
    spark.range(0, 40000, 1, 4).selectExpr("id % 10 AS k", "reflect('java.lang.Thread', 'sleep', "
                                         "CAST(IF(id % 10000 = 9999, 1200, 0) AS BIGINT)) AS s") \\
        .groupBy("k").count().collect()
    if mode == "killed":
        print("RUNNING", flush=True)
        pairs.reduceByKey(lambda a, b: a + b, 2).mapPartitions(slow(60)).collect()  # killed meanwhile
    spark.stop()
""")


def _write_logs(log_dir: Path) -> None:
    script = log_dir.parent / "heartbeats_app.py"
    script.write_text(_APP)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    subprocess.run([sys.executable, str(script), str(log_dir), "finished"], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    with subprocess.Popen([sys.executable, str(script), str(log_dir), "killed"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, start_new_session=True) as killed:
        try:
            assert killed.stdout is not None
            assert killed.stdout.readline().strip() == b"RUNNING"
            time.sleep(8)  # the last job's tasks read their shuffle data, then sleep through heartbeats
        finally:
            os.killpg(killed.pid, signal.SIGKILL)
            if killed.stdout is not None:
                killed.stdout.close()
            killed.wait()


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[dev]')")
    try:
        java_executable()
    except RuntimeError as missing:
        pytest.skip(f"{missing} (needs Java 17)")
    logs = tmp_path_factory.mktemp("heartbeats") / "logs"
    logs.mkdir()
    _write_logs(logs)
    return logs


@pytest.fixture(scope="module")
def both(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, RealShs]]:
    with run_real_shs(log_dir) as shs:
        shs.wait_until_listed(2)
        with runtime_for(as_configured(log_dir), tmp_path_factory.mktemp("heartbeats-store")) as (_runtime, client):
            yield client, shs


def _events(path: Path) -> list[dict[str, Any]]:
    """A log's events; a killed driver's last line may be cut short (left out, as the SHS does)."""
    out: list[dict[str, Any]] = []
    with path.open("rb") as f:
        for line in f:
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                pass
    return out


def test_the_logs_hold_heartbeats_with_task_updates_and_peaks(log_dir: Path) -> None:
    """The premise: what the comparison exercises is in the logs."""
    events = [e for path in sorted(log_dir.iterdir()) for e in _events(path)]
    updates = [e for e in events if e["Event"] == "SparkListenerExecutorMetricsUpdate"]
    assert any(u["Accumulator Updates"] for e in updates for u in e["Metrics Updated"])
    assert any(e.get("Executor Metrics Updated") for e in updates)
    assert any(e["Event"] == "SparkListenerStageExecutorMetrics" for e in events)


def test_heartbeat_updates_change_the_state(log_dir: Path) -> None:
    """Without the heartbeats, the killed app's running tasks would have no metrics, its last
    stage no peaks, and an SQL metric's tied maximum would name another task."""
    with_updates, without = AppState(), AppState()
    for path in sorted(log_dir.iterdir()):
        for event in _events(path):
            with_updates.apply(event)
            if event["Event"] != "SparkListenerExecutorMetricsUpdate":
                without.apply(event)
        with_updates.finish()
        without.finish()
        if "inprogress" in path.name:
            running = [t for t in with_updates.tasks.values() if not t.finished]
            assert running and all(t.metrics is not None for t in running)
            assert all(without.tasks[t.task_id].metrics is None for t in running)
        with_updates, without = AppState(), AppState()


def test_answers_equal_the_real_shs(both: tuple[Any, RealShs]) -> None:
    client, shs = both
    paths: list[tuple[str, bool]] = []
    for app in shs.get("/applications").json():
        base = f"/applications/{app['id']}"
        running = not app["attempts"][0]["completed"]
        paths += [(base + p, running) for p in ("", "/executors", "/allexecutors", "/stages", "/stages?details=true",
                                                 "/stages?withSummaries=true", "/sql", "/sql?details=true")]
        for stage in {s["stageId"] for s in shs.get(base + "/stages").json()}:
            paths += [(f"{base}/stages/{stage}{p}", running) for p in PER_STAGE]
    comparison = Comparison(lambda p: p, {}).run(paths, client, shs)
    comparison.report()
    assert comparison.mismatches == {}
    assert sum(comparison.results.values()) == len(paths) > 40
