"""Answering as SHS 4.0.1 or 4.3.0: the one switch (``sparkhist.SPARK_VERSION``) and what it changes.

The 4.3.0 side, the reference, is compared live: the real SHS 4.3.0 (the dev pin's
HistoryServer) and sparkhist answering as 4.3.0 serve the same copy of the shared 4.0.1
conformance logs, and every request that differs between the two releases is asked of both.
The 4.0.1 side is checked against the answers recorded from the real SHS 4.0.1
(``tests/api/test_applications_conformance.py`` and
``tests/state/test_conformance_app_endpoints.py``, which switch to 4.0.1), and here unit by unit,
with both values of the switch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.datastructures import QueryParams
from starlette.testclient import TestClient

import sparkhist
from sparkhist import releases
from sparkhist.api.v1.app_resources import handle
from sparkhist.config import load_settings
from sparkhist.errors import JerseyServerError
from sparkhist.events.listing import AttemptListing, apply_listing_line
from sparkhist.render import views
from sparkhist.render.listing import attempt_fields
from sparkhist.server import build_runtime
from sparkhist.state.app_state import AppState
from sparkhist.state.entities import M
from support.conformance import configured, live_problem
from support.real_shs import RealShs
from support.server import runtime_for

#: Requests whose answers differ between SHS 4.0.1 and 4.3.0 over the 4.0.1 logs (a finished
#: app, ``local-1795972896863``, and a running one, ``local-1795972973157``): the attempt's
#: ``exitCode``, SQL ``queryId``/``errorMessage``/``rootExecutionId``/``modifiedConfigs``/node
#: ``desc``, the ``/sql`` paging, the environment's redaction, ``/version``.
LIVE_PATHS = [
    "/version",
    "/applications/local-1795972896863",
    "/applications/local-1795972896863/sql",
    "/applications/local-1795972896863/sql?details=false&planDescription=false",
    "/applications/local-1795972896863/sql?details=false&planDescription=false&offset=1",
    "/applications/local-1795972896863/sql?details=false&planDescription=false&offset=1&length=0",
    "/applications/local-1795972896863/sql?details=false&planDescription=false&offset=1&length=1",
    "/applications/local-1795972896863/sql/0",
    "/applications/local-1795972896863/environment",
    "/applications/local-1795972973157",
    "/applications/local-1795972973157/sql",
    "/applications",
]
RUNNING = "local-1795972973157"


@pytest.fixture
def answer_as(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def set_release(version: str) -> None:
        monkeypatch.setattr(sparkhist, "SPARK_VERSION", version)
    yield set_release


def test_the_switch_names_the_release(answer_as: Any) -> None:
    answer_as("4.0.1")
    assert releases.answering_as() == (4, 0, 1)
    assert releases.shifted_failed_task_metrics() and not releases.sql_query_fields()
    assert not releases.attempt_exit_code() and not releases.sql_modified_configs() and not releases.sql_node_desc()
    answer_as("4.3.0")
    assert releases.answering_as() == (4, 3, 0)
    assert not releases.shifted_failed_task_metrics() and releases.sql_query_fields()
    assert releases.attempt_exit_code() and releases.sql_modified_configs() and releases.sql_node_desc()
    assert releases.redaction_regex().endswith("|credential")


def test_the_reference_is_the_dev_pin() -> None:
    """The release answered as by default is the SHS the live tests start (pyspark's version)."""
    from support.real_shs import spark_version

    assert sparkhist.SPARK_VERSION == "4.3.0" == spark_version()


@pytest.fixture(scope="module")
def as_430(spark401_logs: Path, real_shs_spark401: RealShs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """sparkhist answering as 4.3.0 over the 4.0.1 conformance logs, beside the real SHS 4.3.0."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sparkhist, "SPARK_VERSION", "4.3.0")
        with runtime_for(configured(spark401_logs), tmp_path_factory.mktemp("as-430") / "store") as (_runtime, client):
            yield client, real_shs_spark401


def test_version_is_the_release_answered_as(as_430: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, shs = as_430
    assert client.get("/api/v1/version").json() == shs.get("version").json() == {"spark": "4.3.0"}
    monkeypatch.setattr(sparkhist, "SPARK_VERSION", "4.0.1")
    assert client.get("/api/v1/version").json() == {"spark": "4.0.1"}


@pytest.mark.spark
@pytest.mark.parametrize("path", LIVE_PATHS)
def test_answers_as_the_real_shs_430(as_430: Any, path: str) -> None:
    client, shs = as_430
    assert live_problem(client, shs, path, running=RUNNING in path) is None


# --------------------------------------------------------------------------- units, both releases
def _ended(**end: Any) -> AttemptListing:
    listing = AttemptListing()
    for event in ({"Event": "SparkListenerApplicationStart", "App Name": "a", "App ID": "app-1", "Timestamp": 1,
                   "User": "u"}, {"Event": "SparkListenerApplicationEnd", "Timestamp": 5, **end}):
        assert apply_listing_line(listing, orjson.dumps(event))
    return listing


def test_the_exit_code_follows_the_release(answer_as: Any) -> None:
    assert _ended(ExitCode=3).exit_code == 3 and _ended().exit_code is None and _ended(ExitCode=None).exit_code is None
    assert _ended(ExitCode=(1 << 32) + 7).exit_code == 7 and _ended(ExitCode=-1).exit_code == -1  # intValue()
    malformed = _ended(ExitCode="1")  # JsonProtocol rejects the event: nothing of it is kept
    assert (malformed.exit_code, malformed.completed, malformed.end_time) == (None, False, -1)
    answer_as("4.0.1")
    assert "exitCode" not in attempt_fields(_ended(ExitCode=0), 9)
    answer_as("4.3.0")
    fields = attempt_fields(_ended(ExitCode=0), 9)
    assert fields["exitCode"] == 0 and list(fields).index("exitCode") == list(fields).index("appSparkVersion") + 1
    assert "exitCode" not in attempt_fields(_ended(), 9)
def _sql_state() -> AppState:
    state = AppState()
    plan = {"nodeName": "WholeStageCodegen (1)", "simpleString": "WholeStageCodegen (1)", "metrics": [], "children": [
        {"nodeName": "Range", "simpleString": "Range (0, 10, step=1, splits=2)", "metrics": [], "children": []}]}
    state.apply({"Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart", "executionId": 3,
                 "rootExecutionId": 1, "description": "d", "details": "", "physicalPlanDescription": "p",
                 "sparkPlanInfo": plan, "time": 10, "modifiedConfigs": {"spark.sql.shuffle.partitions": "4"},
                 "queryId": "01A24EDD-CBF1-705E-A253-12B8301A43E5"})
    state.apply({"Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionEnd", "executionId": 3,
                 "time": 20, "errorMessage": "boom"})
    # an execution known only from its job (no start event): Spark's unset fields
    state.apply({"Event": "SparkListenerJobStart", "Job ID": 0, "Submission Time": 5, "Stage Infos": [],
                 "Stage IDs": [], "Properties": {"spark.sql.execution.id": "7"}})
    return state


def test_sql_fields_follow_the_release(answer_as: Any) -> None:
    state = _sql_state()
    answer_as("4.0.1")
    old = views.execution(state.executions[3], True, True, 0)
    assert list(old)[-2:] == ["nodes", "edges"] and all("desc" not in n for n in old["nodes"])
    answer_as("4.3.0")
    new = views.execution(state.executions[3], True, True, 0)
    assert list(new)[-6:] == ["nodes", "edges", "queryId", "errorMessage", "rootExecutionId", "modifiedConfigs"]
    assert new["queryId"] == "01a24edd-cbf1-705e-a253-12b8301a43e5"  # UUID.toString
    assert (new["errorMessage"], new["rootExecutionId"]) == ("boom", 1)
    assert new["modifiedConfigs"] == {"spark.sql.shuffle.partitions": "4"}
    assert [(n["nodeName"], n["desc"]) for n in new["nodes"]] == [
        ("Range", "Range (0, 10, step=1, splits=2)"), ("WholeStageCodegen (1)", "WholeStageCodegen (1)")]
    assert list(new["nodes"][0]) == ["nodeId", "nodeName", "wholeStageCodegenId", "metrics", "desc"]
    jobless = views.execution(state.executions[7], True, True, 0)
    assert jobless["rootExecutionId"] == 0  # no start event: the unset Long
    assert not {"queryId", "errorMessage", "modifiedConfigs"} & set(jobless)


def test_a_start_without_root_is_its_own_root(answer_as: Any) -> None:
    answer_as("4.3.0")
    state = AppState()
    state.apply({"Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart", "executionId": 4,
                 "sparkPlanInfo": {"nodeName": "X", "metrics": [], "children": []}, "time": 1})
    answer = views.execution(state.executions[4], True, True, 2)
    # a log written before modifiedConfigs: the case class's default, an empty map
    assert answer["rootExecutionId"] == 4 and answer["modifiedConfigs"] == {} and "desc" not in answer["nodes"][0]


def _failed_task_state() -> AppState:
    state = AppState()
    state.apply({"Event": "SparkListenerStageSubmitted", "Stage Info": {"Stage ID": 1, "Stage Attempt ID": 0,
                 "Stage Name": "s", "Number of Tasks": 1, "RDD Info": [], "Parent IDs": [], "Details": ""},
                 "Properties": {}})
    info = {"Task ID": 9, "Index": 0, "Attempt": 0, "Partition ID": 0, "Launch Time": 100, "Executor ID": "driver",
            "Host": "h", "Locality": "PROCESS_LOCAL", "Speculative": False, "Getting Result Time": 0,
            "Finish Time": 0, "Failed": False, "Killed": False, "Accumulables": []}
    state.apply({"Event": "SparkListenerTaskStart", "Stage ID": 1, "Stage Attempt ID": 0, "Task Info": info})
    read = {"Remote Blocks Fetched": 1, "Local Blocks Fetched": 2, "Fetch Wait Time": 3, "Remote Bytes Read": 4,
            "Remote Bytes Read To Disk": 5, "Local Bytes Read": 6, "Total Records Read": 7,
            "Remote Requests Duration": 8}
    state.apply({"Event": "SparkListenerTaskEnd", "Stage ID": 1, "Stage Attempt ID": 0, "Task Type": "ResultTask",
                 "Task End Reason": {"Reason": "ExceptionFailure", "Class Name": "E", "Description": "d",
                                     "Stack Trace": [], "Accumulator Updates": []},
                 "Task Info": {**info, "Finish Time": 200, "Failed": True},
                 "Task Metrics": {"Executor Run Time": 50, "Shuffle Read Metrics": read}})
    return state


def test_failed_tasks_shuffle_read_metrics_follow_the_release(answer_as: Any) -> None:
    """SPARK-54505: 4.0.1 shows a failed task's shuffle reads in other fields; 4.3.0 in theirs."""
    state = _failed_task_state()
    task = state.tasks[9]
    assert task.status == "FAILED" and task.metrics is not None and task.metrics[M["sr.localBytesRead"]] == 6
    answer_as("4.0.1")
    shifted = views.task(task, state)["taskMetrics"]["shuffleReadMetrics"]
    assert shifted["remoteReqsDuration"] == 6 and shifted["recordsRead"] == 8  # makeNegative's argument order
    answer_as("4.3.0")
    read = views.task(task, state)["taskMetrics"]["shuffleReadMetrics"]
    assert [read[k] for k in ("remoteBlocksFetched", "localBlocksFetched", "fetchWaitTime", "remoteBytesRead",
                              "remoteBytesReadToDisk", "localBytesRead", "recordsRead", "remoteReqsDuration")] == [
        1, 2, 3, 4, 5, 6, 7, 8]


def test_environment_redaction_follows_the_release(answer_as: Any) -> None:
    state = AppState()
    state.apply({"Event": "SparkListenerEnvironmentUpdate", "JVM Information": {}, "Spark Properties": {},
                 "Hadoop Properties": {"fs.s3a.aws.credentials.provider": "p", "fs.s3a.secret.key": "k", "a": "b"},
                 "System Properties": {}, "Classpath Entries": {}})
    answer_as("4.0.1")
    assert views.environment(state)["hadoopProperties"] == [
        ["a", "b"], ["fs.s3a.aws.credentials.provider", "p"], ["fs.s3a.secret.key", views.REDACTED]]
    answer_as("4.3.0")
    assert views.environment(state)["hadoopProperties"] == [
        ["a", "b"], ["fs.s3a.aws.credentials.provider", views.REDACTED], ["fs.s3a.secret.key", views.REDACTED]]


def test_sql_list_paging_follows_the_release(answer_as: Any) -> None:
    """4.0.1 pages 20 by default and fails a length <= 0; 4.2+ answers all unless length > 0."""
    state = AppState()
    for execution_id in range(25):
        state.apply({"Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart",
                     "executionId": execution_id, "sparkPlanInfo": {"nodeName": "X", "metrics": [], "children": []},
                     "time": 1})

    def ids(query: str) -> list[int]:
        answer = handle(state, ["sql"], QueryParams(query + "&details=false"), app_id="app")
        return [x["id"] for x in answer]

    answer_as("4.0.1")
    assert ids("") == list(range(20)) and ids("offset=3") == list(range(3, 23)) and ids("offset=1&length=2") == [1, 2]
    with pytest.raises(JerseyServerError):
        ids("offset=1&length=0")
    answer_as("4.3.0")
    assert ids("") == ids("offset=3") == ids("offset=1&length=0") == ids("length=-5") == list(range(25))
    assert ids("offset=1&length=2") == [1, 2] and ids("offset=-1&length=2") == [0, 1] and ids("offset=30&length=2") == []


# --------------------------------------------------------------------------- a store written as 4.0.1
@contextmanager
def _served(log_dir: str, store_dir: Path, release: str) -> Iterator[Any]:
    """A server process's start over ``store_dir`` answering as ``release``: open the store, scan, serve.
    Indexed in this process, so the release reaches parsing (worker processes import the source tree's)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sparkhist, "SPARK_VERSION", release)
        runtime = build_runtime(load_settings({"log_dir": log_dir, "store_dir": str(store_dir), "index_workers": 1},
                                              environ={}))
        try:
            assert runtime.loop.lock.try_acquire()
            runtime.scanner.scan_once()
            with TestClient(runtime.app) as client:
                yield client
        finally:
            runtime.close()


#: Per log set: requests whose 4.3.0 answer differs from 4.0.1's in what the store keeps: the
#: catalog's pre-rendered listing rows (``exitCode``) and, for Apache's push-based shuffle log,
#: the parsed state (its 3.2-era push read metrics are read by 4.0.1 only).
RESTART_PATHS = {
    "spark401": ["/applications", "/applications?status=completed", "/applications/local-1795972896863",
                 "/applications/local-1795972918271"],
    "apache": ["/applications/app-20200706201101-0003/stages",
               "/applications/app-20200706201101-0003/stages?details=true"],
}


@pytest.mark.spark
@pytest.mark.parametrize("corpus", sorted(RESTART_PATHS))
def test_a_store_written_as_401_answers_as_430_after_a_restart(corpus: str, request: pytest.FixtureRequest,
                                                                 tmp_path: Path) -> None:
    """Flipping the release on an existing store: the first start after the flip re-renders the
    listing rows and rebuilds what was parsed differently, so every answer is 4.3.0's (the live SHS)."""
    log_dir = configured(request.getfixturevalue(f"{corpus}_logs"))
    shs: RealShs = request.getfixturevalue(f"real_shs_{corpus}")
    store = tmp_path / "store"
    with _served(log_dir, store, "4.0.1") as client:
        before = {path: live_problem(client, shs, path, running=False) for path in RESTART_PATHS[corpus]}
        listing = client.get("/api/v1/applications").json()
    assert all(problem is not None for problem in before.values()), before  # 4.0.1's answers differ from 4.3.0's
    assert not any("exitCode" in attempt for app in listing for attempt in app["attempts"])
    with _served(log_dir, store, "4.3.0") as client:
        after = {path: live_problem(client, shs, path, running=False) for path in RESTART_PATHS[corpus]}
        listing = client.get("/api/v1/applications").json()
    assert after == dict.fromkeys(RESTART_PATHS[corpus])
    if corpus == "spark401":
        assert any("exitCode" in attempt for app in listing for attempt in app["attempts"])
