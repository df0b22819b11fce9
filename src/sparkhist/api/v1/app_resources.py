"""The per-application REST resources: jobs, stages, tasks, executors, storage, env, SQL.

``handle(state, rest, query, app_id=..., tasks=...)`` answers one request below
``/applications/{appId}[/{attemptId}]`` from an :class:`AppState` (never by replaying
events), with the SHS's orders, defaults and error messages (``AbstractApplicationResource``,
``StagesResource``, ``SqlResource``). Tasks are read only through ``tasks`` (one stage
attempt at a time, see :class:`~sparkhist.state.sections.StageTasks`), so a state served
from a snapshot loads the task sections a request needs and no other: ``/jobs`` or
``/stages`` load none, a ``taskList`` page the chunks it shows; quantiles stream over the
chunks keeping numbers only, not tasks.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable
from typing import Any, NoReturn

from sparkhist import releases
from sparkhist.api.v1 import params
from sparkhist.api.v1.params import QueryParams
from sparkhist.api.v1.task_table import recording, task_table
from sparkhist.errors import JerseyNotFound, JerseyServerError, NotFound, ServiceUnavailable
from sparkhist.render import views
from sparkhist.state.app_state import AppState
from sparkhist.state.entities import M, Stage, Task
from sparkhist.state.sections import StageTasks, TasksOf, stage_tasks_in_memory
from sparkhist.state.summaries import _indexed, _pick, executor_summary_distributions, stored

__all__ = ["handle"]

_JOB_STATUS = ("RUNNING", "SUCCEEDED", "FAILED", "UNKNOWN")
_STAGE_STATUS = ("ACTIVE", "COMPLETE", "PENDING", "FAILED", "SKIPPED")
_TASK_STATUS = ("RUNNING", "KILLED", "FAILED", "SUCCESS", "UNKNOWN")
_DEFAULT_Q = (0.0, 0.25, 0.5, 0.75, 1.0)


def _int_segment(value: str, bits: int = 32) -> int:
    """A ``{x: \\d+}`` path segment (ASCII digits) converted to a Java ``int`` (``long``
    with ``bits=64``); anything else does not match the route or fails conversion (Jersey 404)."""
    number = params.java_int(value, bits=bits) if value.isascii() and value.isdigit() else None
    if number is None:
        raise JerseyNotFound(f"no route for segment {value[:40]!r}")
    return number


def handle(state: AppState, rest: list[str], query: QueryParams, *, app_id: str,
           tasks: StageTasks | TasksOf | None = None) -> Any:
    """The JSON-ready answer for ``rest`` (segments after the app/attempt), or an ApiError.

    ``tasks`` gives a stage attempt's tasks; by default those in ``state.tasks``.
    """
    if not rest:
        raise NotFound(f"unknown resource for app {app_id}")
    head, tail = rest[0], rest[1:]
    if head == "jobs":
        return _jobs(state, tail, query)
    if head == "stages":
        access = tasks if isinstance(tasks, StageTasks) else StageTasks(tasks or stage_tasks_in_memory(state))
        return _stages(state, access, tail, query)
    if head in ("executors", "allexecutors"):
        if head == "executors" and len(tail) == 2 and tail[1] == "threads":
            raise ServiceUnavailable("Thread dumps not available through the history server.")
        if tail:
            raise NotFound(f"unknown resource {'/'.join(rest)}")
        return _executors(state, active_only=head == "executors")
    if head == "threads" and not tail:
        raise ServiceUnavailable("Thread dumps not available through the history server.")
    if head == "allmiscellaneousprocess" and not tail:
        return [views.process(p) for _, p in sorted(state.processes.items())]
    if head == "storage" and tail and tail[0] == "rdd":
        return _storage(state, tail[1:])
    if head == "environment" and not tail:
        if not state.has_env:
            raise NotFound("unknown resource environment")
        return views.environment(state)
    if head == "sql":
        return _sql(state, tail, query)
    if head == "streaming":
        raise NotFound(f"no streaming listener attached to {state.app_name}")
    raise NotFound(f"unknown resource {'/'.join(rest)}")


# ---------------------------------------------------------------------------------- jobs
def _jobs(state: AppState, tail: list[str], query: QueryParams) -> Any:
    if not tail:
        statuses = params.enum_values(query, "status", _JOB_STATUS)
        return [views.job(j) for _, j in sorted(state.jobs.items(), reverse=True)
                if statuses is None or j.status in statuses]
    if len(tail) == 1:
        job_id = _int_segment(tail[0])
        job = state.jobs.get(job_id)
        if job is None:
            raise NotFound(f"unknown job: {job_id}")
        return views.job(job)
    raise NotFound(f"unknown resource jobs/{'/'.join(tail)}")


# ---------------------------------------------------------------------------------- stages
def _stage_data(state: AppState, tasks: StageTasks, st: Stage, details: bool, task_status: set[str] | None,
                with_summaries: bool, quantiles: list[float]) -> dict[str, Any]:
    out = views.stage(st)
    if not details and not with_summaries:
        return out
    ordered = dict(out)
    result: dict[str, Any] = {}
    for key, value in ordered.items():
        if key == "killedTasksSummary":
            if details:
                # chunk by chunk, descending ids; an empty status set (taskStatus=) matches no task: none read
                result["tasks"] = {str(t.task_id): views.task(t, state)
                                   for chunk in (tasks.chunks(st, reverse=True) if task_status != set() else ())
                                   for t in sorted(chunk, key=lambda t: t.task_id, reverse=True)
                                   if task_status is None or t.status in task_status}
                result["executorSummary"] = {k: views.executor_stage_summary(v)
                                             for k, v in sorted(st.executor_summaries.items())}
                if st.speculation is not None:
                    s = st.speculation
                    result["speculationSummary"] = {
                        "numTasks": s.num_tasks, "numActiveTasks": s.num_active,
                        "numCompletedTasks": s.num_completed, "numFailedTasks": s.num_failed,
                        "numKilledTasks": s.num_killed}
        if key == "isShufflePushEnabled" and with_summaries:
            summary = task_summary(tasks.chunks(st), quantiles, state.last_update_time)
            if summary is not None:
                result["taskMetricsDistributions"] = summary
            dist = executor_summary_distributions(list(st.executor_summaries.values()), quantiles)
            if dist is not None:
                result["executorMetricsDistributions"] = dist
        result[key] = value
    return result


def _stage_list_params(query: QueryParams, details_default: bool) -> tuple[bool, set[str] | None, bool, list[float]]:
    details = params.boolean(query, "details", details_default)
    task_status = params.enum_values(query, "taskStatus", _TASK_STATUS)
    with_summaries = params.boolean(query, "withSummaries", False)
    quantiles = params.quantiles(query, _DEFAULT_Q)
    return details, task_status, with_summaries, quantiles


def _has_task_in(st: Stage, statuses: set[str]) -> bool:
    checks = {
        "FAILED": st.failed_tasks > 0,
        "KILLED": st.killed_tasks > 0,
        "RUNNING": st.active_tasks > 0,
        "SUCCESS": st.completed_tasks > 0,
        "UNKNOWN": st.info.num_tasks - st.failed_tasks - st.killed_tasks - st.active_tasks
        - st.completed_tasks > 0,
    }
    return any(checks[s] for s in statuses)


def _stages(state: AppState, tasks_of: StageTasks, tail: list[str], query: QueryParams) -> Any:
    if not tail:
        statuses = params.enum_values(query, "status", _STAGE_STATUS)
        details, task_status, with_summaries, quantiles = _stage_list_params(query, False)
        out = []
        for _, stage in sorted(state.stages.items(), reverse=True):
            if statuses is not None and stage.status not in statuses:
                continue
            if details and task_status and not _has_task_in(stage, task_status):
                continue
            out.append(_stage_data(state, tasks_of, stage, details, task_status, with_summaries, quantiles))
        return out
    stage_id = _int_segment(tail[0])
    attempts = sorted((k[1], st) for k, st in state.stages.items() if k[0] == stage_id)
    if len(tail) == 1:
        details, task_status, with_summaries, quantiles = _stage_list_params(query, True)
        if not attempts:
            raise NotFound(f"unknown stage: {stage_id}")
        return [_stage_data(state, tasks_of, st, details, task_status, with_summaries, quantiles)
                for _, st in attempts]
    attempt_id = _int_segment(tail[1])
    st = state.stages.get((stage_id, attempt_id))
    if len(tail) == 2:
        details, task_status, with_summaries, quantiles = _stage_list_params(query, True)
        if st is None:
            _missing_attempt(stage_id, attempts)
        return _stage_data(state, tasks_of, st, details, task_status, with_summaries, quantiles)
    if len(tail) == 3 and tail[2] == "taskSummary":
        quantiles = params.quantiles(query, (0.05, 0.25, 0.5, 0.75, 0.95))
        chunks = recording(state, st, tasks_of.chunks(st)) if st is not None else []  # the task table's orders too
        summary = task_summary(chunks, quantiles, state.last_update_time)
        if summary is None:
            raise NotFound(f"No tasks reported metrics for {stage_id} / {attempt_id} yet.")
        return summary
    if len(tail) == 3 and tail[2] == "taskList":
        return _task_list(state, tasks_of, st, query)
    if len(tail) == 3 and tail[2] == "taskTable":
        return task_table(state, tasks_of, st, query)
    raise NotFound(f"unknown resource stages/{'/'.join(tail)}")


def _missing_attempt(stage_id: int, attempts: list[tuple[int, Stage]]) -> NoReturn:
    if attempts:
        ids = ",".join(str(a) for a, _ in attempts)
        raise NotFound(f"unknown attempt for stage {stage_id}.  Found attempts: [{ids}]")
    raise NotFound(f"unknown stage: {stage_id}")


_SORTINGS = {"ID": "ID", "INCREASING_RUNTIME": "INCREASING_RUNTIME", "RUNTIME": "INCREASING_RUNTIME",
             "DECREASING_RUNTIME": "DECREASING_RUNTIME", "-RUNTIME": "DECREASING_RUNTIME"}


def _ordered_tasks(tasks: list[Task], sort_by: str) -> list[Task]:
    """The KVStore index order: ties fall back to the task id (reversed with the index)."""
    if sort_by == "ID":
        return sorted(tasks, key=lambda t: t.task_id)
    key = lambda t: (stored(t, M["executorRunTime"]), t.task_id)  # noqa: E731
    return sorted(tasks, key=key, reverse=sort_by == "DECREASING_RUNTIME")


def _task_list(state: AppState, tasks_of: StageTasks, st: Stage | None, query: QueryParams) -> list[dict[str, Any]]:
    offset = params.integer(query, "offset", 0)
    length = params.integer(query, "length", 20)
    raw_sort = query.get("sortBy")
    sort_by = "ID"
    if raw_sort is not None:
        sort_by = _SORTINGS.get(raw_sort.strip().upper(), "")
        if not sort_by:
            raise JerseyNotFound(f"bad value {raw_sort!r} for enum parameter 'sortBy'")
    statuses = params.enum_values(query, "status", _TASK_STATUS)
    if length <= 0:  # KVStoreView.max rejects it: the SHS fails the request with a 500 page
        raise JerseyServerError(f"taskList length must be positive, got {length}")
    start = max(offset, 0)
    page = tasks_of.page(st, sort_by, statuses or None, start, length) if st is not None else None
    if page is None:
        ordered = _ordered_tasks(tasks_of.all(st) if st is not None else [], sort_by)
        if statuses:
            ordered = [t for t in ordered if t.status in statuses]
        page = ordered[start:start + length]
    return [views.task(t, state) for t in page]


#: The plain metrics of ``taskSummary`` (their stored values) and the derived ones
#: (``TaskDataWrapper``'s indices), as :func:`sparkhist.state.summaries.task_summary` reads them.
_PUSH = ("corruptMergedBlockChunks", "mergedFetchFallbackCount", "remoteMergedBlocksFetched",
         "localMergedBlocksFetched", "remoteMergedChunksFetched", "localMergedChunksFetched",
         "remoteMergedBytesRead", "localMergedBytesRead", "remoteMergedReqsDuration")
_PLAIN = ("executorDeserializeTime", "executorDeserializeCpuTime", "executorRunTime", "executorCpuTime",
          "resultSize", "jvmGcTime", "resultSerializationTime", "peakExecutionMemory", "memoryBytesSpilled",
          "diskBytesSpilled", "in.bytesRead", "in.recordsRead", "out.bytesWritten", "out.recordsWritten",
          "sr.recordsRead", "sr.remoteBlocksFetched", "sr.localBlocksFetched", "sr.fetchWaitTime",
          "sr.remoteBytesRead", "sr.remoteBytesReadToDisk", "sr.remoteReqsDuration",
          *("push." + name for name in _PUSH), "sw.bytesWritten", "sw.recordsWritten", "sw.writeTime")
_DERIVED = ("duration", "sched", "grt", "reads", "blocks")


def task_summary(chunks: Iterable[list[Task]], quantiles: list[float], last_update: int | None) -> dict[str, Any] | None:
    """``AppStatusStore.taskSummary`` (as :func:`sparkhist.state.summaries.task_summary`) over
    a stage's tasks given chunk by chunk: only the non-negative values of each metric are
    kept (8 bytes each), never the tasks, so a chunk is released once read."""
    qs = sorted(quantiles)
    run = M["executorRunTime"]
    plain = [(M[name], array("q")) for name in _PLAIN]
    derived = [(name, array("q")) for name in _DERIVED]
    count = 0
    for chunk in chunks:
        for t in chunk:
            m = t.metrics
            if m is not None:  # the stored values (``stored``), its status asked once per task, not per metric
                if t.status == "SUCCESS":
                    count += m[run] >= 0
                    for i, values in plain:
                        if m[i] >= 0:
                            values.append(m[i])
                else:
                    count += m[run] < 0
                    for i, values in plain:
                        if m[i] < 0:
                            values.append(-m[i] - 1)
            d = _indexed(t, last_update)
            for name, values in derived:
                if d[name] >= 0:
                    values.append(d[name])
        del chunk
    if count <= 0:
        return None
    indices = [min(int(q * count), count - 1) for q in qs]
    picked = {name: _pick(list(values), indices) for name, (_, values) in zip(_PLAIN, plain, strict=True)}
    picked.update((name, _pick(list(values), indices)) for name, values in derived)
    return {
        "quantiles": qs,
        "duration": picked["duration"],
        "executorDeserializeTime": picked["executorDeserializeTime"],
        "executorDeserializeCpuTime": picked["executorDeserializeCpuTime"],
        "executorRunTime": picked["executorRunTime"],
        "executorCpuTime": picked["executorCpuTime"],
        "resultSize": picked["resultSize"],
        "jvmGcTime": picked["jvmGcTime"],
        "resultSerializationTime": picked["resultSerializationTime"],
        "gettingResultTime": picked["grt"],
        "schedulerDelay": picked["sched"],
        "peakExecutionMemory": picked["peakExecutionMemory"],
        "memoryBytesSpilled": picked["memoryBytesSpilled"],
        "diskBytesSpilled": picked["diskBytesSpilled"],
        "inputMetrics": {"bytesRead": picked["in.bytesRead"], "recordsRead": picked["in.recordsRead"]},
        "outputMetrics": {"bytesWritten": picked["out.bytesWritten"], "recordsWritten": picked["out.recordsWritten"]},
        "shuffleReadMetrics": {
            "readBytes": picked["reads"],
            "readRecords": picked["sr.recordsRead"],
            "remoteBlocksFetched": picked["sr.remoteBlocksFetched"],
            "localBlocksFetched": picked["sr.localBlocksFetched"],
            "fetchWaitTime": picked["sr.fetchWaitTime"],
            "remoteBytesRead": picked["sr.remoteBytesRead"],
            "remoteBytesReadToDisk": picked["sr.remoteBytesReadToDisk"],
            "totalBlocksFetched": picked["blocks"],
            "remoteReqsDuration": picked["sr.remoteReqsDuration"],
            "shufflePushReadMetricsDist": {name: picked["push." + name] for name in _PUSH},
        },
        "shuffleWriteMetrics": {"writeBytes": picked["sw.bytesWritten"], "writeRecords": picked["sw.recordsWritten"],
                                "writeTime": picked["sw.writeTime"]},
    }


# ---------------------------------------------------------------------------------- executors
def _executors(state: AppState, active_only: bool) -> list[dict[str, Any]]:
    if active_only:
        chosen = sorted((x for x in state.executors.values() if x.is_active),
                        key=lambda x: x.executor_id, reverse=True)
    else:
        chosen = sorted(state.executors.values(), key=lambda x: x.executor_id)
    return [views.executor(x, state) for x in chosen if x.executor_id != "fallback"]


# ---------------------------------------------------------------------------------- storage
def _storage(state: AppState, tail: list[str]) -> Any:
    if not tail:
        return [views.rdd(r, state) for _, r in sorted(state.rdds.items()) if r.partitions]
    if len(tail) == 1:
        rdd_id = _int_segment(tail[0])
        rdd = state.rdds.get(rdd_id)
        if rdd is None:
            raise NotFound(f"no rdd found w/ id {rdd_id}")
        return views.rdd(rdd, state)
    raise NotFound(f"unknown resource storage/rdd/{'/'.join(tail)}")


# ---------------------------------------------------------------------------------- sql
def _now_ms() -> int:
    return int(time.time() * 1000)


def _sql(state: AppState, tail: list[str], query: QueryParams) -> Any:
    details = params.boolean(query, "details", True)
    plan = params.boolean(query, "planDescription", True)
    now = _now_ms()
    if not tail:
        offset = params.integer(query, "offset", 0)
        executions = [x for _, x in sorted(state.executions.items()) if x.submission_time != -1 or x.jobs]
        if releases.sql_list_pages_only_with_a_length():
            # 4.2+: length defaults to -1, and a length <= 0 is the whole list (offset ignored)
            length = params.integer(query, "length", -1)
            if length > 0:
                executions = executions[max(offset, 0):max(offset, 0) + length]
        else:
            # 4.0.1's SqlResource pages with offset/length (default 20) through KVStoreView.max,
            # which rejects a length <= 0: the SHS answers those with a 500 page.
            length = params.integer(query, "length", 20)
            if length <= 0:
                raise JerseyServerError(f"sql length must be positive, got {length}")
            executions = executions[max(offset, 0):max(offset, 0) + length]
        return [views.execution(x, details, plan, now) for x in executions]
    if len(tail) == 1:
        execution_id = _int_segment(tail[0], bits=64)
        x = state.executions.get(execution_id)
        if x is None:
            raise NotFound(f"unknown query execution id: {execution_id}")
        return views.execution(x, details, plan, now)
    raise NotFound(f"unknown resource sql/{'/'.join(tail)}")

