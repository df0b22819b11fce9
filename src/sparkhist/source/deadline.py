"""Deadlines for calls that would otherwise block forever.

Two runners, one per kind of backend:

* :class:`ThreadRunner` for ``hdfs-native``'s **synchronous** client. Its NameNode RPC has
  no timeout (a black-holed NameNode blocks a call for ever, HDFS_NOTES §1.7) and a sync
  call cannot be interrupted, so each call runs in a daemon worker thread and the caller
  waits at most the deadline. A call that misses it is *abandoned*: its thread stays
  blocked until the socket answers or breaks, so the runner counts those threads
  (:attr:`ThreadRunner.hung`) and refuses new calls once ``max_hung`` are stuck, rather
  than pile up threads during a long outage (the source's circuit breaker normally
  stops the calls well before that).

  Why not hdfs-native's ``AsyncClient`` + ``asyncio.wait_for``, which can cancel? In
  0.14.7 most ``AsyncClient`` methods (``get_file_info``, ``read``, ``read_range``) are
  native pyo3 coroutines polled on the asyncio thread, outside tokio. Seen on the
  MiniDFSCluster (tests/hdfs): (1) after a full pass over the NameNodes its failover
  sleep panics ("there is no reactor running", ``proxy.rs`` calls ``tokio::time::sleep``
  without a runtime); (2) after the active NameNode was killed, the process hung for
  good: faulthandler showed the asyncio thread inside a Rust call and a tokio thread
  waiting for the GIL in ``call_soon_threadsafe`` (the pyo3 waker). The 0.14.7 source
  wakes the waiting calls of a dropped connection while holding its call-map mutex, so
  this reads as a lock-order inversion between that mutex and the GIL. The sync client
  releases the GIL for the whole call and runs inside tokio's ``block_on``.

* :class:`LoopThread` for pure-Python asyncio clients (httpx for WebHDFS): a private
  event loop in a daemon thread; ``asyncio.wait_for`` cancels a late request and closes
  its socket, so nothing is left running after a deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sparkhist.errors import SourceUnavailable

T = TypeVar("T")

__all__ = ["BackendPanic", "Call", "DeadlineExceeded", "LoopThread", "ThreadRunner", "TooManyHungCalls", "is_panic"]

#: Extra wait on the caller's side, should the loop thread itself be wedged.
_GRACE = 5.0


class DeadlineExceeded(SourceUnavailable):
    """A call got no answer within its deadline (hung or partitioned endpoint)."""


class BackendPanic(Exception):
    """A Rust panic (``pyo3_runtime.PanicException``, a ``BaseException``) turned into an ordinary error."""


class TooManyHungCalls(SourceUnavailable):
    """Too many earlier calls are still blocked past their deadline: not starting another."""


def is_panic(exc: BaseException) -> bool:
    """A Rust panic surfacing through pyo3 (``pyo3_runtime.PanicException``, matched by name)."""
    return type(exc).__name__ == "PanicException"


class Call(Generic[T]):
    """One call running in its own daemon thread."""

    def __init__(self, runner: ThreadRunner, fn: Callable[[], T], what: str) -> None:
        self.runner = runner
        self.what = what
        self.future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self.abandoned = False
        self._fn: Callable[[], T] | None = fn
        thread = threading.Thread(target=self._run, name=f"sparkhist-{runner.name}", daemon=True)
        thread.start()

    def _run(self) -> None:
        fn, self._fn = self._fn, None  # the call holds the only reference: dropped when it returns
        try:
            if fn is None:
                raise RuntimeError(f"{self.what}: already run")
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - PanicException is a BaseException
            if is_panic(exc):
                wrapped = BackendPanic(f"{self.what}: backend panicked: {exc}")
                wrapped.__cause__ = exc
                self.future.set_exception(wrapped)
            else:
                self.future.set_exception(exc)
        else:
            self.future.set_result(result)
        finally:
            del fn  # drop the client reference now
            self.runner._finished(self)

    def result(self, timeout: float) -> T:
        """The result, or :class:`DeadlineExceeded` (and the call is abandoned) after ``timeout``."""
        try:
            return self.future.result(timeout)
        except concurrent.futures.TimeoutError:
            if self.future.done():  # finished in the meantime
                return self.future.result(0)
            self.abandon()
            raise DeadlineExceeded(f"{self.what}: no answer within {timeout:.1f}s") from None

    def abandon(self) -> None:
        self.runner._abandon(self)


class ThreadRunner:
    """Runs blocking calls in daemon threads under a deadline (see the module docstring)."""

    def __init__(self, name: str, max_hung: int = 32) -> None:
        self.name = name
        self.max_hung = max_hung
        self.hung = 0  # abandoned calls whose thread is still blocked
        self.abandoned_total = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], T], what: str) -> Call[T]:
        with self._lock:
            if self.hung >= self.max_hung:
                raise TooManyHungCalls(f"{what}: {self.hung} earlier calls are still hung; not starting another")
        return Call(self, fn, what)

    def run(self, fn: Callable[[], T], timeout: float, what: str) -> T:
        """``fn()`` in a worker thread; :class:`DeadlineExceeded` after ``timeout`` seconds."""
        return self.submit(fn, what).result(timeout)

    def run_idle(self, fn: Callable[[Callable[[], None]], T], timeout: float, what: str) -> T:
        """``fn(tick)`` in a worker thread, abandoned once ``timeout`` seconds pass without
        a ``tick()``: a deadline per step (e.g. per page of a listing), not for the whole."""
        last = [time.monotonic()]

        def tick() -> None:
            last[0] = time.monotonic()

        call = self.submit(lambda: fn(tick), what)
        while True:
            remaining = last[0] + timeout - time.monotonic()
            if remaining <= 0:
                if call.future.done():
                    return call.future.result(0)
                call.abandon()
                raise DeadlineExceeded(f"{what}: no progress within {timeout:.1f}s")
            try:
                return call.future.result(remaining)
            except concurrent.futures.TimeoutError:
                continue

    def _abandon(self, call: Call[T]) -> None:
        with self._lock:
            if call.abandoned or call.future.done():
                return
            call.abandoned = True
            self.hung += 1
            self.abandoned_total += 1

    def _finished(self, call: Call[T]) -> None:
        with self._lock:
            if call.abandoned:
                self.hung -= 1


class LoopThread:
    """One asyncio event loop running in a daemon thread, for one source."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"sparkhist-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, factory: Callable[[], Awaitable[T]], timeout: float, what: str) -> T:
        """Awaits ``factory()`` on the loop for at most ``timeout`` seconds.

        Raises :class:`DeadlineExceeded` when the deadline passes (the coroutine is
        cancelled), :class:`BackendPanic` for a Rust panic, and whatever else the
        coroutine raised.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run called from its own loop: await the coroutine instead")

        async def bounded() -> T:
            try:
                return await asyncio.wait_for(factory(), timeout)
            except TimeoutError as exc:  # wait_for's, or a socket timeout inside the call
                raise DeadlineExceeded(f"{what}: no answer within {timeout:.1f}s") from exc
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                if is_panic(exc):  # a BaseException: an ordinary error from here on
                    raise BackendPanic(f"{what}: backend panicked: {exc}") from exc
                raise

        future = asyncio.run_coroutine_threadsafe(bounded(), self.loop)
        try:
            return future.result(timeout + _GRACE)
        except concurrent.futures.CancelledError:
            raise DeadlineExceeded(f"{what}: cancelled") from None
        except concurrent.futures.TimeoutError:  # only the wait above: bounded() never raises it
            future.cancel()
            raise DeadlineExceeded(f"{what}: no answer within {timeout:.1f}s (event loop stalled)") from None

    def call_soon(self, fn: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def close(self, timeout: float = 5.0) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()
