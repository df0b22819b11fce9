"""Keys the client library cannot represent ('.' or '..' or empty segments, control characters).

obstore (the Rust ``object_store``) refuses such a key, and with it the whole page of a
listing it comes in. S3 stores any key verbatim; SeaweedFS normalizes them away (it is a
file system), so these tests use moto's S3 server, **only for this fault injection**.

A bad key inside a rolling log's prefix fails that log alone: the log directory is then
listed with a delimiter (the bad key hidden inside its sub-prefix). A bad key directly
in the log directory fails its listing, naming the key (reported as skipped): the store
keeps serving every application, and nothing is dropped for keys that could not be seen.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from sparkhist.errors import SourceError
from sparkhist.source.factory import SourceOptions, open_source
from sparkhist.source.objectstore import ObjectStoreSource

from .moto_faults import FaultyMoto

_BUCKETS = itertools.count()


class Moto:
    """moto's server and a fresh bucket (moto's state is global to the process)."""

    def __init__(self, server: FaultyMoto) -> None:
        import boto3

        self.server = server
        self.bucket = f"bad-keys-{next(_BUCKETS)}"
        self.s3 = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id="a", aws_secret_access_key="b",
                               region_name="us-east-1")
        self.s3.create_bucket(Bucket=self.bucket)

    def put(self, key: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"{}\n")

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)


@pytest.fixture
def moto() -> Iterator[Moto]:
    server = FaultyMoto()
    try:
        yield Moto(server)
    finally:
        server.close()


def source_on(moto: Moto) -> ObjectStoreSource:
    conf = (("fs.s3a.endpoint", moto.server.endpoint), ("fs.s3a.path.style.access", "true"),
            ("fs.s3a.access.key", "a"), ("fs.s3a.secret.key", "b"))
    source = open_source(f"s3a://{moto.bucket}/events", SourceOptions(hadoop_conf=conf))
    assert isinstance(source, ObjectStoreSource)
    return source


def test_a_bad_key_in_a_rolling_log_fails_that_log_only(moto: Moto) -> None:
    for key in ("events/app-1", "events/eventlog_v2_ok/events_1_ok", "events/eventlog_v2_ok/appstatus_ok",
                "events/eventlog_v2_bad/events_1_bad", "events/eventlog_v2_bad/a\tb", "events/z-app-2"):
        moto.put(key)
    source = source_on(moto)
    names = {e.name: e for e in source.list(source.root_path)}
    assert set(names) == {"app-1", "eventlog_v2_ok", "eventlog_v2_bad", "z-app-2"}
    assert {f.name for f in source.list(names["eventlog_v2_ok"].path)} == {"events_1_ok", "appstatus_ok"}
    with pytest.raises(SourceError, match="cannot list it"):
        source.list(names["eventlog_v2_bad"].path)
    skip = source.skipped.get(f"s3a://{moto.bucket}/events/eventlog_v2_bad/a\tb")
    assert skip is not None and skip.reason == "unreadable"
    assert source.health()["breaker"]["state"] == "closed", "a bad key is no failure of the store"
    # The next listings go level by level at once (no failed recursive attempt first).
    assert {e.name for e in source.list(source.root_path)} == set(names)
    source.close()


def test_a_bad_key_in_the_log_directory_fails_its_listing_naming_it(moto: Moto) -> None:
    for key in ("events/app-1", "events/tab\tname", "events/z-app-2", "events/./under-a-dot-prefix"):
        moto.put(key)
    source = source_on(moto)
    with pytest.raises(SourceError, match="cannot list it: a key obstore cannot represent"):
        source.list(source.root_path)
    assert [(s.path, s.reason) for s in source.skipped.entries()] == [(f"s3a://{moto.bucket}/events/./", "unreadable")]
    assert source.health()["breaker"]["state"] == "closed"
    moto.delete("events/./under-a-dot-prefix")
    with pytest.raises(SourceError, match="tab"):
        source.list(source.root_path)
    assert f"s3a://{moto.bucket}/events/tab\tname" in [s.path for s in source.skipped.entries()]
    moto.delete("events/tab\tname")
    assert {e.name for e in source.list(source.root_path)} == {"app-1", "z-app-2"}
    source.close()
