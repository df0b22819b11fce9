"""A sparkhist runtime over a log directory, in-process, for API tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.testclient import TestClient

from sparkhist.config import load_settings
from sparkhist.server import Runtime, build_runtime


def copy_logs(src: Path, dest: Path) -> Path:
    """A writable copy of a read-only log directory (conformance data stays untouched)."""
    shutil.copytree(src, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


@contextmanager
def runtime_for(log_dir: Path | str, store_dir: Path, *, scan: bool = True, environ: dict[str, str] | None = None,
                peer: tuple[str, int] = ("testclient", 50000)) -> Iterator[tuple[Runtime, TestClient]]:
    """A runtime over ``log_dir`` (settings from ``environ`` only: none by default), scanned once,
    and a test client of its app (requests from the address ``peer``)."""
    settings = load_settings({"log_dir": str(log_dir), "store_dir": str(store_dir)}, environ=environ or {})
    runtime = build_runtime(settings)
    try:
        if scan:
            assert runtime.loop.lock.try_acquire()
            runtime.scanner.scan_once()
        with TestClient(runtime.app, client=peer) as client:
            yield runtime, client
    finally:
        runtime.close()
