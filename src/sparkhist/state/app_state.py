"""The state of one application attempt, fed one event at a time.

``AppState`` is the one object the views read and the snapshots pickle: plain data (the
mutable accumulators of :mod:`sparkhist.state.entities` and :mod:`sparkhist.state.sql`)
plus ``apply``, which hands each event to the listeners that handle it. The listeners
follow Spark's own, each a module of handlers with a table from event name to handler:

* :mod:`~sparkhist.state.app_listener` and :mod:`~sparkhist.state.job_listener`:
  ``AppStatusListener`` (the application, environment and executors; jobs, stages, tasks);
* :mod:`~sparkhist.state.storage_listener`: its RDDs, blocks and storage levels;
* :mod:`~sparkhist.state.sql_listener`: ``SQLAppStatusListener`` (executions, plans, SQL metrics);

and :mod:`~sparkhist.state.retention` enforces the server's retention limits
(``spark.ui.retained*``, :func:`sparkhist.config.retention_limits`, as the SHS replays with
its own conf; they are part of the parse variant a state records). The tables
are merged once, here, into one dict: an event handled by one listener costs one lookup
and one call. Unknown events are ignored. ``finish()`` does what Spark's final store
flush does (aggregate the SQL metrics of executions still running).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sparkhist import releases
from sparkhist.config import retention_limits
from sparkhist.state import app_listener, job_listener, rdd_graph, sql_listener, storage_listener
from sparkhist.state.entities import RDD, Executor, IdSet, Job, Process, Stage, Task
from sparkhist.state.rdd_graph import StageRDDs
from sparkhist.state.sql import SQLExecution, StageMetrics

__all__ = ["LISTENERS", "AppState", "Handler"]

_SQL = "org.apache.spark.sql.execution.ui."
_SCHEDULER = "org.apache.spark.scheduler."

#: A listener's handler of one event: updates the state in place.
Handler = Callable[["AppState", dict[str, Any]], None]


@dataclass
class AppState:
    # The attribute names below are the pickled form (store/snapshots.py FORMAT) and what
    # the views read: renaming or removing one is a snapshot format change.
    #
    # Application (app_listener).
    app_id: str | None = None
    app_name: str = ""
    attempt_id: str | None = None
    start_time: int = -1
    end_time: int = -1
    spark_user: str = ""
    spark_version: str = ""
    completed: bool = False
    exit_code: int | None = None  # the application-end event's ``ExitCode`` (for a listing rebuilt from a snapshot)
    # Environment (raw lists as logged) and resource profiles (app_listener).
    runtime: dict[str, str | None] = field(default_factory=dict)
    env: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    has_env: bool = False
    resource_profiles: dict[int, dict[str, Any]] = field(default_factory=dict)
    default_cpus_per_task: int = 1
    # Retention limits: the server's as the log is read (config.retention_limits), enforced by retention.
    retained_jobs: int = field(default_factory=lambda: retention_limits().jobs)
    retained_stages: int = field(default_factory=lambda: retention_limits().stages)
    retained_tasks: int = field(default_factory=lambda: retention_limits().tasks)
    retained_dead_executors: int = field(default_factory=lambda: retention_limits().dead_executors)
    retained_executions: int = field(default_factory=lambda: retention_limits().executions)
    # Entities: jobs, stages, tasks (job_listener); executors, processes (app_listener);
    # RDDs (storage_listener); SQL executions and their stages' metrics (sql_listener).
    jobs: dict[int, Job] = field(default_factory=dict)
    stages: dict[tuple[int, int], Stage] = field(default_factory=dict)
    tasks: dict[int, Task] = field(default_factory=dict)
    executors: dict[str, Executor] = field(default_factory=dict)
    executor_order: list[str] = field(default_factory=list)
    rdds: dict[int, RDD] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    executions: dict[int, SQLExecution] = field(default_factory=dict)
    stage_metrics: dict[int, StageMetrics] = field(default_factory=dict)
    # Each stage's RDDs as its last JobStart listed them, for its DAG (rdd_graph).
    rdd_graphs: dict[int, StageRDDs] = field(default_factory=dict)
    streaming: bool = False
    last_update_time: int | None = None
    # Bookkeeping mirrors of Spark's "live" maps.
    live_jobs: set[int] = field(default_factory=set)
    dead_in_live_stages: set[str] = field(default_factory=IdSet)
    # What the release answered as decided while the log was read (releases.parse_variant): a
    # state read otherwise is not resumed nor listed from, but read again.
    parse_variant: str = field(default_factory=releases.parse_variant)

    # ----------------------------------------------------------------- dispatch
    def apply(self, event: dict[str, Any]) -> None:
        """Update the state with one parsed event (unknown events are ignored)."""
        name = event.get("Event")
        handler = _HANDLERS.get(name) if type(name) is str else None
        if handler is not None:  # the usual case: a scheduler event named without its package
            handler(self, event)
            return
        if not isinstance(name, str):
            return
        if name.startswith(_SQL):
            name = name[len(_SQL):]
        elif name.startswith(_SCHEDULER):
            name = name[len(_SCHEDULER):]
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, event)
        elif "Streaming" in name and "Query" not in name:
            self.streaming = True

    def finish(self, last_update_time: int | None = None) -> None:
        """The final flush: aggregate the metrics of SQL executions still running."""
        if last_update_time is not None:
            self.last_update_time = last_update_time
        sql_listener.finish(self)

    def read_as_answered(self) -> bool:
        """Whether the log was read as the release now answered as reads it (a state pickled
        before the field was read as 4.0.1 reads logs)."""
        return getattr(self, "parse_variant", "legacy-push-read-metrics") == releases.parse_variant()

    # ----------------------------------------------------------------- lookups shared by the listeners
    def live_executor(self, executor_id: str) -> Executor | None:
        """The executor if it is live (Spark's ``liveExecutors``), else None."""
        ex = self.executors.get(executor_id)
        return ex if ex is not None and ex.is_active else None

    def live_stage(self, stage_id: int, attempt: int) -> Stage | None:
        """The stage attempt if it is live (Spark's ``liveStages``), else None."""
        st = self.stages.get((stage_id, attempt))
        return st if st is not None and st.live else None


#: The listeners' handler tables, in the order each event visits them. The SQL and
#: storage listeners come first: they see a ``JobEnd`` or ``ExecutorRemoved`` while the
#: core listener still holds the job or executor live (its ``liveJobs``/``liveExecutors``).
#: The RDD graphs come before all: a ``JobStart`` whose RDDs cannot be read is skipped whole.
LISTENERS: tuple[dict[str, Handler], ...] = (
    rdd_graph.HANDLERS, sql_listener.HANDLERS, storage_listener.HANDLERS, app_listener.HANDLERS, job_listener.HANDLERS)


def _chain(handlers: list[Handler]) -> Handler:
    """One handler calling ``handlers`` in order (two without a loop: TaskStart, TaskEnd...)."""
    if len(handlers) == 1:
        return handlers[0]
    if len(handlers) == 2:
        first, second = handlers

        def both(state: AppState, event: dict[str, Any]) -> None:
            first(state, event)
            second(state, event)
        return both

    chained = tuple(handlers)

    def each(state: AppState, event: dict[str, Any]) -> None:
        for handler in chained:
            handler(state, event)
    return each


def _merge(tables: tuple[dict[str, Handler], ...]) -> dict[str, Handler]:
    merged: dict[str, list[Handler]] = {}
    for table in tables:
        for name, handler in table.items():
            merged.setdefault(name, []).append(handler)
    return {name: _chain(handlers) for name, handlers in merged.items()}


_HANDLERS: dict[str, Handler] = _merge(LISTENERS)
