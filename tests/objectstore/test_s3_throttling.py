"""Throttling and 5xx answers: retried with jittered backoff; throttling never opens the breaker.

The S3 here is moto's server with a fault layer in front (``moto_faults.py``): moto is
used **only for fault injection** (a real server cannot be told to answer the next N
requests ``503 SlowDown``); everything sparkhist reads is tested on SeaweedFS.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparkhist.errors import SourceUnavailable
from sparkhist.source.factory import SourceOptions, open_source
from sparkhist.source.objectstore import ObjectStoreSource

from .conftest import Timings
from .moto_faults import FaultyMoto

SPARK_LOGS = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "spark-4.0.1" / "eventlogs"


@pytest.fixture(scope="module")
def moto() -> Iterator[FaultyMoto]:
    server = FaultyMoto()
    import boto3

    s3 = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id="a", aws_secret_access_key="b",
                      region_name="us-east-1")
    s3.create_bucket(Bucket="throttling-logs")
    for name in ("local-1795972896863", "local-1795972905472.lz4"):
        s3.put_object(Bucket="throttling-logs", Key=f"events/{name}", Body=(SPARK_LOGS / name).read_bytes())
    try:
        yield server
    finally:
        server.close()


def source_on(moto: FaultyMoto, **options: Any) -> ObjectStoreSource:
    conf = (("fs.s3a.endpoint", moto.endpoint), ("fs.s3a.path.style.access", "true"),
            ("fs.s3a.access.key", "a"), ("fs.s3a.secret.key", "b"))
    source = open_source("s3a://throttling-logs/events", SourceOptions(hadoop_conf=conf, **options))
    assert isinstance(source, ObjectStoreSource)
    return source


def read_all(source: ObjectStoreSource) -> dict[str, bytes]:
    out = {}
    for entry in source.list(source.root_path):
        with source.open(entry.path) as stream:
            out[entry.name] = stream.read()
    return out


def test_slow_down_is_retried_and_never_opens_the_breaker(moto: FaultyMoto, timings: Timings) -> None:
    source = source_on(moto)
    expected = {n: (SPARK_LOGS / n).read_bytes() for n in ("local-1795972896863", "local-1795972905472.lz4")}
    # Three "503 SlowDown" before every request gets through, for every kind of request.
    t0 = time.monotonic()
    for kind in ("GET", "HEAD"):
        moto.faults.next(["slowdown"] * 3, only=lambda environ, k=kind: environ["REQUEST_METHOD"] == k)
        assert read_all(source) == expected
    elapsed = time.monotonic() - t0
    health = source.health()
    assert health["throttled"]["list"] + health["throttled"].get("read", 0) >= 3
    assert sum(health["throttled"].values()) == 6
    assert health["breaker"]["state"] == "closed" and health["breaker"]["transitions"] == {}
    assert health["state"] == "ok" and "throttled" in (health["last_error"] or "")
    # Throttled past the retry budget: the call fails (the scan tries again later), still no breaker.
    moto.faults.next(["slowdown"] * 50)
    with pytest.raises(SourceUnavailable, match="throttled"):
        source.list(source.root_path)
    assert source.health()["breaker"]["state"] == "closed"
    moto.faults.next([])
    assert read_all(source) == expected
    timings.record("s3 throttled (moto)", six_slowdowns=elapsed, throttled=sum(source.health()["throttled"].values()))
    source.close()


def test_server_errors_are_retried_then_open_the_breaker(moto: FaultyMoto) -> None:
    source = source_on(moto, breaker_reset=60.0)
    moto.faults.next(["internal"] * 2)
    assert len(read_all(source)) == 2, "two 500s, then the answer"
    assert source.health()["failures"] == {"list": 2}
    moto.faults.next(["internal"] * 100)
    for _ in range(2):
        with pytest.raises(SourceUnavailable):
            source.list(source.root_path)
    health = source.health()
    assert health["breaker"]["state"] == "open" and health["state"] == "offline"
    served = moto.faults.requests
    with pytest.raises(SourceUnavailable, match="circuit open"):
        source.list(source.root_path)
    assert moto.faults.requests == served, "an open breaker fails fast, without a request"
    moto.faults.next([])
    source.close()


def test_an_answer_cut_short_is_retried(moto: FaultyMoto) -> None:
    """A GET whose body stops half-way (the connection closes before Content-Length bytes)."""
    source = source_on(moto)
    source.chunk_size = 64 << 10
    data = (SPARK_LOGS / "local-1795972896863").read_bytes()
    moto.faults.next(["truncate"] * 2, only=lambda environ: environ["REQUEST_METHOD"] == "GET"
                     and "list-type" not in environ.get("QUERY_STRING", ""))
    with source.open("s3a://throttling-logs/events/local-1795972896863") as stream:
        assert stream.read() == data
    assert moto.faults.injected.get("truncate") == 2
    assert source.health()["failures"].get("read") == 2 and source.health()["breaker"]["state"] == "closed"
    source.close()
