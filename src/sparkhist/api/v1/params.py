"""Query-parameter parsing with the SHS's rules and error messages.

* enums are case-insensitive and may repeat (``?status=succeeded&status=failed``);
  an unknown value fails Jersey's conversion: a 404 HTML page (:class:`JerseyNotFound`);
* dates are ``yyyy-MM-dd'T'HH:mm:ss.SSSz`` (any zone) or ``yyyy-MM-dd`` (GMT); anything
  else is a 400 ``Couldn't parse date: <v>`` (``SimpleDateParam``);
* booleans are ``true``/``false`` in any case (anything else is ``false``, like
  ``Boolean.parseBoolean``); integers must parse or Jersey answers 404.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Protocol

from sparkhist.errors import BadDate, BadParameter, JerseyNotFound


class QueryParams(Protocol):
    """What handlers need of a query string (starlette's QueryParams fits)."""

    def getlist(self, key: str) -> list[str]: ...

    def get(self, key: str, default: str | None = None) -> str | None: ...


def enum_values(params: QueryParams, name: str, allowed: Iterable[str]) -> set[str] | None:
    """The upper-cased values of a repeated enum parameter, or None when absent."""
    values = params.getlist(name)
    if not values:
        return None
    by_upper = {a.upper(): a for a in allowed}
    out = set()
    for value in values:
        key = value.strip().upper()
        if key not in by_upper:
            raise JerseyNotFound(f"bad value {value!r} for enum parameter {name!r}")
        out.add(by_upper[key])
    return out


def boolean(params: QueryParams, name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    return value.strip().lower() == "true"


def integer(params: QueryParams, name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value.strip())
    except ValueError:
        raise JerseyNotFound(f"bad integer {value!r} for parameter {name!r}") from None


def quantiles(params: QueryParams, default: Sequence[float]) -> list[float]:
    """``quantiles=0.05, 0.25`` (commas possibly percent-encoded, spaces trimmed)."""
    value = params.get("quantiles")
    if value is None:
        return list(default)
    out = []
    for part in value.split(","):
        try:
            out.append(float(part.strip()))
        except ValueError:
            raise BadParameter(f'Bad value for parameter "quantiles".  Expected a double, got "{part}"') from None
    return out


# Java zone abbreviations SimpleDateFormat's ``z`` accepts most often; offsets in hours.
_ZONES = {
    "GMT": 0, "UTC": 0, "UT": 0, "Z": 0,
    "PST": -8, "PDT": -7, "MST": -7, "MDT": -6, "CST": -6, "CDT": -5, "EST": -5, "EDT": -4,
    "CET": 1, "CEST": 2, "EET": 2, "EEST": 3, "BST": 1, "IST": 5.5, "JST": 9, "KST": 9,
    "HKT": 8, "SGT": 8, "AEST": 10, "AEDT": 11,
}
_FULL = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})(.+)$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def _zone_offset(zone: str) -> timedelta | None:
    zone = zone.strip()
    if zone.upper() in _ZONES:
        return timedelta(hours=_ZONES[zone.upper()])
    m = re.match(r"^(?:GMT|UTC)?([+-])(\d{1,2}):?(\d{2})?$", zone)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        return sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
    return None


def date_ms(value: str) -> int:
    """Epoch ms of an SHS date parameter, or :class:`BadParameter` as ``SimpleDateParam``."""
    m = _FULL.match(value)
    if m:
        offset = _zone_offset(m.group(8))
        if offset is not None:
            y, mo, d, h, mi, s, ms = (int(g) for g in m.groups()[:7])
            try:
                local = datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=timezone.utc)
            except ValueError:
                raise BadDate(f"Couldn't parse date: {value}") from None
            return int((local - offset).timestamp() * 1000)
    m = _DAY.match(value)
    if m:
        try:
            day = datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=timezone.utc)
        except ValueError:
            raise BadDate(f"Couldn't parse date: {value}") from None
        return int(day.timestamp() * 1000)
    raise BadDate(f"Couldn't parse date: {value}")


def date(params: QueryParams, name: str, default: str) -> int:
    value = params.get(name)
    return date_ms(default if value is None else value)
