"""Split an :class:`AppState` into a task-free summary and task groups, and merge them back.

The snapshot store keeps each part as its own section (:mod:`sparkhist.store.snapshots`),
so a request that needs no task (``/jobs``, ``/stages``, executors, SQL...) loads only
the summary, and one that needs a stage's tasks loads only the groups holding them.

* The **summary** is a shallow copy of the state without ``tasks`` and with every
  stage's ``task_ids`` emptied (task ids belong to the groups: a 200,000-task stage
  must not weigh on ``/jobs``). The sets of completed task indices of stages and jobs
  (as big as the tasks) are replaced by their sizes, all the API shows of them.
* The **indices** are those sets, and the own order of the chunked stage attempts whose
  task ids are not ascending: only the writer needs them, to continue a log.
* A **task group** is a list of ``(stage key, task ids, {task id: Task})`` for
  consecutive stage attempts, cut at about :data:`GROUP_TASKS` tasks. A bigger stage
  attempt is *chunked*: cut into groups of its own of at most :data:`GROUP_TASKS` tasks,
  in task id order (``taskList``'s default order), with a :class:`StageIndex` (its
  tasks' statuses and their order by run time, a few bytes per task) so a page of
  any order loads only the chunks holding it. Tasks no stage lists (their stage was
  replaced) form a last group under the key ``None``: never served, kept for resuming a log.

``merge`` puts the groups back into a summary: the result equals the original state
(what the writer needs to continue an in-progress log).
"""

from __future__ import annotations

import copy
import dataclasses
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from sparkhist.state.app_state import AppState
from sparkhist.state.entities import M, Stage, Task
from sparkhist.state.summaries import stored

__all__ = ["GROUP_TASKS", "STATUS_CODES", "IndexCount", "Indices", "StageIndex", "StageKey", "StageTasks",
           "TaskGroup", "merge", "split", "stage_tasks_in_memory"]

GROUP_TASKS = 1024

StageKey = tuple[int, int]
#: One section's content: per stage attempt (None for tasks no stage lists) its task ids and tasks.
TaskGroup = list[tuple[StageKey | None, list[int], dict[int, Task]]]
#: The completed task indices of every stage attempt and job, and the own task order of
#: the chunked stage attempts whose ids are not ascending.
Indices = tuple[dict[StageKey, set[int]], dict[int, set[int]], dict[StageKey, list[int]]]
#: How the API asks for the tasks of one stage attempt (in the stage's own order).
TasksOf = Callable[[Stage], list[Task]]
#: A task's status as one byte of :attr:`StageIndex.statuses`.
STATUS_CODES = {"RUNNING": 0, "GET RESULT": 1, "FAILED": 2, "KILLED": 3, "SUCCESS": 4}


@dataclasses.dataclass(slots=True)
class StageIndex:
    """Pages a chunked stage attempt: positions are those of its tasks in task id order."""

    key: StageKey
    #: Positions sorted by (stored run time, task id): ``sortBy=runtime``; reversed, ``-runtime``.
    by_runtime: array  # type: ignore[type-arg]
    statuses: bytes  # the STATUS_CODES of each position


def stage_index(key: StageKey, tasks: list[Task]) -> StageIndex:
    """The index of a stage attempt's ``tasks`` (in task id order), as ``_ordered_tasks`` sorts them:
    by (stored run time, task id), which is by stored run time in a stable sort of positions that
    are in task id order. Each task's status is taken once (a property: the snapshot of a big stage
    is written while a request waits) and handed to :func:`~sparkhist.state.summaries.stored`."""
    run = M["executorRunTime"]
    codes = [STATUS_CODES[t.status] for t in tasks]
    success = STATUS_CODES["SUCCESS"]
    runs = [stored(t, run, code == success) for t, code in zip(tasks, codes, strict=True)]
    order = sorted(range(len(tasks)), key=runs.__getitem__)
    return StageIndex(key, array("i", order), bytes(codes))


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


def _count_of(indices: set[int]) -> set[int]:
    """An :class:`IndexCount` where the entities declare a set: a summary is only ever
    asked for ``len()`` of it, and :func:`merge` puts the real set back."""
    return cast("set[int]", IndexCount(len(indices)))


def split(state: AppState) -> tuple[AppState, list[TaskGroup], Indices, list[StageIndex]]:
    """The task-free summary, the task groups, the indices and the indexes of the chunked
    stage attempts (whose groups hold one stage each); ``state`` itself is left untouched."""
    summary = copy.copy(state)
    summary.tasks = {}
    summary.stages = {key: dataclasses.replace(st, task_ids=[], completed_indices=_count_of(st.completed_indices))
                      for key, st in state.stages.items()}
    summary.jobs = {key: dataclasses.replace(job, completed_indices=_count_of(job.completed_indices))
                    for key, job in state.jobs.items()}
    orders: dict[StageKey, list[int]] = {}
    indices: Indices = ({key: st.completed_indices for key, st in state.stages.items()},
                        {key: job.completed_indices for key, job in state.jobs.items()}, orders)
    tasks = state.tasks
    groups: list[TaskGroup] = []
    indexes: list[StageIndex] = []
    current: TaskGroup = []
    count = 0
    listed: set[int] = set()
    for key in sorted(state.stages):
        ids = state.stages[key].task_ids
        if not ids:
            continue
        own = {t: tasks[t] for t in ids if t in tasks}
        listed.update(own)
        if len(own) > GROUP_TASKS:  # chunked, in task id order
            if current:
                groups.append(current)
                current, count = [], 0
            ordered = sorted(own)
            if ordered != ids:
                orders[key] = list(ids)
            for start in range(0, len(ordered), GROUP_TASKS):
                chunk = ordered[start:start + GROUP_TASKS]
                groups.append([(key, chunk, {t: own[t] for t in chunk})])
            indexes.append(stage_index(key, [own[t] for t in ordered]))
            continue
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
    return summary, groups, indices, indexes


def group_tasks(group: TaskGroup) -> int:
    return sum(len(tasks) for _, _, tasks in group)


def merge(summary: AppState, groups: Iterable[TaskGroup], indices: Indices) -> AppState:
    """Put the task groups and indices back into ``summary`` (in place); returns it."""
    stage_indices, job_indices, orders = indices
    for stage_key, st in summary.stages.items():
        st.completed_indices = stage_indices.get(stage_key, set())
    for job_id, job in summary.jobs.items():
        job.completed_indices = job_indices.get(job_id, set())
    tasks: dict[int, Task] = {}
    ids_of: dict[StageKey, list[int]] = {}
    for group in groups:
        for key, ids, own in group:
            for task_id, task in own.items():
                tasks.setdefault(task_id, task)
            if key is not None and key in summary.stages:
                if key in ids_of:  # the next chunk of a chunked stage
                    ids_of[key] = ids_of[key] + ids
                else:
                    ids_of[key] = ids
    for key, ids in ids_of.items():
        summary.stages[key].task_ids = orders.get(key, ids)
    summary.tasks = tasks
    return summary


def tasks_of_group(group: TaskGroup, key: StageKey) -> list[Task]:
    """The tasks of stage attempt ``key`` held by ``group``, in the stage's order."""
    for k, ids, own in group:
        if k == key:
            return [own[t] for t in ids if t in own]
    return []


class StageTasks:
    """How the API reads the tasks of a stage attempt: all at once, chunk by chunk, or a page.

    This one wraps a :data:`TasksOf`; a snapshot's task loader overrides the methods to
    load only the task sections a request needs.
    """

    def __init__(self, tasks_of: TasksOf) -> None:
        self.tasks_of = tasks_of

    def all(self, st: Stage) -> list[Task]:
        """Every task, in the stage's own order."""
        return self.tasks_of(st)

    def chunks(self, st: Stage, reverse: bool = False) -> Iterator[list[Task]]:
        """Every task, a chunk at a time (each released when the next is asked for); the
        chunks cover disjoint ranges of task ids, ascending (descending when ``reverse``),
        and the tasks inside one are in no promised order."""
        yield self.all(st)

    def page(self, st: Stage, sort_by: str, statuses: set[str] | None, offset: int,
             length: int) -> list[Task] | None:
        """``taskList``'s page when it can be read without every task, else None (the
        caller sorts ``all``). ``sort_by`` is ID, INCREASING_RUNTIME or DECREASING_RUNTIME."""
        return None

    def at(self, st: Stage, positions: list[int]) -> list[Task]:
        """The tasks at ``positions`` (ranks in task id order), in that order."""
        ordered = sorted(self.all(st), key=lambda t: t.task_id)
        return [ordered[p] for p in positions]


def stage_tasks_in_memory(state: AppState) -> TasksOf:
    """The accessor for a state that holds all its tasks."""
    def tasks_of(st: Stage) -> list[Task]:
        return [state.tasks[t] for t in st.task_ids if t in state.tasks]
    return tasks_of
