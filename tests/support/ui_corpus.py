"""A corpus for the web UI's tests: the bundled samples and every conformance log, in one
directory, indexed by a real runtime; plus a crawler of its pages that needs no JavaScript."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from starlette.testclient import TestClient

from sparkhist.server import Runtime
from support.conformance import APACHE, SPARK401
from support.server import runtime_for

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "sparkhist" / "samples" / "eventlogs"
SOURCES = (SPARK401 / "eventlogs", APACHE / "spark-events", SAMPLES)


def gather_logs(dest: Path) -> Path:
    """Every log of :data:`SOURCES` copied (writable) into ``dest``; a name seen twice is kept once."""
    dest.mkdir(parents=True)
    for source in SOURCES:
        for item in sorted(source.iterdir()):
            target = dest / item.name
            if target.exists():
                continue
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copyfile(item, target)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


@contextmanager
def ui_server(base: Path) -> Iterator[tuple[Runtime, TestClient]]:
    with runtime_for(gather_logs(base / "logs"), base / "store") as served:
        yield served


VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


class ParsedPage(HTMLParser):
    """A page's links, elements (with their attributes) and text; ``problems`` lists unbalanced tags."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.problems: list[str] = []
        self._open: list[str] = []
        self.feed(body)
        self.close()
        if self._open:
            self.problems.append(f"unclosed: {self._open}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        for name in ("href", "src"):
            value = attributes.get(name)
            if value is not None and tag in ("a", "link", "script"):
                self.links.append(value)
        if tag not in VOID:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self._open[-1:] or 'nothing'}")
            if tag in self._open:
                while self._open.pop() != tag:
                    pass
            return
        self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def by_attribute(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.elements if name in attrs]


class TextOf(HTMLParser):
    """The text of every element carrying ``attribute`` (``class="job-name"``...), in page order."""

    def __init__(self, body: str, attribute: str, value: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._depth = 0
        self._want = (attribute, value)
        self.feed(body)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        name, value = self._want
        if self._depth:
            self._depth += tag not in VOID
        elif any(k == name and v is not None and value in v.split() for k, v in attrs):
            self._depth = 1
            self.found.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.found[-1] += data


def texts(body: str, css_class: str) -> list[str]:
    return [t.strip() for t in TextOf(body, "class", css_class).found]


def internal(url: str, href: str) -> str | None:
    """``href`` resolved against ``url``, without its fragment; None when it leaves the server."""
    target = urljoin(url, href)
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return parts.path + ("?" + parts.query if parts.query else "")
