"""Issue 19: ``/analytics/sql`` with the SHS's ACLs on shows each user the rows of the
applications that user may view, and no others, in every table.

Same logs, users and groups as ``test_acl_endpoints.py`` (real accounts, real ``id -Gn``
group lookups, header authentication from loopback), with the analytics tables on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sparkhist.analytics.compaction import compact
from sparkhist.analytics.layout import tables_dir
from sparkhist.analytics.tables import TABLES
from support.acl_corpus import write_logs
from support.server import runtime_for

from .test_acl_endpoints import ENV, USER_HEADER, USERS


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("acl-analytics") / "store"


@pytest.fixture(scope="module")
def client(store: Path, acl_accounts: object) -> Iterator[TestClient]:
    base = store.parent
    with runtime_for(write_logs(base / "logs"), store, environ={**ENV, "SPARKHIST_ANALYTICS_TABLES": "true"},
                     peer=("127.0.0.1", 40000)) as (_, c):
        yield c


def _viewable_attempts(client: TestClient, user: str) -> list[tuple[str, str | None]]:
    """The attempts whose pages the API lets ``user`` read (the decisions compared with the real SHS elsewhere)."""
    out = []
    for app in client.get("/api/v1/applications", headers={USER_HEADER: user}).json():
        for attempt in app["attempts"]:
            attempt_id = attempt.get("attemptId")
            path = f"/api/v1/applications/{app['id']}/" + (f"{attempt_id}/" if attempt_id else "") + "environment"
            if client.get(path, headers={USER_HEADER: user}).status_code == 200:
                out.append((app["id"], attempt_id))
    return sorted(out, key=str)


@pytest.mark.parametrize("user", USERS)
def test_each_user_queries_only_the_attempts_they_may_view(client: TestClient, user: str) -> None:
    expected = _viewable_attempts(client, user)
    everything = _viewable_attempts(client, "shx_hadmin")  # a history admin sees every attempt
    assert set(expected) <= set(everything)
    assert (expected == everything) == (user in ("shx_hadmin", "shx_operator"))  # the filter has work to do
    for table in TABLES:
        answer = client.get("/analytics/sql", params={"q": f"SELECT DISTINCT app_id, attempt_id FROM {table.name}"},
                            headers={USER_HEADER: user})
        assert answer.status_code == 200, answer.text
        seen = sorted((tuple(row) for row in answer.json()["rows"]), key=str)
        if table.name in ("applications", "executors"):  # every attempt has rows there
            assert seen == expected, (user, table.name)
        else:
            assert set(seen) <= set(expected), (user, table.name)


def test_a_join_or_aggregate_cannot_reach_other_applications(client: TestClient) -> None:
    owner_only = "local-1000000000001"
    query = ("SELECT count(*) FROM applications a JOIN properties p USING (app_id) "
             f"WHERE a.app_id = '{owner_only}'")
    assert client.get("/analytics/sql", params={"q": query}, headers={USER_HEADER: "shx_nobody"}).json()["rows"] == [[0]]
    allowed = client.get("/analytics/sql", params={"q": query}, headers={USER_HEADER: "shx_owner"}).json()["rows"]
    assert allowed[0][0] > 0


def test_without_authentication_the_request_is_refused(client: TestClient) -> None:
    assert client.get("/analytics/sql", params={"q": "SELECT 1"}).status_code == 401



def test_the_files_and_helper_tables_cannot_be_read_around_the_filter(client: TestClient, store: Path) -> None:
    compact(str(store))  # table files to try to read directly
    tables = sorted(Path(tables_dir(str(store))).glob("*.parquet"))
    assert len(tables) == len(TABLES)
    for query in (f"SELECT * FROM read_parquet('{tables[0]}')", f"SELECT * FROM read_parquet('{store}/**/*.parquet')",
                  "SELECT * FROM _pending_applications", "SELECT * FROM _allowed_keys", "SELECT * FROM glob('/**')",
                  "SELECT * FROM read_text('/etc/hostname')"):
        answer = client.get("/analytics/sql", params={"q": query}, headers={USER_HEADER: "shx_nobody"})
        assert answer.status_code == 400, (query, answer.text)
    everything = client.get("/analytics/sql", params={"q": "SELECT count(*) FROM applications"},
                            headers={USER_HEADER: "shx_hadmin"}).json()["rows"][0][0]
    seen = client.get("/analytics/sql", params={"q": "SELECT count(*) FROM applications"},
                      headers={USER_HEADER: "shx_nobody"}).json()["rows"][0][0]
    assert 0 < seen < everything  # after the compaction too
