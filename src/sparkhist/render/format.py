"""How figures are written on a page: sizes, durations, dates, in one place.

The rules are the SHS's (``Utils.bytesToString``, ``UIUtils.formatDuration``, the
``yyyy/MM/dd HH:mm:ss`` dates of its tables), so a page reads like the SHS's. They are
Jinja filters of the one template environment (:mod:`sparkhist.render.html`); a date
is written in UTC on the server and put in the browser's time zone by ``sparkhist.js``
(the ``<time datetime>`` element carries the instant).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["FILTERS", "count", "duration", "elapsed", "epoch_ms", "iso_date", "metric", "page_date", "size"]

_UNITS = ((1 << 60, "EiB"), (1 << 50, "PiB"), (1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def size(value: object) -> str:
    """``Utils.bytesToString``: ``0.0 B``, ``1.9 KiB``, ``2.0 MiB`` (a unit from twice its size)."""
    n = _number(value)
    if n is None:
        return ""
    for unit, name in _UNITS:
        if n >= 2 * unit:
            return f"{n / unit:.1f} {name}"
    return f"{float(n):.1f} B"


def duration(value: object) -> str:
    """``UIUtils.formatDuration`` of milliseconds: ``42 ms``, ``0.5 s``, ``12 s``, ``3.5 min``, ``1.2 h``."""
    ms = _number(value)
    if ms is None:
        return ""
    if ms < 100:
        return f"{int(ms)} ms"
    seconds = ms / 1000
    if seconds < 1:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 10:
        return f"{minutes:.1f} min"
    if minutes < 60:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def epoch_ms(value: object) -> int | None:
    """Milliseconds since the epoch of an API date (``2026-11-29T17:21:35.767GMT``), a health
    document's (``2026-12-07T05:21:55.255Z``) or a
    number of milliseconds; None for anything else (a missing date, -1)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if value >= 0 else None
    if isinstance(value, str) and value.endswith(("GMT", "Z")):  # the API's dates; the health document's
        try:
            moment = datetime.strptime(value.removesuffix("GMT").removesuffix("Z"),
                                       "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
        except ValueError:
            return None
        ms = int(moment.timestamp() * 1000)
        return ms if ms >= 0 else None
    return None


def page_date(value: object) -> str:
    """A date as the SHS's tables write it (``2026/11/29 17:21:35``, UTC here); empty when unknown."""
    ms = epoch_ms(value)
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y/%m/%d %H:%M:%S")


def iso_date(value: object) -> str:
    """The instant for a ``<time datetime>`` attribute (``2026-11-29T17:21:35.767Z``); empty when unknown."""
    ms = epoch_ms(value)
    if ms is None:
        return ""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def elapsed(start: object, end: object = None) -> int | None:
    """Milliseconds from ``start`` to ``end`` (API dates or milliseconds); to now when ``end`` is
    unknown (a running job or stage, as the SHS shows it); None when ``start`` is unknown."""
    begin = epoch_ms(start)
    if begin is None:
        return None
    finish = epoch_ms(end)
    if finish is None:
        finish = int(time.time() * 1000)
    return max(0, finish - begin)


def count(value: object) -> str:
    """A count with thousands separators (``12,000``)."""
    n = _number(value)
    return "" if n is None else f"{int(n):,}"


def metric(value: object, kind: str) -> str:
    """A figure of a metric by its kind: ``ms`` (a duration), ``bytes`` (a size) or ``count``."""
    if kind == "ms":
        return duration(value)
    if kind == "bytes":
        return size(value)
    return count(value)


def _number(value: object) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


#: The Jinja filters of these rules, by name.
FILTERS = {"size": size, "duration": duration, "page_date": page_date, "iso_date": iso_date, "count": count,
           "metric": metric, "elapsed": elapsed}
