"""Several processes answering HTTP on one port, over one store (``serve_processes`` above 1).

The server process (the store's writer, or a standby) answers on a socket bound with
``SO_REUSEPORT`` (:func:`listen_socket`) and starts ``serve_processes - 1`` *serving
processes* (:mod:`sparkhist.server.replica`), each binding its own socket to the same
address: the kernel spreads new connections over them. A serving process only reads the
store: it follows the catalog the writer commits, reads snapshots, and builds a state
from its log when no snapshot is there yet (without writing it). What only the server
process knows, a serving process asks it over a Unix socket (:class:`ControlServer`):

- ``/health/details``, ``/ready`` and ``/metrics`` are the server process's answers;
- an on-demand load of an unknown application is the writer's, which builds and saves its
  snapshot before it answers (the serving process reads it; the scan is handed that build);
- the requests a serving process answered are counted in the server process's metrics.

A serving process that dies is started again (:class:`ServingProcesses`, backoff
doubling from 0.5 s up to 10 s); the health document says how many answer and how many
restarts there were, and is degraded while one is missing. A serving process exits when
the server process is gone.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import pickle
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from sparkhist.config import Settings
from sparkhist.errors import LogError, SourceError, StoreError

if TYPE_CHECKING:
    from sparkhist.server.pending import PendingRuntime

log = logging.getLogger("sparkhist.server")

#: Restart backoff of a serving process that died: doubling from the first, at most the cap;
#: a process that lived ``STABLE_AFTER`` seconds starts the count again.
RESTART_FIRST = 0.5
RESTART_CAP = 10.0
STABLE_AFTER = 30.0
#: How often the supervisor looks at its serving processes.
WATCH_EVERY = 0.1
#: How long a stop waits for the serving processes to finish their requests before killing them.
STOP_WAIT = 3.0


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` that other processes of this user may bind too
    (``SO_REUSEPORT``: the kernel spreads new connections over every socket bound there)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class ReplicaSpec:
    """What a serving process is told at its start (pickled on its stdin)."""

    settings: Settings
    control: str  # the server process's Unix socket
    parent: int  # the server process's pid: when it is gone, the serving process stops
    log_level: str
    log_format: str


def _log_setup() -> tuple[str, str]:
    """This process's log level and format, for a serving process to log the same way."""
    from sparkhist.observability.logs import JsonFormatter

    root = logging.getLogger()
    fmt = "json" if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers) else "plain"
    return logging.getLevelName(root.level).lower(), fmt


@dataclass
class _Slot:
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0  # deaths in a row (reset by a process that lived STABLE_AFTER)
    due: float = 0.0  # when a dead one is started again
    answering: bool = False  # bound its socket and said so


class ServingProcesses:
    """Starts the serving processes, starts a dead one again, stops them all."""

    def __init__(self, settings: Settings, control: str, count: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.control = control
        self.count = count
        self.clock = clock
        self.restarts = 0
        self._slots = [_Slot() for _ in range(count)]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sparkhist-serving", daemon=True)

    def start(self) -> None:
        with self._lock:
            for slot in self._slots:
                self._spawn(slot)
        self._thread.start()

    def _spawn(self, slot: _Slot) -> None:
        level, fmt = _log_setup()
        spec = ReplicaSpec(self.settings, self.control, os.getpid(), level, fmt)
        proc = subprocess.Popen([sys.executable, "-m", "sparkhist.server.replica"], stdin=subprocess.PIPE,
                                close_fds=True)
        assert proc.stdin is not None
        try:
            proc.stdin.write(pickle.dumps(spec))
        except OSError:  # died at once: seen by the watch
            pass
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        slot.proc, slot.started, slot.answering = proc, self.clock(), False
        log.info("serving process %d started", proc.pid, extra={"event": "serving_process_started", "pid": proc.pid})

    def answering(self, pid: int) -> None:
        """The serving process ``pid`` bound its socket."""
        with self._lock:
            for slot in self._slots:
                if slot.proc is not None and slot.proc.pid == pid:
                    slot.answering = True

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            with self._lock:
                if self._stop.is_set():
                    return
                now = self.clock()
                for slot in self._slots:
                    proc = slot.proc
                    if proc is not None and proc.poll() is not None:
                        slot.failures = 1 if now - slot.started >= STABLE_AFTER else slot.failures + 1
                        delay = min(RESTART_CAP, RESTART_FIRST * 2 ** (slot.failures - 1))
                        log.warning("serving process %d exited with status %s; starting another in %.1fs", proc.pid,
                                    proc.returncode, delay, extra={"event": "serving_process_died", "pid": proc.pid,
                                                                   "status": proc.returncode})
                        slot.proc, slot.answering, slot.due = None, False, now + delay
                    elif proc is None and now >= slot.due:
                        self.restarts += 1
                        self._spawn(slot)

    def status(self) -> dict[str, Any]:
        """For the health document: the server process counts as one answering process."""
        with self._lock:
            pids = [s.proc.pid for s in self._slots if s.proc is not None and s.answering]
            return {"processes": self.count + 1, "answering": 1 + len(pids), "restarts": self.restarts,
                    "pids": [os.getpid(), *pids]}

    def terminate(self) -> None:
        """SIGTERM to each (they finish their requests and exit); none is started again."""
        with self._lock:
            self._stop.set()
            procs = [s.proc for s in self._slots if s.proc is not None]
        for proc in procs:
            with contextlib.suppress(OSError):
                proc.terminate()

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """:meth:`terminate`, then SIGKILL to those still there after ``timeout``."""
        self.terminate()
        with self._lock:
            procs = [s.proc for s in self._slots if s.proc is not None]
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("serving process %d did not stop within %.1fs; killed", proc.pid, timeout)
                proc.kill()
                proc.wait()
        if self._thread.is_alive():
            self._thread.join(1.0)


def with_serving(health: Callable[[], dict[str, Any]],
                 serving: Callable[[], ServingProcesses | None]) -> Callable[[], dict[str, Any]]:
    """The health document, with the serving processes' figures (degraded while one is missing)."""

    def document() -> dict[str, Any]:
        doc = health()
        processes = serving()
        if processes is not None:
            status = processes.status()
            doc["serving"] = status
            missing = status["processes"] - status["answering"]
            if missing:
                doc.setdefault("reasons", []).append(f"{missing} of {status['processes']} serving processes "
                                                     "not answering (being started again)")
                doc["status"] = "degraded"
        return doc

    return document


# -- the server process's side of the Unix socket -------------------------------------------
@dataclass
class ControlHandlers:
    """What the serving processes ask the server process."""

    health: Callable[[], dict[str, Any]]
    ready: Callable[[], bool]
    exposition: Callable[[str], tuple[bytes, str]]
    observe: Callable[[str, int, float], None]
    on_demand: Callable[[str], bool]
    answering: Callable[[int], None]


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    handlers: ControlHandlers


class _ControlRequest(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _UnixHTTPServer

    def do_GET(self) -> None:
        handlers = self.server.handlers
        url = urllib.parse.urlsplit(self.path)
        try:
            if url.path == "/health":
                self._send(200, orjson.dumps(handlers.health()), "application/json")
            elif url.path == "/ready":
                self._send(200, orjson.dumps(handlers.ready()), "application/json")
            elif url.path == "/metrics":
                accept = urllib.parse.parse_qs(url.query).get("accept", [""])[0]
                body, content_type = handlers.exposition(accept)
                self._send(200, body, content_type)
            else:
                self._send(404, b"{}", "application/json")
        except Exception as exc:  # the serving process answers 503 with this
            log.exception("control request %s failed", url.path)
            self._send(503, orjson.dumps({"error": str(exc)}), "application/json")

    def do_POST(self) -> None:
        handlers = self.server.handlers
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            if url.path.startswith("/on-demand/"):
                found = handlers.on_demand(urllib.parse.unquote(url.path[len("/on-demand/"):]))
                self._send(200, orjson.dumps(found), "application/json")
            elif url.path == "/observed":
                for route, status, seconds in orjson.loads(body):
                    handlers.observe(route, status, seconds)
                self._send(200, b"true", "application/json")
            elif url.path.startswith("/answering/"):
                handlers.answering(int(url.path[len("/answering/"):]))
                self._send(200, b"true", "application/json")
            else:
                self._send(404, b"{}", "application/json")
        except Exception as exc:
            log.exception("control request %s failed", url.path)
            self._send(503, orjson.dumps({"error": str(exc)}), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: " + format, *args)


class ControlServer:
    """The server process's Unix socket for its serving processes (in a private directory)."""

    def __init__(self, handlers: ControlHandlers) -> None:
        self._dir = tempfile.mkdtemp(prefix="sparkhist-")  # mode 0700: only this user connects
        self.path = os.path.join(self._dir, "control.sock")
        self._server = _UnixHTTPServer(self.path, _ControlRequest)
        self._server.handlers = handlers
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,), name="sparkhist-control",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self._dir, ignore_errors=True)


class ServingGroup:
    """The server process's side of ``serve_processes`` above 1: its own socket, the
    Unix socket its serving processes ask, and the serving processes themselves."""

    def __init__(self, settings: Settings, pending: PendingRuntime) -> None:
        self.settings = settings
        self.pending = pending
        self.processes: ServingProcesses | None = None
        self.control: ControlServer | None = None
        self.health = with_serving(pending.health, lambda: self.processes)
        self._lock = threading.Lock()
        self._stopping = False  # a stop came first: nothing is started any more

    def socket(self, host: str, port: int) -> socket.socket:
        """This process's listening socket (the serving processes bind the same address)."""
        return listen_socket(host, port)

    def _on_demand(self, app_id: str) -> bool:
        runtime = self.pending.wait()
        if runtime.loop.role != "writer" or not runtime.scanner.index_on_demand(app_id):
            return False
        # The serving process that asks answers from the snapshot, built and saved here once
        # (the scan waiting for this build, not making its own), not built there again.
        indexer, app = runtime.scanner.indexer, runtime.index.get(app_id)
        if indexer is None or app is None:
            return True
        for attempt in app.attempts:
            try:
                indexer.build(attempt.log_path, persist=True)
            except (SourceError, LogError, StoreError) as exc:  # the serving process builds it then
                log.info("on-demand load of %s: %s not built here: %s", app_id, attempt.log_path, exc)
        return True

    def start(self) -> None:
        """Once the runtime is complete: the Unix socket, then the serving processes (not after a stop)."""
        pending = self.pending
        handlers = ControlHandlers(health=self.health, ready=pending.is_ready, exposition=pending.exposition,
                                   observe=pending.observe_request, on_demand=self._on_demand,
                                   answering=lambda pid: self.processes.answering(pid) if self.processes else None)
        with self._lock:
            if self._stopping:
                return
            self.control = ControlServer(handlers)
            self.control.start()
            self.processes = ServingProcesses(self.settings, self.control.path, self.settings.serve_processes - 1)
            self.processes.start()

    def terminate(self) -> None:
        """The stop's first step: the serving processes told to finish (they stop beside the rest)."""
        with self._lock:
            self._stopping = True
            processes = self.processes
        if processes is not None:
            processes.terminate()

    def stop(self) -> None:
        """The stop's last step: the serving processes gone (killed if need be), the Unix socket closed."""
        self.terminate()
        if self.processes is not None:
            self.processes.stop()
        if self.control is not None:
            self.control.close()
