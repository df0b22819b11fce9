"""The application list, kept in memory and derived from the catalog's log records.

Several logs can be attempts of one application (grouped by the ``App ID`` of their
ApplicationStart, as the SHS does). Entries are immutable; every change builds new
ones, so API threads read a consistent snapshot without locks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from sparkhist.events.listing import AttemptListing
from sparkhist.store.records import LogRecord


@dataclass(frozen=True, slots=True)
class AttemptEntry:
    listing: AttemptListing
    last_updated: int
    log_path: str
    log_kind: str
    total_size: int = 0

    @property
    def attempt_id(self) -> str | None:
        return self.listing.attempt_id


@dataclass(frozen=True, slots=True)
class AppEntry:
    id: str
    name: str | None
    attempts: tuple[AttemptEntry, ...]  # newest start first
    # Memo of the API's rendering of this (immutable) entry, filled on first use.
    rendered: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def end_time(self) -> int:
        return self.attempts[0].listing.end_time

    @property
    def running(self) -> bool:
        return not self.attempts[0].listing.completed


def _attempt_rank(entry: AttemptEntry) -> tuple[bool, int]:
    # When two logs claim the same attempt (an .inprogress file left next to the final
    # one), the completed one wins, then the most recently updated.
    return (entry.listing.completed, entry.last_updated)


def build_app(app_id: str, records: list[LogRecord]) -> AppEntry:
    by_attempt: dict[str | None, AttemptEntry] = {}
    for record in records:
        entry = AttemptEntry(record.listing, record.last_updated, record.path, record.kind, record.total_size)
        current = by_attempt.get(entry.attempt_id)
        if current is None or _attempt_rank(entry) > _attempt_rank(current):
            by_attempt[entry.attempt_id] = entry
    attempts = sorted(by_attempt.values(), key=lambda a: a.listing.start_time, reverse=True)
    return AppEntry(app_id, attempts[0].listing.app_name, tuple(attempts))


class ApplicationIndex:
    """Application entries by id, plus the list in the SHS's order (end time descending)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records_by_app: dict[str, dict[str, LogRecord]] = {}
        self._app_of_path: dict[str, str] = {}
        self._apps: dict[str, AppEntry] = {}
        self._sorted: list[AppEntry] | None = None
        self.version = 0

    def load(self, records: list[LogRecord]) -> None:
        """Fill an empty index in bulk (start-up): one build per application, not per log."""
        with self._lock:
            for record in records:
                app_id = record.app_id
                if app_id is None:
                    continue
                self._records_by_app.setdefault(app_id, {})[record.path] = record
                self._app_of_path[record.path] = app_id
            for app_id, group in self._records_by_app.items():
                self._apps[app_id] = build_app(app_id, list(group.values()))
            self._changed()

    def update(self, record: LogRecord) -> None:
        """Add or replace one log's record (records without an app id are not listed)."""
        with self._lock:
            self._remove_locked(record.path)
            app_id = record.app_id
            if app_id is None:
                return
            group = self._records_by_app.setdefault(app_id, {})
            group[record.path] = record
            self._app_of_path[record.path] = app_id
            self._apps[app_id] = build_app(app_id, list(group.values()))
            self._changed()

    def remove(self, path: str) -> None:
        with self._lock:
            self._remove_locked(path)

    def _remove_locked(self, path: str) -> None:
        app_id = self._app_of_path.pop(path, None)
        if app_id is None:
            return
        group = self._records_by_app[app_id]
        del group[path]
        if group:
            self._apps[app_id] = build_app(app_id, list(group.values()))
        else:
            del self._records_by_app[app_id]
            del self._apps[app_id]
        self._changed()

    def _changed(self) -> None:
        self._sorted = None
        self.version += 1

    def get(self, app_id: str) -> AppEntry | None:
        return self._apps.get(app_id)

    def __len__(self) -> int:
        return len(self._apps)

    def sorted_apps(self) -> list[AppEntry]:
        """All applications, latest end time first; ties (e.g. running apps) by id descending."""
        current = self._sorted
        if current is not None:
            return current
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted(self._apps.values(), key=lambda a: (a.end_time, a.id), reverse=True)
            return self._sorted


class AppLookup(Protocol):
    """What the API needs of the application index (the index itself, or with on-demand loads)."""

    def get(self, app_id: str) -> AppEntry | None: ...

    def sorted_apps(self) -> list[AppEntry]: ...

    def __len__(self) -> int: ...

    @property
    def version(self) -> int: ...
