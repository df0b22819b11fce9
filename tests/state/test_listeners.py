"""The listeners behind ``AppState``: one dispatch dict, the order events visit them, and
the pickled form they share."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

from sparkhist.state import app_listener, app_state, job_listener, rdd_graph, sql_listener, storage_listener
from sparkhist.state.app_state import LISTENERS, AppState

#: The pickled form (store/snapshots.py FORMAT): changing it means bumping FORMAT.
PICKLED_FIELDS = [
    "app_id", "app_name", "attempt_id", "start_time", "end_time", "spark_user", "spark_version", "completed",
    "exit_code", "runtime", "env", "has_env", "resource_profiles", "default_cpus_per_task",
    "retained_jobs", "retained_stages", "retained_tasks", "retained_dead_executors", "retained_executions",
    "jobs", "stages", "tasks", "executors", "executor_order", "rdds", "processes", "executions", "stage_metrics",
    "rdd_graphs", "streaming", "last_update_time", "live_jobs", "dead_in_live_stages", "parse_variant",
]


def test_the_pickled_form_is_the_fields() -> None:
    assert [f.name for f in dataclasses.fields(AppState)] == PICKLED_FIELDS
    state = AppState()
    assert list(vars(state)) == PICKLED_FIELDS  # the listeners keep no state of their own
    assert (type(state).__module__, type(state).__qualname__) == ("sparkhist.state.app_state", "AppState")
    assert vars(pickle.loads(pickle.dumps(state))) == vars(state)


def test_one_dispatch_dict_covers_every_listener() -> None:
    tables = (rdd_graph.HANDLERS, sql_listener.HANDLERS, storage_listener.HANDLERS, app_listener.HANDLERS,
              job_listener.HANDLERS)
    assert LISTENERS == tables
    names = {name for table in tables for name in table}
    assert set(app_state._HANDLERS) == names
    assert all(name.startswith("SparkListener") for name in names)
    for name, handler in app_state._HANDLERS.items():
        owners = [table[name] for table in tables if name in table]
        if len(owners) == 1:  # handled by one listener: its handler itself, no wrapper
            assert handler is owners[0]


def _calls(monkeypatch: Any, name: str) -> list[str]:
    """Which listeners see ``name``, in order (their tables patched to record, then re-merged)."""
    seen: list[str] = []
    for label, module in (("rdd_graph", rdd_graph), ("sql", sql_listener), ("storage", storage_listener),
                          ("app", app_listener), ("job", job_listener)):
        if name in module.HANDLERS:
            def record(state: AppState, event: dict[str, Any], label: str = label) -> None:
                seen.append(label)
            monkeypatch.setitem(module.HANDLERS, name, record)
    monkeypatch.setattr(app_state, "_HANDLERS", app_state._merge(LISTENERS))
    AppState().apply({"Event": name})
    return seen


def test_sql_and_storage_see_an_event_before_the_core_listener(monkeypatch: Any) -> None:
    assert _calls(monkeypatch, "SparkListenerJobEnd") == ["sql", "job"]
    assert _calls(monkeypatch, "SparkListenerExecutorRemoved") == ["storage", "app"]
    assert _calls(monkeypatch, "SparkListenerStageSubmitted") == ["sql", "storage", "job"]
    assert _calls(monkeypatch, "SparkListenerTaskEnd") == ["sql", "job"]
    # The RDD graphs first: a JobStart whose RDD infos cannot be read changes nothing.
    assert _calls(monkeypatch, "SparkListenerJobStart") == ["rdd_graph", "sql", "job"]


def _sql_job(state: AppState, job_id: int) -> None:
    state.apply({"Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart", "executionId": 0,
                 "time": 1, "sparkPlanInfo": {"nodeName": "X", "simpleString": "X", "children": [], "metrics": []}})
    state.apply({"Event": "SparkListenerJobStart", "Job ID": job_id, "Submission Time": 2, "Stage Infos": [],
                 "Stage IDs": [], "Properties": {"spark.sql.execution.id": "0"}})


def test_a_job_that_ends_twice_ends_once_for_its_execution() -> None:
    state = AppState()
    _sql_job(state, 7)
    end = {"Event": "org.apache.spark.scheduler.SparkListenerJobEnd", "Job ID": 7, "Completion Time": 3,
           "Job Result": {"Result": "JobSucceeded"}}
    state.apply(end)
    state.apply(end)
    execution = state.executions[0]
    assert execution.jobs == {7: "SUCCEEDED"} and execution.end_events == 1 and execution.live
    assert state.jobs[7].status == "SUCCEEDED" and not state.live_jobs


def test_a_removed_executor_takes_its_blocks() -> None:
    state = AppState()
    state.apply({"Event": "SparkListenerBlockManagerAdded", "Block Manager ID": {"Executor ID": "1", "Host": "h", "Port": 1},
                 "Maximum Memory": 1000, "Timestamp": 1})
    level = {"Use Disk": False, "Use Memory": True, "Use Off Heap": False, "Deserialized": True, "Replication": 1}
    state.apply({"Event": "SparkListenerStageSubmitted", "Properties": {},
                 "Stage Info": {"Stage ID": 0, "Stage Attempt ID": 0, "Number of Tasks": 1,
                                "RDD Info": [{"RDD ID": 3, "Name": "r", "Number of Partitions": 1, "Storage Level": level}]}})
    state.apply({"Event": "SparkListenerBlockUpdated", "Block Updated Info": {
        "Block Manager ID": {"Executor ID": "1"}, "Block ID": "rdd_3_0", "Storage Level": level,
        "Memory Size": 100, "Disk Size": 0}})
    rdd = state.rdds[3]
    assert rdd.memory_used == 100 and "1" in rdd.distributions and state.executors["1"].rdd_blocks == 1
    state.apply({"Event": "SparkListenerExecutorRemoved", "Executor ID": "1", "Timestamp": 5, "Removed Reason": "x"})
    assert rdd.memory_used == 0 and not rdd.partitions and not rdd.distributions
    assert not state.executors["1"].is_active


def test_a_dead_executor_dropped_by_retention_while_its_stage_runs() -> None:
    """It was in ``dead_in_live_stages`` when retention dropped it: the stage's end used to
    raise KeyError (and fail the whole log)."""
    state = AppState(retained_dead_executors=1)  # the server's spark.ui.retainedDeadExecutors=1
    state.apply({"Event": "SparkListenerJobStart", "Job ID": 0, "Submission Time": 1, "Stage IDs": [0, 1], "Properties": {},
                 "Stage Infos": [{"Stage ID": i, "Stage Attempt ID": 0, "Number of Tasks": 1} for i in (0, 1)]})
    for stage_id in (0, 1):  # stage 1 still runs when stage 0 ends
        state.apply({"Event": "SparkListenerStageSubmitted", "Properties": {},
                     "Stage Info": {"Stage ID": stage_id, "Stage Attempt ID": 0, "Number of Tasks": 1, "Submission Time": 2}})
    for executor_id in ("1", "2"):
        state.apply({"Event": "SparkListenerExecutorAdded", "Executor ID": executor_id, "Timestamp": 1,
                     "Executor Info": {"Host": "h", "Total Cores": 1}})
        state.apply({"Event": "SparkListenerExecutorRemoved", "Executor ID": executor_id, "Timestamp": 5})
    assert set(state.executors) == {"2"} and state.dead_in_live_stages == {"1", "2"}
    state.apply({"Event": "SparkListenerStageCompleted",
                 "Stage Info": {"Stage ID": 0, "Stage Attempt ID": 0, "Number of Tasks": 1, "Submission Time": 2,
                                "Completion Time": 6}})
    assert state.stages[(0, 0)].status == "COMPLETE" and state.dead_in_live_stages == {"2"}
