"""The analytics tables: their columns, and their rows from one application attempt's state.

Every figure is the one the REST API shows for the same entity, never read from the log:
``jobs``, ``stages`` (plus the task-duration quantiles of the stage's ``taskSummary``) and
``sql_executions`` are read off the entities field for field as :mod:`sparkhist.render.views`
renders them in ``views.job``, ``views.stage`` and ``views.execution`` (without formatting
the dates and fields the tables do not keep: most of what those cost); ``executors`` come
from ``views.executor`` (``/allexecutors``: the driver's own rules) and ``properties`` from
``views.spark_properties`` (redacted as there). Dates stay in epoch milliseconds.

Conventions: snake_case columns, times in milliseconds (Spark's nanosecond CPU and
shuffle-write times are divided by 10^6), sizes in bytes. Each row starts with
``app_id`` and ``attempt_id`` (NULL for an application's only, unnamed attempt).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sparkhist import releases
from sparkhist.render import views
from sparkhist.state.app_state import AppState
from sparkhist.state.entities import M, Task
from sparkhist.state.summaries import _long, _pick

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


_RUN = M["executorRunTime"]
_LONG_MIN, _LONG_MAX = -(1 << 63), 1 << 63
#: The stage metrics of the ``stages`` row, in :func:`_stage_rows`' order.
_STAGE_METRICS = itemgetter(*(M[name] for name in (
    "executorRunTime", "executorCpuTime", "executorDeserializeTime", "jvmGcTime", "resultSerializationTime",
    "resultSize", "peakExecutionMemory", "in.bytesRead", "in.recordsRead", "out.bytesWritten", "out.recordsWritten",
    "sr.localBytesRead", "sr.remoteBytesRead", "sr.recordsRead", "sr.fetchWaitTime", "sw.bytesWritten",
    "sw.recordsWritten", "sw.writeTime", "memoryBytesSpilled", "diskBytesSpilled")))


def _since(end: int | None, start: int | None) -> int | None:
    return end - start if end is not None and start is not None and end >= 0 and start >= 0 else None


def _positive(ms: int) -> int | None:
    return ms if ms >= 0 else None


def duration_quantiles(tasks: dict[int, Task], task_ids: list[int], last_update: int | None) -> list[float] | None:
    """The ``duration`` of ``taskSummary?quantiles=0,0.25,0.5,0.75,1`` for the stage attempt whose
    tasks are ``task_ids``, or None (no successful task): the API's counting (a task counts when
    the run time Spark stores for it, :func:`~sparkhist.state.summaries.stored`, is not negative)
    and picking, in one pass over the tasks."""
    count = 0
    durations: list[int] = []
    for task_id in task_ids:
        t = tasks.get(task_id)
        if t is None:
            continue
        finish, launch, m = t.finish_time, t.launch_time, t.metrics
        if m is not None:  # summaries.stored: the run time of a task that did not succeed is stored as -v - 1
            run = m[_RUN]
            if (run if finish != 0 and not t.failed and not t.killed else -run - 1) >= 0:
                count += 1
        d = finish - launch if finish != 0 else (last_update if last_update is not None else launch) - launch
        if not _LONG_MIN <= d < _LONG_MAX:
            d = _long(d)
        if d >= 0:
            durations.append(d)
    if count <= 0:
        return None
    return _pick(durations, [min(int(q * count), count - 1) for q in QUANTILES])


# tests/analytics compares every figure below with /api/v1.

def _job_rows(state: AppState) -> list[tuple[Any, ...]]:
    return [(j.job_id, j.name, j.description, j.job_group, j.status, j.submission_time, j.completion_time,
             _since(j.completion_time, j.submission_time), len(j.stage_ids), j.num_tasks, j.active_tasks,
             j.completed_tasks, j.skipped_tasks, j.failed_tasks, j.killed_tasks, j.active_stages,
             len(j.completed_stages), len(j.skipped_stages), j.failed_stages)
            for _, j in sorted(state.jobs.items())]


def _stage_rows(state: AppState) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    tasks, last = state.tasks, state.last_update_time
    for _, st in sorted(state.stages.items()):
        info = st.info
        (run, cpu, deserialize, gc, serialize, size, peak, in_bytes, in_records, out_bytes, out_records,
         local, remote, read_records, wait, write_bytes, write_records, write_time, spilled, disk) = _STAGE_METRICS(st.metrics)
        q = duration_quantiles(tasks, st.task_ids, last)
        if q is None:
            quantiles: tuple[float | None, ...] = _NO_QUANTILES
            skew = None
        else:
            quantiles = tuple(q)
            median, top = q[2], q[4]
            skew = top / median if median > 0 else None
        out.append((info.stage_id, info.attempt_id, info.name, st.status, info.failure_reason, st.scheduling_pool,
                    info.submission_time, st.first_launch_time, info.completion_time,
                    _since(info.completion_time, st.first_launch_time),
                    info.num_tasks, st.active_tasks, st.completed_tasks, st.failed_tasks, st.killed_tasks,
                    run, cpu / 1_000_000, deserialize, gc, serialize, size, peak, in_bytes, in_records, out_bytes,
                    out_records, local + remote, remote, read_records, wait, write_bytes, write_records,
                    write_time / 1_000_000, spilled, disk, *quantiles, skew))
    return out


_NO_QUANTILES: tuple[None, ...] = (None,) * len(QUANTILES)


def _executor_rows(state: AppState) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for ex in sorted(state.executors.values(), key=lambda x: x.executor_id):
        if ex.executor_id == "fallback":  # as /allexecutors
            continue
        v = views.executor(ex, state)  # the driver's duration and GC time are the view's own rules
        out.append((v["id"], v["hostPort"], v["isActive"], v["totalCores"], v["maxTasks"], ex.add_time, ex.remove_time,
                    v.get("removeReason"), v["totalDuration"], v["totalGCTime"], v["totalTasks"], v["completedTasks"],
                    v["failedTasks"], v["totalInputBytes"], v["totalShuffleRead"], v["totalShuffleWrite"],
                    v["maxMemory"], v["memoryUsed"], v["diskUsed"]))
    return out


def _sql_rows(state: AppState) -> list[tuple[Any, ...]]:
    now = int(time.time() * 1000)
    out: list[tuple[Any, ...]] = []
    for _, x in sorted(state.executions.items()):
        if x.submission_time == -1 and not x.jobs:  # as /sql
            continue
        statuses = list(x.jobs.values())
        end = x.completion_time if x.completion_time is not None else now
        out.append((x.execution_id, x.root_execution_id if x.root_execution_id is not None else 0, x.query_id,
                    x.status, x.description, _positive(x.submission_time), x.completion_time, end - x.submission_time,
                    statuses.count("RUNNING"), statuses.count("SUCCEEDED"), statuses.count("FAILED"), x.error_message))
    return out


#: (regex, compiled, {(property, value): the value as shown}) of ``views.spark_properties``' redaction:
#: the same pairs recur from attempt to attempt, and searching a long value (Java options, class
#: paths) costs far more than hashing it.
_shown: tuple[str, re.Pattern[str], dict[tuple[str, str], str]] | None = None
SHOWN_KEPT = 10_000


def _property_rows(state: AppState) -> list[tuple[Any, ...]]:
    """``views.spark_properties(state)`` (redacted with the default regex, sorted by name)."""
    global _shown
    if not state.has_env:
        return []
    regex = releases.redaction_regex()
    if _shown is None or _shown[0] != regex:
        _shown = (regex, re.compile(regex), {})
    _, pattern, shown = _shown
    if len(shown) > SHOWN_KEPT:
        shown.clear()
    rows: list[tuple[Any, ...]] = []
    for pair in state.env.get("Spark Properties", []):
        value = shown.get(pair)
        if value is None:
            name, raw = pair
            value = shown[pair] = views.REDACTED if pattern.search(name) or pattern.search(raw) else raw
        rows.append((pair[0], value))
    rows.sort(key=itemgetter(0))
    return rows


_RUN_AT = STAGES.names.index("executor_run_time") - len(_KEY)
_CPU_AT = STAGES.names.index("executor_cpu_time") - len(_KEY)


def _application_row(state: AppState, log_path: str, stages: list[tuple[Any, ...]], jobs: int, executors: int,
                     executions: int) -> tuple[Any, ...]:
    start = _positive(state.start_time)
    end = _positive(state.end_time) if state.completed else None
    return (state.app_name, state.spark_user, state.spark_version, start, end, _since(end, start), state.completed,
            jobs, len(stages), executors, executions, sum(s[_RUN_AT] for s in stages), sum(s[_CPU_AT] for s in stages),
            log_path)


def rows_of(state: AppState, log_path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows for one attempt, by table name, without the key columns (``app_id``,
    ``attempt_id``: ``state.app_id``, ``state.attempt_id`` in every row)."""
    stages = _stage_rows(state)
    jobs, executors, executions = _job_rows(state), _executor_rows(state), _sql_rows(state)
    return {
        "applications": [_application_row(state, log_path, stages, len(jobs), len(executors), len(executions))],
        "jobs": jobs, "stages": stages, "executors": executors, "sql_executions": executions,
        "properties": _property_rows(state),
    }
