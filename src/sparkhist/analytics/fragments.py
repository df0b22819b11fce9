"""The tables on disk: one Parquet fragment per table per attempt, beside its snapshot.

Layout inside the store::

    analytics/<key>/<table>.<xxh64 of the file>.parquet

``<key>`` is the snapshot's name without ``.snap`` (the xxh64 of the log path): a
fragment belongs to one snapshot and is rewritten each time that snapshot is, right
after it (:func:`write`), from the state just saved. Each file is written as the store
writes everything: to a temporary file, fsynced, renamed, the directory fsynced; its
checksum is in its name, so a reader checks the bytes it is about to query
(:func:`fragments`) and leaves out a file that fails, and the writer rebuilds it from the
snapshot (:func:`repair`). ``kill -9`` at any instant leaves, per table and attempt, the
old file, the new one, or both (the old is removed after the rename): readers take the
newest, :func:`repair` removes the other; temporary files are deleted.

A fragment older than its snapshot (the process died between the two writes) or missing
is rebuilt by :func:`repair`; a fragment whose snapshot is gone (the log was removed or
the snapshot evicted) is dropped with it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import xxhash

from sparkhist.analytics.tables import TABLES, Table, rows_of
from sparkhist.errors import StoreError
from sparkhist.store.files import fsync_dir, unlink_quietly
from sparkhist.store.snapshots import Snapshot, SnapshotStore, snapshot_name

log = logging.getLogger("sparkhist.analytics")

ANALYTICS_DIR = "analytics"
SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"

_engine: Any = None  # one in-memory DuckDB per process, made on first use
_engine_lock = threading.Lock()


def analytics_dir(store_dir: str) -> str:
    return os.path.join(store_dir, ANALYTICS_DIR)


def key_of(snapshot_file: str) -> str:
    return os.path.basename(snapshot_file).removesuffix(".snap")


def _connection() -> Any:
    global _engine
    if _engine is None:
        import duckdb  # here: a process that never writes a table never loads the engine

        _engine = duckdb.connect(":memory:", config={"threads": 1})
    return _engine


def _copy_sql(table: Table, target: str) -> str:
    cols = ", ".join(f"unnest(${i}::{kind}[]) AS {name}" for i, (name, kind, _) in enumerate(table.columns, start=1))
    return f"COPY (SELECT {cols}) TO '{target}' (FORMAT parquet, COMPRESSION snappy)"


def _write_one(directory: str, table: Table, rows: list[tuple[Any, ...]]) -> str:
    """Write one fragment atomically; returns its final name."""
    temp = os.path.join(directory, f"{table.name}.{os.getpid()}.{threading.get_ident()}{TEMP_SUFFIX}")
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in table.columns]
    try:
        with _engine_lock:
            _connection().execute(_copy_sql(table, temp), columns)
        with open(temp, "rb+") as f:
            digest = xxhash.xxh64_hexdigest(f.read())
            os.fsync(f.fileno())
        name = f"{table.name}.{digest}{SUFFIX}"
        os.replace(temp, os.path.join(directory, name))
    except BaseException:
        unlink_quietly(temp)
        raise
    return name


def write(store_dir: str, snapshot: Snapshot) -> None:
    """Every table's fragment for the attempt of ``snapshot`` (just saved), replacing the old ones.

    Raises :class:`StoreError` when a file cannot be written (the snapshot stays; the
    next :func:`repair` writes the fragments).
    """
    key = key_of(snapshot_name(snapshot.log_path))
    directory = os.path.join(analytics_dir(store_dir), key)
    try:
        os.makedirs(directory, exist_ok=True)  # the analytics directory itself exists (tables on)
        tables = rows_of(snapshot.state, snapshot.log_path)
        written = {_write_one(directory, table, tables[table.name]) for table in TABLES}
        fsync_dir(directory)
        for name in os.listdir(directory):
            if name not in written:
                unlink_quietly(os.path.join(directory, name))
    except OSError as exc:
        raise StoreError(f"cannot write the analytics tables of {snapshot.log_path}: {exc}") from exc
    except Exception as exc:  # the engine's own errors (duckdb.Error): same outcome, a later repair
        raise StoreError(f"cannot write the analytics tables of {snapshot.log_path}: {exc}") from exc


def delete(store_dir: str, log_path: str) -> None:
    """Remove the fragments of ``log_path``'s attempt (its snapshot was evicted or deleted)."""
    _remove_tree(os.path.join(analytics_dir(store_dir), key_of(snapshot_name(log_path))))


@dataclass(frozen=True, slots=True)
class Fragment:
    key: str
    table: str
    path: str
    checksum: str
    size: int
    mtime_ns: int


def _scan(store_dir: str) -> Iterator[Fragment]:
    root = analytics_dir(store_dir)
    try:
        keys = os.listdir(root)
    except FileNotFoundError:
        return
    for key in keys:
        directory = os.path.join(root, key)
        try:
            names = os.listdir(directory)
        except (NotADirectoryError, FileNotFoundError):
            continue
        for name in names:
            parts = name.split(".")
            if len(parts) != 3 or "." + parts[2] != SUFFIX:
                continue
            path = os.path.join(directory, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            yield Fragment(key, parts[0], path, parts[1], st.st_size, st.st_mtime_ns)


class Checked:
    """Checksums already verified in this process, by (path, size, mtime): a file is read
    and hashed once, not per query."""

    def __init__(self) -> None:
        self._ok: set[tuple[str, int, int]] = set()
        self._lock = threading.Lock()

    def verify(self, fragment: Fragment) -> bool:
        stamp = (fragment.path, fragment.size, fragment.mtime_ns)
        with self._lock:
            if stamp in self._ok:
                return True
        try:
            with open(fragment.path, "rb") as f:
                good = xxhash.xxh64_hexdigest(f.read()) == fragment.checksum
        except OSError:
            return False
        if good:
            with self._lock:
                self._ok.add(stamp)
        return good


_checked = Checked()


def fragments(store_dir: str, checked: Checked | None = None) -> tuple[dict[str, list[str]], list[Fragment]]:
    """(table name -> the paths of its verified fragments, the damaged ones left out).

    Of two fragments of one table and attempt (a crash between a rename and the removal
    of the old file), the newer is taken.
    """
    checker = checked if checked is not None else _checked
    newest: dict[tuple[str, str], Fragment] = {}
    damaged: list[Fragment] = []
    for fragment in _scan(store_dir):
        if not checker.verify(fragment):
            damaged.append(fragment)
            continue
        slot = (fragment.key, fragment.table)
        other = newest.get(slot)
        if other is None or fragment.mtime_ns > other.mtime_ns:
            newest[slot] = fragment
    out: dict[str, list[str]] = {t.name: [] for t in TABLES}
    for (_, table), fragment in sorted(newest.items()):
        if table in out:
            out[table].append(fragment.path)
    return out, damaged


@dataclass(slots=True)
class Repaired:
    written: int = 0  # attempts whose fragments were (re)written from their snapshot
    dropped: int = 0  # attempts whose snapshot is gone
    damaged: int = 0  # files that failed their checksum
    failed: int = 0  # snapshots that could not be read


def repair(store_dir: str, snapshots: SnapshotStore) -> Repaired:
    """Make the fragments match the snapshots: temporary and damaged files removed,
    missing, stale (older than the snapshot) or damaged fragments rebuilt from the
    snapshot, fragments without a snapshot dropped. For the store's writer only."""
    done = Repaired()
    root = analytics_dir(store_dir)
    os.makedirs(root, exist_ok=True)
    by_key: dict[str, list[Fragment]] = {}
    for fragment in _scan(store_dir):
        by_key.setdefault(fragment.key, []).append(fragment)
    for key in os.listdir(root):
        directory = os.path.join(root, key)
        if os.path.isdir(directory):
            for name in os.listdir(directory):
                if name.endswith(TEMP_SUFFIX):
                    unlink_quietly(os.path.join(directory, name))
    _, damaged = fragments(store_dir)
    bad_keys = {f.key for f in damaged}
    done.damaged = len(damaged)
    for fragment in damaged:
        unlink_quietly(fragment.path)
    names = {key_of(n) for n in snapshots.file_names()}
    for key in set(by_key) - names:
        _remove_tree(os.path.join(root, key))
        done.dropped += 1
    wanted = {t.name for t in TABLES}
    for name in sorted(names):
        held = by_key.get(name, [])
        try:
            snap_mtime = os.stat(os.path.join(snapshots.dir, name + ".snap")).st_mtime_ns
        except FileNotFoundError:
            continue
        tables = {f.table for f in held}
        duplicated = len(held) != len(tables)
        stale = any(f.mtime_ns < snap_mtime for f in held)
        if name not in bad_keys and tables == wanted and not stale and not duplicated:
            continue
        try:
            snapshot = snapshots.read_file(name + ".snap")
            write(store_dir, snapshot)
        except StoreError as exc:
            done.failed += 1
            log.warning("analytics tables of snapshot %s not rebuilt: %s", name, exc)
            continue
        done.written += 1
    if done.written or done.dropped or done.damaged:
        log.info("analytics tables repaired: %d attempts rewritten, %d dropped, %d damaged files",
                 done.written, done.dropped, done.damaged)
    return done


def _remove_tree(directory: str) -> None:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        unlink_quietly(os.path.join(directory, name))
    try:
        os.rmdir(directory)
    except OSError:
        pass
