"""The access policy from the settings, and the SHS security settings sparkhist refuses.

An SHS configuration moved over as it is either works or stops the start with a clear
message (exit 2), never silently serves without the protection it asked for:

- ``spark.ui.filters`` naming Hadoop's ``AuthenticationFilter`` with ``type=kerberos``
  becomes SPNEGO, with its ``kerberos.principal`` and ``kerberos.keytab`` parameters
  (``spark.<filter>.param.<name>``, or the older ``spark.<filter>.params``); any other
  filter is a Java class sparkhist cannot run: refused, with what to use instead;
- ``spark.user.groups.mapping`` other than Spark's shell provider (or empty) is refused
  (:mod:`sparkhist.access.groups`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from sparkhist.access.acls import Authorizer, HistoryAcls, acl_list
from sparkhist.access.authn import Authenticator, HeaderAuthenticator, networks
from sparkhist.access.cookie import AuthCookie
from sparkhist.access.groups import group_mapping
from sparkhist.access.headers import security_headers
from sparkhist.access.middleware import ALWAYS_OPEN, AccessPolicy
from sparkhist.config import Settings
from sparkhist.errors import ConfigError

log = logging.getLogger("sparkhist.access")

HADOOP_AUTH_FILTER = "org.apache.hadoop.security.authentication.server.AuthenticationFilter"
#: Hadoop's AuthenticationFilter parameters sparkhist honours (the cookie ones: its session
#: cookie, :mod:`sparkhist.access.cookie`); ``signer.secret.provider`` only as ``file`` or
#: ``random`` (ZooKeeper-shared secrets are not supported).
_HONOURED_PARAMS = frozenset({"type", "kerberos.principal", "kerberos.keytab", "kerberos.name.rules",
                              "signature.secret", "signature.secret.file", "signer.secret.provider",
                              "token.validity", "cookie.domain", "cookie.path", "cookie.persistent"})


def ui_filters(props: Mapping[str, str]) -> list[str]:
    return [f.strip() for f in props.get("spark.ui.filters", "").split(",") if f.strip()]


def filter_params(props: Mapping[str, str], name: str) -> dict[str, str]:
    """``spark.<filter>.params`` (``k=v,k=v``) overlaid with ``spark.<filter>.param.<k>``, as JettyUtils reads them."""
    params: dict[str, str] = {}
    for item in props.get(f"spark.{name}.params", "").split(","):
        parts = item.strip().split("=")
        if len(parts) == 2:
            params[parts[0]] = parts[1]
    prefix = f"spark.{name}.param."
    params.update({key[len(prefix):]: value for key, value in props.items() if key.startswith(prefix)})
    return params


def access_policy(settings: Settings) -> AccessPolicy:
    """The policy ``settings`` ask for (raises ConfigError for what sparkhist cannot honour)."""
    props = dict(settings.properties)
    kerberos_params: dict[str, str] | None = None
    for name in ui_filters(props):
        if name != HADOOP_AUTH_FILTER:
            raise ConfigError(f"spark.ui.filters names {name}, a Java servlet filter sparkhist cannot run: "
                              "put the proxy that authenticates in front and set SPARKHIST_AUTH=header, or use "
                              f"{HADOOP_AUTH_FILTER} with type=kerberos (SPNEGO)")
        kerberos_params = filter_params(props, name)
    mode = settings.auth
    if mode is None:
        mode = "kerberos" if kerberos_params is not None else "none"
    authenticator: Authenticator | None = None
    if mode == "header":
        authenticator = HeaderAuthenticator(settings.auth_header, networks(settings.auth_trusted_proxies))
    elif mode == "kerberos":
        authenticator = _spnego(settings, kerberos_params or {})
    groups = group_mapping(settings.user_groups_mapping)
    _refuse_unhonoured(props)
    history = HistoryAcls(settings.ui_acls_enable, acl_list(settings.ui_admin_acls),
                          acl_list(settings.ui_admin_acls_groups))
    open_paths = ALWAYS_OPEN if settings.auth_metrics else ALWAYS_OPEN | {"/metrics"}
    headers, https_headers = security_headers(props)
    return AccessPolicy(Authorizer(history, groups), authenticator, frozenset(open_paths), headers, https_headers)


def _spnego(settings: Settings, params: dict[str, str]) -> Authenticator:
    kind = params.get("type", "kerberos")
    if kind != "kerberos":
        raise ConfigError(f"{HADOOP_AUTH_FILTER} with type={kind} cannot be used: sparkhist authenticates with "
                          "type=kerberos (SPNEGO) or a trusted proxy (SPARKHIST_AUTH=header)")
    unknown = sorted(set(params) - _HONOURED_PARAMS)
    if unknown:
        raise ConfigError(f"{HADOOP_AUTH_FILTER} parameter(s) {', '.join(unknown)} cannot be honoured by sparkhist")
    provider = params.get("signer.secret.provider", "file" if params.get("signature.secret.file") else "random")
    if provider not in ("file", "random"):
        raise ConfigError(f"signer.secret.provider={provider} cannot be honoured: sparkhist signs its session "
                          "cookie with signature.secret.file's content, or a random secret")
    rules = params.get("kerberos.name.rules", "DEFAULT").strip()
    if rules != "DEFAULT":
        raise ConfigError("kerberos.name.rules other than DEFAULT cannot be honoured: sparkhist maps a principal "
                          "of the default realm to its first component, as Hadoop's DEFAULT rule")
    principal = settings.auth_kerberos_principal or params.get("kerberos.principal")
    keytab = settings.auth_kerberos_keytab or params.get("kerberos.keytab")
    if not principal or not keytab:
        raise ConfigError("Kerberos (SPNEGO) authentication needs a principal and a keytab: the AuthenticationFilter's "
                          "kerberos.principal and kerberos.keytab parameters, or SPARKHIST_AUTH_KERBEROS_PRINCIPAL "
                          "and SPARKHIST_AUTH_KERBEROS_KEYTAB")
    from sparkhist.access.spnego import SpnegoAuthenticator

    return SpnegoAuthenticator(principal, keytab, _cookie(params))


def _cookie(params: Mapping[str, str]) -> AuthCookie:
    """Hadoop's session cookie settings (``token.validity``, ``signature.secret.file``, ``cookie.*``)."""
    cookie = AuthCookie()
    if "token.validity" in params:
        try:
            cookie = replace(cookie, validity=float(params["token.validity"]))
        except ValueError:
            raise ConfigError(f"bad value for {HADOOP_AUTH_FILTER} token.validity: {params['token.validity']!r} "
                              "(seconds)") from None
    secret_file = params.get("signature.secret.file")
    if secret_file:
        try:
            secret = Path(secret_file).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"signature.secret.file {secret_file} cannot be read: {exc.strerror or exc}") from None
        if not secret:
            raise ConfigError(f"signature.secret.file {secret_file} is empty")
        cookie = replace(cookie, secret=secret)
    elif params.get("signature.secret"):
        cookie = replace(cookie, secret=params["signature.secret"].encode())
    if params.get("cookie.domain"):
        cookie = replace(cookie, domain=params["cookie.domain"])
    if params.get("cookie.path"):
        cookie = replace(cookie, path=params["cookie.path"])
    if "cookie.persistent" in params:
        cookie = replace(cookie, persistent=params["cookie.persistent"].strip().lower() == "true")
    return cookie


def exposure_warning(settings: Settings, policy: AccessPolicy) -> str | None:
    """The loud warning for a server reachable beyond this host with nobody authenticated (None: none due)."""
    if policy.authenticator is not None:
        return None
    if _loopback(settings.host):
        if not policy.authorizer.enabled:
            return None
        return ("spark.history.ui.acls.enable is on, but no authentication is configured: every request is "
                "anonymous, and the SHS's ACLs admit anonymous requests (SPARKHIST_AUTH=header or kerberos)")
    acls = " (spark.history.ui.acls.enable is on, but without authentication every request is anonymous, " \
           "and the SHS's ACLs admit anonymous requests)" if policy.authorizer.enabled else ""
    return (f"UNAUTHENTICATED: listening on {settings.host}, reachable from other hosts, with no authentication: "
            f"anyone who reaches the port can read every application and download every event log{acls}. "
            "Set SPARKHIST_AUTH=header behind an authenticating proxy, or kerberos (SPNEGO), "
            "or listen on 127.0.0.1.")


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _refuse_unhonoured(props: Mapping[str, str]) -> None:
    """SHS security properties sparkhist does not apply yet: refused rather than silently ignored."""
    from sparkhist.releases import redaction_regex

    regex = props.get("spark.redaction.regex")
    if regex is not None and regex != redaction_regex():
        raise ConfigError("spark.redaction.regex other than Spark's default cannot be honoured yet: sparkhist "
                          f"redacts the environment with {redaction_regex()}; remove the line to accept that")
    if props.get("spark.acls.enable", "").strip().lower() == "true":
        log.info("spark.acls.enable is set: the SHS clears it and uses only spark.history.ui.acls.enable; so does sparkhist")
