"""Query-parameter parsing with the SHS's rules and error messages.

* enums are case-insensitive and may repeat (``?status=succeeded&status=failed``);
  an unknown value fails Jersey's conversion: a 404 HTML page (:class:`JerseyNotFound`);
* dates are ``yyyy-MM-dd'T'HH:mm:ss.SSSz`` (any zone) or ``yyyy-MM-dd`` (GMT); anything
  else is a 400 ``Couldn't parse date: <v>`` (``SimpleDateParam``);
* booleans are ``true``/``false`` in any case, untrimmed (anything else is ``false``,
  like ``Boolean.parseBoolean``); integers are Java ``int``s (``Integer.parseInt``: an
  optional sign and digits, no spaces, within 32 bits) or Jersey answers 404;
* an empty value (``?limit=``, ``?minDate=``) is the parameter's default, as Jersey
  gives it; an empty enum value matches nothing (``?status=`` lists ``[ ]``);
* ``quantiles`` are Java doubles (``Double.parseDouble``) split on commas. Beyond the
  SHS, they are bounded (:data:`MAX_QUANTILES` values, each finite and within [0, 1]):
  a 400 otherwise, where the SHS built an answer as long as the list (12,000 values:
  131 MB) or answered quantiles of ``NaN``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sparkhist.errors import BadDate, BadParameter, JerseyNotFound


class QueryParams(Protocol):
    """What handlers need of a query string (starlette's QueryParams fits)."""

    def getlist(self, key: str) -> list[str]: ...

    def get(self, key: str, /) -> str | None: ...


def enum_values(params: QueryParams, name: str, allowed: Iterable[str]) -> set[str] | None:
    """The upper-cased values of a repeated enum parameter, or None when absent."""
    values = params.getlist(name)
    if not values:
        return None
    by_upper = {a.upper(): a for a in allowed}
    out = set()
    for value in values:
        if not value:
            continue  # Jersey converts an empty value to null, which no status equals
        key = value.upper()
        if key not in by_upper:
            raise JerseyNotFound(f"bad value {value!r} for enum parameter {name!r}")
        out.add(by_upper[key])
    return out


def boolean(params: QueryParams, name: str, default: bool) -> bool:
    value = params.get(name)
    if not value:
        return default
    return value.lower() == "true"


#: ``Integer.parseInt``: a sign and decimal digits (any script's, as ``Character.digit``).
_JAVA_INT = re.compile(r"[+-]?\d+")


def java_int(value: str, *, bits: int = 32) -> int | None:
    """``value`` as a Java ``int`` (``long`` with ``bits=64``), or None when Java rejects it."""
    if not _JAVA_INT.fullmatch(value):
        return None
    number = int(value)
    limit = 1 << (bits - 1)
    return number if -limit <= number < limit else None


def integer(params: QueryParams, name: str, default: int) -> int:
    value = params.get(name)
    if not value:
        return default
    number = java_int(value)
    if number is None:
        raise JerseyNotFound(f"bad integer {value[:40]!r} for parameter {name!r}")
    return number


#: Most quantiles one request may ask for: a percentile curve with both ends (101
#: values) fits. The SHS has no bound; an answer grows with the count (about 90
#: numbers per stage per quantile).
MAX_QUANTILES = 128

# ``Double.parseDouble`` (``FloatingDecimal.readJavaFormatString``): after trimming the
# characters up to U+0020, a sign, then NaN, Infinity, a decimal or a hexadecimal
# (``0x1.8p-1``) number with an optional ``f``/``d`` suffix; digits are ASCII only.
_JAVA_DOUBLE = re.compile(
    r"[+-]?(?:NaN|Infinity"
    r"|(?P<dec>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[fFdD]?"
    r"|(?P<hex>0[xX](?:[0-9a-fA-F]+\.?|[0-9a-fA-F]*\.[0-9a-fA-F]+)[pP][+-]?\d+)[fFdD]?)",
    re.ASCII,
)
_JAVA_TRIM = "".join(chr(c) for c in range(0x21))


def java_double(value: str) -> float | None:
    """``value`` as ``Double.parseDouble`` reads it, or None where it throws."""
    text = value.strip(_JAVA_TRIM)
    m = _JAVA_DOUBLE.fullmatch(text)
    if m is None:
        return None
    sign = -1.0 if text.startswith("-") else 1.0
    if m.group("dec") is not None:
        return sign * float(m.group("dec"))
    if m.group("hex") is not None:
        return sign * float.fromhex(m.group("hex"))
    return sign * math.inf if text.lstrip("+-") == "Infinity" else math.nan


def quantiles(params: QueryParams, default: Sequence[float]) -> list[float]:
    """``quantiles=0.05, 0.25`` (commas possibly percent-encoded, spaces trimmed).

    Split like Scala's ``split(",")`` (trailing empty parts dropped, so ``0.5,`` is one
    quantile and ``,`` none); at most :data:`MAX_QUANTILES`, each finite and in [0, 1].
    """
    value = params.get("quantiles")
    if value is None:
        return list(default)
    parts = value.split(",")
    if value:
        while parts and not parts[-1]:
            parts.pop()
    if len(parts) > MAX_QUANTILES:
        raise BadParameter(f'Bad value for parameter "quantiles".  Expected at most {MAX_QUANTILES} values, got {len(parts)}')
    out = []
    for part in parts:
        number = java_double(part)
        if number is None:
            raise BadParameter(f'Bad value for parameter "quantiles".  Expected a double, got "{part}"')
        if not 0.0 <= number <= 1.0:
            raise BadParameter(f'Bad value for parameter "quantiles".  Expected a number between 0 and 1, got "{part}"')
        out.append(number)
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
                local = datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=UTC)
            except ValueError:
                raise BadDate(f"Couldn't parse date: {value}") from None
            return int((local - offset).timestamp() * 1000)
    m = _DAY.match(value)
    if m:
        try:
            day = datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=UTC)
        except ValueError:
            raise BadDate(f"Couldn't parse date: {value}") from None
        return int(day.timestamp() * 1000)
    raise BadDate(f"Couldn't parse date: {value}")


def date(params: QueryParams, name: str, default: str) -> int:
    value = params.get(name)
    return date_ms(value or default)
