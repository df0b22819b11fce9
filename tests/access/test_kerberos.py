"""Kerberos SPNEGO against a real MIT KDC, configured as an SHS operator configures it.

``sparkhist serve`` reads a properties file naming Hadoop's ``AuthenticationFilter`` in
``spark.ui.filters`` with ``type=kerberos``, ``kerberos.principal`` and ``kerberos.keytab``
(the SHS's lines, unchanged). Clients: ``curl --negotiate -u :`` and a Python client
(python-gssapi's SPNEGO initiator), each with a ticket from ``kinit``; the authenticated principal's short name
is the user the ACLs decide for. Refused: no token (401 with the ``Negotiate``
challenge), a ticket for another service, a token that is not Kerberos at all.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support.acl_corpus import write_logs
from support.kdc import Kdc, available, run_kdc
from support.serving import sparkhist_serve

FILTER = "org.apache.hadoop.security.authentication.server.AuthenticationFilter"


@dataclass
class Served:
    url: str
    kdc: Kdc
    users: dict[str, dict[str, str]]  # user -> environment with their ticket cache


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if why := available():
        pytest.skip(why)
    base = tmp_path_factory.mktemp("krb")
    logs = write_logs(base / "logs")
    with run_kdc() as kdc:
        keytab = base / "http.keytab"
        principal = kdc.add_principal("HTTP/127.0.0.1", keytab)
        kdc.add_principal("HTTP/other.example")  # a service this server has no key for
        users = {}
        for user in ("shx_owner", "shx_admin"):
            user_keytab = base / f"{user}.keytab"
            users[user] = kdc.kinit(kdc.add_principal(user, user_keytab), user_keytab, base / f"{user}.cc")
        props = base / "spark-defaults.conf"
        props.write_text(f"spark.ui.filters {FILTER}\n"
                         f"spark.{FILTER}.param.type kerberos\n"
                         f"spark.{FILTER}.param.kerberos.principal {principal}\n"
                         f"spark.{FILTER}.param.kerberos.keytab {keytab}\n"
                         "spark.history.ui.acls.enable true\n")
        env = {**kdc.env, "SPARKHIST_INDEX_WORKERS": "1"}
        with sparkhist_serve(base, ["--log-dir", str(logs), "--store", str(base / "store"), "--properties-file",
                                    str(props)], env) as url:
            yield Served(url, kdc, users)


def curl(served: Served, user: str, path: str) -> tuple[int, str]:
    out = subprocess.run(["curl", "-s", "--negotiate", "-u", ":", "-o", "/dev/null", "-w", "%{http_code}",
                          "-D", "-", served.url + path], env=served.users[user], capture_output=True, text=True,
                         check=True).stdout
    return int(out[-3:]), out[:-3]


_CLIENT = """
import base64, sys
import gssapi
spnego = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
target = gssapi.Name("HTTP@" + sys.argv[1], gssapi.NameType.hostbased_service)
context = gssapi.SecurityContext(name=target, usage="initiate", mech=spnego)
print(base64.b64encode(context.step()).decode())
"""


def spnego_token(env: dict[str, str], host: str = "127.0.0.1") -> str:
    """A SPNEGO token from a Python GSSAPI client (python-gssapi, as requests-gssapi uses it), in a
    process of its own: its Kerberos settings and ticket cache are the user's."""
    done = subprocess.run([sys.executable, "-c", _CLIENT, host], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_no_token_is_challenged(served: Served) -> None:
    answer = httpx.get(served.url + "/api/v1/applications")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Negotiate"
    assert httpx.get(served.url + "/health").status_code == 200  # probes stay open


def test_curl_negotiate_authenticates_and_the_principal_is_the_acl_user(served: Served) -> None:
    status, headers = curl(served, "shx_owner", "/api/v1/applications")
    assert status == 200, headers
    assert "WWW-Authenticate: Negotiate " in headers.replace("www-authenticate", "WWW-Authenticate")  # mutual auth
    assert curl(served, "shx_owner", "/api/v1/applications/local-1000000000001/jobs")[0] == 200  # shx_owner owns it
    assert curl(served, "shx_admin", "/api/v1/applications/local-1000000000001/jobs")[0] == 403
    assert curl(served, "shx_admin", "/api/v1/applications/local-1000000000002/jobs")[0] == 200  # in its view ACL


def test_python_client_authenticates(served: Served) -> None:
    token = spnego_token(served.users["shx_admin"])
    answer = httpx.get(served.url + "/api/v1/applications/local-1000000000001/jobs",
                       headers={"Authorization": f"Negotiate {token}"})
    assert (answer.status_code, answer.text) == (403, 'user "shx_admin" is not authorized')
    token = spnego_token(served.users["shx_owner"])
    answer = httpx.get(served.url + "/api/v1/applications/local-1000000000001/environment",
                       headers={"Authorization": f"Negotiate {token}"})
    assert answer.status_code == 200
    assert answer.headers["www-authenticate"].startswith("Negotiate ")


def test_wrong_tickets_are_refused(served: Served) -> None:
    # A real ticket from the same KDC, for a service whose key this server does not have.
    token = spnego_token(served.users["shx_owner"], host="other.example")
    answer = httpx.get(served.url + "/api/v1/applications", headers={"Authorization": f"Negotiate {token}"})
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Negotiate"
    for junk in ("bm90IGEgdG9rZW4=", "%%%", "YQ"):
        answer = httpx.get(served.url + "/api/v1/applications", headers={"Authorization": f"Negotiate {junk}"})
        assert answer.status_code == 401, junk
    answer = httpx.get(served.url + "/api/v1/applications", headers={"Authorization": "Basic ZGFlbW9uOng="})
    assert answer.status_code == 401


def test_principals_map_as_hadoops_default_rule() -> None:
    from sparkhist.access.spnego import SpnegoAuthenticator

    auth = SpnegoAuthenticator.__new__(SpnegoAuthenticator)
    auth._default_realm = "SPARKHIST.TEST"
    assert auth.short_name("alice@SPARKHIST.TEST") == "alice"
    assert auth.short_name("alice/host.example@SPARKHIST.TEST") == "alice"
    assert auth.short_name("alice@OTHER.REALM") is None  # DEFAULT has no rule for another realm


def test_the_session_cookie_stands_for_the_login(served: Served, tmp_path: Path) -> None:
    jar = tmp_path / "cookies"
    first = subprocess.run(["curl", "-s", "--negotiate", "-u", ":", "-c", str(jar), "-o", "/dev/null", "-w",
                            "%{http_code}", served.url + "/api/v1/applications/local-1000000000001/jobs"],
                           env=served.users["shx_owner"], capture_output=True, text=True, check=True).stdout
    assert first == "200" and "hadoop.auth" in jar.read_text()
    # The cookie alone (no Kerberos at all: no ticket cache, no --negotiate) is shx_owner.
    again = subprocess.run(["curl", "-s", "-b", str(jar), "-o", "/dev/null", "-w", "%{http_code}",
                            served.url + "/api/v1/applications/local-1000000000001/jobs"],
                           capture_output=True, text=True, check=True).stdout
    assert again == "200"
    value = next(line.split("\t")[-1] for line in jar.read_text().splitlines() if "hadoop.auth" in line)
    forged = value.replace("u=shx_owner", "u=shx_hadmin")
    answer = httpx.get(served.url + "/api/v1/applications", headers={"Cookie": f"hadoop.auth={forged}"})
    assert answer.status_code == 401  # a changed cookie is no cookie


def test_cookie_expiry_and_signature() -> None:
    from sparkhist.access.cookie import AuthCookie

    now = [1_000_000.0]
    cookie = AuthCookie(secret=b"s", validity=60, clock=lambda: now[0])
    header = cookie.issue("alice", "alice@R", https=True)
    assert header.startswith('hadoop.auth="u=alice&p=alice%40R&t=kerberos&e=') and "Secure" in header
    value = header.split(";")[0]
    scope = {"headers": [(b"cookie", f"other=1; {value}".encode())]}
    assert cookie.user(scope) == "alice"
    assert AuthCookie(secret=b"other", clock=lambda: now[0]).user(scope) is None  # another server's secret
    now[0] += 61
    assert cookie.user(scope) is None  # expired
