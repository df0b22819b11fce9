"""A replica of a shared store: ``sparkhist serve --store URL --cache DIR``.

``index-on-spark --store URL`` writes snapshots and catalog segments to a shared location
(``file://``, ``hdfs://``, ``s3a://``...; :mod:`sparkhist.store.remote`); it is that
location's only writer. Any number of replicas serve it, each from its own cache
directory, an ordinary store directory:

- **The catalog** of the cache is made equal to the newest manifest's records by
  :func:`sparkhist.store.segments.sync_cache` (segments fetched only when not cached,
  each checksum-verified). A replica opens it read-only, as a standby that never takes
  over, and lists it at once: a restart answers from the cache before the shared store
  is asked anything, so it starts in well under a second and starts even when the store
  cannot be reached. Then :class:`~sparkhist.server.shared_store_sync.SyncLoop` follows new
  manifests every ``store_sync_interval`` seconds (``SPARKHIST_STORE_SYNC_INTERVAL``).
- **Snapshots** are fetched on first use (:meth:`SharedStoreSource.fetch`,
  :attr:`sparkhist.store.states.StoreStates.fetch`) into ``DIR/snapshots`` and read by the
  normal, verifying reader; the disk budget evicts the least recently used ones (fetched
  again when asked for) and the memory budget applies as for any store.
- **Offline**: when the store cannot be reached, every cached answer is still served; an
  attempt whose snapshot is not cached answers 503 with a clear message. The store is the
  replica's one source (:class:`SharedStoreSource` behind the usual
  :class:`~sparkhist.observability.sources.ObservedSource`), so ``/health/details`` (its
  ``sources`` entry, ``offline``, ``reasons``) and ``/metrics`` (``sparkhist_source_up``,
  ``sparkhist_offline``) say that it is offline and since when. The next sync that works
  brings the replica back up to date.

A replica never writes the shared store and never reads event logs: it has no log
directory (``--log-dir`` is refused; one from the environment or a properties file is
ignored with a log line), no on-demand load of an unknown application, no cleaner and no
analytics tables. The attempts' ``logSourceName``/``logSourceFullPath`` are the ones the
job indexed with (recorded in the catalog). One process serves per replica (a
``--cache`` directory belongs to one replica: its lock says which).
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

import orjson

from sparkhist.config import LogSource, LogSources, Settings, recorded_log_source
from sparkhist.errors import ConfigError, ServiceUnavailable, SourceError, SourceUnavailable, StoreError
from sparkhist.source.base import ByteStream, FileEntry, SourceHealth
from sparkhist.source.skipped import SkippedLogs
from sparkhist.store.snapshots import Snapshot, snapshot_name

if TYPE_CHECKING:
    from sparkhist.server.opening import OpenedStore
    from sparkhist.store.catalog import Catalog
    from sparkhist.store.disk import DiskBudget
    from sparkhist.store.remote import RemoteStore
    from sparkhist.store.states import StoreStates

log = logging.getLogger("sparkhist.server")

T = TypeVar("T")

#: The role a replica reports in ``/health/details`` (a store's writer is "writer", a standby "standby").
ROLE = "replica"


def replica_settings(settings: Settings, url: str, cache_dir: str) -> Settings:
    """The settings of a replica of ``url`` cached in ``cache_dir``: the cache is its store
    directory; nothing that reads logs or writes beyond the cache is on."""
    return replace(settings, shared_store=url, store_dir=cache_dir, log_dir=url, serve_processes=1, index_workers=1,
                   watch_log_dir=False, cleaner_enabled=False, analytics_tables=False)


class SharedStoreSource:
    """The shared store as a replica sees it: its one source (for health and metrics),
    what :class:`~sparkhist.server.shared_store_sync.SyncLoop` syncs the cache from, and what fetches snapshots on demand.

    Its state is ``ok`` while the last call to the store answered, ``offline`` from the
    first one that could not reach it (sync or fetch) until one answers again; ``since``
    is when the state began. The :class:`~sparkhist.source.base.Source` protocol's file
    calls are refused: a replica reads no log.
    """

    def __init__(self, remote: RemoteStore, cache_dir: str, *, clock: Callable[[], float] = time.time) -> None:
        self.remote = remote
        self.url = remote.url
        self.cache_dir = cache_dir
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}
        self._fetching: dict[str, threading.Lock] = {}  # snapshot file -> its fetch's lock
        self._fetched: dict[str, float] = {}  # snapshot file -> when its last fetch ended (monotonic)
        self._skipped = SkippedLogs(remote.url)
        self.state = "ok"
        self.since = clock()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.syncs = 0
        self.fetches = 0
        self.manifest: str | None = None  # the manifest the cache's catalog is equal to (None: not synced yet)

    # -- the store --------------------------------------------------------------------
    def sync(self) -> list[str] | None:
        """Make the cache's catalog equal to the newest manifest. Returns the logs whose records
        were added, changed or removed (their cached snapshots dropped), None when nothing changed.

        Raises :class:`SourceError` (the store could not be reached or read).
        """
        from sparkhist.store import segments

        def sync() -> segments.SyncResult:
            if self.manifest is not None or os.path.exists(os.path.join(self.cache_dir, segments.SEGMENTS_DIR,
                                                                          segments.CACHED_MANIFEST)):
                # A store that held a manifest holds one for good (the commit point is never deleted):
                # none at all is a store that is not there (a directory gone, a bucket unreachable).
                names = self.remote.list(segments.CATALOG_DIR)
                if not any(n.startswith(segments.CATALOG_DIR + "/MANIFEST-") for n in names):
                    raise SourceUnavailable(f"the shared store {self.url} shows no manifest (its catalog directory "
                                            "is missing or empty): not synced")
            return segments.sync_cache(self.remote, self.cache_dir)

        result = self._call("sync", sync)
        self.syncs += 1
        changed = result.manifest != self.manifest or bool(result.added or result.changed or result.removed)
        if changed:
            log.info("cache %s synced with %s (manifest %s): %d added, %d changed, %d removed", self.cache_dir,
                     self.url, result.manifest, result.added, result.changed, result.removed,
                     extra={"event": "store_sync", "manifest": result.manifest})
        self.manifest = result.manifest
        return list(result.changed_paths) if changed else None

    def fetch(self, log_path: str) -> None:
        """Bring the snapshot of ``log_path`` into the cache; raises :class:`ServiceUnavailable`
        (a 503 saying why) when the store cannot give it."""

        name = snapshot_name(log_path)
        asked = time.monotonic()
        with self._lock:
            lock = self._fetching.setdefault(name, threading.Lock())
        with lock:  # one fetch of a snapshot at a time; requests that waited for it use what it brought
            if self._fetched.get(name, float("-inf")) >= asked:
                return
            self._fetch(log_path, name)
            self._fetched[name] = time.monotonic()

    def _fetch(self, log_path: str, name: str) -> None:
        from sparkhist.store import segments

        try:
            self._call("fetch", lambda: segments.fetch_snapshot(self.remote, self.cache_dir, name))
        except (SourceError, StoreError, OSError) as exc:
            if isinstance(exc, FileNotFoundError) and self.state != "offline":
                raise ServiceUnavailable(f"the snapshot of {log_path} is not in the shared store {self.url} "
                                         f"(the store changed since this replica's last sync): {exc}") from exc
            raise ServiceUnavailable(f"the shared store {self.url} cannot be reached and the snapshot of "
                                     f"{log_path} is not in this replica's cache ({self.cache_dir}): {exc}") from exc
        self.fetches += 1

    def _call(self, op: str, fn: Callable[[], T]) -> T:
        try:
            result = fn()
        except FileNotFoundError:
            raise  # an answer about one file, which tells nothing of the store's reachability
        except (SourceError, StoreError, OSError) as exc:
            self._record(op, exc)
            raise
        self._record(op, None)
        return result

    def _record(self, op: str, exc: Exception | None) -> None:
        now = self._clock()
        with self._lock:
            self._calls[op] = self._calls.get(op, 0) + 1
            if exc is not None:
                self.last_error, self.last_error_at = f"{op}: {exc}", now
            reachable = exc is None or not _unreachable(exc)
            state = "ok" if reachable else "offline"
            previous, changed = self.state, state != self.state
            if changed:
                self.state, self.since = state, now
        if changed:
            if state == "offline":
                log.warning("shared store %s is offline (%s): serving from the cache %s", self.url, exc, self.cache_dir,
                            extra={"event": "offline_entered", "log_dir": self.url, "state": state, "previous": previous})
            else:
                log.info("shared store %s is reachable again", self.url,
                         extra={"event": "offline_left", "log_dir": self.url, "state": state, "previous": previous})

    # -- the Source protocol ------------------------------------------------------------
    @property
    def root(self) -> str:
        return self.url

    @property
    def root_path(self) -> str:
        return self.url

    @property
    def calls(self) -> Mapping[str, int]:
        return dict(self._calls)

    @property
    def skipped(self) -> SkippedLogs:
        return self._skipped

    def list(self, path: str) -> builtins.list[FileEntry]:
        raise SourceError(f"a replica of {self.url} reads no log directory")

    def stat(self, path: str) -> FileEntry:
        raise SourceError(f"a replica of {self.url} reads no log: {path}")

    def open(self, path: str, offset: int = 0) -> ByteStream:
        raise SourceError(f"a replica of {self.url} serves the shared store's snapshots, not the event logs: {path} "
                          "is downloaded from a server that reads the log directory")

    def delete(self, path: str) -> None:
        raise SourceError(f"a replica never writes the shared store {self.url}")

    def join(self, parent: str, name: str) -> str:
        return parent.rstrip("/") + "/" + name

    def health(self) -> SourceHealth:
        with self._lock:
            return SourceHealth(source=self.url, state="offline" if self.state == "offline" else "ok", since=self.since,
                                last_error=self.last_error, last_error_at=self.last_error_at, breaker=None)

    def close(self) -> None:
        self.remote.close()


def _unreachable(exc: Exception) -> bool:
    """An error that says the store could not be reached (not one about what it holds)."""
    return isinstance(exc, SourceError | OSError)


def catalog_log_source(catalog: Catalog) -> LogSource | LogSources | None:
    """The log directory (or directories) the catalog's listing rows were rendered for, as the job
    configured them: ``[name, path]`` for one, ``[[name, path], ...]`` for several."""
    try:
        source = orjson.loads(catalog.meta.get("listing_renders", "null") or "null")
    except orjson.JSONDecodeError:
        return None
    return recorded_log_source(source.get("source") if isinstance(source, dict) else None)


def open_replica(settings: Settings, *, t0: float, started: float) -> OpenedStore:
    """Step one of a replica's start: its cache locked, its catalog opened read-only and listed.

    Nothing here asks the shared store, unless the cache holds no catalog yet (a first
    start): then one sync is tried; when it fails, the replica starts empty and offline.
    """
    from sparkhist.api.response_cache import ResponseCache
    from sparkhist.observability.sources import ObservedSource
    from sparkhist.server.opening import OpenedStore, load_listing
    from sparkhist.source.factory import SourceOptions
    from sparkhist.store.applications import ApplicationIndex
    from sparkhist.store.catalog import CATALOG_FILE, Catalog
    from sparkhist.store.lock import WriterLock
    from sparkhist.store.remote import RemoteStore

    url, cache_dir = settings.shared_store, settings.store_dir
    assert url is not None
    lock = WriterLock(cache_dir)
    if not lock.try_acquire():
        raise ConfigError(f"cache directory {cache_dir} is used by another replica (pid {lock.holder_pid()}): "
                          "give each replica its own --cache")
    shared = SharedStoreSource(RemoteStore.open(url, SourceOptions.from_settings(settings)), cache_dir)
    if not os.path.exists(os.path.join(cache_dir, CATALOG_FILE)):
        try:
            shared.sync()
        except (SourceError, StoreError, OSError) as exc:
            log.warning("shared store %s cannot be reached (%s) and the cache %s is empty: serving nothing until it "
                        "can be", url, exc, cache_dir, extra={"event": "store_sync_failed"})
        if not os.path.exists(os.path.join(cache_dir, CATALOG_FILE)):
            Catalog(cache_dir, url).close()  # an empty catalog, made equal to the manifest by the first sync that works
    catalog = Catalog(cache_dir, None, read_only=True)
    source = catalog_log_source(catalog)
    if source is not None:
        settings = replace(settings, log_source=source)
    catalog.log_source = settings.log_source
    opened = OpenedStore(settings, ObservedSource(shared), lock, False, catalog, ApplicationIndex(settings.log_source),
                         t0, started)
    if settings.response_cache > 0:
        opened.response_cache = ResponseCache(settings.response_cache)
    load_listing(opened)
    return opened


def replica_of(opened: OpenedStore) -> SharedStoreSource | None:
    """The shared store ``opened`` is a replica of (None: an ordinary store)."""
    inner = getattr(opened.source, "inner", None)
    return inner if isinstance(inner, SharedStoreSource) else None


def fetch_into(opened: OpenedStore, states: StoreStates, budget: DiskBudget) -> None:
    """A replica's states fetch a missing snapshot from the shared store into the cache (counted by
    the disk budget, which may evict the least recently used others) and never build one from a log:
    a snapshot still missing or older than its catalog record after a fetch is a clear 503."""
    shared = replica_of(opened)
    assert shared is not None
    snapshots = states.snapshots

    def fetch(log_path: str) -> None:
        shared.fetch(log_path)
        try:
            size = os.path.getsize(snapshots.path_for(log_path))
        except OSError:
            return
        budget.wrote(log_path, size)

    def build(log_path: str, *, persist: bool) -> Snapshot:
        raise StoreError(f"the shared store {shared.url} has no up-to-date snapshot of {log_path} "
                         "(a replica reads no log; the next run of index-on-spark writes it)")

    states.fetch = fetch
    states.build = build
