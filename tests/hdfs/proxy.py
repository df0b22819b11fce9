"""Loopback TCP proxies that play network faults in front of each NameNode.

All NameNodes of the MiniDFSCluster live in one JVM, so a hung or partitioned NameNode
cannot be made with signals; instead the client configuration names each NameNode by
a proxy port, and the test switches the proxy's mode at run time:

* ``pass``      forward both ways;
* ``refuse``    close the listener and every open connection (a dead host: ECONNREFUSED);
* ``blackhole`` accept, and forward nothing either way, on new and open connections
  (a hung NameNode or a partition: the kernel still completes the handshake);
* ``delay``     forward each chunk ``delay_ms`` late;
* :meth:`Proxy.cut` closes the open connections with a reset, whatever the mode.

One asyncio loop in a daemon thread serves every proxy; the control methods are
thread-safe and return once the change is in effect.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Coroutine
from typing import Any

PASS, REFUSE, BLACKHOLE, DELAY = "pass", "refuse", "blackhole", "delay"
MODES = (PASS, REFUSE, BLACKHOLE, DELAY)


class ProxyLoop:
    """The event loop thread shared by a set of proxies."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="hdfs-test-proxy", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proxy:
    """One listening port on 127.0.0.1 forwarding to ``target`` (set later if unknown yet)."""

    def __init__(self, loop: ProxyLoop, name: str, port: int | None = None) -> None:
        self._loop = loop
        self.name = name
        self.port = port or free_port()
        self.target: tuple[str, int] | None = None
        self.mode = PASS
        self.delay_ms = 0
        self.accepted = 0
        self._server: asyncio.base_events.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        loop.run(self._start())

    def __repr__(self) -> str:
        return f"Proxy({self.name} :{self.port} -> {self.target}, {self.mode})"

    # -- control (any thread) ------------------------------------------------------
    def set_target(self, host: str, port: int) -> None:
        self.target = (host, port)

    def set_mode(self, mode: str, delay_ms: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r}")
        self._loop.run(self._set_mode(mode, delay_ms))

    def pass_(self) -> None:
        self.set_mode(PASS)

    def refuse(self) -> None:
        self.set_mode(REFUSE)

    def blackhole(self) -> None:
        self.set_mode(BLACKHOLE)

    def delay(self, ms: int) -> None:
        self.set_mode(DELAY, ms)

    def cut(self) -> int:
        """Reset every open connection; returns how many were cut."""
        return int(self._loop.run(self._cut()))

    def open_connections(self) -> int:
        return len(self._conns)

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        self._loop.run(self._stop())

    # -- loop side ------------------------------------------------------------------
    async def _start(self) -> None:
        if self._flowing is None:
            self._flowing = asyncio.Event()
            self._flowing.set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _set_mode(self, mode: str, delay_ms: int) -> None:
        assert self._flowing is not None
        old, self.mode, self.delay_ms = self.mode, mode, delay_ms
        if mode == BLACKHOLE:
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode == REFUSE and old != REFUSE:
            await self._stop()
        elif mode != REFUSE and self._server is None:
            await self._start()

    async def _cut(self) -> int:
        conns = list(self._conns)
        for w in conns:
            _reset(w)
        self._conns.clear()
        return len(conns)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == REFUSE or self.target is None:
            _reset(writer)
            return
        self._conns.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            if self.mode == BLACKHOLE:
                assert self._flowing is not None
                await self._flowing.wait()  # connect upstream only if the hole ever closes
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            self._conns.add(up_writer)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    self._conns.discard(w)
                    w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()  # blackhole: hold the bytes, answer nothing
                if self.mode == DELAY and self.delay_ms:
                    await asyncio.sleep(self.delay_ms / 1000)
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a cut link looks."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.close()
