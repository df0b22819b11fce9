"""The application list page's rows: searched, sorted and paged on the server.

The rows come from the store's application index (already in the SHS's order: end
time descending), never from rendering every application: a page of 100,000
applications filters them with attribute reads, sorts only when asked for another
order, and builds the records (``render.listing.attempt_fields``, the same fields
``/api/v1/applications`` answers) of the rows it shows alone. The last few orderings
are kept per index version, so paging through a big list sorts it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sparkhist.render.listing import attempt_fields
from sparkhist.store.applications import AppEntry, AppLookup

__all__ = ["COLUMNS", "PAGE_SIZES", "AppListing", "ListPage", "ListQuery"]

#: Sortable columns: key -> (heading, the key of an application's sort value).
COLUMNS: dict[str, tuple[str, Callable[[AppEntry], Any]]] = {
    "version": ("Version", lambda a: a.attempts[0].listing.spark_version),
    "id": ("App ID", lambda a: a.id),
    "name": ("App Name", lambda a: a.name or ""),
    "started": ("Started", lambda a: a.attempts[0].start_time),
    "completed": ("Completed", lambda a: a.end_time),
    "duration": ("Duration", lambda a: a.attempts[0].listing.duration),
    "user": ("Spark User", lambda a: a.attempts[0].listing.spark_user or ""),
    "updated": ("Last Updated", lambda a: a.attempts[0].last_updated),
}
PAGE_SIZES = (20, 100, 500)
_DEFAULT_SORT = "completed"
_KEPT = 8


@dataclass(frozen=True, slots=True)
class ListQuery:
    incomplete: bool = False
    search: str = ""
    sort: str = _DEFAULT_SORT
    descending: bool = True
    page: int = 1
    size: int = PAGE_SIZES[0]

    @classmethod
    def parse(cls, get: Callable[[str], str | None]) -> ListQuery:
        """From query parameters (``showIncomplete``, ``search``, ``sort``, ``desc``, ``page``, ``size``);
        a value out of range is its default, never an error."""
        sort = get("sort") or _DEFAULT_SORT
        if sort not in COLUMNS:
            sort = _DEFAULT_SORT
        size = _int(get("size"), PAGE_SIZES[0])
        return cls(
            incomplete=(get("showIncomplete") or "").lower() == "true",
            search=(get("search") or "").strip()[:200],
            sort=sort,
            descending=(get("desc") or "true").lower() != "false",
            page=max(1, _int(get("page"), 1)),
            size=size if size in PAGE_SIZES else PAGE_SIZES[0],
        )

    def link(self, **changes: Any) -> dict[str, str]:
        """The query string (as pairs) of this query with ``changes``: for the page's links."""
        values = {"showIncomplete": self.incomplete, "search": self.search, "sort": self.sort,
                  "desc": self.descending, "page": self.page, "size": self.size}
        values.update(changes)
        out: dict[str, str] = {}
        for key, value in values.items():
            if key == "showIncomplete" and not value or key == "search" and not value:
                continue
            out[key] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


def _int(value: str | None, default: int) -> int:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 9:
        return default
    return int(value)


@dataclass(frozen=True, slots=True)
class ListPage:
    query: ListQuery
    rows: list[dict[str, Any]]  # one per attempt: app id, name and the API's attempt fields
    total: int  # applications matching the query
    pages: int
    page: int
    everything: int  # applications in the list, complete or not


class AppListing:
    """Pages of the application list for the UI, over the index the API lists from."""

    def __init__(self, index: AppLookup) -> None:
        self._index = index
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[Any, ...], list[AppEntry]] = OrderedDict()

    def _matching(self, q: ListQuery) -> list[AppEntry]:
        index = self._index
        key = (index.version, q.incomplete, q.search.lower(), q.sort, q.descending)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return kept
        apps = index.sorted_apps()
        wanted_running = q.incomplete
        chosen = [a for a in apps if a.running is wanted_running]
        if q.search:
            needle = q.search.lower()
            chosen = [a for a in chosen if _matches(a, needle)]
        if q.sort != _DEFAULT_SORT:
            sort_key = COLUMNS[q.sort][1]
            chosen.sort(key=sort_key, reverse=q.descending)  # stable: ties keep the SHS's order
        elif not q.descending:
            chosen.reverse()
        with self._lock:
            self._kept[key] = chosen
            while len(self._kept) > _KEPT:
                self._kept.popitem(last=False)
        return chosen

    def page(self, q: ListQuery) -> ListPage:
        chosen = self._matching(q)
        pages = max(1, -(-len(chosen) // q.size))
        page = min(q.page, pages)
        shown = chosen[(page - 1) * q.size:page * q.size]
        rows = []
        for app in shown:
            for attempt in app.attempts:
                fields = attempt_fields(attempt.listing, attempt.last_updated)
                rows.append({"id": app.id, "name": app.name, "attempts": len(app.attempts), **fields})
        return ListPage(q, rows, len(chosen), pages, page, len(self._index))


def _matches(app: AppEntry, needle: str) -> bool:
    if needle in app.id.lower():
        return True
    for attempt in app.attempts:
        listing = attempt.listing
        for value in (listing.app_name, listing.spark_user, listing.attempt_id, listing.spark_version):
            if value and needle in value.lower():
                return True
    return False
