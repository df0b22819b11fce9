"""The application list, kept in memory and derived from the catalog's log records.

Several logs can be attempts of one application (grouped by the ``App ID`` of their
ApplicationStart, as the SHS does). Entries are immutable; every change builds new
ones, so API threads read a consistent snapshot without locks.

Each attempt is also kept as its *listing row* (:func:`listing_row`): a small binary
header with what the list's filters and order need, the log's path, the app and
attempt ids, the attempt's listing (JSON, decoded only when asked for) and its list
element already rendered as the API sends it. The catalog stores the row (with its
own checksum) beside the log's record, so a restart fills the index from these rows
without decoding records or rendering JSON. A row is rendered once per new record: the
index renders it (:meth:`ApplicationIndex.update` returns the entry made) and its owner
hands the same bytes to the catalog write (:attr:`AttemptEntry.row`).
"""

from __future__ import annotations

import gc
import operator
import struct
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from sparkhist.config import LogSources
from sparkhist.events.listing import AttemptListing
from sparkhist.render.listing import join_entry, render_entry
from sparkhist.store.records import LogRecord

if TYPE_CHECKING:
    from sparkhist.config import LogSource

# The head of a listing row: flags, start, end, last updated, total size, the lengths
# of the path, app id, attempt id and listing JSON that follow it, and where the
# attempt object is in the entry.
_HEAD = struct.Struct("<BqqqqIHHIII")
_COMPLETED, _ROLLING, _HAS_ATTEMPT = 1, 2, 4

#: A listing row: ``(head, entry)`` (see :func:`listing_row`).
ListingRow = tuple[bytes, bytes]


def listing_row(record: LogRecord, source: LogSource | LogSources | None = None) -> ListingRow | None:
    """The listing row of a record: ``(head, entry)``; None when the log is not listed (no app id yet).

    ``entry`` is the application's list element as the API sends it (see
    ``render.listing.render_entry``; ``source`` is the log directory the attempts show, or the
    directories, of which the record's path picks one); ``head`` what the index needs besides.
    """
    listing = record.listing
    app_id = listing.app_id
    if app_id is None:
        return None
    if isinstance(source, LogSources):
        source = source.for_path(record.path)
    entry, start, end = render_entry(app_id, listing, record.last_updated, source)
    path = record.path.encode()
    app = app_id.encode()
    attempt = (listing.attempt_id or "").encode()
    listing_json = orjson.dumps(listing.to_dict())
    flags = ((_COMPLETED if listing.completed else 0) | (_ROLLING if record.kind == "rolling" else 0)
             | (_HAS_ATTEMPT if listing.attempt_id is not None else 0))
    head = _HEAD.pack(flags, listing.start_time, listing.end_time, record.last_updated, record.total_size,
                      len(path), len(app), len(attempt), len(listing_json), start, end)
    return b"".join((head, path, app, attempt, listing_json)), entry


class AttemptEntry:
    """One attempt in the list: its path and ids decoded, the rest read from its row on demand."""

    __slots__ = ("log_path", "app_id", "_head", "_fields", "entry", "_listing", "_attempt_id")

    def __init__(self, head: bytes, entry: bytes, listing: AttemptListing | None = None) -> None:
        """Decode a listing row (raises ``struct.error`` or ``ValueError`` when malformed)."""
        fields = _HEAD.unpack_from(head)
        at = _HEAD.size
        end = at + fields[5]
        self.log_path = head[at:end].decode()
        self.app_id = head[end:end + fields[6]].decode()
        if at + fields[5] + fields[6] + fields[7] + fields[8] != len(head) or not fields[9] < fields[10] <= len(entry):
            raise ValueError("malformed listing row")
        self._head = head
        self._fields = fields
        #: The list element of an application with only this attempt (list indentation).
        self.entry = entry
        self._listing = listing
        self._attempt_id: str | None | bool = False  # False: not decoded yet

    @classmethod
    def of(cls, record: LogRecord, source: LogSource | LogSources | None = None) -> AttemptEntry:
        row = listing_row(record, source)
        if row is None:
            raise ValueError(f"{record.path} has no application id")
        return cls(row[0], row[1], record.listing)

    @property
    def row(self) -> ListingRow:
        """The listing row this entry was decoded from: ``(head, entry)``, as :func:`listing_row` gives it."""
        return self._head, self.entry

    @property
    def attempt_id(self) -> str | None:
        attempt_id = self._attempt_id
        if attempt_id is False:
            f = self._fields
            if f[0] & _HAS_ATTEMPT:
                at = _HEAD.size + f[5] + f[6]
                attempt_id = self._head[at:at + f[7]].decode()
            else:
                attempt_id = None
            self._attempt_id = attempt_id
        return attempt_id  # type: ignore[return-value]

    @property
    def completed(self) -> bool:
        return bool(self._fields[0] & _COMPLETED)

    @property
    def start_time(self) -> int:
        return self._fields[1]  # type: ignore[no-any-return]

    @property
    def end_time(self) -> int:
        return self._fields[2]  # type: ignore[no-any-return]

    @property
    def last_updated(self) -> int:
        return self._fields[3]  # type: ignore[no-any-return]

    @property
    def total_size(self) -> int:
        return self._fields[4]  # type: ignore[no-any-return]

    @property
    def log_kind(self) -> str:
        return "rolling" if self._fields[0] & _ROLLING else "single"

    @property
    def listing(self) -> AttemptListing:
        listing = self._listing
        if listing is None:
            listing = self._listing = AttemptListing.from_dict(self.listing_dict())
        return listing

    def listing_dict(self) -> dict[str, Any]:
        """The attempt's listing as stored in the row (``AttemptListing.to_dict``)."""
        f = self._fields
        at = _HEAD.size + f[5] + f[6] + f[7]
        data = orjson.loads(self._head[at:at + f[8]])
        if not isinstance(data, dict):
            raise ValueError("listing is not an object")
        return data

    @property
    def app_name(self) -> str | None:
        return self.listing.app_name

    @property
    def attempt_json(self) -> bytes:
        """This attempt's object as it appears inside any list element."""
        return self.entry[self._fields[9]:self._fields[10]]

    def fields(self) -> dict[str, Any]:
        """This attempt's ``ApplicationAttemptInfo`` as rendered in its row (the list's fields, in order)."""
        fields = orjson.loads(self.attempt_json)
        if not isinstance(fields, dict):
            raise ValueError("the attempt is not an object")
        return fields

    def __repr__(self) -> str:
        return f"AttemptEntry({self.log_path!r}, app_id={self.app_id!r}, attempt_id={self.attempt_id!r})"


class AppEntry:
    """An application: its attempts, newest start first, and its rendered list element."""

    __slots__ = ("id", "attempts", "end_time", "_fragment")

    def __init__(self, app_id: str, attempts: tuple[AttemptEntry, ...]) -> None:
        self.id = app_id
        self.attempts = attempts
        self.end_time: int = attempts[0].end_time
        self._fragment: orjson.Fragment | None = None

    @property
    def name(self) -> str | None:
        return self.attempts[0].app_name

    @property
    def running(self) -> bool:
        return not self.attempts[0].completed

    @property
    def fragment(self) -> orjson.Fragment:
        """The element of ``/applications`` for this application, as bytes ``dumps`` inserts."""
        fragment = self._fragment
        if fragment is None:
            if len(self.attempts) == 1:
                body = self.attempts[0].entry
            else:
                body = join_entry(self.id, self.name, [a.attempt_json for a in self.attempts])
            fragment = self._fragment = orjson.Fragment(body)
        return fragment

    def __repr__(self) -> str:
        return f"AppEntry({self.id!r}, {len(self.attempts)} attempts)"


def _attempt_rank(entry: AttemptEntry, directory_of: Callable[[str], int] | None) -> tuple[bool, int, int]:
    # When two logs claim the same attempt (an .inprogress file left next to the final
    # one), the completed one wins, then the most recently updated; then, for copies in
    # several log directories, the one in the later directory (the SHS merges the
    # directories' logs in their order, and the last one merged stays).
    return (entry.completed, entry.last_updated, directory_of(entry.log_path) if directory_of is not None else 0)


def build_app(app_id: str, entries: Iterable[AttemptEntry],
              directory_of: Callable[[str], int] | None = None) -> AppEntry:
    """``directory_of``: the position of a log's directory among several (None: one directory)."""
    by_attempt: dict[str | None, AttemptEntry] = {}
    for entry in entries:
        current = by_attempt.get(entry.attempt_id)
        if current is None or _attempt_rank(entry, directory_of) > _attempt_rank(current, directory_of):
            by_attempt[entry.attempt_id] = entry
    if len(by_attempt) == 1:
        return AppEntry(app_id, tuple(by_attempt.values()))
    attempts = sorted(by_attempt.values(), key=lambda a: a.start_time, reverse=True)
    return AppEntry(app_id, tuple(attempts))


_BY_ID = operator.attrgetter("id")
_BY_END = operator.attrgetter("end_time")


class ApplicationIndex:
    """Application entries by id, plus the list in the SHS's order (end time descending)."""

    def __init__(self, log_source: LogSource | LogSources | None = None) -> None:
        """``log_source``: the log directory the attempts of the records given to :meth:`load`
        and :meth:`update` show (their rows are rendered here)."""
        self.log_source = log_source
        self._lock = threading.Lock()
        self._entries_by_app: dict[str, dict[str, AttemptEntry]] = {}
        self._app_of_path: dict[str, str] = {}
        self._apps: dict[str, AppEntry] = {}
        self._sorted: list[AppEntry] | None = None
        self.version = 0

    @property
    def directory_of(self) -> Callable[[str], int] | None:
        """The position of a log's directory among several (None: one directory), for :func:`build_app`."""
        source = self.log_source
        return source.index_of if isinstance(source, LogSources) else None

    def load(self, records: Iterable[LogRecord]) -> None:
        """Fill the index in bulk from records (their listing rows are rendered here)."""
        self.load_entries(AttemptEntry.of(r, self.log_source) for r in records if r.app_id is not None)

    def load_entries(self, entries: Iterable[AttemptEntry]) -> None:
        """Fill the index in bulk (start-up): one build per application, not per log."""
        gc_enabled = gc.isenabled()
        gc.disable()  # ~3 objects per application: collections meanwhile would walk them all, repeatedly
        try:
            self._load_entries(entries)
        finally:
            if gc_enabled:
                gc.enable()

    def _load_entries(self, entries: Iterable[AttemptEntry]) -> None:
        with self._lock:
            if not self._app_of_path:
                self._load_empty(entries)
                return
            by_app = self._entries_by_app
            app_of_path = self._app_of_path
            touched: dict[str, None] = {}
            for entry in entries:
                app_id = entry.app_id
                old = app_of_path.get(entry.log_path)
                if old is not None and old != app_id:
                    self._forget_locked(entry.log_path)
                    touched[old] = None
                group = by_app.get(app_id)
                if group is None:
                    by_app[app_id] = {entry.log_path: entry}
                else:
                    group[entry.log_path] = entry
                app_of_path[entry.log_path] = app_id
                touched[app_id] = None
            apps = self._apps
            for app_id in touched:
                group = by_app.get(app_id)
                if not group:
                    by_app.pop(app_id, None)
                    apps.pop(app_id, None)
                elif len(group) == 1:
                    apps[app_id] = AppEntry(app_id, tuple(group.values()))
                else:
                    apps[app_id] = build_app(app_id, group.values(), self.directory_of)
            self._changed()

    def _load_empty(self, entries: Iterable[AttemptEntry]) -> None:
        by_app = self._entries_by_app
        app_of_path = self._app_of_path
        for entry in entries:
            path, app_id = entry.log_path, entry.app_id
            group = by_app.get(app_id)
            if group is None:
                by_app[app_id] = {path: entry}
            else:
                group[path] = entry
            app_of_path[path] = app_id
        apps = self._apps
        for app_id, group in by_app.items():
            if len(group) == 1:
                for entry in group.values():
                    apps[app_id] = AppEntry(app_id, (entry,))
            else:
                apps[app_id] = build_app(app_id, group.values(), self.directory_of)
        self._changed()

    def update(self, record: LogRecord) -> AttemptEntry | None:
        """Add or replace one log's record (records without an app id are not listed).

        Returns the entry the record is listed with (None: not listed): its :attr:`~AttemptEntry.row`
        is the record's listing row for this index's ``log_source``, which the catalog write can take
        instead of rendering it again.
        """
        entry = AttemptEntry.of(record, self.log_source) if record.app_id is not None else None
        with self._lock:
            self._remove_locked(record.path)
            if entry is None:
                return None
            app_id = entry.app_id
            group = self._entries_by_app.setdefault(app_id, {})
            group[record.path] = entry
            self._app_of_path[record.path] = app_id
            self._apps[app_id] = build_app(app_id, group.values(), self.directory_of)
            self._changed()
        return entry

    def entry_of(self, path: str) -> AttemptEntry | None:
        """The entry of the log at ``path`` (None: not listed)."""
        with self._lock:
            app_id = self._app_of_path.get(path)
            return None if app_id is None else self._entries_by_app[app_id].get(path)

    def remove(self, path: str) -> None:
        with self._lock:
            self._remove_locked(path)

    def paths(self) -> set[str]:
        """The logs the index lists."""
        with self._lock:
            return set(self._app_of_path)

    def _forget_locked(self, path: str) -> None:
        app_id = self._app_of_path.pop(path)
        group = self._entries_by_app[app_id]
        del group[path]

    def _remove_locked(self, path: str) -> None:
        app_id = self._app_of_path.pop(path, None)
        if app_id is None:
            return
        group = self._entries_by_app[app_id]
        del group[path]
        if group:
            self._apps[app_id] = build_app(app_id, group.values(), self.directory_of)
        else:
            del self._entries_by_app[app_id]
            del self._apps[app_id]
        self._changed()

    def _changed(self) -> None:
        self._sorted = None
        self.version += 1

    def get(self, app_id: str) -> AppEntry | None:
        return self._apps.get(app_id)

    def logs_of(self, app_id: str) -> list[AttemptEntry]:
        """Every log's entry for ``app_id``: the attempts it lists, and logs that claim the same attempt."""
        with self._lock:
            return list(self._entries_by_app.get(app_id, {}).values())

    def snapshot(self) -> tuple[dict[str, AttemptEntry], list[AppEntry]]:
        """Every attempt entry by log path, and the sorted list, consistent with each other."""
        with self._lock:
            entries = {path: entry for group in self._entries_by_app.values() for path, entry in group.items()}
            apps = self._sorted
            if apps is None:
                apps = sorted(self._apps.values(), key=_BY_ID, reverse=True)
                apps.sort(key=_BY_END, reverse=True)
                self._sorted = apps
            return entries, apps

    def __len__(self) -> int:
        return len(self._apps)

    def sorted_apps(self) -> list[AppEntry]:
        """All applications, latest end time first; ties (e.g. running apps) by id descending."""
        current = self._sorted
        if current is not None:
            return current
        with self._lock:
            if self._sorted is None:
                # (end time, id) descending, as two stable sorts on plain attributes (cheaper at 100,000).
                apps = sorted(self._apps.values(), key=_BY_ID, reverse=True)
                apps.sort(key=_BY_END, reverse=True)
                self._sorted = apps
            return self._sorted


class AppLookup(Protocol):
    """What the API needs of the application index (the index itself, or with on-demand loads)."""

    def get(self, app_id: str) -> AppEntry | None: ...

    def sorted_apps(self) -> list[AppEntry]: ...

    def __len__(self) -> int: ...

    @property
    def version(self) -> int: ...
