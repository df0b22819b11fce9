"""Strings from logs and requests, made safe to print on a terminal.

An app name, a host, a path or an error message comes from an event log, a file name or
a server's answer: whoever wrote it controls it. Printed raw, an ESC sequence in it
moves the cursor, recolours or clears the screen, or (OSC 52) writes the clipboard, and
a bidirectional override reorders what is shown. Through rich, a ``[`` in it is read as
markup (``[/oops]`` raises ``MarkupError``, ``[bold red]`` restyles).

So the CLI prints such strings only through :func:`visible` (control characters shown
as ``\\x1b``-style escapes) and, with rich, as :class:`rich.text.Text` from :func:`text`,
which rich never parses as markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["text", "visible"]

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# C0 controls (ESC included), DEL and C1 controls; bidirectional marks, embeddings,
# overrides and isolates; the Unicode line and paragraph separators.
_INVISIBLE = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
              *range(0x2066, 0x206A), 0x2028, 0x2029]
_TABLE = {code: _NAMED.get(chr(code), f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}") for code in _INVISIBLE}


def visible(value: object) -> str:
    """``value`` as a string in which every control character is a visible escape.

    ``"a\\x1b[31mb"`` becomes ``"a\\\\x1b[31mb"``: what the terminal shows is what the
    string holds, and nothing it holds acts on the terminal.
    """
    return str(value).translate(_TABLE)


def text(value: object, style: str = "") -> Text:
    """``value`` for rich, as plain text: control characters visible, ``[`` never markup."""
    from rich.text import Text  # here: the CLI's commands that print no table need no rich

    return Text(visible(value), style=style)
