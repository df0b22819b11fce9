"""A finished file's tail found by its unit headers (``walk_units``, ``tail_start``) and read from a
unit boundary (``read_tail_lines``); the listing pass's head-and-tail read gives what the whole read
gives (``scan.listing_reads.read_listing``), on Spark's own logs and on generated ones."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sparkhist.errors import CodecError
from sparkhist.events.listing import LISTING_PREFIXES
from sparkhist.reader import layout, tail
from sparkhist.reader.codecs import make_decoder, walk_units
from sparkhist.reader.encoders import ENCODERS
from sparkhist.reader.layout import EventLog
from sparkhist.reader.position import START
from sparkhist.reader.stream import ReadStats, read_lines, read_tail_lines
from sparkhist.scan import changes, listing_reads
from sparkhist.source.local import LocalSource

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO.parent / "shared" / "conformance"
EVENTLOGS = CONFORMANCE / "spark-4.0.1" / "eventlogs"
COMPRESSED = {
    "lz4": "local-1795972905472.lz4",
    "lzf": "local-1795972908554.lzf",
    "snappy": "local-1795972911639.snappy",
    "zstd": "local-1795972915174.zstd",
}


def load(path: Path) -> tuple[LocalSource, EventLog]:
    source = LocalSource(str(path.parent))
    return source, layout.find_event_log(source, str(path))


def whole_read(source: LocalSource, event_log: EventLog) -> listing_reads.ListingRead:
    """The listing read of every line of the log (the read before the skip, and its fallback)."""
    item = changes.fresh(event_log)
    stats = ReadStats()
    lines = read_lines(source, event_log, START, stats=stats, only=LISTING_PREFIXES)
    return listing_reads._read(source, item, lines, START, stats)


def same_read(a: listing_reads.ListingRead, b: listing_reads.ListingRead) -> bool:
    """The same listing, the same resume point (its line count aside), the same error."""
    return (a.listing == b.listing and a.position.as_tuple()[:3] == b.position.as_tuple()[:3]
            and a.error == b.error and (a.failure is None) == (b.failure is None))


@pytest.mark.parametrize("codec", sorted(COMPRESSED))
def test_the_walk_finds_the_decoders_restart_points(codec: str) -> None:
    data = (EVENTLOGS / COMPRESSED[codec]).read_bytes()
    units = walk_units(codec, data)
    ends = {piece.end for piece in make_decoder(codec).decode(data) if piece.end is not None}
    walked = [unit.offset + unit.length for unit in units]
    assert units[0].offset == 0 and walked[-1] == len(data)
    assert [unit.offset for unit in units[1:]] == walked[:-1]  # contiguous
    assert ends <= set(walked) and len(ends) >= len(walked) - 2  # every restart point (headers may add one)
    decoded = b"".join(piece.data for piece in make_decoder(codec).decode(data))
    if codec != "zstd":  # zstd-jni frames do not carry their decoded size
        assert sum(unit.decoded or 0 for unit in units) == len(decoded)
    # Walking from any unit gives the same units from there on.
    middle = units[len(units) // 2].offset
    assert walk_units(codec, data[middle:], middle) == [u for u in units if u.offset >= middle]
    # A partial last unit is left out, as the decoder leaves it.
    assert walk_units(codec, data[:-1]) == units[:-1]


@pytest.mark.parametrize("codec", sorted(COMPRESSED))
def test_a_damaged_unit_header_fails_the_walk(codec: str) -> None:
    data = bytearray((EVENTLOGS / COMPRESSED[codec]).read_bytes())
    units = walk_units(codec, bytes(data))
    unit = units[len(units) // 2]
    data[unit.offset] ^= 0xC0  # a magic byte, or a snappy block length's sign
    with pytest.raises(CodecError, match=f"offset {unit.offset}"):
        walk_units(codec, bytes(data))


@pytest.mark.parametrize("codec", sorted(COMPRESSED))
def test_a_tail_read_from_any_unit_yields_the_lines_after_the_first_newline(codec: str) -> None:
    path = EVENTLOGS / COMPRESSED[codec]
    source, event_log = load(path)
    whole = list(read_lines(source, event_log))
    decoded = b"".join(piece.data for piece in make_decoder(codec).decode(path.read_bytes()))
    line_ends = [sum(len(line) + 1 for line, _ in whole[: i + 1]) for i in range(len(whole))]
    at = 0  # decoded offset of the unit
    for unit in walk_units(codec, path.read_bytes()):
        start = START.__class__(0, unit.offset, 0, 7)
        got = list(read_tail_lines(source, event_log, start))
        first = decoded.find(b"\n", at)  # -1 past the last newline: nothing
        expected = [(line, pos) for (line, pos), end in zip(whole, line_ends, strict=True) if end > first + 1 and first >= 0]
        assert [line for line, _ in got] == [line for line, _ in expected]
        assert [pos.as_tuple()[:3] for _, pos in got] == [pos.as_tuple()[:3] for _, pos in expected]
        assert [pos.line for _, pos in got] == list(range(8, 8 + len(got)))  # lines read, counted from 7
        at += unit.decoded if unit.decoded is not None else _decoded_size(path.read_bytes(), unit.offset, unit.length)


def _decoded_size(data: bytes, offset: int, length: int) -> int:
    return sum(len(piece.data) for piece in make_decoder("zstd").decode(data[offset : offset + length]))


def test_the_tail_holds_at_least_two_units_and_the_bytes_wanted() -> None:
    from sparkhist.reader.codecs import UnitSpan

    def units(*decoded: int | None, stored: int = 1000) -> list[UnitSpan]:
        return [UnitSpan(i * stored, stored, size) for i, size in enumerate(decoded)]

    assert tail.choose_tail(units(40_000, 40_000, 40_000)) == 1
    assert tail.choose_tail(units(40_000, 70_000, 1)) == 1  # two units with data at least
    assert tail.choose_tail(units(70_000, 10, 0)) == 0  # an empty unit (a stream's end) does not count
    assert tail.choose_tail(units(None, None, None, stored=5000)) == 1  # 5000 stored bytes count as 40,000 decoded
    assert tail.choose_tail(units(None, None, None, stored=1000)) is None
    assert tail.choose_tail(units(10, 10)) is None  # not enough: read on


@pytest.mark.parametrize("name", [*COMPRESSED.values(), "eventlog_v2_local-1795972918271", "eventlog_v2_local-1795972921414"])
def test_spark_logs_read_by_head_and_tail_as_a_whole_read(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a tail small enough to skip units of these small logs: the listing and the position of a
    whole read, fewer lines decoded; the middle files of a rolling log never opened."""
    monkeypatch.setattr(tail, "TAIL_DECODED", 4096)
    monkeypatch.setattr(listing_reads, "HOLD_MAX", 0)  # every read from the source, to count them
    source, event_log = load(EVENTLOGS / name)
    whole = whole_read(source, event_log)
    opens = source.opens
    read = listing_reads.read_listing(source, changes.fresh(event_log))
    assert same_read(read, whole) and read.listing.completed and read.error is None
    assert read.lines < whole.lines / 2
    assert source.opens - opens == 3  # the head, the walk, the tail


def test_plain_text_tail_is_its_last_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail, "PLAIN_TAIL", 2000)
    path = tmp_path / "local-1795972896863"
    path.write_bytes((EVENTLOGS / path.name).read_bytes())
    source, event_log = load(path)
    stats = ReadStats()
    head = whole_read(source, event_log)
    start = tail.tail_start(source, event_log, START.__class__(0, 50_000, 0, 3), stats)
    assert start is not None and start.offset == path.stat().st_size - 2000 and stats.bytes_read == 0
    read = listing_reads.read_listing(source, changes.fresh(event_log))
    assert same_read(read, head) and read.lines < head.lines / 2


# Generated logs: the listing events at the head and the end, every codec, unit sizes from a few
# lines to many, single files and rolling logs, the tail damaged or cut, the end event missing or
# far from the end (the fallback to the whole read).

_FILLER = st.integers(min_value=0, max_value=400)


def _event(kind: str, **fields: object) -> bytes:
    return orjson.dumps({"Event": f"SparkListener{kind}", **fields})


def _lines(rng: random.Random, before_env: int, after_start: int, end: bool, after_end: int) -> list[bytes]:
    def filler(n: int) -> list[bytes]:
        return [_event("TaskEnd", **{"Stage ID": i, "Pad": "x" * rng.randrange(0, 600)}) for i in range(n)]

    env = _event("EnvironmentUpdate", **{"Spark Properties": {"spark.ui.view.acls": rng.choice(["", "ann", "bob,cy"]),
                                                             "spark.pad": "p" * rng.randrange(0, 3000)}})
    start = _event("ApplicationStart", **{"App Name": "gen", "App ID": f"app-{rng.randrange(1000)}",
                                          "Timestamp": 1000, "User": "u"})
    lines = [_event("LogStart", **{"Spark Version": "4.3.0"}), *filler(before_env), env, start, *filler(after_start)]
    if end:
        lines.append(_event("ApplicationEnd", Timestamp=5000 + rng.randrange(100)))
    return lines + filler(after_end)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    codec=st.sampled_from([None, "lz4", "lzf", "snappy", "zstd"]),
    unit=st.sampled_from([200, 2048, 16384, 65536]),
    files=st.integers(min_value=1, max_value=3),
    before_env=st.integers(min_value=0, max_value=30),
    after_start=_FILLER,
    end=st.booleans(),
    after_end=st.sampled_from([0, 0, 1, 3, 300]),
    damage=st.sampled_from(["none", "none", "cut", "tail", "header"]),
    tail_bytes=st.sampled_from([512, 4096, 65536]),
    seed=st.integers(min_value=0, max_value=1 << 30),
)
def test_head_and_tail_give_the_whole_reads_listing(codec: str | None, unit: int, files: int, before_env: int,
                                                    after_start: int, end: bool, after_end: int, damage: str,
                                                    tail_bytes: int, seed: int) -> None:
    rng = random.Random(seed)
    lines = _lines(rng, before_env, after_start, end, after_end)
    suffix = f".{codec}" if codec else ""
    cuts = sorted(rng.sample(range(1, len(lines)), min(files - 1, len(lines) - 1)))
    parts = [lines[a:b] for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True)]
    size = min(unit, 65535) if codec == "lzf" else unit  # an lzf chunk holds at most 65,535 bytes
    blobs = [ENCODERS[codec](b"".join(line + b"\n" for line in part), size) for part in parts]
    last = bytearray(blobs[-1])
    if damage == "cut" and len(last) > 10:
        del last[-rng.randrange(1, min(len(last), 400)):]
    elif damage == "tail" and len(last) > 10:
        last[-rng.randrange(1, min(len(last), 60))] ^= 0xFF  # in the tail's units
    elif damage == "header" and codec is not None:
        units = walk_units(codec, bytes(last))
        last[units[rng.randrange(len(units))].offset] ^= 0xC0
    blobs[-1] = bytes(last)
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(tail, "TAIL_DECODED", tail_bytes), \
            mock.patch.object(tail, "PLAIN_TAIL", tail_bytes):
        if len(parts) == 1 and rng.random() < 0.5:
            path = Path(tmp) / f"app-1{suffix}"
            path.write_bytes(blobs[0])
        else:
            path = Path(tmp) / "eventlog_v2_app-1"
            path.mkdir()
            (path / "appstatus_app-1").write_bytes(b"")
            for i, blob in enumerate(blobs, 1):
                (path / f"events_{i}_app-1{suffix}").write_bytes(blob)
        source, event_log = load(path)
        assert not event_log.in_progress
        whole = whole_read(source, event_log)
        with mock.patch.object(listing_reads, "read_tail_lines", wraps=read_tail_lines) as tail_read:
            read = listing_reads.read_listing(source, changes.fresh(event_log))
        event(f"tail read: {tail_read.called}, whole read after: {read.lines > whole.lines}")
        assert same_read(read, whole), (read, whole)
        for held in (0, 1 << 30):  # the last file read from the source, or held in memory
            with mock.patch.object(listing_reads, "HOLD_MAX", held):
                assert same_read(listing_reads.read_listing(source, changes.fresh(event_log)), whole)


def test_damage_inside_a_skipped_unit_is_not_seen_by_the_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the skip gives up: a unit between the head and the tail is never decoded, so damage inside
    its body (its header intact) leaves the listing complete, where the whole read stops at the damage
    (as a rolling log's middle file is never opened by the SHS). Damage in a header is seen (the walk)."""
    monkeypatch.setattr(tail, "TAIL_DECODED", 4096)
    data = bytearray((EVENTLOGS / COMPRESSED["lz4"]).read_bytes())
    units = walk_units("lz4", bytes(data))
    middle = units[len(units) // 2]
    data[middle.offset + 40 : middle.offset + 48] = bytes(8)  # inside the block's body: its checksum fails
    path = tmp_path / "local-1795972905472.lz4"
    path.write_bytes(bytes(data))
    source, event_log = load(path)
    whole = whole_read(source, event_log)
    read = listing_reads.read_listing(source, changes.fresh(event_log))
    assert whole.error is not None and not whole.listing.completed
    assert read.error is None and read.listing.completed
    assert read.listing.app_id == whole.listing.app_id
    assert read.position.offset == len(data) - 21  # after the last line: before the end-of-stream block
    data[middle.offset] ^= 0xC0  # now its header too: the walk fails, the whole log is read
    path.write_bytes(bytes(data))
    source, event_log = load(path)
    assert same_read(listing_reads.read_listing(source, changes.fresh(event_log)), whole_read(source, event_log))


@pytest.mark.parametrize("name", [*COMPRESSED.values(), "local-1795972896863", "eventlog_v2_local-1795972918271"])
def test_a_held_file_counts_its_bytes_once(name: str) -> None:
    """The last file read whole once (the head, the walk and the tail from memory): the bytes read are
    the log's stored size, as for the whole read (the restart's accounting relies on it)."""
    source, event_log = load(EVENTLOGS / name)
    read = listing_reads.read_listing(source, changes.fresh(event_log))
    assert read.bytes_read == event_log.total_size == whole_read(source, event_log).bytes_read
