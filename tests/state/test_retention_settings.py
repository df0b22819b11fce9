"""Retention limits are the server's, as the real SHS 4.3.0's (issue 13).

``FsHistoryProvider.rebuildAppStore`` replays a log with the history server's own
``SparkConf``: an application's ``spark.ui.retained*`` / ``spark.sql.ui.retainedExecutions``
in its environment change nothing, the server's (its properties file; ``SPARKHIST_*`` for
sparkhist) drop the jobs, stages, tasks, dead executors and SQL executions that ended
first. Each case runs the real SHS 4.3.0 and ``sparkhist serve`` over the same copies of
conformance logs and compares their answers, path by path:

* the logs' environments set small limits (edited copies, and an application run by pyspark
  with them), both servers run with Spark's defaults;
* both servers are given small limits (the SHS its properties, sparkhist the same file),
  sparkhist's store having been indexed with the defaults first: the new limits re-read
  the logs rather than mixing states read with other limits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sparkhist import releases
from sparkhist.config import RetentionLimits, load_settings, retention_limits, use_retention_limits
from support.corpus import spark_home
from support.differential import as_configured, compare
from support.real_shs import RealShs, run_real_shs
from support.server import runtime_for
from support.serving import sparkhist_serve

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"
#: Logs with several jobs, stages and SQL executions, one with executors removed, one with stages of many
#: tasks run in waves (the SHS drops tasks of a stage only while later ones start after earlier ones ended).
LOGS = (CONFORMANCE / "spark-4.0.1" / "eventlogs" / "local-1795972896863",
        CONFORMANCE / "apache-spark" / "spark-events" / "app-20200706201101-0003",
        CONFORMANCE / "apache-spark" / "spark-events" / "application_1628109047826_1317105",
        CONFORMANCE / "apache-spark" / "spark-events" / "local-1642039451826",
        CONFORMANCE / "apache-spark" / "spark-events" / "local-1430917381534")
SMALL = {"spark.ui.retainedJobs": "2", "spark.ui.retainedStages": "3", "spark.ui.retainedTasks": "5",
         "spark.ui.retainedDeadExecutors": "1", "spark.sql.ui.retainedExecutions": "1",
         "spark.ui.dagGraph.retainedRootRDDs": "1"}


#: A pyspark 4.3.0 application logged with SMALL in its own conf: jobs with shuffles (skipped
#: stages) of 8 tasks on 2 cores, and SQL executions.
_APP = """
import json, sys
from pyspark.sql import SparkSession
log_dir, work, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
builder = SparkSession.builder.master("local[2]").appName("small-retention")
conf = {"spark.ui.enabled": "false", "spark.eventLog.enabled": "true", "spark.eventLog.dir": "file:" + log_dir,
        "spark.local.dir": work + "/local", "spark.sql.warehouse.dir": work + "/warehouse",
        "spark.eventLog.rolling.enabled": "false", "spark.sql.shuffle.partitions": "4", "spark.driver.memory": "512m",
        **extra}
for key, value in conf.items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
pairs = spark.sparkContext.parallelize(range(10000), 8).map(lambda x: (x % 10, 1)).reduceByKey(lambda a, b: a + b)
pairs.cache().count()
for _ in range(4):
    pairs.map(lambda kv: kv).count()
for n in range(3):
    spark.range(1000 * (n + 1)).selectExpr("id % 5 as k").groupBy("k").count().collect()
sc = spark.sparkContext
sc.parallelize(range(100), 2).union(sc.parallelize(range(100), 2)).union(sc.parallelize(range(9), 1)).count()
spark.stop()
"""


@pytest.fixture(scope="module")
def generated_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The event log of :data:`_APP`, run once by pyspark."""
    work = tmp_path_factory.mktemp("small-retention-app")
    (work / "logs").mkdir()
    env = {**_environ(), "SPARK_HOME": str(spark_home()), "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run([sys.executable, "-c", _APP, str(work / "logs"), str(work), json.dumps(SMALL)], env=env,
                          capture_output=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:].decode(errors="replace")
    (log,) = (work / "logs").iterdir()
    return log


@pytest.fixture(autouse=True)
def _default_limits() -> Iterator[None]:
    """The limits of this process (and the environment its children inherit) back to the defaults."""
    yield
    use_retention_limits(load_settings(environ={}))


def _with_environment(source: Path, dest: Path, extra: dict[str, str]) -> None:
    """A copy of ``source`` whose ``SparkListenerEnvironmentUpdate`` also sets ``extra``."""
    edited = 0
    with source.open("rb") as src, dest.open("wb") as out:
        for line in src:
            if b'"SparkListenerEnvironmentUpdate"' in line:
                event = json.loads(line)
                event["Spark Properties"] = {**dict(event["Spark Properties"]), **extra}
                line = json.dumps(event).encode() + b"\n"
                edited += 1
            out.write(line)
    assert edited == 1, source


def _logs(tmp: Path, extra: dict[str, str], generated: Path) -> Path:
    logs = tmp / "logs"
    logs.mkdir()
    shutil.copy2(generated, logs / generated.name)
    for source in LOGS:
        if extra:
            _with_environment(source, logs / source.name, extra)
        else:
            shutil.copy2(source, logs / source.name)
    return logs


def _paths(shs: RealShs) -> list[str]:
    """Every path compared: per application its lists, and every stage attempt's tasks."""
    paths = []
    for app in shs.get("applications").json():
        api = f"applications/{quote(app['id'])}"
        paths += [f"{api}/jobs", f"{api}/stages", f"{api}/allexecutors", f"{api}/executors", f"{api}/sql",
                  f"{api}/stages?details=true"]
        for stage in shs.get(f"{api}/stages").json():
            base = f"{api}/stages/{stage['stageId']}/{stage['attemptId']}"
            paths += [base, f"{base}/taskList?length=1000", f"{base}/taskSummary"]
        for job in shs.get(f"{api}/jobs").json():
            paths.append(f"{api}/jobs/{job['jobId']}")
    return paths


def _counts(get: Any, paths: list[str]) -> dict[str, int]:
    """How many items each list answer holds (what retention decides)."""
    counts = {}
    for path in paths:
        answer = get(path)
        if answer.status_code == 200 and isinstance(body := answer.json(), list):
            counts[path] = len(body)
    return counts


def _compare(shs: RealShs, url: str) -> dict[str, int]:
    """Every path answered alike; the lists' lengths."""
    paths = _paths(shs)
    assert len(paths) > 20
    problems = []
    with httpx.Client(timeout=60) as client:
        for path in paths:
            ours = client.get(f"{url}/api/v1/{path}")
            problem = compare(ours, shs.get(path), running=False)
            if problem is not None:
                problems.append(f"{path}: {problem}")
    assert not problems, "\n".join(problems[:20])
    return _counts(shs.get, paths)


def _serve_args(logs: Path, store: Path) -> list[str]:
    return ["--log-dir", as_configured(logs), "--store", str(store), "--host", "127.0.0.1", "--scan-interval", "1",
            "--log-level", "warning"]


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SPARKHIST_")}


def test_the_apps_own_limits_change_nothing(tmp_path: Path, generated_log: Path) -> None:
    """Logs whose environment sets small limits answer as the SHS with default settings: nothing dropped."""
    logs = _logs(tmp_path, SMALL, generated_log)
    with run_real_shs(logs) as shs, sparkhist_serve(tmp_path, _serve_args(logs, tmp_path / "store"), _environ()) as url:
        listed = len(httpx.get(f"{url}/api/v1/applications", timeout=30).json())
        assert listed == len(LOGS) + 1
        shs.wait_until_listed(listed)
        counts = _compare(shs, url)
    jobs = {p: n for p, n in counts.items() if p.endswith("/jobs")}
    stages = {p: n for p, n in counts.items() if p.endswith("/stages")}
    assert max(jobs.values()) > 2 and max(stages.values()) > 3, counts  # more than the apps' own limits


def test_the_servers_limits_and_a_store_read_with_other_limits(tmp_path: Path, generated_log: Path) -> None:
    """The SHS given small limits, sparkhist the same properties file over a store indexed with
    the defaults: both drop the same entities (the store is read again with the new limits)."""
    logs = _logs(tmp_path, {}, generated_log)
    store = tmp_path / "store"
    with runtime_for(as_configured(logs), store) as (_, client):  # indexed with Spark's defaults
        full = {app["id"]: len(client.get(f"/api/v1/applications/{quote(app['id'])}/stages").json())
                for app in client.get("/api/v1/applications").json()}
    assert retention_limits() == RetentionLimits()
    assert max(full.values()) > 3
    props = tmp_path / "spark-defaults.conf"
    props.write_text("".join(f"{key} {value}\n" for key, value in SMALL.items()))
    with run_real_shs(logs, extra_conf=SMALL) as shs, \
            sparkhist_serve(tmp_path, [*_serve_args(logs, store), "--properties-file", str(props)], _environ()) as url:
        listed = len(httpx.get(f"{url}/api/v1/applications", timeout=30).json())
        assert listed == len(LOGS) + 1
        shs.wait_until_listed(listed)
        counts = _compare(shs, url)
        _same_dags(shs, logs / generated_log.name, props)
        kept_tasks = [(counts[f"applications/{quote(app['id'])}/stages/{st['stageId']}/{st['attemptId']}/taskList?length=1000"],
                       st["numCompleteTasks"] + st["numFailedTasks"] + st["numKilledTasks"])
                      for app in shs.get("applications").json()
                      for st in shs.get(f"applications/{quote(app['id'])}/stages").json()]
    assert any(kept < ended for kept, ended in kept_tasks), kept_tasks  # tasks dropped too
    for app_id, stages in full.items():
        assert counts[f"applications/{quote(app_id)}/stages"] <= max(3, stages), app_id
    assert any(counts[f"applications/{quote(a)}/stages"] < n for a, n in full.items()), (full, counts)
    assert "rebuilding it from the logs" in (tmp_path / "serve.log").read_text()


def _same_dags(shs: RealShs, log: Path, props: Path) -> None:
    """Each job's DAG (``spark.ui.dagGraph.retainedRootRDDs``) as the SHS's job page draws it."""
    from sparkhist.state import rdd_graph
    from state.test_rdd_graph import _state, assert_same, ours, page_metadata

    use_retention_limits(load_settings(properties_file=str(props), environ={}))
    state = _state(log)
    app_id = state.app_id or ""
    compared = 0
    for job in shs.get(f"applications/{quote(app_id)}/jobs").json():
        html = shs.client.get(f"{shs.base_url}/history/{quote(app_id)}/jobs/job/", params={"id": job["jobId"]}).text
        graphs, theirs = rdd_graph.job_graphs(state, job["jobId"]), page_metadata(html)
        if not theirs.found:  # a stage of the job was dropped with its graph: the SHS draws none
            assert graphs is None and "No DAG visualization information" in html, job
            continue
        assert graphs is not None, job
        compared += assert_same(theirs.stages, [ours(g) for g in graphs], f"job {job['jobId']}")
    assert compared > 0
    # The limit drew less than all: the last job's stage has three root RDDs, one drawn.
    last = max(state.jobs)
    limited = sum(len(c.nodes) for g in rdd_graph.job_graphs(state, last) or [] for c in g.root.walk())
    use_retention_limits(load_settings(environ={}))
    full = sum(len(c.nodes) for g in rdd_graph.job_graphs(state, last) or [] for c in g.root.walk())
    assert limited < full, (limited, full)


def test_limits_are_part_of_the_parse_variant(tmp_path: Path) -> None:
    """Spark's defaults leave the variant as it was (existing stores stay valid); others name each
    changed limit, in this process and in the environment its indexing processes inherit."""
    default = releases.parse_variant()
    assert "retained" not in default
    props = tmp_path / "spark-defaults.conf"
    props.write_text("spark.ui.retainedJobs=2\nspark.sql.ui.retainedExecutions 1\n")
    limits = use_retention_limits(load_settings(properties_file=str(props), environ={}))
    assert limits == RetentionLimits(jobs=2, executions=1)
    assert releases.parse_variant() == default + "+retained(jobs=2,executions=1)"
    assert (os.environ["SPARKHIST_UI_RETAINED_JOBS"], os.environ["SPARKHIST_SQL_UI_RETAINED_EXECUTIONS"]) == ("2", "1")
    assert "SPARKHIST_UI_RETAINED_STAGES" not in os.environ
    env_limits = load_settings(environ={"SPARKHIST_UI_RETAINED_TASKS": "7"}, properties_file=str(props))
    assert RetentionLimits.of(env_limits) == RetentionLimits(jobs=2, tasks=7, executions=1)
    use_retention_limits(load_settings(environ={}))
    assert releases.parse_variant() == default and "SPARKHIST_UI_RETAINED_JOBS" not in os.environ
