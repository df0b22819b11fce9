"""The operations page: the health document (``/health/details``) drawn for people.

Nothing here is measured again: the page is the document the server answers at
``/health/details``, with each budget turned into a meter (a used/limit fraction), each
counter group into a stacked bar, and the document's ``reasons`` listed as its alerts.
Fields a document lacks are left out, so an older or newer document still draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparkhist.render.format import size

__all__ = ["METER_W", "Meter", "Stack", "operations_context"]

METER_W = 320.0
#: The file-system watermarks drawn on its meter (the defaults of SPARKHIST_DISK_*_RATIO).
WATERMARKS = (("eviction", 0.80), ("critical", 0.90))


@dataclass(frozen=True)
class Meter:
    key: str
    label: str
    fraction: float  # 0..1 (drawn capped at 1)
    text: str
    level: str  # ok / warn / bad
    marks: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Segment:
    x: float
    w: float
    cls: str
    title: str


@dataclass(frozen=True)
class Stack:
    key: str
    label: str
    segments: list[Segment]
    total: int


def _level(fraction: float, warn: float = 0.8, bad: float = 0.9) -> str:
    return "bad" if fraction >= bad else "warn" if fraction >= warn else "ok"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _meter(key: str, label: str, used: Any, limit: Any, text: str, marks: tuple[tuple[str, float], ...] = ()) -> Meter | None:
    u, lim = _num(used), _num(limit)
    if u is None or lim is None or lim <= 0:
        return None
    fraction = u / lim
    return Meter(key, label, fraction, text, _level(fraction), marks)


def _stack(key: str, label: str, counts: dict[str, Any], classes: dict[str, str]) -> Stack | None:
    items = [(name, int(v)) for name, v in counts.items() if _num(v) is not None and int(v) > 0]
    total = sum(v for _, v in items)
    if total <= 0:
        return None
    segments = []
    at = 0.0
    for name, v in items:
        w = METER_W * v / total
        segments.append(Segment(at, w, classes.get(name, "other"), f"{name}: {v:,}"))
        at += w
    return Stack(key, label, segments, total)


def operations_context(doc: dict[str, Any]) -> dict[str, Any]:
    """What ``ui_operations.html`` needs: the document and its meters and stacked bars."""
    store = doc.get("store") or {}
    memory = doc.get("memory") or {}
    scan = doc.get("scan") or {}
    meters = [m for m in (
        _meter("disk", "Snapshot disk budget", store.get("snapshotBytes"), store.get("diskBudgetBytes"),
               f"{size(store.get('snapshotBytes'))} of {size(store.get('diskBudgetBytes'))}"),
        _meter("filesystem", "File system of the store", store.get("filesystemUsageRatio"), 1.0,
               f"{100 * (_num(store.get('filesystemUsageRatio')) or 0):.1f} % used, "
               f"{size(store.get('filesystemFreeBytes'))} free", WATERMARKS),
        _meter("memory", "State cache memory budget", memory.get("cacheBytes"), memory.get("cacheBudgetBytes"),
               f"{size(memory.get('cacheBytes'))} of {size(memory.get('cacheBudgetBytes'))}, "
               f"{memory.get('cachedApplications', 0)} applications"),
        _meter("lag", "Scan lag (against 3 scan intervals)", scan.get("lagSeconds"),
               3 * (_num(scan.get("intervalSeconds")) or 0),
               f"{_num(scan.get('lagSeconds')) or 0:.1f} s behind, a scan every {_num(scan.get('intervalSeconds')) or 0:g} s"),
    ) if m is not None]
    last = scan.get("last") or {}
    stacks = [s for s in (
        _stack("last-scan", "Last scan: the listed logs", {k: last.get(k) for k in ("unchanged", "new", "grown", "removed")},
               {"unchanged": "ok", "new": "new", "grown": "grown", "removed": "other"}),
        _stack("scans", "Scans since start", dict(scan.get("scans") or {}), {"ok": "ok", "failed": "bad"}),
        _stack("applications", "Applications", dict(store.get("applications") or {}),
               {"completed": "ok", "running": "new"}),
    ) if s is not None]
    sources = []
    for source in doc.get("sources") or []:
        requests = dict(source.get("requests") or {})
        sources.append((source, _stack("requests", "Requests", requests, {"ok": "ok", "missing": "other", "error": "bad"})))
    return {"doc": doc, "meters": meters, "stacks": stacks, "sources": sources, "meter_w": METER_W}
