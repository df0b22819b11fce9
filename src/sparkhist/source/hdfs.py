"""HDFS source over ``hdfs-native`` (native RPC), made safe for NameNode failures.

URLs: ``hdfs://<nameservice>/path`` (HA: the NameNodes come from
``dfs.ha.namenodes.<nameservice>`` in ``HADOOP_CONF_DIR`` or ``conf_dir``, plus
``overrides``), ``hdfs://host:port/path`` (one NameNode), ``hdfs:///path``
(``fs.defaultFS``). Entry paths are full URLs (``hdfs://ns/spark-events/app-1``);
``list``/``stat``/``open`` also take plain absolute paths.

hdfs-native has no NameNode timeout and retries for minutes by default (HDFS_NOTES
§1.7). This wrapper therefore:

* runs every NameNode and DataNode call of hdfs-native's *synchronous* client in a
  worker thread under a deadline (:mod:`sparkhist.source.deadline` says why not
  ``AsyncClient``: in 0.14.7 it panics and can deadlock the process when a NameNode
  connection drops): ``rpc_timeout`` (default 3 s) per metadata RPC, and for a listing
  per *page* (the deadline restarts with each batch of entries, so a directory of
  100 000 logs is not cut off); ``read_timeout`` (default 10 s) per ranged read of at
  most ``chunk_size`` bytes, never for a whole log. A call past its deadline is
  abandoned (its thread stays blocked until the socket answers or breaks);
  ``max_hung`` caps them;
* sets hdfs-native's own failover small and explicit: ``dfs.client.failover.max.attempts``
  = number of NameNodes - 1 (one pass, no sleep; sleeps 50-500 ms are set anyway), so an
  attempt is short and our retry policy, with jittered backoff, is the one that waits;
* after a deadline or connection failure, throws the client away and builds a new one
  whose ``dfs.ha.namenodes.<ns>`` order is *rotated*: the old first NameNode goes last,
  and a quick concurrent probe of each NameNode (``getFileInfo /`` against it alone)
  puts the one that answers as active first. A hung active NameNode costs one deadline;
  the next attempt goes to the new active one. When after a deadline no NameNode
  answers the probe at all, the call is not retried and the breaker opens at once (the
  whole cluster is hung or cut off: detection costs one deadline plus the probe, not
  one per retry and per call);
* wraps it all in one circuit breaker per source (:mod:`sparkhist.source.guard`): while
  open, calls fail fast with :class:`~sparkhist.errors.SourceUnavailable`;
* translates every backend error, including ``pyo3_runtime.PanicException`` (a
  ``BaseException``), into ``sparkhist.errors`` classes (:mod:`sparkhist.source.faults`).

**Kerberos.** With ``hadoop.security.authentication=kerberos`` in the configuration,
hdfs-native authenticates with ``kerberos_principal`` + ``kerberos_keytab`` when given
(``spark.history.kerberos.*``), else with the ticket cache (``kinit``, ``$KRB5CCNAME``);
the probe clients authenticate the same way. WebHDFS (the in-progress tail) has no
SPNEGO here: on a Kerberized cluster its calls fail and in-progress logs are read up
to their last completed block. Not tested against a KDC (none in the test harness).

**Files still being written.** hdfs-native sees only the completed blocks of a file
that is open for writing (``len(reader)`` is 0 for a fresh ``.inprogress`` log, and
reading past it panics). For :func:`~sparkhist.source.webhdfs.live_files` the source
asks WebHDFS (the NameNodes' HTTP ports, ``dfs.namenode.http-address.<ns>.<id>``) for
the visible length, which includes hflushed bytes, and reads the bytes after the last
completed block through WebHDFS ``OPEN``. Set ``webhdfs=False`` to use only RPC (then
in-progress logs show up to their last completed block, or hsynced length).

**Without WebHDFS** (``dfs.webhdfs.enabled=false``: HTTP 404 under ``/webhdfs/v1``; an
HTTP port that is firewalled, or that wants SPNEGO; no ``dfs.namenode.http-address``)
the listing never fails for it: each in-progress log is read through RPC up to its last
completed block, and the reason is reported once, as one entry for the whole source
(its root, reason ``webhdfs_unavailable``) in :attr:`HdfsSource.skipped`, cleared when
WebHDFS answers again. After a 404 or 401 WebHDFS is not asked again for
``webhdfs_retry_after`` seconds (a disabled service does not come back by itself).
"""

from __future__ import annotations

import builtins
import concurrent.futures
import contextlib
import functools
import logging
import posixpath
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sparkhist.errors import ConfigError, SourceError, SourceNotFound, SourceUnavailable
from sparkhist.resilience.breaker import CircuitBreaker
from sparkhist.resilience.retry import RetryPolicy
from sparkhist.source.base import ByteStream, FileEntry, SourceHealth
from sparkhist.source.deadline import Call, DeadlineExceeded, LoopThread, ThreadRunner
from sparkhist.source.faults import STANDBY_EXCEPTION, translate_error, translating
from sparkhist.source.guard import SourceGuard, default_retry
from sparkhist.source.hadoop_conf import NameNodes, find_conf_dir, load_conf, resolve_namenodes
from sparkhist.source.ranged import RangeStream
from sparkhist.source.skipped import WEBHDFS_UNAVAILABLE, SkippedLogs
from sparkhist.source.webhdfs import WebHdfsClient, WebHdfsNotServed, default_user, is_live_name, live_files, with_visible_lengths

__all__ = ["HdfsSource"]

log = logging.getLogger("sparkhist.source")

T = TypeVar("T")


def _list_all(client: Any, p: str, tick: Callable[[], None]) -> list[Any]:
    """Every entry of ``p``; ``tick()`` as entries arrive (pages of ``dfs.ls.limit``)."""
    out = []
    for st in client.list_status(p):
        out.append(st)
        tick()
    return out


#: Rolling directories whose last listing is remembered (oldest forgotten first).
_ROLLING_MEMORY = 100_000


@dataclass
class _ClientState:
    generation: int
    client: Any  # hdfs_native.Client


class HdfsSource:
    """A log directory on HDFS. Thread-safe: any number of threads may call it."""

    def __init__(
        self,
        url: str,
        *,
        conf_dir: str | None = None,
        overrides: Mapping[str, str] | None = None,
        rpc_timeout: float = 3.0,
        read_timeout: float = 10.0,
        list_timeout: float | None = None,
        probe_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        breaker_reset: float = 10.0,
        chunk_size: int = 4 << 20,
        webhdfs: bool = True,
        max_hung: int = 32,
        kerberos_principal: str | None = None,
        kerberos_keytab: str | None = None,
        live: Callable[[str, list[FileEntry]], set[str]] = live_files,
        wall: Callable[[], float] = time.time,
        webhdfs_retry_after: float = 60.0,
    ) -> None:
        scheme, sep, rest = url.partition("://")
        if scheme != "hdfs" or not sep:
            raise ConfigError(f"not an hdfs:// URL: {url!r}")
        authority, _, path = rest.partition("/")
        self.conf_dir = find_conf_dir(conf_dir)
        self.conf = load_conf(conf_dir, overrides)
        self.namenodes: NameNodes = resolve_namenodes(authority, self.conf)
        self.authority = self.namenodes.authority
        self.prefix = f"hdfs://{self.authority}"
        base = posixpath.normpath("/" + path) if path else "/"
        self.root = self.root_path = self.prefix + (base if base != "/" else "")
        self.rpc_timeout = rpc_timeout
        self.read_timeout = read_timeout
        #: A listing is one RPC per 1000 entries (dfs.ls.limit): this deadline is per page.
        self.list_timeout = list_timeout if list_timeout is not None else rpc_timeout
        self.probe_timeout = probe_timeout if probe_timeout is not None else min(1.0, rpc_timeout)
        self.chunk_size = chunk_size
        self.live = live
        self.overrides = dict(overrides or {})
        if bool(kerberos_principal) != bool(kerberos_keytab):
            raise ConfigError("Kerberos needs both a principal and a keytab (or neither: the ticket cache, after kinit)")
        #: hdfs-native's Kerberos arguments (used when hadoop.security.authentication=kerberos).
        self.kerberos: dict[str, str] = (
            {"kerberos_principal": kerberos_principal, "kerberos_keytab": kerberos_keytab}
            if kerberos_principal and kerberos_keytab
            else {}
        )
        self.order = [n.id for n in self.namenodes.nodes]  # current try order (HA ids)
        self.rebuilds = 0  # clients thrown away after a failure
        self.probes = 0  # single-NameNode probe calls
        self.guard = SourceGuard(
            self.prefix,
            retry=retry or default_retry(timeout=rpc_timeout),
            breaker=breaker or CircuitBreaker(self.prefix, failure_threshold=5, reset_timeout=breaker_reset),
            wall=wall,
        )
        self._lock = threading.Lock()
        self._rolling: dict[str, tuple[frozenset[str], frozenset[str]]] = {}  # see _remember_rolling
        self._state: _ClientState | None = None
        self._generation = 0
        self._runner = ThreadRunner("hdfs", max_hung=max_hung)
        self._loop = LoopThread("hdfs-webhdfs")  # WebHDFS (httpx) only
        self._webhdfs: WebHdfsClient | None = None
        http = [n.http for n in self.namenodes.nodes if n.http]
        if webhdfs and http:
            self._webhdfs = WebHdfsClient(http, user=default_user(), timeout=read_timeout)
        # WebHDFS failures only make in-progress logs stale: a breaker of their own, so
        # a closed HTTP port never takes the RPC side offline.
        retry_rpc, web_name = self.guard.retry, self.prefix + " (WebHDFS)"
        self.web_guard = SourceGuard(
            web_name,
            retry=RetryPolicy(attempts=2, backoff=retry_rpc.backoff, sleep=retry_rpc.sleep, clock=retry_rpc.clock),
            breaker=CircuitBreaker(web_name, failure_threshold=3, reset_timeout=self.guard.breaker.reset_timeout),
            wall=wall,
        )
        self.skipped = SkippedLogs(self.root)
        self.webhdfs_retry_after = webhdfs_retry_after
        self._webhdfs_off_until = 0.0  # monotonic: WebHDFS said "not served" (404/401); not asked again before

    # -- Source protocol -----------------------------------------------------------------
    def list(self, path: str) -> builtins.list[FileEntry]:
        p = self._path(path)
        statuses = self._call("list", lambda client, tick: _list_all(client, p, tick), self.list_timeout, f"list {p}", idle=True)
        entries = [self._entry(posixpath.join(p, posixpath.basename(st.path.rstrip("/"))), st) for st in statuses]
        live = self.live(self._url(p), entries)
        if posixpath.basename(p).startswith("eventlog_v2_"):
            self._remember_rolling(p, entries, live)
        out = with_visible_lengths(entries, live, self._with_visible_length)  # without WebHDFS: the RPC length
        self.skipped.after_listing(self._url(p), [e.path for e in entries])
        return out

    def stat(self, path: str) -> FileEntry:
        p = self._path(path)

        entry = self._entry(p, self._call("stat", lambda client: client.get_file_info(p), self.rpc_timeout, f"stat {p}"))
        return self._with_visible_length(entry) if not entry.is_dir and is_live_name(entry.name) else entry

    def open(self, path: str, offset: int = 0) -> ByteStream:
        """A stream of ``path`` from ``offset`` to the length visible now (never past it)."""
        p = self._path(path)
        reader = self._open_reader(p)
        readable = len(reader)  # completed blocks (+ hsynced length) as hdfs-native sees them
        length = readable
        if is_live_name(posixpath.basename(p)) or self._is_live_in_listing(p):
            visible = self._visible_length(p)
            length = readable if visible is None else max(readable, visible)
        holder = {"reader": reader}

        def fetch(pos: int, size: int) -> bytes:
            if pos < readable:
                return self._read_rpc(p, holder, pos, min(size, readable - pos))
            return self._read_webhdfs(p, pos, size)

        return RangeStream(fetch, length, offset, chunk_size=self.chunk_size, name=self._url(p))

    def delete(self, path: str) -> None:
        """Deletes ``path`` (a directory with its files); a missing path is no error."""
        p = self._path(path)
        try:
            self._call("delete", lambda client: client.delete(p, True), self.rpc_timeout, f"delete {p}")
        except SourceNotFound:
            return
        with self._lock:
            self._rolling.pop(p, None)

    def join(self, parent: str, name: str) -> str:
        return parent.rstrip("/") + "/" + name

    def put_atomic(self, path: str, data: bytes) -> None:
        """Write ``path`` whole or not at all (a store location's write side, not a log
        source's): created under a temporary name beside it (parents made), written,
        closed, then renamed over ``path``. A writer killed before the rename leaves only
        the temporary file (``.<name>.<random>.tmp``), which the store's writer removes."""
        p = self._path(path)
        temp = posixpath.join(posixpath.dirname(p), f".{posixpath.basename(p)}.{uuid.uuid4().hex}.tmp")

        def write(client: Any) -> None:
            import hdfs_native

            options = hdfs_native.WriteOptions()
            options.overwrite = True
            options.create_parent = True
            with client.create(temp, options) as writer:
                view = memoryview(data)
                while view:
                    view = view[writer.write(view):]
            client.rename(temp, p, True)

        timeout = self.rpc_timeout + self.read_timeout * (1 + len(data) // self.chunk_size)
        try:
            self._call("put", write, timeout, f"put {p}")
        except SourceError:
            with contextlib.suppress(SourceError):
                self._call("delete", lambda client: client.delete(temp, False), self.rpc_timeout, f"delete {temp}")
            raise

    # -- health / lifecycle ------------------------------------------------------------
    @property
    def calls(self) -> dict[str, int]:
        """Remote calls made per operation (list, stat, open, read, length, probe)."""
        out = dict(self.guard.calls)
        for op, n in self.web_guard.calls.items():
            out[f"webhdfs_{op}"] = n
        if self.probes:
            out["probe"] = self.probes
        return out

    def health(self) -> SourceHealth:
        out = self.guard.health()
        out["namenode_order"] = list(self.order)
        out["client_rebuilds"] = self.rebuilds
        out["hung_calls"] = self._runner.hung
        if self._webhdfs is not None:
            out["webhdfs"] = self.web_guard.health()
        return out

    def close(self) -> None:
        """Release the clients and the event-loop thread; a second call does nothing."""
        if self._loop.loop.is_closed():
            return
        if self._webhdfs is not None:
            try:
                self._loop.run(self._webhdfs.aclose, 5.0, "close")
            except SourceError:
                pass
        with self._lock:
            self._state = None
        self._loop.close()

    # -- calls -------------------------------------------------------------------------------
    def _call(
        self,
        op: str,
        fn: Callable[..., T],
        timeout: float,
        what: str,
        on_failure: Callable[[], None] | None = None,
        *,
        idle: bool = False,
    ) -> T:
        """``fn(client)`` under the guard: one attempt = one deadline; rotation on failure.

        With ``idle``, ``fn(client, tick)`` is called and the deadline restarts at each
        ``tick()`` (one per listing page)."""
        used: dict[str, int] = {}

        def attempt() -> T:
            with translating(f"{self.prefix} {what}"):
                state = self._client_state()
                used["generation"] = state.generation
                client = state.client
                if idle:
                    return self._runner.run_idle(lambda tick: fn(client, tick), timeout, f"{self.prefix} {what}")
                return self._runner.run(lambda: fn(client), timeout, f"{self.prefix} {what}")

        def failed(exc: SourceUnavailable) -> None:
            if on_failure is not None:
                on_failure()
            self._replace_client(used.get("generation"), exc, what)

        return self.guard.run(op, attempt, on_failure=failed)

    def _client_state(self) -> _ClientState:
        """The current client, built on first use (construction makes no connection)."""
        with self._lock:
            if self._state is None:
                self._generation += 1
                self._state = _ClientState(self._generation, self._build_client(self.order))
            return self._state

    def _client_config(self, order: builtins.list[str]) -> dict[str, str]:
        n = len(self.namenodes.nodes)
        cfg = dict(self.conf)
        cfg.update(
            {
                "dfs.client.failover.sleep.base.millis": "50",
                "dfs.client.failover.sleep.max.millis": "500",
                # DataNode connect/idle: half a read deadline, so hdfs-native can still
                # move to another replica within one attempt.
                "dfs.client.socket-timeout": str(max(1000, int(self.read_timeout * 500))),
            }
        )
        if self.namenodes.ha:
            cfg[f"dfs.client.failover.random.order.{self.authority}"] = "false"
        cfg.update(self.overrides)  # an explicit override wins over our defaults...
        # ...except these two. One pass over the NameNodes and no more: hdfs-native's
        # default is 15 failovers with sleeps up to 15 s (minutes per call). n-1 failovers
        # never reach its sleep; our retry policy is the one that waits, with jitter.
        cfg["dfs.client.failover.max.attempts"] = str(max(0, n - 1))
        if self.namenodes.ha:
            cfg[f"dfs.ha.namenodes.{self.authority}"] = ",".join(order)
        return cfg

    def _build_client(self, order: builtins.list[str]) -> Any:
        import hdfs_native  # imported here: local-only installs never load the native module

        return hdfs_native.Client(self.prefix, self._client_config(order), self.conf_dir, **self.kerberos)

    def _replace_client(self, generation: int | None, exc: SourceUnavailable, what: str) -> None:
        """After a failed attempt: a new client, NameNodes rotated (and probed when HA)."""
        with self._lock:
            if generation is None or self._state is None or self._state.generation != generation:
                return  # another failure already replaced that client
            self._state = None
            self.rebuilds += 1
            old_order = list(self.order)
        if not self.namenodes.ha:
            log.warning("%s: %s failed (%s); reconnecting", self.prefix, what, exc)
            return
        rotated = old_order[1:] + old_order[:1]
        try:
            states = self._probe(rotated)
        except SourceError:
            states = {}
        rank = {"active": 0, "standby": 1, "answered": 1}
        new_order = sorted(rotated, key=lambda nid: rank.get(states.get(nid, ""), 2))
        with self._lock:
            self.order = new_order
        if isinstance(exc, DeadlineExceeded) and not any(v in ("active", "standby", "answered") for v in states.values()):
            # The whole cluster is hung or cut off: one deadline is proof enough. No
            # retry, and the breaker opens now, so the calls that follow (the rest of a
            # scan) fail fast instead of costing a deadline each.
            exc.retryable = False
            self.guard.breaker.trip(f"{what}: no answer within the deadline, and no NameNode answered a probe")
        log.warning(
            "%s: %s failed (%s); new client, NameNode order %s -> %s (probe: %s)",
            self.prefix, what, exc, ",".join(old_order), ",".join(new_order), states or "no answer",
        )

    def _probe(self, order: builtins.list[str]) -> dict[str, str]:
        """HA state of each NameNode, asked concurrently (``getFileInfo /`` against it
        alone); returns as soon as one answers as active, or after ``probe_timeout``."""
        import hdfs_native

        nodes = {n.id: n for n in self.namenodes.nodes}
        # The source's own settings (security, SASL...), minus the HA list: one NameNode.
        cfg = {k: v for k, v in {**self.conf, **self.overrides}.items() if not k.startswith("dfs.ha.namenodes.")}
        cfg["dfs.client.failover.max.attempts"] = "0"

        def one(nid: str) -> str:
            client = hdfs_native.Client(f"hdfs://{nodes[nid].rpc}", cfg, **self.kerberos)
            try:
                client.get_file_info("/")
                return "active"
            except Exception as exc:  # noqa: BLE001 - any answer but success
                if STANDBY_EXCEPTION in str(exc):
                    return "standby"
                if isinstance(exc, (FileNotFoundError, PermissionError)):
                    return "answered"
                if isinstance(exc, (OSError, TimeoutError)) or translate_error(exc, "probe").retryable:
                    return "down"  # refused, reset, unreachable
                return "answered"  # a remote error (permissions, auth...): alive, state unknown

        calls: dict[str, Call[str]] = {}
        for nid in order:
            self.probes += 1
            calls[nid] = self._runner.submit(functools.partial(one, nid), f"{self.prefix} probe {nid}")
        states: dict[str, str] = {}
        deadline = time.monotonic() + self.probe_timeout
        pending = {call.future: nid for nid, call in calls.items()}
        while pending and "active" not in states.values():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            done, _ = concurrent.futures.wait(pending, timeout=remaining, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                nid = pending.pop(future)
                try:
                    states[nid] = future.result()
                except BaseException:  # noqa: BLE001 - a panic in a probe means nothing
                    states[nid] = "down"
        for nid in pending.values():
            calls[nid].abandon()  # still blocked: a hung NameNode
        return states

    # -- reading ----------------------------------------------------------------------------
    def _open_reader(self, p: str) -> Any:
        return self._call("open", lambda client: client.read(p), self.rpc_timeout, f"open {p}")

    def _read_rpc(self, p: str, holder: dict[str, Any], pos: int, size: int) -> bytes:
        """Bytes of completed blocks, from DataNodes. After a failure the file is reopened
        (fresh block locations, through the new client) within the next attempt."""

        def op(client: Any) -> bytes:
            if holder.get("stale"):
                holder["reader"] = client.read(p)
                holder["stale"] = False
            reader = holder["reader"]
            n = min(size, len(reader) - pos)  # never past what hdfs-native knows: it panics
            if n <= 0:
                return b""
            return bytes(reader.read_range(pos, n))

        return self._call("read", op, self.read_timeout, f"read {p}@{pos}", on_failure=lambda: holder.__setitem__("stale", True))

    def _read_webhdfs(self, p: str, pos: int, size: int) -> bytes:
        web = self._webhdfs
        if web is None:
            return b""
        return self._web_call("read", lambda: web.read(p, pos, size), self.read_timeout, f"read {p}@{pos} (WebHDFS)")

    def _visible_length(self, p: str) -> int | None:
        """The length readers see (hflushed bytes included), through WebHDFS; None without
        WebHDFS (the reason reported once for the source): RPC reads up to its own length."""
        web = self._webhdfs
        if web is None:
            self._without_webhdfs("no WebHDFS address (dfs.namenode.http-address.*) is configured")
            return None
        if time.monotonic() < self._webhdfs_off_until:
            return None
        try:
            length = int(self._web_call("length", lambda: web.visible_length(p), self.read_timeout, f"length of {p}"))
        except SourceNotFound:
            raise
        except WebHdfsNotServed as exc:
            self._webhdfs_off_until = time.monotonic() + self.webhdfs_retry_after
            self._without_webhdfs(
                "the NameNodes' HTTP ports do not serve WebHDFS (HTTP 404; dfs.webhdfs.enabled=false?)" if exc.status == 404
                else f"WebHDFS asks for authentication (HTTP {exc.status}: SPNEGO), which sparkhist does not do"
            )
            log.debug("%s: %s", self.prefix, exc)
            return None
        except SourceUnavailable as exc:  # refused, timed out, breaker open: firewalled or down
            self._without_webhdfs("WebHDFS does not answer (refused, timed out or firewalled)")
            log.debug("%s: %s", self.prefix, exc)
            return None
        except SourceError as exc:
            self._without_webhdfs(f"WebHDFS fails ({type(exc).__name__})")
            log.debug("%s: %s", self.prefix, exc)
            return None
        self.skipped.clear(self.root, (WEBHDFS_UNAVAILABLE,))
        return length

    def _without_webhdfs(self, why: str) -> None:
        self.skipped.report(self.root, WEBHDFS_UNAVAILABLE,
                            f"{why}; logs being written are read through RPC up to their last completed block")

    def _web_call(self, op: str, factory: Callable[[], Awaitable[T]], timeout: float, what: str) -> T:
        web = self._webhdfs
        assert web is not None

        def attempt() -> T:
            with translating(f"{self.prefix} {what}"):
                return self._loop.run(factory, timeout, f"{self.prefix} {what}")

        def on_failure(exc: SourceUnavailable) -> None:
            failed = web.active
            self._loop.call_soon(lambda: web.rotate(failed))

        return self.web_guard.run(op, attempt, on_failure=on_failure)

    def _with_visible_length(self, entry: FileEntry) -> FileEntry:
        """A live file's size as it can be read: through WebHDFS, the visible length; without
        it, what RPC reads (its completed blocks), which may be less than the NameNode says
        after an hflush that reached it. :class:`SourceNotFound` when it is gone."""
        p = self._path(entry.path)
        visible = self._visible_length(p)
        if visible is None:
            try:
                size = self._call("open", lambda client: len(client.read(p)), self.rpc_timeout, f"open {p}")
            except SourceNotFound:
                raise
            except SourceError as exc:
                log.warning("%s: readable length of %s unknown (%s); using the NameNode's", self.prefix, p, exc)
                return entry
        else:
            size = max(entry.size, visible)
        if size == entry.size:
            return entry
        return FileEntry(entry.path, entry.name, size, entry.mtime_ms, entry.is_dir)

    def _remember_rolling(self, parent: str, entries: builtins.list[FileEntry], live: set[str]) -> None:
        """What the last listing of a rolling directory said, so opening one of its files
        needs no second listing (the scanner lists, then reads: one NameNode call, not two)."""
        with self._lock:
            self._rolling[parent] = (frozenset(e.name for e in entries), frozenset(live))
            while len(self._rolling) > _ROLLING_MEMORY:
                self._rolling.pop(next(iter(self._rolling)))

    def _is_live_in_listing(self, p: str) -> bool:
        """The last ``events_*`` file of an in-progress rolling log, by listing its directory.

        A file named in the last listing of its directory is judged by that listing: a
        file only stops being the live one (a newer file, or the app completed), it never
        becomes live later; a stale "live" costs one visible-length call, not a wrong read.
        """
        parent = posixpath.dirname(p)
        if not posixpath.basename(parent).startswith("eventlog_v2_") or not posixpath.basename(p).startswith("events_"):
            return False
        with self._lock:
            known = self._rolling.get(parent)
        if known is not None and posixpath.basename(p) in known[0]:
            return self._url(p) in known[1]

        try:
            statuses = self._call(
                "list", lambda client, tick: _list_all(client, parent, tick), self.list_timeout, f"list {parent}", idle=True
            )
        except SourceNotFound:
            return False
        entries = [self._entry(posixpath.join(parent, posixpath.basename(st.path.rstrip("/"))), st) for st in statuses]
        live = self.live(self._url(parent), entries)
        self._remember_rolling(parent, entries, live)
        return self._url(p) in live

    # -- paths ----------------------------------------------------------------------------
    def _entry(self, p: str, st: Any) -> FileEntry:
        is_dir = bool(st.isdir)
        return FileEntry(
            path=self._url(p),
            name=posixpath.basename(p) or "/",
            size=0 if is_dir else int(st.length),
            mtime_ms=int(st.modification_time),
            is_dir=is_dir,
        )

    def _url(self, p: str) -> str:
        return self.prefix + p

    def _path(self, path: str) -> str:
        """The HDFS path of a URL or absolute path on this source."""
        if path.startswith(self.prefix + "/") or path == self.prefix:
            path = path[len(self.prefix) :] or "/"
        elif path.startswith("hdfs:///"):
            path = path[len("hdfs://") :]
        elif "://" in path:
            raise SourceError(f"{path!r} is not on {self.prefix}")
        if not path.startswith("/"):
            raise SourceError(f"not an absolute path: {path!r}")
        return posixpath.normpath(path) if path != "/" else "/"
