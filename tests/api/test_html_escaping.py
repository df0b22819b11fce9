"""Every HTML answer, for hostile strings from logs and requests: nothing is injected.

Real event logs whose app ids, names, users, hosts, job descriptions and properties are
hostile strings are scanned and served; every HTML page is parsed (``html.parser``) and
its elements and attributes must be exactly those the same page has for benign strings,
while the hostile strings themselves are shown as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from sparkhist.render.html import jetty_escape
from support.conformance import SPARK401
from support.hostile import HOSTILE, app_id, write_logs
from support.server import runtime_for

BENIGN = [f"benign{i}" for i in range(len(HOSTILE))]


class Page(HTMLParser):
    """An HTML document as its markup (tags, attributes, comments, declarations) and its text."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        self.markup: list[tuple[str, tuple[tuple[str, str | None], ...]]] = []
        self.text: list[str] = []
        self.feed(body)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.markup.append((tag, tuple(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.markup.append(("/" + tag, ()))

    def handle_comment(self, data: str) -> None:
        self.markup.append(("<!--", ()))

    def handle_decl(self, decl: str) -> None:
        self.markup.append(("<!" + decl, ()))

    def handle_pi(self, data: str) -> None:
        self.markup.append(("<?", ()))

    def unknown_decl(self, data: str) -> None:
        self.markup.append(("<![", ()))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _serve(base: Path, values: list[str]) -> Iterator[TestClient]:
    logs = write_logs(base / "logs", values)
    with runtime_for(logs, base / "store") as (_, client):
        yield client


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from _serve(tmp_path_factory.mktemp("hostile"), HOSTILE)


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from _serve(tmp_path_factory.mktemp("benign"), BENIGN)


def _page(response: object) -> Page:
    from httpx import Response

    assert isinstance(response, Response)
    assert response.headers["content-type"].startswith("text/html")
    return Page(response.text)


def _shown(path: str) -> str:
    """What Jetty's error page shows of a (decoded) path, once its entities are read back:
    control characters as ``?``, and ``?`` for what ISO-8859-1 cannot hold."""
    path = re.sub("[\x00-\x08\x0e-\x1b\x7f-\x9f]", "?", path)
    return path.encode("iso-8859-1", "replace").decode("iso-8859-1")


# ---------------------------------------------------------------------------------------
# The application list page: ids, names and the log directory from the logs (stored XSS).


def _structure(page: Page) -> list[tuple[str, tuple[str, ...]]]:
    """Elements and their attribute names: what an injection would change. (Attribute values
    differ between hostile and benign pages where they carry an app id, in links.)"""
    return [(tag, tuple(name for name, _ in attrs)) for tag, attrs in page.markup]


def test_home_page_shows_hostile_ids_and_names_as_text(hostile: TestClient, benign: TestClient) -> None:
    theirs, ours = _page(benign.get("/")), _page(hostile.get("/"))
    assert _structure(ours) == _structure(theirs), "an element or attribute was injected"
    assert [tag for tag, _ in theirs.markup].count("tr") == len(HOSTILE) + 1, "one row per application"
    for i, value in enumerate(HOSTILE):
        assert app_id(i, value) in ours.text
        assert value in ours.text
    hrefs = [value or "" for _, attrs in ours.markup for name, value in attrs if name == "href"]
    assert all(h == "data:," or h.startswith(("/", "?")) or h == "#content" for h in hrefs), \
        "every link stays on the server (or is the skip link to the page's content)"


@pytest.mark.parametrize("path", ["/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/history/%3Cscript%3Ealert(1)%3C%2Fscript%3E/jobs/",
                                  "/history/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E/1/stages/"])
def test_unknown_ui_paths_inject_nothing(hostile: TestClient, benign: TestClient, path: str) -> None:
    response = hostile.get(path)
    assert response.status_code == 404
    assert _page(response).markup == _page(benign.get("/no-such-page")).markup
    assert "<script>" not in response.text and "<img" not in response.text


def test_unknown_query_parameters_inject_nothing(hostile: TestClient, benign: TestClient) -> None:
    response = hostile.get("/?status=%3Cscript%3Ealert(1)%3C/script%3E&search=%3Cscript%3Ealert(1)%3C/script%3E")
    assert _structure(_page(response)) == _structure(_page(benign.get("/?status=benign&search=benign0")))
    assert "<script>alert" not in response.text


# ---------------------------------------------------------------------------------------
# Jetty's error pages: the request's path is reflected (reflected XSS).


def test_api_404_page_for_safe_input_is_the_shs_page_byte_for_byte(hostile: TestClient) -> None:
    recorded = (SPARK401 / "responses" / "applications@status-bogus.txt").read_bytes()
    recorded = re.sub(rb"ServletContainer-[0-9a-f]+", b"ServletContainer-1", recorded)
    response = hostile.get("/api/v1/applications?status=bogus")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html;charset=iso-8859-1"
    assert response.content == recorded


@pytest.mark.parametrize("value", HOSTILE)
def test_api_404_page_shows_a_hostile_path_as_text(hostile: TestClient, value: str) -> None:
    reference = _page(hostile.get("/api/v1/benign"))
    response = hostile.get("/api/v1/" + quote(value, safe=""))
    assert response.status_code == 404
    page = _page(response)
    assert page.markup == reference.markup, "an element or attribute was injected"
    assert "URI:" in page.text and _shown("/api/v1/" + value) in page.text
    assert "\x1b" not in response.text


@pytest.mark.parametrize("value", HOSTILE)
def test_api_404_page_ignores_a_hostile_status_parameter(hostile: TestClient, value: str) -> None:
    reference = _page(hostile.get("/api/v1/applications?status=bogus"))
    response = hostile.get("/api/v1/applications", params={"status": value})
    assert response.status_code == 404
    assert _page(response).markup == reference.markup


def test_api_404_page_for_a_hostile_app_id(hostile: TestClient, benign: TestClient) -> None:
    """An app id from a log, in the path of a request Jersey refuses (a bad enum value)."""
    value = HOSTILE[1]  # no "/": the id stays one path segment
    reference = _page(benign.get(f"/api/v1/applications/{app_id(1, BENIGN[1])}/stages", params={"status": "bogus"}))
    response = hostile.get(f"/api/v1/applications/{quote(app_id(1, value), safe='')}/stages", params={"status": "bogus"})
    assert response.status_code == 404
    page = _page(response)
    assert page.markup == reference.markup
    assert f"/api/v1/applications/{app_id(1, value)}/stages" in page.text


def test_api_500_page_for_a_hostile_app_id(hostile: TestClient, benign: TestClient) -> None:
    value = HOSTILE[1]
    reference = benign.get(f"/api/v1/applications/{app_id(1, BENIGN[1])}/stages/0/0/taskList", params={"length": "-1"})
    assert reference.status_code == 500
    response = hostile.get(f"/api/v1/applications/{quote(app_id(1, value), safe='')}/stages/0/0/taskList",
                           params={"length": "-1"})
    assert response.status_code == 500
    page = _page(response)
    assert page.markup == _page(reference).markup
    assert f"/api/v1/applications/{app_id(1, value)}/stages/0/0/taskList" in page.text


def test_api_500_page_for_safe_input_keeps_jettys_bytes(benign: TestClient) -> None:
    path = f"/api/v1/applications/{app_id(1, BENIGN[1])}/stages/0/0/taskList"
    response = benign.get(path, params={"length": "-1"})
    assert response.headers["content-type"] == "text/html;charset=iso-8859-1"
    assert response.content == (
        "<html>\n<head>\n"
        '<meta http-equiv="Content-Type" content="text/html;charset=ISO-8859-1"/>\n'
        "<title>Error 500 Request failed.</title>\n</head>\n"
        "<body><h2>HTTP ERROR 500 Request failed.</h2>\n<table>\n"
        f"<tr><th>URI:</th><td>{path}</td></tr>\n"
        "<tr><th>STATUS:</th><td>500</td></tr>\n"
        "<tr><th>MESSAGE:</th><td>Request failed.</td></tr>\n"
        "<tr><th>SERVLET:</th><td>org.glassfish.jersey.servlet.ServletContainer-1</td></tr>\n"
        "</table>\n\n</body>\n</html>\n"
    ).encode()


def test_jetty_escape_is_jettys_sanitize_xml_string() -> None:
    """``StringUtil.sanitizeXmlString``: five entities; ISO controls that Java does not
    call whitespace become ``?``; everything else is kept."""
    java_whitespace = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F}
    for code in range(0x100):
        char = chr(code)
        expected = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;"}.get(char, char)
        if (code <= 0x1F or 0x7F <= code <= 0x9F) and code not in java_whitespace:
            expected = "?"
        assert jetty_escape(char) == expected, hex(code)
    assert jetty_escape("/api/v1/x y/\u00e9\u202e") == "/api/v1/x y/\u00e9\u202e"


# ---------------------------------------------------------------------------------------
# One template mechanism.


def test_no_html_is_built_in_python_source() -> None:
    """HTML comes from the templates alone: no page markup in any module of the package."""
    src = Path(__file__).resolve().parents[2] / "src" / "sparkhist"
    found = [f"{path.relative_to(src)}: {marker}" for path in src.rglob("*.py")
             for marker in ("<html", "<tr", "<td", "<!DOCTYPE") if marker.lower() in path.read_text().lower()]
    assert found == []
