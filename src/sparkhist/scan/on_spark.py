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

The executors must reach the log directory with the same URL and have sparkhist installed
in their Python. The store is either a directory at the same path on the driver and every
executor (a shared file system: NFS, a FUSE mount, or one machine's ``local-cluster``), or a
store location by URL (``hdfs://``, ``s3a://``, ``gs://``, ``abfs://``, ``file://``;
:mod:`sparkhist.store.remote`): then each task builds into its Python worker's own temporary
directory and uploads the snapshot (an atomic put: the same bytes, whoever writes them);
the driver keeps the catalog in a local cache synced from the store's manifest at the start
(:func:`begin_run`), and at the end publishes one catalog segment and a manifest naming it
(:func:`finish_run`, :mod:`sparkhist.store.segments`) when the run changed something.
"""

from __future__ import annotations

import functools
import heapq
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkhist.files import unlink_quietly
from sparkhist.reader.layout import EventLog
from sparkhist.scan.workers import Built, build_in_worker
from sparkhist.source.factory import SourceOptions
from sparkhist.store import segments
from sparkhist.store.catalog import Catalog
from sparkhist.store.records import LogRecord
from sparkhist.store.remote import RemoteStore
from sparkhist.store.snapshots import SNAPSHOT_DIR, snapshot_name

if TYPE_CHECKING:
    from sparkhist.config import LogSource, LogSources

log = logging.getLogger("sparkhist.scan")

#: Tasks per executor core: more, smaller tasks even out logs of very different sizes.
TASKS_PER_SLOT = 3
#: Snapshot uploads one task keeps going while it builds the next logs (a store location's
#: latency, not the executor's CPU, bounds an upload: an HDFS create, write, close and rename).
UPLOADS_IN_FLIGHT = 4
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
                group: list[tuple[EventLog, bool]], *, remote_url: str | None = None) -> list[tuple[str, Built | Exception]]:
    """One Spark task: every log of ``group`` built, each failure its own result.

    ``remote_url``: a store location (``hdfs://``, ``s3a://``, ``file://``...): each log is
    built into this Python worker's own temporary store directory (``store_dir`` unused),
    and its snapshot uploaded to ``<remote_url>/snapshots/`` (up to :data:`UPLOADS_IN_FLIGHT`
    at a time, while the next logs are built) before the task returns; a failed upload is
    that log's result."""
    os.environ.update(environ)  # before the first read in this Python worker (its limits are read once)
    out: list[tuple[str, Built | Exception]] = []
    if remote_url is None:
        for event_log, persist in group:
            try:
                out.append((event_log.path, build_in_worker(root, store_dir, options, event_log, persist)))
            except Exception as exc:  # noqa: BLE001 - reported per log by the scanner, as a worker's failure is
                out.append((event_log.path, exc))
        return out
    store_dir = os.path.join(tempfile.gettempdir(), f"sparkhist-task-{os.getpid()}")
    remote = _remote(remote_url, options)
    uploading: list[tuple[str, Built, Future[None]]] = []
    with ThreadPoolExecutor(UPLOADS_IN_FLIGHT, thread_name_prefix="sparkhist-upload") as uploads:
        for event_log, persist in group:
            try:
                built = build_in_worker(root, store_dir, options, event_log, persist)
            except Exception as exc:  # noqa: BLE001 - as above
                out.append((event_log.path, exc))
                continue
            if not built.persisted:
                out.append((event_log.path, built))
                continue
            name = snapshot_name(event_log.path)
            uploading.append((event_log.path, built,
                              uploads.submit(_upload, remote, os.path.join(store_dir, SNAPSHOT_DIR), name)))
        for path, built, upload in uploading:
            try:
                upload.result()
                out.append((path, built))
            except Exception as exc:  # noqa: BLE001 - the log is built again by the next run
                out.append((path, exc))
    return out


_remotes: dict[str, RemoteStore] = {}  # this Python worker's store locations, opened once


def _remote(url: str, options: SourceOptions | None) -> RemoteStore:
    if url not in _remotes:
        _remotes[url] = RemoteStore.open(url, options)
    return _remotes[url]


def _upload(remote: RemoteStore, snapshots_dir: str, name: str) -> None:
    """A local snapshot put under ``snapshots/`` of the store location, then removed here (the
    next build of its log starts from the log, as on any other executor: same bytes)."""
    path = os.path.join(snapshots_dir, name)
    with open(path, "rb") as f:
        blob = f.read()
    remote.put_atomic(f"{SNAPSHOT_DIR}/{name}", blob)
    os.unlink(path)


class SparkIndexPool:
    """The build pool of a scan whose full indexing runs as Spark tasks.

    ``context``: a callable returning a live ``pyspark.SparkContext``, called at the first
    scan with logs to build (a scan with nothing lagging starts no Spark application); the
    caller stops the context it returned (:attr:`started` says whether it was called)."""

    def __init__(self, context: Callable[[], Any], root: str, store_dir: str, options: SourceOptions | None = None,
                 *, remote_url: str | None = None) -> None:
        """``remote_url``: snapshots go to this store location (executors upload them),
        ``store_dir`` being the driver's local cache of its catalog."""
        self._start = context
        self.remote_url = remote_url
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
        build = functools.partial(build_group, self.root, self.store_dir, self.options, sparkhist_environment(),
                                  remote_url=self.remote_url)
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


# ------------------------------------------------------------------------- a store location
@dataclass(frozen=True, slots=True)
class Published:
    """What the end of a run wrote to the store location."""

    manifest: str | None  # the manifest now newest (None: the store has none)
    records: int  # records in the new segment (0: nothing changed, nothing written)
    deleted: int
    uploaded: int  # snapshots built by the driver itself and uploaded
    seconds: float


def _records(cache_dir: str) -> dict[str, LogRecord]:
    catalog = Catalog(cache_dir, None, read_only=True)
    try:
        return catalog.load(repair=False).records
    finally:
        catalog.close()


def begin_run(remote: RemoteStore, cache_dir: str) -> dict[str, dict[str, Any]]:
    """The driver's cache made equal to the store's newest manifest (so a re-run builds only new
    and grown logs), temporary files of killed writers removed; returns the records as synced,
    which :func:`finish_run` compares with the run's.

    The cache's catalog is compared with the manifest's records even when the cache says it
    is at the newest manifest: a run killed before its publish left records in it that the
    store does not have (those logs are then built again, and published)."""
    unlink_quietly(os.path.join(cache_dir, segments.SEGMENTS_DIR, segments.CACHED_MANIFEST))
    segments.sync_cache(remote, cache_dir)
    removed = remote.remove_temp_files(SNAPSHOT_DIR)
    if removed:
        log.info("removed %d half-written snapshot files from %s", removed, remote.url)
    if not os.path.exists(os.path.join(cache_dir, "catalog.sqlite")):
        return {}
    return {path: record.to_dict() for path, record in _records(cache_dir).items()}


def finish_run(remote: RemoteStore, cache_dir: str, before: dict[str, dict[str, Any]], *, log_dir: str,
               log_source: LogSource | LogSources | None) -> Published:
    """The run's changes published: snapshots the driver built itself (a scan builds a lone
    lagging log in its own process) uploaded, the snapshots of deleted logs removed, then one
    segment of the new and changed records and the deleted paths, and the manifest naming it.
    A run that changed nothing writes nothing."""
    began = time.monotonic()
    after = _records(cache_dir)
    changed = [r for path, r in after.items() if before.get(path) != r.to_dict()]
    deleted = sorted(path for path in before if path not in after)
    snapshots_dir = os.path.join(cache_dir, SNAPSHOT_DIR)
    uploaded = 0
    for record in changed:
        name = snapshot_name(record.path)
        if record.snapshot_size >= 0 and os.path.exists(os.path.join(snapshots_dir, name)):
            _upload(remote, snapshots_dir, name)
            uploaded += 1
    if not changed and not deleted:
        found = segments.newest_manifest(remote)
        return Published(found[0] if found else None, 0, 0, 0, time.monotonic() - began)
    manifest = segments.publish(remote, changed, deleted, log_dir=log_dir, log_source=log_source)
    for path in deleted:  # after the commit: a run killed before it leaves the store as it was
        remote.delete(f"{SNAPSHOT_DIR}/{snapshot_name(path)}")
    return Published(manifest, len(changed), len(deleted), uploaded, time.monotonic() - began)
