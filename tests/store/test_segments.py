"""Catalog segments and manifests on a ``file://`` store location (:mod:`sparkhist.store.segments`):
records from a real scan of the bundled sample logs published, synced into caches, damaged,
compacted. The same code runs on HDFS and S3 in ``tests/scan/test_index_on_spark_remote.py``."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkhist.errors import StoreCorrupt
from sparkhist.store import segments
from sparkhist.store.catalog import Catalog
from sparkhist.store.records import LogRecord
from sparkhist.store.remote import RemoteStore, is_store_url
from sparkhist.store.snapshots import snapshot_name
from support.server import copy_logs, runtime_for
from support.ui_corpus import SAMPLES


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, LogRecord], str]:
    """A store scanned from the samples: (store dir, its records, the catalog's log_dir)."""
    base = tmp_path_factory.mktemp("scanned")
    logs = copy_logs(SAMPLES, base / "logs")
    with runtime_for(logs, base / "store") as (runtime, _):
        root = runtime.source.root
    catalog = Catalog(str(base / "store"), None, read_only=True)
    try:
        records = catalog.load().records
    finally:
        catalog.close()
    assert len(records) >= 4
    return base / "store", records, root


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[RemoteStore]:
    store = RemoteStore.open(f"file://{tmp_path}/shared")
    yield store
    store.close()


def _catalog_records(store_dir: Path) -> dict[str, dict[str, object]]:
    catalog = Catalog(str(store_dir), None, read_only=True)
    try:
        return {p: r.to_dict() for p, r in catalog.load().records.items()}
    finally:
        catalog.close()


def test_store_urls() -> None:
    assert is_store_url("hdfs://ns/x") and is_store_url("s3a://b/p") and is_store_url("file:///tmp/x")
    assert not is_store_url("/tmp/x") and not is_store_url("relative/dir") and not is_store_url("file:relative")


def test_put_get_list_delete(remote: RemoteStore, tmp_path: Path) -> None:
    remote.put_atomic("snapshots/a.snap", b"one")
    remote.put_atomic("snapshots/a.snap", b"two")
    remote.put_atomic("catalog/MANIFEST-0000000001", b"m")
    assert remote.get("snapshots/a.snap") == b"two"
    assert remote.list("snapshots") == ["snapshots/a.snap"]
    assert remote.list("nothing") == []
    assert [p.name for p in (tmp_path / "shared" / "snapshots").iterdir()] == ["a.snap"]  # no temporary left
    remote.delete("snapshots/a.snap")
    remote.delete("snapshots/a.snap")
    with pytest.raises(FileNotFoundError):
        remote.get("snapshots/a.snap")


def test_segment_bytes_are_a_function_of_the_records(scanned: tuple[Path, dict[str, LogRecord], str]) -> None:
    _, records, _ = scanned
    rows = list(records.values())
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    blob = segments.encode_segment(rows, ["/gone/a", "/gone/b"])
    assert segments.encode_segment(shuffled, ["/gone/b", "/gone/a"]) == blob
    decoded, gone = segments.decode_segment(blob, "test")
    assert [r.to_dict() for r in decoded] == [r.to_dict() for r in sorted(rows, key=segments._order)]
    assert [r.app_id for r in decoded if r.app_id] == sorted(r.app_id for r in rows if r.app_id)
    assert gone == ["/gone/a", "/gone/b"]


def test_every_damaged_byte_is_refused(scanned: tuple[Path, dict[str, LogRecord], str]) -> None:
    _, records, _ = scanned
    blob = segments.encode_segment(records.values(), ["/gone"])
    for at in range(0, len(blob), max(1, len(blob) // 200)):
        damaged = bytearray(blob)
        damaged[at] ^= 0x20
        with pytest.raises(StoreCorrupt):
            segments.decode_segment(bytes(damaged), "test")
    with pytest.raises(StoreCorrupt):
        segments.decode_segment(blob[:-1], "test")


def test_publish_then_sync_gives_the_same_catalog(scanned: tuple[Path, dict[str, LogRecord], str], remote: RemoteStore,
                                                  tmp_path: Path) -> None:
    store, records, root = scanned
    name = segments.publish(remote, list(records.values()), [], log_dir=root)
    assert name == "catalog/MANIFEST-0000000001"
    assert len(remote.list("catalog")) == 2
    result = segments.sync_cache(remote, str(tmp_path / "cache"))
    counts = (result.manifest, result.added, result.changed, result.removed, result.segments_fetched)
    assert counts == (name, len(records), 0, 0, 1)
    assert _catalog_records(tmp_path / "cache") == _catalog_records(store)
    # Nothing new: no manifest, no segment; the cache at it costs no fetch and no write.
    assert segments.publish(remote, [], []) == name
    assert len(remote.list("catalog")) == 2
    again = segments.sync_cache(remote, str(tmp_path / "cache"))
    assert (again.manifest, again.added, again.changed, again.removed, again.segments_fetched) == (name, 0, 0, 0, 0)


def test_changes_and_deletions_reach_the_cache(scanned: tuple[Path, dict[str, LogRecord], str], remote: RemoteStore,
                                               tmp_path: Path) -> None:
    _, records, root = scanned
    rows = sorted(records.values(), key=lambda r: r.path)
    segments.publish(remote, rows, [], log_dir=root)
    cache = tmp_path / "cache"
    segments.sync_cache(remote, str(cache))
    changed = LogRecord.from_dict({**rows[0].to_dict(), "total_size": rows[0].total_size + 1})
    # A cached snapshot of a changed or removed log is stale: dropped, fetched again on demand.
    for row in rows[:2]:
        (cache / "snapshots").mkdir(exist_ok=True)
        (cache / "snapshots" / snapshot_name(row.path)).write_bytes(b"old")
    name = segments.publish(remote, [changed], [rows[1].path])
    segment = [n for n in remote.list("catalog") if n.startswith("catalog/segment-0000000002")]
    assert len(segment) == 1 and os.path.getsize(tmp_path / "shared" / segment[0]) < 1000  # the run's records only
    result = segments.sync_cache(remote, str(cache))
    assert (result.manifest, result.added, result.changed, result.removed, result.segments_fetched) == (name, 0, 1, 1, 1)
    assert sorted(result.changed_paths) == sorted([rows[0].path, rows[1].path])
    got = _catalog_records(cache)
    assert rows[1].path not in got and got[rows[0].path] == changed.to_dict()
    assert not list((cache / "snapshots").iterdir())


def test_a_damaged_segment_is_refused_and_the_cache_kept(scanned: tuple[Path, dict[str, LogRecord], str],
                                                         remote: RemoteStore, tmp_path: Path) -> None:
    _, records, root = scanned
    rows = sorted(records.values(), key=lambda r: r.path)
    segments.publish(remote, rows[:2], [], log_dir=root)
    cache = tmp_path / "cache"
    segments.sync_cache(remote, str(cache))
    before = _catalog_records(cache)
    segments.publish(remote, rows[2:], [])
    [second] = [tmp_path / "shared" / n for n in remote.list("catalog") if n.startswith("catalog/segment-0000000002")]
    blob = bytearray(second.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    second.write_bytes(bytes(blob))
    with pytest.raises(StoreCorrupt, match="segment"):
        segments.sync_cache(remote, str(cache))
    assert _catalog_records(cache) == before
    assert segments.verify_store(remote) and "segment" in segments.verify_store(remote)[0]
    # A damaged manifest is refused too.
    manifest = tmp_path / "shared" / "catalog" / "MANIFEST-0000000002"
    manifest.write_bytes(manifest.read_bytes().replace(b'"records"', b'"recordz"'))
    with pytest.raises(StoreCorrupt, match="manifest"):
        segments.sync_cache(remote, str(cache))


def test_compaction_merges_and_keeps_older_readers_working(scanned: tuple[Path, dict[str, LogRecord], str],
                                                           remote: RemoteStore, tmp_path: Path) -> None:
    store, records, root = scanned
    rows = sorted(records.values(), key=lambda r: r.path)
    for i, row in enumerate(rows):
        name = segments.publish(remote, [row], [], log_dir=root, max_segments=len(rows) + 1)
        assert name == segments.manifest_name(i + 1)
    old_reader = segments.newest_manifest(remote)
    assert old_reader is not None and len(old_reader[2].segments) == len(rows)
    compacted = segments.compact(remote)
    assert compacted == segments.manifest_name(len(rows) + 1)
    newest = segments.newest_manifest(remote)
    assert newest is not None and len(newest[2].segments) == 1
    # The manifest an older reader took still names segments that are there.
    assert segments.live_records(remote, old_reader[2]).keys() == records.keys()
    segments.sync_cache(remote, str(tmp_path / "cache"))
    assert _catalog_records(tmp_path / "cache") == _catalog_records(store)
    # Past max_segments, a publish compacts by itself; two manifests are kept.
    segments.publish(remote, [rows[0]], ["/none"], max_segments=1)
    manifests = [n for n in remote.list("catalog") if "MANIFEST" in n]
    live = segments.newest_manifest(remote)
    assert live is not None and len(live[2].segments) == 1 and len(manifests) == 2
    assert len([n for n in remote.list("catalog") if n.endswith(".seg")]) <= 3


def test_fetch_snapshot(scanned: tuple[Path, dict[str, LogRecord], str], remote: RemoteStore, tmp_path: Path) -> None:
    store, records, _ = scanned
    name = snapshot_name(next(iter(records)))
    blob = (store / "snapshots" / name).read_bytes()
    remote.put_atomic(f"snapshots/{name}", blob)
    segments.fetch_snapshot(remote, str(tmp_path / "cache"), name)
    assert (tmp_path / "cache" / "snapshots" / name).read_bytes() == blob
    with pytest.raises(FileNotFoundError):
        segments.fetch_snapshot(remote, str(tmp_path / "cache"), "0" * 16 + ".snap")
