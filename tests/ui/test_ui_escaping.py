"""Every UI page over logs whose strings were written by an attacker (``support.hostile``):
parsed, each page has exactly the elements and attribute names the same page has for
benign strings, its links stay on the server, and the hostile strings are shown as text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from support.hostile import HOSTILE, app_id, write_logs
from support.server import runtime_for
from support.ui_corpus import ParsedPage

BENIGN = [f"benign{i}" for i in range(len(HOSTILE))]
PAGES = ["jobs/", "jobs/job/?id=0", "stages/", "stages/stage/?id=0&attempt=0", "stages/pool/?poolname=default",
         "executors/", "environment/", "SQL/", "storage/"]


def _serve(base: Path, values: list[str]) -> Iterator[TestClient]:
    with runtime_for(write_logs(base / "logs", values), base / "store") as (_, client):
        yield client


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from _serve(tmp_path_factory.mktemp("hostile-ui"), HOSTILE)


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from _serve(tmp_path_factory.mktemp("benign-ui"), BENIGN)


def _structure(page: ParsedPage) -> list[tuple[str, tuple[str, ...]]]:
    return [(tag, tuple(attrs)) for tag, attrs in page.elements]


def _parsed(client: TestClient, url: str) -> tuple[str, ParsedPage]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.text[-300:])
    page = ParsedPage(response.text)
    assert page.problems == [], (url, page.problems)
    return response.text, page


@pytest.mark.parametrize("i", range(len(HOSTILE)))
def test_every_page_of_a_hostile_app_injects_nothing(hostile: TestClient, benign: TestClient, i: int) -> None:
    value = HOSTILE[i]
    shown: list[str] = []
    for page in PAGES:
        body, ours = _parsed(hostile, f"/history/{quote(app_id(i, value), safe='')}/{page}")
        _, theirs = _parsed(benign, f"/history/{quote(app_id(i, BENIGN[i]), safe='')}/{page}")
        assert _structure(ours) == _structure(theirs), f"an element or attribute was injected on {page}"
        for link in ours.links:
            assert link == "data:," or link.startswith(("/", "?", "#")), (page, link)  # data:, the empty icon
        assert "<script>alert" not in body and "<img src=x" not in body
        shown.append("".join(ours.text))
    text = "\n".join(shown)
    assert app_id(i, value) in text  # the header's app name is the hostile string; the id is in the list
    assert text.count(value) >= 4, "the name, user, host and job description are shown as text"


def test_list_links_of_hostile_ids_lead_to_their_pages(hostile: TestClient) -> None:
    _, page = _parsed(hostile, "/")
    links = [link for link in page.links if link.startswith("/history/")]
    assert len(links) >= len(HOSTILE)
    for link in links:
        assert hostile.get(link).status_code == 200, link
