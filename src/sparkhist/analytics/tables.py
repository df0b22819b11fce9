"""The analytics tables: their columns, and their rows from one application attempt's state.

Every row is read off the record the REST API renders for the same entity
(:mod:`sparkhist.render.views`), never from the log: ``jobs`` from ``views.job``,
``stages`` from ``views.stage`` (plus the task-duration quantiles of the stage's
``taskSummary``), ``executors`` from ``views.executor`` (``/allexecutors``), ``sql_executions``
from ``views.execution`` and ``properties`` from ``views.environment`` (redacted as there).
Only dates are taken from the entity itself: the view formats that very number as a GMT
string, and the tables keep it in epoch milliseconds.

Conventions: snake_case columns, times in milliseconds (Spark's nanosecond CPU and
shuffle-write times are divided by 10^6), sizes in bytes. Each row starts with
``app_id`` and ``attempt_id`` (NULL for an application's only, unnamed attempt).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sparkhist.render import views
from sparkhist.state.app_state import AppState
from sparkhist.state.entities import M, Stage
from sparkhist.state.summaries import _long, _pick, stored, task_duration

__all__ = ["TABLES", "Table", "rows_of"]

#: The quantiles of the ``stages`` table's ``duration_p*`` columns (the API's ``taskSummary`` rule).
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    #: (column, DuckDB type, what it means)
    columns: tuple[tuple[str, str, str], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c[0] for c in self.columns)


_KEY = (("app_id", "VARCHAR", "application id"), ("attempt_id", "VARCHAR", "attempt id (NULL: the only attempt)"))

APPLICATIONS = Table("applications", (
    *_KEY,
    ("app_name", "VARCHAR", "application name"),
    ("spark_user", "VARCHAR", "user who ran it"),
    ("spark_version", "VARCHAR", "Spark version"),
    ("start_time", "BIGINT", "start, epoch ms (NULL if unknown)"),
    ("end_time", "BIGINT", "end, epoch ms (NULL while running)"),
    ("duration", "BIGINT", "end - start in ms (NULL while running)"),
    ("completed", "BOOLEAN", "the application-end event was logged"),
    ("num_jobs", "BIGINT", "jobs kept"),
    ("num_stages", "BIGINT", "stage attempts kept"),
    ("num_executors", "BIGINT", "executors, the driver included (as /allexecutors)"),
    ("num_sql_executions", "BIGINT", "SQL executions kept"),
    ("executor_run_time", "BIGINT", "sum of the stages' executor run time, ms"),
    ("executor_cpu_time", "DOUBLE", "sum of the stages' executor CPU time, ms"),
    ("log_path", "VARCHAR", "the event log"),
))

JOBS = Table("jobs", (
    *_KEY,
    ("job_id", "BIGINT", "job id"),
    ("name", "VARCHAR", "name (the action's call site)"),
    ("description", "VARCHAR", "description (spark.job.description)"),
    ("job_group", "VARCHAR", "job group"),
    ("status", "VARCHAR", "RUNNING, SUCCEEDED, FAILED, UNKNOWN"),
    ("submission_time", "BIGINT", "epoch ms"),
    ("completion_time", "BIGINT", "epoch ms"),
    ("duration", "BIGINT", "completion - submission, ms"),
    ("num_stages", "BIGINT", "stages of the job"),
    ("num_tasks", "BIGINT", "tasks"),
    ("num_active_tasks", "BIGINT", ""),
    ("num_completed_tasks", "BIGINT", ""),
    ("num_skipped_tasks", "BIGINT", ""),
    ("num_failed_tasks", "BIGINT", ""),
    ("num_killed_tasks", "BIGINT", ""),
    ("num_active_stages", "BIGINT", ""),
    ("num_completed_stages", "BIGINT", ""),
    ("num_skipped_stages", "BIGINT", ""),
    ("num_failed_stages", "BIGINT", ""),
))

STAGES = Table("stages", (
    *_KEY,
    ("stage_id", "BIGINT", "stage id"),
    ("stage_attempt_id", "BIGINT", "stage attempt"),
    ("name", "VARCHAR", "name"),
    ("status", "VARCHAR", "ACTIVE, COMPLETE, PENDING, FAILED, SKIPPED"),
    ("failure_reason", "VARCHAR", "why it failed"),
    ("scheduling_pool", "VARCHAR", "fair-scheduler pool"),
    ("submission_time", "BIGINT", "epoch ms"),
    ("first_task_launched_time", "BIGINT", "epoch ms"),
    ("completion_time", "BIGINT", "epoch ms"),
    ("duration", "BIGINT", "completion - first task launch, ms (Spark's stage duration)"),
    ("num_tasks", "BIGINT", "tasks"),
    ("num_active_tasks", "BIGINT", ""),
    ("num_complete_tasks", "BIGINT", ""),
    ("num_failed_tasks", "BIGINT", ""),
    ("num_killed_tasks", "BIGINT", ""),
    ("executor_run_time", "BIGINT", "ms"),
    ("executor_cpu_time", "DOUBLE", "ms"),
    ("executor_deserialize_time", "BIGINT", "ms"),
    ("jvm_gc_time", "BIGINT", "ms"),
    ("result_serialization_time", "BIGINT", "ms"),
    ("result_size", "BIGINT", "bytes"),
    ("peak_execution_memory", "BIGINT", "bytes"),
    ("input_bytes", "BIGINT", "bytes"),
    ("input_records", "BIGINT", ""),
    ("output_bytes", "BIGINT", "bytes"),
    ("output_records", "BIGINT", ""),
    ("shuffle_read_bytes", "BIGINT", "bytes, local + remote"),
    ("shuffle_remote_bytes_read", "BIGINT", "bytes"),
    ("shuffle_read_records", "BIGINT", ""),
    ("shuffle_fetch_wait_time", "BIGINT", "ms"),
    ("shuffle_write_bytes", "BIGINT", "bytes"),
    ("shuffle_write_records", "BIGINT", ""),
    ("shuffle_write_time", "DOUBLE", "ms"),
    ("memory_bytes_spilled", "BIGINT", "bytes"),
    ("disk_bytes_spilled", "BIGINT", "bytes"),
    ("task_duration_min", "DOUBLE", "ms, quantiles of the successful tasks' durations (the API's taskSummary)"),
    ("task_duration_p25", "DOUBLE", "ms"),
    ("task_duration_median", "DOUBLE", "ms"),
    ("task_duration_p75", "DOUBLE", "ms"),
    ("task_duration_max", "DOUBLE", "ms"),
    ("skew", "DOUBLE", "task_duration_max / task_duration_median (NULL without a positive median)"),
))

EXECUTORS = Table("executors", (
    *_KEY,
    ("executor_id", "VARCHAR", "executor id (\"driver\" for the driver)"),
    ("host_port", "VARCHAR", "host:port"),
    ("is_active", "BOOLEAN", "still running when last logged"),
    ("total_cores", "BIGINT", ""),
    ("max_tasks", "BIGINT", ""),
    ("add_time", "BIGINT", "epoch ms"),
    ("remove_time", "BIGINT", "epoch ms"),
    ("remove_reason", "VARCHAR", ""),
    ("total_duration", "BIGINT", "ms of task time (the driver: the application's run time)"),
    ("total_gc_time", "BIGINT", "ms"),
    ("total_tasks", "BIGINT", ""),
    ("completed_tasks", "BIGINT", ""),
    ("failed_tasks", "BIGINT", ""),
    ("total_input_bytes", "BIGINT", "bytes"),
    ("total_shuffle_read", "BIGINT", "bytes"),
    ("total_shuffle_write", "BIGINT", "bytes"),
    ("max_memory", "BIGINT", "bytes of storage memory"),
    ("memory_used", "BIGINT", "bytes"),
    ("disk_used", "BIGINT", "bytes"),
))

SQL_EXECUTIONS = Table("sql_executions", (
    *_KEY,
    ("execution_id", "BIGINT", "SQL execution id"),
    ("root_execution_id", "BIGINT", ""),
    ("query_id", "VARCHAR", ""),
    ("status", "VARCHAR", "RUNNING, COMPLETED, FAILED"),
    ("description", "VARCHAR", "the query's description (often its text)"),
    ("submission_time", "BIGINT", "epoch ms"),
    ("completion_time", "BIGINT", "epoch ms (NULL while running)"),
    ("duration", "BIGINT", "ms"),
    ("num_running_jobs", "BIGINT", ""),
    ("num_succeeded_jobs", "BIGINT", ""),
    ("num_failed_jobs", "BIGINT", ""),
    ("error_message", "VARCHAR", ""),
))

PROPERTIES = Table("properties", (
    *_KEY,
    ("key", "VARCHAR", "Spark property name"),
    ("value", "VARCHAR", "its value, redacted as the API redacts it"),
))

TABLES: tuple[Table, ...] = (APPLICATIONS, JOBS, STAGES, EXECUTORS, SQL_EXECUTIONS, PROPERTIES)


def _ms(ns: int) -> float:
    return ns / 1_000_000


def _since(end: int | None, start: int | None) -> int | None:
    return end - start if end is not None and start is not None and end >= 0 and start >= 0 else None


def _positive(ms: int) -> int | None:
    return ms if ms >= 0 else None


def duration_quantiles(state: AppState, st: Stage) -> list[float] | None:
    """The ``duration`` of ``taskSummary?quantiles=0,0.25,0.5,0.75,1`` for the stage attempt, or None
    (no successful task): the same counting and picking as the API's."""
    tasks = [state.tasks[t] for t in st.task_ids if t in state.tasks]
    run = M["executorRunTime"]
    count = sum(1 for t in tasks if stored(t, run) >= 0)
    if count <= 0:
        return None
    durations = [d for d in (_long(task_duration(t, state.last_update_time)) for t in tasks) if d >= 0]
    return _pick(durations, [min(int(q * count), count - 1) for q in QUANTILES])


def _job_rows(state: AppState) -> Iterable[tuple[Any, ...]]:
    for _, j in sorted(state.jobs.items()):
        v = views.job(j)
        yield (v["jobId"], v["name"], v.get("description"), v.get("jobGroup"), v["status"],
               j.submission_time, j.completion_time, _since(j.completion_time, j.submission_time),
               len(v["stageIds"]), v["numTasks"], v["numActiveTasks"], v["numCompletedTasks"], v["numSkippedTasks"],
               v["numFailedTasks"], v["numKilledTasks"], v["numActiveStages"], v["numCompletedStages"],
               v["numSkippedStages"], v["numFailedStages"])


def _stage_rows(state: AppState) -> Iterable[tuple[Any, ...]]:
    for _, st in sorted(state.stages.items()):
        v = views.stage(st)
        q = duration_quantiles(state, st)
        quantiles: list[float | None] = [None] * len(QUANTILES) if q is None else list(q)
        median, top = quantiles[2], quantiles[4]
        skew = top / median if top is not None and median is not None and median > 0 else None
        yield (v["stageId"], v["attemptId"], v["name"], v["status"], v.get("failureReason"), v["schedulingPool"],
               st.info.submission_time, st.first_launch_time, st.info.completion_time,
               _since(st.info.completion_time, st.first_launch_time),
               v["numTasks"], v["numActiveTasks"], v["numCompleteTasks"], v["numFailedTasks"], v["numKilledTasks"],
               v["executorRunTime"], _ms(v["executorCpuTime"]), v["executorDeserializeTime"], v["jvmGcTime"],
               v["resultSerializationTime"], v["resultSize"], v["peakExecutionMemory"],
               v["inputBytes"], v["inputRecords"], v["outputBytes"], v["outputRecords"],
               v["shuffleReadBytes"], v["shuffleRemoteBytesRead"], v["shuffleReadRecords"], v["shuffleFetchWaitTime"],
               v["shuffleWriteBytes"], v["shuffleWriteRecords"], _ms(v["shuffleWriteTime"]),
               v["memoryBytesSpilled"], v["diskBytesSpilled"], *quantiles, skew)


def _executor_rows(state: AppState) -> Iterable[tuple[Any, ...]]:
    for ex in sorted(state.executors.values(), key=lambda x: x.executor_id):
        if ex.executor_id == "fallback":  # as /allexecutors
            continue
        v = views.executor(ex, state)
        yield (v["id"], v["hostPort"], v["isActive"], v["totalCores"], v["maxTasks"], ex.add_time, ex.remove_time,
               v.get("removeReason"), v["totalDuration"], v["totalGCTime"], v["totalTasks"], v["completedTasks"],
               v["failedTasks"], v["totalInputBytes"], v["totalShuffleRead"], v["totalShuffleWrite"], v["maxMemory"],
               v["memoryUsed"], v["diskUsed"])


def _sql_rows(state: AppState) -> Iterable[tuple[Any, ...]]:
    now = int(time.time() * 1000)
    for _, x in sorted(state.executions.items()):
        if x.submission_time == -1 and not x.jobs:  # as /sql
            continue
        v = views.execution(x, False, False, now)
        yield (v["id"], x.root_execution_id if x.root_execution_id is not None else 0, x.query_id, v["status"],
               v["description"], _positive(x.submission_time), x.completion_time, v["duration"],
               len(v["runningJobIds"]), len(v["successJobIds"]), len(v["failedJobIds"]), x.error_message)


def _property_rows(state: AppState) -> Iterable[tuple[Any, ...]]:
    if not state.has_env:
        return
    yield from (tuple(kv) for kv in views.spark_properties(state))


def _application_row(state: AppState, log_path: str, stages: list[tuple[Any, ...]], jobs: int, executors: int,
                     executions: int) -> tuple[Any, ...]:
    run = STAGES.names.index("executor_run_time") - 2
    cpu = STAGES.names.index("executor_cpu_time") - 2
    start = _positive(state.start_time)
    end = _positive(state.end_time) if state.completed else None
    return (state.app_name, state.spark_user, state.spark_version, start, end, _since(end, start), state.completed,
            jobs, len(stages), executors, executions, sum(s[run] for s in stages), sum(s[cpu] for s in stages), log_path)


_ROWS: dict[str, Callable[[AppState], Iterable[tuple[Any, ...]]]] = {
    "jobs": _job_rows, "stages": _stage_rows, "executors": _executor_rows, "sql_executions": _sql_rows,
    "properties": _property_rows,
}


def rows_of(state: AppState, log_path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows for one attempt (key columns included), by table name."""
    body = {name: list(make(state)) for name, make in _ROWS.items()}
    body["applications"] = [_application_row(state, log_path, body["stages"], len(body["jobs"]),
                                              len(body["executors"]), len(body["sql_executions"]))]
    key = (state.app_id, state.attempt_id)
    return {t.name: [(*key, *row) for row in body[t.name]] for t in TABLES}
