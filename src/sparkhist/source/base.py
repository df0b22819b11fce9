"""The Source protocol: what the scanner, the reader and the cleaner need from a file system.

A source lists a directory, stats an entry and opens a file from a byte offset; its one
write is :meth:`Source.delete` (the cleaner's). Besides, every source keeps the same
bookkeeping: :attr:`Source.calls` (calls made, per operation), :attr:`Source.skipped`
(entries left out, with why: :mod:`sparkhist.source.skipped`), :meth:`Source.health`
(a :class:`SourceHealth`) and :meth:`Source.close` (release connections and threads).

A listing never fails because of one entry: an entry that cannot be used is left out
and reported to :attr:`Source.skipped`.

Every method raises :class:`~sparkhist.errors.SourceError` subclasses only: a backend's
exceptions are translated in :mod:`sparkhist.source.faults`, re-raised ``from`` the
original.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, NotRequired, Protocol, Self, TypedDict

from sparkhist.source.skipped import SkippedLogs

__all__ = ["BreakerHealth", "ByteStream", "FileEntry", "HealthState", "Source", "SourceHealth"]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One directory entry as a source reports it."""

    path: str  # full path (or URL) of the entry; the catalog key
    name: str  # last path component
    size: int  # bytes; 0 for directories
    mtime_ms: int  # modification time, ms since the epoch (only to order work)
    is_dir: bool
    etag: str | None = None  # an object store's ETag (with the size, what tells a rewritten object)


class ByteStream(Protocol):
    """What :meth:`Source.open` returns: bytes read front to back, closed after use.

    A local file (``open(path, "rb")``) and :class:`~sparkhist.source.ranged.RangeStream`
    both are one; callers use it as a context manager and call ``read`` only.
    """

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (``b""`` at the end); everything left for -1."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None, /
    ) -> None: ...


#: A source's own view of itself (``ok``: the last call answered; ``degraded``: a call
#: failed lately or the breaker is trying again; ``offline``: the breaker is open).
HealthState = Literal["ok", "degraded", "offline"]


class BreakerHealth(TypedDict):
    """A circuit breaker's state (:class:`~sparkhist.resilience.breaker.CircuitBreaker`)."""

    state: str  # closed | half_open | open
    opened_at: float | None  # monotonic clock of the last move to open
    consecutive_failures: int
    transitions: dict[str, int]  # new state -> count
    retry_after: float  # seconds until the next trial call (0 unless open)


class SourceHealth(TypedDict):
    """What :meth:`Source.health` reports: the common keys, then each backend's extras."""

    source: str  # the endpoint: a nameservice, NameNode hosts, a directory
    state: HealthState
    since: float | None  # epoch seconds the state began; None: the source keeps no state
    last_error: str | None
    last_error_at: float | None  # epoch seconds
    breaker: BreakerHealth | None  # None: no circuit breaker (local disk)
    # Guarded sources (source.guard: HDFS, WebHDFS, object stores).
    calls: NotRequired[dict[str, int]]  # op -> attempts made
    failures: NotRequired[dict[str, int]]  # op -> attempts that failed as unavailable
    fast_failures: NotRequired[int]  # calls refused by the open breaker
    throttled: NotRequired[dict[str, int]]  # op -> attempts answered "slow down" (object stores)
    # HDFS.
    namenode_order: NotRequired[builtins.list[str]]  # current try order (HA ids)
    client_rebuilds: NotRequired[int]
    hung_calls: NotRequired[int]  # abandoned calls whose thread is still blocked
    webhdfs: NotRequired[SourceHealth]  # the in-progress tail's own guard
    # WebHDFS.
    namenodes: NotRequired[builtins.list[str]]
    active_namenode: NotRequired[str]
    # Object stores (S3, GCS, Azure).
    endpoint: NotRequired[str]  # where requests go (an URL, or the provider's default)
    bucket: NotRequired[str]  # the bucket or container


class Source(Protocol):
    """What the scanner, the reader and the cleaner need from a file system."""

    @property
    def root(self) -> str:
        """Display form of the log directory (e.g. ``file:/data/spark-events``)."""
        ...

    @property
    def root_path(self) -> str:
        """The log directory as this source's own path, for ``list``."""
        ...

    @property
    def calls(self) -> Mapping[str, int]:
        """Cumulative calls made per operation (``list``, ``stat``, ``open``, ...)."""
        ...

    @property
    def skipped(self) -> SkippedLogs:
        """Entries left out of listings or read only in part, with why (the scanner reports its own there)."""
        ...

    def list(self, path: str) -> builtins.list[FileEntry]:
        """The entries directly under ``path`` (not recursive)."""
        ...

    def stat(self, path: str) -> FileEntry:
        """One entry."""
        ...

    def open(self, path: str, offset: int = 0) -> ByteStream:
        """A binary stream of ``path`` from ``offset`` to its current end."""
        ...

    def delete(self, path: str) -> None:
        """Delete a file or a directory tree (the cleaner's only write); a missing path is no error."""
        ...

    def join(self, parent: str, name: str) -> str:
        """The path of ``name`` inside ``parent``."""
        ...

    def health(self) -> SourceHealth:
        """The source's own view of its endpoint, for ``/health`` and metrics."""
        ...

    def close(self) -> None:
        """Release connections and threads; a second call does nothing."""
        ...
