"""``/analytics/sql?q=``: one read-only query over the analytics tables, as JSON.

Outside ``/api/v1`` (the SHS has no such thing). A query is refused with a 400 and a
one-line reason when it is not a single ``SELECT``/``WITH``, fails, runs longer than the
time limit (DuckDB is interrupted) or has more rows than the row limit; the answer is
``{"columns": [...], "types": [...], "rows": [[...], ...]}``.

ACLs: the tables hold every application's rows. Until the per-user filter is wired
(``row_filter``: a function of the request giving, per table, an SQL condition on
``app_id``/``attempt_id`` that :class:`~sparkhist.analytics.query.Engine` ANDs into each
view), the endpoint answers 403 when the server's ACLs are on, rather than show what a
user may not view.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sparkhist.analytics.query import Engine, QueryError, RowFilter

__all__ = ["analytics_routes"]

#: Default limits of the endpoint.
TIMEOUT_SECONDS = 10.0
MAX_ROWS = 10_000


def _error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status, media_type="application/json")


def analytics_routes(store_dir: str, *, acls_enabled: bool = False, timeout: float = TIMEOUT_SECONDS,
                     max_rows: int = MAX_ROWS,
                     row_filter: Callable[[Request], RowFilter | None] | None = None) -> list[Route]:
    engines: list[Engine] = []
    made = threading.Lock()

    def engine() -> Engine:
        with made:
            if not engines:
                engines.append(Engine(store_dir, timeout=timeout, max_rows=max_rows))
            return engines[0]

    async def sql(request: Request) -> Response:
        if acls_enabled and row_filter is None:
            return _error(403, "analytics queries are not available while ACLs are on")
        query = request.query_params.get("q")
        if not query:
            return _error(400, "missing query: /analytics/sql?q=SELECT ...")
        rows_of = row_filter(request) if row_filter is not None else None
        try:
            result = await run_in_threadpool(engine().run, query, rows_of)
        except QueryError as exc:
            return _error(400, str(exc))
        body = {"columns": result.columns, "types": result.types, "rows": [list(r) for r in result.rows]}
        return Response(orjson.dumps(body, default=str), media_type="application/json")

    return [Route("/analytics/sql", sql)]
