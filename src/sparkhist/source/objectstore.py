"""Event logs in an object store (S3, GCS, Azure Blob) through ``obstore``, made safe for failures.

URLs: ``s3a://bucket/prefix`` (and ``s3://``), ``gs://bucket/prefix``,
``abfs[s]://container@account.dfs.core.windows.net/prefix``, ``wasb[s]://...``; the
store behind one is described by a :class:`StoreTarget` (:mod:`sparkhist.source.s3a`,
:mod:`sparkhist.source.gcs`, :mod:`sparkhist.source.azure` build them from the Hadoop
properties). Entry paths are full URLs (``s3a://bucket/prefix/app-1``), the catalog keys.

**Directories are prefixes.** A "directory" is the set of keys under ``<dir>/``; a
rolling log ``eventlog_v2_<app>`` is the prefix of its ``events_*`` and ``appstatus_*``
objects. Directory markers (keys ending in ``/``, as Hadoop's S3A writes them) stand
for their directory and are never files.

**Listings are paged and streamed.** ``list(dir)`` lists every key under ``<dir>/``
(no delimiter: obstore's delimiter listing collects every page first) a page of
``page_size`` keys at a time, each page under its own deadline, keeping only the
entries: the direct children, each sub-prefix once as a directory, and the files of
each ``eventlog_v2_*`` sub-prefix, which the scanner asks for next. Those are answered
from this listing (one recursive listing instead of one per rolling log) when asked
within ``children_ttl`` seconds, once; any later ``list`` of them asks the store again.
Keys deeper down (under a directory that is not a rolling log) are counted, not kept.

**Change detection.** Each file entry carries the object's size and ETag
(:attr:`FileEntry.etag <sparkhist.source.base.FileEntry.etag>`); an object is immutable,
so a log that grows is a new object under the same key (a new ETag). A directory has no
modification time of its own (``mtime_ms`` 0: never reused by mtime).

**What is visible.** Hadoop's S3A makes an object visible only when its writer closes
it: a single-file ``.inprogress`` log shows up when the application ends (or never, if
the driver died), and a rolling log shows each ``events_N`` file once it has rolled,
plus its zero-byte ``appstatus_*.inprogress`` marker from the start. The source lists
what is visible; the scanner's rules (size, last index, completeness) do the rest.

**Reads are ranged.** ``open`` asks for the object's size and ETag, then reads it
``chunk_size`` bytes at a time (:class:`~sparkhist.source.ranged.RangeStream`), each
range a GET carrying ``If-Match: <etag>``: an object replaced while it is read fails that
read (the next scan reads the new one) instead of mixing two versions.

**Failures.** Every request runs under a deadline: obstore's own HTTP timeout
(``timeout`` for metadata and each listing page, ``read_timeout`` for each ranged read),
and, should the client itself hang (credential endpoints...), a worker thread abandoned
one second after it (:class:`~sparkhist.source.deadline.ThreadRunner`). obstore's own
retries are off: :class:`~sparkhist.source.guard.SourceGuard` retries with jittered
backoff (5xx, transport errors, throttling), keeps the circuit breaker and the health.
Throttling (503 SlowDown, 429) is retried but never opens the breaker. After a deadline
a quick probe (a HEAD, ``probe_timeout``) tells a slow answer from a hung or cut-off
endpoint: when the probe gets no answer either, the call is not retried and the breaker
opens at once, so the rest of a scan fails fast instead of costing a deadline per call.
"""

from __future__ import annotations

import builtins
import functools
import logging
import posixpath
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sparkhist.errors import SourceError, SourceNotFound, SourceUnavailable
from sparkhist.resilience.breaker import CircuitBreaker
from sparkhist.resilience.retry import RetryPolicy
from sparkhist.source import skipped as why
from sparkhist.source.base import ByteStream, FileEntry, SourceHealth
from sparkhist.source.deadline import DeadlineExceeded, ThreadRunner, is_panic
from sparkhist.source.faults import http_status, object_store_error
from sparkhist.source.guard import SourceGuard, default_retry
from sparkhist.source.ranged import RangeStream
from sparkhist.source.skipped import SkippedLogs

__all__ = ["ObjectStoreSource", "StoreTarget"]

log = logging.getLogger("sparkhist.source")

T = TypeVar("T")

ROLLING_PREFIX = "eventlog_v2_"
#: Extra wait, past obstore's own HTTP timeout, before a call's thread is abandoned.
_GRACE = 1.0


@dataclass(frozen=True)
class StoreTarget:
    """One bucket (or container) and key prefix, and how to build an obstore client for it."""

    scheme: str  # as the user wrote it: s3a, s3, gs, abfs, abfss, wasb, wasbs
    authority: str  # bucket, or container@account host
    root_key: str  # the log directory's key prefix, without slashes at either end ("" = the bucket)
    endpoint: str  # for health and logs: the URL requests go to, or the provider's default
    bucket: str  # the bucket or container name
    #: ``make(timeout, connect_timeout)`` -> an obstore store whose requests give up after ``timeout`` seconds.
    make: Callable[[float, float], Any] = field(repr=False)

    @property
    def prefix(self) -> str:
        return f"{self.scheme}://{self.authority}"


@dataclass(slots=True)
class _Children:
    """The files of one rolling log's prefix, as a listing of its parent saw them."""

    at: float  # monotonic time of that listing
    entries: builtins.list[FileEntry]


class ObjectStoreSource:
    """A log directory in an object store. Thread-safe: any number of threads may call it."""

    def __init__(
        self,
        target: StoreTarget,
        *,
        timeout: float = 3.0,
        read_timeout: float = 10.0,
        connect_timeout: float | None = None,
        probe_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        breaker_reset: float = 10.0,
        chunk_size: int = 4 << 20,
        page_size: int = 1000,
        children_ttl: float = 60.0,
        max_hung: int = 32,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.target = target
        self.prefix = target.prefix
        self.root = self.root_path = self.prefix + ("/" + target.root_key if target.root_key else "")
        self.timeout = timeout
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else min(timeout, 5.0)
        self.probe_timeout = probe_timeout if probe_timeout is not None else min(1.0, timeout)
        self.chunk_size = chunk_size
        self.page_size = page_size
        self.children_ttl = children_ttl
        self.guard = SourceGuard(
            self.prefix,
            retry=retry or default_retry(timeout=timeout),
            breaker=breaker or CircuitBreaker(self.prefix, failure_threshold=5, reset_timeout=breaker_reset),
            wall=wall,
        )
        self.skipped = SkippedLogs(self.root)
        self.probes = 0
        self.list_pages = 0  # pages of listings received
        self.deep_keys = 0  # keys seen under sub-prefixes that are not rolling logs (listed, not kept)
        self._runner = ThreadRunner("objectstore", max_hung=max_hung)
        self._lock = threading.Lock()
        self._stores: dict[str, Any] = {}  # "meta" / "read" / "probe" -> obstore store
        self._children: dict[str, _Children] = {}  # rolling prefix URL -> its files, from the last parent listing
        self._delimited: dict[str, float] = {}  # prefix -> when a bad key made it be listed with a delimiter

    # -- Source protocol -----------------------------------------------------------------
    def list(self, path: str) -> builtins.list[FileEntry]:
        key = self._key(path)
        url = self._url(key)
        with self._lock:
            cached = self._children.pop(url, None)
        if cached is not None and time.monotonic() - cached.at <= self.children_ttl:
            return list(cached.entries)
        entries, children = self._list_tree(key)
        now = time.monotonic()
        with self._lock:
            if key == self.target.root_key:
                self._children = {u: _Children(now, c) for u, c in children.items()}
            else:
                for u, c in children.items():
                    self._children[u] = _Children(now, c)
        self.skipped.after_listing(url, [e.path for e in entries])
        return entries

    def stat(self, path: str) -> FileEntry:
        key = self._key(path)
        if not key:
            return FileEntry(self._url(key), self.target.bucket, 0, 0, True)
        try:
            meta = self._call("stat", lambda store: _obstore().head(store, key), self.timeout, f"stat {key}")
            entry = self._file_entry(key, meta)
            if entry.size or not (entry.name.startswith(ROLLING_PREFIX) or self._has_children(key)):
                return entry
            return self._dir_entry(key)  # a directory marker (see _entries)
        except SourceNotFound:
            pass
        if self._has_children(key):
            return self._dir_entry(key)
        raise SourceNotFound(f"{self._url(key)}: no such object or prefix")

    def open(self, path: str, offset: int = 0) -> ByteStream:
        """A stream of the object from ``offset`` to its size now; every range must come
        from the same version of it (``If-Match``)."""
        key = self._key(path)
        meta = self._call("open", lambda store: _obstore().head(store, key), self.timeout, f"open {key}")
        length = int(meta["size"])
        etag = meta.get("e_tag")

        def fetch(pos: int, size: int) -> bytes:
            end = min(pos + size, length)
            options: dict[str, Any] = {"range": (pos, end)}
            if etag:
                options["if_match"] = etag

            def get(store: Any) -> bytes:
                return bytes(_obstore().get(store, key, options=options).bytes())

            return self._call("read", get, self.read_timeout, f"read {key}@{pos}", store="read")

        return RangeStream(fetch, length, offset, chunk_size=self.chunk_size, name=self._url(key))

    def delete(self, path: str) -> None:
        """Deletes the object, or every object under the prefix; a missing path is no error."""
        key = self._key(path)
        if not key:
            raise SourceError(f"refusing to delete the whole of {self.prefix}")
        keys = [key] if self._exists(key) else []
        keys += [m for m in self._keys_under(key + "/")]
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            self._call("delete", functools.partial(_delete, paths=batch), self.timeout, f"delete {key}")
        with self._lock:
            self._children.pop(self._url(key), None)

    def join(self, parent: str, name: str) -> str:
        return parent.rstrip("/") + "/" + name

    def put_atomic(self, path: str, data: bytes) -> None:
        """Write the object whole (a store location's write side, not a log source's): one
        PUT, which an object store applies whole or not at all, so no temporary name."""
        key = self._key(path)
        if not key:
            raise SourceError(f"not an object path: {path!r}")
        # A deadline that grows with the body: a read's per chunk, for each chunk's worth.
        timeout = self.timeout + self.read_timeout * (1 + len(data) // self.chunk_size)
        self._call("put", lambda store: _obstore().put(store, key, data), timeout, f"put {key}")
        with self._lock:
            self._children.pop(self._url(posixpath.dirname(key)), None)

    # -- health / lifecycle ----------------------------------------------------------------
    @property
    def calls(self) -> dict[str, int]:
        """Requests made per operation (list pages, stat, open, read, delete; probe)."""
        out = dict(self.guard.calls)
        if self.list_pages:
            out["list_page"] = self.list_pages
        if self.probes:
            out["probe"] = self.probes
        return out

    def health(self) -> SourceHealth:
        out = self.guard.health()
        out["endpoint"] = self.target.endpoint
        out["bucket"] = self.target.bucket
        out["hung_calls"] = self._runner.hung
        return out

    def close(self) -> None:
        """Drops the clients (obstore keeps no other resource); a second call does nothing."""
        with self._lock:
            self._stores.clear()
            self._children.clear()

    # -- listing ---------------------------------------------------------------------------
    def _list_tree(self, key: str) -> tuple[builtins.list[FileEntry], dict[str, builtins.list[FileEntry]]]:
        """(direct children, files of each rolling sub-prefix) of the prefix ``key``: one
        paged listing, a deadline per page; :meth:`_list_delimited` when a key below
        cannot be read."""
        prefix = key + "/" if key else ""
        with self._lock:
            delimited_since = self._delimited.get(key)
        if delimited_since is not None and time.monotonic() - delimited_since < _DELIMITED_FOR:
            return self._list_delimited(key), {}

        def walk(store: Any, tick: Callable[[], None]) -> tuple[builtins.list[FileEntry], dict[str, builtins.list[FileEntry]]]:
            files: dict[str, FileEntry] = {}
            dirs: dict[str, None] = {}
            rolling: dict[str, builtins.list[FileEntry]] = {}
            deep = 0
            for page in self._pages(store, prefix, tick):
                for meta in page:
                    rel = str(meta["path"])[len(prefix) :]
                    if not rel:
                        continue  # the directory's own marker
                    child, slash, rest = rel.partition("/")
                    if not slash:
                        files[child] = self._file_entry(prefix + child, meta)
                        continue
                    dirs.setdefault(child, None)
                    if child.startswith(ROLLING_PREFIX) and rest and "/" not in rest:
                        rolling.setdefault(child, []).append(self._file_entry(prefix + rel, meta))
                    elif rest:
                        deep += 1
            with self._lock:
                self.deep_keys += deep
            out = self._entries(prefix, files, dirs)
            children = {self._url(prefix + d): entries for d, entries in rolling.items()}
            for e in out:  # a rolling prefix with no file yet (its marker only) lists as empty
                if e.is_dir and e.name.startswith(ROLLING_PREFIX):
                    children.setdefault(e.path, [])
            return out, children

        try:
            return self._call("list", walk, self.timeout, f"list {prefix or '/'}", idle=True)
        except _BadKey as exc:
            # Below this prefix lies a key obstore cannot represent: list this level with a
            # delimiter instead (the bad key hidden in its sub-prefix fails only that one).
            log.warning("%s: %s; listing %s level by level", self.prefix, exc, self._url(key))
            with self._lock:
                self._delimited[key] = time.monotonic()
            return self._list_delimited(key), {}

    def _list_delimited(self, key: str) -> builtins.list[FileEntry]:
        """The direct children of ``key`` by a delimiter listing (obstore collects its pages)."""
        prefix = key + "/" if key else ""

        def once(store: Any) -> builtins.list[FileEntry]:
            with self._lock:
                self.list_pages += 1
            try:
                result = _obstore().list_with_delimiter(store, prefix or None)
            except Exception as exc:
                bad = _bad_key(exc)
                if bad is None:
                    raise
                raise bad from exc
            files = {str(m["path"])[len(prefix):]: self._file_entry(str(m["path"]), m) for m in result["objects"]}
            files.pop("", None)
            dirs = dict.fromkeys(str(p)[len(prefix):].rstrip("/") for p in result["common_prefixes"])
            return self._entries(prefix, files, dirs)

        try:
            return self._call("list", once, self.timeout, f"list {prefix or '/'} (delimited)")
        except _BadKey as exc:
            self.skipped.report(self._url(exc.key), why.UNREADABLE, _BAD_KEY_DETAIL)
            raise SourceError(f"{self._url(key)}: cannot list it: {exc}; rename or delete that object") from exc

    def _entries(self, prefix: str, files: dict[str, FileEntry], dirs: dict[str, None]) -> builtins.list[FileEntry]:
        """Files and sub-prefixes of one level. A zero-byte object named as a sub-prefix is
        that directory's marker (S3A's ``<dir>/``, which obstore names without the slash),
        and one named ``eventlog_v2_*`` is a rolling log's directory with no file yet."""
        out: builtins.list[FileEntry] = []
        for name, entry in files.items():
            if entry.size == 0 and (name in dirs or name.startswith(ROLLING_PREFIX)):
                dirs.setdefault(name, None)
                continue
            out.append(entry)
        out += [self._dir_entry(prefix + d) for d in dirs if d]
        return out

    def _pages(self, store: Any, prefix: str, tick: Callable[[], None]) -> Iterator[Any]:
        stream = _obstore().list(store, prefix or None, chunk_size=self.page_size)
        while True:
            try:
                page = next(stream)
            except StopIteration:
                return
            except Exception as exc:
                bad = _bad_key(exc)
                if bad is None:
                    raise
                raise bad from exc
            with self._lock:
                self.list_pages += 1
            tick()
            yield page

    def _keys_under(self, prefix: str) -> builtins.list[str]:
        def walk(store: Any, tick: Callable[[], None]) -> builtins.list[str]:
            return [str(m["path"]) for page in self._pages(store, prefix, tick) for m in page]

        return self._call("list", walk, self.timeout, f"list {prefix}", idle=True)

    def _has_children(self, key: str) -> bool:
        def first(store: Any) -> bool:
            for page in _obstore().list(store, key + "/", chunk_size=1):
                return bool(page)
            return False

        return self._call("stat", first, self.timeout, f"stat {key}/")

    def _exists(self, key: str) -> bool:
        try:
            self._call("stat", lambda store: _obstore().head(store, key), self.timeout, f"stat {key}")
        except SourceNotFound:
            return False
        return True

    # -- calls -----------------------------------------------------------------------------
    def _store(self, kind: str) -> Any:
        with self._lock:
            store = self._stores.get(kind)
            if store is None:
                timeout = {"read": self.read_timeout, "probe": self.probe_timeout}.get(kind, self.timeout)
                store = self._stores[kind] = self.target.make(timeout, min(self.connect_timeout, timeout))
            return store

    def _call(self, op: str, fn: Callable[..., T], timeout: float, what: str, *, store: str = "meta",
              idle: bool = False) -> T:
        """``fn(store)`` under the guard, one attempt = one deadline; with ``idle``,
        ``fn(store, tick)`` and the deadline restarts at each ``tick()`` (each listing page)."""
        label = f"{self.prefix} {what}"

        def attempt() -> T:
            try:
                client = self._store(store)
                if idle:
                    return self._runner.run_idle(lambda tick: fn(client, tick), timeout + _GRACE, label)
                return self._runner.run(lambda: fn(client), timeout + _GRACE, label)
            except SourceError:
                raise
            except Exception as exc:
                raise object_store_error(exc, label) from exc
            except BaseException as exc:
                if is_panic(exc):
                    raise SourceError(f"{label}: backend panicked: {exc}") from exc
                raise

        def failed(exc: SourceUnavailable) -> None:
            if isinstance(exc, DeadlineExceeded) and not self._probe():
                # The endpoint answers nothing at all: one deadline is proof enough. No
                # retry, and the breaker opens now, so the calls that follow fail fast.
                exc.retryable = False
                self.guard.breaker.trip(f"{what}: no answer within the deadline, and none to a probe")

        return self.guard.run(op, attempt, on_failure=failed)

    def _probe(self) -> bool:
        """Whether the endpoint answers anything (even 404/403) within ``probe_timeout``."""
        with self._lock:
            self.probes += 1
        key = (self.target.root_key + "/" if self.target.root_key else "") + ".sparkhist-probe"
        try:
            self._runner.run(lambda: _obstore().head(self._store("probe"), key), self.probe_timeout + _GRACE, "probe")
        except FileNotFoundError:
            return True
        except SourceError:  # no answer in time, or too many hung calls
            return False
        except Exception as exc:  # noqa: BLE001 - any HTTP answer (403, 503...) shows it alive
            return http_status(exc) is not None
        return True

    # -- entries and paths -------------------------------------------------------------------
    def _file_entry(self, key: str, meta: Any) -> FileEntry:
        modified = meta.get("last_modified")
        mtime_ms = int(modified.timestamp() * 1000) if isinstance(modified, datetime) else 0
        etag = meta.get("e_tag")
        return FileEntry(self._url(key), posixpath.basename(key), int(meta["size"]), mtime_ms, False,
                         _plain_etag(etag) if etag else None)

    def _dir_entry(self, key: str) -> FileEntry:
        return FileEntry(self._url(key), posixpath.basename(key), 0, 0, True)

    def _url(self, key: str) -> str:
        return f"{self.prefix}/{key}" if key else self.prefix

    def _key(self, path: str) -> str:
        """The object key of a URL on this source (or of a key given as such)."""
        if path == self.prefix or path.startswith(self.prefix + "/"):
            key = path[len(self.prefix) :]
        elif "://" in path:
            scheme, _, rest = path.partition("://")
            if scheme in _SAME_STORE.get(self.target.scheme, ()) and rest.split("/", 1)[0] == self.target.authority:
                key = rest[len(self.target.authority) :]
            else:
                raise SourceError(f"{path!r} is not on {self.prefix}")
        else:
            key = path
        key = key.strip("/")
        if any(part in ("", ".", "..") for part in key.split("/")) and key:
            raise SourceError(f"not a plain object path: {path!r}")
        return key


#: Schemes that name the same store (a log recorded as s3:// read through s3a://).
_SAME_STORE = {
    "s3a": ("s3", "s3n"), "s3": ("s3a", "s3n"),
    "abfs": ("abfss",), "abfss": ("abfs",), "wasb": ("wasbs",), "wasbs": ("wasb",),
}


class _BadKey(SourceError):
    """A listing met a key obstore refuses (empty, ``.`` or ``..`` segments, control characters)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


_BAD_KEY_DETAIL = ("a key the object-store client cannot represent (empty, '.' or '..' path segments, "
                   "or control characters): it hides the keys listed with it")
#: How long a prefix that held a bad key is listed with a delimiter before trying again.
_DELIMITED_FOR = 600.0


def _bad_key(exc: BaseException) -> _BadKey | None:
    """obstore's ``InvalidPathError`` for a listed key, as a :class:`_BadKey` naming it."""
    if type(exc).__name__ != "InvalidPathError":
        return None
    text = str(exc).split("\n\nDebug source:", 1)[0]
    match = re.search(r'Path "(.*?)"(?::|$| )', text)
    key = match.group(1) if match else "?"
    return _BadKey(f"a key obstore cannot represent: {key!r}", key)


def _plain_etag(etag: Any) -> str:
    """An ETag without its quotes (GCS lists it bare and quotes it in a HEAD answer)."""
    text = str(etag)
    if text.startswith("W/"):
        text = text[2:]
    return text.strip('"')


def _delete(store: Any, paths: builtins.list[str]) -> None:
    _obstore().delete(store, paths)


def _obstore() -> Any:
    """The obstore module, imported on first use (local-only processes never load it)."""
    import obstore

    return obstore
