"""The listing pass's reads: one log from its resume position, here or on worker processes.

A read gives the log's listing events applied on top of its previous listing, the
position after the last line and what it cost; the scanner makes the record of it. Many
logs to read (a first scan, thousands of new logs) are read by worker processes, both
cores decompressing and filtering at once while the scanning process only makes records:
the reads no longer wait for the interpreter lock that the server's other threads hold.
The workers live for one listing pass (spawned, as the indexing workers are, and for the
same reason); the full indexing that follows has its own pool.
"""

from __future__ import annotations

import copy
import io
import logging
import multiprocessing
import os
from collections.abc import Generator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson

from sparkhist.errors import LogError, SourceError
from sparkhist.events.listing import LISTING_PREFIXES, AttemptListing, apply_listing_line
from sparkhist.reader.position import START, Position
from sparkhist.reader.stream import ReadStats, read_lines, read_tail_lines
from sparkhist.reader.tail import tail_start
from sparkhist.scan import changes
from sparkhist.source.base import ByteStream, Source

if TYPE_CHECKING:
    from sparkhist.source.factory import SourceOptions

log = logging.getLogger("sparkhist.scan")

#: Fewer logs to read than this are read in the scanning process (a worker's start costs more).
PARALLEL_MIN = 256
#: Stored bytes read at a time up to the halt (the events it needs are in a log's first kilobytes).
HEAD_CHUNK = 32 << 10
#: A completed log's last file up to this size is read once, whole, by the head-and-tail read.
HOLD_MAX = 4 << 20
#: Logs per task handed to a worker: results come back (and records are made) a chunk at a time.
CHUNK = 32


@dataclass(slots=True)
class ListingRead:
    """What reading one log gave the listing pass."""

    listing: AttemptListing
    position: Position  # after the last line read (the start when nothing was read)
    bytes_read: int = 0
    lines: int = 0
    error: str | None = None  # damaged data (LogError): the lines before it count
    failure: SourceError | None = None  # the source failed: nothing of this read counts


def read_listing(source: Source, item: changes.Work) -> ListingRead:
    """Read ``item``'s log from its resume position, applying the listing events to its listing.

    A completed log read from its start is read as the SHS reads it (SHS_REFERENCE §2.3):
    from its start until the listing has the application id and the first environment
    update (``AppListingListener``'s halt), then only the tail of its last file
    (:mod:`sparkhist.reader.tail`: the units before it skipped by their headers, a rolling
    log's middle files never opened). The position is the one a read of the whole log
    ends at, so the next scan reads on from there. When the tail holds no end event, or
    the skip cannot be made (a damaged unit header, damage in the tail), the whole log is
    read, as the SHS re-parses it. Damage inside a unit skipped by its header is not seen.
    """
    if item.start == START and not item.log.in_progress:
        fresh = copy.copy(item.listing)  # the whole read's start, should the skip fail
        read = _read_head_and_tail(source, item)
        if read is not None:
            return read
        item = changes.Work(item.log, item.start, fresh, item.reason)
    stats = ReadStats()
    return _read(source, item, read_lines(source, item.log, item.start, stats=stats, only=LISTING_PREFIXES), item.start,
                 stats)


def _read(source: Source, item: changes.Work, lines: Generator[tuple[bytes, Position]], start: Position,
          stats: ReadStats, *, halt: bool = False) -> ListingRead:
    """The listing events of ``lines`` applied to ``item.listing``; ``halt``: stop where the SHS
    halts (the application id and the first environment update known, checked after the events
    that set them)."""
    event_log = item.log
    listing = item.listing
    position = start
    error: str | None = None
    try:
        for line, after in lines:
            try:
                applied = apply_listing_line(listing, line)
            except orjson.JSONDecodeError as exc:
                name = event_log.files[position.file_index].name
                log.warning("%s line %d: malformed JSON skipped (%s)", name, after.line, exc)
                applied = False
            position = after
            if halt and applied and listing.got_env and listing.app_id is not None:
                break
    except LogError as exc:
        error = str(exc)
        log.info("log %s: %s (using the %d lines before it)", event_log.path, exc, position.line)  # the skip warns
    except SourceError as exc:
        return ListingRead(listing, position, failure=exc)
    finally:
        lines.close()  # a read stopped early closes its file now, not at garbage collection
    return ListingRead(listing, position, stats.bytes_read, stats.lines, error)


def _read_head_and_tail(source: Source, item: changes.Work) -> ListingRead | None:
    """The head (to the SHS's halt) and the tail of a completed log; None when the whole log
    must be read: no end event in the tail, damage in the head or the tail, a header walk that
    failed. A source failure is returned as the read's failure, as a whole read's is."""
    event_log = item.log
    stats = ReadStats()
    last = event_log.files[-1]
    held: _HeldFile | None = None
    if last.size <= HOLD_MAX:
        # Read once: the head (when in this file), the walk and the tail are read from memory.
        try:
            with source.open(last.path) as stream:
                data = stream.read(last.size)
        except SourceError as exc:
            return ListingRead(item.listing, START, failure=exc)
        held = _HeldFile(source, last.path, data)
        source = cast(Source, held)
        stats.bytes_read += len(data)  # what was read from the source; the reads of ``held`` are not
    read = _head_then_tail(source, item, stats)
    if read is not None and held is not None:
        read.bytes_read -= held.served
    return read


def _head_then_tail(source: Source, item: changes.Work, stats: ReadStats) -> ListingRead | None:
    event_log = item.log
    lines = read_lines(source, event_log, START, stats=stats, chunk_size=HEAD_CHUNK, only=LISTING_PREFIXES)
    head = _read(source, item, lines, START, stats, halt=True)
    if head.failure is not None or head.error is not None:
        return head if head.failure is not None else None
    listing = head.listing
    if not (listing.got_env and listing.app_id is not None):
        return head  # read to its end without a halt: the whole log
    try:
        start = tail_start(source, event_log, head.position, stats)
    except LogError:
        return None
    except SourceError as exc:
        return ListingRead(listing, head.position, failure=exc)
    if start is None:  # the rest is no longer than a tail: read on
        rest = read_lines(source, event_log, head.position, stats=stats, only=LISTING_PREFIXES)
    else:
        rest = read_tail_lines(source, event_log, start, stats=stats, only=LISTING_PREFIXES)
    tail = _read(source, item, rest, head.position, stats)
    if start is not None and tail.failure is None and (tail.error is not None or not tail.listing.completed):
        return None  # the skipped part may hold what the tail lacks: the whole read decides
    return tail


class _HeldFile:
    """``source`` with one file's stored bytes held in memory: opening it reads from them.
    ``served`` counts the bytes its streams gave (read once from the source, not again)."""

    def __init__(self, source: Source, path: str, data: bytes) -> None:
        self._source = source
        self._path = path
        self._data = data
        self.served = 0

    def open(self, path: str, offset: int = 0) -> ByteStream:
        if path != self._path:
            return self._source.open(path, offset)
        return _HeldStream(self, offset)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


class _HeldStream(io.BytesIO):
    def __init__(self, held: _HeldFile, offset: int) -> None:
        super().__init__(held._data)  # shares the bytes, no copy
        self.seek(offset)
        self._held = held

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self._held.served += len(data)
        return data


class ListingPool:
    """Worker processes reading for one listing pass, each with its own source (``root``, ``options``)."""

    def __init__(self, root: str, options: SourceOptions | None, workers: int) -> None:
        from sparkhist.scan.workers import _die_with_parent

        self.root = root
        self.options = options
        self.workers = workers
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_die_with_parent, initargs=(os.getpid(),))

    def start(self) -> None:
        """Start every worker now, each opening its source: their start (an interpreter and its
        imports) overlaps what the scan does before its first read (listing the rolling directories)."""
        for _ in range(self.workers):
            self._pool.submit(_read_in_worker, self.root, self.options, [])

    def read(self, work: list[changes.Work]) -> Generator[tuple[changes.Work, ListingRead | BaseException]]:
        """Each log of ``work`` read by the workers, in order; a failed task fails its logs."""
        chunks = [work[i : i + CHUNK] for i in range(0, len(work), CHUNK)]
        futures: list[Future[list[ListingRead]]] = []
        try:
            for chunk in chunks:
                futures.append(self._pool.submit(_read_in_worker, self.root, self.options, chunk))
        except Exception as exc:  # noqa: BLE001 - broken already (a worker died starting): reported per log
            for future in futures:
                future.cancel()
            for item in work:
                yield item, exc
            return
        try:
            for chunk, future in zip(chunks, futures, strict=True):
                try:
                    reads: list[ListingRead] | BaseException = future.result()
                except Exception as exc:  # noqa: BLE001 - a broken pool: reported per log by the caller
                    reads = exc
                for i, item in enumerate(chunk):
                    yield item, reads if isinstance(reads, BaseException) else reads[i]
        finally:
            for future in futures:
                future.cancel()  # a stop: reads not started are not run

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_source: Source | None = None  # this worker's source


def _read_in_worker(root: str, options: SourceOptions | None, items: list[changes.Work]) -> list[ListingRead]:
    global _source
    if _source is None:
        from sparkhist.source.factory import open_source

        _source = open_source(root, options)
    return [read_listing(_source, item) for item in items]
