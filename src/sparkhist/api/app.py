"""The HTTP application: routes, error translation, and nothing else.

Handlers read only from the in-memory index and the store, never from the log source
(except ``/logs``, which is a download of the source's files by definition), so the
API keeps answering when the source is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import sparkhist
from sparkhist.access import AccessMiddleware, AccessPolicy
from sparkhist.api import openapi, responses
from sparkhist.api.limits import RequestLimits
from sparkhist.api.ops import MetricsExporter, ops_routes
from sparkhist.api.request_metrics import RequestMetricsMiddleware
from sparkhist.api.response_cache import GZIP_MIN_BYTES, KeptBody, RenderedJson, ResponseCache, StreamedJson
from sparkhist.api.v1 import applications
from sparkhist.api.v1.dispatch import AppStates, LogsRequest, acl_attempts, dispatch, kept_answer
from sparkhist.config import LogSource, LogSources
from sparkhist.errors import ApiError, BadDate, JerseyNotFound, JerseyServerError, SourceError
from sparkhist.source.base import Source
from sparkhist.store.applications import AppLookup
from sparkhist.ui import UiContext, log_directory_labels, ui_routes
from sparkhist.ui.dag import with_dag_records

log = logging.getLogger("sparkhist.api")


@dataclass
class ServerContext:
    """What the API reads from: built by the server, injected here."""

    index: AppLookup
    source: Source
    states: AppStates
    handle_app_resource: Callable[..., Any]
    health: Callable[[], dict[str, Any]] = field(default=lambda: {"status": "ok"})  # the /health/details document
    ready: Callable[[], bool] = field(default=lambda: True)
    metrics: MetricsExporter | None = None  # /metrics and request counting; None: off
    #: The unfiltered list's bytes when stored ones are current (read before the index), else None.
    stored_list: Callable[[], bytes | None] | None = None
    #: Rendered answers of completed attempts (None: every request is rendered).
    response_cache: ResponseCache | None = None
    #: Authentication and the SHS's ACLs (sparkhist.access); None: every request is anonymous and allowed.
    access: AccessPolicy | None = None
    #: The store whose analytics tables /analytics/sql queries (None: no such route).
    store_dir: str | None = None
    #: The configured log directories and their names (the home page shows them); None: the source's root.
    log_source: LogSource | LogSources | None = None
    #: The application index when it answers without waiting (loaded: ``get`` and ``version`` are lookups),
    #: else None; with it, kept answers are sent from the event loop (no worker thread). None: never.
    loaded_index: Callable[[], AppLookup | None] | None = None


def _gzip_wanted(request: Request, kept: KeptBody) -> bool:
    """Whether ``kept`` goes gzip-compressed: long enough (as Jetty's ``GzipHandler``) and accepted."""
    return len(kept.body) >= GZIP_MIN_BYTES and responses.accepts_gzip(request.headers.get("accept-encoding", ""))


def _error_response(request: Request, exc: ApiError) -> Response:
    if isinstance(exc, JerseyNotFound):
        return responses.jetty_not_found(request.url.path)
    if isinstance(exc, JerseyServerError):
        return responses.jetty_server_error(request.url.path)
    if isinstance(exc, BadDate):
        return responses.date_error(str(exc))
    return responses.text_error(exc.status, str(exc))


def create_app(ctx: ServerContext) -> Starlette:
    def version(request: Request) -> Response:
        return responses.json_response({"spark": sparkhist.SPARK_VERSION})  # the release answered as

    # (index version, body) of the plain /applications answer; (the stored list's bytes, body) while it answers
    unfiltered: list[Any] = [None, KeptBody(b"")]
    stored_kept: list[Any] = [None, KeptBody(b"")]
    stored_gone = [ctx.stored_list is None]  # the stored list, once not the answer, never is again

    def loaded_index() -> AppLookup | None:
        return None if ctx.loaded_index is None else ctx.loaded_index()

    def kept_list() -> KeptBody | None:
        """The plain list's kept body when current, found without waiting (else None)."""
        if not stored_gone[0]:
            stored = ctx.stored_list() if ctx.stored_list is not None else None  # attribute reads
            if stored is None:
                stored_gone[0] = True
            else:
                if stored_kept[0] is not stored:
                    stored_kept[0], stored_kept[1] = stored, KeptBody(stored)
                kept: KeptBody = stored_kept[1]
                return kept
        index = loaded_index()
        if unfiltered[0] is not None and index is not None and index.version == unfiltered[0]:
            current: KeptBody = unfiltered[1]
            return current
        return None

    async def application_list(request: Request) -> Response:
        if not request.query_params:
            kept = kept_list()
            if kept is not None:
                return await kept_response(request, kept)  # the body kept: no worker thread
        return await run_in_threadpool(rendered_list, request)

    def rendered_list(request: Request) -> Response:
        try:
            if not request.query_params:
                kept = kept_list()
                if kept is None:
                    # Running apps are in or out of the list depending on the clock only through
                    # maxEndDate, whose default (year 3000) keeps them: the answer changes only
                    # when the index does.
                    version = ctx.index.version
                    if unfiltered[0] != version:
                        unfiltered[1] = KeptBody(applications.unfiltered_body(ctx.index.sorted_apps()))
                        unfiltered[0] = version
                    kept = unfiltered[1]
                return kept_response_now(request, kept)
            return responses.json_response(applications.application_list(ctx.index, request.query_params))
        except ApiError as exc:
            return _error_response(request, exc)

    async def kept_response(request: Request, kept: KeptBody) -> Response:
        """A kept body, gzip-compressed when the client accepts it (compressed once, off the event loop)."""
        if _gzip_wanted(request, kept):
            compressed = kept.compressed
            if compressed is None:
                compressed = await run_in_threadpool(kept.gzipped)
            return responses.gzip_json_response(compressed)
        return responses.raw_json_response(kept.body)

    def kept_response_now(request: Request, kept: KeptBody) -> Response:
        """:func:`kept_response` on a worker thread."""
        if _gzip_wanted(request, kept):
            return responses.gzip_json_response(kept.gzipped())
        return responses.raw_json_response(kept.body)

    async def application_resource(request: Request) -> Response:
        segments, uri = _app_segments(request)
        if segments and segments[-1] == "":
            segments.pop()
        if not segments:
            return await application_list(request)
        index = loaded_index()
        if index is not None and ctx.response_cache is not None:
            kept = kept_answer(index.get, segments, request.query_params, uri, ctx.response_cache)
            if kept is not None:
                return await kept_response(request, kept.kept)  # a lookup: no worker thread
        return await run_in_threadpool(rendered_resource, request, segments, uri)

    def rendered_resource(request: Request, segments: list[str], uri: str) -> Response:
        try:
            result = dispatch(ctx.index, ctx.states, segments, request.query_params, uri,
                              ctx.handle_app_resource, ctx.response_cache)
        except ApiError as exc:
            return _error_response(request, exc)
        if isinstance(result, RenderedJson):
            return kept_response_now(request, result.kept)
        if isinstance(result, StreamedJson):
            return responses.json_chunks_response(result.chunks)
        if isinstance(result, LogsRequest):
            return _logs_response(result)
        return responses.json_response(result)

    def _logs_response(req: LogsRequest) -> Response:
        from sparkhist.api.v1.logs import logs_zip_chunks, zip_file_name

        headers = {**responses.SHS_HEADERS,
                   "Content-Disposition": f"attachment; filename={zip_file_name(req.app_id, req.attempt_id)}"}
        try:
            for attempt in req.attempts:  # fail early (before streaming) when the source is gone
                ctx.source.stat(attempt.log_path)
        except SourceError:
            return responses.text_error(503, f"Event logs are not available for app: {req.app_id}.")
        return StreamingResponse(logs_zip_chunks(ctx.source, req.attempts), media_type="application/octet-stream",
                                 headers=headers)

    def api_unknown(request: Request) -> Response:
        return responses.jetty_not_found(request.url.path)

    document = openapi.build_document()

    def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    def ui_records(app_id: str, attempt_id: str | None, rest: list[str], query: Mapping[str, str]) -> Any:
        # The web UI's figures: the same dispatch (attempt rules, state path) as /api/v1.
        segments = [app_id, *([] if attempt_id is None else [attempt_id]), *rest]
        return dispatch(ctx.index, ctx.states, segments, QueryParams(query),
                        "/api/v1/applications/" + "/".join(segments), ui_handle)

    ui_handle = with_dag_records(ctx.handle_app_resource)  # plus the DAGs of job and stage pages

    routes = [
        Route("/api/v1/version", version),
        Route("/api/v1/version/", version),
        Route("/api/v1/applications", application_list),
        Route("/api/v1/applications/{rest:path}", application_resource),
        Route("/api/v1/{rest:path}", api_unknown),
        Route("/openapi.json", openapi_json),
        *ops_routes(ctx.health, ctx.ready, ctx.metrics),
        # "/", /history/..., /static/..., /operations/ (the health document drawn)
        *ui_routes(UiContext(ctx.index, ui_records, lambda: log_directory_labels(ctx.log_source, ctx.source.root), ctx.health)),
    ]
    if ctx.store_dir is not None:
        from sparkhist.api.analytics import analytics_routes, viewable_by_user

        viewable = None if ctx.access is None else viewable_by_user(lambda: ctx.index, ctx.access.authorizer)
        routes[-1:-1] = analytics_routes(ctx.store_dir, viewable=viewable)
    middleware = [] if ctx.metrics is None else [Middleware(RequestMetricsMiddleware, observe=ctx.metrics.observe_request)]
    middleware.append(Middleware(RequestLimits))  # innermost: refused requests are counted too
    if ctx.access is not None:  # after the limits: a refused request line never reaches it
        middleware.append(Middleware(AccessMiddleware, policy=ctx.access, index=lambda: ctx.index,
                                     api_attempts=acl_attempts, api_forbidden=lambda m: responses.text_error(403, m)))
    return Starlette(routes=routes, middleware=middleware)


_APPLICATIONS = b"/api/v1/applications/"


def _app_segments(request: Request) -> tuple[list[str], str]:
    """The path segments below ``/applications/`` and the request URI, as Jersey sees them:
    split before decoding, so an encoded slash (``a%2Fb``) stays inside its segment."""
    raw: bytes = request.scope.get("raw_path") or b""
    if not raw.startswith(_APPLICATIONS):
        return request.path_params["rest"].split("/"), request.url.path
    segments = [unquote_to_bytes(part).decode("utf-8", "replace") for part in raw[len(_APPLICATIONS):].split(b"/")]
    return segments, raw.decode("utf-8", "replace")
