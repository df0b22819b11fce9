"""Rows of one attempt waiting to be compacted into the table files: cheap to write at index time.

The indexer writes one file per attempt right after its snapshot (:func:`write_rows`): the
rows of every table (:func:`~sparkhist.analytics.tables.rows_of`) as MessagePack, behind a
magic line and the xxh64 of the payload, to a temporary file renamed over the attempt's
previous one. No fsync: the rows are derived data, and whatever a crash loses or tears
(the checksum tells) the writer's repair makes again from the snapshot. An attempt whose
snapshot is gone gets a *tombstone* (:func:`write_tombstone`: no rows), so compaction
removes its rows from the tables.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import msgspec
import xxhash

from sparkhist.analytics.layout import TEMP_SUFFIX, key_of_log, pending_dir
from sparkhist.analytics.tables import rows_of
from sparkhist.errors import StoreError
from sparkhist.store.files import unlink_quietly
from sparkhist.store.snapshots import Snapshot

log = logging.getLogger("sparkhist.analytics")

MAGIC = b"sparkhist-rows 1\n"
SUFFIX = ".rows"
_DIGEST = 8

#: Rows of every table (key columns included), by table name; None for a tombstone.
Rows = dict[str, list[tuple[Any, ...]]]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


@dataclass(frozen=True, slots=True)
class Pending:
    key: str
    path: str
    identity: tuple[int, int, int]  # (inode, size, mtime_ns) when read: a rewrite changes it
    stamp: int  # the snapshot's mtime in ns (0 for a tombstone)
    rows: Rows | None  # None: the attempt's rows are to be removed


def encode(stamp: int, rows: Rows | None) -> bytes:
    payload = _encoder.encode((stamp, rows))
    return MAGIC + xxhash.xxh64_digest(payload) + payload


def decode(data: bytes) -> tuple[int, Rows | None]:
    """(stamp, rows); ValueError when the bytes are not a whole, intact file."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _DIGEST:
        raise ValueError("not a rows file")
    digest, payload = data[len(MAGIC):len(MAGIC) + _DIGEST], data[len(MAGIC) + _DIGEST:]
    if xxhash.xxh64_digest(payload) != digest:
        raise ValueError("checksum mismatch")
    try:
        stamp, rows = _decoder.decode(payload)
    except (msgspec.DecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"undecodable rows: {exc}") from exc
    if rows is not None:
        rows = {name: [tuple(r) for r in table] for name, table in rows.items()}
    return int(stamp), rows


def _write(store_dir: str, key: str, data: bytes) -> None:
    directory = pending_dir(store_dir)
    temp = os.path.join(directory, f"{key}.{os.getpid()}.{threading.get_ident()}{TEMP_SUFFIX}")
    try:
        try:
            f = open(temp, "wb")  # the directory is made on the first miss only
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            f = open(temp, "wb")
        with f:
            f.write(data)
        os.replace(temp, os.path.join(directory, key + SUFFIX))
    except OSError as exc:
        unlink_quietly(temp)
        raise StoreError(f"cannot write the analytics rows of attempt {key}: {exc}") from exc


def write_rows(store_dir: str, snapshot: Snapshot, stamp: int) -> None:
    """The rows of ``snapshot``'s attempt (just saved, its file's mtime ``stamp``), pending."""
    _write(store_dir, key_of_log(snapshot.log_path), encode(stamp, rows_of(snapshot.state, snapshot.log_path)))


def write_tombstone(store_dir: str, log_path: str) -> None:
    """Remove ``log_path``'s attempt from the tables at the next compaction."""
    write_tombstone_key(store_dir, key_of_log(log_path))


def write_tombstone_key(store_dir: str, key: str) -> None:
    _write(store_dir, key, encode(0, None))


def scan(store_dir: str) -> tuple[list[Pending], list[str]]:
    """(every intact pending file, read; the paths of damaged ones)."""
    directory = pending_dir(store_dir)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return [], []
    found: list[Pending] = []
    damaged: list[str] = []
    for name in sorted(names):
        if not name.endswith(SUFFIX):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("analytics rows %s unreadable: %s", path, exc)
            damaged.append(path)
            continue
        try:
            stamp, rows = decode(data)
        except ValueError as exc:
            log.warning("analytics rows %s damaged (%s); rebuilt from the snapshot", path, exc)
            damaged.append(path)
            continue
        found.append(Pending(name.removesuffix(SUFFIX), path, (st.st_ino, st.st_size, st.st_mtime_ns), stamp, rows))
    return found, damaged


def remove_if_unchanged(item: Pending) -> None:
    """Remove a pending file once compacted, unless it was rewritten since it was read."""
    try:
        st = os.stat(item.path)
    except FileNotFoundError:
        return
    if (st.st_ino, st.st_size, st.st_mtime_ns) == item.identity:
        unlink_quietly(item.path)

