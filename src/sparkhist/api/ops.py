"""Operational endpoints: liveness, readiness, the health document, Prometheus metrics.

- ``/health``: liveness. Constant and cheap: 200 whenever the process answers, so an
  orchestrator restarts only a process that is really stuck, never one whose log
  source is down (restarting would not bring the source back).
- ``/ready``: 200 once the store is open and start-up recovery is done, else 503.
- ``/health/details``: the full health document (always 200; its ``status`` says).
- ``/metrics``: the runtime's registry in the Prometheus text (or OpenMetrics) format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sparkhist import __version__
from sparkhist.api import responses


class MetricsExporter(Protocol):
    """What the HTTP layer needs of the metrics (``observability.metrics.Metrics``)."""

    def exposition(self, accept: str) -> tuple[bytes, str]: ...

    def observe_request(self, route: str, status: int, seconds: float) -> None: ...


def ops_routes(
    health: Callable[[], dict[str, Any]],
    ready: Callable[[], bool],
    metrics: MetricsExporter | None,
) -> list[Route]:
    def liveness(request: Request) -> Response:
        return responses.json_response({"alive": True, "version": __version__})

    def readiness(request: Request) -> Response:
        ok = ready()
        return responses.json_response({"ready": ok}, status=200 if ok else 503)

    def details(request: Request) -> Response:
        return responses.json_response(health())

    def prometheus(request: Request) -> Response:
        if metrics is None:
            return responses.text_error(404, "metrics are not enabled")
        body, content_type = metrics.exposition(request.headers.get("accept", ""))
        return Response(body, media_type=None, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    return [
        Route("/health", liveness, methods=["GET", "HEAD"]),
        Route("/health/details", details, methods=["GET", "HEAD"]),
        Route("/ready", readiness, methods=["GET", "HEAD"]),
        Route("/metrics", prometheus, methods=["GET", "HEAD"]),
    ]
