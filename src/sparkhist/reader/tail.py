"""Where a read of a finished file's tail starts: its last units, found without decoding.

The SHS finds a completed application's end event by skipping to 1 MiB (decoded) before
the end of the log's last file and replaying from there (SHS_REFERENCE §2.3); it pays
decompression for the skip. Spark's compressed logs are many independent units (a zstd
frame per flush, lz4/snappy/lzf blocks), each header giving the unit's stored length,
so the units before the tail are skipped by walking their headers
(:func:`~sparkhist.reader.codecs.walk_units`) and nothing before the tail is decoded.
Plain text is seeked into, as the SHS does.

The tail is the shortest run of last units holding at least :data:`TAIL_UNITS` units
with data and :data:`TAIL_DECODED` decoded bytes: the end event is the log's last line,
so the bound only has to leave room for a few events after it. A zstd frame's header
rarely holds its decoded size (zstd-jni streams); such a frame counts as
:data:`ESTIMATED_RATIO` times its stored size.
"""

from __future__ import annotations

from sparkhist.errors import CodecError
from sparkhist.reader.codecs import UnitSpan, fits_mid_file, resolve_codec, walk_units
from sparkhist.reader.layout import EventLog
from sparkhist.reader.position import Position
from sparkhist.reader.stream import HEAD_SIZE, ReadStats
from sparkhist.source.base import Source

__all__ = ["ESTIMATED_RATIO", "PLAIN_TAIL", "TAIL_DECODED", "TAIL_UNITS", "choose_tail", "tail_start"]

#: Units with data a tail holds at least.
TAIL_UNITS = 2
#: Decoded bytes a tail holds at least.
TAIL_DECODED = 64 << 10
#: A unit whose header does not give its decoded size counts as this many times its stored size.
ESTIMATED_RATIO = 8
#: A plain file's tail: the SHS's ``spark.history.fs.endEventReparseChunkSize`` default.
PLAIN_TAIL = 1 << 20
#: Stored bytes read at a time by the walk.
_CHUNK = 1 << 20


def choose_tail(units: list[UnitSpan]) -> int | None:
    """The index in ``units`` where the tail starts, None when the units do not hold a tail."""
    count = decoded = 0
    for i in range(len(units) - 1, -1, -1):
        unit = units[i]
        if unit.decoded == 0:
            continue  # a stream header, an end-of-stream block, a skippable frame
        count += 1
        decoded += ESTIMATED_RATIO * unit.length if unit.decoded is None else unit.decoded
        if count >= TAIL_UNITS and decoded >= TAIL_DECODED:
            return i
    return None


def tail_start(source: Source, log: EventLog, after: Position, stats: ReadStats) -> Position | None:
    """Where the tail of ``log``'s last file starts, to be read with
    :func:`~sparkhist.reader.stream.read_tail_lines`; ``after`` is where a read from the log's
    start stopped (the tail lies beyond it). None when the rest of the file is no longer than
    a tail: reading on from ``after`` is as cheap, and exact.

    The stored bytes from ``after`` (or the last file's start) are read, never decoded.
    Raises :class:`~sparkhist.errors.CodecError` when a unit header is damaged or the file
    is not in the codec its name (or its magic) says.
    """
    last = len(log.files) - 1
    entry = log.files[last]
    begin = after.offset if after.file_index == last else 0
    if after.file_index > last or begin >= entry.size:
        return None
    if log.codec is None and begin:
        return _plain(last, entry.size, begin, after)  # the head's read of this file found text
    units: list[UnitSpan] = []
    with source.open(entry.path, begin) as stream:
        stats.files_opened += 1
        codec: str | None = None
        pending = b""
        base = begin
        remaining = entry.size - begin
        want = HEAD_SIZE if log.codec is None else _CHUNK  # the magic first, when the name says text
        while remaining > 0:
            chunk = stream.read(min(want, remaining))
            want = _CHUNK
            if not chunk:
                break  # the file shrank since it was listed: the tail read sees it too
            stats.bytes_read += len(chunk)
            remaining -= len(chunk)
            data = pending + chunk if pending else chunk
            if codec is None:
                codec = _codec(log, data[:HEAD_SIZE], begin, entry.path)
                if codec is None:
                    return _plain(last, entry.size, begin, after)
            found = walk_units(codec, data, base, name=entry.path)
            used = found[-1].offset + found[-1].length - base if found else 0
            units += found
            pending = data[used:]
            base += used
    index = choose_tail(units)
    if index is None or units[index].offset <= begin:
        return None
    return Position(last, units[index].offset, 0, after.line)


def _plain(last: int, size: int, begin: int, after: Position) -> Position | None:
    """A text file's tail: its last :data:`PLAIN_TAIL` bytes (every byte is a restart point)."""
    start = max(begin, size - PLAIN_TAIL)
    return Position(last, start, 0, after.line) if start > begin else None


def _codec(log: EventLog, head: bytes, offset: int, path: str) -> str | None:
    """The codec of the walk, as the reader decides it (its ``_FileReader._codec``), except that a
    mid-file head that does not fit the name is damage here (the whole read then decides)."""
    declared = log.codec
    if offset == 0:
        return resolve_codec(declared, head, path)
    if fits_mid_file(declared, head):
        return declared
    raise CodecError(f"{path}: no {declared} unit at offset {offset}")
