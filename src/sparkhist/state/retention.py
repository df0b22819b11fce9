"""Retention limits, as Spark's ``ElementTrackingStore`` triggers enforce them.

The limits are the server's (:class:`sparkhist.config.RetentionLimits`: its properties
file's ``spark.ui.retained*``, ``spark.sql.ui.retainedExecutions`` or the ``SPARKHIST_*``
variables), never the application's own properties: ``FsHistoryProvider.rebuildAppStore``
replays a log with the history server's ``SparkConf``. Each state takes them when it is
created (``AppState.retained_*``) and records them in its parse variant, so a store read
with other limits is read again. The listeners call these once an entity ends, so a long
application keeps only its most recent jobs, stages, tasks, dead executors and SQL
executions, like the real history server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparkhist.state.rdd_graph import forget_stage

if TYPE_CHECKING:
    from sparkhist.state.app_state import AppState
    from sparkhist.state.entities import Executor, Stage

__all__ = ["cleanup_executions", "cleanup_executors", "cleanup_jobs", "cleanup_stages", "cleanup_tasks",
           "remove_count"]


def remove_count(size: int, retained: int) -> int:
    """``calculateNumberToRemove``: at least a tenth of the limit, to reduce friction."""
    return max(retained // 10, size - retained) if size > retained else 0


def cleanup_jobs(state: AppState) -> None:
    done = [j for j in state.jobs.values() if j.status not in ("RUNNING", "UNKNOWN")]
    count = remove_count(len(state.jobs), state.retained_jobs)
    if count <= 0:
        return
    done.sort(key=lambda j: (j.completion_time if j.completion_time is not None else -1, j.job_id))
    for job in done[:count]:
        del state.jobs[job.job_id]


def cleanup_stages(state: AppState) -> None:
    """Drops the oldest ended stage attempts (skipped ones first), and their tasks.

    Spark counts the stages its store holds: replaying, a stage is written once it ends
    (completed, failed, or skipped at its job's end), not when its job or it starts, so the
    pending and active ones do not count."""
    candidates = [s for s in state.stages.values() if s.status not in ("ACTIVE", "PENDING")]
    count = remove_count(len(candidates), state.retained_stages)
    if count <= 0:
        return
    candidates.sort(key=lambda s: (s.info.completion_time if s.info.completion_time is not None else -1,
                                   s.info.stage_id, s.info.attempt_id))
    for st in candidates[:count]:
        del state.stages[(st.info.stage_id, st.info.attempt_id)]
        for tid in st.task_ids:
            state.tasks.pop(tid, None)
        forget_stage(state, st.info.stage_id)


def cleanup_tasks(state: AppState, st: Stage) -> None:
    """``cleanupTasks`` when the stage's ``savedTasks`` is over the limit: drops the tasks of
    ``st`` that ended first, checked at each task's start and end.

    ``savedTasks`` counts the tasks started, less those dropped; replaying, a task is in the
    store only once it ended, so a clean-up may find fewer ended tasks than it was to drop:
    Spark lowers ``savedTasks`` by the full count anyway (the running ones stay, uncounted)."""
    unsaved = getattr(st, "unsaved_tasks", 0)
    saved = len(st.task_ids) - unsaved
    if saved <= state.retained_tasks:
        return
    tasks = state.tasks
    count = remove_count(saved, state.retained_tasks)
    ended = [tasks[t] for t in st.task_ids if t in tasks and tasks[t].finished]
    ended.sort(key=lambda t: (t.finish_time, t.task_id))
    drop = {t.task_id for t in ended[:count]}
    for tid in drop:
        del tasks[tid]
    st.task_ids = [t for t in st.task_ids if t not in drop]
    st.unsaved_tasks = unsaved + count - len(drop)


def _written(executor: Executor) -> bool:
    """Whether a live executor is in Spark's store while a log is replayed: written when a task
    ended on it (``onTaskEnd`` once it has none running) or its peak metrics rose."""
    return executor.completed_tasks + executor.failed_tasks > 0 or executor.peaks[0] != -1


def cleanup_executors(state: AppState) -> None:
    """Drops dead executors (by id) beyond ``retained_dead_executors``.

    ``cleanupExecutors`` counts the dead ones as the executors in the store less every live
    one, written or not: live executors not written yet make it keep more dead ones."""
    executors = state.executors
    dead = [x for x in state.executor_order if not executors[x].is_active]
    unwritten = sum(1 for x in state.executor_order if executors[x].is_active and not _written(executors[x]))
    counted = len(dead) - unwritten
    if counted <= state.retained_dead_executors:
        return
    count = remove_count(counted, state.retained_dead_executors)
    for executor_id in sorted(dead)[:count]:
        del state.executors[executor_id]
        state.executor_order.remove(executor_id)


def cleanup_executions(state: AppState) -> None:
    """Drops the SQL executions that completed first, beyond ``retained_executions``."""
    count = len(state.executions) - state.retained_executions
    if count <= 0:
        return
    done = sorted((x for x in state.executions.values() if x.completion_time is not None),
                  key=lambda x: (x.completion_time, x.execution_id))
    for execution in done[:count]:
        del state.executions[execution.execution_id]
