"""Wires one running sparkhist: store, scanner, scan loop and the HTTP app.

``serve`` starts in two steps, so a restart answers the application list as soon as
possible: first the catalog's listing rows fill the index and the HTTP server binds
(only what answering the list needs is imported); then, in the background, the rest
of the runtime is built (full records, snapshots, scanner, probe, metrics) and the
scan loop starts. Requests that need the rest wait for it; ``/ready`` says when it
is there.

When the store holds a current pre-rendered list (:mod:`sparkhist.store.list_file`:
its checksum holds and it names the catalog's listing), the server binds before even
the listing rows are loaded: the unfiltered list is answered from the file's bytes,
and everything else that reads the index waits for it (loaded in the background,
right after the first answer). The file is served until the listing or the index
changes; the server writes it again, at most every ``LIST_WRITE_INTERVAL`` seconds
while the listing changes and at a clean stop.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparkhist.config import Settings
from sparkhist.errors import NotFound, StoreError
from sparkhist.store.applications import ApplicationIndex, build_app
from sparkhist.store.catalog import Catalog
from sparkhist.store.list_file import StoredList
from sparkhist.store.lock import WriterLock

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from sparkhist.api.app import ServerContext
    from sparkhist.observability.metrics import Metrics
    from sparkhist.observability.probe import Probe
    from sparkhist.observability.sources import ObservedSource
    from sparkhist.scan.indexer import Indexer
    from sparkhist.scan.loop import ScanLoop
    from sparkhist.scan.scanner import Scanner
    from sparkhist.store.disk import DiskBudget
    from sparkhist.store.snapshots import SnapshotStore
    from sparkhist.store.states import StoreStates

log = logging.getLogger("sparkhist.server")

#: Longest a request that needs the full runtime waits for it while the server starts.
STARTUP_WAIT = 600.0


def _app_resource_handler() -> Any:
    try:
        from sparkhist.api.v1.app_resources import handle
    except ImportError:  # pragma: no cover - only while the state layer is missing
        def handle(state: Any, rest: list[str], query: Any, *, app_id: str) -> Any:
            raise NotFound(f"unknown resource: {'/'.join(rest)}")
    return handle


def _handle_app_resource(*args: Any, **kwargs: Any) -> Any:
    return _app_resource_handler()(*args, **kwargs)


def _new_state() -> Any:
    from sparkhist.state.app_state import AppState

    return AppState()


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
    response_cache: Any = None

    def close(self) -> None:
        """Release what the runtime holds: the writer lock, the indexing workers, the catalog
        and the source's connections (HDFS/WebHDFS clients and their worker threads)."""
        self.loop.lock.release()
        if self.scanner.pool is not None:
            self.scanner.pool.close()
        self.catalog.close()
        close_source = getattr(self.source.inner, "close", None)
        if close_source is not None:
            close_source()


@dataclass
class _Opened:
    """The first step: the store opened and its listing in the index (what the list needs)."""

    settings: Settings
    source: ObservedSource
    lock: WriterLock
    writer: bool
    catalog: Catalog
    index: ApplicationIndex
    t0: float
    started: float
    listing_corrupt: int = 0
    stored: StoredList | None = None  # the current pre-rendered list, when the store had one
    readers: _Readers | None = None  # what reads application states (made on first need)
    loop: ScanLoop | None = None  # once the runtime is complete: whose role says writer or standby
    readers_lock: threading.Lock = field(default_factory=threading.Lock)
    response_cache: Any = None  # rendered answers of completed attempts (api.response_cache), None: off

    def is_writer(self) -> bool:
        return self.writer if self.loop is None else self.loop.role == "writer"


@dataclass
class _Readers:
    """Snapshots, disk budget, indexer and the application states over them.

    Made apart from the rest of the runtime (no scanner, no records), so the first
    request for an application's details after a restart does not wait for the rest.
    """

    snapshots: SnapshotStore
    budget: DiskBudget
    indexer: Indexer
    states: StoreStates


def _store_readers(opened: _Opened) -> _Readers:
    """The readers of ``opened``, made once (by the first request or the start-up, whichever comes first)."""
    readers = opened.readers
    if readers is not None:
        return readers
    with opened.readers_lock:
        if opened.readers is None:
            from sparkhist.scan.indexer import Indexer
            from sparkhist.store.disk import DiskBudget, DiskPolicy
            from sparkhist.store.snapshots import SnapshotStore
            from sparkhist.store.states import StoreStates

            settings = opened.settings
            snapshots = SnapshotStore(settings.store_dir)
            budget = DiskBudget(snapshots, DiskPolicy(settings.store_max_disk, settings.disk_cleanup_ratio,
                                                      settings.disk_critical_ratio))
            indexer = Indexer(opened.source, snapshots, _new_state, budget)
            states = StoreStates(indexer, is_writer=opened.is_writer, memory_budget=settings.memory_budget)
            if opened.response_cache is not None:
                states.on_invalidate.append(opened.response_cache.forget)  # a forgotten state, its answers too
            opened.readers = _Readers(snapshots, budget, indexer, states)
        return opened.readers


def _load_listing(opened: _Opened) -> None:
    """Fill the index from the catalog's listing rows (no record decoded)."""
    gc.disable()
    try:
        result = opened.catalog.load_listing(repair=opened.writer)
        opened.index.load_entries(result.entries)
        opened.listing_corrupt = result.corrupt
        # The index lives as long as the process: no collection should ever walk it
        # (frozen before collections resume, which would walk it three times over).
        gc.freeze()
    finally:
        gc.enable()


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


def _open(settings: Settings, *, listing: bool, stored_list: bool = False) -> _Opened:
    """Open the store. ``listing``: load the listing rows into the index, unless
    ``stored_list`` is asked for and the store has a current one (then loaded later)."""
    from sparkhist.observability.sources import ObservedSource
    from sparkhist.source.factory import open_source

    t0 = time.monotonic()
    started = time.time()
    source = ObservedSource(open_source(settings.log_dir, settings))  # counts calls, tells ok/degraded/offline
    lock = WriterLock(settings.store_dir)
    writer = lock.try_acquire()
    catalog = Catalog(settings.store_dir, source.root) if writer else _open_as_standby(settings.store_dir)
    opened = _Opened(settings, source, lock, writer, catalog, ApplicationIndex(), t0, started)
    if settings.response_cache > 0:
        from sparkhist.api.response_cache import ResponseCache

        opened.response_cache = ResponseCache(settings.response_cache)
    if stored_list:
        from sparkhist.store import list_file

        stored = list_file.read(settings.store_dir)
        if stored is not None and not stored.matches(catalog):
            log.info("application list file of %s is stale (listing %s/%d, catalog at %s/%d); ignored",
                     settings.store_dir, stored.catalog_id, stored.counter, catalog.catalog_id,
                     catalog.listing_counter)
            stored = None
        opened.stored = stored
    if listing and opened.stored is None:
        _load_listing(opened)
    return opened


def build_runtime(settings: Settings) -> Runtime:
    """Open the store and load the index from it (no source access yet)."""
    return _complete(_open(settings, listing=False))


def _complete(opened: _Opened, app: Starlette | None = None) -> Runtime:
    """The second step: records, snapshots, scanner, loop, probe, metrics (and the app, unless given)."""
    from sparkhist.observability.metrics import Metrics
    from sparkhist.observability.probe import Probe
    from sparkhist.scan.cleaner import Cleaner, CleanerPolicy
    from sparkhist.scan.loop import ScanLoop
    from sparkhist.scan.scanner import Scanner

    settings, source, catalog, index, writer = opened.settings, opened.source, opened.catalog, opened.index, opened.writer
    readers = _store_readers(opened)
    snapshots, budget, indexer, states = readers.snapshots, readers.budget, readers.indexer, readers.states
    if writer:
        snapshots.remove_temp_files()
    scanner = Scanner(source, catalog, index, indexer=indexer)
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
    loop = ScanLoop(scanner, opened.lock, settings.scan_interval, role="writer" if writer else "standby")
    if settings.cleaner_enabled:
        loop.cleaner = Cleaner(scanner, CleanerPolicy(settings.cleaner_max_age, settings.cleaner_max_num))
        loop.cleaner_interval = settings.cleaner_interval
    opened.loop = loop  # the states' writer test follows the loop's role from now on

    # Built once recovery is done, so ready() is simply true; a runtime that serves
    # before recovering would pass its own readiness check here.
    probe = Probe(store_dir=settings.store_dir, scan_interval=settings.scan_interval, sources=[source], scanner=scanner,
                  loop=loop, states=states, snapshots=snapshots, recovery_seconds=recovery, started=opened.started,
                  response_cache=opened.response_cache)
    metrics = Metrics(probe)
    if app is None:
        from sparkhist.api.app import ServerContext, create_app
        from sparkhist.observability.health import health_document
        from sparkhist.scan.on_demand import OnDemandIndex

        lookup = OnDemandIndex(index, scanner.index_on_demand, enabled=lambda: loop.role == "writer",
                               miss_ttl=max(settings.scan_interval, 1.0))
        ctx = ServerContext(index=lookup, source=source, states=states, handle_app_resource=_handle_app_resource,
                            health=lambda: health_document(probe), ready=probe.ready, metrics=metrics,
                            response_cache=opened.response_cache)
        app = create_app(ctx)
    return Runtime(settings, source, catalog, snapshots, states, index, scanner, loop, app, time.time(), recovery,
                   probe, metrics, opened.response_cache)


class _Pending:
    """The runtime being completed in the background, for the requests that need it."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.failed: BaseException | None = None
        self._done = threading.Event()
        self.wanted = threading.Event()  # a request waits for the runtime: complete it now
        self._lock = threading.Lock()
        self._observed: list[tuple[str, int, float]] = []  # requests answered before the metrics existed

    def set(self, runtime: Runtime | None, failed: BaseException | None = None) -> None:
        with self._lock:
            self.runtime, self.failed = runtime, failed
            if runtime is not None and runtime.metrics is not None:
                for args in self._observed:
                    runtime.metrics.observe_request(*args)
            self._observed = []
        self._done.set()

    def wait(self, timeout: float = STARTUP_WAIT) -> Runtime:
        from sparkhist.errors import ServiceUnavailable

        self.wanted.set()
        if not self._done.wait(timeout) or self.runtime is None:
            raise ServiceUnavailable(f"sparkhist is starting: {self.failed or 'the store is still loading'}")
        return self.runtime

    @property
    def ready(self) -> bool:
        return self.runtime is not None

    # -- what the HTTP layer is given --------------------------------------------------
    def observe_request(self, route: str, status: int, seconds: float) -> None:
        runtime = self.runtime
        if runtime is None:
            with self._lock:
                if self.runtime is None:
                    if len(self._observed) < 100_000:
                        self._observed.append((route, status, seconds))
                    return
                runtime = self.runtime
        assert runtime.metrics is not None
        runtime.metrics.observe_request(route, status, seconds)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        metrics = self.wait().metrics
        assert metrics is not None
        return metrics.exposition(accept)

    def health(self) -> dict[str, Any]:
        from sparkhist.observability.health import health_document

        probe = self.wait().probe
        assert probe is not None
        return health_document(probe)

    def is_ready(self) -> bool:
        runtime = self.runtime
        return runtime is not None and runtime.probe is not None and runtime.probe.ready()


class _States:
    """The ``StoreStates`` of the store's readers, made on the first request that needs them
    (without waiting for the rest of the runtime: scanner, records, probe)."""

    def __init__(self, opened: _Opened) -> None:
        self._opened = opened

    def get(self, app: Any, attempt: Any) -> Any:
        return _store_readers(self._opened).states.get(app, attempt)

    def __getattr__(self, name: str) -> Any:
        return getattr(_store_readers(self._opened).states, name)


class _ListingLoad:
    """The listing rows, loaded into the index after the server bound (when a stored list answers first)."""

    def __init__(self, opened: _Opened, pending: _Pending) -> None:
        self.opened = opened
        self.pending = pending
        self.stored = opened.stored
        self.loaded = threading.Event()
        self.failed: BaseException | None = None
        self.loaded_version = -1  # the index's version right after the load
        if self.stored is None:
            self.loaded.set()  # loaded by _open already

    def load(self) -> None:
        if self.loaded.is_set():
            return
        try:
            _load_listing(self.opened)
            self.loaded_version = self.opened.index.version
            log.info("%d applications listed in %.3fs", len(self.opened.index), time.monotonic() - self.opened.t0)
        except BaseException as exc:
            self.failed = exc
            raise
        finally:
            self.loaded.set()

    def wait(self) -> None:
        """Until the index is loaded (asking the start-up to load it now)."""
        if not self.loaded.is_set():
            self.pending.wanted.set()
            self.loaded.wait(STARTUP_WAIT)
        if self.failed is not None or not self.loaded.is_set():
            from sparkhist.errors import ServiceUnavailable

            raise ServiceUnavailable(f"sparkhist is starting: {self.failed or 'the store is still loading'}")

    def stored_body(self) -> bytes | None:
        """The stored list's bytes while they are the answer: the listing (and the index) unchanged."""
        stored = self.stored
        if stored is None:
            return None
        if (not stored.matches(self.opened.catalog)
                or self.loaded.is_set() and (self.failed is not None or self.opened.index.version != self.loaded_version)):
            self.stored = None  # stale for good: the index answers from now on
            log.info("the listing changed: the stored application list is no longer served")
            return None
        return stored.body


class _LoadingIndex:
    """The index, once loaded (``AppLookup``): reads wait for :class:`_ListingLoad`."""

    def __init__(self, index: ApplicationIndex, loading: _ListingLoad) -> None:
        self._index = index
        self._loading = loading

    def get(self, app_id: str) -> Any:
        if not self._loading.loaded.is_set():
            # Before the listing load: the application's own rows (a miss waits for the
            # load, so on-demand indexing still sees the whole index).
            with contextlib.suppress(StoreError):
                entries = self._loading.opened.catalog.listed_attempts(app_id)
                if entries:
                    return build_app(app_id, entries)
        self._loading.wait()
        return self._index.get(app_id)

    def sorted_apps(self) -> Any:
        self._loading.wait()
        return self._index.sorted_apps()

    def __len__(self) -> int:
        self._loading.wait()
        return len(self._index)

    @property
    def version(self) -> int:
        self._loading.wait()
        return self._index.version


def _early_context(opened: _Opened, pending: _Pending, loading: _ListingLoad | None = None) -> ServerContext:
    from sparkhist.api.app import ServerContext
    from sparkhist.scan.on_demand import OnDemandIndex

    if loading is None:
        loading = _ListingLoad(opened, pending)

    def load_on_demand(app_id: str) -> bool:
        return pending.wait().scanner.index_on_demand(app_id)

    def on_demand_enabled() -> bool:
        runtime = pending.runtime
        return opened.writer if runtime is None else runtime.loop.role == "writer"

    index: Any = opened.index if loading.loaded.is_set() else _LoadingIndex(opened.index, loading)
    lookup = OnDemandIndex(index, load_on_demand, enabled=on_demand_enabled,
                           miss_ttl=max(opened.settings.scan_interval, 1.0))
    return ServerContext(index=lookup, source=opened.source, states=_States(opened),
                         handle_app_resource=_handle_app_resource, health=pending.health, ready=pending.is_ready,
                         metrics=pending, stored_list=loading.stored_body,
                         response_cache=opened.response_cache)


class _FirstAnswer:
    """ASGI wrapper that notes when the first HTTP request came and when its answer was sent."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.asked = threading.Event()
        self.sent = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.sent.is_set():
            await self.app(scope, receive, send)
            return
        self.asked.set()

        async def watch(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.sent.set()

        await self.app(scope, receive, watch)


#: After binding, the background start waits this long for a first request, then (if one
#: came) up to ``FIRST_ANSWER_WAIT`` for its answer to be sent.
FIRST_ANSWER_GRACE = 1.0
FIRST_ANSWER_WAIT = 30.0
#: Least time between two writes of the stored application list while the listing changes.
LIST_WRITE_INTERVAL = 5.0


def _list_publisher(opened: _Opened) -> Any:
    from sparkhist.api.v1.applications import unfiltered_body
    from sparkhist.store.list_file import ListPublisher

    return ListPublisher(opened.settings.store_dir, opened.catalog, opened.index, unfiltered_body,
                         written=opened.stored)


def _publish(publisher: Any) -> None:
    try:
        publisher.publish()
    except Exception:  # noqa: BLE001 - the file is a cache: never stop serving for it
        log.exception("could not write the application list file")


def _publish_loop(publisher: Any, stop: threading.Event) -> None:
    while not stop.wait(LIST_WRITE_INTERVAL):
        _publish(publisher)


def serve(settings: Settings) -> None:
    import uvicorn

    from sparkhist.api.app import create_app

    opened = _open(settings, listing=True, stored_list=True)
    if opened.stored is None:
        log.info("store %s opened as %s: %d applications listed in %.3fs", settings.store_dir,
                 "writer" if opened.writer else "standby", len(opened.index), time.monotonic() - opened.t0)
    else:
        log.info("store %s opened as %s: stored application list of %d bytes in %.3fs", settings.store_dir,
                 "writer" if opened.writer else "standby", len(opened.stored.body), time.monotonic() - opened.t0)
    pending = _Pending()
    loading = _ListingLoad(opened, pending)
    app = create_app(_early_context(opened, pending, loading))
    outer = _FirstAnswer(app)
    config = uvicorn.Config(outer, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                            log_config=None)  # uvicorn's loggers go through ours (plain or JSON)
    server = uvicorn.Server(config)

    def complete() -> None:
        # The socket first, a first answer (if one is asked for soon) second, the rest after.
        while not server.started and not server.should_exit:
            time.sleep(0.005)
        if outer.asked.wait(FIRST_ANSWER_GRACE):
            deadline = time.monotonic() + FIRST_ANSWER_WAIT
            # Unless that request (or another) needs the rest of the runtime.
            while not outer.sent.wait(0.01) and not pending.wanted.is_set() and time.monotonic() < deadline:
                pass
        try:
            _store_readers(opened)  # what an application's details need first, before the listing
            loading.load()
            runtime = _complete(opened, app)
        except BaseException as exc:
            log.exception("could not complete the start-up; stopping")
            pending.set(None, exc)
            server.should_exit = True
            return
        pending.set(runtime)
        gc.freeze()
        if opened.writer:
            publisher.append(_list_publisher(opened))
        if not server.should_exit:
            runtime.loop.start()
            looping.set()
            if publisher:
                threading.Thread(target=_publish_loop, args=(publisher[0], stop_publishing),
                                 name="sparkhist-list-file", daemon=True).start()

    looping = threading.Event()
    publisher: list[Any] = []
    stop_publishing = threading.Event()
    finisher = threading.Thread(target=complete, name="sparkhist-start", daemon=True)
    finisher.start()
    log.info("serving %s on http://%s:%d", settings.log_dir, settings.host, settings.port)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal once it has
    # restored the previous handlers: make those no-ops so our cleanup below runs and
    # the process exits 0 after a clean stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    try:
        server.run()
    finally:
        server.should_exit = True
        finisher.join()
        stop_publishing.set()
        runtime = pending.runtime
        if runtime is not None:
            if looping.is_set():
                runtime.loop.stop()
            for each in publisher:  # the list as it is now, for the next start
                _publish(each)
            runtime.close()
        else:
            opened.lock.release()
            opened.catalog.close()
        log.info("stopped")
