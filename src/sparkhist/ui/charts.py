"""A stage's distributions as small charts, and its skew.

The figures are the API's: a ``taskSummary`` record asked for every 5th percentile
(:data:`QUANTILES`, the same answer as
``/api/v1/applications/<app>/stages/<id>/<attempt>/taskSummary?quantiles=0.0,0.05,...``)
and the slowest tasks of the ``taskTable`` sorted by duration. This module turns them into
bar heights and picks what to say about skew; :file:`ui_figures.html` draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sparkhist.render.format import metric

__all__ = ["CHARTS", "QUANTILES", "SKEW_RATIO", "Chart", "Skew", "distribution_charts", "skew"]

#: Every 5th percentile, as the ``quantiles`` parameter of ``taskSummary``.
QUANTILES = tuple(i / 20 for i in range(21))
#: (key, title, field path in a ``taskSummary`` record, kind).
CHARTS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("duration", "Task duration", ("duration",), "ms"),
    ("gc", "GC time", ("jvmGcTime",), "ms"),
    ("shuffle-read", "Shuffle read", ("shuffleReadMetrics", "readBytes"), "bytes"),
    ("shuffle-write", "Shuffle write", ("shuffleWriteMetrics", "writeBytes"), "bytes"),
    ("spill-memory", "Spill (memory)", ("memoryBytesSpilled",), "bytes"),
    ("spill-disk", "Spill (disk)", ("diskBytesSpilled",), "bytes"),
)
#: A stage is called skewed when its slowest task takes this many times its median task.
SKEW_RATIO = 2.0
#: And when the slowest task is at least this much slower than the median (ms): no alarm over 5 ms tasks.
SKEW_MIN_GAP_MS = 1000

CHART_W = 252.0
CHART_H = 64.0
_BAR_GAP = 2.0


@dataclass(frozen=True)
class ChartBar:
    x: float
    y: float
    w: float
    h: float
    title: str


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    kind: str
    bars: list[ChartBar]
    values: list[float]  # the API's quantiles, QUANTILES[i] -> values[i]
    median: str
    p95: str
    maximum: str
    width: float
    height: float


@dataclass(frozen=True)
class Skew:
    median_ms: float
    max_ms: float
    ratio: float  # max / median (inf when the median is 0)
    skewed: bool
    slowest: list[dict[str, Any]]  # taskTable rows, slowest first

    @property
    def ratio_label(self) -> str:
        return "inf" if self.ratio == float("inf") else f"{self.ratio:.2f}"


def _path(record: dict[str, Any], path: Sequence[str]) -> list[float] | None:
    value: Any = record
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, list) and len(value) == len(QUANTILES) and all(isinstance(v, int | float) for v in value):
        return [float(v) for v in value]
    return None


def distribution_charts(summary: dict[str, Any] | None) -> list[Chart]:
    """One chart per metric of :data:`CHARTS` that is not 0 for every task."""
    if not summary:
        return []
    charts = []
    slot = CHART_W / len(QUANTILES)
    for key, title, path, kind in CHARTS:
        values = _path(summary, path)
        if values is None or max(values) <= 0:
            continue
        top = max(values)
        bars = []
        for i, (q, v) in enumerate(zip(QUANTILES, values, strict=True)):
            h = (CHART_H - 2) * v / top
            name = {0.0: "min", 0.5: "median", 1.0: "max"}.get(q, f"p{round(q * 100)}")
            bars.append(ChartBar(i * slot + _BAR_GAP / 2, CHART_H - h, slot - _BAR_GAP, h,
                                 f"{name}: {metric(round(v), kind)}"))
        charts.append(Chart(key, title, kind, bars, values, metric(round(values[10]), kind),
                            metric(round(values[19]), kind), metric(round(values[20]), kind), CHART_W, CHART_H))
    return charts


def skew(summary: dict[str, Any] | None, slowest: list[dict[str, Any]]) -> Skew | None:
    """The stage's skew in task duration (median and max from ``summary``), with its slowest tasks."""
    values = _path(summary, ("duration",)) if summary else None
    if values is None:
        return None
    median, top = values[10], values[20]
    ratio = top / median if median > 0 else (float("inf") if top > 0 else 1.0)
    skewed = ratio >= SKEW_RATIO and top - median >= SKEW_MIN_GAP_MS
    return Skew(median, top, ratio, skewed, slowest)
