"""The catalog of a shared store location: immutable, checksummed segments and the manifests
naming them.

A store location (:class:`~sparkhist.store.remote.RemoteStore`) holds no SQLite: after each
run that changed something, ``index-on-spark``'s driver writes

* one **segment**, ``catalog/segment-<n>-<xxh64>.seg``: the run's catalog records (new and
  changed logs) and the paths of the logs deleted since, sorted by application id (then
  path; records without one, and deletions, last), as one zstd frame of JSON lines between
  a header (``SPKHSEG\\x01``, format) and a trailer (record count, deletion count, xxh64 of
  every byte before it, ``SPKHSEGE``). The same records give the same bytes.
* then ``catalog/MANIFEST-<n>``: the live segments in order, with each one's size, xxh64
  and counts, the log directory and the number of live records; JSON, then its own xxh64.
  Written last, never rewritten: it is the commit point. A run killed before it leaves an
  unnamed segment, which nothing reads and the next garbage collection removes.

The records of a manifest are its segments applied in order (a later record of a path
replaces an earlier one; a deletion removes it). :func:`compact` merges them into one
segment under a new manifest; the old files stay for ``keep`` manifests, so a reader that
took an older manifest still finds its segments until it moves on.

A replica or the driver keeps a local copy (:func:`sync_cache`): the segments under
``<cache>/segments/`` (fetched only when not cached, checksum-verified), and the cache's
ordinary catalog made equal to the manifest's records, so the cache directory is an
ordinary store directory; snapshots come on demand (:func:`fetch_snapshot`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import xxhash
import zstandard

from sparkhist.config import LogSource, LogSources, recorded_log_source
from sparkhist.errors import StoreCorrupt, StoreError
from sparkhist.files import unlink_quietly, write_file_atomically
from sparkhist.store.catalog import CATALOG_FILE, Catalog
from sparkhist.store.records import LogRecord
from sparkhist.store.remote import RemoteStore
from sparkhist.store.snapshots import SNAPSHOT_DIR, snapshot_name

__all__ = ["Manifest", "SegmentRef", "SyncResult", "compact", "decode_segment", "encode_segment", "fetch_snapshot",
           "live_records", "newest_manifest", "publish", "sync_cache", "verify_store"]

log = logging.getLogger("sparkhist.store")

CATALOG_DIR = "catalog"
SEGMENTS_DIR = "segments"  # in a cache directory
CACHED_MANIFEST = "MANIFEST"  # the manifest a cache directory reflects, in its segments/
FORMAT = 1
MAGIC = b"SPKHSEG\x01"
END = b"SPKHSEGE"
_HEADER = struct.Struct("<8sH")
_TRAILER = struct.Struct("<QQQ8s")
#: Past this many live segments a publish compacts them into one.
MAX_SEGMENTS = 8
#: Manifests (and the segments they name) kept when old ones are removed.
KEEP_MANIFESTS = 2
_MANIFEST = re.compile(r"^catalog/MANIFEST-(\d{10})$")
_SEGMENT = re.compile(r"^catalog/segment-(\d{10})-[0-9a-f]{16}\.seg$")
_ZSTD_LEVEL = 3


def manifest_name(sequence: int) -> str:
    return f"{CATALOG_DIR}/MANIFEST-{sequence:010d}"


def _hex(blob: bytes) -> str:
    return xxhash.xxh64_hexdigest(blob)


# ------------------------------------------------------------------------- segments
def _order(record: LogRecord) -> tuple[bool, str, str]:
    return record.app_id is None, record.app_id or "", record.path


def encode_segment(records: Iterable[LogRecord], deleted: Iterable[str]) -> bytes:
    """The segment of ``records`` and ``deleted`` paths; the same input, the same bytes."""
    rows = sorted(records, key=_order)
    paths = {r.path for r in rows}
    if len(paths) != len(rows):
        raise ValueError("a segment holds one record per log")
    gone = sorted(set(deleted) - paths)
    lines = [orjson.dumps(r.to_dict(), option=orjson.OPT_SORT_KEYS) for r in rows]
    lines += [orjson.dumps({"deleted": p}) for p in gone]
    body = zstandard.ZstdCompressor(level=_ZSTD_LEVEL, write_checksum=False, write_content_size=True).compress(
        b"\n".join(lines))
    head = _HEADER.pack(MAGIC, FORMAT) + body
    return head + _TRAILER.pack(len(rows), len(gone), xxhash.xxh64_intdigest(head), END)


def decode_segment(blob: bytes, where: str) -> tuple[list[LogRecord], list[str]]:
    """(records, deleted paths) of a segment; :class:`StoreCorrupt` unless every check holds."""
    if len(blob) < _HEADER.size + _TRAILER.size:
        raise StoreCorrupt(f"{where}: truncated segment ({len(blob)} bytes)")
    magic, version = _HEADER.unpack_from(blob)
    count, deletions, checksum, end = _TRAILER.unpack_from(blob, len(blob) - _TRAILER.size)
    if magic != MAGIC or end != END:
        raise StoreCorrupt(f"{where}: not a catalog segment")
    if version != FORMAT:
        raise StoreCorrupt(f"{where}: segment format {version}, this sparkhist reads {FORMAT}")
    head = blob[: len(blob) - _TRAILER.size]
    if xxhash.xxh64_intdigest(head) != checksum:
        raise StoreCorrupt(f"{where}: segment checksum mismatch")
    try:
        body = zstandard.ZstdDecompressor().decompress(head[_HEADER.size :])
        records: list[LogRecord] = []
        gone: list[str] = []
        for line in body.split(b"\n") if body else []:
            data = orjson.loads(line)
            if "deleted" in data and len(data) == 1:
                gone.append(data["deleted"])
            else:
                records.append(LogRecord.from_dict(data))
    except (zstandard.ZstdError, orjson.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
        raise StoreCorrupt(f"{where}: undecodable segment: {exc}") from exc
    if len(records) != count or len(gone) != deletions:
        raise StoreCorrupt(f"{where}: {len(records)} records and {len(gone)} deletions, its trailer says {count} and "
                           f"{deletions}")
    return records, gone


# ------------------------------------------------------------------------- manifests
@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A live segment as its manifest names it."""

    name: str  # relative to the store URL: catalog/segment-…
    size: int
    checksum: str  # xxh64 of the whole file, hex
    records: int
    deleted: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """The commit point: which segments, in which order, make the catalog."""

    sequence: int
    segments: tuple[SegmentRef, ...]
    records: int  # live records once every segment is applied
    log_dir: str | None = None  # the log directory's display form (the catalog's ``log_dir``)
    log_source: LogSource | LogSources | None = None  # the configured log directory the listing rows show

    def encode(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FORMAT, "sequence": self.sequence, "records": self.records, "log_dir": self.log_dir,
            "log_source": list(self.log_source) if self.log_source is not None else None,
            "segments": [{"name": s.name, "size": s.size, "checksum": s.checksum, "records": s.records,
                          "deleted": s.deleted} for s in self.segments],
        }
        body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        return body + b"\n" + _hex(body).encode() + b"\n"

    @classmethod
    def decode(cls, blob: bytes, where: str) -> Manifest:
        body, _, rest = blob.rstrip(b"\n").rpartition(b"\n")
        if not body or _hex(body).encode() != rest:
            raise StoreCorrupt(f"{where}: manifest checksum mismatch")
        try:
            doc = orjson.loads(body)
            if doc["format"] != FORMAT:
                raise StoreCorrupt(f"{where}: manifest format {doc['format']}, this sparkhist reads {FORMAT}")
            source = doc.get("log_source")
            return cls(int(doc["sequence"]), tuple(SegmentRef(**s) for s in doc["segments"]), int(doc["records"]),
                       doc.get("log_dir"), _log_source(source))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StoreCorrupt(f"{where}: undecodable manifest: {exc}") from exc


def _log_source(recorded: Any) -> LogSource | LogSources | None:
    """A manifest's ``log_source`` (:func:`~sparkhist.config.recorded_log_source`); a value of
    another shape is a damaged manifest."""
    source = recorded_log_source(recorded)
    if recorded is not None and source is None:
        raise ValueError(f"log_source {recorded!r}")
    return source


def _catalog_names(remote: RemoteStore) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(manifests, segments) under catalog/, each (sequence, name), oldest first."""
    manifests, segments = [], []
    for name in remote.list(CATALOG_DIR):
        if found := _MANIFEST.match(name):
            manifests.append((int(found.group(1)), name))
        elif found := _SEGMENT.match(name):
            segments.append((int(found.group(1)), name))
    return sorted(manifests), sorted(segments)


def newest_manifest(remote: RemoteStore) -> tuple[str, bytes, Manifest] | None:
    """(name, bytes, decoded) of the newest manifest; None for a store with none yet.
    :class:`StoreCorrupt` when it is damaged (refused: no older catalog is taken for it)."""
    manifests, _ = _catalog_names(remote)
    if not manifests:
        return None
    name = manifests[-1][1]
    blob = remote.get(name)
    return name, blob, Manifest.decode(blob, f"{remote.url}/{name}")


def _segment_blob(remote: RemoteStore, ref: SegmentRef, cache_dir: str | None) -> tuple[bytes, bool]:
    """A segment's verified bytes, from the cache when it holds them intact; (bytes, fetched)."""
    where = f"{remote.url}/{ref.name}"
    cached = os.path.join(cache_dir, SEGMENTS_DIR, os.path.basename(ref.name)) if cache_dir else None
    if cached is not None:
        try:
            with open(cached, "rb") as f:
                blob = f.read()
            if len(blob) == ref.size and _hex(blob) == ref.checksum:
                return blob, False
        except FileNotFoundError:
            pass
    blob = remote.get(ref.name)
    if len(blob) != ref.size or _hex(blob) != ref.checksum:
        raise StoreCorrupt(f"{where}: segment is not the one its manifest names (size {len(blob)} vs {ref.size}, "
                           f"xxh64 {_hex(blob)} vs {ref.checksum})")
    decode_segment(blob, where)  # its own checks too, before it is kept
    if cached is not None:
        _write_atomic(cached, blob)
    return blob, True


def live_records(remote: RemoteStore, manifest: Manifest, cache_dir: str | None = None) -> dict[str, LogRecord]:
    """The records ``manifest`` names: its segments applied in order."""
    records, _ = _fold(remote, manifest, cache_dir)
    return records


def _fold(remote: RemoteStore, manifest: Manifest, cache_dir: str | None) -> tuple[dict[str, LogRecord], int]:
    records: dict[str, LogRecord] = {}
    fetched = 0
    for ref in manifest.segments:
        blob, was_fetched = _segment_blob(remote, ref, cache_dir)
        fetched += was_fetched
        rows, gone = decode_segment(blob, f"{remote.url}/{ref.name}")
        for record in rows:
            records[record.path] = record
        for path in gone:
            records.pop(path, None)
    if len(records) != manifest.records:
        raise StoreCorrupt(f"{remote.url}: its manifest names {manifest.records} records, its segments give {len(records)}")
    return records, fetched


# ------------------------------------------------------------------------- writing
def publish(remote: RemoteStore, records: Sequence[LogRecord], deleted: Sequence[str], *, log_dir: str | None = None,
            log_source: LogSource | LogSources | None = None, max_segments: int = MAX_SEGMENTS) -> str:
    """One segment of ``records`` and ``deleted`` and the manifest naming it after the live
    ones; returns the new manifest's name. Nothing to write (no record, no deletion, and a
    manifest already there): nothing written, the newest manifest's name returned.
    ``log_dir``/``log_source``: recorded in the manifest (default: the previous manifest's).
    Past ``max_segments`` live segments, they are compacted into one (:func:`compact`)."""
    found = newest_manifest(remote)
    previous = found[2] if found is not None else Manifest(0, (), 0)
    if found is not None and not records and not deleted:
        return found[0]
    live = _fold(remote, previous, None)[0] if previous.segments else {}
    sequence = previous.sequence + 1
    segments = list(previous.segments)
    if records or deleted:
        blob = encode_segment(records, deleted)
        name = f"{CATALOG_DIR}/segment-{sequence:010d}-{_hex(blob)}.seg"
        rows, gone = decode_segment(blob, name)
        remote.put_atomic(name, blob)
        segments.append(SegmentRef(name, len(blob), _hex(blob), len(rows), len(gone)))
        for record in rows:
            live[record.path] = record
        for path in gone:
            live.pop(path, None)
    manifest = Manifest(sequence, tuple(segments), len(live), log_dir if log_dir is not None else previous.log_dir,
                        log_source if log_source is not None else previous.log_source)
    name = _commit(remote, manifest)
    log.info("published %s: %d records, %d deletions; %d live records in %d segments", name, len(records), len(deleted),
             len(live), len(segments))
    if len(segments) > max_segments:
        name = compact(remote) or name
    return name


def _commit(remote: RemoteStore, manifest: Manifest) -> str:
    name = manifest_name(manifest.sequence)
    manifests, _ = _catalog_names(remote)
    if manifests and manifests[-1][0] >= manifest.sequence:
        raise StoreError(f"{remote.url}: {manifests[-1][1]} appeared meanwhile: another writer publishes to this store")
    remote.put_atomic(name, manifest.encode())
    return name


def compact(remote: RemoteStore, keep: int = KEEP_MANIFESTS) -> str | None:
    """The live segments merged into one under a new manifest (None: nothing to merge), then
    manifests older than the ``keep`` newest and the segments none of those names removed."""
    found = newest_manifest(remote)
    if found is None or len(found[2].segments) < 2:
        return None
    previous = found[2]
    live = _fold(remote, previous, None)[0]
    sequence = previous.sequence + 1
    blob = encode_segment(live.values(), ())
    segment = f"{CATALOG_DIR}/segment-{sequence:010d}-{_hex(blob)}.seg"
    remote.put_atomic(segment, blob)
    manifest = Manifest(sequence, (SegmentRef(segment, len(blob), _hex(blob), len(live), 0),), len(live),
                        previous.log_dir, previous.log_source)
    name = _commit(remote, manifest)
    log.info("compacted %d segments into %s (%d records, %d bytes)", len(previous.segments), segment, len(live), len(blob))
    collect_garbage(remote, keep)
    return name


def collect_garbage(remote: RemoteStore, keep: int = KEEP_MANIFESTS) -> list[str]:
    """Remove manifests older than the ``keep`` newest, segments none of those names (up to
    the newest manifest's sequence: a newer one is being published), and temporary files.
    Returns the names removed."""
    manifests, segments = _catalog_names(remote)
    if not manifests:
        return []
    kept = manifests[-keep:] if keep > 0 else manifests[-1:]
    named: set[str] = set()
    for _, name in kept:
        named.update(s.name for s in Manifest.decode(remote.get(name), f"{remote.url}/{name}").segments)
    newest = manifests[-1][0]
    doomed = [name for _, name in manifests[: len(manifests) - len(kept)]]
    doomed += [name for sequence, name in segments if name not in named and sequence <= newest]
    for name in doomed:
        remote.delete(name)
    remote.remove_temp_files(CATALOG_DIR)
    return doomed


# ------------------------------------------------------------------------- a local copy
@dataclass(slots=True)
class SyncResult:
    """What :func:`sync_cache` did."""

    manifest: str | None  # the manifest the cache now reflects (None: the store has none yet)
    added: int = 0
    changed: int = 0
    removed: int = 0
    segments_fetched: int = 0
    records: int = 0  # live records
    changed_paths: list[str] = field(default_factory=list)  # added, changed and removed logs


def _write_atomic(path: str, blob: bytes) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    try:
        write_file_atomically(path, blob, f"{path}.{os.getpid()}.tmp")
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc}") from exc


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def sync_cache(remote: RemoteStore, cache_dir: str, *, log_source: LogSource | LogSources | None = None) -> SyncResult:
    """``cache_dir`` made a copy of the newest manifest's catalog.

    The manifest's segments are fetched when not cached (checksum-verified, kept under
    ``cache_dir/segments/``), and the cache's catalog (an ordinary store catalog) made equal
    to their records: new and changed records written, records the manifest no longer names
    deleted, and the cached snapshots of changed and removed logs dropped (fetched again on
    demand). A cache already at the newest manifest costs one listing and one small read.
    ``log_source``: what the listing rows show (default: the manifest's).

    Raises the source's :class:`~sparkhist.errors.SourceUnavailable` when the store cannot
    be reached and :class:`~sparkhist.errors.StoreCorrupt` when its manifest or a segment
    is damaged; the cache is then left as it was.
    """
    segments_dir = os.path.join(cache_dir, SEGMENTS_DIR)
    cached_manifest = os.path.join(segments_dir, CACHED_MANIFEST)
    found = newest_manifest(remote)
    catalog_there = os.path.exists(os.path.join(cache_dir, CATALOG_FILE))
    if found is None:
        manifest_name_, blob, manifest = None, b"", Manifest(0, (), 0)
    else:
        manifest_name_, blob, manifest = found
        if catalog_there and _read(cached_manifest) == blob and log_source in (None, manifest.log_source):
            return SyncResult(manifest_name_, records=manifest.records)
    records, fetched = _fold(remote, manifest, cache_dir)
    if found is None and not catalog_there:
        return SyncResult(None)
    catalog = Catalog(cache_dir, manifest.log_dir, log_source=log_source or manifest.log_source)
    try:
        existing = catalog.load().records
        put = [r for path, r in records.items() if path not in existing or existing[path].to_dict() != r.to_dict()]
        gone = [path for path in existing if path not in records]
        added = sum(1 for r in put if r.path not in existing)
        for start in range(0, len(put), 5000):
            catalog.put(put[start : start + 5000])
        catalog.delete(gone)
    finally:
        catalog.close()
    stale = [r.path for r in put if r.path in existing] + gone
    for path in stale:
        unlink_quietly(os.path.join(cache_dir, SNAPSHOT_DIR, snapshot_name(path)))
    if found is not None:
        _write_atomic(cached_manifest, blob)
    named = {os.path.basename(s.name) for s in manifest.segments} | {CACHED_MANIFEST}
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(segments_dir):
            if name not in named:
                unlink_quietly(os.path.join(segments_dir, name))
    result = SyncResult(manifest_name_, added, len(put) - added, len(gone), fetched, len(records),
                        sorted(r.path for r in put) + sorted(gone))
    log.info("cache %s synced to %s: %d added, %d changed, %d removed (%d segments fetched)", cache_dir,
             manifest_name_, result.added, result.changed, result.removed, fetched)
    return result


def fetch_snapshot(remote: RemoteStore, cache_dir: str, snapshot_file: str) -> None:
    """``URL/snapshots/<snapshot_file>`` copied to ``cache_dir/snapshots/<snapshot_file>``
    atomically (the snapshot reader verifies it); :class:`FileNotFoundError` when absent."""
    if os.path.basename(snapshot_file) != snapshot_file or not snapshot_file.endswith(".snap"):
        raise StoreError(f"not a snapshot file name: {snapshot_file!r}")
    blob = remote.get(f"{SNAPSHOT_DIR}/{snapshot_file}")
    _write_atomic(os.path.join(cache_dir, SNAPSHOT_DIR, snapshot_file), blob)


def verify_store(remote: RemoteStore) -> list[str]:
    """What is wrong with the newest manifest and its segments (empty: all intact), and
    snapshots its records name that are absent."""
    try:
        found = newest_manifest(remote)
    except StoreCorrupt as exc:
        return [str(exc)]
    if found is None:
        return []
    problems: list[str] = []
    records: dict[str, LogRecord] = {}
    for ref in found[2].segments:
        try:
            blob, _ = _segment_blob(remote, ref, None)
        except (StoreCorrupt, FileNotFoundError) as exc:
            problems.append(str(exc))
            continue
        rows, gone = decode_segment(blob, ref.name)
        records.update((r.path, r) for r in rows)
        for path in gone:
            records.pop(path, None)
    present = {os.path.basename(n) for n in remote.list(SNAPSHOT_DIR)}
    for path, record in sorted(records.items()):
        if record.snapshot_size >= 0 and snapshot_name(path) not in present:
            problems.append(f"{remote.url}/{SNAPSHOT_DIR}/{snapshot_name(path)}: absent (snapshot of {path})")
    return problems
