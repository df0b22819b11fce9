"""The first answers: what the HTTP app reads while the start-up is still under way.

``serve`` binds once the store is open (:mod:`sparkhist.server.opening`). From then on,
until the runtime is complete:

- the unfiltered application list is answered from the stored list's bytes, while they
  are current, and otherwise from the index (:class:`ListingLoad`);
- an application is looked up in its own listing rows before the listing is loaded in
  full; anything else that reads the index waits for that load (:class:`LoadingIndex`);
- an application's details come from the store's readers, made on the first request
  that needs them (:class:`EarlyStates`), without waiting for the scanner or the records;
- metrics, health and on-demand loads wait for the runtime (:class:`PendingRuntime`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from sparkhist.errors import ServiceUnavailable, StoreError
from sparkhist.server.opening import OpenedStore, load_listing
from sparkhist.server.pending import STARTUP_WAIT, PendingRuntime
from sparkhist.server.runtime import handle_app_resource
from sparkhist.server.state_readers import store_readers
from sparkhist.store.applications import AppEntry, ApplicationIndex, AppLookup, AttemptEntry, build_app

if TYPE_CHECKING:
    from sparkhist.api.app import ServerContext
    from sparkhist.store.states import AttemptState

log = logging.getLogger("sparkhist.server")


class ListingLoad:
    """The listing rows, loaded into the index after the server bound (when a stored list answers first)."""

    def __init__(self, opened: OpenedStore, pending: PendingRuntime) -> None:
        self.opened = opened
        self.pending = pending
        self.stored = opened.stored
        self.loaded = threading.Event()
        self.failed: BaseException | None = None
        self.loaded_version = -1  # the index's version right after the load
        if self.stored is None:
            self.loaded.set()  # loaded by open_store already

    def load(self) -> None:
        if self.loaded.is_set():
            return
        try:
            load_listing(self.opened)
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
            self.pending.want()
            self.loaded.wait(STARTUP_WAIT)
        if self.failed is not None or not self.loaded.is_set():
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


class LoadingIndex:
    """The index, once loaded (an :class:`~sparkhist.store.applications.AppLookup`): reads wait for
    :class:`ListingLoad`, except the lookup of one application, answered from its own rows meanwhile."""

    def __init__(self, index: ApplicationIndex, loading: ListingLoad) -> None:
        self._index = index
        self._loading = loading

    def get(self, app_id: str) -> AppEntry | None:
        if not self._loading.loaded.is_set():
            # Before the listing load: the application's own rows (a miss waits for the
            # load, so on-demand indexing still sees the whole index).
            with contextlib.suppress(StoreError):
                entries = self._loading.opened.catalog.listed_attempts(app_id)
                if entries:
                    return build_app(app_id, entries, self._index.directory_of)
        self._loading.wait()
        return self._index.get(app_id)

    def sorted_apps(self) -> list[AppEntry]:
        self._loading.wait()
        return self._index.sorted_apps()

    def __len__(self) -> int:
        self._loading.wait()
        return len(self._index)

    @property
    def version(self) -> int:
        self._loading.wait()
        return self._index.version


class EarlyStates:
    """The store's application states (an :class:`~sparkhist.api.v1.dispatch.AppStates`), made on the
    first request that needs them, without waiting for the rest of the runtime (scanner, records, probe)."""

    def __init__(self, opened: OpenedStore) -> None:
        self._opened = opened

    def get(self, app: AppEntry, attempt: AttemptEntry) -> AttemptState:
        return store_readers(self._opened).states.get(app, attempt)


def early_context(opened: OpenedStore, pending: PendingRuntime, loading: ListingLoad | None = None) -> ServerContext:
    """What the HTTP app reads from, from the moment the server binds."""
    from sparkhist.api.app import ServerContext
    from sparkhist.scan.on_demand import OnDemandIndex

    if loading is None:
        loading = ListingLoad(opened, pending)

    def load_on_demand(app_id: str) -> bool:
        return pending.wait().scanner.index_on_demand(app_id)

    def on_demand_enabled() -> bool:
        runtime = pending.runtime
        return opened.writer if runtime is None else runtime.loop.role == "writer"

    index: AppLookup = opened.index if loading.loaded.is_set() else LoadingIndex(opened.index, loading)
    lookup = OnDemandIndex(index, load_on_demand, enabled=on_demand_enabled,
                           miss_ttl=max(opened.settings.scan_interval, 1.0))
    return ServerContext(index=lookup, source=opened.source, states=EarlyStates(opened),
                         handle_app_resource=handle_app_resource, health=pending.health, ready=pending.is_ready,
                         metrics=pending, stored_list=loading.stored_body,
                         response_cache=opened.response_cache, log_source=opened.settings.log_source,
                         loaded_index=lambda: opened.index if loading.loaded.is_set() and loading.failed is None else None)
