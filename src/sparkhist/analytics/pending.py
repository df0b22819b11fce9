"""Rows of indexed attempts waiting to be compacted into the table files: cheap to write at index time.

An attempt's rows (:func:`entry_of`: every table's, :func:`~sparkhist.analytics.tables.rows_of`)
are one JSON object of columns (:func:`payload`), which DuckDB parses into typed lists
without a Python object per value (:mod:`sparkhist.analytics.compaction`). Several attempts'
rows go into one *batch* file (:func:`write_batch`, format 3), buffered by the writer
(:mod:`sparkhist.analytics.batch`): a magic line, the xxh64 of the rest, then per attempt a
line ``<key> <stamp> <length>`` and its payload (length ``-1``: a *tombstone*, the attempt's
snapshot is gone and compaction removes its rows). Written as every store file is
(temporary file, fsync, rename, directory fsync). What a crash loses (the rows still
buffered) or tears (the checksum tells) the writer's repair makes again from the snapshots.

Batch files are named ``<time ns>-<pid>-<sequence>-<attempts>.rows``: in the order they were
written (one writer process), so of two entries of the same attempt the later file's wins
(:func:`scan`), unless both are rows and the later ones are of an older snapshot. Format 2
files (one attempt each, ``<key>.rows``, from before the batches) are still read, as older
than every batch; a file of another format fails like a damaged one and its attempts are
made again from the snapshots.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import xxhash

from sparkhist.analytics.layout import KEY_COLUMN, STAMP_COLUMN, TEMP_SUFFIX, key_of_log, pending_dir
from sparkhist.analytics.tables import TABLES, rows_of
from sparkhist.errors import StoreError
from sparkhist.files import unlink_quietly, write_file_atomically
from sparkhist.store.snapshots import Snapshot

log = logging.getLogger("sparkhist.analytics")

MAGIC = b"sparkhist-rows 3\n"
MAGIC_V2 = b"sparkhist-rows 2\n"
SUFFIX = ".rows"
_DIGEST = 8
#: The columns of each table a payload holds (the key columns are given once, for every row).
_ROW_COLUMNS = tuple((t.name, t.names[2:]) for t in TABLES)


@dataclass(frozen=True, slots=True)
class Entry:
    """One attempt's pending rows."""

    key: str
    stamp: int  # the snapshot's mtime in ns (0 for a tombstone)
    payload: bytes | None  # the rows as :func:`payload` writes them; None: the attempt's rows are to be removed


@dataclass(frozen=True, slots=True)
class PendingFile:
    path: str
    identity: tuple[int, int, int]  # (inode, size, mtime_ns) when read: a rewrite changes it
    attempts: int


@dataclass(slots=True)
class Scanned:
    entries: list[Entry]  # the latest entry of each attempt with pending rows
    files: list[PendingFile]  # every intact pending file, read
    damaged: list[str]  # the paths of damaged ones


def payload(key: str, stamp: int, app_id: str | None, attempt_id: str | None,
            rows: dict[str, list[tuple[Any, ...]]]) -> bytes:
    """One attempt's rows as JSON: ``{"_key", "_snap", "app_id", "attempt_id", <table>: {<column>: [values]}}``,
    every table and column present (empty lists for a table without rows)."""
    body: dict[str, Any] = {KEY_COLUMN: key, STAMP_COLUMN: stamp, "app_id": app_id, "attempt_id": attempt_id}
    for name, columns in _ROW_COLUMNS:
        table = rows[name]
        body[name] = dict(zip(columns, zip(*table, strict=True), strict=True)) if table else dict.fromkeys(columns, ())
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError as exc:  # an integer beyond 64 bits, a string that is not Unicode
        raise StoreError(f"cannot encode the analytics rows of attempt {key}: {exc}") from exc


def entry_of(snapshot: Snapshot, stamp: int) -> Entry:
    """The rows of ``snapshot``'s attempt (saved, its file's mtime ``stamp``)."""
    key, state = key_of_log(snapshot.log_path), snapshot.state
    return Entry(key, stamp, payload(key, stamp, state.app_id, state.attempt_id, rows_of(state, snapshot.log_path)))


def tombstone(key: str) -> Entry:
    """Remove attempt ``key``'s rows from the tables at the next compaction."""
    return Entry(key, 0, None)


def tombstone_of_log(log_path: str) -> Entry:
    return tombstone(key_of_log(log_path))


def encode(entries: Iterable[Entry]) -> list[bytes]:
    """A batch file's bytes, as parts (written one after the other)."""
    parts: list[bytes] = []
    for e in entries:
        parts.append(b"%s %d %d\n" % (e.key.encode(), e.stamp, -1 if e.payload is None else len(e.payload)))
        if e.payload is not None:
            parts.append(e.payload)
    digest = xxhash.xxh64()
    for part in parts:
        digest.update(part)
    return [MAGIC, digest.digest(), *parts]


def decode(data: bytes, name: str = "") -> list[Entry]:
    """The entries of a pending file's bytes (format 3, or format 2 named ``<key>.rows``),
    in the order written; ValueError when the bytes are not a whole, intact file."""
    if data.startswith(MAGIC_V2):
        return [_decode_v2(data, name.removesuffix(SUFFIX))]
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _DIGEST:
        raise ValueError("not a rows file of this version")
    start = len(MAGIC) + _DIGEST
    if xxhash.xxh64_digest(memoryview(data)[start:]) != data[len(MAGIC):start]:
        raise ValueError("checksum mismatch")
    out: list[Entry] = []
    at = start
    while at < len(data):
        end = data.find(b"\n", at)
        fields = data[at:end].split(b" ") if end >= 0 else []
        if len(fields) != 3:
            raise ValueError("bad entry header")
        key, stamp, length = fields[0].decode(), int(fields[1]), int(fields[2])
        at = end + 1
        if length < 0:
            out.append(Entry(key, stamp, None))
            continue
        if at + length > len(data):
            raise ValueError("entry cut short")
        out.append(Entry(key, stamp, data[at:at + length]))
        at += length
    return out


def _decode_v2(data: bytes, key: str) -> Entry:
    if len(data) < len(MAGIC_V2) + _DIGEST:
        raise ValueError("cut short")
    digest, body = data[len(MAGIC_V2):len(MAGIC_V2) + _DIGEST], data[len(MAGIC_V2) + _DIGEST:]
    if xxhash.xxh64_digest(body) != digest:
        raise ValueError("checksum mismatch")
    stamp, newline, rows = body.partition(b"\n")
    if not newline or not stamp.isdigit():
        raise ValueError("no stamp")
    return Entry(key, int(stamp), rows or None)


_sequence = itertools.count()
_last_ns = 0
_naming = threading.Lock()


def _batch_name(attempts: int) -> str:
    """A name after every earlier batch's of this process (the clock never goes back in them)."""
    global _last_ns
    with _naming:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        return f"{_last_ns:020d}-{os.getpid()}-{next(_sequence)}-{attempts}{SUFFIX}"


def write_batch(store_dir: str, entries: list[Entry]) -> str:
    """``entries`` (one attempt each, the later of two of an attempt wins) as one pending file; its path.
    Raises :class:`StoreError` when it cannot be written."""
    directory = pending_dir(store_dir)
    name = _batch_name(len(entries))
    path = os.path.join(directory, name)
    temp = path.removesuffix(SUFFIX) + TEMP_SUFFIX
    parts = encode(entries)
    try:
        try:
            write_file_atomically(path, parts, temp)
        except FileNotFoundError:  # the directory is made on the first miss only
            os.makedirs(directory, exist_ok=True)
            write_file_atomically(path, parts, temp)
    except OSError as exc:
        unlink_quietly(temp)
        raise StoreError(f"cannot write the analytics rows of {len(entries)} attempts: {exc}") from exc
    return path


def _order(name: str) -> tuple[int, str]:
    """Format 2 files (named by key) first, then batches in the order written."""
    head = name.split("-", 1)[0]
    return (1, name) if len(head) == 20 and head.isdigit() else (0, name)


def attempts_in(name: str) -> int:
    """Attempts a pending file holds, from its name."""
    if _order(name)[0] == 0:
        return 1
    count = name.removesuffix(SUFFIX).rsplit("-", 1)[-1]
    return int(count) if count.isdigit() else 1


def scan(store_dir: str) -> Scanned:
    """Every intact pending file, read, and the latest entry of each attempt in them."""
    directory = pending_dir(store_dir)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return Scanned([], [], [])
    latest: dict[str, Entry] = {}
    files: list[PendingFile] = []
    damaged: list[str] = []
    for name in sorted((n for n in names if n.endswith(SUFFIX)), key=_order):
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
            entries = decode(data, name)
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("analytics rows %s damaged (%s); rebuilt from the snapshots", path, exc)
            damaged.append(path)
            continue
        for entry in entries:
            held = latest.pop(entry.key, None)  # re-inserted: the dict keeps the order of the latest entries
            if held is not None and held.payload is not None and entry.payload is not None and entry.stamp < held.stamp:
                entry = held  # rows of an older snapshot written later (a repair racing a re-index)
            latest[entry.key] = entry
        files.append(PendingFile(path, (st.st_ino, st.st_size, st.st_mtime_ns), len(entries)))
    return Scanned(list(latest.values()), files, damaged)


def remove_if_unchanged(file: PendingFile) -> None:
    """Remove a pending file once compacted, unless it was rewritten since it was read."""
    try:
        st = os.stat(file.path)
    except FileNotFoundError:
        return
    if (st.st_ino, st.st_size, st.st_mtime_ns) == file.identity:
        unlink_quietly(file.path)
