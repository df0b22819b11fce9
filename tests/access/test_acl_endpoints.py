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
from support.acl_corpus import HISTORY_CONF, MULTI, USER_HEADER, write_logs

ENV = {"SPARKHIST_AUTH": "header", "SPARKHIST_AUTH_HEADER": USER_HEADER, "SPARKHIST_UI_ACLS_ENABLE": "true",
       "SPARKHIST_UI_ADMIN_ACLS": HISTORY_CONF["spark.history.ui.admin.acls"],
       "SPARKHIST_UI_ADMIN_ACLS_GROUPS": HISTORY_CONF["spark.history.ui.admin.acls.groups"], "SPARKHIST_INDEX_WORKERS": "1"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, acl_accounts: object) -> Iterator[TestClient]:
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
USERS = ("shx_hadmin", "shx_operator", "shx_owner", "shx_submitter", "shx_viewer", "shx_admin", "shx_member",
         "shx_nobody", "shx_ghost")
HISTORY_ADMINS = {"shx_hadmin", "shx_operator"}  # by name; by group (shx_operator is in shx_hadmingrp)
WHO_SEES = {
    "local-1000000000001": {"shx_owner", *HISTORY_ADMINS},  # owner, history admin, history admin group
    "local-1000000000002": {"shx_submitter", "shx_viewer", "shx_admin", *HISTORY_ADMINS},  # view ACL, spaces trimmed
    "local-1000000000003": {"shx_submitter", "shx_member", *HISTORY_ADMINS},  # view group (shx_member is in shx_viewgrp)
    "local-1000000000004": {"shx_submitter", "shx_admin", "shx_owner", *HISTORY_ADMINS},  # admin ACL, admin group
    "local-1000000000005": set(USERS),  # everyone, even a user that does not exist
    "local-1000000000006": set(USERS),
    "local-1000000000007": {"shx_submitter", *HISTORY_ADMINS},  # modify ACLs give no view permission
    "local-1000000000008": {"shx_submitter", *HISTORY_ADMINS},  # empty ACLs
}


@pytest.mark.parametrize("app", sorted(WHO_SEES))
def test_who_sees_each_application(client: TestClient, app: str) -> None:
    for user in USERS:
        want = 200 if user in WHO_SEES[app] else 403
        for path in (f"{API}{app}/jobs", f"{API}{app}/environment", f"{API}{app}/logs", f"/history/{app}/jobs/"):
            assert status(client, user, path) == want, (user, path)
        assert status(client, user, f"{API}{app}") == 200  # the application's record stays open, as in the SHS


def test_attempts_have_their_own_owner_and_logs_checks_attempt_1(client: TestClient) -> None:
    for user, one, two in (("shx_viewer", 200, 403), ("shx_admin", 403, 200), ("shx_member", 403, 200),
                           ("shx_hadmin", 200, 200)):
        assert status(client, user, f"{API}{MULTI}/1/jobs") == one, user
        assert status(client, user, f"/history/{MULTI}/1/jobs/") == one, user
        assert status(client, user, f"{API}{MULTI}/1/logs") == one, user
        assert status(client, user, f"{API}{MULTI}/2/jobs") == two, user
        assert status(client, user, f"{API}{MULTI}/2/logs") == two, user
        # Without an attempt, /logs checks attempt "1" (and zips every attempt), as the SHS does.
        assert status(client, user, f"{API}{MULTI}/logs") == one, user
        assert status(client, user, f"{API}{MULTI}/1") == 200  # the attempt's record stays open


def test_refusals_are_the_shs_answers(client: TestClient) -> None:
    api = client.get(f"{API}local-1000000000001/jobs/999", headers={USER_HEADER: "shx_admin"})
    assert (api.status_code, api.headers["content-type"], api.text) == (
        403, "text/plain", 'user "shx_admin" is not authorized')
    assert api.headers["x-content-type-options"] == "nosniff"
    page = client.get("/history/local-1000000000001/jobs/?a=%3Cb%3E", headers={USER_HEADER: "shx_admin"})
    assert (page.status_code, page.headers["content-type"]) == (403, "text/html;charset=iso-8859-1")
    assert page.text == (
        '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html;charset=ISO-8859-1"/>\n'
        "<title>Error 403 User shx_admin is not authorized to access this page.</title>\n</head>\n<body>\n"
        "<h2>HTTP ERROR 403 User shx_admin is not authorized to access this page.</h2>\n<table>\n"
        "<tr><th>URI:</th><td>http://testserver/history/local-1000000000001/jobs/?a=%3Cb%3E</td></tr>\n"
        "<tr><th>STATUS:</th><td>403</td></tr>\n"
        "<tr><th>MESSAGE:</th><td>User shx_admin is not authorized to access this page.</td></tr>\n</table>\n\n"
        "</body>\n</html>\n")
    # Everything below an application's UI is its own, as the SHS mounts it.
    assert status(client, "shx_admin", "/history/local-1000000000001/no-such-page/") == 403
    # Unknown applications and attempts answer as without ACLs.
    assert status(client, "shx_admin", f"{API}nope/jobs") == 404
    assert status(client, "shx_admin", f"{API}local-1000000000001/7/jobs") == 404


def test_lists_stay_open(client: TestClient) -> None:
    listed = client.get(API.rstrip("/"), headers={USER_HEADER: "shx_ghost"})
    assert listed.status_code == 200 and len(listed.json()) == 9  # the SHS lists every application
    assert status(client, "shx_ghost", "/") == 200
    assert status(client, "shx_ghost", "/api/v1/version") == 200


def test_do_as(client: TestClient) -> None:
    # An admin acts for another user: that user's permission decides.
    assert status(client, "shx_hadmin", f"{API}local-1000000000001/jobs?doAs=shx_admin") == 403
    assert status(client, "shx_hadmin", f"{API}local-1000000000001/jobs?doAs=shx_owner") == 200
    assert status(client, "shx_owner", f"{API}local-1000000000001/jobs?doAs=shx_owner") == 200
    # Anyone else may not (the SHS's API lets them: its API handler has ACLs off).
    refused = client.get(f"{API}local-1000000000001/jobs?doAs=shx_owner", headers={USER_HEADER: "shx_admin"})
    assert (refused.status_code, refused.text) == (403, "User shx_admin is not allowed to impersonate others.")
    assert status(client, "shx_admin", "/history/local-1000000000001/jobs/?doAs=shx_owner") == 403


def test_authentication_comes_first(client: TestClient, tmp_path: Path) -> None:
    missing = client.get(f"{API}local-1000000000005/jobs")
    assert missing.status_code == 401 and USER_HEADER in missing.text
    assert client.get(API.rstrip("/")).status_code == 401
    assert client.get("/health/details").status_code == 401
    for probe in ("/health", "/ready", "/metrics"):
        assert client.get(probe).status_code == 200, probe
    # A client that is not the trusted proxy cannot name itself.
    with TestClient(client.app, client=("192.0.2.7", 5000)) as direct:
        refused = direct.get(f"{API}local-1000000000005/jobs", headers={USER_HEADER: "shx_hadmin"})
        assert refused.status_code == 401 and "trusted proxy" in refused.text
