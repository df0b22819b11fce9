"""Large JSON answers are encoded a slice of items at a time and streamed: the same bytes as one
``dumps``, and a request's memory is its records plus a piece, not plus the whole body."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams
from starlette.responses import Response, StreamingResponse

from sparkhist.api import responses
from sparkhist.api.response_cache import ResponseCache
from sparkhist.api.v1.app_resources import handle
from sparkhist.api.v1.dispatch import LogsRequest, dispatch
from sparkhist.errors import ApiError
from sparkhist.render.encode import dumps, dumps_chunks
from support.conformance import APACHE, SPARK401, recorded_calls
from support.server import copy_logs, runtime_for

CHUNK_SIZES = [1, 7, 100, 4096, 64 << 10]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("streamed")
    logs = copy_logs(SPARK401 / "eventlogs", tmp / "logs")
    with runtime_for(logs, tmp / "store") as (runtime, client):
        yield runtime, client


@pytest.fixture(scope="module")
def real_payloads(served) -> list[Any]:
    """Our own records for every per-application call recorded from the real SHS."""
    runtime, _ = served
    payloads = []
    for call in recorded_calls():
        parts = urlsplit(call.path)
        if not parts.path.startswith("/applications/"):
            continue
        segments = [s for s in parts.path[len("/applications/"):].split("/") if s]
        if len(segments) < 2:
            continue
        query = QueryParams(parse_qsl(parts.query, keep_blank_values=True))
        try:
            result = dispatch(runtime.index, runtime.states, segments, query, "/api/v1" + call.path, handle)
        except ApiError:
            continue
        if not isinstance(result, LogsRequest):
            payloads.append(result)
    assert len(payloads) > 50 and sum(isinstance(p, list) and len(p) > 1 for p in payloads) > 10
    return payloads


def joined(payload: Any, chunk_size: int) -> bytes:
    return b"".join(dumps_chunks(payload, chunk_size))


def conformance_bodies() -> list[Any]:
    bodies = [c.json() for c in recorded_calls() if c.status == 200 and c.body_file.suffix == ".json"]
    bodies += [orjson.loads(p.read_bytes()) for p in sorted((APACHE / "HistoryServerExpectations").glob("*.json"))]
    return bodies


# --------------------------------------------------------------------------- same bytes
def test_every_real_answer_and_conformance_body_is_encoded_byte_for_byte(real_payloads) -> None:
    for payload in [*real_payloads, *conformance_bodies()]:
        expected = dumps(payload)
        for size in CHUNK_SIZES:
            assert joined(payload, size) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), chunk_size=st.sampled_from(CHUNK_SIZES))
def test_any_list_of_real_records_is_encoded_byte_for_byte(real_payloads, data: st.DataObject, chunk_size: int) -> None:
    """Lists drawn from real records (any mix, order, length; nested lists as items too)."""
    records = [item for p in real_payloads for item in (p if isinstance(p, list) else [p])]
    items = data.draw(st.lists(st.sampled_from(records) | st.sampled_from(real_payloads), max_size=40))
    assert joined(items, chunk_size) == dumps(items)


@settings(max_examples=100, deadline=None)
@given(body=st.sampled_from(conformance_bodies()), data=st.data(), chunk_size=st.sampled_from(CHUNK_SIZES))
def test_any_slice_of_a_conformance_answer_is_encoded_byte_for_byte(body: Any, data: st.DataObject,
                                                                      chunk_size: int) -> None:
    if isinstance(body, list):
        start = data.draw(st.integers(0, len(body)))
        body = body[start:data.draw(st.integers(start, len(body)))]
    assert joined(body, chunk_size) == dumps(body)


_scalars = (st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
            | st.integers(-(1 << 70), 1 << 70)  # beyond 64 bits: the Java-long fallback, per item as for the whole
            | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("\n\r\t\"\\ [],{}:"), max_size=20))
_json = st.recursive(_scalars, lambda kids: st.lists(kids, max_size=5)
                     | st.dictionaries(st.text(max_size=8), kids, max_size=5), max_leaves=40)


@settings(max_examples=500, deadline=None)
@given(payload=_json, chunk_size=st.sampled_from(CHUNK_SIZES))
def test_any_json_value_is_encoded_byte_for_byte(payload: Any, chunk_size: int) -> None:
    assert joined(payload, chunk_size) == dumps(payload)


# --------------------------------------------------------------------------- over HTTP
def test_an_answer_over_the_threshold_is_streamed_with_the_same_bytes(served, real_payloads, monkeypatch) -> None:
    runtime, client = served
    app = next(a for a in runtime.index.sorted_apps() if not a.running)
    url = f"/api/v1/applications/{app.id}/stages?details=true"
    small = client.get(url)
    assert "content-length" in small.headers
    monkeypatch.setattr(responses, "STREAM_ABOVE", 100)
    assert runtime.response_cache is not None
    runtime.response_cache.forget(app.attempts[0].log_path)
    streamed = client.get(url)
    assert "content-length" not in streamed.headers  # streamed: sent chunked (by the HTTP server)
    assert streamed.content == small.content
    assert {k: v for k, v in streamed.headers.items() if k not in ("transfer-encoding", "content-length")} == \
        {k: v for k, v in small.headers.items() if k not in ("transfer-encoding", "content-length")}
    hits = runtime.response_cache.hits
    assert client.get(url).content == small.content and runtime.response_cache.hits == hits + 1, "kept once sent"


def test_a_streamed_answer_is_kept_only_under_the_per_entry_bound() -> None:
    payload = [{"taskId": i, "host": "h" * 50} for i in range(2000)]
    body = dumps(payload)
    roomy, tight = ResponseCache(max_bytes=4 * len(body)), ResponseCache(max_bytes=4 * len(body) - 4)
    for cache in (roomy, tight):
        chunks = cache.keep("k", dumps_chunks(payload, 1000))
        assert len(cache) == 0, "nothing kept before it is sent"
        assert b"".join(chunks) == body
    kept = roomy.get("k")
    assert kept is not None and kept.body == body
    assert tight.get("k") is None and tight.bytes == 0
    unfinished = roomy.keep("half", dumps_chunks(payload, 1000))
    next(unfinished)
    unfinished.close()  # the client went away
    assert roomy.get("half") is None


# --------------------------------------------------------------------------- memory
def _big_records(served) -> list[Any]:
    """~16 MB of real task records (one stage's, repeated with distinct ids)."""
    runtime, _ = served
    app = next(a for a in runtime.index.sorted_apps() if not a.running)
    tasks = dispatch(runtime.index, runtime.states, [app.id, "stages", "0", "0", "taskList"], QueryParams(""),
                     "", handle)
    assert tasks
    return [{**tasks[i % len(tasks)], "taskId": i, "index": i} for i in range(16_000_000 // len(dumps(tasks[0])))]


def _peak_while_sending(response: Response) -> tuple[int, int]:
    """(peak bytes allocated while the response is produced and sent, body size)."""
    sent = 0

    async def drain() -> None:
        nonlocal sent
        if isinstance(response, StreamingResponse):
            async for chunk in response.body_iterator:
                sent += len(chunk)
        else:
            sent = len(response.body)

    asyncio.run(drain())
    return tracemalloc.get_traced_memory()[1], sent


def test_a_streamed_answer_holds_a_piece_of_its_body_not_the_whole(served) -> None:
    records = _big_records(served)
    size = len(dumps(records))
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        response = responses.json_response(records)
        peak, sent = _peak_while_sending(response)
        streamed = peak - before
        del response
        gc.collect()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        whole = Response(dumps(records), media_type=None)  # the whole body at once, as before
        old = _peak_while_sending(whole)[0] - before
        del whole
    finally:
        tracemalloc.stop()
    assert sent == size > 8 << 20
    assert old >= size, "sending the whole body holds at least the body"
    assert streamed < size // 4, f"streaming held {streamed / 2**20:.1f} MiB for a {size / 2**20:.1f} MiB answer"
