"""``AppStatusListener``, second half: jobs, stages and tasks.

Keeps each job's and stage attempt's counters, each task, and what tasks add up to on
their stage (metrics, per-executor summaries, peaks) and on their executor. ``TaskEnd``
is the hottest handler of all (one call per task): its lookups are bound to locals.
The SQL side of these events is :mod:`~sparkhist.state.sql_listener`'s, their RDDs
:mod:`~sparkhist.state.storage_listener`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sparkhist.state import events as ev
from sparkhist.state import retention
from sparkhist.state.entities import N_METRICS, IdSet, Job, M, Speculation, Stage, Task, add_metrics, update_peaks

if TYPE_CHECKING:
    from collections.abc import Callable

    from sparkhist.state.app_state import AppState, Handler

    #: ``sparkhist_native.add_task_end(stage_metrics, summary_metrics, delta, peaks, stage_peaks,
    #: summary_peaks, executor_peaks)``: True when done, False when left to the Python functions.
    TaskSums = Callable[[list[int], list[int], list[int] | None, list[int] | None, list[int], list[int],
                         list[int] | None], bool]

__all__ = ["HANDLERS"]

_JVM_GC_TIME, _IN_BYTES_READ = M["jvmGcTime"], M["in.bytesRead"]
_SR_LOCAL_BYTES_READ, _SR_REMOTE_BYTES_READ = M["sr.localBytesRead"], M["sr.remoteBytesRead"]
_SW_BYTES_WRITTEN = M["sw.bytesWritten"]


# --------------------------------------------------------------------------- jobs and stages
def _get_or_create_stage(s: AppState, si: dict[str, Any]) -> Stage:
    info = ev.stage_info(si)
    key = (info.stage_id, info.attempt_id)
    st = s.stages.get(key)
    if st is None or not st.live:
        st = Stage(info)
        s.stages[key] = st
    else:
        st.info = info
    return st


def _stage_jobs(s: AppState, st: Stage) -> list[Job]:
    return [s.jobs[j] for j in st.job_ids if j in s.jobs]


def _job_start(s: AppState, e: dict[str, Any]) -> None:
    props = e.get("Properties") or {}
    infos = e.get("Stage Infos") or []
    num_tasks = sum(si.get("Number of Tasks", 0) for si in infos if si.get("Completion Time") is None)
    last = max(infos, key=lambda si: si.get("Stage ID", 0)) if infos else None
    sql_id = props.get("spark.sql.execution.id")
    tags_text = props.get("spark.job.tags")
    tags = sorted({t for t in tags_text.split(",") if t}) if tags_text else []
    job_id = e.get("Job ID", 0)
    time = e.get("Submission Time")
    job = Job(
        job_id=job_id,
        name=last.get("Stage Name", "") if last else "",
        description=props.get("spark.job.description"),
        submission_time=time if time is not None and time > 0 else None,
        stage_ids=list(e.get("Stage IDs") or [si.get("Stage ID") for si in infos]),
        job_group=props.get("spark.jobGroup.id"),
        job_tags=tags,
        num_tasks=num_tasks,
        sql_execution_id=int(sql_id) if sql_id is not None else None,
    )
    s.jobs[job_id] = job
    s.live_jobs.add(job_id)
    for si in infos:
        st = _get_or_create_stage(s, si)
        st.job_ids.add(job_id)


def _job_end(s: AppState, e: dict[str, Any]) -> None:
    job_id = e.get("Job ID", 0)
    if job_id not in s.live_jobs:
        return
    s.live_jobs.discard(job_id)
    job = s.jobs[job_id]
    for key, st in s.stages.items():
        if st.live and key[0] in job.stage_ids and st.status == "PENDING":
            st.status = "SKIPPED"
            job.skipped_stages.add(key[0])
            job.skipped_tasks += st.info.num_tasks
            st.live = False
    result = (e.get("Job Result") or {}).get("Result", "JobSucceeded")
    job.status = "SUCCEEDED" if result == "JobSucceeded" else "FAILED"
    time = e.get("Completion Time")
    job.completion_time = time if time is not None and time > 0 else None
    retention.cleanup_jobs(s)
    retention.cleanup_stages(s)


def _stage_submitted(s: AppState, e: dict[str, Any]) -> None:
    props = e.get("Properties") or {}
    st = _get_or_create_stage(s, e.get("Stage Info") or {})
    st.status = "ACTIVE"
    st.scheduling_pool = props.get("spark.scheduler.pool", "default")
    st.job_ids = {j for j in s.live_jobs if st.info.stage_id in s.jobs[j].stage_ids}
    st.description = props.get("spark.job.description")
    for job in _stage_jobs(s, st):
        job.completed_stages.discard(st.info.stage_id)
        job.active_stages += 1


def _stage_completed(s: AppState, e: dict[str, Any]) -> None:
    si = e.get("Stage Info") or {}
    key = (si.get("Stage ID", 0), si.get("Stage Attempt ID", 0) or 0)
    st = s.live_stage(*key)
    if st is not None:
        st.info = ev.stage_info(si)
        if st.info.failure_reason is not None:
            st.status = "FAILED"
        elif st.info.submission_time is not None:
            st.status = "COMPLETE"
        else:
            st.status = "SKIPPED"
        for job in _stage_jobs(s, st):
            if st.status == "COMPLETE":
                job.completed_stages.add(key[0])
            elif st.status == "SKIPPED":
                job.skipped_stages.add(key[0])
                job.skipped_tasks += st.info.num_tasks
            else:
                job.failed_stages += 1
            job.active_stages -= 1
        for executor_id in st.excluded_executors:
            ex = s.live_executor(executor_id)
            if ex is not None:
                ex.excluded_in_stages.discard(key[0])
        if st.active_tasks == 0:
            st.live = False
            retention.cleanup_stages(s)
    # An executor retention already dropped is no longer tracked (checked first: no KeyError).
    s.dead_in_live_stages = IdSet(
        x for x in s.dead_in_live_stages
        if x in s.executors and any(st.live and (st.info.submission_time or 0) < (s.executors[x].remove_time or 0)
                                    for st in s.stages.values()))


def _stage_executor_metrics(s: AppState, e: dict[str, Any]) -> None:
    peaks = ev.executor_metrics(e.get("Executor Metrics"))
    executor_id = e.get("Executor ID", "")
    ex = s.executors.get(executor_id)
    if ex is not None and (ex.is_active or executor_id in s.dead_in_live_stages):
        update_peaks(ex.peaks, peaks)
    st = s.live_stage(e.get("Stage ID", 0), e.get("Stage Attempt ID", 0) or 0)
    if st is not None:
        update_peaks(st.peaks, peaks)
        update_peaks(st.executor_summary(executor_id).peaks, peaks)


def _executor_metrics_update(s: AppState, e: dict[str, Any]) -> None:
    """``onExecutorMetricsUpdate``: a heartbeat's per-task accumulator updates become the running
    tasks' metrics (their stage's and its executor summary's by the change), and its per-stage
    peaks raise the live executor's, the stage's and the stage's executor summary's."""
    executor_id = e.get("Executor ID", "")
    tasks, stage_peaks = ev.executor_metrics_update(e)
    for task_id, stage_id, attempt, _accums, metrics in tasks:
        task = s.tasks.get(task_id)
        if task is None or task.finished:  # not one of liveTasks
            continue
        delta = metrics if task.metrics is None else add_metrics(metrics, task.metrics, -1)
        task.metrics = metrics
        st = s.live_stage(stage_id, attempt)
        if st is not None:
            st.metrics = add_metrics(st.metrics, delta)
            esum = st.executor_summary(executor_id)
            esum.metrics = add_metrics(esum.metrics, delta)
    for (stage_id, attempt), peaks in stage_peaks.items():
        ex = s.live_executor(executor_id)
        if ex is not None:
            update_peaks(ex.peaks, peaks)
        st = s.live_stage(stage_id, attempt)
        if st is not None:
            update_peaks(st.peaks, peaks)
            update_peaks(st.executor_summary(executor_id).peaks, peaks)


# --------------------------------------------------------------------------- tasks
def _task_start(s: AppState, e: dict[str, Any]) -> None:
    ti = e.get("Task Info") or {}
    tg = ti.get
    stage_id, attempt = e.get("Stage ID", 0), e.get("Stage Attempt ID", 0) or 0
    partition_id = tg("Partition ID")
    task = Task(
        tg("Task ID", 0), tg("Index", 0), tg("Attempt", 0),
        partition_id if partition_id is not None else -1,
        tg("Launch Time", 0), tg("Executor ID", ""), tg("Host", ""), tg("Locality", ""),
        bool(tg("Speculative", False)), stage_id, attempt,
        accumulables=ev.accumulables(tg("Accumulables")))
    start_task(s, task)


def start_task(s: AppState, task: Task) -> None:
    """A started task counted in its stage, jobs and executor (the compiled path's seam calls it too)."""
    task_id, executor_id, stage_id, attempt = task.task_id, task.executor_id, task.stage_id, task.stage_attempt
    s.tasks[task_id] = task
    st = s.live_stage(stage_id, attempt)
    if st is not None:
        if task.speculative:
            if st.speculation is None:
                st.speculation = Speculation()
            st.speculation.num_active += 1
            st.speculation.num_tasks += 1
        st.active_tasks += 1
        if st.first_launch_time is None or task.launch_time < st.first_launch_time:
            st.first_launch_time = task.launch_time
        per_executor = st.active_per_executor
        per_executor[executor_id] = per_executor.get(executor_id, 0) + 1
        jobs = s.jobs
        for job_id in st.job_ids:
            job = jobs.get(job_id)
            if job is not None:
                job.active_tasks += 1
        st.task_ids.append(task_id)
        if len(st.task_ids) > s.retained_tasks:
            retention.cleanup_tasks(s, st)  # over Spark's savedTasks limit (a no-op otherwise)
    ex = s.executors.get(executor_id)
    if ex is not None and ex.is_active:
        ex.active_tasks += 1
        ex.total_tasks += 1


def _task_getting_result(s: AppState, e: dict[str, Any]) -> None:
    ti = e.get("Task Info") or {}
    task = s.tasks.get(ti.get("Task ID", -1))
    if task is not None and not task.finished:
        task.getting_result_time = ti.get("Getting Result Time", 0) or 0


def _task_end(s: AppState, e: dict[str, Any]) -> None:
    # The hottest handler (one call per task): lookups are bound to locals.
    ti = e.get("Task Info")
    if ti is None:
        return
    tg = ti.get
    stage_id, attempt = e.get("Stage ID", 0), e.get("Stage Attempt ID", 0) or 0
    kind, message = ev.end_reason(e.get("Task End Reason"))
    task = s.tasks.get(tg("Task ID", 0))
    # JsonProtocol.taskMetricsFromJson(null) is TaskMetrics.empty (4.0.1): a TaskEnd logged
    # without "Task Metrics" (FetchFailed, ExecutorLostFailure, ...) replays as all zeros.
    new_metrics = ev.task_metrics(e.get("Task Metrics")) or [0] * N_METRICS
    delta: list[int] | None = None
    finish = tg("Finish Time", 0) or 0
    launch = tg("Launch Time", 0)
    duration = finish - launch if finish != 0 else 0
    if task is not None and not task.finished:
        task.launch_time = launch
        task.getting_result_time = tg("Getting Result Time", 0) or 0
        task.finish_time = finish
        task.failed = bool(tg("Failed", False))
        task.killed = bool(tg("Killed", False))
        task.executor_id = tg("Executor ID", task.executor_id)
        task.host = tg("Host", task.host)
        task.locality = tg("Locality", task.locality)
        task.speculative = bool(tg("Speculative", task.speculative))
        partition_id = tg("Partition ID")
        if partition_id is not None:
            task.partition_id = partition_id
        task.accumulables = ev.accumulables(tg("Accumulables"))
        task.error_message = message
        delta = new_metrics if task.metrics is None else add_metrics(new_metrics, task.metrics, -1)
        task.metrics = new_metrics
    end_task(s, stage_id, attempt, tg("Index", 0), kind, message, tg("Executor ID", ""), bool(tg("Speculative", False)),
             ev.executor_metrics(e.get("Task Executor Metrics")), new_metrics, delta, duration)


def end_task(s: AppState, stage_id: int, attempt: int, index: int, kind: str, message: str | None, executor_id: str,
             speculative: bool, peaks: list[int] | None, new_metrics: list[int], delta: list[int] | None,
             duration: int, sums: TaskSums | None = None) -> None:
    """An ended task counted in its stage, jobs and executor, ``delta`` (its metrics less those
    counted before, None: not counted again) added to them (the compiled path's seam calls it too,
    with ``sums``: the compiled module's in-place ``add_metrics``/``update_peaks`` of the stage, its
    executor summary and the executor, which may decline: the Python functions then)."""
    completed = 1 if kind == "Success" else 0
    killed = 1 if kind in ("TaskKilled", "TaskCommitDenied") else 0
    failed = 1 - completed - killed
    active = 0 if kind == "Resubmitted" else 1
    st = s.live_stage(stage_id, attempt)
    ex = s.executors.get(executor_id)
    if ex is not None and not ex.is_active:
        ex = None
    summed = False  # the executor's peaks raised with the stage's
    if st is not None:
        esum = st.executor_summary(executor_id)
        summed = sums is not None and sums(st.metrics, esum.metrics, delta, peaks, st.peaks, esum.peaks,
                                           None if ex is None else ex.peaks)
        if not summed:
            if delta is not None:
                st.metrics = add_metrics(st.metrics, delta)
                esum.metrics = add_metrics(esum.metrics, delta)
            update_peaks(st.peaks, peaks)
            update_peaks(esum.peaks, peaks)
        st.active_tasks -= active
        st.completed_tasks += completed
        if completed:
            st.completed_indices.add(index)
        st.failed_tasks += failed
        st.killed_tasks += killed
        if killed:
            st.killed_summary[message or ""] = st.killed_summary.get(message or "", 0) + 1
        per_executor = st.active_per_executor
        per_executor[executor_id] = per_executor.get(executor_id, 0) - active
        remove = st.active_tasks == 0 and st.status in ("COMPLETE", "FAILED")
        jobs = s.jobs
        for job_id in st.job_ids:
            job = jobs.get(job_id)
            if job is None:
                continue
            job.active_tasks -= active
            job.completed_tasks += completed
            if completed:
                job.completed_indices.add((stage_id << 32) | index)
            job.failed_tasks += failed
            job.killed_tasks += killed
            if killed:
                job.killed_summary[message or ""] = job.killed_summary.get(message or "", 0) + 1
        esum.task_time += duration
        esum.succeeded_tasks += completed
        esum.failed_tasks += failed
        esum.killed_tasks += killed
        if st.speculation is not None and speculative:
            st.speculation.num_active -= 1
            st.speculation.num_completed += completed
            st.speculation.num_failed += failed
            st.speculation.num_killed += killed
        if len(st.task_ids) > s.retained_tasks:
            retention.cleanup_tasks(s, st)  # at a task's end too (AppStatusListener.onTaskEnd)
        if remove:
            st.live = False
            retention.cleanup_stages(s)
    if ex is not None:
        ex.active_tasks -= active
        ex.completed_tasks += completed
        ex.failed_tasks += failed
        ex.total_duration += duration
        if not summed:
            update_peaks(ex.peaks, peaks)
        if kind != "Resubmitted":
            ex.total_gc_time += new_metrics[_JVM_GC_TIME]
            ex.total_input_bytes += new_metrics[_IN_BYTES_READ]
            ex.total_shuffle_read += new_metrics[_SR_LOCAL_BYTES_READ] + new_metrics[_SR_REMOTE_BYTES_READ]
            ex.total_shuffle_write += new_metrics[_SW_BYTES_WRITTEN]


HANDLERS: dict[str, Handler] = {
    "SparkListenerJobStart": _job_start,
    "SparkListenerJobEnd": _job_end,
    "SparkListenerStageSubmitted": _stage_submitted,
    "SparkListenerStageCompleted": _stage_completed,
    "SparkListenerStageExecutorMetrics": _stage_executor_metrics,
    "SparkListenerExecutorMetricsUpdate": _executor_metrics_update,
    "SparkListenerTaskStart": _task_start,
    "SparkListenerTaskGettingResult": _task_getting_result,
    "SparkListenerTaskEnd": _task_end,
}
