"""Spark-compatible JSON: GMT dates, omitted nulls, the SHS's content types.

The SHS renders with Jackson (``JacksonMessageWriter``): ``Option``/``null`` fields are
omitted, dates are ``yyyy-MM-dd'T'HH:mm:ss.SSS'GMT'``, tuples are 2-element arrays and
map keys are strings. Builders in ``render/`` and ``api/v1`` produce plain dicts that
already follow those rules (no ``None`` values where Spark omits a key); this module
formats dates and turns the result into bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

JSON_CONTENT_TYPE = "application/json"

#: Size of the pieces :func:`dumps_chunks` yields (an item bigger than that is one piece).
CHUNK_SIZE = 64 << 10


@lru_cache(maxsize=65536)
def _day(days_since_epoch: int) -> str:
    try:
        return (_EPOCH + timedelta(days=days_since_epoch)).strftime("%Y-%m-%dT")
    except OverflowError:  # outside years 1-9999: any Java long is a date (a damaged log's too)
        year, month, day = _civil_from_days(days_since_epoch)
        return f"{year}-{month:02d}-{day:02d}T"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of the proleptic Gregorian calendar, for any day count (H. Hinnant)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, doy - (153 * mp + 2) // 5 + 1


def format_date(epoch_ms: int) -> str:
    """A Spark REST date: ``2026-11-29T17:21:35.767GMT``; ``-1`` gives ``1969-12-31T23:59:59.999GMT``.

    Arithmetic on the time of day and a cached date part: it runs for every date of
    every answer (300,000 times for an application list of 100,000).
    """
    days, ms = divmod(epoch_ms, 86_400_000)
    seconds, millis = divmod(ms, 1000)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{_day(days)}{hours:02d}:{minute:02d}:{sec:02d}.{millis:03d}GMT"


def drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    """The mapping without ``None`` values: Jackson's ``NON_ABSENT`` inclusion."""
    return {k: v for k, v in mapping.items() if v is not None}


def dumps(payload: Any) -> bytes:
    """JSON bytes as the API sends them (2-space indented, like the SHS's pretty printing)."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: sums of a damaged log's numbers
        return orjson.dumps(_as_longs(payload), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)


def dumps_chunks(payload: Any, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """``dumps(payload)`` in pieces of about ``chunk_size`` bytes, encoded as they are asked for.

    A top-level array is encoded a slice of items at a time, so the bytes alive at once
    are one piece, not the whole answer (a 40 MB task list). The concatenation is
    ``dumps(payload)`` byte for byte: with 2-space indentation an array is ``[``, newline,
    its items at depth 1 separated by ``,`` and newlines, newline, ``]``, so a slice's
    encoding (``[\n  a,\n  b\n]``) without its brackets is the whole one's middle. Slices
    are sized from the bytes per item seen so far; anything but a non-empty array, or
    one whose first slice is all of it, is one piece.
    """
    if not isinstance(payload, list | tuple) or not payload:
        yield dumps(payload)
        return
    count = len(payload)
    start, end = 0, min(count, _FIRST_SLICE)
    while True:
        raw = dumps(payload if end - start == count else payload[start:end])
        if start == 0:
            if end == count:
                yield raw
                return
            yield raw[:-2]  # "[\n  a,\n  b"
        else:
            encoded = memoryview(raw)
            yield b"".join((b",\n  ", encoded[4:] if end == count else encoded[4:-2]))
        if end == count:
            return
        per_item = max(1, len(raw) // (end - start))
        start, end = end, min(count, end + max(1, chunk_size // per_item))


#: Items in the first slice :func:`dumps_chunks` encodes (a short list is one ``dumps``).
_FIRST_SLICE = 8


def _as_longs(value: Any) -> Any:
    """``value`` with every integer as a Java long (modulo 2**64, signed): the SHS's overflow."""
    if type(value) is int and not -(1 << 63) <= value < 1 << 63:
        return (value + (1 << 63)) % (1 << 64) - (1 << 63)
    if isinstance(value, dict):
        return {_as_longs(k): _as_longs(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_longs(v) for v in value]
    return value
