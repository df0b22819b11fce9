"""The driver's side of ``index-on-spark --store URL`` without Spark (:func:`begin_run`,
:func:`finish_run`): its catalog cache synced from the store location, and the end of a run
published, on a ``file://`` store location with records from a real scan of the samples."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkhist.scan.on_spark import begin_run, finish_run
from sparkhist.store import segments
from sparkhist.store.catalog import Catalog
from sparkhist.store.records import LogRecord
from sparkhist.store.remote import RemoteStore
from sparkhist.store.snapshots import snapshot_name
from support.server import copy_logs, runtime_for
from support.ui_corpus import SAMPLES


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store scanned from the samples (the state a driver's cache has after a scan), and its log_dir."""
    base = tmp_path_factory.mktemp("scanned")
    with runtime_for(copy_logs(SAMPLES, base / "logs"), base / "store") as (runtime, _):
        return base / "store", runtime.source.root


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[RemoteStore]:
    store = RemoteStore.open(f"file://{tmp_path}/shared")
    yield store
    store.close()


def _records(store: Path) -> dict[str, LogRecord]:
    catalog = Catalog(str(store), None, read_only=True)
    try:
        return catalog.load().records
    finally:
        catalog.close()


def _put(store: Path, log_dir: str, records: list[LogRecord]) -> None:
    catalog = Catalog(str(store), log_dir)
    try:
        catalog.put(records)
    finally:
        catalog.close()


def test_a_run_publishes_its_changes_and_the_driver_built_snapshots(scanned: tuple[Path, str], remote: RemoteStore,
                                                                    tmp_path: Path) -> None:
    store, log_dir = scanned
    cache = tmp_path / "cache"
    assert begin_run(remote, str(cache)) == {}  # an empty store location: nothing synced
    shutil.copytree(store, cache, dirs_exist_ok=True)  # the scan: every log new, snapshots built by the driver
    published = finish_run(remote, str(cache), {}, log_dir=log_dir, log_source=None)
    records = _records(store)
    assert (published.manifest, published.records, published.deleted, published.uploaded) == (
        "catalog/MANIFEST-0000000001", len(records), 0, len(records))
    assert sorted(remote.list("snapshots")) == sorted(f"snapshots/{snapshot_name(p)}" for p in records)
    assert not list((cache / "snapshots").iterdir())  # uploaded, then removed from the driver's cache
    # Nothing changed: nothing written.
    before = begin_run(remote, str(cache))
    assert before.keys() == records.keys()
    again = finish_run(remote, str(cache), before, log_dir=log_dir, log_source=None)
    assert (again.manifest, again.records, again.deleted) == ("catalog/MANIFEST-0000000001", 0, 0)
    assert len(remote.list("catalog")) == 2
    # One log grown, one deleted: one segment of one record and one deletion, the deleted log's snapshot removed.
    grown_path, gone_path = sorted(records)[:2]
    grown = LogRecord.from_dict({**records[grown_path].to_dict(), "total_size": records[grown_path].total_size + 7})
    _put(cache, log_dir, [grown])
    catalog = Catalog(str(cache), log_dir)
    try:
        catalog.delete([gone_path])
    finally:
        catalog.close()
    third = finish_run(remote, str(cache), before, log_dir=log_dir, log_source=None)
    assert (third.manifest, third.records, third.deleted, third.uploaded) == ("catalog/MANIFEST-0000000002", 1, 1, 0)
    assert f"snapshots/{snapshot_name(gone_path)}" not in remote.list("snapshots")
    found = segments.newest_manifest(remote)
    assert found is not None and [(s.records, s.deleted) for s in found[2].segments] == [(len(records), 0), (1, 1)]
    assert segments.verify_store(remote) == []


def test_a_run_killed_before_its_publish_is_not_taken_for_published(scanned: tuple[Path, str], remote: RemoteStore,
                                                                    tmp_path: Path) -> None:
    """The driver's cache kept from a run that never published holds records the store lacks:
    the next run's start makes it equal to the manifest again, so those logs are built again."""
    store, log_dir = scanned
    cache = tmp_path / "cache"
    records = _records(store)
    first, *rest = sorted(records.values(), key=lambda r: r.path)
    segments.publish(remote, [first], [], log_dir=log_dir)
    assert begin_run(remote, str(cache)).keys() == {first.path}
    _put(cache, log_dir, rest)  # a scan's records, then the driver died before finish_run
    assert begin_run(remote, str(cache)).keys() == {first.path}
    assert _records(cache).keys() == {first.path}


def test_a_task_uploads_each_snapshot_and_reports_each_failure(tmp_path: Path, remote: RemoteStore) -> None:
    """One Spark task's work in this process: every log built and its snapshot uploaded, the
    uploads overlapping the builds; a log that cannot be built is that log's failure only."""
    from sparkhist.reader.layout import find_event_log
    from sparkhist.scan.on_spark import build_group
    from sparkhist.scan.workers import Built
    from sparkhist.source.local import LocalSource

    logs = copy_logs(SAMPLES, tmp_path / "logs")
    source = LocalSource(str(logs))
    jobs = [(find_event_log(source, str(path)), True) for path in sorted(logs.iterdir())]
    (logs / "gone").write_bytes(b"{\"Event\":\"SparkListenerLogStart\",\"Spark Version\":\"4.0.1\"}\n")
    jobs.append((find_event_log(source, str(logs / "gone")), True))
    (logs / "gone").unlink()
    results = dict(build_group(source.root, "unused", None, {}, jobs, remote_url=remote.url))
    assert results.keys() == {job[0].path for job in jobs}
    assert isinstance(results.pop(str(logs / "gone")), Exception)
    assert all(isinstance(r, Built) and r.persisted for r in results.values())
    assert sorted(remote.list("snapshots")) == sorted(f"snapshots/{snapshot_name(p)}" for p in results)
