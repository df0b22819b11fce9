"""The SHS's ACLs on every kind of application endpoint, in-process (header authentication from loopback).

The full (user, endpoint) matrix is compared with the real SHS in
``test_acl_differential.py``; here, the decisions and the exact answers that matter
most, fast: who sees which application, the 403 bodies and content types, lists and
records that stay open, ``doAs``, and authentication's 401s and open probes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sparkhist.config import load_settings
from sparkhist.server import build_runtime
from support.acl_corpus import HISTORY_CONF, MULTI, USER_HEADER, check_accounts, write_logs

ENV = {"SPARKHIST_AUTH": "header", "SPARKHIST_AUTH_HEADER": USER_HEADER, "SPARKHIST_UI_ACLS_ENABLE": "true",
       "SPARKHIST_UI_ADMIN_ACLS": HISTORY_CONF["spark.history.ui.admin.acls"],
       "SPARKHIST_UI_ADMIN_ACLS_GROUPS": HISTORY_CONF["spark.history.ui.admin.acls.groups"], "SPARKHIST_INDEX_WORKERS": "1"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    check_accounts()
    base = tmp_path_factory.mktemp("acl")
    logs = write_logs(base / "logs")
    runtime = build_runtime(load_settings({"log_dir": str(logs), "store_dir": str(base / "store")}, environ=ENV))
    try:
        assert runtime.loop.lock.try_acquire()
        runtime.scanner.scan_once()
        with TestClient(runtime.app, client=("127.0.0.1", 40000)) as c:
            yield c
    finally:
        runtime.close()


def status(client: TestClient, user: str | None, path: str) -> int:
    headers = {USER_HEADER: user} if user is not None else {}
    return client.get(path, headers=headers, follow_redirects=True).status_code


API = "/api/v1/applications/"
WHO_SEES = {
    "local-1000000000001": {"daemon", "root", "www-data"},  # owner, history admin, history admin group
    "local-1000000000002": {"bin", "sys", "mail", "root", "www-data"},  # view ACL, spaces trimmed
    "local-1000000000003": {"bin", "postgres", "root", "www-data"},  # view group (postgres is in ssl-cert)
    "local-1000000000004": {"bin", "mail", "daemon", "root", "www-data"},  # admin ACL, admin group
    "local-1000000000005": {"bin", "daemon", "sys", "mail", "postgres", "nobody", "ghost", "root", "www-data"},
    "local-1000000000006": {"bin", "daemon", "sys", "mail", "postgres", "nobody", "ghost", "root", "www-data"},
    "local-1000000000007": {"bin", "root", "www-data"},  # modify ACLs give no view permission
    "local-1000000000008": {"bin", "root", "www-data"},  # empty ACLs
}
USERS = ("root", "www-data", "daemon", "bin", "sys", "mail", "postgres", "nobody", "ghost")


@pytest.mark.parametrize("app", sorted(WHO_SEES))
def test_who_sees_each_application(client: TestClient, app: str) -> None:
    for user in USERS:
        want = 200 if user in WHO_SEES[app] else 403
        for path in (f"{API}{app}/jobs", f"{API}{app}/environment", f"{API}{app}/logs", f"/history/{app}/jobs/"):
            assert status(client, user, path) == want, (user, path)
        assert status(client, user, f"{API}{app}") == 200  # the application's record stays open, as in the SHS


def test_attempts_have_their_own_owner_and_logs_checks_attempt_1(client: TestClient) -> None:
    for user, one, two in (("sys", 200, 403), ("mail", 403, 200), ("postgres", 403, 200), ("root", 200, 200)):
        assert status(client, user, f"{API}{MULTI}/1/jobs") == one, user
        assert status(client, user, f"/history/{MULTI}/1/jobs/") == one, user
        assert status(client, user, f"{API}{MULTI}/1/logs") == one, user
        assert status(client, user, f"{API}{MULTI}/2/jobs") == two, user
        assert status(client, user, f"{API}{MULTI}/2/logs") == two, user
        # Without an attempt, /logs checks attempt "1" (and zips every attempt), as the SHS does.
        assert status(client, user, f"{API}{MULTI}/logs") == one, user
        assert status(client, user, f"{API}{MULTI}/1") == 200  # the attempt's record stays open


def test_refusals_are_the_shs_answers(client: TestClient) -> None:
    api = client.get(f"{API}local-1000000000001/jobs/999", headers={USER_HEADER: "mail"})
    assert (api.status_code, api.headers["content-type"], api.text) == (403, "text/plain", 'user "mail" is not authorized')
    assert api.headers["x-content-type-options"] == "nosniff"
    page = client.get("/history/local-1000000000001/jobs/?a=%3Cb%3E", headers={USER_HEADER: "mail"})
    assert (page.status_code, page.headers["content-type"]) == (403, "text/html;charset=iso-8859-1")
    assert page.text == (
        '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html;charset=ISO-8859-1"/>\n'
        "<title>Error 403 User mail is not authorized to access this page.</title>\n</head>\n<body>\n"
        "<h2>HTTP ERROR 403 User mail is not authorized to access this page.</h2>\n<table>\n"
        "<tr><th>URI:</th><td>http://testserver/history/local-1000000000001/jobs/?a=%3Cb%3E</td></tr>\n"
        "<tr><th>STATUS:</th><td>403</td></tr>\n"
        "<tr><th>MESSAGE:</th><td>User mail is not authorized to access this page.</td></tr>\n</table>\n\n</body>\n</html>\n")
    # Everything below an application's UI is its own, as the SHS mounts it.
    assert status(client, "mail", "/history/local-1000000000001/no-such-page/") == 403
    # Unknown applications and attempts answer as without ACLs.
    assert status(client, "mail", f"{API}nope/jobs") == 404
    assert status(client, "mail", f"{API}local-1000000000001/7/jobs") == 404


def test_lists_stay_open(client: TestClient) -> None:
    listed = client.get(API.rstrip("/"), headers={USER_HEADER: "ghost"})
    assert listed.status_code == 200 and len(listed.json()) == 9  # the SHS lists every application
    assert status(client, "ghost", "/") == 200
    assert status(client, "ghost", "/api/v1/version") == 200


def test_do_as(client: TestClient) -> None:
    # An admin acts for another user: that user's permission decides.
    assert status(client, "root", f"{API}local-1000000000001/jobs?doAs=mail") == 403
    assert status(client, "root", f"{API}local-1000000000001/jobs?doAs=daemon") == 200
    assert status(client, "daemon", f"{API}local-1000000000001/jobs?doAs=daemon") == 200
    # Anyone else may not (the SHS's API lets them: its API handler has ACLs off).
    refused = client.get(f"{API}local-1000000000001/jobs?doAs=daemon", headers={USER_HEADER: "mail"})
    assert (refused.status_code, refused.text) == (403, "User mail is not allowed to impersonate others.")
    assert status(client, "mail", "/history/local-1000000000001/jobs/?doAs=daemon") == 403


def test_authentication_comes_first(client: TestClient, tmp_path: Path) -> None:
    missing = client.get(f"{API}local-1000000000005/jobs")
    assert missing.status_code == 401 and USER_HEADER in missing.text
    assert client.get(API.rstrip("/")).status_code == 401
    assert client.get("/health/details").status_code == 401
    for probe in ("/health", "/ready", "/metrics"):
        assert client.get(probe).status_code == 200, probe
    # A client that is not the trusted proxy cannot name itself.
    with TestClient(client.app, client=("192.0.2.7", 5000)) as direct:
        refused = direct.get(f"{API}local-1000000000005/jobs", headers={USER_HEADER: "root"})
        assert refused.status_code == 401 and "trusted proxy" in refused.text
