"""``/applications``, ``/applications/{id}`` and ``/applications/{id}/{attempt}``.

Rules from ``ApplicationListResource`` (SHS_REFERENCE §1.3): an app is running when
its latest attempt is; it is kept when any attempt passes the start window and the
end window (for running apps: only while ``maxEndDate`` is in the future); ``limit``
applies after filtering; the four cores/memory fields are always absent on the SHS.

The list is not encoded per request: each attempt's entry is rendered once, when its
catalog row is written (``render.listing.render_entry``), stored with the row, and the
list is the entries joined (``orjson.Fragment``). The bytes are those ``dumps`` gives
for the dicts of :func:`app_info` (checked by ``tests/api/test_prerendered_list.py``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from sparkhist.api.v1 import params
from sparkhist.api.v1.params import QueryParams
from sparkhist.errors import NotFound
from sparkhist.render.encode import drop_none, dumps

if TYPE_CHECKING:
    from sparkhist.store.applications import AppEntry, AppLookup, AttemptEntry

APP_STATUSES = ("COMPLETED", "RUNNING")
_MAX_INT = 2**31 - 1


def attempt_info(attempt: AttemptEntry) -> dict[str, Any]:
    """The attempt as its list entry renders it (its log directory's fields are the store's)."""
    return attempt.fields()


def app_info(app: AppEntry) -> dict[str, Any]:
    """``ApplicationInfo`` as a dict (the single-application answers)."""
    return drop_none({"id": app.id, "name": app.name, "attempts": [attempt_info(a) for a in app.attempts]})


def _in_range(
    attempt: AttemptEntry, min_start: int, max_start: int, min_end: int, max_end: int, running: bool, now_ms: int
) -> bool:
    if not (min_start <= attempt.start_time <= max_start):
        return False
    if running:
        return max_end > now_ms
    return min_end <= attempt.end_time <= max_end


def application_list(index: AppLookup, query: QueryParams, *, now_ms: int | None = None) -> list[orjson.Fragment]:
    """The list's elements, pre-rendered: ``dumps`` of the result is the answer."""
    if not query:
        return [app.fragment for app in index.sorted_apps()]
    statuses = params.enum_values(query, "status", APP_STATUSES)
    min_start = params.date(query, "minDate", "2010-01-01")
    max_start = params.date(query, "maxDate", "3000-01-01")
    min_end = params.date(query, "minEndDate", "2010-01-01")
    max_end = params.date(query, "maxEndDate", "3000-01-01")
    limit = params.integer(query, "limit", _MAX_INT)
    include_completed = statuses is None or "COMPLETED" in statuses
    include_running = statuses is None or "RUNNING" in statuses
    now = int(time.time() * 1000) if now_ms is None else now_ms

    out: list[orjson.Fragment] = []
    if limit <= 0:
        return out
    for app in index.sorted_apps():
        running = app.running
        if running and not include_running or not running and not include_completed:
            continue
        if any(_in_range(a, min_start, max_start, min_end, max_end, running, now) for a in app.attempts):
            out.append(app.fragment)
            if len(out) >= limit:
                break
    return out


def unfiltered_body(apps: list[AppEntry]) -> bytes:
    """The answer of ``/applications`` without a query, for the sorted applications (also stored on disk)."""
    return dumps([app.fragment for app in apps])


def one_application(index: AppLookup, app_id: str) -> dict[str, Any]:
    app = index.get(app_id)
    if app is None:
        raise NotFound(f"unknown app: {app_id}")
    return app_info(app)


def one_attempt(index: AppLookup, app_id: str, attempt_id: str) -> dict[str, Any]:
    app = index.get(app_id)
    if app is not None:
        for attempt in app.attempts:
            if attempt.attempt_id == attempt_id:
                return attempt_info(attempt)
    raise NotFound(f"unknown app {app_id}, attempt {attempt_id}")
