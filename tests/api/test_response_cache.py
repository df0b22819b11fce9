"""Rendered answers of finished applications are kept: a repeated request is a lookup,
with the same bytes; running applications and changed logs are never answered from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sparkhist.api.response_cache import ResponseCache
from support.conformance import SPARK401
from support.server import copy_logs, runtime_for

PATHS = ["/jobs", "/stages", "/stages?details=true", "/executors", "/environment", "/sql", "/stages/0/0/taskList"]


@pytest.fixture()
def served(tmp_path: Path):
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    with runtime_for(logs, tmp_path / "store") as (runtime, client):
        yield logs, runtime, client


def test_a_repeated_request_is_answered_from_the_cache_with_the_same_bytes(served) -> None:
    _, runtime, client = served
    cache = runtime.response_cache
    assert cache is not None
    done = [a for a in runtime.index.sorted_apps() if not a.running]
    first = {(a.id, p): client.get(f"/api/v1/applications/{a.id}{p}").content for a in done for p in PATHS}
    assert cache.hits == 0 and len(cache) == len(first)
    loads = runtime.states.loads + runtime.states.hits
    again = {(a.id, p): client.get(f"/api/v1/applications/{a.id}{p}").content for a in done for p in PATHS}
    assert again == first
    assert cache.hits == len(first)
    assert runtime.states.loads + runtime.states.hits == loads, "a kept answer reads no state"
    samples = {(s.name, s.labels.get("result")): s.value
               for family in text_string_to_metric_families(client.get("/metrics").text) for s in family.samples}
    assert samples["sparkhist_response_cache_requests_total", "hit"] == len(first)
    assert samples["sparkhist_response_cache_bytes", None] == cache.bytes > 0


def test_running_applications_are_never_kept(served) -> None:
    _, runtime, client = served
    cache = runtime.response_cache
    running = [a for a in runtime.index.sorted_apps() if a.running]
    assert running
    for app in running:
        for path in PATHS:
            client.get(f"/api/v1/applications/{app.id}{path}")
            client.get(f"/api/v1/applications/{app.id}{path}")
    assert len(cache) == 0 and cache.hits == 0


def test_a_changed_log_is_answered_afresh(served) -> None:
    """A finished log rewritten (here: its call sites renamed, as if replaced) gets new keys."""
    logs, runtime, client = served
    path = logs / "local-1795972896863"
    url = "/api/v1/applications/local-1795972896863/jobs"
    before = client.get(url).content
    assert client.get(url).content == before and runtime.response_cache.hits == 1
    assert b'"collect at ' in before
    path.write_bytes(path.read_bytes().replace(b"collect at ", b"gather at "))  # shorter: read again
    os.utime(path, (1_900_000_000, 1_900_000_000))
    runtime.scanner.scan_once()
    after = client.get(url).content
    assert after == before.replace(b'"collect at ', b'"gather at ') != before
    assert runtime.response_cache.hits == 1


def test_an_invalidated_state_takes_its_kept_answers_along(served) -> None:
    """What forgets a log's state (a damaged snapshot found, a test) forgets its answers:
    the next request reads the store again."""
    _, runtime, client = served
    app = next(a for a in runtime.index.sorted_apps() if not a.running)
    other = next(a for a in runtime.index.sorted_apps() if not a.running and a.id != app.id)
    for each in (app, other):
        client.get(f"/api/v1/applications/{each.id}/jobs")
    loads = runtime.states.loads
    runtime.states.invalidate(app.attempts[0].log_path)
    assert len(runtime.response_cache) == 1
    client.get(f"/api/v1/applications/{app.id}/jobs")
    client.get(f"/api/v1/applications/{other.id}/jobs")
    assert runtime.states.loads == loads + 1 and runtime.response_cache.hits == 1


def test_the_cache_is_bounded_and_keeps_no_huge_body() -> None:
    cache = ResponseCache(max_bytes=1000)
    for i in range(10):
        assert cache.put(i, bytes(200)).body == bytes(200)
    assert cache.bytes <= 1000 and len(cache) == 5 and cache.evictions == 5
    assert cache.get(0) is None and cache.get(9) is not None
    cache.put("huge", bytes(251))  # over a quarter of the bound: answered, not kept
    assert cache.get("huge") is None and cache.bytes <= 1000


def test_off_when_its_size_is_zero(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    from sparkhist.config import load_settings
    from sparkhist.server import build_runtime

    runtime = build_runtime(load_settings({"log_dir": str(logs), "store_dir": str(tmp_path / "s"), "response_cache": "0"},
                                          environ={}))
    try:
        assert runtime.response_cache is None
    finally:
        runtime.close()


GZIP = {"Accept-Encoding": "gzip, deflate, zstd"}  # what httpx and the bench client send


@pytest.mark.spark
def test_a_kept_answer_goes_gzip_compressed_when_accepted_as_the_shs_sends_it(served, real_shs_spark401) -> None:
    """Compressed once per kept body; the decoded bytes are the plain answer's; the SHS (Jetty's
    GzipHandler) compresses the same answers for the same request, and leaves tiny ones (``[]``) alone."""
    _, runtime, client = served
    done = [a for a in runtime.index.sorted_apps() if not a.running]
    paths = [*(f"applications/{a.id}{p}" for a in done for p in PATHS), "applications"]
    compared = 0
    for path in paths:
        plain = client.get(f"/api/v1/{path}", headers={"Accept-Encoding": "identity"})
        ours = client.get(f"/api/v1/{path}", headers=GZIP)  # kept by now: compressed
        again = client.get(f"/api/v1/{path}", headers=GZIP)
        theirs = real_shs_spark401.get(path, headers=GZIP)
        assert plain.status_code == ours.status_code == theirs.status_code == 200, path
        assert "content-encoding" not in plain.headers
        assert ours.headers.get("content-encoding") == theirs.headers.get("content-encoding"), path
        assert ours.headers.get("vary") == theirs.headers.get("vary") == "Accept-Encoding"
        assert ours.content == again.content == plain.content, path  # httpx decodes
        compared += ours.headers.get("content-encoding") == "gzip"
    assert compared >= len(paths) - 5, "most answers are compressed"
    kept = [runtime.response_cache.get(key) for key in list(runtime.response_cache._bodies)]
    assert kept and all(k is not None and k.kept.compressed is not None for k in kept if len(k.body) >= 32)


def test_accept_encoding_values() -> None:
    from sparkhist.api.responses import accepts_gzip

    for value in ("gzip", "gzip, deflate, zstd", "br;q=1.0, gzip;q=0.5", "*", "identity, *;q=0.1", "GZIP"):
        assert accepts_gzip(value), value
    for value in ("", "identity", "gzip;q=0", "gzip;q=0.0, *", "deflate, br", "*;q=0"):
        assert not accepts_gzip(value), value
