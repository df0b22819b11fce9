"""Full indexing as a Spark job, on the user's own cluster (``sparkhist index-on-spark``).

:class:`SparkIndexPool` is the scanner's build pool (as :class:`~sparkhist.scan.workers.IndexPool`
is on one machine): the lagging logs are spread over Spark tasks by size (largest first,
each to the lightest task), and each task runs the very code a worker process runs
(:func:`~sparkhist.scan.workers.build_in_worker`: sparkhist's own source, reader, state
and snapshot writer) and returns the same small summaries. The scan's listing pass, its
decisions and the catalog stay with the driver, the store's one writer.

What makes it safe to retry: a snapshot is written to a temporary name and renamed, and
it is a function of the log's bytes, so a task run twice (a retry, a speculative copy,
an executor lost mid-task) leaves the same snapshot; a task that dies leaves at most a
temporary file, which the store's next writer removes. A re-run builds only what lags
(new and grown logs), as a scan does.

The executors must reach the log directory with the same URL and the store's directory
at the same path (a shared file system: NFS, a FUSE mount of HDFS or an object store, or
one machine's ``local-cluster``), and have sparkhist installed in their Python.
"""

from __future__ import annotations

import functools
import heapq
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from sparkhist.reader.layout import EventLog
from sparkhist.scan.workers import Built, build_in_worker
from sparkhist.source.factory import SourceOptions

log = logging.getLogger("sparkhist.scan")

#: Tasks per executor core: more, smaller tasks even out logs of very different sizes.
TASKS_PER_SLOT = 3
JOB_GROUP = "sparkhist-index"


def spread(jobs: list[tuple[EventLog, bool]], tasks: int) -> list[list[tuple[EventLog, bool]]]:
    """``jobs`` in at most ``tasks`` groups of about equal bytes: largest log first, each to the
    group with the fewest bytes so far (ties: the lower index). No empty group."""
    tasks = max(1, min(tasks, len(jobs)))
    groups: list[list[tuple[EventLog, bool]]] = [[] for _ in range(tasks)]
    heap = [(0, i) for i in range(tasks)]
    for job in sorted(jobs, key=lambda j: (-j[0].total_size, j[0].path)):
        load, i = heapq.heappop(heap)
        groups[i].append(job)
        heapq.heappush(heap, (load + max(job[0].total_size, 1), i))
    return [g for g in groups if g]


def sparkhist_environment() -> dict[str, str]:
    """The driver's ``SPARKHIST_*`` variables: what a spawned worker process inherits (the
    retention limits logs are read with among them), carried to the executors, which do not."""
    return {k: v for k, v in os.environ.items() if k.startswith("SPARKHIST_")}


def build_group(root: str, store_dir: str, options: SourceOptions | None, environ: dict[str, str],
                group: list[tuple[EventLog, bool]]) -> list[tuple[str, Built | Exception]]:
    """One Spark task: every log of ``group`` built, each failure its own result."""
    os.environ.update(environ)  # before the first read in this Python worker (its limits are read once)
    out: list[tuple[str, Built | Exception]] = []
    for event_log, persist in group:
        try:
            out.append((event_log.path, build_in_worker(root, store_dir, options, event_log, persist)))
        except Exception as exc:  # noqa: BLE001 - reported per log by the scanner, as a worker's failure is
            out.append((event_log.path, exc))
    return out


class SparkIndexPool:
    """The build pool of a scan whose full indexing runs as Spark tasks.

    ``context``: a callable returning a live ``pyspark.SparkContext``, called at the first
    scan with logs to build (a scan with nothing lagging starts no Spark application); the
    caller stops the context it returned (:attr:`started` says whether it was called)."""

    def __init__(self, context: Callable[[], Any], root: str, store_dir: str, options: SourceOptions | None = None) -> None:
        self._start = context
        self._context: Any = None
        self.root = root
        self.store_dir = store_dir
        self.options = options
        self.jobs_run = 0
        self.logs_built = 0
        self.job_seconds = 0.0  # wall time of the Spark jobs (waiting for executors included)

    @property
    def started(self) -> bool:
        return self._context is not None

    @property
    def context(self) -> Any:
        if self._context is None:
            self._context = self._start()
        return self._context

    def run(self, jobs: list[tuple[EventLog, bool]]) -> Iterator[tuple[EventLog, Built | BaseException]]:
        if not jobs:
            return
        context = self.context
        slots = max(1, int(context.defaultParallelism))
        groups = spread(jobs, slots * TASKS_PER_SLOT)
        log.info("indexing %d logs (%d bytes) as %d Spark tasks over %d slots", len(jobs),
                 sum(j[0].total_size for j in jobs), len(groups), slots)
        context.setJobGroup(JOB_GROUP, f"sparkhist: full indexing of {len(jobs)} logs")
        build = functools.partial(build_group, self.root, self.store_dir, self.options, sparkhist_environment())
        rdd = context.parallelize(groups, len(groups)).flatMap(build)
        began = time.monotonic()
        results: dict[str, Built | BaseException] = dict(rdd.collect())
        self.job_seconds += time.monotonic() - began
        self.jobs_run += 1
        self.logs_built += sum(1 for r in results.values() if isinstance(r, Built))
        for event_log, _ in jobs:
            yield event_log, results.get(event_log.path, RuntimeError("no result from the Spark job"))

    def stop(self) -> None:
        if self._context is not None:
            self._context.cancelJobGroup(JOB_GROUP)

    def close(self) -> None:
        """The Spark context is the caller's."""
