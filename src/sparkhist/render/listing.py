"""The application list's entries, rendered once when a log's catalog row is written.

An entry is the element of ``/applications`` for an application, as bytes laid out
exactly as ``dumps`` (2-space indentation) lays out the dict of ``ApplicationInfo``:
the store keeps each attempt's entry with its catalog row (:func:`render_entry`) and
joins the attempts of an application with several (:func:`join_entry`), so the list is
never encoded per request. ``tests/api/test_prerendered_list.py`` checks the bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from sparkhist import releases
from sparkhist.render.encode import drop_none, format_date

if TYPE_CHECKING:
    from sparkhist.config import LogSource
    from sparkhist.events.listing import AttemptListing

# How ``dumps`` (2-space indentation) lays out one element of the application list.
_ENTRY_ID = b'{\n    "id": '
_ENTRY_NAME = b',\n    "name": '
_ENTRY_ATTEMPTS = b',\n    "attempts": [\n      '
_ATTEMPT_SEP = b",\n      "
_ENTRY_END = b"\n    ]\n  }"
_ATTEMPT_INDENT = b"\n      "  # an attempt inside a list element: 3 levels deep


def attempt_fields(listing: AttemptListing, last_updated: int, source: LogSource | None = None) -> dict[str, Any]:
    """``ApplicationAttemptInfo`` in the SHS's field order (``exitCode`` answering as 4.3+; the log
    directory's ``logSourceName`` and ``logSourceFullPath`` answering as 4.2+, given ``source``)."""
    name, full_path = source if source is not None and releases.log_source_fields() else (None, None)
    return drop_none(
        {
            "attemptId": listing.attempt_id,
            "startTime": format_date(listing.start_time),
            "endTime": format_date(listing.end_time),
            "lastUpdated": format_date(last_updated),
            "duration": listing.duration,
            "sparkUser": listing.spark_user,
            "completed": listing.completed,
            "appSparkVersion": listing.spark_version,
            "exitCode": listing.exit_code if releases.attempt_exit_code() else None,
            "logSourceName": name,
            "logSourceFullPath": full_path,
            "startTimeEpoch": listing.start_time,
            "endTimeEpoch": listing.end_time,
            "lastUpdatedEpoch": last_updated,
        }
    )


def render_entry(app_id: str, listing: AttemptListing, last_updated: int,
                 source: LogSource | None = None) -> tuple[bytes, int, int]:
    """The list element of an application with this one attempt, and where the attempt is in it.

    Returns ``(entry, start, end)``: ``entry[start:end]`` is the attempt's object as
    it appears in any list element (indented 3 levels), for applications with several.
    """
    attempt = orjson.dumps(attempt_fields(listing, last_updated, source), option=orjson.OPT_INDENT_2)
    attempt = attempt.replace(b"\n", _ATTEMPT_INDENT)  # JSON strings hold no raw newline
    head = _ENTRY_ID + orjson.dumps(app_id)
    if listing.app_name is not None:
        head += _ENTRY_NAME + orjson.dumps(listing.app_name)
    head += _ENTRY_ATTEMPTS
    return head + attempt + _ENTRY_END, len(head), len(head) + len(attempt)


def join_entry(app_id: str, name: str | None, attempts: list[bytes]) -> bytes:
    """The list element of an application from its attempts' objects (as cut by :func:`render_entry`)."""
    head = _ENTRY_ID + orjson.dumps(app_id)
    if name is not None:
        head += _ENTRY_NAME + orjson.dumps(name)
    return head + _ENTRY_ATTEMPTS + _ATTEMPT_SEP.join(attempts) + _ENTRY_END
