"""The start-up's signals: events, not polling (``sparkhist.server.startup``, ``.pending``, ``.opening``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sparkhist.errors import ServiceUnavailable, StoreError
from sparkhist.server.opening import _open_as_standby
from sparkhist.server.pending import PendingRuntime
from sparkhist.server.startup import FirstAnswerWatch
from sparkhist.store.catalog import Catalog


def _app() -> Starlette:
    def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/", hello)])


def test_the_first_answer_is_noted_once_sent() -> None:
    sent: list[bool] = []
    watch = FirstAnswerWatch(_app(), on_sent=lambda: sent.append(True))
    assert not watch.asked.is_set()
    with TestClient(watch) as client:
        assert client.get("/").text == "hello"
        assert watch.asked.is_set() and watch.sent.is_set() and sent == [True]
        assert client.get("/").text == "hello"
    assert sent == [True], "only the first answer is watched"


def test_a_request_that_needs_the_runtime_asks_for_it() -> None:
    wanted: list[bool] = []
    pending = PendingRuntime(on_wanted=lambda: wanted.append(True))
    with pytest.raises(ServiceUnavailable, match="still loading"):
        pending.wait(timeout=0.0)
    assert pending.wanted.is_set() and wanted == [True] and not pending.ready
    failure = RuntimeError("disk on fire")
    pending.set(None, failure)
    with pytest.raises(ServiceUnavailable, match="disk on fire"):
        pending.wait()


def test_a_standby_waits_for_the_writer_to_create_the_catalog(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    writer = threading.Timer(0.3, lambda: Catalog(str(store), "file:/logs").close())
    writer.start()
    try:
        _open_as_standby(str(store), wait=10.0).close()
    finally:
        writer.join()


def test_a_standby_gives_up_after_its_wait(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    t0 = time.monotonic()
    with pytest.raises(StoreError):
        _open_as_standby(str(store), wait=0.6)
    assert 0.5 <= time.monotonic() - t0 < 5.0
