"""A chunked stage attempt's index (``sections.stage_index``): positions in the order
``taskList`` sorts by run time (stored run time, then task id) and each task's status code,
for tasks of every status, with and without metrics, run times tied and negative."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sparkhist.state import sections
from sparkhist.state.entities import N_METRICS, Task
from sparkhist.state.summaries import stored
from support.fuzz import fuzz_settings

RUN = sections.M["executorRunTime"]


@st.composite
def _tasks(draw: st.DrawFn) -> list[Task]:
    ids = sorted(draw(st.sets(st.integers(0, 10_000), max_size=40)))
    tasks = []
    for task_id in ids:
        task = Task(task_id, task_id % 7, 0, 0, 1, "1", "h", "PROCESS_LOCAL", False, 3, 0)
        task.finish_time = draw(st.sampled_from([0, 5]))
        task.getting_result_time = draw(st.sampled_from([0, 2]))
        task.failed, task.killed = draw(st.booleans()), draw(st.booleans())
        if draw(st.booleans()):
            metrics = [0] * N_METRICS
            metrics[RUN] = draw(st.integers(-3, 3) | st.integers(-(1 << 63), (1 << 63) - 1))
            task.metrics = metrics
        tasks.append(task)
    return tasks


@fuzz_settings(300)
@given(tasks=_tasks())
def test_a_stage_index_orders_by_stored_run_time_then_task_id(tasks: list[Task]) -> None:
    index = sections.stage_index((3, 0), tasks)
    want = sorted(range(len(tasks)), key=lambda p: (stored(tasks[p], RUN), tasks[p].task_id))
    assert list(index.by_runtime) == want
    assert index.statuses == bytes(sections.STATUS_CODES[t.status] for t in tasks)
    assert index.key == (3, 0)
