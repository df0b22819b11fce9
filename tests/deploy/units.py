"""Helpers of the deployment tests: the files under ``deploy/``, a real ``sparkhist serve``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
#: sparkhist's promise (``sparkhist serve --help``; measured by tests/test_signals.py over 600 logs).
STOP_LIMIT = 3.0


def unit_settings(path: Path) -> dict[str, list[str]]:
    """A systemd unit file's ``Section.Key`` -> values, in order (keys repeat: SystemCallFilter)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def env_file(path: Path) -> dict[str, str]:
    """An ``EnvironmentFile``'s assignments (comments and blank lines skipped)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def seconds(value: str) -> float:
    """A systemd time span as the units above use it: ``10s``, ``2min``, ``90``."""
    for suffix, factor in (("ms", 0.001), ("min", 60.0), ("s", 1.0)):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A real ``sparkhist serve`` process and where it answers."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], port: int, log_file: Path) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log_file = log_file
        with open(log_file, "ab") as err:
            self.proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=err, env=env)

    def wait_ready(self, timeout: float = 60.0, path: str = "/ready") -> float:
        """Seconds from now until ``path`` answers 200."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"sparkhist exited {self.proc.returncode}: {self.log_file.read_text()[-3000:]}")
            try:
                if httpx.get(self.base + path, timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"{path} not 200 within {timeout}s: {self.log_file.read_text()[-3000:]}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> float:
        """Send ``sig``; the seconds until the process exited."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        return time.monotonic() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@contextmanager
def serving(argv: Sequence[str], env: dict[str, str], port: int, log_file: Path) -> Iterator[Served]:
    served = Served(argv, env, port, log_file)
    try:
        yield served
    finally:
        served.kill()


def base_env(**extra: str) -> dict[str, str]:
    """This environment without any SPARKHIST_* setting of the caller's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKHIST_")}
    env.update(extra)
    return env
