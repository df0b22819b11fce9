"""Ready-made views over the analytics tables, for people: who uses the most, what fails,
what is skewed, and how a recurring application changes over time.

Each view is one read-only query (:data:`VIEWS`) run by the same engine, limits and ACL
filter as ``/analytics/sql``, so a figure on these pages is a figure that query returns;
this module only turns rows into page context (links to the application's own pages,
a trend drawn as small line charts). ``ui_analytics.html`` and
``ui_analytics_trend.html`` draw them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = ["TREND_CHARTS", "VIEWS", "Trend", "View", "overview_context", "trend_context"]


@dataclass(frozen=True)
class View:
    key: str
    title: str
    sql: str
    #: (column heading, kind: text, int, ms, bytes, ratio, date, link)
    columns: tuple[tuple[str, str], ...]


VIEWS: tuple[View, ...] = (
    View("users", "Top consumers by user",
         "SELECT coalesce(spark_user, '(unknown)') AS who, count(*) AS apps, sum(executor_run_time) AS run, "
         "sum(executor_cpu_time) AS cpu, sum(duration) AS wall FROM applications GROUP BY 1 "
         "ORDER BY run DESC NULLS LAST, who LIMIT 25",
         (("User", "text"), ("Applications", "int"), ("Task time", "ms"), ("CPU time", "ms"), ("Wall time", "ms"))),
    View("queues", "Top consumers by queue",
         "SELECT coalesce(q.value, '(none)') AS queue, count(*) AS apps, sum(a.executor_run_time) AS run, "
         "sum(a.executor_cpu_time) AS cpu FROM applications a LEFT JOIN (SELECT app_id, attempt_id, "
         "any_value(value) AS value FROM properties WHERE key IN ('spark.yarn.queue', 'spark.kubernetes.namespace') "
         "GROUP BY 1, 2) q ON q.app_id = a.app_id AND q.attempt_id IS NOT DISTINCT FROM a.attempt_id "
         "GROUP BY 1 ORDER BY run DESC NULLS LAST, queue LIMIT 25",
         (("Queue or namespace", "text"), ("Applications", "int"), ("Task time", "ms"), ("CPU time", "ms"))),
    View("failures", "Failing stages by reason",
         "SELECT coalesce(nullif(split_part(failure_reason, chr(10), 1), ''), '(no reason logged)') AS reason, "
         "count(*) AS stages, count(DISTINCT app_id) AS apps, max(completion_time) AS last, "
         "arg_max(app_id, coalesce(completion_time, 0)) AS app_id, "
         "arg_max(attempt_id, coalesce(completion_time, 0)) AS attempt_id, "
         "arg_max(stage_id, coalesce(completion_time, 0)) AS stage_id, "
         "arg_max(stage_attempt_id, coalesce(completion_time, 0)) AS stage_attempt_id "
         "FROM stages WHERE status = 'FAILED' GROUP BY 1 ORDER BY stages DESC, reason LIMIT 25",
         (("Reason", "text"), ("Stages", "int"), ("Applications", "int"), ("Last seen", "date"),
          ("Latest", "link"))),
    View("skew", "Most skewed stages",
         "SELECT name, skew, task_duration_median, task_duration_max, num_tasks, app_id, attempt_id, stage_id, "
         "stage_attempt_id FROM stages WHERE skew IS NOT NULL AND num_tasks > 1 AND "
         "task_duration_max - task_duration_median >= 1000 ORDER BY skew DESC, app_id, stage_id LIMIT 25",
         (("Stage", "text"), ("Slowest / median", "ratio"), ("Median task", "ms"), ("Slowest task", "ms"),
          ("Tasks", "int"), ("Stage page", "link"))),
    View("recurring", "Recurring applications",
         "SELECT app_name, count(*) AS runs, avg(duration) AS mean, max(start_time) AS last FROM applications "
         "WHERE app_name IS NOT NULL GROUP BY 1 HAVING count(*) > 1 ORDER BY runs DESC, app_name LIMIT 50",
         (("Application name", "trend"), ("Runs", "int"), ("Mean duration", "ms"), ("Last run", "date"))),
)

TREND_SQL = (
    "WITH runs AS (SELECT app_id, attempt_id, start_time, duration, executor_run_time FROM applications "
    "WHERE app_name = $name), per_run AS (SELECT app_id, attempt_id, "
    "sum(memory_bytes_spilled + disk_bytes_spilled) AS spill, count_if(status = 'FAILED') AS failed FROM stages "
    "WHERE app_id IN (SELECT app_id FROM runs) GROUP BY 1, 2) "
    "SELECT r.app_id, r.attempt_id, r.start_time, r.duration, r.executor_run_time, p.spill, coalesce(p.failed, 0) "
    "FROM runs r LEFT JOIN per_run p ON p.app_id = r.app_id AND p.attempt_id IS NOT DISTINCT FROM r.attempt_id "
    "ORDER BY r.start_time NULLS LAST, r.app_id, r.attempt_id LIMIT 1000"
)
#: (key, title, column index in a TREND_SQL row, kind)
TREND_CHARTS = (("duration", "Duration", 3, "ms"), ("cost", "Task time", 4, "ms"), ("spill", "Spill", 5, "bytes"))

CHART_W = 480.0
CHART_H = 96.0


def attempt_href(app_id: str, attempt_id: str | None) -> str:
    return f"/history/{quote(app_id, safe='')}/" + (f"{quote(attempt_id, safe='')}/" if attempt_id else "")


def stage_href(app_id: str, attempt_id: str | None, stage_id: int, stage_attempt: int) -> str:
    return f"{attempt_href(app_id, attempt_id)}stages/stage/?id={stage_id}&attempt={stage_attempt}"


@dataclass(frozen=True)
class Cell:
    kind: str
    value: Any
    href: str | None = None


def _cells(view: View, row: Sequence[Any]) -> list[Cell]:
    if view.key == "failures":
        reason, stages, apps, last, app_id, attempt_id, stage_id, stage_attempt = row
        return [Cell("text", reason), Cell("int", stages), Cell("int", apps), Cell("date", last),
                Cell("link", f"{app_id} stage {stage_id}.{stage_attempt}",
                     stage_href(app_id, attempt_id, stage_id, stage_attempt))]
    if view.key == "skew":
        name, ratio, median, top, tasks, app_id, attempt_id, stage_id, stage_attempt = row
        return [Cell("text", name), Cell("ratio", ratio), Cell("ms", median), Cell("ms", top), Cell("int", tasks),
                Cell("link", f"{app_id} stage {stage_id}.{stage_attempt}",
                     stage_href(app_id, attempt_id, stage_id, stage_attempt))]
    if view.key == "recurring":
        name, *rest = row
        cells = [Cell("trend", name, "/analytics/trend/?name=" + quote(name, safe=""))]
        return cells + [Cell(kind, value) for (_, kind), value in zip(view.columns[1:], rest, strict=True)]
    return [Cell(kind, value) for (_, kind), value in zip(view.columns, row, strict=True)]


#: Runs one view's query for the request's user: (rows) or raises the engine's QueryError.
RunQuery = Callable[[str, dict[str, Any] | None], list[tuple[Any, ...]]]


def overview_context(run: RunQuery) -> dict[str, Any]:
    """Every view of the overview page, with its rows as cells."""
    sections = []
    for view in VIEWS:
        rows = run(view.sql, None)
        sections.append({"view": view, "rows": [_cells(view, r) for r in rows]})
    return {"sections": sections}


@dataclass(frozen=True)
class Trend:
    key: str
    title: str
    kind: str
    points: str  # an SVG polyline's points
    dots: list[tuple[float, float, str, str]]  # x, y, link, title
    top: float
    width: float
    height: float


def _trend(key: str, title: str, kind: str, runs: list[tuple[str, float | None]],
           label: Callable[[float], str]) -> Trend:
    values = [v for _, v in runs if v is not None]
    top = max(values, default=0.0)
    scale = top or 1.0  # all zero: a flat line at the bottom
    step = CHART_W / max(len(runs) - 1, 1)
    dots = []
    for i, (href, value) in enumerate(runs):
        if value is None:
            continue
        x = round(i * step, 1) if len(runs) > 1 else CHART_W / 2
        y = round(CHART_H - 4 - (CHART_H - 8) * value / scale, 1)
        dots.append((x, y, href, label(value)))
    return Trend(key, title, kind, " ".join(f"{x},{y}" for x, y, _, _ in dots), dots, top, CHART_W, CHART_H)


def trend_context(name: str, rows: list[tuple[Any, ...]], label: Callable[[str, float], str]) -> dict[str, Any]:
    """A recurring application's runs, oldest first, and a chart per figure."""
    runs = [{"app_id": r[0], "attempt_id": r[1], "href": attempt_href(r[0], r[1]), "start": r[2], "duration": r[3],
             "cost": r[4], "spill": r[5], "failed": r[6]} for r in rows]
    charts = []
    for key, title, index, kind in TREND_CHARTS:
        series = [(attempt_href(r[0], r[1]), None if r[index] is None else float(r[index])) for r in rows]
        charts.append(_trend(key, title, kind, series, functools.partial(label, kind)))
    return {"name": name, "runs": runs, "charts": charts}
