"""Per-attempt snapshots: the full application state and the log position it reflects.

One file per event log, ``snapshots/<xxh64(log path)>.snap``::

    magic "SPKHSNAP" | format u16 | flags u16 | payload length u64 | xxh64(payload) u64 | payload

The payload is a zstd-compressed pickle of :class:`Snapshot`. Files are written
atomically (temp file, fsync, rename, directory fsync) and verified on every read; a
file that fails verification is moved to ``quarantine/`` and reported as
:class:`StoreCorrupt`, so its application is rebuilt from the log instead of served
wrong. A write that fails (e.g. ENOSPC) leaves no partial file behind.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import time
from dataclasses import dataclass
from typing import Any

import xxhash
import zstandard

from sparkhist.errors import StoreCorrupt, StoreError
from sparkhist.reader.position import Position

log = logging.getLogger("sparkhist.store")

MAGIC = b"SPKHSNAP"
FORMAT = 2  # 2: SQL driver updates kept as a list, RDD distributions remember their written "remaining"
_HEADER = struct.Struct("<8sHHQQ")
SNAPSHOT_DIR = "snapshots"
QUARANTINE_DIR = "quarantine"
TEMP_SUFFIX = ".tmp"


@dataclass(slots=True)
class Snapshot:
    """The state of one attempt after reading its log up to ``position``."""

    log_path: str
    position: Position
    resume_file: str | None
    log_size: int  # total stored bytes of the log when read (to tell a grown log)
    in_progress: bool  # whether the log was still being written when read
    state: Any
    log_mtime_ms: int = 0  # the log's mtime when read: the completed attempt's lastUpdated
    persisted: bool = False  # set by the indexer; not meaningful inside the file


def snapshot_name(log_path: str) -> str:
    return xxhash.xxh64_hexdigest(log_path.encode()) + ".snap"


def encode(snapshot: Snapshot) -> bytes:
    payload = zstandard.ZstdCompressor(level=1).compress(pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL))
    return _HEADER.pack(MAGIC, FORMAT, 0, len(payload), xxhash.xxh64_intdigest(payload)) + payload


def decode(blob: bytes, where: str) -> Snapshot:
    if len(blob) < _HEADER.size:
        raise StoreCorrupt(f"{where}: truncated header ({len(blob)} bytes)")
    magic, fmt, _flags, length, checksum = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise StoreCorrupt(f"{where}: bad magic")
    if fmt != FORMAT:
        raise StoreCorrupt(f"{where}: snapshot format {fmt}, expected {FORMAT}")
    payload = blob[_HEADER.size:]
    if len(payload) != length:
        raise StoreCorrupt(f"{where}: payload is {len(payload)} bytes, header says {length}")
    if xxhash.xxh64_intdigest(payload) != checksum:
        raise StoreCorrupt(f"{where}: checksum mismatch")
    try:
        raw = zstandard.ZstdDecompressor().decompress(payload)
        snapshot = pickle.loads(raw)
    except Exception as exc:  # a checksum collision or a code change; never serve it
        raise StoreCorrupt(f"{where}: cannot decode ({exc})") from exc
    if not isinstance(snapshot, Snapshot):
        raise StoreCorrupt(f"{where}: not a snapshot")
    try:
        snapshot.state._pickled_bytes = len(raw)  # what a memory estimate needs, for free
    except AttributeError:
        pass  # a state with __slots__ and no room for it: the estimate pickles instead
    return snapshot


class SnapshotStore:
    """The ``snapshots/`` directory of a store."""

    def __init__(self, store_dir: str, *, create: bool = True) -> None:
        self.dir = os.path.join(store_dir, SNAPSHOT_DIR)
        self.quarantine_dir = os.path.join(store_dir, QUARANTINE_DIR)
        if create:
            os.makedirs(self.dir, exist_ok=True)
        self.corrupt_found = 0
        self.quarantined: dict[str, str] = {}  # log path -> reason

    def path_for(self, log_path: str) -> str:
        return os.path.join(self.dir, snapshot_name(log_path))

    def remove_temp_files(self) -> int:
        """Half-written files of a process that died mid-write."""
        removed = 0
        for name in os.listdir(self.dir):
            if name.endswith(TEMP_SUFFIX):
                os.unlink(os.path.join(self.dir, name))
                removed += 1
        if removed:
            log.info("removed %d half-written snapshot files", removed)
        return removed

    def write(self, snapshot: Snapshot) -> int:
        """Atomically replace the snapshot of ``snapshot.log_path``; returns its size."""
        blob = encode(snapshot)
        final = self.path_for(snapshot.log_path)
        temp = f"{final}.{os.getpid()}{TEMP_SUFFIX}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(blob)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, final)
            _fsync_dir(self.dir)
        except OSError as exc:
            _unlink_quietly(temp)
            raise StoreError(f"cannot write snapshot for {snapshot.log_path}: {exc}") from exc
        self.quarantined.pop(snapshot.log_path, None)
        return len(blob)

    def read(self, log_path: str) -> Snapshot | None:
        """The verified snapshot, None if there is none; :class:`StoreCorrupt` after quarantining a bad one."""
        path = self.path_for(log_path)
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read snapshot {path}: {exc}") from exc
        try:
            snapshot = decode(blob, path)
            if snapshot.log_path != log_path:
                raise StoreCorrupt(f"{path}: belongs to {snapshot.log_path}")
        except StoreCorrupt as exc:
            self.corrupt_found += 1
            self.quarantine(log_path, str(exc))
            raise
        return snapshot

    def pickled_size(self, log_path: str) -> int:
        """The uncompressed size of a snapshot's payload, from its first bytes (0 if unknown).

        Lets the state cache make room *before* loading a state.
        """
        try:
            with open(self.path_for(log_path), "rb") as f:
                head = f.read(_HEADER.size + 18)
            size = zstandard.frame_content_size(head[_HEADER.size:])
        except (OSError, zstandard.ZstdError):
            return 0
        return max(size, 0)

    def read_file(self, name: str) -> Snapshot:
        """A snapshot by file name (catalog rebuild); a damaged one is quarantined."""
        path = os.path.join(self.dir, name)
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except OSError as exc:
            raise StoreError(f"cannot read snapshot {path}: {exc}") from exc
        try:
            snapshot = decode(blob, path)
            if snapshot_name(snapshot.log_path) != name:
                raise StoreCorrupt(f"{path}: belongs to {snapshot.log_path}")
        except StoreCorrupt as exc:
            self.corrupt_found += 1
            os.makedirs(self.quarantine_dir, exist_ok=True)
            os.replace(path, os.path.join(self.quarantine_dir, f"{name}.{int(time.time() * 1000)}"))
            log.warning("snapshot %s quarantined: %s", name, exc)
            raise
        return snapshot

    def quarantine(self, log_path: str, reason: str) -> None:
        path = self.path_for(log_path)
        os.makedirs(self.quarantine_dir, exist_ok=True)
        target = os.path.join(self.quarantine_dir, f"{os.path.basename(path)}.{int(time.time() * 1000)}")
        try:
            os.replace(path, target)
        except FileNotFoundError:
            pass
        self.quarantined[log_path] = reason
        log.warning("snapshot of %s quarantined: %s", log_path, reason, extra={"event": "quarantine", "log_path": log_path})

    def delete(self, log_path: str) -> None:
        _unlink_quietly(self.path_for(log_path))

    def file_names(self) -> list[str]:
        return [n for n in os.listdir(self.dir) if n.endswith(".snap")]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
