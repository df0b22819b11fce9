"""Full indexing of the logs whose snapshot lags: in this process, or on the worker pool.

One log, or no pool, is built here; more are spread over the pool's processes, each
writing its snapshot itself. A worker's result is accounted as if built here: the
indexer's counters and the disk budget see every build alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from sparkhist.analytics import batch
from sparkhist.errors import SourceError, StoreError
from sparkhist.reader.layout import EventLog
from sparkhist.scan.indexer import Indexer
from sparkhist.scan.workers import BuildPool, Built
from sparkhist.store.disk import DiskBudget
from sparkhist.store.snapshots import Snapshot

#: What one build gives: the snapshot, a worker's summary of it, or why it failed.
Result = Snapshot | Built | BaseException


def build_all(indexer: Indexer, logs: list[EventLog], *, pool: BuildPool | None = None,
              budget: DiskBudget | None = None) -> Iterator[tuple[EventLog, Result]]:
    """(log, result) for each of ``logs``, in order.

    In this process, source and store failures are results, anything else raises; in
    workers every failure is a result. A worker saves its snapshot only if the disk
    budget allowed it when the jobs were handed out.
    """
    if pool is None or len(logs) < 2:
        for event_log in logs:
            try:
                yield event_log, indexer.refresh(event_log)
            except (SourceError, StoreError) as exc:
                yield event_log, exc
    else:
        jobs = [(event_log, budget is None or budget.may_write()) for event_log in logs]
        for event_log, result in pool.run(jobs):
            if isinstance(result, Built):
                _account(indexer, budget, result)
            yield event_log, result
    if logs:
        batch.flush(os.path.dirname(indexer.snapshots.dir))  # the builds' analytics rows, queryable now


def _account(indexer: Indexer, budget: DiskBudget | None, built: Built) -> None:
    """Count a worker's build as the indexer counts its own."""
    indexer.bytes_read += built.bytes_read
    indexer.events_parsed += built.lines
    indexer.builds += 1
    if built.rows is not None:
        indexer.take_rows(built.rows)
    if built.persisted and budget is not None:
        budget.wrote(built.log_path, built.snapshot_bytes)
    elif not built.persisted:
        indexer.unsaved += 1
