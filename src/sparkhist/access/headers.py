"""Security headers on every answer, as the SHS's ``HttpSecurityFilter`` sets them (``spark.ui.*``).

- ``Content-Security-Policy`` (``spark.ui.content.security.policy.enabled``, default on): the
  SHS 4.3's policy less its per-request script nonce and ``'unsafe-inline'`` styles:
  sparkhist's pages have no inline script nor style at all (the browser tests load every
  page under this policy), so ``'self'`` suffices for both; ``frame-ancestors`` follows the
  framing setting.
- ``X-Frame-Options``: ``SAMEORIGIN``, or ``ALLOW-FROM <uri>`` with ``spark.ui.allowFramingFrom``.
- ``X-XSS-Protection``: ``spark.ui.xXssProtection`` (default ``0``: browsers' auditors are gone).
- ``X-Content-Type-Options: nosniff`` unless ``spark.ui.xContentTypeOptions.enabled=false``.
- ``Strict-Transport-Security``: ``spark.ui.strictTransportSecurity``, over HTTPS only.

An answer that sets one of these itself keeps its own value.
"""

from __future__ import annotations

from collections.abc import Mapping

from sparkhist.config import parse_bool
from sparkhist.errors import ConfigError


def _flag(props: Mapping[str, str], key: str, default: bool) -> bool:
    try:
        return parse_bool(props[key]) if key in props else default
    except ValueError as exc:
        raise ConfigError(f"bad value for {key}: {props[key]!r} ({exc})") from None


def security_headers(props: Mapping[str, str]) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(headers for every answer, headers for HTTPS answers only)."""
    framing = props.get("spark.ui.allowFramingFrom", "").strip()
    headers: list[tuple[str, str]] = []
    if _flag(props, "spark.ui.content.security.policy.enabled", True):
        ancestors = f"'self' {framing}" if framing else "'self'"
        headers.append(("Content-Security-Policy",
                        "default-src 'self'; script-src 'self'; style-src 'self'; "
                        "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
                        f"frame-ancestors {ancestors};"))
    headers.append(("X-Frame-Options", f"ALLOW-FROM {framing}" if framing else "SAMEORIGIN"))
    headers.append(("X-XSS-Protection", props.get("spark.ui.xXssProtection", "0")))
    if _flag(props, "spark.ui.xContentTypeOptions.enabled", True):
        headers.append(("X-Content-Type-Options", "nosniff"))
    hsts = props.get("spark.ui.strictTransportSecurity", "").strip()
    return tuple(headers), ((("Strict-Transport-Security", hsts),) if hsts else ())
