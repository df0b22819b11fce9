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

import logging
import multiprocessing
import os
from collections.abc import Generator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from sparkhist.errors import LogError, SourceError
from sparkhist.events.listing import LISTING_PREFIXES, AttemptListing, apply_listing_line
from sparkhist.reader.position import Position
from sparkhist.reader.stream import ReadStats, read_lines
from sparkhist.scan import changes
from sparkhist.source.base import Source

if TYPE_CHECKING:
    from sparkhist.source.factory import SourceOptions

log = logging.getLogger("sparkhist.scan")

#: Fewer logs to read than this are read in the scanning process (a worker's start costs more).
PARALLEL_MIN = 256
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
    """Read ``item``'s log from its start, applying the listing events to its listing."""
    event_log = item.log
    listing = item.listing
    position = item.start
    stats = ReadStats()
    error: str | None = None
    lines = read_lines(source, event_log, item.start, stats=stats, only=LISTING_PREFIXES)
    try:
        for line, after in lines:
            try:
                apply_listing_line(listing, line)
            except orjson.JSONDecodeError as exc:
                name = event_log.files[position.file_index].name
                log.warning("%s line %d: malformed JSON skipped (%s)", name, after.line, exc)
            position = after
    except LogError as exc:
        error = str(exc)
        log.info("log %s: %s (using the %d lines before it)", event_log.path, exc, position.line)  # the skip warns
    except SourceError as exc:
        return ListingRead(listing, position, failure=exc)
    finally:
        lines.close()  # a read stopped early closes its file now, not at garbage collection
    return ListingRead(listing, position, stats.bytes_read, stats.lines, error)


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
