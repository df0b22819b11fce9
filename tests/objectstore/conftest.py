"""Fixtures of the object-store tests: a real SeaweedFS (S3) for the session, uploads, timings."""

from __future__ import annotations

import concurrent.futures
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .servers import Azurite, FakeGcs, SeaweedFS, ServerUnavailable

_TIMINGS: list[str] = []
_BUCKETS = itertools.count()


@dataclass
class Timings:
    lines: list[str] = field(default_factory=lambda: _TIMINGS)

    def record(self, scenario: str, **values: float | int | str) -> None:
        parts = [f"{k}={v:.3f}s" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()]
        line = f"{scenario:<34} " + " ".join(parts)
        self.lines.append(line)
        print("TIMING", line)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _TIMINGS:
        terminalreporter.section("object-store timings")
        for line in _TIMINGS:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def timings() -> Timings:
    return Timings()


@pytest.fixture(scope="session")
def seaweed(timings: Timings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for the session (tests that stop or pause it start it again)."""
    try:
        server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
        seconds = server.start(timeout=float(os.environ.get("SPARKHIST_S3_START_TIMEOUT", "180")))
    except ServerUnavailable as why:
        pytest.skip(str(why))
    timings.record("seaweedfs start", seconds=seconds)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fake_gcs(timings: Timings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcs]:
    try:
        server = FakeGcs(tmp_path_factory.mktemp("fake-gcs"))
        seconds = server.start()
    except ServerUnavailable as why:
        pytest.skip(str(why))
    timings.record("fake-gcs-server start", seconds=seconds)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
def azurite(timings: Timings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    try:
        server = Azurite(tmp_path_factory.mktemp("azurite"))
        seconds = server.start()
    except ServerUnavailable as why:
        pytest.skip(str(why))
    timings.record("azurite start", seconds=seconds)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def bucket(seaweed: SeaweedFS, request: pytest.FixtureRequest) -> tuple[str, Any]:
    """A fresh bucket (its name, an obstore client of it) for one test."""
    name = f"t{next(_BUCKETS)}-{request.node.name.lower()}"[:50].replace("_", "-").rstrip("-")
    name = "".join(c for c in name if c.isalnum() or c in "-.")
    return name, seaweed.bucket(name)


def upload_tree(store: Any, local: Path, prefix: str, workers: int = 16) -> int:
    """Every file under ``local`` to ``prefix/<relative path>``; returns the number of objects."""
    files = [p for p in sorted(local.rglob("*")) if p.is_file()]
    put_all(store, [(f"{prefix}/{p.relative_to(local).as_posix()}", p.read_bytes()) for p in files], workers)
    return len(files)


def put_all(store: Any, objects: list[tuple[str, bytes]], workers: int = 16) -> None:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda kv: store.put(kv[0], kv[1]), objects))
