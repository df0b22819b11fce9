"""``sparkhist serve`` in a process of its own, as an operator starts it, for tests over HTTP(S)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_process(port: int, args: list[str], env: Mapping[str, str], log: Path, *,
                  grace: float = 30) -> Iterator[subprocess.Popen[bytes]]:
    """``sparkhist serve --port P <args>`` as a process (stderr to ``log``), stopped with SIGTERM on
    exit (killed if still running after ``grace`` seconds); its exit status is read after."""
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "sparkhist.cli", "serve", "--port", str(port), *args],
                                env=dict(env), stdout=subprocess.DEVNULL, stderr=sink)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def sparkhist_serve(workdir: Path, args: list[str], env: Mapping[str, str], *, port: int | None = None,
                    ready_url: str | None = None, verify: ssl.SSLContext | bool = True) -> Iterator[str]:
    """Runs ``sparkhist serve --port P <args>`` (stderr to ``workdir/serve.log``) until ``/ready``
    answers 200; yields ``http://127.0.0.1:P``. Stopped with SIGTERM on exit."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "serve.log"
    with serve_process(port, args, env, log, grace=20) as proc:
        wait_ready(ready_url or url + "/ready", proc, log, verify=verify)
        yield url


def wait_ready(probe: str, proc: subprocess.Popen[bytes], log: Path, *, timeout: float = 60,
               verify: ssl.SSLContext | bool = True) -> None:
    """Until ``probe`` (a served ``/ready``) answers 200; the process's log in the error when it
    exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(probe, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"sparkhist serve exited {proc.returncode}: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(log.read_text()[-3000:])
        time.sleep(0.1)
