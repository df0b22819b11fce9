"""Event log → complete lines, each with the position a later read resumes from.

A log is read file by file (each events file of a rolling log is an independent
compressed stream), in chunks, and never past the size recorded in its
:class:`~sparkhist.reader.layout.EventLog`: the file may be growing, and bytes
beyond the stat'ed size belong to the next read.

The end of the data is handled as Spark's ``ReplayListenerBus`` does (SHS_REFERENCE
§2.5): for the file still being written (the last file of an in-progress log) an
unterminated last line and a partial last block are left for the next read; in a
finished file an unterminated last line is a real line, while a partial last block
is logged and dropped (a rolling log then goes on with its next file: each file is
an independent stream). Damage before the end raises
:class:`~sparkhist.errors.CodecError` once every line before it has been yielded.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Generator, Iterator
from dataclasses import dataclass

from sparkhist.errors import LogError
from sparkhist.reader.codecs import Piece, fits_mid_file, make_decoder, resolve_codec
from sparkhist.reader.layout import EventLog
from sparkhist.reader.lines import DEFAULT_MAX_LINE, LineSplitter
from sparkhist.reader.position import START, Position
from sparkhist.source.base import ByteStream, FileEntry, Source

logger = logging.getLogger("sparkhist.reader")

__all__ = ["ReadStats", "read_lines", "read_tail_lines"]

#: Enough leading bytes to recognise any codec's magic.
HEAD_SIZE = 16


@dataclass
class ReadStats:
    """Counters of one read, up to date whenever a line is yielded."""

    files_opened: int = 0
    bytes_read: int = 0  # stored bytes
    lines: int = 0  # lines yielded
    skipped_lines: int = 0  # lines longer than ``max_line``
    truncated_tail: bool = False  # a file ended inside a compressed block or frame


def read_lines(
    source: Source,
    log: EventLog,
    start: Position = START,
    *,
    stats: ReadStats | None = None,
    chunk_size: int = 1 << 20,
    max_line: int = DEFAULT_MAX_LINE,
    only: tuple[bytes, ...] | None = None,
) -> Generator[tuple[bytes, Position], None, None]:
    """Yields each complete line of ``log`` after ``start``, with the position just after it.

    Lines come without ``\\n`` (nor a ``\\r`` before it). Resuming from any yielded
    position yields exactly the lines that followed it. When nothing is yielded,
    ``start`` remains the resume point.

    ``only``: line prefixes the caller wants (the listing pass wants four event types
    out of every hundred lines). Other lines may be left out, except the last of each
    decoded block, so the last position yielded is the same as without the filter;
    what the caller receives must still be checked against the prefixes. Every line
    is counted in ``stats`` either way. At most ``chunk_size`` stored bytes, one
    block and one line (up to ``max_line``) are held at a time.

    Raises :class:`~sparkhist.errors.CodecError` on damaged data, once the lines
    before it are yielded, and :class:`~sparkhist.errors.LogError` when ``start``
    does not fit the log (the file shrank or was replaced).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    if not 0 <= start.file_index < len(log.files):
        raise LogError(f"{log.path}: resume position {start} names file {start.file_index} of {len(log.files)}")
    stats = ReadStats() if stats is None else stats
    lines = start.line
    for index in range(start.file_index, len(log.files)):
        begin = start if index == start.file_index else Position(index, 0, 0, lines)
        lines = yield from _FileReader(source, log, begin, stats, chunk_size, max_line, only).read()


def read_tail_lines(
    source: Source,
    log: EventLog,
    start: Position,
    *,
    stats: ReadStats | None = None,
    chunk_size: int = 1 << 20,
    max_line: int = DEFAULT_MAX_LINE,
    only: tuple[bytes, ...] | None = None,
) -> Generator[tuple[bytes, Position], None, None]:
    """:func:`read_lines` of one file from a restart point that need not follow a line:
    ``start`` (its ``skip`` 0) names a block or frame boundary of ``log.files[start.file_index]``
    (:func:`sparkhist.reader.tail.tail_start`), and the bytes up to the first ``\n`` after it,
    the rest of a line that began before it, are dropped, as the SHS drops the first line
    after its skip. Only that file is read. The positions yielded are exact resume points;
    their ``line`` counts ``start.line`` plus the lines read here (the lines skipped are not
    counted).
    """
    if not 0 <= start.file_index < len(log.files) or start.skip:
        raise LogError(f"{log.path}: {start} is no restart point of a file of the log")
    stats = ReadStats() if stats is None else stats
    yield from _FileReader(source, log, start, stats, chunk_size, max_line, only, partial_first=True).read()


class _FileReader:
    """Reads one events file from a position: opens, sniffs, decodes, splits."""

    def __init__(self, source: Source, log: EventLog, start: Position, stats: ReadStats, chunk_size: int, max_line: int,
                 only: tuple[bytes, ...] | None = None, *, partial_first: bool = False) -> None:
        self.source = source
        self.only = only
        self.log = log
        self.entry: FileEntry = log.files[start.file_index]
        self.start = start
        self.stats = stats
        self.chunk_size = chunk_size
        #: Only the last file of an in-progress log is still being written.
        self.growing = log.in_progress and start.file_index == len(log.files) - 1
        self.splitter = LineSplitter(max_line, name=self.entry.path, lines_before=start.line)
        self._to_drop = start.skip  # decoded bytes still to drop to reach the start
        self._partial = partial_first  # the decoded bytes up to the first \n are still to drop
        self._last: tuple[Piece, int] | None = None  # the last piece fed, and its decoded start
        self._skipped_counted = 0

    def read(self) -> Generator[tuple[bytes, Position], None, int]:
        """Yields the file's lines; returns the count of lines consumed in the log so far."""
        path, size, offset = self.entry.path, self.entry.size, self.start.offset
        if offset > size:
            raise LogError(f"{path}: resume offset {offset} is beyond the file's size {size}")
        if offset < size:
            truncated = yield from self._decode()
            if truncated:
                self.stats.truncated_tail = True
                if not self.growing:
                    logger.warning("%s: ends inside a compressed block or frame; the partial block is ignored", path)
            elif self._to_drop:
                raise LogError(f"{path}: resume position {self.start} lies beyond the end of the data")
            elif not self.growing:
                yield from self._unterminated_tail()
        self._count_skipped()
        return self.splitter.lines

    def _decode(self) -> Generator[tuple[bytes, Position], None, bool]:
        """Yields the complete lines; returns whether the data ended inside a block."""
        offset = self.start.offset
        with self.source.open(self.entry.path, offset) as stream:
            self.stats.files_opened += 1
            chunks = self._chunks(stream, self.entry.size - offset)
            head = next(chunks, b"")
            decoder = make_decoder(self._codec(head), name=self.entry.path, offset=offset)
            splitter, stats, file_index = self.splitter, self.stats, self.start.file_index
            for chunk in itertools.chain([head], chunks):
                for piece in decoder.decode(chunk):
                    if self._to_drop:
                        cut = min(self._to_drop, len(piece.data))
                        piece, self._to_drop = piece.drop(cut), self._to_drop - cut
                    if self._partial and piece.data:
                        newline = piece.data.find(b"\n")
                        self._partial = newline < 0
                        piece = piece.drop(len(piece.data) if newline < 0 else newline + 1)
                    if not piece.data:
                        continue
                    base = splitter.offset
                    only = self.only
                    if only is not None:
                        # Unwanted lines are found and counted, never split out; the last one
                        # still carries the position.
                        before = splitter.lines
                        found = splitter.feed_only(piece.data, only)
                        if found is not None:
                            stats.lines += splitter.lines - before
                            wanted, wanted_ends, numbers = found
                            if wanted:
                                self._count_skipped()  # lines skipped by an earlier feed
                            for data, end, number in zip(wanted, wanted_ends, numbers, strict=True):
                                yield data, Position(file_index, *piece.resume_point(end - base), number)
                            self._last = (piece, base)
                            continue
                    batch = splitter.feed_batch(piece.data)
                    if batch is None:  # long lines or \r\n endings: the general path
                        for line in splitter.feed(piece.data):
                            yield self._emit(line.data, piece, line.end - base, line.number)
                    else:
                        lines, ends, number = batch
                        if lines:
                            self._count_skipped()  # lines skipped by an earlier feed
                        resume_point = piece.resume_point
                        if only is not None and lines:
                            # Unwanted lines are only counted; the last one still carries the position.
                            last = len(lines) - 1
                            stats.lines += len(lines)
                            for i, data in enumerate(lines):
                                if i == last or data.startswith(only):
                                    yield data, Position(file_index, *resume_point(ends[i] - base), number + i + 1)
                        else:
                            for data, end in zip(lines, ends, strict=True):
                                number += 1
                                stats.lines += 1
                                yield data, Position(file_index, *resume_point(end - base), number)
                    self._last = (piece, base)
        return decoder.truncated

    def _unterminated_tail(self) -> Iterator[tuple[bytes, Position]]:
        """A finished file's last line, which needs no ``\n`` to be complete."""
        tail = self.splitter.finish()
        if tail is not None and self._last is not None:
            piece, base = self._last
            yield self._emit(tail.data, piece, tail.end - base, tail.number)

    def _emit(self, data: bytes, piece: Piece, k: int, number: int) -> tuple[bytes, Position]:
        self.stats.lines += 1
        self._count_skipped()
        offset, skip = piece.resume_point(k)
        return data, Position(self.start.file_index, offset, skip, number)

    def _count_skipped(self) -> None:
        self.stats.skipped_lines += self.splitter.skipped - self._skipped_counted
        self._skipped_counted = self.splitter.skipped

    def _chunks(self, stream: ByteStream, remaining: int) -> Iterator[bytes]:
        """The stored bytes up to the recorded size: first a head of at least HEAD_SIZE
        bytes when available (for sniffing), then ``chunk_size`` reads."""
        want = max(HEAD_SIZE, self.chunk_size)
        while remaining > 0:
            data = stream.read(min(want, remaining))
            if not data:
                return  # the file shrank since it was listed
            self.stats.bytes_read += len(data)
            remaining -= len(data)
            yield data
            want = self.chunk_size

    def _codec(self, head: bytes) -> str | None:
        """The codec of this file, by its magic. Resuming mid-file, ``head`` starts at a
        block boundary, where lz4, lzf and zstd repeat their magic and plain text has a
        JSON line; snappy blocks carry none. When that agrees with the file's name, the
        name's codec it is; otherwise the file's own head decides, as on the first read
        (a damaged file may hold another codec's magic mid-file)."""
        declared = self.log.codec
        if self.start.offset:
            if fits_mid_file(declared, head):
                return declared
            with self.source.open(self.entry.path, 0) as stream:
                self.stats.files_opened += 1
                head = stream.read(HEAD_SIZE)
                self.stats.bytes_read += len(head)
        return resolve_codec(declared, head, self.entry.path)
