"""The runtime: source, store, scanner, scan loop, probe, metrics and the HTTP app, wired.

:func:`build_runtime` makes one in a single step (tests, ``sparkhist scan``);
``serve`` makes it in two (:mod:`sparkhist.server.startup`): the store opened first
(:mod:`sparkhist.server.opening`), then :func:`complete_runtime` in the background.
:meth:`Runtime.close` releases what it holds.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkhist.config import Settings
from sparkhist.server.opening import OpenedStore, open_store
from sparkhist.server.state_readers import store_readers
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from sparkhist.analytics.repair import Maintenance
    from sparkhist.api.response_cache import ResponseCache
    from sparkhist.api.v1.params import QueryParams
    from sparkhist.observability.metrics import Metrics
    from sparkhist.observability.probe import Probe
    from sparkhist.observability.sources import ObservedSource
    from sparkhist.scan.loop import ScanLoop
    from sparkhist.scan.scanner import Scanner
    from sparkhist.state.app_state import AppState
    from sparkhist.state.sections import StageTasks, TasksOf
    from sparkhist.store.snapshots import SnapshotStore
    from sparkhist.store.states import StoreStates

log = logging.getLogger("sparkhist.server")


def handle_app_resource(state: AppState, rest: list[str], query: QueryParams, *, app_id: str,
                        tasks: StageTasks | TasksOf | None = None) -> Any:
    """:func:`sparkhist.api.v1.app_resources.handle`, imported on the first request that needs it."""
    from sparkhist.api.v1.app_resources import handle

    return handle(state, rest, query, app_id=app_id, tasks=tasks)


@dataclass
class Runtime:
    settings: Settings
    source: ObservedSource
    catalog: Catalog
    snapshots: SnapshotStore
    states: StoreStates
    index: ApplicationIndex
    scanner: Scanner
    loop: ScanLoop
    app: Starlette
    started: float
    recovery_seconds: float
    probe: Probe | None = None
    metrics: Metrics | None = None
    response_cache: ResponseCache | None = None
    analytics: Maintenance | None = None

    def close(self) -> None:
        """Release what the runtime holds: the writer lock, the indexing workers, the catalog
        and the source's connections (HDFS/WebHDFS clients and their worker threads)."""
        if self.analytics is not None:
            self.analytics.stop()
        self.loop.lock.release()
        if self.scanner.pool is not None:
            self.scanner.pool.close()
        self.catalog.close()
        self.source.inner.close()


def build_runtime(settings: Settings) -> Runtime:
    """Open the store and load the index from it (no source access yet)."""
    return complete_runtime(open_store(settings, listing=False))


def complete_runtime(opened: OpenedStore, app: Starlette | None = None) -> Runtime:
    """The second step: records, snapshots, scanner, loop, probe, metrics (and the app, unless given)."""
    from sparkhist.observability.metrics import Metrics
    from sparkhist.observability.probe import Probe
    from sparkhist.observability.sources import observed_directories
    from sparkhist.scan.cleaner import Cleaner, CleanerPolicy
    from sparkhist.scan.loop import ScanLoop
    from sparkhist.scan.scanner import Scanner

    settings, source, catalog, index, writer = opened.settings, opened.source, opened.catalog, opened.index, opened.writer
    readers = store_readers(opened)
    snapshots, budget, indexer, states = readers.snapshots, readers.budget, readers.indexer, readers.states
    if writer:
        snapshots.remove_temp_files()
    analytics = None
    if writer and settings.analytics_tables:
        from sparkhist.analytics.layout import analytics_dir
        from sparkhist.analytics.repair import Maintenance

        # The analytics directory's presence turns the rows on for every indexer, workers included;
        # the tables follow the snapshots (repaired, then compacted when due), off the start-up path.
        os.makedirs(analytics_dir(settings.store_dir), exist_ok=True)
        analytics = Maintenance(settings.store_dir, snapshots).start()
    scanner = Scanner(source, catalog, index, indexer=indexer, snapshots=snapshots, budget=budget)
    scanner.on_reread.append(states.invalidate)  # a log read again from its start: its cached state is stale
    if settings.index_workers > 1:
        from sparkhist.scan.workers import IndexPool
        from sparkhist.source.factory import SourceOptions

        # The flags' source settings travel to the workers (they read only the environment otherwise).
        scanner.pool = IndexPool(source.root, settings.store_dir, settings.index_workers,
                                 SourceOptions.from_settings(settings))
    index_loaded = app is not None
    count = scanner.load(index_loaded=index_loaded)
    if opened.listing_corrupt:
        scanner.corrupt_records += opened.listing_corrupt
        log.warning("%d damaged catalog records dropped; their logs will be read again", opened.listing_corrupt,
                    extra={"event": "catalog_corrupt", "records": opened.listing_corrupt})
    # Sizing the snapshots on disk is a stat per log: not on the start-up path.
    threading.Thread(target=budget.load, args=([p for p, r in scanner.records.items() if r.snapshot_size >= 0],),
                     name="sparkhist-disk-usage", daemon=True).start()
    recovery = time.monotonic() - opened.t0
    log.info("store %s opened as %s: %d logs, %d applications in %.3fs", settings.store_dir,
             "writer" if writer else "standby", count, len(index), recovery)
    if settings.shared_store is not None:  # a replica follows the shared store's manifests instead of scanning
        from sparkhist.server.shared_store_sync import replica_loop

        loop: ScanLoop = replica_loop(opened, scanner, budget)
    else:
        loop = ScanLoop(scanner, opened.lock, settings.scan_interval, role="writer" if writer else "standby",
                        snapshots=snapshots)
    if settings.cleaner_enabled:
        loop.cleaner = Cleaner(scanner, CleanerPolicy(settings.cleaner_max_age, settings.cleaner_max_num))
        loop.cleaner_interval = settings.cleaner_interval
    if settings.watch_log_dir:  # notifications of each local directory: new logs within a second
        loop.watch_local_directories(observed_directories(source))
    opened.loop = loop  # the states' writer test follows the loop's role from now on

    # Built once recovery is done, so ready() is simply true; a runtime that serves
    # before recovering would pass its own readiness check here.
    probe = Probe(store_dir=settings.store_dir, scan_interval=settings.scan_interval, sources=observed_directories(source),
                  scanner=scanner,
                  loop=loop, states=states, snapshots=snapshots, recovery_seconds=recovery, started=opened.started,
                  response_cache=opened.response_cache, budget=budget)
    metrics = Metrics(probe)
    if app is None:
        app = _create_app(opened, states, scanner, loop, probe, metrics)
    return Runtime(settings, source, catalog, snapshots, states, index, scanner, loop, app, time.time(), recovery,
                   probe, metrics, opened.response_cache, analytics)


def _create_app(opened: OpenedStore, states: StoreStates, scanner: Scanner, loop: ScanLoop, probe: Probe,
                metrics: Metrics) -> Starlette:
    """The HTTP app over a complete runtime."""
    from sparkhist.access.settings import access_policy
    from sparkhist.api.app import ServerContext, create_app
    from sparkhist.observability.health import health_document
    from sparkhist.scan.on_demand import OnDemandIndex

    lookup = OnDemandIndex(opened.index, scanner.index_on_demand, enabled=lambda: loop.role == "writer",
                           miss_ttl=max(opened.settings.scan_interval, 1.0))
    ctx = ServerContext(index=lookup, source=opened.source, states=states,
                        handle_app_resource=handle_app_resource, health=lambda: health_document(probe),
                        ready=probe.ready, metrics=metrics, response_cache=opened.response_cache,
                        access=access_policy(opened.settings), store_dir=opened.settings.store_dir,
                        log_source=opened.settings.log_source, loaded_index=lambda: opened.index)
    return create_app(ctx)
