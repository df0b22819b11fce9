"""Rows of one attempt waiting to be compacted into the table files: cheap to write at index time.

The indexer writes one file per attempt right after its snapshot (:func:`write_rows`): the
rows of every table (:func:`~sparkhist.analytics.tables.rows_of`) as one JSON object of
columns (:func:`payload`), which DuckDB parses into typed lists without a Python object per
value (:mod:`sparkhist.analytics.compaction`), after a magic line, the xxh64 of the rest,
and the snapshot's stamp on a line of its own; written to a temporary file renamed over the
attempt's previous one. No fsync: the rows are derived data, and whatever a crash loses or
tears (the checksum tells) the writer's repair makes again from the snapshot. An attempt
whose snapshot is gone gets a *tombstone* (:func:`write_tombstone`: no rows), so compaction
removes its rows from the tables. A file of another format version fails like a damaged
one and is made again from the snapshot too.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import orjson
import xxhash

from sparkhist.analytics.layout import KEY_COLUMN, STAMP_COLUMN, TEMP_SUFFIX, key_of_log, pending_dir
from sparkhist.analytics.tables import TABLES, rows_of
from sparkhist.errors import StoreError
from sparkhist.store.files import unlink_quietly
from sparkhist.store.snapshots import Snapshot

log = logging.getLogger("sparkhist.analytics")

MAGIC = b"sparkhist-rows 2\n"
SUFFIX = ".rows"
_DIGEST = 8
#: The columns of each table a payload holds (the key columns are given once, for every row).
_ROW_COLUMNS = tuple((t.name, t.names[2:]) for t in TABLES)


@dataclass(frozen=True, slots=True)
class Pending:
    key: str
    path: str
    identity: tuple[int, int, int]  # (inode, size, mtime_ns) when read: a rewrite changes it
    stamp: int  # the snapshot's mtime in ns (0 for a tombstone)
    payload: bytes | None  # the rows as :func:`payload` writes them; None: the attempt's rows are to be removed


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


def encode(stamp: int, rows: bytes | None) -> bytes:
    body = b"%d\n" % stamp + (rows if rows is not None else b"")
    return MAGIC + xxhash.xxh64_digest(body) + body


def decode(data: bytes) -> tuple[int, bytes | None]:
    """(stamp, payload or None for a tombstone); ValueError when the bytes are not a whole, intact file."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _DIGEST:
        raise ValueError("not a rows file of this version")
    digest, body = data[len(MAGIC):len(MAGIC) + _DIGEST], data[len(MAGIC) + _DIGEST:]
    if xxhash.xxh64_digest(body) != digest:
        raise ValueError("checksum mismatch")
    stamp, newline, rows = body.partition(b"\n")
    if not newline or not stamp.isdigit():
        raise ValueError("no stamp")
    return int(stamp), rows or None


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
    key, state = key_of_log(snapshot.log_path), snapshot.state
    rows = payload(key, stamp, state.app_id, state.attempt_id, rows_of(state, snapshot.log_path))
    _write(store_dir, key, encode(stamp, rows))


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

