"""Task events decoded by the compiled module, applied to the state without the event dict.

``TaskStart`` and ``TaskEnd`` are nearly every line of a big log, and their JSON is mostly
what the handlers decode (task metrics, accumulables, executor metrics). The optional
``sparkhist_native`` extension (``native/``, Rust) parses such a line and returns exactly
the values :mod:`~sparkhist.state.events` would decode from it, or None for anything not
of the usual shape (another event, a damaged line, a field of an unusual type): that line
then goes the Python way, :meth:`AppState.apply <sparkhist.state.app_state.AppState.apply>`,
which stays the reference. :func:`_task_start` and :func:`_task_end` below do what
``sql_listener`` and ``job_listener`` do with those values, in the same order; the
differential tests (``tests/state/test_native_tasks.py``) index every corpus both ways
and compare the states.

The compiled path is used when the module imports, the environment does not say
``SPARKHIST_NATIVE=0``, and the listeners' handlers of the two events are still the ones
mirrored here (another listener taking task events turns it off rather than being
skipped). :func:`fast_path` logs once which path runs.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from typing import Any

from sparkhist.state import job_listener, sql_listener
from sparkhist.state.app_state import LISTENERS, AppState
from sparkhist.state.entities import Task, add_metrics

__all__ = ["ABI", "FastPath", "fast_path", "native_decoder"]

log = logging.getLogger("sparkhist.index")

#: The tuple layout this module reads (``sparkhist_native.ABI``).
ABI = 2
_PREFIX = b'{"Event":"SparkListenerTask'
_MIRRORED = ("SparkListenerTaskStart", "SparkListenerTaskEnd")

#: Applies one raw line if it is a task event the compiled module decodes; False leaves
#: the line to the Python path.
FastPath = Callable[[AppState, bytes], bool]
Decoder = Callable[[bytes], tuple[Any, ...] | None]
#: ``record_sql_updates(updates, types, values, max_values, num_tasks, index, task_id)``.
Recorder = Callable[[Any, dict[int, str], dict[int, list[int]], dict[int, list[int]], int, int, int], None]


_chosen: tuple[FastPath | None, str] | None = None


def native_decoder() -> tuple[Decoder | None, str]:
    """``sparkhist_native.decode_task_event`` if it may be used, else None; and why."""
    if os.environ.get("SPARKHIST_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None, "SPARKHIST_NATIVE=0"
    try:
        module = importlib.import_module("sparkhist_native")
    except ImportError:
        return None, "the compiled module sparkhist_native is not installed (pip install ./native)"
    if getattr(module, "ABI", None) != ABI:
        return None, f"sparkhist_native has ABI {getattr(module, 'ABI', None)}, this version reads {ABI}"
    for name in _MIRRORED:
        handlers = [table[name] for table in LISTENERS if name in table]
        if handlers != [sql_listener.HANDLERS[name], job_listener.HANDLERS[name]]:
            return None, f"the listeners' {name} handlers are not the ones native_tasks mirrors"
    decoder: Decoder = module.decode_task_event
    return decoder, "sparkhist_native"


def fast_path() -> FastPath | None:
    """The compiled task-event path, or None (the Python path); decided and logged once."""
    global _chosen
    if _chosen is None:
        decoder, why = native_decoder()
        if decoder is None:
            log.info("indexing with the Python event path (%s)", why)
            _chosen = (None, why)
        else:
            log.info("indexing task events with the compiled module (sparkhist_native); SPARKHIST_NATIVE=0 turns it off")
            _chosen = (_make(decoder), why)
    return _chosen[0]


def _make(decode: Decoder) -> FastPath:
    # The module whose decoder this is records the SQL updates it decodes (``SqlUpdates``), and
    # sums a task's metrics and peaks into its stage's, executor summary's and executor's in place
    # (``add_task_end``; a build without it: the Python functions).
    module = importlib.import_module("sparkhist_native")
    record: Recorder = module.record_sql_updates
    sums: job_listener.TaskSums | None = getattr(module, "add_task_end", None)

    def apply(state: AppState, line: bytes) -> bool:
        if not line.startswith(_PREFIX):
            return False
        decoded = decode(line)
        if decoded is None:
            return False
        if decoded[0]:
            _task_end(state, decoded, record, sums)
        else:
            _task_start(state, decoded)
        return True
    return apply


def _is_sql_stage(s: AppState, stage_id: int) -> bool:
    """sql_listener._is_sql_stage, as a loop (no generator per task)."""
    for x in s.executions.values():
        if x.live and stage_id in x.stages:
            return True
    return False


# --------------------------------------------------------------------------- TaskStart
def _task_start(s: AppState, d: tuple[Any, ...]) -> None:
    (_, stage_id, attempt, task_id, index, attempt_no, partition_id, launch, executor_id, host, locality,
     speculative, accumulables) = d
    # sql_listener._task_start
    sm = s.stage_metrics.get(stage_id)
    if sm is not None and sm.attempt_id == attempt:
        sm.task_indices[task_id] = index
    # job_listener._task_start
    task = Task(task_id, index, attempt_no, partition_id if partition_id is not None else -1, launch, executor_id, host,
                locality, speculative, stage_id, attempt, accumulables=accumulables)
    job_listener.start_task(s, task)


# --------------------------------------------------------------------------- TaskEnd
def _task_end(s: AppState, d: tuple[Any, ...], record: Recorder, sums: job_listener.TaskSums | None) -> None:
    (_, stage_id, attempt, task_id, index, kind, message, new_metrics, finish, launch, getting_result, failed, killed,
     present, executor_id, host, locality, speculative, partition_id, accumulables, peaks, sql_updates) = d
    _sql_task_end(s, stage_id, attempt, task_id, index, finish, failed, killed, sql_updates, record)
    # job_listener._task_end
    task = s.tasks.get(task_id)
    delta: list[int] | None = None
    duration = finish - launch if finish != 0 else 0
    if task is not None and not task.finished:
        task.launch_time = launch
        task.getting_result_time = getting_result
        task.finish_time = finish
        task.failed = failed
        task.killed = killed
        if present & 1:
            task.executor_id = executor_id
        if present & 2:
            task.host = host
        if present & 4:
            task.locality = locality
        if present & 8:
            task.speculative = speculative
        if partition_id is not None:
            task.partition_id = partition_id
        task.accumulables = accumulables
        task.error_message = message
        delta = new_metrics if task.metrics is None else add_metrics(new_metrics, task.metrics, -1)
        task.metrics = new_metrics
    job_listener.end_task(s, stage_id, attempt, index, kind, message, executor_id, speculative, peaks, new_metrics, delta,
                          duration, sums)


def _sql_task_end(s: AppState, stage_id: int, attempt: int, task_id: int, index: int, finish: int, failed: bool,
                  killed: bool, updates: Any, record: Recorder) -> None:
    """sql_listener._task_end, from the (id, update) pairs the compiled module converted
    (``sparkhist_native.SqlUpdates``), recorded by ``record_sql_updates`` as ``_record`` records them."""
    sm = s.stage_metrics.get(stage_id)
    if sm is None or sm.attempt_id != attempt or not _is_sql_stage(s, stage_id):
        return
    sm.task_indices[task_id] = index
    if index in sm.completed:
        return
    execution = s.executions.get(sm.execution_id)
    if execution is not None and execution.metric_types and updates:
        record(updates, execution.metric_types, sm.values, sm.max_values, sm.num_tasks, index, task_id)
    if finish != 0 and not failed and not killed:
        sm.completed.add(index)
