"""Fuzzing the reader (layouts, codecs, lines, the stream) with real logs as seeds.

Every seed of :mod:`support.fuzz` (each codec, single-file and rolling, finished and in
progress) is damaged at two levels: its stored bytes (bit flips, truncations, splices,
removed or repeated ranges, NUL bytes, invalid UTF-8, lines of several MB) and its
decoded JSON lines, encoded again with its codec. Whatever the damage:

* only :class:`~sparkhist.errors.LogError` (a codec or layout error) escapes, never a
  library's exception, and no read hangs (a deadline per example, a timeout per test);
* the read does not depend on the chunk size, resuming from any yielded position yields
  exactly the lines that followed it, and the listing filter keeps every wanted line and
  the same last position;
* damaged *lines* in intact framing are read exactly as the bytes say: the oracle is
  ``split(b"\\n")``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sparkhist.errors import CodecError, LayoutError, LogError
from sparkhist.events.listing import LISTING_PREFIXES
from sparkhist.reader import layout
from sparkhist.reader.codecs import matching_codecs, resolve_codec
from sparkhist.reader.encoders import ENCODERS
from sparkhist.reader.lines import DEFAULT_MAX_LINE
from sparkhist.reader.position import START, Position
from sparkhist.reader.stream import HEAD_SIZE, ReadStats, read_lines
from sparkhist.source.base import FileEntry
from support.fuzz import (
    Cut,
    Flip,
    Huge,
    Mutation,
    Put,
    Splice,
    apply_all,
    byte_mutations,
    event_names,
    fuzz_settings,
    json_mutations,
    load,
    replace_files,
    seed,
    seed_names,
    write_log,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SEEDS = seed_names()
Read = list[tuple[bytes, Position]]


def read_all(path: Path, start: Position = START, *, chunk_size: int = 1 << 20,
             only: tuple[bytes, ...] | None = None) -> tuple[Read, LogError | None, ReadStats]:
    """Every line read until the end or a :class:`LogError`; any other exception escapes."""
    source, log = load(path)
    stats = ReadStats()
    out: Read = []
    try:
        for item in read_lines(source, log, start, stats=stats, chunk_size=chunk_size, only=only):
            out.append(item)
    except LogError as exc:
        return out, exc, stats
    return out, None, stats


def check_consistent(path: Path, chunk_size: int, resume_at: int) -> Read:
    """The read's invariants, whatever the bytes; returns the lines of a plain read."""
    lines, error, stats = read_all(path)
    assert stats.lines == len(lines)

    # The chunk size changes nothing: not the lines, nor their positions, nor the outcome.
    chunked, chunked_error, _ = read_all(path, chunk_size=chunk_size)
    assert chunked == lines
    assert type(chunked_error) is type(error)

    # Resuming from a yielded position yields what followed it, then the same outcome.
    # Unless a file's bytes contradict its name: a resume sniffs the codec at the resume
    # offset (not at the file's start, to spare a request), so plain text in a file named
    # .zstd that holds zstd's magic after a newline resumes as zstd.
    if lines and not mislabelled(path):
        i = resume_at % len(lines)
        resumed, resumed_error, _ = read_all(path, lines[i][1], chunk_size=chunk_size)
        assert resumed == lines[i + 1 :]
        assert type(resumed_error) is type(error)

    # The listing pass's filter keeps every wanted line and ends at the same position.
    listed, listed_error, listed_stats = read_all(path, only=LISTING_PREFIXES)
    assert type(listed_error) is type(error)
    assert listed_stats.lines == stats.lines
    wanted = [item for item in lines if item[0].startswith(LISTING_PREFIXES)]
    assert [item for item in listed if item[0].startswith(LISTING_PREFIXES)] == wanted
    assert set(listed) <= set(lines)
    if lines:
        assert listed[-1][1] == lines[-1][1]
    return lines


def mislabelled(path: Path) -> bool:
    """Whether a file of the log starts with another codec's magic than its name says."""
    _, log = load(path)
    for entry in log.files:
        with open(entry.path, "rb") as f:
            if resolve_codec(log.codec, f.read(HEAD_SIZE), entry.path) != log.codec:
                return True
    return False


# --------------------------------------------------------------------------- stored bytes
@fuzz_settings(250)
@given(
    name=st.sampled_from(SEEDS),
    file=st.integers(0, 3),
    mutations=st.lists(byte_mutations(SEEDS), min_size=1, max_size=3),
    chunk_size=st.sampled_from([4093, 1 << 16]),
    resume_at=st.integers(0, 1 << 16),
)
@example(name="spark-4.0.1/local-1795972915174.zstd", file=0, mutations=[Flip(at=40_000, bit=5)], chunk_size=4093, resume_at=7)
@example(name="spark-4.0.1/local-1795972911639.snappy", file=0, mutations=[Cut(at=70_001)], chunk_size=4093, resume_at=3)
@example(
    name="spark-4.0.1/eventlog_v2_local-1795972921414",
    file=0,
    mutations=[Splice(other="spark-4.0.1/local-1795972908554.lzf", at=50_000, other_at=50_000)],
    chunk_size=4093,
    resume_at=1,
)
@example(name="spark-4.0.1/local-1795972908554.lzf", file=0, mutations=[Huge(at=9000, size=3 << 20)], chunk_size=1 << 16,
         resume_at=0)
@example(  # a zstd frame, then an lz4 stream: resumed as zstd too, not as lz4 by the magic mid-file
    name="spark-4.0.1/eventlog_v2_local-1795972918271",
    file=0,
    mutations=[Splice(other="spark-4.0.1/eventlog_v2_local-1795972921414", at=67, other_at=0)],
    chunk_size=4093,
    resume_at=0,
)
@example(  # plain text in a file named .zstd, with zstd's magic after a newline: no resume check
    name="spark-4.0.1/eventlog_v2_local-1795972918271", file=0, mutations=[Huge(at=0, size=1 << 20, fill=b'{"a":[')],
    chunk_size=4093, resume_at=0,
)
def test_damaged_stored_bytes(name: str, file: int, mutations: list[Mutation], chunk_size: int, resume_at: int) -> None:
    log = seed(name)
    files = log.files()
    index = log.events_file(file)
    damaged = apply_all(files[index][1], mutations, lambda other: seed(other).stored())
    with tempfile.TemporaryDirectory() as tmp:
        path = write_log(Path(tmp), log.path.name, replace_files(files, index, damaged), log.rolling)
        check_consistent(path, chunk_size, resume_at)


# --------------------------------------------------------------------------- decoded lines
def expected_lines(parts: list[bytes], in_progress: bool, max_line: int) -> list[bytes]:
    """What a reader must yield for these files' decoded bytes: their lines, split at
    ``\\n``; an unterminated last line counts in a finished file only (the last file of
    an in-progress log is still being written); a ``\\r`` before the ``\\n`` is dropped;
    a line longer than ``max_line`` (with its ``\\r``) is skipped."""
    out: list[bytes] = []
    for i, data in enumerate(parts):
        lines = data.split(b"\n")
        tail = lines.pop()
        growing = in_progress and i == len(parts) - 1
        if tail and not growing:
            lines.append(tail)
        out.extend(line.removesuffix(b"\r") for line in lines if len(line) <= max_line)
    return out


def roll(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at these offsets (modulo its length) into consecutive files."""
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)] or [b""]


@fuzz_settings(250)
@given(
    name=st.sampled_from(SEEDS),
    mutations=st.lists(st.one_of(byte_mutations(SEEDS), json_mutations(event_names())), min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 1 << 22), max_size=2),
    max_line=st.sampled_from([DEFAULT_MAX_LINE, 1 << 16]),
    chunk_size=st.sampled_from([4093, 1 << 16]),
    resume_at=st.integers(0, 1 << 16),
)
@example(name="spark-4.0.1/local-1795972905472.lz4", mutations=[Put(at=1000, blob=b"\x00\xff\xc0\xaf\r\n")], cuts=[],
         max_line=DEFAULT_MAX_LINE, chunk_size=4093, resume_at=5)
@example(name="spark-4.0.1/eventlog_v2_local-1795972971424", mutations=[Huge(at=20_000, size=2 << 20, fill=b"\xff")],
         cuts=[10_000, 3_000_000], max_line=1 << 16, chunk_size=1 << 16, resume_at=2)
def test_damaged_json_lines(
    name: str, mutations: list[Mutation], cuts: list[int], max_line: int, chunk_size: int, resume_at: int
) -> None:
    log = seed(name)
    codec = log.codec
    data = apply_all(log.decoded(), mutations, lambda other: seed(other).decoded())
    with tempfile.TemporaryDirectory() as tmp:
        if log.rolling:
            parts = roll(data, cuts)
            app = log.path.name.removeprefix(layout.ROLLING_DIR_PREFIX)
            suffix = f".{codec}" if codec else ""
            files = [(f"{layout.EVENTS_PREFIX}{i}_{app}{suffix}", ENCODERS[codec](part)) for i, part in enumerate(parts, 1)]
            files += [item for item in log.files() if item[0].startswith(layout.APPSTATUS_PREFIX)]
        else:
            parts = [data]
            files = [(log.path.name, ENCODERS[codec](data))]
        path = write_log(Path(tmp), log.path.name, files, log.rolling)
        source, event_log = load(path)
        out: Read = []
        try:
            out.extend(read_lines(source, event_log, max_line=max_line))
        except CodecError:
            # Plain text that starts like a codec's magic is decoded as that codec (the
            # bytes win over the name): the only way intact framing fails here.
            assert codec is None and None not in matching_codecs(files[0][1][:16])
            return
        assert [line for line, _ in out] == expected_lines(parts, log.in_progress, max_line)
        check_consistent(path, chunk_size, resume_at)


# --------------------------------------------------------------------------- layouts
name_parts = st.sampled_from(["events_", "appstatus_", "events_0_", "events_1_", "events_2_", "events_10_", "events_x_",
                              "events_-1_", "events_99999999999999999999_", "events_\u0661_", ".", "", "app", "_",
                              ".inprogress", ".compact", ".lz4", ".zstd", ".gz", ".crc", "\x00", "é"])
file_names = st.lists(name_parts, min_size=1, max_size=5).map("".join)


@fuzz_settings(400)
@given(
    names=st.lists(st.tuples(file_names, st.booleans(), st.integers(0, 1 << 40)), max_size=8),
    single=file_names,
)
@example(names=[("events_1_app.gz", False, 10), ("appstatus_app", False, 0)], single="app.lz4.compact")
def test_layout_of_any_names(names: list[tuple[str, bool, int]], single: str) -> None:
    """Any directory listing makes a rolling log or a :class:`LayoutError`; any file name a
    single-file log or a :class:`LayoutError`."""
    directory = FileEntry("/logs/eventlog_v2_app", "eventlog_v2_app", 0, 0, True)
    children = [FileEntry(f"{directory.path}/{n}", n, 0 if d else size, 0, d) for n, d, size in names]
    try:
        log = layout.rolling_log(directory, children)
    except LayoutError:
        pass
    else:
        indices = [layout.event_file_index(f.name) for f in log.files]
        assert indices == list(range(indices[0], indices[0] + len(indices)))
        assert all(not f.is_dir and not f.name.startswith(".") for f in log.files)
        assert log.last_index == indices[-1]
        assert log.total_size == sum(f.size for f in log.files)
    try:
        one = layout.single_file_log(FileEntry(f"/logs/{single}", single, 1, 0, False))
    except LayoutError:
        pass
    else:
        assert one.codec in (None, *layout.KNOWN_CODECS)
        assert one.in_progress == single.endswith(layout.IN_PROGRESS)
