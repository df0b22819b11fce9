"""The web UI's pages at the SHS's URLs: ``/``, ``/history/<app>[/<attempt>]/<page>/``, ``/static/``.

Every figure on a page is a field of an ``/api/v1`` record: the per-application pages ask
``records`` (given by the HTTP layer: the same dispatch, attempt rules and state path as
``/api/v1/applications/<app>/...``) for the records they show, and the templates only
lay them out and format them (:mod:`sparkhist.render.format`). The application list is
read from the store's index a page at a time (:mod:`sparkhist.ui.app_list`). HTML comes
from the autoescaped templates of :mod:`sparkhist.render.html` alone.
"""

from __future__ import annotations

import functools
import importlib.resources
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, unquote_to_bytes, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sparkhist.config import LogSource, LogSources
from sparkhist.errors import ApiError
from sparkhist.render.html import render
from sparkhist.store.applications import AppEntry, AppLookup, AttemptEntry
from sparkhist.ui.app_list import COLUMNS, PAGE_SIZES, AppListing, ListQuery
from sparkhist.ui.charts import QUANTILES, distribution_charts, skew
from sparkhist.ui.dag import DAG_RESOURCE, DagFigure, dag_figure
from sparkhist.ui.operations import operations_context
from sparkhist.ui.plan import plan_figure
from sparkhist.ui.timeline import app_timeline, task_timeline

__all__ = ["PAGES", "Records", "UiContext", "log_directory_labels", "ui_routes"]


class Records(Protocol):
    """The API's records for one attempt: ``records(app, attempt, ["stages", "3", "0"], {"details": "true"})``
    answers what ``/api/v1/applications/<app>/<attempt>/stages/3/0?details=true`` answers
    (raising :class:`~sparkhist.errors.ApiError` as it would)."""

    def __call__(self, app_id: str, attempt_id: str | None, rest: list[str], query: Mapping[str, str]) -> Any: ...


@dataclass(frozen=True)
class UiContext:
    index: AppLookup
    records: Records
    #: The configured log directories, as the home page shows them (:func:`log_directory_labels`).
    log_directories: Callable[[], list[str]]
    health: Callable[[], dict[str, Any]] | None = None  # the /health/details document, for /operations/


def log_directory_labels(sources: LogSource | LogSources | None, root: str) -> list[str]:
    """Each configured log directory as the SHS's home page shows it: ``name (path)`` when it has a
    name of its own (``spark.history.fs.logDirectory.names``), else the path as written; ``root``
    (the source's) when the settings did not say."""
    if sources is None:
        return [root]
    listed = sources.sources if isinstance(sources, LogSources) else (sources,)
    return [s.full_path if s.name == s.full_path else f"{s.name} ({s.full_path})" for s in listed]


class KeptRecords:
    """Records of completed attempts kept for the pages that ask for them again (a stage's
    quantiles read every task once, then never again while its log is unchanged): keyed
    by the attempt's log (path, size, ``lastUpdated``) and the request, at most
    :attr:`capacity` of them, least recently used out first. Running attempts are never kept."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, attempt: AttemptEntry, rest: tuple[str, ...], query: Mapping[str, str],
            load: Callable[[], Any]) -> Any:
        if not attempt.completed:
            return load()
        key = (attempt.log_path, attempt.total_size, attempt.last_updated, rest, tuple(sorted(query.items())))
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        found = load()  # an ApiError is not kept: asked again next time
        with self._lock:
            self._kept[key] = found
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)
        return found


@dataclass(frozen=True)
class AppView:
    """One attempt's pages: what the page handlers read from."""

    app: AppEntry
    attempt: AttemptEntry
    base: str  # /history/<app>[/<attempt>]/, each part quoted
    records: Records
    kept_records: KeptRecords | None = None

    def get(self, *rest: str | int, **query: str) -> Any:
        return self.records(self.app.id, self.attempt.attempt_id, [str(r) for r in rest], query)

    def kept(self, *rest: str | int, **query: str) -> Any:
        """As :meth:`get`, kept for the next request while the attempt's log is unchanged
        (the caller must not change what it gets)."""
        if self.kept_records is None:
            return self.get(*rest, **query)
        return self.kept_records.get(self.attempt, tuple(str(r) for r in rest), query, lambda: self.get(*rest, **query))


class PageError(Exception):
    """A page that cannot be shown: rendered as an error page with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------------- per-app pages
Handler = Callable[[AppView, Request], tuple[str, dict[str, Any]]]

_JOB_GROUPS = (("Active Jobs", ("RUNNING", "UNKNOWN")), ("Completed Jobs", ("SUCCEEDED",)), ("Failed Jobs", ("FAILED",)))
_STAGE_GROUPS = (("Active Stages", "ACTIVE"), ("Pending Stages", "PENDING"), ("Completed Stages", "COMPLETE"),
                 ("Skipped Stages", "SKIPPED"), ("Failed Stages", "FAILED"))


def _int_param(request: Request, name: str, default: int | None = None) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        if default is None:
            raise PageError(400, f"Missing {name} parameter")
        return default
    if not (value.isascii() and value.lstrip("-").isdigit()) or len(value) > 18:
        raise PageError(400, f"Bad {name} parameter: {value}")
    return int(value)


def _job_groups(jobs: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(title, [j for j in jobs if j["status"] in statuses]) for title, statuses in _JOB_GROUPS]


def _stage_groups(stages: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(title, [s for s in stages if s["status"] == status]) for title, status in _STAGE_GROUPS]


def _spark_property(view: AppView, name: str) -> str | None:
    try:
        env = view.get("environment")
    except ApiError:
        return None
    for key, value in env.get("sparkProperties", []):
        if key == name:
            return str(value)
    return None


def jobs_page(view: AppView, request: Request) -> tuple[str, dict[str, Any]]:
    jobs = view.get("jobs")
    listing = view.attempt.listing
    uptime = listing.duration if listing.completed else max(0, int(time.time() * 1000) - listing.start_time)
    executors = view.get("allexecutors")
    end = listing.end_time if listing.completed else None
    return "ui_jobs.html", {
        "groups": _job_groups(jobs), "jobs": jobs, "uptime": uptime, "user": listing.spark_user,
        "scheduling_mode": _spark_property(view, "spark.scheduler.mode") or "FIFO",
        "executors": executors, "start": listing.start_time, "end": end,
        "timeline": app_timeline("job", jobs, executors, listing.start_time, end,
                                 lambda j: f"{view.base}jobs/job/?id={j['jobId']}"),
    }


def job_page(view: AppView, request: Request) -> tuple[str, dict[str, Any]]:
    job_id = _int_param(request, "id")
    job = view.get("jobs", job_id)
    wanted = set(job["stageIds"])
    stages = [s for s in view.get("stages") if s["stageId"] in wanted]
    timeline = app_timeline("stage", stages, view.get("allexecutors"), job.get("submissionTime"),
                            job.get("completionTime"), lambda s: _stage_href(view, s), clip=True)
    return "ui_job.html", {"job": job, "groups": _stage_groups(stages), "stages": stages, "timeline": timeline,
                           "dag": _dag(view, "job", job_id)}


def _dag(view: AppView, kind: str, owner_id: int) -> DagFigure | None:
    """The DAG figure of a job or stage page (its graphs: the state's, through the same dispatch)."""
    def stage_href(stage_id: int, attempt: int) -> str:
        return f"{view.base}stages/stage/?id={stage_id}&attempt={attempt}"

    return dag_figure(view.get(*DAG_RESOURCE, kind, owner_id), stage_href if kind == "job" else None)


def _stage_href(view: AppView, stage: dict[str, Any]) -> str:
    return f"{view.base}stages/stage/?id={stage['stageId']}&attempt={stage['attemptId']}"


def stages_page(view: AppView, request: Request) -> tuple[str, dict[str, Any]]:
    stages = view.get("stages")
    pools: dict[str, int] = {}
    for s in stages:
        pools[s["schedulingPool"]] = pools.get(s["schedulingPool"], 0) + 1
    return "ui_stages.html", {"groups": _stage_groups(stages), "stages": stages, "pools": sorted(pools.items()),
                              "pool": None}


def pool_page(view: AppView, request: Request) -> tuple[str, dict[str, Any]]:
    pool = request.query_params.get("poolname")
    if not pool:
        raise PageError(400, "Missing poolname parameter")
    stages = [s for s in view.get("stages") if s["schedulingPool"] == pool]
    return "ui_stages.html", {"groups": _stage_groups(stages), "stages": stages, "pools": [(pool, len(stages))],
                              "pool": pool}


#: The summary-metrics table of a stage page: (label, field path in ``taskMetricsDistributions``, kind).
SUMMARY_ROWS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Duration", ("duration",), "ms"),
    ("Scheduler Delay", ("schedulerDelay",), "ms"),
    ("Task Deserialization Time", ("executorDeserializeTime",), "ms"),
    ("GC Time", ("jvmGcTime",), "ms"),
    ("Result Serialization Time", ("resultSerializationTime",), "ms"),
    ("Getting Result Time", ("gettingResultTime",), "ms"),
    ("Peak Execution Memory", ("peakExecutionMemory",), "bytes"),
    ("Input Size", ("inputMetrics", "bytesRead"), "bytes"),
    ("Input Records", ("inputMetrics", "recordsRead"), "count"),
    ("Output Size", ("outputMetrics", "bytesWritten"), "bytes"),
    ("Output Records", ("outputMetrics", "recordsWritten"), "count"),
    ("Shuffle Read Size", ("shuffleReadMetrics", "readBytes"), "bytes"),
    ("Shuffle Read Records", ("shuffleReadMetrics", "readRecords"), "count"),
    ("Shuffle Read Fetch Wait Time", ("shuffleReadMetrics", "fetchWaitTime"), "ms"),
    ("Shuffle Remote Reads", ("shuffleReadMetrics", "remoteBytesRead"), "bytes"),
    ("Shuffle Write Size", ("shuffleWriteMetrics", "writeBytes"), "bytes"),
    ("Shuffle Write Records", ("shuffleWriteMetrics", "writeRecords"), "count"),
    ("Spill (Memory)", ("memoryBytesSpilled",), "bytes"),
    ("Spill (Disk)", ("diskBytesSpilled",), "bytes"),
)
#: Rows shown only when the stage has that kind of I/O (as the SHS hides them): row label prefix -> stage field.
_OPTIONAL_ROWS = {"Input": "inputBytes", "Output": "outputBytes", "Shuffle Read": "shuffleReadBytes",
                  "Shuffle Remote": "shuffleReadBytes", "Shuffle Write": "shuffleWriteBytes",
                  "Spill": "memoryBytesSpilled"}

#: The task table's columns: (heading, the ``taskTable`` column to sort by, or None: not sortable).
TASK_COLUMNS: tuple[tuple[str, str | None], ...] = (
    ("Index", "Index"), ("Task ID", "ID"), ("Attempt", "Attempt"), ("Status", "Status"),
    ("Locality Level", "Locality Level"), ("Executor ID", "Executor ID"), ("Host", "Host"),
    ("Launch Time", "Launch Time"), ("Duration", "Duration"), ("GC Time", None), ("Input", None),
    ("Shuffle Read", None), ("Shuffle Write", None), ("Errors", "Errors"),
)
TASK_PAGE_SIZES = (20, 100, 500, 1000)
#: The slowest tasks a stage page links to (the first rows of the table sorted by duration).
SLOWEST = 5


#: Where the summary table's quantiles (min, 25th percentile, median, 75th percentile, max: the
#: ``taskMetricsDistributions`` of ``withSummaries``) are in the charts' :data:`QUANTILES`.
SUMMARY_AT = tuple(QUANTILES.index(q) for q in (0.0, 0.25, 0.5, 0.75, 1.0))


def _summary_rows(stage: dict[str, Any], dist: dict[str, Any] | None) -> list[tuple[str, list[Any], str]]:
    """The summary table from the stage and its ``taskSummary`` at :data:`QUANTILES` (one computation
    for the table and the charts: the same picks as ``withSummaries``' five quantiles)."""
    if not dist:
        return []
    rows = []
    for label, path, kind in SUMMARY_ROWS:
        gate = next((field for prefix, field in _OPTIONAL_ROWS.items() if label.startswith(prefix)), None)
        if gate is not None and not stage.get(gate) and not (gate == "memoryBytesSpilled" and stage.get("diskBytesSpilled")):
            continue
        value: Any = dist
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, list):
            rows.append((label, [value[i] for i in SUMMARY_AT], kind))
    return rows


def stage_page(view: AppView, request: Request) -> tuple[str, dict[str, Any]]:
    stage_id = _int_param(request, "id")
    attempt_id = _int_param(request, "attempt", 0)
    # details with an empty taskStatus: the executor summaries without reading a task.
    stage = view.get("stages", stage_id, attempt_id, details="true", taskStatus="")
    q = request.query_params
    column = q.get("task.sort") or "Index"
    if column not in {c for _, c in TASK_COLUMNS if c}:
        column = "Index"
    descending = (q.get("task.desc") or "false").lower() == "true"
    size = _int_param(request, "task.pageSize", TASK_PAGE_SIZES[0])
    if size not in TASK_PAGE_SIZES:
        size = TASK_PAGE_SIZES[0]
    requested = max(1, _int_param(request, "task.page", 1))

    def tasks_page(page: int) -> dict[str, Any]:
        found: dict[str, Any] = view.get("stages", stage_id, attempt_id, "taskTable", start=str((page - 1) * size),
                                         length=str(size), columnNameToSort=column,
                                         **{"order[0][dir]": "desc" if descending else "asc"})
        return found

    try:  # first: reading every task for the quantiles leaves the task table's orders behind
        distribution = view.kept("stages", stage_id, attempt_id, "taskSummary",
                                 quantiles=",".join(f"{q:g}" for q in QUANTILES))
    except ApiError:  # no task has finished: no distribution (the API's 404)
        distribution = None
    table: dict[str, Any] = tasks_page(requested)
    total = int(table["recordsTotal"])
    pages = max(1, -(-total // size))
    page = min(requested, pages)
    if page != requested:
        table = tasks_page(page)
    addresses = {x["id"]: x["hostPort"] for x in view.get("allexecutors")}
    base_query = {"id": str(stage_id), "attempt": str(attempt_id)}

    def task_link(**changes: Any) -> str:
        values = {**base_query, "task.sort": column, "task.desc": str(descending).lower(),
                  "task.pageSize": str(size), "task.page": str(page)}
        values.update({k.replace("_", "."): str(v).lower() if isinstance(v, bool) else str(v) for k, v in changes.items()})
        return "?" + urlencode(values)

    attempts = [s["attemptId"] for s in view.get("stages", stage_id, details="false")]
    slowest = view.get("stages", stage_id, attempt_id, "taskTable", start="0", length=str(SLOWEST),
                       columnNameToSort="Duration", **{"order[0][dir]": "desc"})["aaData"] if distribution else []
    return "ui_stage.html", {
        "stage": stage, "summary": _summary_rows(stage, distribution), "tasks": table["aaData"], "total_tasks": total,
        "executor_summary": sorted(stage.get("executorSummary", {}).items()), "addresses": addresses,
        "columns": TASK_COLUMNS, "sort": column, "descending": descending, "page": page, "pages": pages,
        "page_size": size, "page_sizes": TASK_PAGE_SIZES, "task_link": task_link, "attempts": attempts,
        "timeline": task_timeline(table["aaData"], lambda t: f"#task-{t['taskId']}"),
        "charts": distribution_charts(distribution), "skew": skew(distribution, slowest),
        "slowest_link": task_link(task_sort="Duration", task_desc=True, task_page=1),
        "dag": _dag(view, "stage", stage_id),
    }


def executors_page(view: AppView, request: Request) -> tuple[str, dict[str, Any]]:
    executors = view.get("allexecutors")
    fields = ("rddBlocks", "memoryUsed", "maxMemory", "diskUsed", "totalCores", "activeTasks", "failedTasks",
              "completedTasks", "totalTasks", "totalDuration", "totalGCTime", "totalInputBytes", "totalShuffleRead",
              "totalShuffleWrite")
    summary = []
    for title, chosen in (("Active", [x for x in executors if x["isActive"]]),
                          ("Dead", [x for x in executors if not x["isActive"]]), ("Total", executors)):
        row: dict[str, Any] = {f: sum(int(x.get(f, 0)) for x in chosen) for f in fields}
        row["title"], row["count"] = title, len(chosen)
        row["excluded"] = sum(1 for x in chosen if x.get("isExcluded"))
        summary.append(row)
    return "ui_executors.html", {"executors": executors, "summary": summary}


def environment_page(view: AppView, request: Request) -> tuple[str, dict[str, Any]]:
    env = view.get("environment")
    sections = [("Spark Properties", env["sparkProperties"]), ("Hadoop Properties", env["hadoopProperties"]),
                ("System Properties", env["systemProperties"]), ("Metrics Properties", env["metricsProperties"]),
                ("Classpath Entries", env["classpathEntries"])]
    return "ui_environment.html", {"runtime": sorted(env["runtime"].items()), "sections": sections,
                                   "profiles": env.get("resourceProfiles", [])}


SQL_PAGE = 100


def sql_page(view: AppView, request: Request) -> tuple[str, dict[str, Any]]:
    page = max(1, _int_param(request, "page", 1))
    executions = view.get("sql", details="false", planDescription="false", offset=str((page - 1) * SQL_PAGE),
                          length=str(SQL_PAGE + 1))
    more = len(executions) > SQL_PAGE
    return "ui_sql.html", {"executions": executions[:SQL_PAGE], "page": page, "more": more}


def execution_page(view: AppView, request: Request) -> tuple[str, dict[str, Any]]:
    execution_id = _int_param(request, "id")
    execution = view.get("sql", execution_id)
    clusters: dict[int, list[dict[str, Any]]] = {}
    for node in execution["nodes"]:
        if "wholeStageCodegenId" in node:
            clusters.setdefault(node["wholeStageCodegenId"], []).append(node)
    return "ui_sql_execution.html", {"execution": execution, "clusters": sorted(clusters.items()),
                                     "figure": plan_figure(execution)}


def storage_page(view: AppView, request: Request) -> tuple[str, dict[str, Any]]:
    return "ui_storage.html", {"rdds": view.get("storage", "rdd")}


def rdd_page(view: AppView, request: Request) -> tuple[str, dict[str, Any]]:
    rdd_id = _int_param(request, "id")
    return "ui_rdd.html", {"rdd": view.get("storage", "rdd", rdd_id)}


#: Page path below an attempt -> (tab, title, handler).
PAGES: dict[str, tuple[str, str, Handler]] = {
    "jobs": ("jobs", "Spark Jobs", jobs_page),
    "jobs/job": ("jobs", "Details for Job", job_page),
    "stages": ("stages", "Stages for All Jobs", stages_page),
    "stages/stage": ("stages", "Details for Stage", stage_page),
    "stages/pool": ("stages", "Fair Scheduler Pool", pool_page),
    "storage": ("storage", "Storage", storage_page),
    "storage/rdd": ("storage", "RDD Storage Info", rdd_page),
    "environment": ("environment", "Environment", environment_page),
    "executors": ("executors", "Executors", executors_page),
    "SQL": ("SQL", "SQL / DataFrame", sql_page),
    "SQL/execution": ("SQL", "Details for Query", execution_page),
}
_TOP = frozenset(p.split("/")[0] for p in PAGES)
TABS = (("jobs", "Jobs"), ("stages", "Stages"), ("storage", "Storage"), ("environment", "Environment"),
        ("executors", "Executors"), ("SQL", "SQL / DataFrame"))


# ---------------------------------------------------------------------------------- static assets
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".svg": "image/svg+xml", ".ico": "image/x-icon", ".png": "image/png"}


@functools.cache
def static_files() -> dict[str, tuple[bytes, str]]:
    """The assets shipped in ``sparkhist/ui/static/``: name -> (bytes, content type)."""
    out: dict[str, tuple[bytes, str]] = {}
    for item in (importlib.resources.files("sparkhist.ui") / "static").iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1] if "." in item.name else ""
        if item.is_file() and suffix in _STATIC_TYPES:
            out[item.name] = (item.read_bytes(), _STATIC_TYPES[suffix])
    return out


# ---------------------------------------------------------------------------------- routes
def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-cache"})


def error_page(status: int, message: str, path: str) -> HTMLResponse:
    titles = {400: "Bad request", 404: "Not found", 503: "Unavailable"}
    return _html(render("ui_error.html", status=status, title=titles.get(status, "Error"), message=message,
                        path=path), status)


def _quoted(value: str) -> str:
    return quote(value, safe="")


def _with_query(url: str, request: Request) -> str:
    query = request.url.query
    return f"{url}?{query}" if query else url


def ui_routes(ctx: UiContext) -> list[BaseRoute]:
    """The UI's routes, to mount after the API's: the last one answers every other path with a 404 page."""
    listing = AppListing(ctx.index)
    kept = KeptRecords()

    def app_list(request: Request) -> Response:
        q = ListQuery.parse(request.query_params.get)
        page = listing.page(q)
        for row in page.rows:
            app_path = "/history/" + _quoted(row["id"]) + "/"
            if "attemptId" in row:
                app_path += _quoted(row["attemptId"]) + "/"
            row["href"] = app_path + "jobs/"
            logs = "/api/v1/applications/" + _quoted(row["id"]) + "/"
            row["logs"] = logs + (_quoted(row["attemptId"]) + "/" if "attemptId" in row else "") + "logs"

        def link(**changes: Any) -> str:
            return "?" + urlencode(q.link(**changes))

        return _html(render("ui_app_list.html", page=page, q=q, link=link, columns=COLUMNS, page_sizes=PAGE_SIZES,
                            log_directories=ctx.log_directories()))

    def static(request: Request) -> Response:
        found = static_files().get(request.path_params["name"])
        if found is None:
            return error_page(404, "No such file", request.url.path)
        body, content_type = found
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "public, max-age=3600"})

    def history(request: Request) -> Response:
        raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
        parts = [unquote_to_bytes(p).decode("utf-8", "replace") for p in raw[len(b"/history/"):].split(b"/")]
        app_id, rest = parts[0], parts[1:]
        attempt_id: str | None = None
        if rest and rest[0] not in _TOP and rest[0] != "":
            attempt_id, rest = rest[0], rest[1:]
        slash = bool(rest) and rest[-1] == ""
        rest = [p for p in rest if p != ""]
        app = ctx.index.get(app_id) if app_id else None
        if app is None:
            return error_page(404, f"Application {app_id} not found.", request.url.path)
        attempt = next((a for a in app.attempts if a.attempt_id == attempt_id), None)
        if attempt is None:
            if attempt_id is not None:
                return error_page(404, f"Application {app_id} attempt {attempt_id} not found.", request.url.path)
            # No attempt in the URL of an application with attempt ids: its latest attempt.
            latest = app.attempts[0].attempt_id or ""
            target = "/history/" + _quoted(app_id) + "/" + _quoted(latest) + "/" + "/".join(rest)
            return RedirectResponse(_with_query(target + ("/" if rest else "jobs/"), request), 302)
        base = "/history/" + _quoted(app_id) + "/" + (_quoted(attempt_id) + "/" if attempt_id is not None else "")
        page_path = "/".join(rest)
        if not rest:
            return RedirectResponse(base + "jobs/", 302)
        if page_path not in PAGES:
            return error_page(404, f"No page {page_path} for application {app_id}.", request.url.path)
        if not slash:
            return RedirectResponse(_with_query(base + page_path + "/", request), 302)
        tab, title, handler = PAGES[page_path]
        view = AppView(app, attempt, base, ctx.records, kept)
        try:
            template, context = handler(view, request)
        except PageError as exc:
            return error_page(exc.status, exc.message, request.url.path)
        except ApiError as exc:
            return error_page(exc.status if exc.status in (400, 404, 503) else 500, str(exc), request.url.path)
        return _html(render(template, view=view, app_name=app.name or app.id, attempt_id=attempt_id,
                            spark_version=attempt.listing.spark_version, tab=tab, tabs=TABS, title=title, **context))

    def operations(request: Request) -> Response:
        if ctx.health is None:
            return error_page(404, "No health document here.", request.url.path)
        return _html(render("ui_operations.html", title="Operations", **operations_context(ctx.health())))

    def not_found(request: Request) -> Response:
        return error_page(404, "No such page.", request.url.path)

    return [
        Route("/", app_list, methods=["GET", "HEAD"]),
        Route("/static/{name}", static, methods=["GET", "HEAD"]),
        Route("/history/{rest:path}", history, methods=["GET", "HEAD"]),
        Route("/operations/", operations, methods=["GET", "HEAD"]),
        Route("/operations", lambda request: RedirectResponse("/operations/", 302), methods=["GET", "HEAD"]),
        Route("/{rest:path}", not_found, methods=["GET", "HEAD"]),
    ]
