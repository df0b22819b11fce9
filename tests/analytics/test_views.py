"""Issue 19: the ready-made views (``/analytics/``, ``/analytics/trend/?name=``) show what
their queries return, agree with the API, lead to the applications' own pages, escape
what they show, and load cleanly in headless Chromium.

Every conformance log and the bundled samples are indexed by a real runtime with the
analytics tables on ("Spark shell" ran 17 times: a recurring application).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sparkhist.analytics.query import Engine
from sparkhist.render.format import count, duration
from sparkhist.server import Runtime
from sparkhist.ui.analytics_views import VIEWS
from support.server import runtime_for
from support.ui_corpus import ParsedPage, gather_logs, internal
from ui.test_browser import SCREENSHOTS, _served, _visit, browser  # noqa: F401 (browser: the fixture)

RECURRING = "Spark shell"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    base = tmp_path_factory.mktemp("analytics-views")
    with runtime_for(gather_logs(base / "logs"), base / "store",
                     environ={"SPARKHIST_ANALYTICS_TABLES": "true", "SPARKHIST_INDEX_WORKERS": "1"}) as served:
        yield served


class Tables(HTMLParser):
    """The text of every cell of every table, by the table's ``data-view`` (or ``id``)."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: str | None = None
        self.feed(body)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("data-view") or a.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td" and self._table is not None:
            self._cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append(self._cell.strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell += data


def _body_rows(tables: Tables, key: str) -> list[list[str]]:
    return [r for r in tables.tables.get(key, []) if r]


def _engine_rows(runtime: Runtime, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    engine = Engine(runtime.settings.store_dir)
    try:
        return engine.run(sql, params=params).rows
    finally:
        engine.close()


def test_every_view_shows_its_querys_rows(served: tuple[Runtime, TestClient]) -> None:
    runtime, client = served
    page = client.get("/analytics/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    tables = Tables(page.text)
    shown_something = 0
    for view in VIEWS:
        rows = _engine_rows(runtime, view.sql)
        shown = _body_rows(tables, view.key)
        assert len(shown) == len(rows), view.key
        shown_something += bool(rows)
        for cells, row in zip(shown, rows, strict=True):
            assert cells[0] == str(row[0]), view.key  # the first column: the group or the name
            for (_, kind), cell, value in zip(view.columns[1:], cells[1:], row[1:], strict=False):
                if kind == "int":
                    assert cell == count(value)
                elif kind == "ms":
                    assert cell == duration(value)
    assert shown_something >= 3  # users, queues, recurring at least: the corpus has them


def test_the_views_agree_with_the_api(served: tuple[Runtime, TestClient]) -> None:
    _, client = served
    attempts = [(app["name"], a.get("sparkUser") or "(unknown)")
                for app in client.get("/api/v1/applications").json() for a in app["attempts"]]
    tables = Tables(client.get("/analytics/").text)
    by_user = Counter(user for _, user in attempts)
    assert {r[0]: int(r[1].replace(",", "")) for r in _body_rows(tables, "users")} == by_user
    runs = Counter(name for name, _ in attempts)
    recurring = {r[0]: int(r[1].replace(",", "")) for r in _body_rows(tables, "recurring")}
    assert recurring == {name: n for name, n in runs.items() if n > 1}
    assert recurring[RECURRING] == 17


def test_a_recurring_application_has_its_runs_in_order_drawn_and_linked(served: tuple[Runtime, TestClient]) -> None:
    _, client = served
    page = client.get("/analytics/trend/", params={"name": RECURRING})
    assert page.status_code == 200
    runs = _body_rows(Tables(page.text), "trend-runs")
    expected = [app["id"] for app in client.get("/api/v1/applications").json() if app["name"] == RECURRING
                for _ in app["attempts"]]
    assert sorted(r[0].split(" ")[0] for r in runs) == sorted(expected)
    parsed = ParsedPage(page.text)
    assert parsed.problems == []
    assert [r[1] for r in runs] == sorted(r[1] for r in runs)  # oldest first
    drawn = sum(1 for r in runs for cell in r[2:5] if cell != "")  # duration, task time, spill: a dot per known figure
    assert sum(1 for tag, _ in parsed.elements if tag == "circle") == drawn > 2 * len(runs)


def test_every_link_of_the_views_resolves(served: tuple[Runtime, TestClient]) -> None:
    _, client = served
    for url in ("/analytics/", "/analytics/trend/?name=" + RECURRING.replace(" ", "%20")):
        body = client.get(url).text
        for href in ParsedPage(body).links:
            target = internal(url, href)
            if target is None or target.startswith("#"):
                continue
            answer = client.get(target, follow_redirects=True)
            assert answer.status_code == 200, (url, href)


def test_what_the_pages_show_is_escaped(served: tuple[Runtime, TestClient]) -> None:
    _, client = served
    hostile = "<script>alert(1)</script>\"'&"
    page = client.get("/analytics/trend/", params={"name": hostile})
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert ParsedPage(page.text).problems == []
    assert client.get("/analytics/trend/", follow_redirects=False).status_code == 302


@pytest.mark.slow
def test_the_views_load_cleanly_in_chromium(served: tuple[Runtime, TestClient], browser: Any) -> None:  # noqa: F811
    runtime, _ = served
    with _served(runtime.app) as url:
        _visit(browser, url + "/analytics/")
        assert browser.execute_script("return document.querySelectorAll('table.analytics-view').length") >= 3
        _visit(browser, url + "/analytics/trend/?name=Spark%20shell")
        points = browser.execute_script(
            "return document.querySelector('#trend-duration polyline').getAttribute('points').split(' ').length")
        assert points == 17
        Path(SCREENSHOTS).mkdir(exist_ok=True)
        browser.save_screenshot(str(Path(SCREENSHOTS) / "analytics-trend.png"))
        _visit(browser, url + "/analytics/")
        browser.save_screenshot(str(Path(SCREENSHOTS) / "analytics.png"))

