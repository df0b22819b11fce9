"""Who is asking: the authentication an SHS gets from a servlet filter in ``spark.ui.filters``.

An :class:`Authenticator` reads a request's scope and answers the user's name, or a
refusal (401) with the headers that tell the client how to authenticate.

- :class:`HeaderAuthenticator`: a reverse proxy that authenticated the user (SSO,
  OAuth2 proxy, Knox...) names them in a header; only the proxy's own addresses are
  believed, so a client that reaches the port directly cannot name itself.
- :class:`sparkhist.access.spnego.SpnegoAuthenticator`: Kerberos through SPNEGO, as
  Hadoop's ``AuthenticationFilter`` with ``type=kerberos``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class Refusal:
    """A 401: why (for the body), and the headers that say how to authenticate."""

    reason: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Identity:
    """An authenticated user, and headers to add to the answer (SPNEGO's mutual authentication)."""

    user: str
    headers: tuple[tuple[str, str], ...] = field(default=())


class Authenticator(Protocol):
    #: True when :meth:`authenticate` may block (a GSSAPI call): it is run on a worker thread.
    blocking: bool

    def authenticate(self, scope: Scope) -> Identity | Refusal: ...


def networks(blocks: Sequence[str]) -> tuple[Network, ...]:
    """Networks from addresses or CIDR blocks already checked by the settings."""
    return tuple(ipaddress.ip_network(block, strict=False) for block in blocks)


def _header(scope: Scope, name: bytes) -> list[bytes]:
    return [value for key, value in scope.get("headers", ()) if key.lower() == name]


def peer_in(scope: Scope, networks: Sequence[Network]) -> bool:
    """Whether the connection's peer address is in one of ``networks``."""
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(str(client[0]).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


class HeaderAuthenticator:
    """The user named by a trusted proxy's header."""

    blocking = False

    def __init__(self, header: str, trusted: Sequence[Network]) -> None:
        self.header = header
        self._name = header.lower().encode("latin-1")
        self.trusted = tuple(trusted)

    def authenticate(self, scope: Scope) -> Identity | Refusal:
        if not peer_in(scope, self.trusted):
            return Refusal(f"Authentication required: requests must come through the trusted proxy "
                           f"(this one came from {(scope.get('client') or ('?',))[0]})")
        values = _header(scope, self._name)
        if len(values) != 1:
            return Refusal(f"Authentication required: no single {self.header} header" if values else
                           f"Authentication required: no {self.header} header")
        try:
            user = values[0].decode("utf-8").strip()
        except UnicodeDecodeError:
            return Refusal(f"Authentication required: {self.header} is not UTF-8")
        if not user or any(ord(c) < 0x20 or c == "\x7f" for c in user):
            return Refusal(f"Authentication required: {self.header} names no user")
        return Identity(user)
