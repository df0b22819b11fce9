"""Step one of a start: the store opened (as its writer or a standby) and its listing in the index.

That is all answering the application list needs, so only that is imported here; the
rest of the runtime is :mod:`sparkhist.server.runtime`. When the store holds a current
pre-rendered list (:mod:`sparkhist.store.list_file`), even the listing rows can wait:
the list is answered from the file's bytes and the rows are loaded right after
(:mod:`sparkhist.server.first_answer`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sparkhist.config import Settings, use_retention_limits
from sparkhist.errors import StoreError
from sparkhist.resilience.retry import Backoff, RetryPolicy, RetryState
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from sparkhist.store.list_file import StoredList
from sparkhist.store.lock import WriterLock

if TYPE_CHECKING:
    from sparkhist.api.response_cache import ResponseCache
    from sparkhist.observability.sources import ObservedSource
    from sparkhist.scan.loop import ScanLoop
    from sparkhist.server.state_readers import StoreReaders

log = logging.getLogger("sparkhist.server")

#: How long a standby waits for the writer to create the store's catalog, and how often it looks.
STANDBY_WAIT = 30.0
STANDBY_RETRY_EVERY = 0.5


@dataclass
class OpenedStore:
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
    readers: StoreReaders | None = None  # what reads application states (made on first need)
    loop: ScanLoop | None = None  # once the runtime is complete: whose role says writer or standby
    readers_lock: threading.Lock = field(default_factory=threading.Lock)
    response_cache: ResponseCache | None = None  # rendered answers of completed attempts; None: off

    def is_writer(self) -> bool:
        return self.writer if self.loop is None else self.loop.role == "writer"


def load_listing(opened: OpenedStore) -> None:
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


def _open_as_standby(store_dir: str, wait: float = STANDBY_WAIT) -> Catalog:
    """Another process writes this store: read its catalog (waiting up to ``wait`` seconds for it to exist)."""

    def waiting(state: RetryState) -> None:
        log.info("waiting for the writer of %s to create its catalog", store_dir)

    every = STANDBY_RETRY_EVERY
    policy = RetryPolicy(attempts=int(wait / every) + 2, backoff=Backoff(base=every, cap=every, multiplier=1.0, jitter=0.0),
                         budget=wait + every,  # a new try while less than ``wait`` seconds went by
                         retry_on=lambda exc: isinstance(exc, StoreError), before_sleep=waiting)
    return policy.call(lambda: Catalog(store_dir, None, read_only=True))


def open_store(settings: Settings, *, listing: bool, stored_list: bool = False, may_write: bool = True) -> OpenedStore:
    """Open the store. ``listing``: load the listing rows into the index, unless
    ``stored_list`` is asked for and the store has a current one (then loaded later).
    ``may_write`` False: only ever read it, as a standby that never takes over (a serving process)."""
    from sparkhist.observability.sources import observe
    from sparkhist.source.factory import open_source

    t0 = time.monotonic()
    started = time.time()
    use_retention_limits(settings)  # logs are read with the server's limits (a change re-reads them)
    if settings.shared_store is not None:  # a replica: its cache opened, the shared store not asked
        from sparkhist.server.shared_store import open_replica

        return open_replica(settings, t0=t0, started=started)
    source = observe(open_source(settings.log_dir, settings))  # counts calls, tells ok/degraded/offline (per directory)
    lock = WriterLock(settings.store_dir)
    writer = may_write and lock.try_acquire()
    catalog = (Catalog(settings.store_dir, source.root, log_source=settings.log_source) if writer
               else _open_as_standby(settings.store_dir))
    catalog.log_source = settings.log_source  # the attempts' logSourceName/FullPath (a standby's when promoted)
    opened = OpenedStore(settings, source, lock, writer, catalog, ApplicationIndex(settings.log_source), t0, started)
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
        load_listing(opened)
    return opened
