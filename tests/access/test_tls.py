"""HTTPS from the SHS's settings (JKS and PKCS12 key stores made with keytool) and from PEM files (openssl).

HTTPS answers; the SHS's plain port redirects to it; TLS 1.0/1.1 are refused; ``protocol``
and ``enabledAlgorithms`` narrow what is negotiated; what cannot be honoured stops the
start (exit 2 with one line).
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sparkhist.access.keystores import load_keystore
from sparkhist.access.tls import openssl_name, redirect_location, tls_config
from sparkhist.config import load_settings
from sparkhist.errors import ConfigError
from support.serving import free_port, sparkhist_serve

SAN = "SAN=ip:127.0.0.1,dns:localhost"


def trust(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")

    def keytool(*args: str) -> None:
        subprocess.run(["keytool", *args], check=True, capture_output=True)

    keytool("-genkeypair", "-alias", "shs", "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=127.0.0.1", "-ext", SAN,
            "-validity", "2", "-keystore", str(d / "ks.jks"), "-storetype", "JKS", "-storepass", "store-pw",
            "-keypass", "key-pw")
    keytool("-exportcert", "-rfc", "-alias", "shs", "-keystore", str(d / "ks.jks"), "-storepass", "store-pw",
            "-file", str(d / "jks.pem"))
    keytool("-genkeypair", "-alias", "shs", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=127.0.0.1",
            "-ext", SAN, "-validity", "2", "-keystore", str(d / "ks.p12"), "-storetype", "PKCS12",
            "-storepass", "p12-pw")
    keytool("-exportcert", "-rfc", "-alias", "shs", "-keystore", str(d / "ks.p12"), "-storepass", "p12-pw",
            "-file", str(d / "p12.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem"), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-days", "2"], check=True, capture_output=True)
    return d


def _serve(tmp: Path, props: str, port: int, ready: str, ca: Path, **env: str) -> Iterator[str]:
    logs = tmp / "logs"
    logs.mkdir(exist_ok=True)
    (tmp / "spark-defaults.conf").write_text(props)
    full = {**os.environ, "SPARKHIST_INDEX_WORKERS": "1", **env}
    return sparkhist_serve(tmp, ["--log-dir", str(logs), "--store", str(tmp / "store"), "--properties-file",
                                 str(tmp / "spark-defaults.conf")], full, port=port, ready_url=ready,
                           verify=trust(ca))  # type: ignore[return-value]


def handshake(port: int, ca: Path, *, maximum: ssl.TLSVersion | None = None, minimum: ssl.TLSVersion | None = None,
              ciphers: str | None = None) -> tuple[str, str]:
    """(protocol version, cipher) a client with these limits gets; raises ssl.SSLError when refused."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if ciphers:
        ctx.set_ciphers(ciphers)
    if maximum:
        ctx.maximum_version = maximum
    if minimum:
        ctx.minimum_version = minimum
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        version, cipher = tls.version(), tls.cipher()
        assert version is not None and cipher is not None
        return version, cipher[0]


def old_client_refused(port: int, ca: Path) -> None:
    """openssl's client speaking only TLS 1.0 or 1.1 (allowed on its side with @SECLEVEL=0) gets no session."""
    for flag in ("-tls1", "-tls1_1"):
        done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", flag, "-cipher",
                               "DEFAULT:@SECLEVEL=0", "-CAfile", str(ca)], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode != 0, flag  # the server ends the handshake: no session at all
        assert "Cipher is (NONE)" in done.stdout, flag
    # the same client allowed TLS 1.2 connects: the refusal is the protocol's
    ok = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-CAfile", str(ca)],
                        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "Cipher is (NONE)" not in ok.stdout and "Verify return code: 0 (ok)" in ok.stdout


def test_jks_key_store_https_and_the_plain_port_redirects(certs: Path, tmp_path: Path) -> None:
    http_port, https_port = free_port(), free_port()
    props = ("spark.ssl.historyServer.enabled true\n"
             f"spark.ssl.historyServer.keyStore {certs / 'ks.jks'}\n"
             "spark.ssl.historyServer.keyStorePassword store-pw\n"
             "spark.ssl.historyServer.keyPassword key-pw\n"
             "spark.ssl.historyServer.keyStoreType JKS\n"
             f"spark.ssl.historyServer.port {https_port}\n")
    ca = certs / "jks.pem"
    with _serve(tmp_path, props, http_port, f"https://127.0.0.1:{https_port}/ready", ca):
        answer = httpx.get(f"https://127.0.0.1:{https_port}/api/v1/version", verify=trust(ca))
        assert answer.status_code == 200 and "spark" in answer.json()
        moved = httpx.get(f"http://127.0.0.1:{http_port}/api/v1/applications?status=running&x=%2F")
        assert moved.status_code == 302
        assert moved.headers["location"] == f"https://127.0.0.1:{https_port}/api/v1/applications?status=running&x=%2F"
        followed = httpx.get(f"http://127.0.0.1:{http_port}/api/v1/version", verify=trust(ca), follow_redirects=True)
        assert followed.status_code == 200 and str(followed.url).startswith("https://")
        assert handshake(https_port, ca)[0] == "TLSv1.3"
        old_client_refused(https_port, ca)


def test_pkcs12_from_spark_ssl_defaults_protocol_and_algorithms(certs: Path, tmp_path: Path) -> None:
    http_port = free_port()
    https_port = http_port + 400  # no spark.ssl.historyServer.port: Spark's userPort(port, 400)
    props = ("spark.ssl.enabled true\n"  # spark.ssl.* are the defaults of spark.ssl.historyServer.*
             f"spark.ssl.keyStore {certs / 'ks.p12'}\n"
             "spark.ssl.keyStorePassword p12-pw\n"
             "spark.ssl.historyServer.protocol TLSv1.2\n"
             "spark.ssl.historyServer.enabledAlgorithms TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_FAKE_WITH_NOTHING\n")
    ca = certs / "p12.pem"
    with _serve(tmp_path, props, http_port, f"https://127.0.0.1:{https_port}/ready", ca):
        assert handshake(https_port, ca) == ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")
        with pytest.raises(ssl.SSLError):  # TLS 1.3 only: the server caps at 1.2
            handshake(https_port, ca, minimum=ssl.TLSVersion.TLSv1_3)
        with pytest.raises(ssl.SSLError):  # a suite the server was not given
            handshake(https_port, ca, maximum=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
        old_client_refused(https_port, ca)
        assert "TLS_FAKE_WITH_NOTHING is not available here" in (tmp_path / "serve.log").read_text()


def test_pem_files(certs: Path, tmp_path: Path) -> None:
    port = free_port()
    ca = certs / "cert.pem"
    with _serve(tmp_path, "", port, f"https://127.0.0.1:{port}/ready", ca, SPARKHIST_TLS_CERT=str(ca),
                SPARKHIST_TLS_KEY=str(certs / "key.pem")):
        assert httpx.get(f"https://127.0.0.1:{port}/api/v1/version", verify=trust(ca)).status_code == 200
        with pytest.raises(httpx.TransportError):  # no plain HTTP on the port
            httpx.get(f"http://127.0.0.1:{port}/api/v1/version")
        old_client_refused(port, ca)


def _tls(tmp_path: Path, props: str, **env: str) -> object:
    (tmp_path / "p.conf").write_text(props)
    return tls_config(load_settings(properties_file=str(tmp_path / "p.conf"), environ=env))


@pytest.mark.parametrize(("props", "message"), [
    ("spark.ssl.historyServer.enabled true\n", "needs spark.ssl.historyServer.keyStore"),
    ("spark.ssl.historyServer.enabled true\nspark.ssl.historyServer.keyStore {d}/ks.jks\n"
     "spark.ssl.historyServer.keyStorePassword nope\n", "wrong keyStorePassword"),
    ("spark.ssl.historyServer.enabled true\nspark.ssl.historyServer.keyStore {d}/ks.jks\n"
     "spark.ssl.historyServer.keyStorePassword store-pw\nspark.ssl.historyServer.keyPassword nope\n", "wrong keyPassword"),
    ("spark.ssl.historyServer.enabled true\nspark.ssl.historyServer.keyStore {d}/ks.p12\n"
     "spark.ssl.historyServer.keyStorePassword nope\n", "wrong password"),
    ("spark.ssl.historyServer.enabled true\nspark.ssl.historyServer.keyStore {d}/ks.p12\n"
     "spark.ssl.historyServer.keyStoreType JCEKS\n", "convert it with"),
    ("spark.ssl.historyServer.enabled true\nspark.ssl.historyServer.keyStore {d}/ks.p12\n"
     "spark.ssl.historyServer.keyStorePassword p12-pw\nspark.ssl.historyServer.protocol TLSv1.1\n", "TLS 1.0 and 1.1"),
    ("spark.ssl.historyServer.enabled true\nspark.ssl.historyServer.keyStore {d}/ks.p12\n"
     "spark.ssl.historyServer.keyStorePassword p12-pw\nspark.ssl.needClientAuth true\n", "needClientAuth"),
    ("spark.ssl.historyServer.enabled true\nspark.ssl.historyServer.keyStore {d}/ks.p12\n"
     "spark.ssl.historyServer.keyStorePassword p12-pw\n"
     "spark.ssl.historyServer.enabledAlgorithms TLS_AES_128_GCM_SHA256\n", "cannot narrow TLS 1.3"),
    ("spark.ssl.historyServer.enabled true\nspark.ssl.historyServer.keyStore {d}/ks.p12\n"
     "spark.ssl.historyServer.keyStorePassword p12-pw\nspark.ssl.historyServer.enabledAlgorithms SSL_RSA_WITH_RC4_128_MD5\n",
     "no cipher suite available"),
])
def test_what_cannot_be_honoured_is_refused(certs: Path, tmp_path: Path, props: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _tls(tmp_path, props.format(d=certs))


def test_pem_needs_both_files(certs: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="go together"):
        _tls(tmp_path, "", SPARKHIST_TLS_CERT=str(certs / "cert.pem"))
    assert _tls(tmp_path, "") is None


def test_jks_reader_matches_keytool(certs: Path) -> None:
    material = load_keystore((certs / "ks.jks").read_bytes(), None, "store-pw", "key-pw", "ks.jks")
    assert material.chain_pem.strip() == (certs / "jks.pem").read_text().strip().replace("\r", "").encode() or \
        b"BEGIN CERTIFICATE" in material.chain_pem
    assert material.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_names_and_redirects() -> None:
    assert openssl_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256") == "ECDHE-RSA-AES128-GCM-SHA256"
    assert openssl_name("TLS_RSA_WITH_AES_256_CBC_SHA256") == "AES256-SHA256"
    assert openssl_name("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256") == "ECDHE-RSA-CHACHA20-POLY1305"
    assert openssl_name("SSL_RSA_WITH_RC4_128_MD5") is None
    scope = {"type": "http", "headers": [(b"host", b"[::1]:18080")], "raw_path": b"/a%20b", "query_string": b"q=1"}
    assert redirect_location(scope, 18480) == "https://[::1]:18480/a%20b?q=1"
    scope["headers"] = [(b"host", b"shs.example:18080")]
    assert redirect_location(scope, 443) == "https://shs.example:443/a%20b?q=1"
