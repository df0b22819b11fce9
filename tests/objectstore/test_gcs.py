"""``gs://`` against fake-gcs-server (GCS's JSON and XML APIs, built from source; servers.py).

The same source as S3 (listing, ranged reads, deadlines, breaker) over obstore's GCS
client, configured by the GCS connector's properties (``fs.gs.storage.root.url``,
``fs.gs.auth.type=UNAUTHENTICATED`` for the emulator). Known limits of the emulator, not
of sparkhist: it ignores ``If-Match`` on reads, and deletes need credentials it cannot
issue, so the cleaner's delete is not exercised here.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from sparkhist.errors import SourceNotFound
from sparkhist.source.factory import SourceOptions, open_source
from sparkhist.source.objectstore import ObjectStoreSource

from .conftest import Timings
from .runtime_checks import (
    SOME_APPS,
    SOME_LOGS,
    SPARK_LOGS,
    answers,
    outage,
    recovery,
    runtime_on,
    scanned_beside_local,
)
from .servers import FakeGcs

_BUCKETS = itertools.count()


def upload(gcs: FakeGcs, bucket: str, local: Path, prefix: str, names: tuple[str, ...] | None = None) -> int:
    files = [p for p in sorted(local.rglob("*")) if p.is_file()
             and (names is None or p.relative_to(local).parts[0] in names)]
    for p in files:
        gcs.put(bucket, f"{prefix}/{p.relative_to(local).as_posix()}", p.read_bytes())
    return len(files)


def fresh_bucket(gcs: FakeGcs) -> str:
    name = f"gcs-logs-{next(_BUCKETS)}"
    gcs.bucket(name)
    return name


def test_gcs_lists_stats_and_reads_spark_layouts(fake_gcs: FakeGcs) -> None:
    bucket = fresh_bucket(fake_gcs)
    upload(fake_gcs, bucket, SPARK_LOGS, "spark-events")
    source = open_source(f"gs://{bucket}/spark-events", SourceOptions(hadoop_conf=tuple(fake_gcs.hadoop_conf().items())))
    assert isinstance(source, ObjectStoreSource)
    entries = {e.name: e for e in source.list(source.root_path)}
    assert set(entries) == {p.name for p in SPARK_LOGS.iterdir()}
    for p in SPARK_LOGS.iterdir():
        e = entries[p.name]
        assert e.is_dir == p.is_dir() and (e.is_dir or (e.size == p.stat().st_size and e.etag))
    rolling = entries["eventlog_v2_local-1795972918271"]
    assert {f.name for f in source.list(rolling.path)} == {p.name for p in (SPARK_LOGS / rolling.name).iterdir()}
    assert source.calls["list"] == 1, "the rolling log's files came with the listing"
    stat = source.stat(entries["local-1795972896863"].path)
    assert stat.etag == entries["local-1795972896863"].etag, "the same ETag from a listing and a HEAD"
    assert source.stat(rolling.path).is_dir
    with pytest.raises(SourceNotFound):
        source.stat(f"gs://{bucket}/spark-events/nope")
    source.chunk_size = 100_000
    data = (SPARK_LOGS / "local-1795972896863").read_bytes()
    with source.open(entries["local-1795972896863"].path, 1234) as stream:
        assert stream.read() == data[1234:]
    assert source.health()["state"] == "ok"
    source.close()


@pytest.mark.slow
def test_same_answers_from_gcs_as_from_a_local_copy(fake_gcs: FakeGcs, tmp_path: Path, timings: Timings) -> None:
    bucket = fresh_bucket(fake_gcs)
    with scanned_beside_local(f"gs://{bucket}/spark-events", tmp_path, fake_gcs.hadoop_conf(),
                              lambda local: upload(fake_gcs, bucket, local, "spark-events")) as done:
        pass
    timings.record("gcs same answers", apps=done.apps, objects=done.objects, requests_compared=done.requests,
                   upload=done.upload_s, first_scan=done.first_scan_s)


@pytest.mark.slow
def test_runtime_serves_from_the_store_while_gcs_hangs(fake_gcs: FakeGcs, tmp_path: Path, timings: Timings) -> None:
    bucket = fresh_bucket(fake_gcs)
    upload(fake_gcs, bucket, SPARK_LOGS, "events", SOME_LOGS)
    with runtime_on(f"gs://{bucket}/events", tmp_path / "store", hadoop_conf=fake_gcs.hadoop_conf()) as (runtime, client):
        assert runtime.scanner.scan_once().ok
        before = answers(client, SOME_APPS)
        fault_at = time.monotonic()
        fake_gcs.pause()
        try:
            figures = outage(runtime, client, before, SOME_APPS, fault_at)
        finally:
            lifted_at = time.monotonic()
            fake_gcs.resume()
        recover = recovery(runtime, client, before, SOME_APPS, lifted_at)
    timings.record("gcs server hung", **figures, outage=time.monotonic() - fault_at, recover_after_lift=recover)
