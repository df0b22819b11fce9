"""Complete lines out of decoded bytes that arrive in arbitrary chunks.

Like httpx's ``LineDecoder``, a partial line is carried over to the next chunk. Two
additions for event logs: the decoded offset just after every line is reported (the
reader turns it into a resume position), and a line longer than ``max_line`` is
skipped with a warning instead of being buffered, so one runaway line cannot take
the server's memory.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from itertools import accumulate
from typing import NamedTuple

logger = logging.getLogger("sparkhist.reader")

__all__ = ["DEFAULT_MAX_LINE", "Line", "LineSplitter"]

DEFAULT_MAX_LINE = 512 << 20


def _native_scan() -> Callable[[bytes, list[bytes]], tuple[int, int, list[tuple[int, int, int]]]] | None:
    """The compiled module's listing filter (``native/``), unless absent or ``SPARKHIST_NATIVE=0``."""
    if os.environ.get("SPARKHIST_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        return getattr(importlib.import_module("sparkhist_native"), "scan_lines", None)
    except ImportError:
        return None


_SCAN = _native_scan()


class Line(NamedTuple):
    """One complete line."""

    data: bytes  # without its "\n" and a "\r" before it
    end: int  # decoded offset (counted from the splitter's start) just after the line
    number: int  # 1-based; lines skipped as too long are counted too


class LineSplitter:
    """Splits a byte stream at ``\\n``; call :meth:`feed` per chunk, :meth:`finish` at the end.

    A line's length is counted without its ``\\n`` (but with a ``\\r``) and compared
    with ``max_line``; a longer line is dropped as soon as it gets too long and only
    counted from then on.
    """

    def __init__(self, max_line: int = DEFAULT_MAX_LINE, *, name: str = "<stream>", lines_before: int = 0) -> None:
        self.max_line = max_line
        self.name = name
        self.offset = 0  # decoded bytes fed so far
        self.lines = lines_before  # lines consumed so far, emitted or skipped
        self.skipped = 0  # lines skipped as too long
        self._parts: list[bytes] = []  # the unterminated line so far, unless oversized
        self._pending = 0  # its length
        self._oversized = False

    def feed(self, data: bytes) -> list[Line]:
        """The lines that ``data`` completes."""
        if not data:
            return []
        *complete, tail = data.split(b"\n")
        lines = []
        end = self.offset
        for part in complete:
            end += len(part) + 1
            line = self._complete(part)
            if line is not None:
                lines.append(Line(line, end, self.lines))
        self._carry(tail)
        self.offset += len(data)
        return lines

    def feed_batch(self, data: bytes) -> tuple[list[bytes], list[int], int] | None:
        """:meth:`feed`'s fast path, for the common case: ``(lines, ends, number)``, the
        lines that ``data`` completes, the offset just after each and the number of the
        line before the first (the others follow without gaps).

        Returns None, having consumed nothing, when :meth:`feed` must do the work: when
        a line may be too long or a ``\r`` may need stripping.
        """
        parts = data.split(b"\n")
        tail = parts.pop()
        pending = self._parts
        if (self._oversized or b"\r" in data or (pending and pending[-1].endswith(b"\r"))
                or (parts and self._pending + max(map(len, parts)) > self.max_line)):
            return None
        number = self.lines
        offset = self.offset
        ends = [offset + i + size for i, size in enumerate(accumulate(map(len, parts)), 1)]
        if parts:
            if pending:
                pending.append(parts[0])
                parts[0] = b"".join(pending)
                self._parts = []
                self._pending = 0
            self.lines = number + len(parts)
        self._carry(tail)
        self.offset = offset + len(data)
        return parts, ends, number

    def feed_only(self, data: bytes, only: tuple[bytes, ...]) -> tuple[list[bytes], list[int], list[int]] | None:
        """:meth:`feed_batch` for a read that wants only the lines starting with one of
        ``only`` (the listing pass): ``(lines, ends, numbers)`` of those lines and of the
        last line ``data`` completes (it carries the read's position), in order, without
        splitting the others: the compiled module's one pass over the newlines finds them.

        Returns None, having consumed nothing, when :meth:`feed` or :meth:`feed_batch` must
        do the work (no compiled module, ``\r``, a line that may be too long).
        """
        pending = self._parts
        if (_SCAN is None or self._oversized or b"\r" in data or (pending and pending[-1].endswith(b"\r"))
                or self._pending + len(data) > self.max_line):
            return None  # (past this point no line of ``data`` can be too long)
        newlines, last, found = _SCAN(data, list(only))
        number = self.lines
        lines: list[bytes] = []
        ends: list[int] = []
        numbers: list[int] = []
        if newlines:
            first_end = data.find(b"\n")
            head = b"".join((*pending, data[:first_end])) if pending else data[:first_end]
            if head.startswith(only) or newlines == 1:
                lines.append(head)
                ends.append(self.offset + first_end + 1)
                numbers.append(number + 1)
            offset = self.offset + 1
            for start, end, before in found:
                lines.append(data[start:end])
                ends.append(offset + end)
                numbers.append(number + before + 1)
            self._parts = []
            self._pending = 0
            self.lines = number + newlines
        self._carry(data[last + 1:])
        self.offset += len(data)
        return lines, ends, numbers

    def finish(self) -> Line | None:
        """The last line if the data does not end with ``\\n``: only call this when the
        data is known to be complete (an unterminated line may still be growing)."""
        if not self._pending:
            return None
        line = self._complete(b"")
        return None if line is None else Line(line, self.offset, self.lines)

    def _complete(self, part: bytes) -> bytes | None:
        """Ends the current line with ``part``; None if it was too long."""
        self.lines += 1
        size = self._pending + len(part)
        oversized = self._oversized or size > self.max_line
        if oversized:
            self.skipped += 1
            logger.warning(
                "%s: line %d is %d bytes long, more than the maximum of %d; skipped",
                self.name,
                self.lines,
                size,
                self.max_line,
            )
            line = None
        elif self._parts:
            self._parts.append(part)
            line = b"".join(self._parts)
        else:
            line = part
        self._parts = []
        self._pending = 0
        self._oversized = False
        if line is not None and line.endswith(b"\r"):
            line = line[:-1]
        return line

    def _carry(self, tail: bytes) -> None:
        """Keeps ``tail`` as the start of the next line, unless that line is already too long."""
        if not tail:
            return
        self._pending += len(tail)
        if self._oversized:
            return
        if self._pending > self.max_line:
            self._oversized = True
            self._parts = []
        else:
            self._parts.append(tail)

