"""read_lines over real Spark 4.0.1 logs: every codec, truncation, damage, resume, growth."""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import random
import re
import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from sparkhist.errors import CodecError, LogError
from sparkhist.reader import layout
from sparkhist.reader.codecs import make_decoder
from sparkhist.reader.layout import EventLog
from sparkhist.reader.position import START, Position
from sparkhist.reader.stream import ReadStats, read_lines
from sparkhist.source.local import LocalSource

REPO = Path(__file__).resolve().parents[2]
EVENTLOGS = REPO.parent / "shared" / "conformance" / "spark-4.0.1" / "eventlogs"

FINISHED = {
    None: "local-1795972896863",
    "lz4": "local-1795972905472.lz4",
    "lzf": "local-1795972908554.lzf",
    "snappy": "local-1795972911639.snappy",
    "zstd": "local-1795972915174.zstd",
}
IN_PROGRESS = {
    None: "local-1795972971772.inprogress",
    "lz4": "local-1795972971665.lz4.inprogress",
    "lzf": "local-1795972973157.lzf.inprogress",
    "snappy": "local-1795972971540.snappy.inprogress",
    "zstd": "local-1795972972873.zstd.inprogress",
}
ROLLING = {
    "zstd": "eventlog_v2_local-1795972918271",
    "lz4": "eventlog_v2_local-1795972921414",
    "zstd-inprogress": "eventlog_v2_local-1795972971424",
}
ALL_LOGS = [*FINISHED.values(), *IN_PROGRESS.values(), *ROLLING.values()]
CODECS = list(FINISHED)

Read = list[tuple[bytes, Position]]


def load(path: Path | str) -> tuple[LocalSource, EventLog]:
    """The EventLog of a file or rolling directory, as the scanner would build it."""
    source = LocalSource(os.path.dirname(path))
    entry = source.stat(str(path))
    if entry.is_dir:
        return source, layout.rolling_log(entry, source.list(entry.path))
    return source, layout.single_file_log(entry)


def read(path: Path | str, start: Position = START, **kwargs: Any) -> Read:
    source, log = load(path)
    return list(read_lines(source, log, start, **kwargs))


def with_size(log: EventLog, size: int) -> EventLog:
    """The log as a scan would see it when its last file was ``size`` bytes long and growing."""
    last = dataclasses.replace(log.files[-1], size=size)
    return dataclasses.replace(log, in_progress=True, files=(*log.files[:-1], last))


def events(lines: Read) -> list[str]:
    return [orjson.loads(line)["Event"] for line, _ in lines]


@pytest.fixture(scope="module")
def full() -> dict[str, Read]:
    """Every conformance log read once, from the start."""
    return {name: read(EVENTLOGS / name) for name in ALL_LOGS}


# --- real logs -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_LOGS)
def test_every_conformance_log_decodes_to_json_lines(name: str, full: dict[str, Read]) -> None:
    source, log = load(EVENTLOGS / name)
    stats = ReadStats()
    lines = list(read_lines(source, log, stats=stats))
    assert lines == full[name]
    kinds = events(lines)  # every yielded line is whole JSON, in progress or not
    assert kinds[0] == "SparkListenerLogStart"
    assert "SparkListenerJobStart" in kinds
    assert ("SparkListenerApplicationEnd" in kinds) is (not log.in_progress)
    assert [p.line for _, p in lines] == list(range(1, len(lines) + 1))
    assert stats == ReadStats(files_opened=1, bytes_read=log.total_size, lines=len(lines))


PREFIXES = (b'{"Event":"SparkListenerApplicationStart"', b'{"Event":"SparkListenerJobEnd"',
            b'{"Event":"SparkListenerEnvironmentUpdate",')


@pytest.mark.parametrize("name", ALL_LOGS)
@pytest.mark.parametrize("chunk_size", [1 << 20, 97])
def test_a_prefix_filtered_read_keeps_every_wanted_line_and_the_end_position(
        name: str, chunk_size: int, full: dict[str, Read]) -> None:
    """``only``: every wanted line comes, with its position; lines left out are only the
    unwanted ones; the last position is the unfiltered read's; every line is counted."""
    source, log = load(EVENTLOGS / name)
    stats = ReadStats()
    filtered = list(read_lines(source, log, stats=stats, chunk_size=chunk_size, only=PREFIXES))
    everything = full[name]
    assert set(filtered) <= set(everything)
    wanted = [(line, pos) for line, pos in everything if line.startswith(PREFIXES)]
    assert [item for item in filtered if item[0].startswith(PREFIXES)] == wanted and wanted
    assert filtered[-1][1] == everything[-1][1]
    if chunk_size > 1000:  # (tiny chunks end a batch at nearly every line)
        assert len(filtered) < len(everything)
    assert stats.lines == len(everything)


def test_finished_logs_of_every_codec_have_the_same_events(full: dict[str, Read]) -> None:
    plain = collections.Counter(events(full[FINISHED[None]]))
    assert plain["SparkListenerJobStart"] == 10
    for name in [*FINISHED.values(), ROLLING["zstd"], ROLLING["lz4"]]:
        assert collections.Counter(events(full[name])) == plain, name


def test_in_progress_logs_of_every_codec_have_the_same_jobs(full: dict[str, Read]) -> None:
    for name in [*IN_PROGRESS.values(), ROLLING["zstd-inprogress"]]:
        assert events(full[name]).count("SparkListenerJobStart") == 2, name


def test_in_progress_lz4_holds_whole_blocks_and_a_cut_last_line(full: dict[str, Read]) -> None:
    """§2.5: lz4-java never flushes a partial block; the cut line stays for the next read."""
    source, log = load(EVENTLOGS / IN_PROGRESS["lz4"])
    stats = ReadStats()
    lines = list(read_lines(source, log, stats=stats))
    assert not stats.truncated_tail
    last = lines[-1][1]
    assert last.skip > 0 and last.offset < log.total_size  # resumes inside the last block


# --- truncation ------------------------------------------------------------------------------


def boundaries(path: Path, codec: str | None) -> set[int]:
    """Stored offsets where blocks or frames start and end (plain: where lines end)."""
    data = path.read_bytes()
    if codec is None:
        return {i + 1 for i, byte in enumerate(data) if byte == ord("\n")}
    points = set()
    for piece in make_decoder(codec).decode(data):
        points.add(piece.origin)
        if piece.end is not None:
            points.add(piece.end)
    return points


def largest_unit(path: Path, codec: str | None) -> int:
    """The longest stored stretch between two boundaries: a block, a frame or (plain) a line."""
    points = sorted(boundaries(path, codec))
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def truncation_points(path: Path, codec: str | None) -> list[int]:
    """Every offset of the first 2 KiB and around every boundary, and a dense stride elsewhere."""
    size = path.stat().st_size
    points = set(range(2048)) | set(range(0, size, 37)) | {size}
    for b in boundaries(path, codec):
        points.update(range(b - 12, b + 13))
    return sorted(p for p in points if 0 <= p <= size)


@pytest.mark.parametrize("codec", CODECS)
def test_every_truncation_point_yields_a_prefix(codec: str | None, full: dict[str, Read]) -> None:
    name = IN_PROGRESS[codec]
    source, log = load(EVENTLOGS / name)
    expected = full[name]
    for size in truncation_points(EVENTLOGS / name, codec):
        got = list(read_lines(source, with_size(log, size)))
        assert got == expected[: len(got)], size
    assert len(got) == len(expected)


@pytest.mark.parametrize("codec", CODECS)
def test_truncated_copies_on_disk(codec: str | None, tmp_path: Path, full: dict[str, Read]) -> None:
    data = (EVENTLOGS / FINISHED[codec]).read_bytes()
    expected = full[FINISHED[codec]]
    for size in sorted(random.Random(codec).sample(range(len(data)), 15)):
        path = tmp_path / f"app-{size}{'.' + codec if codec else ''}.inprogress"
        path.write_bytes(data[:size])
        stats = ReadStats()
        got = read(path, stats=stats)
        assert got == expected[: len(got)]
        assert stats.bytes_read == size


def test_complete_log_with_a_truncated_tail_warns_and_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, full: dict[str, Read]
) -> None:
    data = (EVENTLOGS / FINISHED["zstd"]).read_bytes()
    path = tmp_path / "app.zstd"
    path.write_bytes(data[:-10])
    stats = ReadStats()
    with caplog.at_level(logging.WARNING, logger="sparkhist.reader"):
        got = read(path, stats=stats)
    assert stats.truncated_tail
    assert got == full[FINISHED["zstd"]][: len(got)] and len(got) > 90
    assert "app.zstd" in caplog.text and "ends inside" in caplog.text


def test_in_progress_truncated_tail_is_silent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = (EVENTLOGS / FINISHED["lz4"]).read_bytes()
    path = tmp_path / "app.lz4.inprogress"
    path.write_bytes(data[:50_000])
    stats = ReadStats()
    with caplog.at_level(logging.WARNING, logger="sparkhist.reader"):
        read(path, stats=stats)
    assert stats.truncated_tail
    assert not caplog.records


def test_reads_only_up_to_the_listed_size(full: dict[str, Read]) -> None:
    source, log = load(EVENTLOGS / FINISHED[None])
    stats = ReadStats()
    got = list(read_lines(source, with_size(log, 100_000), stats=stats))
    assert stats.bytes_read == 100_000
    assert got == full[FINISHED[None]][: len(got)]
    assert got[-1][1].offset <= 100_000


# --- unterminated last line --------------------------------------------------------------------


@pytest.mark.parametrize("codec", [None, "zstd"])
def test_unterminated_last_line_depends_on_completion(codec: str | None, tmp_path: Path) -> None:
    """Rewritten logs in the wild: one zstd frame, no trailing newline (§2.5)."""
    content = b'{"Event":"A"}\n{"Event":"B"}\n{"Event":"C"}'
    stored = zstandard.ZstdCompressor().compress(content) if codec == "zstd" else content
    suffix = ".zstd" if codec else ""
    (tmp_path / f"done{suffix}").write_bytes(stored)
    (tmp_path / f"running{suffix}.inprogress").write_bytes(stored)
    done = read(tmp_path / f"done{suffix}")
    assert [line for line, _ in done] == [b'{"Event":"A"}', b'{"Event":"B"}', b'{"Event":"C"}']
    assert done[-1][1].offset == len(stored) and done[-1][1].line == 3
    running = read(tmp_path / f"running{suffix}.inprogress")
    assert [line for line, _ in running] == [b'{"Event":"A"}', b'{"Event":"B"}']
    assert read(tmp_path / f"done{suffix}", done[-1][1]) == []


def test_crlf_lines(tmp_path: Path) -> None:
    (tmp_path / "app").write_bytes(b'{"a":1}\r\n{"b":2}\r\n')
    assert [line for line, _ in read(tmp_path / "app")] == [b'{"a":1}', b'{"b":2}']


# --- resume ------------------------------------------------------------------------------------


def chosen(lines: Read, seed: str) -> list[int]:
    """Indices of the positions to resume from: first, middle, last and a few at random."""
    rng = random.Random(seed)
    return sorted({0, len(lines) // 2, len(lines) - 1, *rng.sample(range(len(lines)), min(5, len(lines)))})


@pytest.mark.parametrize("name", ALL_LOGS)
def test_resume_from_any_position_yields_the_rest(name: str, full: dict[str, Read]) -> None:
    lines = full[name]
    for i in chosen(lines, name):
        assert read(EVENTLOGS / name, lines[i][1]) == lines[i + 1 :], i


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
@pytest.mark.parametrize("codec", CODECS)
def test_chunk_size_does_not_matter(codec: str | None, chunk_size: int, full: dict[str, Read]) -> None:
    name = IN_PROGRESS[codec]
    assert read(EVENTLOGS / name, chunk_size=chunk_size) == full[name]


@pytest.mark.parametrize("codec", CODECS)
def test_growing_file_resumes_with_only_new_bytes_and_one_block(codec: str | None, tmp_path: Path, full: dict[str, Read]) -> None:
    data = (EVENTLOGS / FINISHED[codec]).read_bytes()
    cut = len(data) * 3 // 5
    path = tmp_path / f"app{'.' + codec if codec else ''}.inprogress"
    path.write_bytes(data[:cut])
    first = read(path)
    resume = first[-1][1]
    with open(path, "ab") as f:
        f.write(data[cut:])
    stats = ReadStats()
    rest = read(path, resume, stats=stats)
    assert first + rest == full[FINISHED[codec]]
    new_bytes = len(data) - cut
    reread = stats.bytes_read - new_bytes
    assert stats.bytes_read < len(data)
    # at most the block holding the last line, plus the part of a block the first read could not use
    assert reread <= 2 * largest_unit(EVENTLOGS / FINISHED[codec], codec)


def test_growing_file_that_finishes_is_resumed_after_the_rename(tmp_path: Path, full: dict[str, Read]) -> None:
    data = (EVENTLOGS / FINISHED["snappy"]).read_bytes()
    running = tmp_path / "app.snappy.inprogress"
    running.write_bytes(data[:70_000])
    first = read(running)
    running.rename(tmp_path / "app.snappy")
    (tmp_path / "app.snappy").write_bytes(data)
    assert first + read(tmp_path / "app.snappy", first[-1][1]) == full[FINISHED["snappy"]]


# --- rolling logs -------------------------------------------------------------------------------


def make_rolling(tmp_path: Path, lines: list[bytes], parts: int, *, finished: bool) -> Path:
    """A rolling directory of plain events files holding ``lines``, split in ``parts``."""
    directory = tmp_path / "eventlog_v2_local-1"
    directory.mkdir()
    step = -(-len(lines) // parts)
    for n in range(parts):
        chunk = lines[n * step : (n + 1) * step]
        (directory / f"events_{n + 1}_local-1").write_bytes(b"".join(line + b"\n" for line in chunk))
    (directory / f"appstatus_local-1{'' if finished else '.inprogress'}").write_bytes(b"")
    (directory / ".appstatus_local-1.crc").write_bytes(b"ignored")
    return directory


def test_rolling_directory_reads_in_order_and_resumes_across_files(tmp_path: Path, full: dict[str, Read]) -> None:
    plain = [line for line, _ in full[FINISHED[None]]]
    directory = make_rolling(tmp_path, plain, 3, finished=True)
    stats = ReadStats()
    lines = read(directory, stats=stats)
    assert [line for line, _ in lines] == plain
    assert stats.files_opened == 3
    assert [p.file_index for _, p in lines] == sorted(p.file_index for _, p in lines)
    assert {p.file_index for _, p in lines} == {0, 1, 2}
    assert [p.line for _, p in lines] == list(range(1, len(plain) + 1))
    ends_of_files = [i for i in range(len(lines) - 1) if lines[i][1].file_index != lines[i + 1][1].file_index]
    for i in [*ends_of_files, *(i + 1 for i in ends_of_files), *chosen(lines, "rolling")]:
        assert read(directory, lines[i][1]) == lines[i + 1 :], i


def test_rolling_in_progress_only_the_last_file_may_be_unterminated(tmp_path: Path) -> None:
    directory = make_rolling(tmp_path, [b'{"n":%d}' % i for i in range(9)], 3, finished=False)
    with open(directory / "events_1_local-1", "ab") as f:
        f.write(b'{"tail":1}')  # a finished file: its unterminated line is whole
    with open(directory / "events_3_local-1", "ab") as f:
        f.write(b'{"tail":3}')  # the file being written: may still grow
    lines = [line for line, _ in read(directory)]
    assert b'{"tail":1}' in lines and b'{"tail":3}' not in lines
    assert len(lines) == 10


# --- damage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["lz4", "lzf", "snappy", "zstd"])
def test_damage_mid_file_after_yielding_what_precedes(codec: str, tmp_path: Path, full: dict[str, Read]) -> None:
    data = bytearray((EVENTLOGS / FINISHED[codec]).read_bytes())
    units = sorted(boundaries(EVENTLOGS / FINISHED[codec], codec))
    start = units[len(units) // 2]
    following = min(u for u in units if u > start)
    for i in range(start + 25, min(start + 35, following)):
        data[i] ^= 0xFF
    path = tmp_path / f"app.{codec}"
    path.write_bytes(bytes(data))
    expected = full[FINISHED[codec]]
    before = [(line, p) for line, p in expected if p.offset < start or (p.offset == start and p.skip == 0)]
    got: Read = []
    try:
        for item in read_lines(*load(path)):
            got.append(item)
    except CodecError as exc:
        where = re.search(r"^(.+?): .* at offset (\d+)$", str(exc))
        assert where is not None and where.group(1) == str(path)
        assert start <= int(where.group(2)) < following  # the damaged block (zstd: a block in the frame)
        error = True
    else:
        error = False
    if codec == "lz4":
        assert error  # every block is checksummed
    assert got[: len(before)] == before


def test_read_lines_is_lazy_on_damage(tmp_path: Path, full: dict[str, Read]) -> None:
    """The error comes only once the lines before the damage have been consumed."""
    data = bytearray((EVENTLOGS / FINISHED["lz4"]).read_bytes())
    data[-100] ^= 0xFF  # the last data block
    path = tmp_path / "app.lz4"
    path.write_bytes(bytes(data))
    source, log = load(path)
    it = read_lines(source, log, chunk_size=4096)
    for _ in range(50):
        next(it)
    with pytest.raises(CodecError, match="checksum|decompress"):
        list(it)


# --- codec sniffing ------------------------------------------------------------------------------


def test_wrong_suffix_is_decoded_by_magic_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, full: dict[str, Read]
) -> None:
    shutil.copyfile(EVENTLOGS / FINISHED["zstd"], tmp_path / "app.lz4")
    with caplog.at_level(logging.WARNING, logger="sparkhist.reader"):
        lines = read(tmp_path / "app.lz4")
    assert lines == full[FINISHED["zstd"]]
    assert "app.lz4" in caplog.text and "zstd" in caplog.text


@pytest.mark.parametrize(("codec", "suffix"), [("snappy", ".zstd"), ("lz4", ""), (None, ".lzf"), ("zstd", ".snappy")])
def test_wrong_suffix_resumes_mid_file(codec: str | None, suffix: str, tmp_path: Path, full: dict[str, Read]) -> None:
    """Resuming needs the real codec again, even where the block boundary shows no magic."""
    path = tmp_path / f"app{suffix}"
    shutil.copyfile(EVENTLOGS / FINISHED[codec], path)
    lines = read(path)
    assert lines == full[FINISHED[codec]]
    for i in chosen(lines, str(codec)):
        assert read(path, lines[i][1]) == lines[i + 1 :]


# --- limits and errors --------------------------------------------------------------------------


def test_long_lines_are_skipped_and_counted(full: dict[str, Read], caplog: pytest.LogCaptureFixture) -> None:
    expected = full[FINISHED["zstd"]]
    long_numbers = [p.line for line, p in expected if len(line) > 20_000]
    assert long_numbers
    stats = ReadStats()
    with caplog.at_level(logging.WARNING, logger="sparkhist.reader"):
        got = read(EVENTLOGS / FINISHED["zstd"], max_line=20_000, stats=stats)
    assert got == [(line, p) for line, p in expected if len(line) <= 20_000]
    assert stats.skipped_lines == len(long_numbers)
    assert stats.lines == len(got)
    assert f"line {long_numbers[0]} is" in caplog.text and FINISHED["zstd"] in caplog.text


def test_resume_beyond_the_file_is_a_log_error() -> None:
    path = EVENTLOGS / FINISHED[None]
    with pytest.raises(LogError, match="beyond the file's size"):
        read(path, Position(0, 10**9, 0, 0))
    with pytest.raises(LogError, match="names file 3"):
        read(path, Position(3, 0, 0, 0))
    size = path.stat().st_size
    with pytest.raises(LogError, match="beyond the end of the data"):
        read(EVENTLOGS / FINISHED["zstd"], Position(0, 0, 10**9, 0))
    assert read(path, Position(0, size, 0, 101)) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("suffix", ["", ".lz4", ".lzf", ".snappy", ".zstd", ".zstd.inprogress", ".lz4.inprogress", ".inprogress"])
def test_garbage_files_fail_cleanly(suffix: str, tmp_path: Path) -> None:
    rng = random.Random(suffix)
    for n in range(20):
        path = tmp_path / f"garbage-{n}{suffix}"
        path.write_bytes(rng.randbytes(rng.choice([1, 7, 100, 5000, 200_000])))
        stats = ReadStats()
        try:
            for _ in read_lines(*load(path), stats=stats, max_line=1000):
                pass
        except CodecError:
            pass
        assert stats.bytes_read <= path.stat().st_size


# --- memory -----------------------------------------------------------------------------------


def write_big_log(path: Path, size: int) -> int:
    line = b'{"Event":"SparkListenerTaskEnd","Task Info":{"Task ID":1,"Pad":"' + b"x" * 900 + b'"}}\n'
    block = line * 1024
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
    return size // len(block) * 1024


@pytest.mark.slow
def test_big_log_reads_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big"
    count = write_big_log(path, 200 << 20)
    source, log = load(path)
    stats = ReadStats()
    tracemalloc.start()
    try:
        n = sum(1 for _ in read_lines(source, log, stats=stats, chunk_size=1 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == count == stats.lines
    assert peak < 32 << 20, peak

