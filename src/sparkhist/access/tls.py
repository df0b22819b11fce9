"""HTTPS, from PEM files or from the SHS's ``spark.ssl.historyServer.*`` settings.

- ``SPARKHIST_TLS_CERT`` + ``SPARKHIST_TLS_KEY`` (PEM): HTTPS on the configured port.
- ``spark.ssl.historyServer.enabled`` (or ``spark.ssl.enabled``; every other option falls
  back to its ``spark.ssl.*`` value, as Spark's ``SSLOptions.parse``): HTTPS on
  ``spark.ssl.historyServer.port`` (default: the HTTP port + 400, Spark's ``userPort``),
  and the HTTP port answers every request with a redirect to the same URL over HTTPS, as
  the SHS's ``HttpsRedirectFilter``. The key store is JKS or PKCS12
  (:mod:`sparkhist.access.keystores`; ``keyStoreType``, else told apart by its content).
- ``protocol``: ``TLSv1.2`` caps at TLS 1.2, ``TLSv1.3`` (or ``TLS``) allows 1.2 and 1.3,
  as a Java ``SSLContext`` of that name; TLS 1.0 and 1.1 are never accepted (a setting
  asking for them is refused). ``enabledAlgorithms``: the Java (IANA) cipher suite names,
  translated to OpenSSL's; names OpenSSL does not have are dropped with a warning, as
  Spark drops those its provider lacks; a list of TLS 1.2 suites only caps the protocol
  at 1.2 (Jetty would find no TLS 1.3 suite to use). TLS 1.3's suites cannot be narrowed
  by Python: a list naming some but not all of them is refused.
- ``needClientAuth`` (client certificates) is not supported: refused.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.types import Receive, Scope, Send

from sparkhist.config import Settings, parse_bool, parse_port
from sparkhist.errors import ConfigError

log = logging.getLogger("sparkhist.access")

PREFIX = "spark.ssl.historyServer."
DEFAULTS = "spark.ssl."
#: SSLOptions keys that fall back to their spark.ssl.* value (port does not).
_INHERITED = ("enabled", "keyStore", "keyStorePassword", "keyPassword", "keyStoreType", "protocol",
              "enabledAlgorithms", "needClientAuth", "trustStore", "trustStorePassword", "trustStoreType",
              "openSslEnabled", "privateKey", "certChain", "privateKeyPassword", "trustStoreReloadingEnabled",
              "trustStoreReloadIntervalMs")
_TLS13 = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256")


@dataclass(frozen=True)
class TlsConfig:
    context: ssl.SSLContext
    port: int  #: where HTTPS is served
    redirect_port: int | None  #: the plain HTTP port that redirects to HTTPS (SHS settings), or None


def ssl_options(props: Mapping[str, str]) -> dict[str, str]:
    """``spark.ssl.historyServer.<k>``, else ``spark.ssl.<k>`` for the keys Spark inherits."""
    out = {key[len(PREFIX):]: value for key, value in props.items() if key.startswith(PREFIX)}
    for key in _INHERITED:
        if key not in out and DEFAULTS + key in props:
            out[key] = props[DEFAULTS + key]
    return out


def tls_config(settings: Settings) -> TlsConfig | None:
    """The HTTPS the settings ask for, its context built now (raises ConfigError for what cannot be honoured)."""
    opts = ssl_options(dict(settings.properties))
    enabled = _bool(opts.get("enabled", "false"), "enabled")
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):
            raise ConfigError("SPARKHIST_TLS_CERT and SPARKHIST_TLS_KEY go together: set both, or neither")
        if enabled and opts.get("keyStore"):
            raise ConfigError("both SPARKHIST_TLS_CERT/KEY and spark.ssl.historyServer.keyStore are set: choose one")
        context = _context(opts)
        try:
            context.load_cert_chain(settings.tls_cert, settings.tls_key, settings.tls_key_password)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"TLS certificate {settings.tls_cert} / key {settings.tls_key} cannot be used: "
                              f"{exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}") from None
        return TlsConfig(context, settings.port, None)
    if not enabled:
        return None
    store = opts.get("keyStore")
    if not store:
        raise ConfigError("spark.ssl.historyServer.enabled needs spark.ssl.historyServer.keyStore "
                          "(or SPARKHIST_TLS_CERT and SPARKHIST_TLS_KEY)")
    context = _context(opts)
    try:
        from sparkhist.access.keystores import load_keystore
    except ImportError as exc:
        raise ConfigError(f"reading the key store {store} needs the cryptography package: "
                          "pip install 'sparkhist[tls]' (or use SPARKHIST_TLS_CERT and SPARKHIST_TLS_KEY)") from exc

    try:
        data = Path(store).read_bytes()
    except OSError as exc:
        raise ConfigError(f"key store {store} cannot be read: {exc.strerror or exc}") from None
    material = load_keystore(data, opts.get("keyStoreType"), opts.get("keyStorePassword"), opts.get("keyPassword"),
                             store)
    # ssl loads keys from files only: a private directory, removed as soon as they are loaded.
    with tempfile.TemporaryDirectory(prefix="sparkhist-tls-") as tmp:
        os.chmod(tmp, 0o700)
        cert, key = Path(tmp, "chain.pem"), Path(tmp, "key.pem")
        key.touch(0o600)
        key.write_bytes(material.key_pem)
        cert.write_bytes(material.chain_pem)
        try:
            context.load_cert_chain(str(cert), str(key))
        except ssl.SSLError as exc:
            raise ConfigError(f"key store {store}: its key and certificate cannot be used ({exc})") from None
    port = settings.port + 400 if settings.port + 400 <= 65535 else 0
    if "port" in opts:
        port = _port(opts["port"])
    if port == settings.port:
        raise ConfigError(f"spark.ssl.historyServer.port {port} is the HTTP port too: they must differ")
    return TlsConfig(context, port, settings.port)


def _bool(value: str, key: str) -> bool:
    try:
        return parse_bool(value)
    except ValueError as exc:
        raise ConfigError(f"bad value for {PREFIX}{key}: {value!r} ({exc})") from None


def _port(value: str) -> int:
    try:
        return parse_port(value)
    except ValueError as exc:
        raise ConfigError(f"bad value for {PREFIX}port: {value!r} ({exc})") from None


def _context(opts: Mapping[str, str]) -> ssl.SSLContext:
    if _bool(opts.get("needClientAuth", "false"), "needClientAuth"):
        raise ConfigError(f"{PREFIX}needClientAuth (client certificates) cannot be honoured by sparkhist: "
                          "terminate mutual TLS at a proxy and use SPARKHIST_AUTH=header")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # never TLS 1.0/1.1, whatever OpenSSL's defaults
    protocol = opts.get("protocol", "").strip()
    if protocol in ("TLSv1.2",):
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    elif protocol not in ("", "TLS", "TLSv1.3"):
        raise ConfigError(f"{PREFIX}protocol={protocol} cannot be honoured: sparkhist serves TLSv1.2 and TLSv1.3 "
                          "(TLS 1.0 and 1.1 are refused)")
    algorithms = [a.strip() for a in opts.get("enabledAlgorithms", "").split(",") if a.strip()]
    if algorithms:
        _ciphers(context, algorithms)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])
    return context


_KX = {"ECDHE_RSA": "ECDHE-RSA", "ECDHE_ECDSA": "ECDHE-ECDSA", "DHE_RSA": "DHE-RSA", "RSA": ""}
_BULK = re.compile(r"^(?:AES_(128|256)_(GCM|CBC|CCM)|(CHACHA20_POLY1305))_(SHA\d*)$")


def openssl_name(java: str) -> str | None:
    """OpenSSL's name of a TLS 1.2 cipher suite named as Java (IANA) names it, or None."""
    m = re.fullmatch(r"(?:TLS|SSL)_([A-Z0-9_]+?)_WITH_([A-Z0-9_]+)", java)
    if m is None or m[1] not in _KX:
        return None
    bulk = _BULK.match(m[2])
    if bulk is None:
        return None
    size, mode, chacha, digest = bulk.groups()
    if chacha:
        cipher = "CHACHA20-POLY1305"
    elif mode == "GCM":
        cipher = f"AES{size}-GCM-{digest}"
    elif mode == "CCM":
        cipher = f"AES{size}-CCM"
    else:
        cipher = f"AES{size}-{digest}"
    return "-".join(part for part in (_KX[m[1]], cipher) if part)


def _ciphers(context: ssl.SSLContext, algorithms: list[str]) -> None:
    tls13 = [a for a in algorithms if a in _TLS13]
    if tls13 and set(tls13) != set(_TLS13):
        raise ConfigError(f"{PREFIX}enabledAlgorithms names some TLS 1.3 suites ({', '.join(tls13)}) but not all "
                          f"of {', '.join(_TLS13)}: sparkhist cannot narrow TLS 1.3's suites")
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    probe.set_ciphers("ALL")
    available = {c["name"] for c in probe.get_ciphers()}
    chosen = []
    for name in algorithms:
        if name in _TLS13:
            continue
        openssl = openssl_name(name)
        if openssl is None or openssl not in available:
            log.warning("enabledAlgorithms: %s is not available here; dropped (as Spark drops suites its "
                        "provider lacks)", name)
            continue
        chosen.append(openssl)
    if not chosen and not tls13:
        raise ConfigError(f"{PREFIX}enabledAlgorithms names no cipher suite available here: {', '.join(algorithms)}")
    if chosen:
        context.set_ciphers(":".join(chosen))
    else:  # only TLS 1.3 suites: no TLS 1.2 suite may be used
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    if not tls13:
        context.maximum_version = ssl.TLSVersion.TLSv1_2


def redirect_location(scope: Scope, port: int) -> str:
    """``HttpsRedirectFilter``'s target: the request's host name (bracketed IPv6), the HTTPS port, path and query."""
    host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None)
    if host is None:
        host = str((scope.get("server") or ("localhost", None))[0])
    if host.startswith("["):
        name = host[: host.find("]") + 1]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        if ":" in name:
            name = f"[{name}]"
    raw: bytes = scope.get("raw_path") or str(scope.get("path", "/")).encode()
    query: bytes = scope.get("query_string") or b""
    target = raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    return f"https://{name}:{port}{target}"


class HttpsRedirect:
    """The plain HTTP port's app when HTTPS is on (SHS settings): every request, 302 to HTTPS."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"location", redirect_location(scope, self.port).encode("latin-1")), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class RedirectServer:
    """:class:`HttpsRedirect` served on its own port, in a thread of its own (uvicorn installs no
    signal handler off the main thread), until :meth:`stop`."""

    def __init__(self, host: str, port: int, https_port: int) -> None:
        import uvicorn

        config = uvicorn.Config(HttpsRedirect(https_port), host=host, port=port, log_level="warning", access_log=False,
                                log_config=None, proxy_headers=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="sparkhist-https-redirect", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
