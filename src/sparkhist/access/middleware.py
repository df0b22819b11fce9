"""The access middleware: authentication first, then the SHS's view decision per application.

Every HTTP request goes through :class:`AccessMiddleware`:

1. Unless its path is open (``/health``, ``/ready``; ``/metrics`` when configured), the
   authenticator names the user or the request is answered 401 (with the
   ``WWW-Authenticate`` challenge of the scheme).
2. With ACLs on, a request that reads an application (an API resource under
   ``/api/v1/applications/<app>/``, ``/logs``, a UI page under ``/history/<app>/``) is
   answered 403 when the user may not view that attempt, exactly where and as the SHS
   answers it: the API's ``user "<u>" is not authorized`` as ``text/plain``, the UI's Jetty
   page ``User <u> is not authorized to access this page.``. The list of applications,
   an application's or attempt's own record and the static files stay open, as in the SHS.
3. ``?doAs=<user>`` (how Knox and other proxies act for a user) is honoured when the
   authenticated user is an admin of the application, as the SHS's ``HttpSecurityFilter``
   does for UI pages. (The SHS's API lets anyone use ``doAs``, because its API handler's
   security manager has ACLs off; sparkhist applies the UI's rule there too.)

The decision reads the application index and may run ``id -Gn``: it runs on a worker
thread, and only for requests that read an application while ACLs are on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sparkhist.access.acls import AttemptAcls, Authorizer, HistoryAcls
from sparkhist.access.authn import Authenticator, Identity, Refusal
from sparkhist.access.paths import API_PREFIX, UI_PREFIX, segments_below, ui_attempts
from sparkhist.access.responses import jetty_page, unauthorized
from sparkhist.store.applications import AppLookup, AttemptEntry

#: Probes answer without authentication: an orchestrator's liveness and readiness checks.
ALWAYS_OPEN = frozenset({"/health", "/ready"})

ApiAttempts = Callable[[AppLookup, list[str]], tuple[AttemptEntry, ...]]


@dataclass(frozen=True)
class AccessPolicy:
    """What the middleware enforces (built from the settings by :mod:`sparkhist.access.settings`)."""

    authorizer: Authorizer = field(default_factory=lambda: Authorizer(HistoryAcls()))
    authenticator: Authenticator | None = None
    open_paths: frozenset[str] = ALWAYS_OPEN
    #: Added to every answer that does not set them (:func:`sparkhist.access.headers.security_headers`).
    headers: tuple[tuple[str, str], ...] = ()
    #: Added to answers over HTTPS only (Strict-Transport-Security).
    https_headers: tuple[tuple[str, str], ...] = ()

    @property
    def active(self) -> bool:
        return self.authenticator is not None or self.authorizer.enabled


class AccessMiddleware:
    """ASGI middleware enforcing an :class:`AccessPolicy` (see the module's docstring)."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy, index: Callable[[], AppLookup],
                 api_attempts: ApiAttempts, api_forbidden: Callable[[str], Response]) -> None:
        self.app = app
        self.policy = policy
        self.index = index
        self.api_attempts = api_attempts
        self.api_forbidden = api_forbidden

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = self.policy.headers + (self.policy.https_headers if scope.get("scheme") == "https" else ())
        if headers:
            send = _adding_headers(send, headers, only_missing=True)
        if not self.policy.active:
            await self.app(scope, receive, send)
            return
        user: str | None = None
        added: tuple[tuple[str, str], ...] = ()
        authenticator = self.policy.authenticator
        if authenticator is not None and scope["path"] not in self.policy.open_paths:
            if authenticator.blocking:
                result = await anyio.to_thread.run_sync(authenticator.authenticate, scope)
            else:
                result = authenticator.authenticate(scope)
            if isinstance(result, Refusal):
                await unauthorized(result)(scope, receive, send)
                return
            assert isinstance(result, Identity)
            user, added = result.user, result.headers
        scope["sparkhist.user"] = user
        if self.policy.authorizer.enabled and scope["path"].startswith((API_PREFIX, UI_PREFIX)):
            refusal = await anyio.to_thread.run_sync(self.decide, scope, user)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        if added:
            send = _adding_headers(send, added)
        await self.app(scope, receive, send)

    def decide(self, scope: Scope, user: str | None) -> Response | None:
        """The 403 for ``user`` reading this request's application, or None when allowed."""
        api = segments_below(scope, API_PREFIX)
        if api is not None:
            attempts = self.api_attempts(self.index(), api)
        else:
            ui = segments_below(scope, UI_PREFIX)
            attempts = ui_attempts(self.index(), ui) if ui is not None else ()
        if not attempts:
            return None
        acls = [AttemptAcls.of(a.listing) for a in attempts]
        authorizer = self.policy.authorizer
        effective = user
        proxy = _do_as(scope)
        if proxy is not None:
            if user is not None and proxy != user and not all(authorizer.is_admin(user, a) for a in acls):
                message = f"User {user} is not allowed to impersonate others."
                return self.api_forbidden(message) if api is not None else jetty_page(scope, 403, message)
            effective = proxy
        if all(authorizer.can_view(effective, a) for a in acls):
            return None
        if api is not None:
            return self.api_forbidden(f'user "{effective}" is not authorized')
        return jetty_page(scope, 403, f"User {effective} is not authorized to access this page.")


def _do_as(scope: Scope) -> str | None:
    """The first ``doAs`` query parameter (``getParameter``), if any."""
    query: bytes = scope.get("query_string", b"")
    if b"doAs" not in query:
        return None
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace"):
        if key == "doAs":
            return value
    return None


def _adding_headers(send: Send, headers: tuple[tuple[str, str], ...], only_missing: bool = False) -> Send:
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {bytes(k).lower() for k, _ in message.get("headers", [])} if only_missing else set()
            added = [(k, v) for k, v in encoded if k not in present]
            message = {**message, "headers": [*message.get("headers", []), *added]}
        await send(message)

    return wrapped
