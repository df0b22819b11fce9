"""Real Spark (pyspark 4.0.1, Hadoop client 3.4.1) writes its event log into the HA HDFS;
HdfsSource reads the log while the application runs, then the finished one.

Spark 4 writes rolling logs by default (``eventlog_v2_<app>/events_1_<app>`` plus an
``appstatus_<app>.inprogress`` marker): the last events file is open for writing and
hflushed, so its NameNode length lags and hdfs-native sees none of its bytes.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from sparkhist.reader.layout import rolling_log
from sparkhist.reader.stream import read_lines

from .conftest import HdfsEnv, Timings
from .test_hdfs_source import fresh_dir, hdfs_source, read_all

pytestmark = [pytest.mark.slow, pytest.mark.spark]

APP = Path(__file__).resolve().parent / "spark_app.py"


def _events(src, log) -> list[str]:
    return [orjson.loads(line)["Event"] for line, _ in read_lines(src, log)]


def test_spark_rolling_log_on_hdfs_while_running(env: HdfsEnv, timings: Timings, tmp_path: Path) -> None:
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed (pip install -e '.[dev]')")
    base = fresh_dir(env, "spark-events")
    environ = {**os.environ, "HADOOP_CONF_DIR": env.conf_dir, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    stderr = open(tmp_path / "spark.log", "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(APP), f"hdfs://{env.ns}{base}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, env=environ, cwd=tmp_path,
    )
    stderr.close()  # the child keeps its own copy
    lines: queue.Queue[str] = queue.Queue()

    def read_stdout() -> None:
        with proc.stdout:  # type: ignore[union-attr]  # the reader closes the pipe at its end
            for x in proc.stdout:  # type: ignore[union-attr]
                lines.put(x.strip())

    reader = threading.Thread(target=read_stdout, name="spark-app-stdout", daemon=True)
    reader.start()
    try:
        try:
            running = lines.get(timeout=240)
        except queue.Empty:
            pytest.fail(f"Spark did not start; see {tmp_path / 'spark.log'}")
        assert running.startswith("RUNNING "), running
        app_id = running.split()[1]
        started = time.monotonic() - t0

        with hdfs_source(env, base) as src:
            (directory,) = src.list(src.root_path)
            assert directory.name == f"eventlog_v2_{app_id}" and directory.is_dir
            running_log = rolling_log(directory, src.list(directory.path))
            assert running_log.in_progress
            last = running_log.files[-1]
            nn_length = env.direct().get_file_info(src._path(last.path)).length
            hdfs_native_sees = len(env.direct().read(src._path(last.path)))
            assert last.size >= nn_length and last.size > hdfs_native_sees
            events = _events(src, running_log)
            with src.open(last.path) as stream:
                whole = read_all(stream)
            with src.open(last.path, nn_length + 1) as stream:  # resuming past the NameNode's length
                assert read_all(stream) == whole[nn_length + 1 :]
            assert events[0] == "SparkListenerLogStart"
            assert "SparkListenerApplicationStart" in events and "SparkListenerJobEnd" in events
            assert "SparkListenerApplicationEnd" not in events

            proc.stdin.write("stop\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            assert lines.get(timeout=120) == "DONE"
            assert proc.wait(60) == 0
            (directory,) = src.list(src.root_path)
            done_log = rolling_log(directory, src.list(directory.path))
            assert not done_log.in_progress
            final = _events(src, done_log)
            assert final[-1] == "SparkListenerApplicationEnd"
            assert final[: len(events)] == events
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        try:
            proc.stdin.close()  # type: ignore[union-attr]
        except OSError:  # BrokenPipeError flushing: closed all the same
            pass
        reader.join(30)  # it ends at the pipe's EOF, once Spark is gone
    timings.record(
        "real Spark -> HDFS",
        spark_start=started,
        nn_length=nn_length,
        hdfs_native_length=hdfs_native_sees,
        visible_length=last.size,
        events_while_running=len(events),
    )
