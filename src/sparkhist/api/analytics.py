"""``/analytics/sql?q=``: one read-only query over the analytics tables, as JSON.

Outside ``/api/v1`` (the SHS has no such thing). A query is refused with a 400 and a
one-line reason when it is not a single ``SELECT``/``WITH``, fails, runs longer than the
time limit (DuckDB is interrupted) or has more rows than the row limit; the answer is
``{"columns": [...], "types": [...], "rows": [[...], ...]}``.

ACLs: with the server's ACLs on, a query sees only the rows of the attempts its user may
view (the same decision as for the attempt's pages: :meth:`Authorizer.can_view` on the
attempt's logged ACLs); every table is filtered, so a join or an aggregate cannot reach
the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sparkhist.access.acls import AttemptAcls, Authorizer
from sparkhist.analytics.layout import key_of_log
from sparkhist.analytics.query import Engine, QueryError
from sparkhist.render.format import metric
from sparkhist.render.html import render
from sparkhist.store.applications import AppLookup
from sparkhist.ui.analytics_views import TREND_SQL, VIEWS, overview_context, trend_context

__all__ = ["analytics_routes"]

#: Default limits of the endpoint.
TIMEOUT_SECONDS = 10.0
MAX_ROWS = 10_000


def _error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status, media_type="application/json")


#: The keys of the attempts a request may query; None: every attempt.
Viewable = Callable[[Request], Collection[str] | None]


def viewable_by_user(index: Callable[[], AppLookup], authorizer: Authorizer) -> Viewable:
    """The attempts the request's authenticated user may view, by their analytics key."""
    def viewable(request: Request) -> Collection[str] | None:
        if not authorizer.enabled:
            return None
        user = request.scope.get("sparkhist.user")
        return {key_of_log(attempt.log_path) for app in index().sorted_apps() for attempt in app.attempts
                if authorizer.can_view(user, AttemptAcls.of(attempt.listing))}
    return viewable


def analytics_routes(store_dir: str, *, timeout: float = TIMEOUT_SECONDS, max_rows: int = MAX_ROWS,
                     viewable: Viewable | None = None) -> list[Route]:
    engines: list[Engine] = []
    made = threading.Lock()

    def engine() -> Engine:
        with made:
            if not engines:
                engines.append(Engine(store_dir, timeout=timeout, max_rows=max_rows))
            return engines[0]

    async def sql(request: Request) -> Response:
        query = request.query_params.get("q")
        if not query:
            return _error(400, "missing query: /analytics/sql?q=SELECT ...")
        allowed = viewable(request) if viewable is not None else None
        try:
            result = await run_in_threadpool(engine().run, query, allowed)
        except QueryError as exc:
            return _error(400, str(exc))
        body = {"columns": result.columns, "types": result.types, "rows": [list(r) for r in result.rows]}
        return Response(orjson.dumps(body, default=str), media_type="application/json")

    def queries(request: Request, items: list[tuple[str, dict[str, Any] | None]]) -> list[list[tuple[Any, ...]]]:
        allowed = viewable(request) if viewable is not None else None
        return [r.rows for r in engine().run_all(items, allowed)]

    async def overview(request: Request) -> Response:
        try:
            answers = await run_in_threadpool(queries, request, [(v.sql, None) for v in VIEWS])
        except QueryError as exc:
            return HTMLResponse(render("ui_error.html", status=503, title="Across applications", message=str(exc),
                                       path=request.url.path), 503)
        by_sql = dict(zip([v.sql for v in VIEWS], answers, strict=True))
        context = overview_context(lambda q, _params: by_sql[q])
        return HTMLResponse(render("ui_analytics.html", title="Across applications", **context))

    async def trend(request: Request) -> Response:
        name = request.query_params.get("name")
        if not name:
            return RedirectResponse("/analytics/", 302)
        try:
            [rows] = await run_in_threadpool(queries, request, [(TREND_SQL, {"name": name})])
        except QueryError as exc:
            return HTMLResponse(render("ui_error.html", status=503, title="Across applications", message=str(exc),
                                       path=request.url.path), 503)
        context = trend_context(name, rows, lambda kind, value: metric(value, kind))
        return HTMLResponse(render("ui_analytics_trend.html", title=f"Runs of {name}", **context))

    return [Route("/analytics/sql", sql), Route("/analytics/", overview, methods=["GET", "HEAD"]),
            Route("/analytics", lambda request: RedirectResponse("/analytics/", 302), methods=["GET", "HEAD"]),
            Route("/analytics/trend/", trend, methods=["GET", "HEAD"])]
