"""Rendered answers of finished applications, kept so a repeated request is a lookup.

A dashboard, the web UI or 50 clients asking a big application's ``/stages`` all ask
the same few paths; rendering one from the state costs tens of milliseconds each time,
sending kept bytes well under one. An answer is kept only for a *completed* attempt
and keyed by what decides it: the attempt's log (path, size and ``lastUpdated``: a log
that grows or is replaced gets new keys) and the request's path and query string.
Running attempts are never kept: part of their answers follows the clock.

The cache holds at most ``max_bytes`` of bodies (least recently used out first); a
body over a quarter of that is not kept at all, so one huge task list cannot empty it.

A kept body is also sent gzip-compressed to a client that accepts it, as the SHS's Jetty
(its ``GzipHandler``) sends every answer of 32 bytes or more; Jetty compresses each time,
a kept body is compressed once, on the first such request (:class:`KeptBody`), and the
compressed copy (about a tenth of the body for JSON) lives and goes with it. The compression
is ISA-L's (``isal``, level 2): 12-17 times less CPU than zlib's level 6 on the API's JSON
(0.6 against 7-10 ms for 0.5-0.7 MB), for an answer about a third larger. What it saves
counts where a body is made for few requests: the application list while a scan lists new
logs is a new body at nearly every poll (23 against 1.2 ms at 10,000 applications).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass

from isal import igzip

#: Default bound of the kept bodies.
DEFAULT_MAX_BYTES = 32 << 20


#: Shorter bodies are sent as they are: Jetty's ``GzipHandler`` default ``minGzipSize``, which the SHS keeps.
GZIP_MIN_BYTES = 32
#: ISA-L's levels are 0-3; 2 is its default and about zlib's level 1 in size.
GZIP_LEVEL = 2


class KeptBody:
    """An encoded answer kept to be sent again, and its gzip-compressed bytes, made once when first asked for."""

    __slots__ = ("_gzipped", "body")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._gzipped: bytes | None = None

    @property
    def compressed(self) -> bytes | None:
        """The gzip-compressed body if made already, else None (:meth:`gzipped` makes it)."""
        return self._gzipped

    def gzipped(self) -> bytes:
        """The body gzip-compressed (made on the first call; two racing calls make the same bytes)."""
        if self._gzipped is None:
            self._gzipped = igzip.compress(self.body, compresslevel=GZIP_LEVEL, mtime=0)
        return self._gzipped


@dataclass(frozen=True, slots=True)
class RenderedJson:
    """A JSON answer already encoded (sent as is, or compressed once when the client accepts it)."""

    kept: KeptBody

    @property
    def body(self) -> bytes:
        return self.kept.body


@dataclass(frozen=True, slots=True)
class StreamedJson:
    """A JSON answer encoded while it is sent, in pieces (see :meth:`ResponseCache.keep`)."""

    chunks: Iterator[bytes]


class ResponseCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[Hashable, KeptBody] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, key: Hashable, *, count_miss: bool = True) -> RenderedJson | None:
        with self._lock:
            kept = self._bodies.get(key)
            if kept is None:
                if count_miss:
                    self.misses += 1
                return None
            self._bodies.move_to_end(key)
            self.hits += 1
            return RenderedJson(kept)

    def put(self, key: Hashable, body: bytes) -> RenderedJson:
        kept = KeptBody(body)
        if len(body) <= self.max_bytes // 4:
            with self._lock:
                old = self._bodies.pop(key, None)
                if old is not None:
                    self.bytes -= len(old.body)
                self._bodies[key] = kept
                self.bytes += len(body)
                while self.bytes > self.max_bytes:
                    _, dropped = self._bodies.popitem(last=False)
                    self.bytes -= len(dropped.body)
                    self.evictions += 1
        return RenderedJson(kept)

    def keep(self, key: Hashable, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """``chunks`` passed through; once all are sent, their body is kept (:meth:`put`)
        if it is small enough to be, else nothing of it is held past a quarter of the bound.
        An answer not sent to its end (the client went away) is not kept."""
        limit = self.max_bytes // 4
        kept: list[bytes] | None = []
        size = 0
        for chunk in chunks:
            if kept is not None:
                size += len(chunk)
                if size <= limit:
                    kept.append(chunk)
                else:
                    kept = None
            yield chunk
        if kept is not None:
            self.put(key, b"".join(kept))

    def forget(self, log_path: str) -> None:
        """Drop every answer kept for the log at ``log_path`` (keys start with it)."""
        with self._lock:
            for key in [k for k in self._bodies if isinstance(k, tuple) and k and k[0] == log_path]:
                self.bytes -= len(self._bodies.pop(key).body)

    def __len__(self) -> int:
        return len(self._bodies)
