"""``serve``: the two-step start, the HTTP server, and the stop.

``serve`` starts in two steps, so a restart answers the application list as soon as
possible: first the catalog's listing rows fill the index and the HTTP server binds
(only what answering the list needs is imported, :mod:`sparkhist.server.opening`);
then, in the background, the rest of the runtime is built (full records, snapshots,
scanner, probe, metrics: :func:`~sparkhist.server.runtime.complete_runtime`) and the
scan loop starts. Requests that need the rest wait for it
(:mod:`sparkhist.server.first_answer`); ``/ready`` says when it is there.

When the store holds a current pre-rendered list (:mod:`sparkhist.store.list_file`:
its checksum holds and it names the catalog's listing), the server binds before even
the listing rows are loaded: the unfiltered list is answered from the file's bytes,
and everything else that reads the index waits for it (loaded in the background,
right after the first answer). The file is served until the listing or the index
changes; the server writes it again (:mod:`sparkhist.server.list_publishing`).
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sparkhist import __version__
from sparkhist.config import Settings
from sparkhist.server.first_answer import ListingLoad, early_context
from sparkhist.server.list_publishing import ListPublishing
from sparkhist.server.opening import OpenedStore, open_store
from sparkhist.server.pending import PendingRuntime
from sparkhist.server.preflight import check_listen, check_log_dir, check_writable_store
from sparkhist.server.runtime import complete_runtime
from sparkhist.server.serving import ServingGroup
from sparkhist.server.state_readers import store_readers

if TYPE_CHECKING:
    import socket
    from types import FrameType

    import uvicorn
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("sparkhist.server")

#: After binding, the background start waits this long for a first request, then (if one
#: came) up to ``FIRST_ANSWER_WAIT`` for its answer to be sent.
FIRST_ANSWER_GRACE = 1.0
FIRST_ANSWER_WAIT = 30.0
#: On SIGTERM/SIGINT, how long requests under way may take to finish before they are
#: cancelled, and how long a start still completing the runtime is waited for. With the
#: scan's stop (``scan.loop.STOP_WAIT``) a stop takes at most about 3 s.
SHUTDOWN_GRACE = 1
START_STOP_WAIT = 1.0


class FirstAnswerWatch:
    """ASGI wrapper that notes when the first HTTP request came and when its answer was sent."""

    def __init__(self, app: ASGIApp, on_sent: Callable[[], None] = lambda: None) -> None:
        self.app = app
        self.asked = threading.Event()
        self.sent = threading.Event()
        self._on_sent = on_sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.sent.is_set():
            await self.app(scope, receive, send)
            return
        self.asked.set()

        async def watch(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.sent.set()
                self._on_sent()

        await self.app(scope, receive, watch)


class _SecondStep:
    """The rest of the runtime, completed in the background once the server bound, and the stop."""

    def __init__(self, opened: OpenedStore, pending: PendingRuntime, loading: ListingLoad, app: Starlette,
                 watch: FirstAnswerWatch, settled: threading.Event) -> None:
        self.opened = opened
        self.pending = pending
        self.loading = loading
        self.app = app
        self.watch = watch
        self.settled = settled  # the first answer was sent, or a request needs the rest of the runtime
        self.bound = threading.Event()  # the server bound its socket (or gave up, or stops)
        self.looping = threading.Event()
        self.publishing: ListPublishing | None = None
        self.serving: ServingGroup | None = None  # the other serving processes (serve_processes > 1)

    def run(self, server: uvicorn.Server) -> None:
        # The socket first, a first answer (if one is asked for soon) second, the rest after.
        self.bound.wait()
        if server.should_exit:  # stopped before the server bound (or it could not): nothing more to start
            return
        if self.watch.asked.wait(FIRST_ANSWER_GRACE):
            # Unless that request (or another) needs the rest of the runtime.
            self.settled.wait(FIRST_ANSWER_WAIT)
        opened = self.opened
        try:
            store_readers(opened)  # what an application's details need first, before the listing
            self.loading.load()
            runtime = complete_runtime(opened, self.app)
        except BaseException as exc:
            log.exception("could not complete the start-up; stopping")
            self.pending.set(None, exc)
            server.should_exit = True
            return
        self.pending.set(runtime)
        gc.freeze()
        if opened.writer:
            self.publishing = ListPublishing(opened)
        if not server.should_exit:
            runtime.loop.start()
            self.looping.set()
            if self.publishing is not None:
                self.publishing.start()
            if self.serving is not None:
                threading.Thread(target=self._start_serving, args=(runtime.loop.listed, self.serving),
                                 name="sparkhist-serving-start", daemon=True).start()

    @staticmethod
    def _start_serving(listed: threading.Event, serving: ServingGroup) -> None:
        """The other serving processes, once the first scan has listed what it found. On a
        cold start the listing pass takes every core (10,000 new logs: seconds); a serving
        process started before it would import, then follow the catalog's every batch,
        rendering each row again, beside it (1.2 s of CPU at 10,000 logs). Started after
        it, the process loads the whole listing at once (0.3 s). Until then this process
        answers alone; after a restart the first scan finds nothing new and they start at once."""
        listed.wait()
        serving.start()

    def stop_scan_soon(self) -> None:
        """On the stop signal, before the server's graceful stop: a scan under way stops after the
        log at hand instead of going on while requests finish (what it read is kept)."""
        runtime = self.pending.runtime
        if runtime is not None and self.looping.is_set():
            runtime.loop.stop_soon()

    def stop(self) -> None:
        """Once the server stopped and :meth:`run` returned: stop the serving processes and the loop,
        write the list, release the store."""
        if self.serving is not None:
            self.serving.terminate()  # they finish their requests while the loop stops
        try:
            self._stop_runtime()
        finally:
            if self.serving is not None:
                self.serving.stop()

    def _stop_runtime(self) -> None:
        if self.publishing is not None:
            self.publishing.stop()
        runtime = self.pending.runtime
        if runtime is not None:
            if self.looping.is_set() and not runtime.loop.stop():
                # The scan thread still writes: closing the catalog under it would fail its
                # writes. Exiting now is a crash to the store, which recovers from one.
                return
            if self.publishing is not None:  # the list as it is now, for the next start
                self.publishing.publish()
            runtime.close()
        else:
            self.opened.lock.release()
            self.opened.catalog.close()


class _StopSignals:
    """SIGINT/SIGTERM while uvicorn does not handle them (before it runs, and after):
    noted, and the server told to exit, so a stop at any point is the same clean stop."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.server: uvicorn.Server | None = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        if self.server is not None:
            self.server.should_exit = True


def _server(config: uvicorn.Config, bound: threading.Event, on_exit: Callable[[], None]) -> uvicorn.Server:
    """A uvicorn server that sets ``bound`` once its start-up is over (bound, or given up), and
    calls ``on_exit`` first thing on SIGINT/SIGTERM."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            on_exit()
            super().handle_exit(sig, frame)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            try:
                await super().startup(sockets)
            except BaseException:  # could not bind (uvicorn exits): the start goes no further
                self.should_exit = True
                raise
            finally:
                bound.set()

    return Server(config)


def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; a setting that cannot work raises ConfigError before anything is bound."""
    signals = _StopSignals()
    offline = None if settings.shared_store is not None else check_log_dir(settings.log_dir, settings.store_dir)
    check_listen(settings.host, settings.port)
    from sparkhist.access.settings import access_policy, exposure_warning
    from sparkhist.access.tls import RedirectServer, tls_config

    access = access_policy(settings)  # an SHS security setting sparkhist cannot honour stops here (exit 2)
    tls = tls_config(settings)  # HTTPS: the key store is read and checked here too
    port = settings.port if tls is None else tls.port
    if port != settings.port:
        check_listen(settings.host, port)
    scheme = "http" if tls is None else "https"
    check_writable_store(settings.store_dir)  # the last check: it creates the store directory
    # Through logging, so --log-format json keeps every line JSON.
    logging.getLogger("sparkhist").info("sparkhist %s: serving %s on %s://%s:%d (store %s)", __version__,
                                        settings.log_dir, scheme, settings.host, port, settings.store_dir)
    if (exposed := exposure_warning(settings, access)) is not None:
        log.warning(exposed, extra={"event": "unauthenticated_exposure"})
    if offline is not None:
        log.warning("log directory %s does not exist: serving the %d applications the store holds from it, "
                    "offline (they come back up to date once the directory is there)", settings.log_dir, offline,
                    extra={"event": "log_dir_missing", "applications": offline})

    import uvicorn

    from sparkhist.api.app import create_app
    from sparkhist.api.connections import uvicorn_options

    opened = open_store(settings, listing=True, stored_list=True)
    role = "writer" if opened.writer else "standby"
    if opened.stored is None:
        log.info("store %s opened as %s: %d applications listed in %.3fs", settings.store_dir, role,
                 len(opened.index), time.monotonic() - opened.t0)
    else:
        log.info("store %s opened as %s: stored application list of %d bytes in %.3fs", settings.store_dir, role,
                 len(opened.stored.body), time.monotonic() - opened.t0)
    settled = threading.Event()
    pending = PendingRuntime(on_wanted=settled.set)
    loading = ListingLoad(opened, pending)
    context = early_context(opened, pending, loading)
    context.access = access
    serving = ServingGroup(settings, pending) if settings.serve_processes > 1 else None
    if serving is not None:  # /health/details says how many processes answer (whichever of them is asked)
        context.health = serving.health
    app = create_app(context)
    watch = FirstAnswerWatch(app, on_sent=settled.set)
    second = _SecondStep(opened, pending, loading, app, watch, settled)
    second.serving = serving
    config = uvicorn.Config(watch, host=settings.host, port=port, log_level="warning", access_log=False,
                            log_config=None,  # uvicorn's loggers go through ours (plain or JSON)
                            timeout_graceful_shutdown=SHUTDOWN_GRACE,  # a stop waits for no slow client
                            lifespan="off",  # the app has no start-up or shut-down handlers (a forced stop logged one)
                            ssl_context_factory=None if tls is None else (lambda _config, _default: tls.context),
                            **uvicorn_options(settings))  # header timeout, keep-alive, connection limit
    server = _server(config, second.bound, second.stop_scan_soon)
    signals.server = server
    finisher = threading.Thread(target=second.run, args=(server,), name="sparkhist-start", daemon=True)
    finisher.start()
    log.info("serving %s on %s://%s:%d", settings.log_dir, scheme, settings.host, port)
    redirect = None
    if tls is not None and tls.redirect_port is not None:  # the SHS's plain port: redirects to HTTPS
        redirect = RedirectServer(settings.host, tls.redirect_port, port)
        redirect.start()
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal once it has
    # restored the previous handlers (those of ``signals``): our cleanup below runs and
    # the process exits 0 after a clean stop.
    try:
        if not signals.received:
            server.run(sockets=None if second.serving is None else [second.serving.socket(settings.host, port)])
    finally:
        server.should_exit = True
        if redirect is not None:
            redirect.stop()
        second.bound.set()  # a start still waiting goes on (and starts no loop)
        settled.set()
        finisher.join(START_STOP_WAIT)
        if finisher.is_alive():  # still completing the runtime, with the store open: as after a crash
            log.warning("stopping during the start, without waiting for it")
            if second.serving is not None:
                second.serving.stop()
        else:
            second.stop()
        log.info("stopped")
