"""``LineSplitter.feed_only``, the listing pass's filter: the same lines, numbers and offsets
as :meth:`~sparkhist.reader.lines.LineSplitter.feed` gives, for the wanted lines and the last
line of each chunk, however the data is cut (lines across chunks, empty lines, a wanted
prefix at the very start or end of a chunk, ``\\r``, lines over the maximum)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkhist.reader import lines as lines_module
from sparkhist.reader.lines import Line, LineSplitter

ONLY = (b'{"Event":"SparkListenerApplicationStart"', b'{"Event":"SparkListenerLogStart"')
PIECES = [*ONLY, b'{"Event":"SparkListenerTaskEnd"', b"x", b"", b"\r", b'{"Event":"SparkListenerApp', b"\xff\x00"]
lines_st = st.lists(st.lists(st.sampled_from(PIECES), max_size=3).map(b"".join), min_size=1, max_size=40)


def by_feed(chunks: list[bytes], max_line: int) -> list[list[Line]]:
    splitter = LineSplitter(max_line)
    return [splitter.feed(chunk) for chunk in chunks]


def by_feed_only(chunks: list[bytes], max_line: int) -> tuple[list[list[Line]], int]:
    """What a reader with the filter yields per chunk (feed where feed_only declines)."""
    splitter = LineSplitter(max_line)
    out = []
    for chunk in chunks:
        found = splitter.feed_only(chunk, ONLY)
        if found is None:
            got = splitter.feed(chunk)
            out.append([line for i, line in enumerate(got) if line.data.startswith(ONLY) or i == len(got) - 1])
        else:
            out.append([Line(data, end, number) for data, end, number in zip(*found, strict=True)])
    return out, splitter.lines


@settings(max_examples=400, deadline=None)
@given(lines=lines_st, cuts=st.lists(st.integers(0, 2000), max_size=8), max_line=st.sampled_from([3, 40, 1 << 20]),
       terminated=st.booleans())
def test_feed_only_yields_the_wanted_and_last_lines_as_feed_does(lines: list[bytes], cuts: list[int], max_line: int,
                                                                   terminated: bool) -> None:
    data = b"\n".join(lines) + (b"\n" if terminated else b"")
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    chunks = [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    expected = [[line for i, line in enumerate(got) if line.data.startswith(ONLY) or i == len(got) - 1]
                for got in by_feed(chunks, max_line)]
    filtered, count = by_feed_only(chunks, max_line)
    assert filtered == expected
    reference = LineSplitter(max_line)
    for chunk in chunks:
        reference.feed(chunk)
    assert count == reference.lines  # every line counted, wanted or not, too long or not


@pytest.mark.parametrize("chunk", [b'{"Event":"SparkListenerLogStart"}\n', b'a\n{"Event":"SparkListenerLogStart"}\nb\n'])
def test_feed_only_takes_the_common_case(chunk: bytes) -> None:
    """Plain lines under the maximum: the filter does the work (not the general path)."""
    if lines_module._SCAN is None:
        pytest.skip("the compiled module (native/) is not installed or SPARKHIST_NATIVE=0: the split path lists")
    splitter = LineSplitter()
    found = splitter.feed_only(chunk, ONLY)
    assert found is not None
    lines, ends, numbers = found
    assert lines[0] == b'{"Event":"SparkListenerLogStart"}' and ends[-1] == len(chunk)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) and splitter.lines == chunk.count(b"\n")
