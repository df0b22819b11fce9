"""The line splitter: chunk-independence, line-end offsets, the line-length limit."""

from __future__ import annotations

import logging
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkhist.reader.lines import DEFAULT_MAX_LINE, Line, LineSplitter


def split_in(splitter: LineSplitter, content: bytes, cuts: list[int]) -> list[Line]:
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(content)), len(content)]
    lines: list[Line] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        lines.extend(splitter.feed(content[a:b]))
    return lines


def expected_lines(content: bytes, max_line: int) -> tuple[list[tuple[bytes, int, int]], bytes]:
    """The model: ``content.split(b"\\n")``; all but the last part are complete lines."""
    *complete, tail = content.split(b"\n")
    out, end = [], 0
    for number, raw in enumerate(complete, 1):
        end += len(raw) + 1
        if len(raw) <= max_line:
            out.append((raw[:-1] if raw.endswith(b"\r") else raw, end, number))
    return out, tail


def test_default_limit_is_512_mib() -> None:
    assert DEFAULT_MAX_LINE == 512 << 20
    assert LineSplitter().max_line == DEFAULT_MAX_LINE


def test_lines_across_chunks_with_offsets_and_numbers() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"a":1}\n{"b"') == [Line(b'{"a":1}', 8, 1)]
    assert splitter.feed(b":2}\r\n\n") == [Line(b'{"b":2}', 17, 2), Line(b"", 18, 3)]
    assert splitter.feed(b"") == []
    assert splitter.feed(b"tail") == []
    assert splitter.finish() == Line(b"tail", 22, 4)
    assert splitter.finish() is None


def test_finish_without_a_tail() -> None:
    splitter = LineSplitter()
    splitter.feed(b"x\n")
    assert splitter.finish() is None
    assert splitter.lines == 1


def test_numbering_continues_from_lines_before() -> None:
    splitter = LineSplitter(lines_before=41)
    assert splitter.feed(b"a\nb\n") == [Line(b"a", 2, 42), Line(b"b", 4, 43)]


@settings(max_examples=300, deadline=None)
@given(
    content=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"{}", b"xyzw" * 5]), max_size=60).map(b"".join),
    cuts=st.lists(st.integers(0, 200), max_size=20),
    max_line=st.one_of(st.just(DEFAULT_MAX_LINE), st.integers(0, 25)),
)
def test_any_chunking_matches_split(content: bytes, cuts: list[int], max_line: int) -> None:
    splitter = LineSplitter(max_line)
    lines = split_in(splitter, content, cuts)
    expected, tail = expected_lines(content, max_line)
    assert [tuple(line) for line in lines] == expected
    complete = content.count(b"\n")
    long_lines = sum(len(raw) > max_line for raw in content.split(b"\n")[:-1])
    assert splitter.skipped == long_lines
    assert splitter.lines == complete
    last = splitter.finish()
    if not tail or len(tail) > max_line:
        assert last is None
    else:
        assert last == Line(tail[:-1] if tail.endswith(b"\r") else tail, len(content), complete + 1)
    assert splitter.skipped == long_lines + (len(tail) > max_line)


def batch_split_in(splitter: LineSplitter, content: bytes, cuts: list[int]) -> list[Line]:
    """As the reader feeds: ``feed_batch``, and ``feed`` when it declines."""
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(content)), len(content)]
    lines: list[Line] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        batch = splitter.feed_batch(content[a:b])
        if batch is None:
            lines.extend(splitter.feed(content[a:b]))
        else:
            data, ends, number = batch
            assert len(data) == len(ends)
            lines.extend(Line(d, end, number + i) for i, (d, end) in enumerate(zip(data, ends, strict=True), 1))
    return lines


@settings(max_examples=300, deadline=None)
@given(
    content=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"{}", b"xyzw" * 5]), max_size=60).map(b"".join),
    cuts=st.lists(st.integers(0, 200), max_size=20),
    max_line=st.one_of(st.just(DEFAULT_MAX_LINE), st.integers(0, 25)),
    before=st.integers(0, 3),
)
def test_feed_batch_matches_feed(content: bytes, cuts: list[int], max_line: int, before: int) -> None:
    """The fast path yields the same lines, ends, numbers and counters as ``feed``."""
    slow, fast = LineSplitter(max_line, lines_before=before), LineSplitter(max_line, lines_before=before)
    assert batch_split_in(fast, content, cuts) == split_in(slow, content, cuts)
    assert (fast.lines, fast.skipped, fast.offset) == (slow.lines, slow.skipped, slow.offset)
    assert fast.finish() == slow.finish()
    assert fast.skipped == slow.skipped


def test_feed_batch_declines_what_feed_must_do() -> None:
    splitter = LineSplitter(8)
    assert splitter.feed_batch(b"a\r\nb") is None  # a \r to strip
    assert splitter.feed_batch(b"123456789\n") is None  # too long
    assert splitter.offset == 0 and splitter.lines == 0  # nothing consumed
    assert splitter.feed_batch(b"ab\ncd") == ([b"ab"], [3], 0)
    assert splitter.feed_batch(b"e\n\nf") == ([b"cde", b""], [7, 8], 1)


def test_long_lines_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    splitter = LineSplitter(5, name="app-1.zstd", lines_before=10)
    with caplog.at_level(logging.WARNING, logger="sparkhist.reader"):
        lines = split_in(splitter, b"12345\n123456\nok\n" + b"x" * 20 + b"\nend", [3, 9, 20, 25])
        assert splitter.finish() == Line(b"end", 40, 15)
    assert lines == [Line(b"12345", 6, 11), Line(b"ok", 16, 13)]
    assert splitter.skipped == 2
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "app-1.zstd: line 12 is 6 bytes long, more than the maximum of 5; skipped",
        "app-1.zstd: line 14 is 20 bytes long, more than the maximum of 5; skipped",
    ]


def test_oversized_unterminated_tail_is_skipped_at_finish() -> None:
    splitter = LineSplitter(3)
    splitter.feed(b"ab\nabcd")
    assert splitter.finish() is None
    assert splitter.skipped == 1


def test_an_oversized_line_is_not_buffered() -> None:
    """64 MiB of one line with a 1 MiB limit stays far below 64 MiB of memory."""
    chunk = b"x" * (1 << 16)
    splitter = LineSplitter(1 << 20)
    tracemalloc.start()
    try:
        for _ in range(1024):
            assert splitter.feed(chunk) == []
        assert splitter.feed(b"\nnext\n") == [Line(b"next", (64 << 20) + 6, 2)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
    assert splitter.skipped == 1
