"""A serving process: answers HTTP beside the server process, from the store it writes.

Started by :class:`~sparkhist.server.serving.ServingProcesses` as
``python -m sparkhist.server.replica`` with a pickled
:class:`~sparkhist.server.serving.ReplicaSpec` on stdin. It opens the catalog read-only
and lists it, then binds its own ``SO_REUSEPORT`` socket on the server's address (so it
takes connections only once it can answer them). :class:`CatalogFollower` reads what the
writer committed to the catalog (SQLite's ``data_version``, looked at every
``FOLLOW_EVERY`` seconds), so a log the writer listed is listed here within that time:
only the rows changed since its last read (the catalog's change sequence), or the whole
catalog when the change cannot be read as a delta (another database, a rebuild, a gap).
Health, readiness, metrics and on-demand loads are the server process's
(:class:`ServerProcess`). It stops on SIGTERM, and when the server process is gone.

SIGINT is the server process's: a terminal's Ctrl-C reaches the whole process group, and
the server process stops its serving processes with SIGTERM once it has stopped taking
connections (a serving process that stopped on its own first would be started again).
After a SIGTERM's graceful stop the process exits 0 once its clean-up has run: uvicorn
raises the signal again when it returns, which without :func:`_stopped` would end the
process before that clean-up, or print a ``KeyboardInterrupt`` traceback.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sqlite3
import sys
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from sparkhist.errors import ServiceUnavailable
from sparkhist.server.serving import ReplicaSpec, listen_socket
from sparkhist.store.catalog import ChangeMark

if TYPE_CHECKING:
    import socket
    from types import FrameType

    from sparkhist.scan.scanner import Scanner
    from sparkhist.server.opening import OpenedStore
    from sparkhist.store.applications import AttemptEntry
    from sparkhist.store.records import LogRecord

log = logging.getLogger("sparkhist.server")

#: How often the catalog's commit counter is looked at (and whether the server process is still there).
FOLLOW_EVERY = 0.05
#: How often the requests answered here are handed to the server process's metrics.
OBSERVED_EVERY = 0.5
#: Deadline of a question to the server process (an on-demand load may read logs).
CONTROL_TIMEOUT = 60.0


class ServerProcess:
    """The server process, asked over its Unix socket: health, readiness and metrics
    (an :class:`~sparkhist.api.ops.MetricsExporter`), and on-demand loads."""

    def __init__(self, control: str) -> None:
        self._client = httpx.Client(transport=httpx.HTTPTransport(uds=control), base_url="http://sparkhist",
                                    timeout=CONTROL_TIMEOUT)
        self._observed: list[tuple[str, int, float]] = []
        self._lock = threading.Lock()

    def _ask(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"the server process does not answer: {exc}") from exc
        if response.status_code != 200:
            raise ServiceUnavailable(f"the server process answered {response.status_code}: {response.text[:200]}")
        return response

    def health(self) -> dict[str, Any]:
        document: dict[str, Any] = self._ask("GET", "/health").json()
        return document

    def ready(self) -> bool:
        try:
            return bool(self._ask("GET", "/ready").json())
        except ServiceUnavailable:
            return False

    def exposition(self, accept: str) -> tuple[bytes, str]:
        self.flush()  # this process's requests so far are in the figures
        response = self._ask("GET", "/metrics", params={"accept": accept})
        return response.content, response.headers.get("content-type", "text/plain")

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            if len(self._observed) < 100_000:
                self._observed.append((route, status, seconds))

    def flush(self) -> None:
        with self._lock:
            observed, self._observed = self._observed, []
        if observed:
            try:
                self._ask("POST", "/observed", content=orjson.dumps(observed))
            except ServiceUnavailable as exc:
                log.debug("requests answered here not counted: %s", exc)

    def load_on_demand(self, app_id: str) -> bool:
        found = self._ask("POST", "/on-demand/" + urllib.parse.quote(app_id, safe="")).json()
        return bool(found)

    def answering(self) -> None:
        self._ask("POST", f"/answering/{os.getpid()}")

    def close(self) -> None:
        self._client.close()


class CatalogFollower:
    """Applies what the writer committed to the catalog to this process's records and index."""

    def __init__(self, scanner: Scanner, parent: int, every: float = FOLLOW_EVERY) -> None:
        self.scanner = scanner
        self.parent = parent
        self.every = every
        self.reloads = 0  # whole catalog read
        self.deltas = 0  # only the rows changed read
        self._mark: ChangeMark | None = None
        self._follow_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sparkhist-follow", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def reload(self) -> None:
        """The whole catalog read again (what a delta is checked against)."""
        with self._follow_lock:
            self._mark = None
            self._follow()

    def follow(self) -> None:
        """What was committed since the last follow: the changed rows, or everything when
        the change cannot be read as a delta."""
        with self._follow_lock:
            self._follow()

    def _follow(self) -> None:
        scanner = self.scanner
        changes = scanner.catalog.changes_since(self._mark)
        with scanner.lock:
            records, index = scanner.records, scanner.index
            if changes.full:
                for path in [p for p in records if p not in changes.records]:
                    del records[path]
                    index.remove(path)
                changed = {path: record for path, record in changes.records.items()
                           if (old := records.get(path)) is None or old.to_dict() != record.to_dict()}
                self.reloads += 1
            else:
                for path in changes.removed:
                    if records.pop(path, None) is not None:
                        index.remove(path)
                changed = changes.records
                self.deltas += 1
            records.update(changed)
            self._index(changed, changes.entries)
        self._mark = changes.mark

    def _index(self, changed: dict[str, LogRecord], stored: dict[str, AttemptEntry]) -> None:
        """(Under the scanner's lock.) The changed records into the index, with the listing rows
        the writer stored (in bulk, one build per application), as the writer's own index shows
        them: taken as this process's listing load took the others (both are opened with the
        server's settings, so the rows are rendered for this index's log directories)."""
        index = self.scanner.index
        for path in changed:
            if path not in stored:  # not listed (no application id): not in the list either
                index.remove(path)
        index.load_entries(stored[path] for path in changed if path in stored)

    def _run(self) -> None:
        path = self.scanner.catalog.path
        db = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True, isolation_level=None,
                             check_same_thread=False)
        try:
            seen = db.execute("PRAGMA data_version").fetchone()[0]
            self.reload()  # what was committed between the listing load and now
            while not self._stop.wait(self.every):
                try:
                    version = db.execute("PRAGMA data_version").fetchone()[0]
                    if version != seen:
                        seen = version
                        self.follow()
                except Exception:  # a failed re-read is tried again at the next commit or tick
                    log.exception("could not re-read the catalog")
                    seen = None
        finally:
            db.close()


def open_reader(spec: ReplicaSpec) -> OpenedStore:
    """The store opened read-only (never its writer, whatever happens to the writer), its listing loaded."""
    from sparkhist.server.opening import open_store

    return open_store(spec.settings, listing=True, may_write=False)


def serve_replica(spec: ReplicaSpec) -> None:
    import uvicorn

    from sparkhist.access.settings import access_policy
    from sparkhist.access.tls import tls_config
    from sparkhist.api.app import ServerContext, create_app
    from sparkhist.api.connections import uvicorn_options
    from sparkhist.scan.on_demand import OnDemandIndex
    from sparkhist.scan.scanner import Scanner
    from sparkhist.server.runtime import handle_app_resource
    from sparkhist.server.startup import SHUTDOWN_GRACE
    from sparkhist.server.state_readers import store_readers

    settings = spec.settings
    parent = ServerProcess(spec.control)
    opened = open_reader(spec)
    readers = store_readers(opened)
    scanner = Scanner(opened.source, opened.catalog, opened.index)
    scanner.load(index_loaded=True)
    follower = CatalogFollower(scanner, spec.parent)

    def load_on_demand(app_id: str) -> bool:
        if not parent.load_on_demand(app_id):
            return False
        follower.follow()  # what the writer just wrote
        return True

    lookup = OnDemandIndex(opened.index, load_on_demand, miss_ttl=max(settings.scan_interval, 1.0))
    context = ServerContext(index=lookup, source=opened.source, states=readers.states,
                            handle_app_resource=handle_app_resource, health=parent.health, ready=parent.ready,
                            metrics=parent, response_cache=opened.response_cache, access=access_policy(settings),
                            store_dir=settings.store_dir, log_source=settings.log_source,
                            loaded_index=lambda: opened.index)
    app = create_app(context)
    tls = tls_config(settings)
    port = settings.port if tls is None else tls.port
    sock = listen_socket(settings.host, port)
    config = uvicorn.Config(app, log_level="warning", access_log=False, log_config=None,
                            timeout_graceful_shutdown=SHUTDOWN_GRACE, lifespan="off",
                            ssl_context_factory=None if tls is None else (lambda _config, _default: tls.context),
                            **uvicorn_options(settings))
    stop = threading.Event()

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if sig != signal.SIGINT:  # a Ctrl-C is the server process's to handle (see above)
                super().handle_exit(sig, frame)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                threading.Thread(target=parent.answering, daemon=True).start()

    def flush_observed() -> None:
        while not stop.wait(OBSERVED_EVERY):
            parent.flush()

    follower.start()
    threading.Thread(target=flush_observed, name="sparkhist-observed", daemon=True).start()
    log.info("serving process %d: %d applications listed in %.3fs", os.getpid(), len(opened.index),
             time.monotonic() - opened.t0)
    try:
        Server(config).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM does not cut the clean-up short
        stop.set()
        follower.stop()
        parent.flush()
        parent.close()
        sock.close()
        opened.catalog.close()
        opened.source.inner.close()
        log.info("serving process %d stopped", os.getpid())


def _stopped(signum: int, frame: FrameType | None) -> None:
    """SIGTERM outside uvicorn's own handler (before serving, or raised again after it): a clean exit."""
    raise SystemExit(0)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # also keeps asyncio's runner from installing its own
    signal.signal(signal.SIGTERM, _stopped)
    spec: ReplicaSpec = pickle.load(sys.stdin.buffer)
    from sparkhist.observability.logs import setup_logging

    setup_logging(spec.log_level, spec.log_format, sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per question to the server process
    threading.Thread(target=_orphan_watch, args=(spec.parent,), name="sparkhist-parent", daemon=True).start()
    serve_replica(spec)


def _orphan_watch(parent: int) -> None:
    """Stop (SIGTERM: a clean stop once serving, an exit before) as soon as the server process is gone."""
    while os.getppid() == parent:
        time.sleep(FOLLOW_EVERY)
    log.warning("the server process %d is gone; stopping", parent)
    os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    main()
