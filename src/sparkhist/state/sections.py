"""Split an :class:`AppState` into a task-free summary and task groups, and merge them back.

The snapshot store keeps each part as its own section (:mod:`sparkhist.store.snapshots`),
so a request that needs no task (``/jobs``, ``/stages``, executors, SQL...) loads only
the summary, and one that needs a stage's tasks loads only the group holding them.

* The **summary** is a shallow copy of the state without ``tasks`` and with every
  stage's ``task_ids`` emptied (task ids belong to the groups: a 200,000-task stage
  must not weigh on ``/jobs``). The sets of completed task indices of stages and jobs
  (as big as the tasks) are replaced by their sizes, all the API shows of them.
* The **indices** are those sets: only the writer needs them, to continue a log.
* A **task group** is a list of ``(stage key, task ids, {task id: Task})`` for
  consecutive stage attempts, cut at about :data:`GROUP_TASKS` tasks (a bigger stage
  attempt is a group of its own). Tasks no stage lists (their stage was replaced)
  form a last group under the key ``None``: never served, kept for resuming a log.

``merge`` puts the groups back into a summary: the result equals the original state
(what the writer needs to continue an in-progress log).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from sparkhist.state.app_state import AppState
from sparkhist.state.entities import Stage, Task

__all__ = ["GROUP_TASKS", "IndexCount", "Indices", "StageKey", "TaskGroup", "merge", "split", "stage_tasks_in_memory"]

GROUP_TASKS = 1024

StageKey = tuple[int, int]
#: One section's content: per stage attempt (None for tasks no stage lists) its task ids and tasks.
TaskGroup = list[tuple[StageKey | None, list[int], dict[int, Task]]]
#: The completed task indices of every stage attempt and job.
Indices = tuple[dict[StageKey, set[int]], dict[int, set[int]]]
#: How the API asks for the tasks of one stage attempt (in the stage's own order).
TasksOf = Callable[[Stage], list[Task]]


def splittable(state: Any) -> bool:
    return isinstance(state, AppState)


class IndexCount:
    """Stands for a set of completed indices in a summary: its size, all ``len()`` needs."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return (IndexCount, (self.n,))


def split(state: AppState) -> tuple[AppState, list[TaskGroup], Indices]:
    """The task-free summary, the task groups and the indices; ``state`` itself is left untouched."""
    summary = copy.copy(state)
    summary.__dict__.pop("_pickled_bytes", None)  # load-time annotations, not state
    summary.__dict__.pop("_layout", None)
    summary.tasks = {}
    summary.stages = {key: dataclasses.replace(st, task_ids=[], completed_indices=IndexCount(len(st.completed_indices)))
                      for key, st in state.stages.items()}
    summary.jobs = {key: dataclasses.replace(job, completed_indices=IndexCount(len(job.completed_indices)))
                    for key, job in state.jobs.items()}
    indices: Indices = ({key: st.completed_indices for key, st in state.stages.items()},
                        {key: job.completed_indices for key, job in state.jobs.items()})
    tasks = state.tasks
    groups: list[TaskGroup] = []
    current: TaskGroup = []
    count = 0
    listed: set[int] = set()
    for key in sorted(state.stages):
        ids = state.stages[key].task_ids
        if not ids:
            continue
        own = {t: tasks[t] for t in ids if t in tasks}
        listed.update(own)
        if current and count + len(own) > GROUP_TASKS:
            groups.append(current)
            current, count = [], 0
        current.append((key, list(ids), own))
        count += len(own)
    if current:
        groups.append(current)
    orphans = {t: task for t, task in tasks.items() if t not in listed}
    if orphans:
        groups.append([(None, [], orphans)])
    return summary, groups, indices


def group_keys(group: TaskGroup) -> Iterable[StageKey | None]:
    return (key for key, _, _ in group)


def group_tasks(group: TaskGroup) -> int:
    return sum(len(tasks) for _, _, tasks in group)


def merge(summary: AppState, groups: Iterable[TaskGroup], indices: Indices) -> AppState:
    """Put the task groups and indices back into ``summary`` (in place); returns it."""
    stage_indices, job_indices = indices
    for key, st in summary.stages.items():
        st.completed_indices = stage_indices.get(key, set())
    for key, job in summary.jobs.items():
        job.completed_indices = job_indices.get(key, set())
    tasks: dict[int, Task] = {}
    for group in groups:
        for key, ids, own in group:
            for task_id, task in own.items():
                tasks.setdefault(task_id, task)
            if key is not None and key in summary.stages:
                summary.stages[key].task_ids = ids
    summary.tasks = tasks
    return summary


def tasks_of_group(group: TaskGroup, key: StageKey) -> list[Task]:
    """The tasks of stage attempt ``key`` held by ``group``, in the stage's order."""
    for k, ids, own in group:
        if k == key:
            return [own[t] for t in ids if t in own]
    return []


def stage_tasks_in_memory(state: AppState) -> TasksOf:
    """The accessor for a state that holds all its tasks."""
    def tasks_of(st: Stage) -> list[Task]:
        return [state.tasks[t] for t in st.task_ids if t in state.tasks]
    return tasks_of
