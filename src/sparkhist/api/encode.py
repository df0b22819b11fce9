"""Spark-compatible JSON: GMT dates, omitted nulls, the SHS's content types.

The SHS renders with Jackson (``JacksonMessageWriter``): ``Option``/``null`` fields are
omitted, dates are ``yyyy-MM-dd'T'HH:mm:ss.SSS'GMT'``, tuples are 2-element arrays and
map keys are strings. Builders in ``api/v1`` and ``state/`` produce plain dicts that
already follow those rules (no ``None`` values where Spark omits a key); this module
formats dates and turns the result into bytes.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

JSON_CONTENT_TYPE = "application/json"


def format_date(epoch_ms: int) -> str:
    """A Spark REST date: ``2026-11-29T17:21:35.767GMT``; ``-1`` gives ``1969-12-31T23:59:59.999GMT``."""
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}GMT"


def drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    """The mapping without ``None`` values: Jackson's ``NON_ABSENT`` inclusion."""
    return {k: v for k, v in mapping.items() if v is not None}


def dumps(payload: Any) -> bytes:
    """JSON bytes as the API sends them (2-space indented, like the SHS's pretty printing)."""
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
