"""The ``hadoop.auth`` session cookie Hadoop's ``AuthenticationFilter`` issues after a SPNEGO login.

Once a user has authenticated, the answer sets a signed cookie naming them and its expiry;
later requests that carry it are that user without a new Kerberos exchange (a browser
would otherwise be challenged, and send a fresh ticket, on every request). As Hadoop's:
``token.validity`` seconds (default 36000), ``cookie.domain``, ``cookie.path``,
``cookie.persistent``; the signing secret is ``signature.secret.file``'s content (share it
between servers behind one name) or, without it, random per process. The signature is an
HMAC-SHA256 (Hadoop's own signer hashes the secret appended to the value); the value keeps
Hadoop's fields: ``u=<user>&p=<principal>&t=kerberos&e=<expiry ms>&s=<signature>``.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from hashlib import sha256
from urllib.parse import parse_qsl, quote

from starlette.types import Scope

NAME = "hadoop.auth"
DEFAULT_VALIDITY = 36000.0


@dataclass(frozen=True)
class AuthCookie:
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    validity: float = DEFAULT_VALIDITY
    domain: str | None = None
    path: str = "/"
    persistent: bool = False
    clock: Callable[[], float] = time.time

    def _sign(self, value: str) -> str:
        return base64.urlsafe_b64encode(hmac.new(self.secret, value.encode(), sha256).digest()).decode().rstrip("=")

    def issue(self, user: str, principal: str, https: bool) -> str:
        """The ``Set-Cookie`` header value for ``user``."""
        expires = int((self.clock() + self.validity) * 1000)
        value = f"u={quote(user, safe='')}&p={quote(principal, safe='')}&t=kerberos&e={expires}"
        parts = [f'{NAME}="{value}&s={self._sign(value)}"', f"Path={self.path}", "HttpOnly"]
        if self.domain:
            parts.append(f"Domain={self.domain}")
        if https:
            parts.append("Secure")
        if self.persistent:
            parts.append("Expires=" + formatdate(expires / 1000, usegmt=True))
        return "; ".join(parts)

    def user(self, scope: Scope) -> str | None:
        """The user a valid, unexpired cookie of the request names (None: no such cookie)."""
        for key, header in scope.get("headers", ()):
            if key != b"cookie":
                continue
            for item in header.decode("latin-1").split(";"):
                name, _, raw = item.strip().partition("=")
                if name != NAME:
                    continue
                value = raw.strip('"')
                body, sep, signature = value.rpartition("&s=")
                if not sep or not hmac.compare_digest(signature, self._sign(body)):
                    continue
                fields: dict[str, str] = dict(parse_qsl(body, keep_blank_values=True))
                try:
                    expired = int(fields.get("e", "0")) <= self.clock() * 1000
                except ValueError:
                    continue
                if not expired and fields.get("u"):
                    return fields["u"]
        return None
