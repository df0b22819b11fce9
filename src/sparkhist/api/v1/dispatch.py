"""Routing under ``/api/v1/applications/{appId}``, with the SHS's attempt rules.

The ``{attemptId}`` sub-resource is declared last in Spark's resources, so a first
segment that names a resource (``jobs``, ``stages``...) means "no attempt"; anything
else is an attempt id (SHS_REFERENCE §1.1). A lookup goes through ``withSparkUI``,
which fails with ``no such app: <id>[/<attempt>]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sparkhist.api.response_cache import RenderedJson, ResponseCache, StreamedJson
from sparkhist.api.v1 import applications
from sparkhist.api.v1.params import QueryParams
from sparkhist.errors import NotFound, ServiceUnavailable
from sparkhist.render.encode import dumps_chunks
from sparkhist.store.applications import AppEntry, AppLookup, AttemptEntry

if TYPE_CHECKING:
    from sparkhist.state.sections import StageTasks

APP_RESOURCES = frozenset(
    {
        "jobs", "stages", "executors", "allexecutors", "allmiscellaneousprocess", "storage",
        "environment", "sql", "streaming", "threads", "logs",
    }
)


class LoadedAttempt(Protocol):
    """One attempt's state as a request reads it (:class:`sparkhist.store.states.AttemptState`)."""

    @property
    def state(self) -> Any: ...

    @property
    def tasks(self) -> StageTasks | None:
        """None: ``state`` holds its tasks. Else ``state`` is a summary without tasks, and
        this reads a stage attempt's tasks, or the chunks of them a request needs, when it
        needs them (raising :class:`SnapshotChanged` when the snapshot was replaced
        meanwhile: the request is answered again from the new one)."""


class AppStates(Protocol):
    """Gives the state of one attempt (built from the store, never per request)."""

    def get(self, app: AppEntry, attempt: AttemptEntry) -> LoadedAttempt: ...


@dataclass(frozen=True, slots=True)
class LogsRequest:
    """The dispatcher's answer for ``.../logs``: the HTTP layer streams the zip."""

    app_id: str
    attempt_id: str | None
    attempts: tuple[AttemptEntry, ...]


def find_attempt(index: AppLookup, app_id: str, attempt_id: str | None) -> tuple[AppEntry, AttemptEntry]:
    """``withSparkUI(appId, attemptId)``: the attempt, or ``no such app: <key>``."""
    key = app_id if attempt_id is None else f"{app_id}/{attempt_id}"
    app = index.get(app_id)
    if app is not None:
        for attempt in app.attempts:
            if attempt.attempt_id == attempt_id:
                return app, attempt
    raise NotFound(f"no such app: {key}")


def dispatch(
    index: AppLookup,
    states: AppStates,
    segments: list[str],
    query: QueryParams,
    uri: str,
    handle: Callable[..., Any],
    cache: ResponseCache | None = None,
) -> Any:
    """Answer ``/applications/<segments...>``; returns a payload, a :class:`RenderedJson`
    (from ``cache``), a :class:`StreamedJson` (a completed attempt's answer, kept in
    ``cache`` once sent when small enough) or a :class:`LogsRequest`."""
    app_id = segments[0]
    rest = segments[1:]
    if not rest:
        return applications.one_application(index, app_id)
    attempt_id: str | None = None
    if rest[0] not in APP_RESOURCES:
        attempt_id, rest = rest[0], rest[1:]
        if not rest:
            return applications.one_attempt(index, app_id, attempt_id)
        if rest[0] not in APP_RESOURCES:
            raise NotFound(uri)
    if rest[0] == "logs" and len(rest) == 1:
        return _logs(index, app_id, attempt_id)
    if not _direct_resource_matches(rest):
        # Falls through to the {attemptId} sub-resource a second time: the SHS answers
        # 404 with the request URI as the message.
        raise NotFound(uri)
    app, attempt = find_attempt(index, app_id, attempt_id)
    key = None
    if cache is not None and attempt.completed:
        key = (attempt.log_path, attempt.total_size, attempt.last_updated, uri, str(query))
        kept = cache.get(key)
        if kept is not None:
            return kept
    # Here, not at the top: answering the application list needs none of the snapshot machinery.
    from sparkhist.store.snapshots import SnapshotChanged

    for tries in range(_TRIES):
        loaded = states.get(app, attempt)
        try:
            if loaded.tasks is None:
                result = handle(loaded.state, rest, query, app_id=app_id)
            else:
                result = handle(loaded.state, rest, query, app_id=app_id, tasks=loaded.tasks)
            if key is None or cache is None:
                return result
            return StreamedJson(cache.keep(key, dumps_chunks(result)))
        except SnapshotChanged as exc:
            if tries == _TRIES - 1:
                raise ServiceUnavailable(f"application {app_id} is unavailable: {exc}") from exc
    raise AssertionError("unreachable")


def kept_answer(known_app: Callable[[str], AppEntry | None], segments: list[str], query: QueryParams, uri: str,
                cache: ResponseCache) -> RenderedJson | None:
    """:func:`dispatch`'s answer when it is a kept one, found without waiting, loading or
    rendering anything (so the HTTP layer may look on its event loop); None otherwise,
    and :func:`dispatch` answers. ``known_app``: the index's entry of an application it
    holds now (None when it does not, or cannot say without waiting): no on-demand load."""
    if len(segments) < 2:
        return None
    app_id, rest = segments[0], segments[1:]
    attempt_id: str | None = None
    if rest[0] not in APP_RESOURCES:
        attempt_id, rest = rest[0], rest[1:]
        if not rest or rest[0] not in APP_RESOURCES:
            return None
    if rest[0] == "logs" or not _direct_resource_matches(rest):
        return None
    app = known_app(app_id)
    if app is None:
        return None
    for attempt in app.attempts:
        if attempt.attempt_id == attempt_id:
            if not attempt.completed:
                return None
            return cache.get((attempt.log_path, attempt.total_size, attempt.last_updated, uri, str(query)),
                             count_miss=False)  # a miss is dispatch's to count
    return None


#: A snapshot rewritten while a request read its sections is read again; a third change
#: in a row (a log growing very fast) is a 503.
_TRIES = 3


# Resources declared directly on Spark's application resource class, with the path
# shapes they accept; ``stages``, ``sql`` and ``streaming`` are sub-resource locators
# whose own classes answer unknown paths (with Jersey's HTML 404).
_DIRECT_SHAPES: dict[str, tuple[tuple[str, ...], ...]] = {
    "jobs": ((), ("#",)),
    "executors": ((), ("*", "threads")),
    "allexecutors": ((),),
    "allmiscellaneousprocess": ((),),
    "storage": (("rdd",), ("rdd", "#")),
    "environment": ((),),
    "threads": ((),),
    "logs": ((),),
}


def _direct_resource_matches(rest: list[str]) -> bool:
    shapes = _DIRECT_SHAPES.get(rest[0])
    if shapes is None:
        return True  # a sub-resource locator: its own resource decides
    tail = rest[1:]
    for shape in shapes:
        if len(shape) == len(tail) and all(
            s == "*" or (s == "#" and t.isascii() and t.isdigit()) or s == t for s, t in zip(shape, tail, strict=True)
        ):
            return True
    return False


def _logs(index: AppLookup, app_id: str, attempt_id: str | None) -> LogsRequest:
    app = index.get(app_id)
    if app is not None:
        if attempt_id is None:
            return LogsRequest(app_id, None, app.attempts)
        chosen = tuple(a for a in app.attempts if a.attempt_id == attempt_id)
        if chosen:
            return LogsRequest(app_id, attempt_id, chosen)
    key = app_id if attempt_id is None else f"{app_id}/{attempt_id}"
    raise NotFound(f"no such app: {key}")


# Paths below the sub-resource locators that reach one of their resource methods, each of
# which reads the application through ``withUI`` (and so checks the user's view permission).
_LOCATED_SHAPES: dict[str, tuple[tuple[str, ...], ...]] = {
    "stages": ((), ("#",), ("#", "#"), ("#", "#", "taskSummary"), ("#", "#", "taskList"), ("#", "#", "taskTable")),
    "sql": ((), ("#",), ("sqlTable",)),
    "streaming": (("statistics",), ("receivers",), ("receivers", "#"), ("batches",), ("batches", "#"),
                  ("batches", "#", "operations"), ("batches", "#", "operations", "#")),
}


def acl_attempts(index: AppLookup, segments: list[str]) -> tuple[AttemptEntry, ...]:
    """The attempts whose view permission the SHS checks before answering ``/applications/<segments...>``.

    Empty when it checks none: the list, an application's or an attempt's own record
    (``getApp``, ``getAttempt``), a path no resource method matches, an unknown
    application or attempt (those answer 404 as they would without ACLs). ``logs``
    without an attempt checks the attempt without an id, else attempt ``"1"``
    (``getEventLogs``); when the application has neither (the SHS answers 404 there),
    every attempt the zip would hold.
    """
    segments = segments[:-1] if segments and segments[-1] == "" else segments
    if len(segments) < 2:
        return ()
    app = index.get(segments[0])
    if app is None:
        return ()
    rest = segments[1:]
    attempt_id: str | None = None
    if rest[0] not in APP_RESOURCES:
        attempt_id, rest = rest[0], rest[1:]
        if not rest or rest[0] not in APP_RESOURCES:
            return ()
    by_id = {a.attempt_id: a for a in app.attempts}
    if rest == ["logs"] and attempt_id is None:
        chosen = by_id.get(None) or by_id.get("1")
        return (chosen,) if chosen is not None else app.attempts
    shapes = _LOCATED_SHAPES.get(rest[0])
    if shapes is not None:
        tail = rest[1:]
        if not any(len(s) == len(tail) and all((p == "#" and t.isascii() and t.isdigit()) or p == t
                                               for p, t in zip(s, tail, strict=True)) for s in shapes):
            return ()
    elif not _direct_resource_matches(rest):
        return ()
    attempt = by_id.get(attempt_id)
    return (attempt,) if attempt is not None else ()
