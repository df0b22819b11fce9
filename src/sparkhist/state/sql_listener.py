"""``SQLAppStatusListener``: SQL executions, their plans and their SQL metrics.

An execution lives from its start until its end event and the end of each of its jobs
(``end_events``); while it lives, the stages of its jobs keep, per task index, the last
value of each of the execution's SQL metrics (:class:`~sparkhist.state.sql.StageMetrics`),
aggregated into metric strings when the execution ends, or by :func:`finish` (Spark's
final store flush) for executions still running. Jobs carry their execution id in the
``spark.sql.execution.id`` property.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from sparkhist.state import events as ev
from sparkhist.state import retention
from sparkhist.state.sql import SQLExecution, StageMetrics, aggregate_metrics, build_plan_graph

if TYPE_CHECKING:
    from sparkhist.state.app_state import AppState, Handler

__all__ = ["HANDLERS", "finish"]


def finish(s: AppState) -> None:
    """Aggregate the metrics of executions still running."""
    for execution in s.executions.values():
        if execution.live:
            execution.metric_values = aggregate_metrics(execution, s.stage_metrics)


# --------------------------------------------------------------------------- executions
def _is_sql_stage(s: AppState, stage_id: int) -> bool:
    return any(x.live and stage_id in x.stages for x in s.executions.values())


def _execution(s: AppState, execution_id: int) -> SQLExecution:
    execution = s.executions.get(execution_id)
    if execution is None or not execution.live:
        if execution is None:
            execution = s.executions[execution_id] = SQLExecution(execution_id)
        else:
            execution.live = True  # a later job of a finished execution re-opens it
    return execution


def _set_plan(execution: SQLExecution, plan: dict[str, Any]) -> None:
    execution.graph = build_plan_graph(plan)
    for node in execution.graph.all_nodes():
        for _name, acc_id, mtype in node.metrics:
            execution.metric_types[acc_id] = mtype


def _remove_stale(s: AppState, execution: SQLExecution) -> None:
    active = {sid for x in s.executions.values() if x.live and x is not execution for sid in x.stages}
    for sid in [sid for sid in s.stage_metrics if sid not in active]:
        del s.stage_metrics[sid]


def _maybe_close(s: AppState, execution: SQLExecution) -> None:
    if execution.end_events >= len(execution.jobs) + 1:
        _remove_stale(s, execution)
        execution.live = False


def _execution_start(s: AppState, e: dict[str, Any]) -> None:
    execution = _execution(s, e.get("executionId", 0))
    # rootExecutionId.getOrElse(executionId); queryId.orNull; modifiedConfigs as logged, and
    # the case class's default (empty) for logs written before the field
    root = e.get("rootExecutionId")
    execution.root_execution_id = root if type(root) is int else execution.execution_id
    query_id = e.get("queryId")
    execution.query_id = query_id.lower() if isinstance(query_id, str) else None
    configs = e.get("modifiedConfigs")
    execution.modified_configs = _configs(configs) if isinstance(configs, dict) else {}
    execution.description = e.get("description", "") or ""
    execution.details = e.get("details", "") or ""
    execution.plan_description = e.get("physicalPlanDescription", "") or ""
    _set_plan(execution, e.get("sparkPlanInfo") or {})
    execution.submission_time = e.get("time", -1)
    _maybe_close(s, execution)


def _configs(configs: dict[str, Any]) -> dict[str, str]:
    """A ``Map[String, String]`` as Jackson reads it: scalars become their JSON text."""
    return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in configs.items()}


def _adaptive_update(s: AppState, e: dict[str, Any]) -> None:
    execution = _execution(s, e.get("executionId", 0))
    execution.plan_description = e.get("physicalPlanDescription", "") or ""
    _set_plan(execution, e.get("sparkPlanInfo") or {})
    _maybe_close(s, execution)


def _adaptive_metrics(s: AppState, e: dict[str, Any]) -> None:
    execution = _execution(s, e.get("executionId", 0))
    for m in e.get("sqlPlanMetrics") or []:
        execution.metric_types[int(m.get("accumulatorId", 0))] = m.get("metricType", "sum")
    _maybe_close(s, execution)


def _execution_end(s: AppState, e: dict[str, Any]) -> None:
    execution = s.executions.get(e.get("executionId", -1))
    if execution is None or not execution.live:
        return
    execution.completion_time = e.get("time", 0)
    execution.error_message = e.get("errorMessage")
    execution.metric_values = aggregate_metrics(execution, s.stage_metrics)
    _remove_stale(s, execution)
    execution.end_events += 1
    _maybe_close(s, execution)
    retention.cleanup_executions(s)


def _driver_updates(s: AppState, e: dict[str, Any]) -> None:
    execution = s.executions.get(e.get("executionId", -1))
    if execution is None or not execution.live:
        return
    for pair in e.get("accumUpdates") or []:
        execution.driver_updates.append((int(pair[0]), int(pair[1])))


# --------------------------------------------------------------------------- jobs, stages, tasks
def _job_start(s: AppState, e: dict[str, Any]) -> None:
    sql_id = (e.get("Properties") or {}).get("spark.sql.execution.id")
    if sql_id is None:
        return
    execution_id, job_id = int(sql_id), e.get("Job ID", 0)
    execution = s.executions.get(execution_id)
    if execution is not None and not execution.live:
        execution.live = True
        execution.end_events = len(execution.jobs) + 1
    execution = _execution(s, execution_id)
    if execution.metric_types:
        for si in e.get("Stage Infos") or []:
            sid = si.get("Stage ID", 0)
            s.stage_metrics[sid] = StageMetrics(sid, 0, si.get("Number of Tasks", 0), execution_id)
    execution.jobs[job_id] = "RUNNING"
    for sid in e.get("Stage IDs") or []:
        if sid not in execution.stages:
            execution.stages.append(sid)
    _maybe_close(s, execution)


def _job_end(s: AppState, e: dict[str, Any]) -> None:
    job_id = e.get("Job ID", 0)
    if job_id not in s.live_jobs:  # the core listener's: a job that already ended is ignored
        return
    result = (e.get("Job Result") or {}).get("Result", "JobSucceeded")
    for execution in s.executions.values():
        if execution.live and job_id in execution.jobs:
            execution.jobs[job_id] = "SUCCEEDED" if result == "JobSucceeded" else "FAILED"
            execution.end_events += 1
            _maybe_close(s, execution)


def _stage_submitted(s: AppState, e: dict[str, Any]) -> None:
    """A new attempt of an execution's stage starts its metrics afresh."""
    si = e.get("Stage Info") or {}
    stage_id, attempt = si.get("Stage ID", 0), si.get("Stage Attempt ID", 0) or 0
    sm = s.stage_metrics.get(stage_id)
    if sm is not None and _is_sql_stage(s, stage_id) and sm.attempt_id != attempt:
        s.stage_metrics[stage_id] = StageMetrics(stage_id, attempt, sm.num_tasks, sm.execution_id)


def _task_start(s: AppState, e: dict[str, Any]) -> None:
    sm = s.stage_metrics.get(e.get("Stage ID", 0))
    if sm is not None and sm.attempt_id == (e.get("Stage Attempt ID", 0) or 0):
        ti = e.get("Task Info") or {}
        sm.task_indices[ti.get("Task ID", 0)] = ti.get("Index", 0)


def _task_end(s: AppState, e: dict[str, Any]) -> None:
    """``onTaskEnd``: the task's value of each SQL metric of its execution, decoding only
    the accumulables of the execution's metrics."""
    stage_id = e.get("Stage ID", 0)
    sm = s.stage_metrics.get(stage_id)
    if sm is None:  # the usual case: not a stage of a live execution
        return
    ti = e.get("Task Info")
    if ti is None or sm.attempt_id != (e.get("Stage Attempt ID", 0) or 0) or not _is_sql_stage(s, stage_id):
        return
    tg = ti.get
    task_id, index = tg("Task ID", 0), tg("Index", 0)
    sm.task_indices[task_id] = index
    if index in sm.completed:
        return
    _record(s, sm, task_id, index, tg("Accumulables"))
    if (tg("Finish Time", 0) or 0) != 0 and not tg("Failed", False) and not tg("Killed", False):
        sm.completed.add(index)


def _executor_metrics_update(s: AppState, e: dict[str, Any]) -> None:
    """``onExecutorMetricsUpdate``: a heartbeat's accumulator updates of running tasks are their
    values so far (``UNKNOWN_INDEX``: only for a task whose start was seen, not yet completed)."""
    tasks, _peaks = ev.executor_metrics_update(e)
    for task_id, stage_id, attempt, accums, _metrics in tasks:
        sm = s.stage_metrics.get(stage_id)
        if sm is None or sm.attempt_id != attempt:
            continue
        index = sm.task_indices.get(task_id)
        if index is None or index in sm.completed:
            continue
        _record(s, sm, task_id, index, accums)


def _record(s: AppState, sm: StageMetrics, task_id: int, index: int, items: list[dict[str, Any]] | None) -> None:
    """``LiveStageMetrics.updateTaskMetrics``: the task's value of each SQL metric of its
    execution, and the metric's maximum with its task (the first to reach it)."""
    execution = s.executions.get(sm.execution_id)
    types = execution.metric_types if execution is not None else {}
    if not types or not items:
        return
    all_values, max_values, num_tasks = sm.values, sm.max_values, sm.num_tasks
    for acc in items:
        update = acc.get("Update")
        if update is None:
            continue
        try:
            acc_id = acc["ID"]
            if type(acc_id) is not int:
                acc_id = int(acc_id)
            mtype = types.get(acc_id)
            if mtype is None:
                continue
            value = update if type(update) is int else int(update)
        except (KeyError, TypeError, ValueError):
            continue
        values = all_values.get(acc_id)
        if values is None:
            values = all_values[acc_id] = [0] * num_tasks
        if 0 <= index < len(values):
            values[index] = value
        if mtype != "sum":
            current = max_values.get(acc_id)
            if current is None:
                max_values[acc_id] = [value, task_id]
            elif value > current[0]:
                current[0], current[1] = value, task_id


HANDLERS: dict[str, Handler] = {
    "SparkListenerSQLExecutionStart": _execution_start,
    "SparkListenerSQLAdaptiveExecutionUpdate": _adaptive_update,
    "SparkListenerSQLAdaptiveSQLMetricUpdates": _adaptive_metrics,
    "SparkListenerSQLExecutionEnd": _execution_end,
    "SparkListenerDriverAccumUpdates": _driver_updates,
    "SparkListenerJobStart": _job_start,
    "SparkListenerJobEnd": _job_end,
    "SparkListenerStageSubmitted": _stage_submitted,
    "SparkListenerTaskStart": _task_start,
    "SparkListenerTaskEnd": _task_end,
    "SparkListenerExecutorMetricsUpdate": _executor_metrics_update,
}
