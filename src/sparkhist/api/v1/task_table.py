"""The stage page's ``taskTable`` (DataTables; UI-internal): pages of a stage attempt's tasks
in the order of one column, without sorting every task per request.

The first request for a stage attempt reads its tasks once, chunk by chunk, and keeps the
order of each sortable column as the positions of the tasks (their ranks in task id order,
:meth:`~sparkhist.state.sections.StageTasks.at`): a page is then a slice of that order and
the few tasks in it, read from the chunks holding them. Descending is the ascending order
reversed (ties go by task id, reversed with it, as a sort with ``reverse=True`` gives).

The orders are kept per state object (a new state, such as a grown log's, starts afresh)
and per stage attempt with the counters that change when its tasks do, at most
:data:`KEPT` stage attempts at a time (least recently used out first).
"""

from __future__ import annotations

import threading
import weakref
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparkhist.api.v1 import params
from sparkhist.api.v1.params import QueryParams
from sparkhist.render import views
from sparkhist.state.app_state import AppState
from sparkhist.state.entities import Stage, Task
from sparkhist.state.sections import StageTasks

__all__ = ["COLUMNS", "KEPT", "recording", "task_table"]

#: The sortable columns: name -> the sort key of a task.
COLUMNS: dict[str, Callable[[Task], Any]] = {
    "Index": lambda t: t.index, "ID": lambda t: t.task_id, "Attempt": lambda t: t.attempt,
    "Status": lambda t: t.status, "Locality Level": lambda t: t.locality,
    "Executor ID": lambda t: t.executor_id, "Host": lambda t: t.host,
    "Launch Time": lambda t: t.launch_time,
    "Duration": lambda t: t.finish_time - t.launch_time if t.finished else 0,
    "Errors": lambda t: t.error_message or "",
}
#: Stage attempts whose orders are kept: a 100,000-task one holds 14.8 MB (tracemalloc, a distinct
#: host string per task; 24.3 MB with the numbers in lists instead of arrays).
KEPT = 4


@dataclass
class _Orders:
    """One stage attempt's sort keys (read once) and the orders made from them so far."""

    state: weakref.ref[AppState]
    keys: dict[str, Sequence[Any]]  # column -> key of each task, by position
    ids: Sequence[int]  # task id of each position (ascending)
    orders: dict[str, array[int]] = field(default_factory=dict)

    def order(self, column: str) -> array[int]:
        found = self.orders.get(column)
        if found is None:
            keys, ids = self.keys[column], self.ids
            found = self.orders[column] = array("i", sorted(range(len(ids)), key=lambda p: (keys[p], ids[p])))
        return found


_kept: OrderedDict[tuple[Any, ...], _Orders] = OrderedDict()
_lock = threading.Lock()


def _stage_key(state: AppState, st: Stage) -> tuple[Any, ...]:
    return (id(state), st.info.stage_id, st.info.attempt_id, state.last_update_time, st.active_tasks,
            st.completed_tasks, st.failed_tasks, st.killed_tasks)


def _found(key: tuple[Any, ...], state: AppState) -> _Orders | None:
    with _lock:
        found = _kept.get(key)
        if found is not None and found.state() is state:
            _kept.move_to_end(key)
            return found
    return None


def _compact(values: list[Any]) -> Sequence[Any]:
    """Whole numbers as an array of longs (8 bytes each instead of a list of int objects)."""
    try:
        return array("q", values)
    except (TypeError, OverflowError):
        return values


def _keep(key: tuple[Any, ...], state: AppState, pairs: list[tuple[int, tuple[Any, ...]]]) -> _Orders:
    pairs.sort(key=lambda p: p[0])
    keys = {name: _compact([p[1][i] for p in pairs]) for i, name in enumerate(COLUMNS)}
    made = _Orders(weakref.ref(state), keys, _compact([p[0] for p in pairs]))
    with _lock:
        _kept[key] = made
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return made


def _row_keys(chunk: list[Task]) -> Iterator[tuple[int, tuple[Any, ...]]]:
    return ((t.task_id, tuple(k(t) for k in COLUMNS.values())) for t in chunk)


def _orders(state: AppState, tasks_of: StageTasks, st: Stage) -> _Orders:
    key = _stage_key(state, st)
    found = _found(key, state)
    if found is not None:
        return found
    pairs: list[tuple[int, tuple[Any, ...]]] = []
    for chunk in tasks_of.chunks(st):  # one chunk held at a time
        pairs.extend(_row_keys(chunk))
        del chunk
    return _keep(key, state, pairs)


def recording(state: AppState, st: Stage | None, chunks: Iterable[list[Task]]) -> Iterator[list[Task]]:
    """``chunks`` (every task of ``st``, as :meth:`StageTasks.chunks` gives them), passed on
    while the sort keys are taken from them: a request that reads every task anyway (the
    quantiles of ``taskSummary``) leaves the orders of the task table behind, so the stage
    page's tasks are read once, not once per answer. Kept only when every chunk was read."""
    if st is None or _found(_stage_key(state, st), state) is not None:
        yield from chunks
        return
    pairs: list[tuple[int, tuple[Any, ...]]] = []
    for chunk in chunks:
        pairs.extend(_row_keys(chunk))
        yield chunk
        del chunk
    _keep(_stage_key(state, st), state, pairs)


def task_table(state: AppState, tasks_of: StageTasks, st: Stage | None, query: QueryParams) -> dict[str, Any]:
    """``/stages/<id>/<attempt>/taskTable``: ``start``, ``length``, ``columnNameToSort``,
    ``order[0][dir]``, ``search[value]``, ``numTasks`` as the SHS's stage page sends them."""
    column = query.get("columnNameToSort") or "Index"
    if column not in COLUMNS:  # "Logs" and unknown names: the index order
        column = "Index"
    ascending = (query.get("order[0][dir]") or "asc").lower() == "asc"
    search = query.get("search[value]") or ""
    if st is None:
        orders = None
        count = 0
    else:
        orders = _orders(state, tasks_of, st)
        count = len(orders.ids)
    total = query.get("numTasks") or str(count)
    start = max(params.integer(query, "start", 0), 0)
    length = params.integer(query, "length", count)
    filtered = str(total)
    if orders is None or st is None:
        return {"aaData": [], "recordsTotal": total, "recordsFiltered": filtered}
    order = orders.order(column)
    if search:
        # Matching needs each task's record: every task is read (no index for a search).
        by_position = tasks_of.at(st, list(range(count)))
        needle = search.lower()
        sequence = order if ascending else reversed(order)
        matched = [by_position[p] for p in sequence if needle in str(views.task(by_position[p], state)).lower()]
        return {"aaData": [views.task(t, state) for t in matched[start:start + length] if length > 0],
                "recordsTotal": total, "recordsFiltered": str(len(matched))}
    if length <= 0:
        return {"aaData": [], "recordsTotal": total, "recordsFiltered": filtered}
    if ascending:
        positions = list(order[start:start + length])
    else:
        end = count - start
        positions = list(reversed(order[max(end - length, 0):max(end, 0)]))
    return {"aaData": [views.task(t, state) for t in tasks_of.at(st, positions)], "recordsTotal": total,
            "recordsFiltered": filtered}
