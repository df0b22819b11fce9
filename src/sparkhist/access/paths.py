"""Which application attempts a request reads, seen from its path alone.

``/api/v1/applications/<app>/...`` is classified by the API's routing rules (given by
the API layer); ``/history/<app>/...`` here: everything below an application's UI is
that application's (the SHS mounts each loaded UI's handlers, its security filter in
front, below ``/history/<app>[/<attempt>]``).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import Scope

from sparkhist.store.applications import AppLookup, AttemptEntry

API_PREFIX = "/api/v1/applications/"
UI_PREFIX = "/history/"


def segments_below(scope: Scope, prefix: str) -> list[str] | None:
    """The path's segments below ``prefix``, each decoded after splitting (an encoded
    slash stays inside its segment, as Jersey sees it); None when not below it."""
    path: str = scope["path"]
    if not path.startswith(prefix):
        return None
    raw: bytes = scope.get("raw_path") or b""
    encoded = prefix.encode()
    if raw.startswith(encoded):
        return [unquote_to_bytes(part).decode("utf-8", "replace") for part in raw[len(encoded):].split(b"/")]
    return path[len(prefix):].split("/")


def ui_attempts(index: AppLookup, segments: list[str]) -> tuple[AttemptEntry, ...]:
    """``/history/<app>/[<attempt>/]...``: the attempt whose UI this is, if it exists.

    A first segment naming one of the application's attempts selects it; otherwise the
    path belongs to the attempt without an id (an application's UI answers every path
    below it). An application with attempt ids addressed without one has no UI there
    (the page redirects to its latest attempt, whose pages are checked).
    """
    if not segments or not segments[0]:
        return ()
    app = index.get(segments[0])
    if app is None:
        return ()
    by_id = {a.attempt_id: a for a in app.attempts}
    first = segments[1] if len(segments) > 1 else ""
    if first and first in by_id:
        return (by_id[first],)
    plain = by_id.get(None)
    return (plain,) if plain is not None else ()
