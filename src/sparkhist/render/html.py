"""HTML pages, from templates shipped in the package, escaped by construction.

Every HTML answer sparkhist gives comes from one Jinja2 environment with autoescaping
on for every template: a value placed in a template is escaped unless it is
:class:`~markupsafe.Markup` already, so a string from an event log or a request (an
app id, a name, a path) cannot add an element or an attribute. Nothing in ``src/``
builds HTML by concatenation or ``str.format``; new pages add a template under
``templates/`` and call :func:`render`.

Filters besides Jinja's own: the figures of :mod:`sparkhist.render.format` (``size``,
``duration``, ``page_date``, ``iso_date``, ``count``, ``metric``) and ``jetty``, the escaping of Jetty's
``StringUtil.sanitizeXmlString``, for the error pages the SHS answers verbatim (Jetty
writes ``&apos;`` and ``&quot;`` where Jinja writes ``&#39;`` and ``&#34;``, and
turns control characters into ``?``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from sparkhist.render.format import FILTERS

__all__ = ["environment", "jetty_escape", "render"]

_JETTY_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;"}
# Java's Character.isISOControl(c) && !Character.isWhitespace(c): U+0000-U+009F controls
# except TAB, LF, VT, FF, CR and the separators U+001C-U+001F, which Java calls whitespace.
_JETTY_UNSAFE = re.compile("[&<>'\"\x00-\x08\x0e-\x1b\x7f-\x9f]")


def _jetty_replace(match: re.Match[str]) -> str:
    char = match.group()
    return _JETTY_ENTITIES.get(char, "?")


def jetty_escape(value: object) -> Markup:
    """``value`` escaped as Jetty's ``StringUtil.sanitizeXmlString`` escapes it."""
    return Markup(_JETTY_UNSAFE.sub(_jetty_replace, str(value)))


@functools.cache
def environment() -> Environment:
    """The one template environment (built on first use, then shared)."""
    env = Environment(
        loader=PackageLoader("sparkhist.render", "templates"),
        autoescape=True,  # every template, whatever its name: all of them are HTML
        undefined=StrictUndefined,  # a misspelt variable is an error, not an empty cell
        keep_trailing_newline=True,  # Jetty's pages end with a newline
        auto_reload=False,
    )
    env.filters["jetty"] = jetty_escape
    env.filters.update(FILTERS)  # sizes, durations, dates: render/format.py
    return env


def render(template: str, **context: Any) -> str:
    """The template ``template`` (a file name under ``templates/``) rendered with ``context``."""
    return environment().get_template(template).render(**context)
