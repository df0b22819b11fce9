"""Catalog writes that never fail their caller: what cannot be written yet is kept.

The scanner hands records over in batches. A write the catalog refuses (disk full, a
read-only file system) keeps the records in memory; every later write, or
:meth:`WriteBehind.flush`, tries them again together with its own. A catalog replaced
after damage (its ``generation`` moved) is given every record held, since the new one
starts empty.

A caller that already rendered the records' listing rows (the index renders them) hands them
along, so the catalog does not render them again; the rows of records kept for a retry are
rendered by the catalog then.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sparkhist.errors import StoreError
from sparkhist.store.applications import ListingRow
from sparkhist.store.catalog import Catalog
from sparkhist.store.records import LogRecord

if TYPE_CHECKING:
    from sparkhist.config import LogSource, LogSources

log = logging.getLogger("sparkhist.store")


class WriteBehind:
    """Writes records and removals to ``catalog``, keeping failed writes for a retry.

    ``held``: every record its owner holds (written in full to a replaced catalog).
    ``lock``: the lock that guards ``held``; taken around each write.
    """

    def __init__(self, catalog: Catalog, held: Callable[[], Mapping[str, LogRecord]], *,
                 lock: AbstractContextManager[Any] | None = None) -> None:
        self.catalog = catalog
        self._held = held
        self._lock: AbstractContextManager[Any] = lock if lock is not None else threading.RLock()
        self._unsaved: dict[str, LogRecord] = {}  # records the catalog could not take yet
        self._generation = catalog.generation

    @property
    def unsaved(self) -> int:
        """Records waiting for the catalog to take them."""
        return len(self._unsaved)

    def put(self, records: Iterable[LogRecord], rendered: Mapping[str, ListingRow] | None = None,
            rendered_for: LogSource | LogSources | None = None) -> None:
        """Write ``records`` (and any delayed ones); on failure keep them for the next write.

        ``rendered``, ``rendered_for``: the records' listing rows already rendered (see :meth:`Catalog.put`).
        """
        with self._lock:
            generation = self.catalog.generation
            if generation != self._generation:
                # The catalog was replaced after damage: it needs every record again.
                batch = {**self._held(), **self._unsaved, **{r.path: r for r in records}}
            else:
                batch = {**self._unsaved, **{r.path: r for r in records}}
            if not batch:
                return
            try:
                self.catalog.put(batch.values(), rendered, rendered_for)
            except StoreError as exc:
                if not self._unsaved:
                    log.error("%s; %d records kept in memory, retried at the next write", exc, len(batch))
                self._unsaved = batch
                return
            if self._unsaved:
                log.info("catalog writable again: %d delayed records saved", len(self._unsaved))
            self._unsaved = {}
            self._generation = generation

    def delete(self, paths: list[str]) -> None:
        """Remove ``paths`` from the catalog (and from the delayed writes)."""
        with self._lock:
            for path in paths:
                self._unsaved.pop(path, None)
            try:
                self.catalog.delete(paths)
            except StoreError as exc:
                if self.catalog.generation != self._generation:
                    self.put([])  # replaced after damage: write what is held (without the removed)
                else:
                    log.error("%s; the removed logs stay in the catalog until the next scan", exc)

    def flush(self) -> None:
        """Retry the delayed writes."""
        self.put([])

    def batch(self, size: int, rendered_for: LogSource | LogSources | None = None) -> Batch:
        """A batch of puts written every ``size`` records and by :meth:`Batch.flush`; the listing
        rows added with them are rendered for ``rendered_for``."""
        return Batch(self, size, rendered_for)


class Batch:
    """Records collected by one caller and written ``size`` at a time."""

    def __init__(self, writes: WriteBehind, size: int, rendered_for: LogSource | LogSources | None = None) -> None:
        self._writes = writes
        self._size = size
        self._rendered_for = rendered_for
        self._pending: list[LogRecord] = []
        self._rows: dict[str, ListingRow] = {}

    def add(self, record: LogRecord, row: ListingRow | None = None) -> None:
        """``row``: the record's listing row when already rendered (for the batch's ``rendered_for``)."""
        self._pending.append(record)
        if row is not None:
            self._rows[record.path] = row
        else:
            self._rows.pop(record.path, None)
        if len(self._pending) >= self._size:
            self.flush()

    def flush(self) -> None:
        """Write what was added since the last write (with any delayed records)."""
        pending, self._pending = self._pending, []
        rows, self._rows = self._rows, {}
        self._writes.put(pending, rows, self._rendered_for)
