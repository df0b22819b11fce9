"""Counts every HTTP request by route *template* and status, and times it.

Labels are templates such as ``/api/v1/applications/{appId}/jobs/{jobId}``, never raw
paths: a raw path holds application ids, so the number of series would grow with
the store. Everything the SHS API defines has a template; any other path under an
application is ``.../{appId}/{unknown}``, so the set of labels is fixed.

A pure ASGI middleware (not ``BaseHTTPMiddleware``), so streamed responses (log
downloads) pass through untouched; their time runs until the last byte is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sparkhist.api.v1.dispatch import APP_RESOURCES

Observe = Callable[[str, int, float], None]

APPLICATIONS = "/api/v1/applications"

#: Every sub-resource of one application attempt (SHS_REFERENCE §1.3); ``{}`` is a parameter.
_RESOURCE_TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("jobs",), ("jobs", "{jobId}"),
    ("stages",), ("stages", "{stageId}"), ("stages", "{stageId}", "{stageAttemptId}"),
    ("stages", "{stageId}", "{stageAttemptId}", "taskSummary"),
    ("stages", "{stageId}", "{stageAttemptId}", "taskList"),
    ("stages", "{stageId}", "{stageAttemptId}", "taskTable"),
    ("executors",), ("executors", "{executorId}", "threads"), ("allexecutors",), ("allmiscellaneousprocess",),
    ("threads",), ("storage", "rdd"), ("storage", "rdd", "{rddId}"), ("environment",), ("logs",),
    ("sql",), ("sql", "sqlTable"), ("sql", "{executionId}"),
    ("streaming", "statistics"), ("streaming", "receivers"), ("streaming", "receivers", "{streamId}"),
    ("streaming", "batches"), ("streaming", "batches", "{batchId}"),
    ("streaming", "batches", "{batchId}", "operations"),
    ("streaming", "batches", "{batchId}", "operations", "{outputOpId}"),
)


def _match(segments: list[str]) -> str:
    for template in _RESOURCE_TEMPLATES:
        if len(template) == len(segments) and all(
            t.startswith("{") or t == s for t, s in zip(template, segments, strict=True)
        ):
            return "/".join(template)
    return "{unknown}"


def application_template(rest: str) -> str:
    """The template of ``/api/v1/applications/<rest>`` (mirrors ``dispatch``'s attempt rule)."""
    segments = [s for s in rest.split("/") if s]
    if not segments:
        return APPLICATIONS
    prefix = APPLICATIONS + "/{appId}"
    tail = segments[1:]
    if tail and tail[0] not in APP_RESOURCES:
        prefix += "/{attemptId}"
        tail = tail[1:]
    return prefix if not tail else f"{prefix}/{_match(tail)}"


def route_template(scope: Scope) -> str:
    """The matched route's path template, refined under ``/api/v1/applications/``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "{unmatched}"
    if path == APPLICATIONS + "/{rest:path}":
        return application_template(str(scope.get("path_params", {}).get("rest", "")))
    return path


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, observe: Observe) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app raises before answering
        t0 = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.observe(route_template(scope), status, time.perf_counter() - t0)
