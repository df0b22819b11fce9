"""WebHDFS: a client with a NameNode list (used by the HDFS source for files still being
written) and a Source of its own, the fallback when the RPC ports are out of reach.

URL forms of :class:`WebHdfsSource`::

    webhdfs://nn1.example.com:9870,nn2.example.com:9870/spark-events   # the NameNodes' HTTP addresses
    webhdfs://mycluster/spark-events    # a nameservice: dfs.namenode.http-address.mycluster.* from
                                        # HADOOP_CONF_DIR (or the conf_dir argument)
    webhdfs://nn1.example.com/spark-events   # one NameNode, port 9870
    swebhdfs://...                           # the same over https

The order of the NameNodes is the order they are tried in; the one that last answered
is tried first. A NameNode that refuses or says ``StandbyException`` is skipped within
the same attempt; one that does not answer costs the attempt's deadline, after which
the next attempt starts at the next NameNode (the same rotation as the HDFS source).
Every request (NameNode and DataNode) runs under a deadline on the source's private
event loop (see :mod:`sparkhist.source.deadline`).

**Files still being written.** A NameNode reports only the length of a file's
completed blocks (plus whatever the writer ``hsync``-ed); Spark writes its
``.inprogress`` logs with ``hflush``, which the NameNode does not see. ``OPEN`` is
served by a DataNode, which knows the visible length: its ``Content-Length`` for
``offset=0`` is the length Spark's own history server uses (``DFSInputStream.getFileLength``).
The sources use it for :func:`live_files` (``*.inprogress`` files, and the last
``events_*`` file of an in-progress ``eventlog_v2_*`` directory).
"""

from __future__ import annotations

import asyncio
import builtins
import getpass
import logging
import os
import posixpath
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from sparkhist.errors import ConfigError, SourceError, SourceNotFound, SourceUnavailable
from sparkhist.resilience.breaker import CircuitBreaker
from sparkhist.resilience.retry import RetryPolicy
from sparkhist.source.base import ByteStream, FileEntry, SourceHealth
from sparkhist.source.deadline import LoopThread
from sparkhist.source.faults import STANDBY_EXCEPTION, http_error, translating, webhdfs_error
from sparkhist.source.guard import SourceGuard, default_retry
from sparkhist.source.hadoop_conf import DEFAULT_HTTP_PORT, load_conf, resolve_namenodes
from sparkhist.source.ranged import RangeStream
from sparkhist.source.skipped import WEBHDFS_UNAVAILABLE, SkippedLogs

__all__ = ["WebHdfsClient", "WebHdfsNotServed", "WebHdfsSource", "default_user", "is_live_name", "live_files"]

log = logging.getLogger("sparkhist.source")

T = TypeVar("T")

# Mirrors reader/layout.py (the source layer does not import the reader layer).
IN_PROGRESS = ".inprogress"
ROLLING_DIR_PREFIX = "eventlog_v2_"
EVENTS_PREFIX = "events_"
APPSTATUS_PREFIX = "appstatus_"


def is_live_name(name: str) -> bool:
    """A file that may still be open for writing, by its name alone (a rolling log's
    zero-byte ``appstatus_*.inprogress`` marker is never written to)."""
    return name.endswith(IN_PROGRESS) and not name.startswith(APPSTATUS_PREFIX)


def live_files(directory: str, entries: Iterable[FileEntry]) -> set[str]:
    """Paths among ``entries`` (the listing of ``directory``) that may still be growing."""
    entries = [e for e in entries if not e.is_dir]
    live = {e.path for e in entries if is_live_name(e.name)}
    if posixpath.basename(directory.rstrip("/")).startswith(ROLLING_DIR_PREFIX):
        if any(e.name.startswith(APPSTATUS_PREFIX) and e.name.endswith(IN_PROGRESS) for e in entries):
            events = [e for e in entries if e.name.startswith(EVENTS_PREFIX)]
            if events:
                live.add(max(events, key=lambda e: _events_index(e.name)).path)
    return live


def with_visible_lengths(entries: Iterable[FileEntry], live: set[str],
                         visible: Callable[[FileEntry], FileEntry]) -> list[FileEntry]:
    """``entries`` with each live one's length as ``visible`` finds it, each on its own (a
    source that cannot tell keeps the NameNode's length); one deleted since the listing is
    left out."""
    out: list[FileEntry] = []
    for e in entries:
        if e.path in live:
            try:
                e = visible(e)
            except SourceNotFound:
                continue  # deleted since the listing
        out.append(e)
    return out


def _events_index(name: str) -> int:
    try:
        return int(name.split("_", 2)[1])
    except (IndexError, ValueError):
        return -1


class _Standby(Exception):
    pass


class WebHdfsNotServed(SourceError):
    """The HTTP server answers, but not WebHDFS: HTTP 404 without a ``RemoteException``
    (``dfs.webhdfs.enabled=false``, or another server on that port), or 401 (SPNEGO,
    which sparkhist does not speak). Not the file's fault, and no retry helps."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class WebHdfsClient:
    """WebHDFS calls against a list of NameNodes; coroutines for a :class:`LoopThread`.

    ``active`` is the index of the NameNode that answered last; :meth:`rotate` moves on
    to the next one after a failed attempt. The ``httpx.AsyncClient`` is created on
    the loop, and rebuilt on rotation so no connection to a hung node is reused.
    """

    def __init__(self, namenodes: Sequence[str], *, scheme: str = "http", user: str | None = None, timeout: float = 10.0) -> None:
        if not namenodes:
            raise ConfigError("WebHDFS needs at least one NameNode address")
        self.namenodes = list(namenodes)
        self.scheme = scheme
        self.user = user
        self.timeout = timeout
        self.active = 0
        self.requests = 0
        self._http: httpx.AsyncClient | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), follow_redirects=False, trust_env=False)
        return self._http

    def rotate(self, failed: int | None = None) -> None:
        """After a failed attempt: start the next one at the NameNode after ``failed``."""
        start = self.active if failed is None else failed
        self.active = (start + 1) % len(self.namenodes)
        old, self._http = self._http, None
        if old is not None:
            old_client = old

            async def _close() -> None:
                try:
                    await old_client.aclose()
                except Exception:  # noqa: BLE001 - best effort
                    pass

            try:
                task = asyncio.get_running_loop().create_task(_close())
            except RuntimeError:
                return  # not on the loop: the old client is dropped and collected
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _params(self, op: str, extra: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {"op": op}
        if self.user:
            params["user.name"] = self.user
        params.update(extra)
        return params

    async def namenode(self, path: str, op: str, *, method: str = "GET", **extra: Any) -> httpx.Response:
        """One NameNode request, trying each NameNode from the active one on refusal/standby."""
        last: BaseException | None = None
        n = len(self.namenodes)
        for k in range(n):
            i = (self.active + k) % n
            url = f"{self.scheme}://{self.namenodes[i]}/webhdfs/v1{quote(path)}"
            self.requests += 1
            try:
                resp = await self._client().request(method, url, params=self._params(op, extra))
                if resp.status_code == 403 and STANDBY_EXCEPTION in resp.text:
                    raise _Standby(resp.text[:200])
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError, _Standby) as exc:
                last = exc
                continue  # refused, dropped or standby: the next NameNode, within this attempt
            except httpx.TransportError as exc:
                raise http_error(exc, f"WebHDFS {op} {path} at {self.namenodes[i]}") from exc
            self.active = i
            return resp
        raise SourceUnavailable(f"WebHDFS {op} {path}: no active NameNode among {self.namenodes}: {last!r}") from last

    async def status(self, path: str) -> dict[str, Any]:
        resp = await self.namenode(path, "GETFILESTATUS")
        _check(resp, f"GETFILESTATUS {path}")
        return dict(resp.json()["FileStatus"])

    async def list(self, path: str) -> list[dict[str, Any]]:
        resp = await self.namenode(path, "LISTSTATUS")
        _check(resp, f"LISTSTATUS {path}")
        return list(resp.json()["FileStatuses"]["FileStatus"])

    async def delete(self, path: str) -> bool:
        """Deletes ``path`` recursively; False when there was nothing to delete."""
        resp = await self.namenode(path, "DELETE", method="DELETE", recursive="true")
        _check(resp, f"DELETE {path}")
        return bool(resp.json().get("boolean"))

    async def _datanode_url(self, path: str, offset: int, length: int | None) -> httpx.URL:
        """The DataNode URL serving ``OPEN`` of ``[offset, offset+length)``.

        The NameNode refuses an offset at or past the length *it* knows ("Offset=N out
        of the range [0, L)"), which lags behind hflushed data of a file being written.
        The DataNode seeks in the visible length itself, so for such an offset the
        redirect for offset 0 is taken and its ``offset``/``length`` set to ours.
        """
        extra: dict[str, Any] = {"offset": offset}
        if length is not None:
            extra["length"] = length
        resp = await self.namenode(path, "OPEN", **extra)
        if offset and resp.status_code == 403 and "out of the range" in resp.text:
            resp = await self.namenode(path, "OPEN", offset=0)
        if resp.status_code in (302, 303, 307):
            url = httpx.URL(resp.headers["location"]).copy_set_param("offset", str(offset))
            return url.copy_set_param("length", str(length)) if length is not None else url.copy_remove_param("length")
        _check(resp, f"OPEN {path}")
        raise SourceError(f"WebHDFS OPEN {path}: expected a redirect to a DataNode, got {resp.status_code}")

    async def read(self, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes (fewer at the end) from ``offset``, served by a DataNode."""
        url = await self._datanode_url(path, offset, length)
        self.requests += 1
        try:
            resp = await self._client().get(url)
        except httpx.TransportError as exc:
            raise http_error(exc, f"WebHDFS read {path}@{offset} (DataNode)") from exc
        _check(resp, f"OPEN {path} (DataNode)")
        return resp.content

    async def visible_length(self, path: str) -> int:
        """The length readers see now (includes hflushed bytes of a file being written)."""
        url = await self._datanode_url(path, 0, None)
        self.requests += 1
        try:
            async with self._client().stream("GET", url) as resp:
                if resp.status_code >= 300:
                    await resp.aread()  # small error document, for the message
                    _check(resp, f"OPEN {path} (DataNode)")
                value = resp.headers.get("content-length")
        except httpx.TransportError as exc:
            raise http_error(exc, f"WebHDFS length of {path} (DataNode)") from exc
        if value is None:
            raise SourceError(f"WebHDFS OPEN {path}: the DataNode sent no Content-Length")
        return int(value)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _check(resp: httpx.Response, what: str) -> None:
    """Raises the :mod:`sparkhist.errors` class of an error answer (its ``RemoteException``)."""
    if resp.status_code < 300:
        return
    exception, message = "", resp.text[:300]
    try:
        remote = resp.json().get("RemoteException", {})
        exception, message = remote.get("exception", ""), remote.get("message", message)
    except (ValueError, AttributeError):
        pass
    if resp.status_code == 401 or (resp.status_code == 404 and not exception):
        # Not "no such file" (that is a RemoteException FileNotFoundException): no WebHDFS here.
        first_line = " ".join(message.split())[:120]
        raise WebHdfsNotServed(f"WebHDFS {what}: HTTP {resp.status_code} {first_line}".strip(), resp.status_code)
    raise webhdfs_error(resp.status_code, exception, message, what)


def _entry(path: str, name: str, st: Mapping[str, Any]) -> FileEntry:
    is_dir = st.get("type") == "DIRECTORY"
    size = 0 if is_dir else int(st.get("length", 0))
    return FileEntry(path=path, name=name, size=size, mtime_ms=int(st.get("modificationTime", 0)), is_dir=is_dir)


def parse_webhdfs_url(url: str, conf: Mapping[str, str]) -> tuple[str, str, list[str], str]:
    """``(scheme, authority, namenode http addresses, path)`` of a ``webhdfs://`` URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("webhdfs", "swebhdfs"):
        raise ConfigError(f"not a webhdfs:// URL: {url!r}")
    authority, _, path = rest.partition("/")
    path = "/" + path
    if not authority:
        raise ConfigError(f"webhdfs URL without NameNodes: {url!r}")
    hosts = [h.strip() for h in authority.split(",") if h.strip()]
    if len(hosts) == 1 and ":" not in hosts[0] and conf.get(f"dfs.ha.namenodes.{hosts[0]}"):
        nodes = resolve_namenodes(hosts[0], conf).nodes
        addresses = [n.http for n in nodes if n.http]
    else:
        addresses = [h if ":" in h else f"{h}:{DEFAULT_HTTP_PORT}" for h in hosts]
    return ("https" if scheme == "swebhdfs" else "http"), authority, addresses, posixpath.normpath(path) if path != "/" else "/"


class WebHdfsSource:
    """A log directory read over WebHDFS only (no RPC, no native code)."""

    def __init__(
        self,
        url: str,
        *,
        conf_dir: str | None = None,
        overrides: Mapping[str, str] | None = None,
        timeout: float = 3.0,
        read_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        breaker_reset: float = 10.0,
        user: str | None = None,
        chunk_size: int = 4 << 20,
        live: Callable[[str, list[FileEntry]], set[str]] = live_files,
        wall: Callable[[], float] = time.time,
    ) -> None:
        conf = load_conf(conf_dir, overrides)
        scheme, self.authority, addresses, base = parse_webhdfs_url(url, conf)
        self.prefix = f"{'swebhdfs' if scheme == 'https' else 'webhdfs'}://{self.authority}"
        self.root = self.root_path = self.prefix + (base if base != "/" else "")
        self.base = base
        self.timeout = timeout
        self.read_timeout = read_timeout
        self.chunk_size = chunk_size
        self.live = live
        user = user or default_user()
        self.client = WebHdfsClient(addresses, scheme=scheme, user=user, timeout=max(timeout, read_timeout))
        self.guard = SourceGuard(
            self.prefix,
            retry=retry or default_retry(timeout=timeout),
            breaker=breaker or CircuitBreaker(self.prefix, failure_threshold=5, reset_timeout=breaker_reset),
            wall=wall,
        )
        self._loop = LoopThread("webhdfs")
        self.skipped = SkippedLogs(self.root)

    # -- Source protocol ---------------------------------------------------------------
    def list(self, path: str) -> builtins.list[FileEntry]:
        p = self._path(path)
        statuses = self._call("list", lambda: self.client.list(p), self.timeout, f"list {p}")
        named = [(st["pathSuffix"], st) for st in statuses if st.get("pathSuffix")]
        entries = [_entry(self._url(posixpath.join(p, name)), name, st) for name, st in named]
        live = self.live(self._url(p), entries)
        out = with_visible_lengths(entries, live, self._with_visible_length)
        self.skipped.after_listing(self._url(p), [e.path for e in entries])
        return out

    def stat(self, path: str) -> FileEntry:
        p = self._path(path)
        st = self._call("stat", lambda: self.client.status(p), self.timeout, f"stat {p}")
        entry = _entry(self._url(p), posixpath.basename(p) or "/", st)
        return self._with_visible_length(entry) if not entry.is_dir and is_live_name(entry.name) else entry

    def open(self, path: str, offset: int = 0) -> ByteStream:
        entry = self.stat(path)
        if entry.is_dir:
            raise SourceError(f"is a directory: {entry.path}")
        p = self._path(path)

        def fetch(pos: int, size: int) -> bytes:
            return self._call("read", lambda: self.client.read(p, pos, size), self.read_timeout, f"read {p}@{pos}")

        return RangeStream(fetch, entry.size, offset, chunk_size=self.chunk_size, name=entry.path)

    def delete(self, path: str) -> None:
        """Deletes ``path`` (a directory with its files); a missing path is no error."""
        p = self._path(path)
        try:
            self._call("delete", lambda: self.client.delete(p), self.timeout, f"delete {p}")
        except SourceNotFound:
            return

    def join(self, parent: str, name: str) -> str:
        return parent.rstrip("/") + "/" + name

    # -- health / lifecycle ------------------------------------------------------------
    @property
    def calls(self) -> dict[str, int]:
        return dict(self.guard.calls)

    def health(self) -> SourceHealth:
        out = self.guard.health()
        out["namenodes"] = list(self.client.namenodes)
        out["active_namenode"] = self.client.namenodes[self.client.active]
        return out

    def close(self) -> None:
        """Release the HTTP client and the event-loop thread; a second call does nothing."""
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self.client.aclose, 5.0, "close")
        except SourceError:
            pass
        self._loop.close()

    # -- internals ----------------------------------------------------------------------
    def _call(self, op: str, factory: Callable[[], Awaitable[T]], timeout: float, what: str) -> T:
        def attempt() -> T:
            with translating(f"{self.prefix} {what}"):
                return self._loop.run(factory, timeout, f"{self.prefix} {what}")

        def on_failure(exc: SourceUnavailable) -> None:
            failed = self.client.active
            self._loop.call_soon(lambda: self.client.rotate(failed))
            following = self.client.namenodes[(failed + 1) % len(self.client.namenodes)]
            log.warning("%s: %s failed (%s); next attempt starts at %s", self.prefix, what, exc, following)

        return self.guard.run(op, attempt, on_failure=on_failure)

    def _with_visible_length(self, entry: FileEntry) -> FileEntry:
        """A live file's length as readers see it; when that cannot be had (SourceNotFound
        aside), the NameNode's, reported to :attr:`skipped` once (read up to there)."""
        p = self._path(entry.path)
        try:
            visible = self._call("length", lambda: self.client.visible_length(p), self.read_timeout, f"length of {p}")
        except SourceNotFound:
            raise
        except SourceError as exc:
            kind = f"HTTP {exc.status}" if isinstance(exc, WebHdfsNotServed) else type(exc).__name__
            self.skipped.report(entry.path, WEBHDFS_UNAVAILABLE,
                                f"its visible length is unknown ({kind}): read up to the NameNode's length")
            return entry
        self.skipped.clear(entry.path, (WEBHDFS_UNAVAILABLE,))
        return FileEntry(entry.path, entry.name, max(entry.size, visible), entry.mtime_ms, entry.is_dir)

    def _url(self, p: str) -> str:
        return self.prefix + p

    def _path(self, path: str) -> str:
        if path.startswith(self.prefix):
            path = path[len(self.prefix) :] or "/"
        elif "://" in path:
            raise SourceError(f"{path!r} is not on {self.prefix}")
        if not path.startswith("/"):
            raise SourceError(f"not an absolute path: {path!r}")
        return path


def default_user() -> str:
    """WebHDFS ``user.name`` (simple auth): ``$HADOOP_USER_NAME``, else the login name."""
    if os.environ.get("HADOOP_USER_NAME"):
        return os.environ["HADOOP_USER_NAME"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "sparkhist"
