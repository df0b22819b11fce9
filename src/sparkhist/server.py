"""Wires one running sparkhist: store, scanner, scan loop and the HTTP app."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from sparkhist.api.app import ServerContext, create_app
from sparkhist.config import Settings
from sparkhist.errors import NotFound, StoreError
from sparkhist.observability.health import health_document
from sparkhist.observability.metrics import Metrics
from sparkhist.observability.probe import Probe
from sparkhist.observability.sources import ObservedSource
from sparkhist.scan.loop import ScanLoop
from sparkhist.scan.scanner import Scanner
from sparkhist.source.base import Source
from sparkhist.source.factory import open_source
from sparkhist.scan.cleaner import Cleaner, CleanerPolicy
from sparkhist.scan.indexer import Indexer
from sparkhist.scan.on_demand import OnDemandIndex
from sparkhist.scan.workers import IndexPool
from sparkhist.store.disk import DiskBudget, DiskPolicy
from sparkhist.store.snapshots import SnapshotStore
from sparkhist.store.states import StoreStates
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from sparkhist.store.lock import WriterLock

log = logging.getLogger("sparkhist.server")


def _app_resource_handler() -> Any:
    try:
        from sparkhist.api.v1.app_resources import handle
    except ImportError:  # pragma: no cover - only while the state layer is missing
        def handle(state: Any, rest: list[str], query: Any, *, app_id: str) -> Any:
            raise NotFound(f"unknown resource: {'/'.join(rest)}")
    return handle


def _new_state() -> Any:
    from sparkhist.state.app_state import AppState

    return AppState()


@dataclass
class Runtime:
    settings: Settings
    source: Source
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

    def close(self) -> None:
        """Release what the runtime holds: the writer lock, the indexing workers, the catalog."""
        self.loop.lock.release()
        if self.scanner.pool is not None:
            self.scanner.pool.close()
        self.catalog.close()


def _open_as_standby(store_dir: str, wait: float = 30.0) -> Catalog:
    """Another process writes this store: read its catalog (waiting for it to exist)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return Catalog(store_dir, None, read_only=True)
        except StoreError:
            if time.monotonic() > deadline:
                raise
            log.info("waiting for the writer of %s to create its catalog", store_dir)
            time.sleep(0.5)


def build_runtime(settings: Settings) -> Runtime:
    """Open the store and load the index from it (no source access yet)."""
    t0 = time.monotonic()
    started = time.time()
    source = ObservedSource(open_source(settings.log_dir))  # counts calls, tells ok/degraded/offline
    lock = WriterLock(settings.store_dir)
    writer = lock.try_acquire()
    catalog = Catalog(settings.store_dir, source.root) if writer else _open_as_standby(settings.store_dir)
    index = ApplicationIndex()
    snapshots = SnapshotStore(settings.store_dir)
    if writer:
        snapshots.remove_temp_files()
    budget = DiskBudget(snapshots, DiskPolicy(settings.store_max_disk, settings.disk_cleanup_ratio, settings.disk_critical_ratio))
    indexer = Indexer(source, snapshots, _new_state, budget)
    scanner = Scanner(source, catalog, index, indexer=indexer)
    if settings.index_workers > 1:
        scanner.pool = IndexPool(source.root, settings.store_dir, settings.index_workers)
    count = scanner.load()
    # Sizing the snapshots on disk is a stat per log: not on the start-up path.
    threading.Thread(target=budget.load, args=([p for p, r in scanner.records.items() if r.snapshot_size >= 0],),
                     name="sparkhist-disk-usage", daemon=True).start()
    recovery = time.monotonic() - t0
    log.info("store %s opened as %s: %d logs, %d applications in %.3fs", settings.store_dir,
             "writer" if writer else "standby", count, len(index), recovery)
    loop = ScanLoop(scanner, lock, settings.scan_interval, role="writer" if writer else "standby")
    if settings.cleaner_enabled:
        loop.cleaner = Cleaner(scanner, CleanerPolicy(settings.cleaner_max_age, settings.cleaner_max_num))
        loop.cleaner_interval = settings.cleaner_interval
    states = StoreStates(indexer, is_writer=lambda: loop.role == "writer", memory_budget=settings.memory_budget)

    lookup = OnDemandIndex(index, scanner.index_on_demand, enabled=lambda: loop.role == "writer",
                           miss_ttl=max(settings.scan_interval, 1.0))
    # Built once recovery is done, so ready() is simply true; a runtime that serves
    # before recovering would pass its own readiness check here.
    probe = Probe(store_dir=settings.store_dir, scan_interval=settings.scan_interval, sources=[source], scanner=scanner,
                  loop=loop, states=states, snapshots=snapshots, recovery_seconds=recovery, started=started)
    metrics = Metrics(probe)
    ctx = ServerContext(index=lookup, source=source, states=states, handle_app_resource=_app_resource_handler(),
                        health=lambda: health_document(probe), ready=probe.ready, metrics=metrics)
    return Runtime(settings, source, catalog, snapshots, states, index, scanner, loop, create_app(ctx), time.time(), recovery,
                   probe, metrics)


def serve(settings: Settings) -> None:
    import uvicorn

    runtime = build_runtime(settings)
    runtime.loop.start()
    config = uvicorn.Config(runtime.app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                            log_config=None)  # uvicorn's loggers go through ours (plain or JSON)
    server = uvicorn.Server(config)
    log.info("serving %s on http://%s:%d", settings.log_dir, settings.host, settings.port)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal once it has
    # restored the previous handlers: make those no-ops so our cleanup below runs and
    # the process exits 0 after a clean stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        server.run()
    finally:
        runtime.loop.stop()
        runtime.close()
        log.info("stopped")
