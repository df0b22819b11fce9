"""Kerberos SPNEGO (``Authorization: Negotiate``), as Hadoop's ``AuthenticationFilter`` with ``type=kerberos``.

A request without a token is answered 401 with ``WWW-Authenticate: Negotiate``; a
token is accepted with the service principal's key from the keytab (GSSAPI, MIT
Kerberos through the ``gssapi`` package); a token that does not verify (another
service's ticket, a forged or replayed one, an expired ticket) is a 401 again. The
user is the client principal mapped as Hadoop's ``DEFAULT`` name rule maps it: its
first component when its realm is the default realm (``alice@REALM`` and
``alice/host@REALM`` are ``alice``); a principal of another realm is refused.

``kerberos.principal`` may be ``*``: any principal in the keytab accepts, as Hadoop
allows (several host names behind one load balancer). After a login the answer sets
Hadoop's ``hadoop.auth`` session cookie (:mod:`sparkhist.access.cookie`), which later
requests use instead of a new Kerberos exchange.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
from typing import Any

from starlette.types import Scope

from sparkhist.access.authn import Identity, Refusal
from sparkhist.access.cookie import AuthCookie
from sparkhist.errors import ConfigError

log = logging.getLogger("sparkhist.access")

CHALLENGE = (("WWW-Authenticate", "Negotiate"),)


def _gssapi() -> Any:
    try:
        import gssapi
    except ImportError as exc:  # the optional dependency (pip install 'sparkhist[kerberos]')
        raise ConfigError("Kerberos (SPNEGO) authentication needs the gssapi package: "
                          "pip install 'sparkhist[kerberos]' (and the MIT Kerberos library)") from exc
    return gssapi


class SpnegoAuthenticator:
    """Accepts SPNEGO tokens for ``principal`` with the keys in ``keytab``."""

    blocking = True  # a GSSAPI accept reads the keytab and the replay cache

    def __init__(self, principal: str, keytab: str, cookie: AuthCookie | None = None) -> None:
        if not os.path.isfile(keytab) or not os.access(keytab, os.R_OK):
            raise ConfigError(f"Kerberos keytab {keytab} is not a readable file")
        self.principal = principal
        self.keytab = keytab
        self.cookie = cookie if cookie is not None else AuthCookie()
        self._gssapi = _gssapi()
        self._local = threading.local()
        self._default_realm = self._realm_of_default()
        self._credentials()  # a keytab without the principal is a settings error now, not a 401 per request

    def _realm_of_default(self) -> str | None:
        gssapi = self._gssapi
        try:
            name = gssapi.Name("sparkhist", gssapi.NameType.kerberos_principal)
            canonical = str(name.canonicalize(gssapi.MechType.kerberos))
        except gssapi.exceptions.GSSError:
            return None
        return canonical.rpartition("@")[2] or None

    def _credentials(self) -> Any:
        """Acceptor credentials from the keytab (one per thread: GSSAPI objects are not shared)."""
        creds = getattr(self._local, "creds", None)
        if creds is None:
            gssapi = self._gssapi
            name = None
            if self.principal != "*":
                name = gssapi.Name(self.principal, gssapi.NameType.kerberos_principal)
            try:
                creds = gssapi.Credentials(name=name, usage="accept", store={"keytab": self.keytab})
                if name is not None:
                    creds.inquire()  # fails now when the keytab has no key for the principal
            except gssapi.exceptions.GSSError as exc:
                raise ConfigError(f"Kerberos principal {self.principal} cannot be used with keytab "
                                  f"{self.keytab}: {exc.gen_message()}") from None
            self._local.creds = creds
        return creds

    def authenticate(self, scope: Scope) -> Identity | Refusal:
        token = _negotiate_token(scope)
        if token is None:
            user = self.cookie.user(scope)
            if user is not None:
                return Identity(user)
            return Refusal("Authentication required", CHALLENGE)
        gssapi = self._gssapi
        try:
            context = gssapi.SecurityContext(creds=self._credentials(), usage="accept")
            reply = context.step(token)
            # SPNEGO defers a mechanism's failure: it surfaces here, not from step().
            complete = context.complete
            principal = str(context.initiator_name) if complete else ""
        except gssapi.exceptions.GSSError as exc:
            log.info("SPNEGO token refused: %s", exc.gen_message())
            return Refusal("Authentication failed: the Kerberos token was not accepted", CHALLENGE)
        except ConfigError as exc:
            log.error("SPNEGO: %s", exc)
            return Refusal("Authentication failed", CHALLENGE)
        if not complete:  # a multi-leg exchange: Hadoop's filter does not continue one either
            return Refusal("Authentication failed: incomplete SPNEGO exchange", CHALLENGE)
        user = self.short_name(principal)
        if user is None:
            return Refusal("Authentication failed: the principal is not of this realm", CHALLENGE)
        headers: tuple[tuple[str, str], ...] = (
            ("Set-Cookie", self.cookie.issue(user, principal, scope.get("scheme") == "https")),)
        if reply:
            headers += (("WWW-Authenticate", "Negotiate " + base64.b64encode(reply).decode("ascii")),)
        return Identity(user, headers)

    def short_name(self, principal: str) -> str | None:
        """Hadoop's ``DEFAULT`` rule: the first component of a principal of the default realm."""
        name, _, realm = principal.rpartition("@")
        if not name:
            name, realm = principal, ""
        if self._default_realm is not None and realm != self._default_realm:
            return None
        return name.split("/", 1)[0] or None


def _negotiate_token(scope: Scope) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            scheme, _, data = value.partition(b" ")
            if scheme.lower() == b"negotiate" and data.strip():
                try:
                    return base64.b64decode(data.strip(), validate=True)
                except (binascii.Error, ValueError):
                    return None
    return None
