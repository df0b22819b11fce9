"""The catalog: one SQLite database (WAL) holding a checksummed record per event log.

It is the only thing needed to serve the application list after a restart. Every
record is stored with its xxh64 checksum; a record whose checksum does not match is
dropped on load (and counted), so its log is simply indexed again: a damaged row
costs one re-read, never a wrong answer.

One process writes (the scanner's owner); the format version is recorded, and a
store of another version is rebuilt from the logs with a clear log line.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import xxhash

from sparkhist.errors import StoreError
from sparkhist.store.records import LogRecord

log = logging.getLogger("sparkhist.store")

FORMAT_VERSION = 1
CATALOG_FILE = "catalog.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
    path TEXT PRIMARY KEY,
    record BLOB NOT NULL,
    checksum INTEGER NOT NULL
);
"""


def _checksum(blob: bytes) -> int:
    # SQLite integers are signed 64-bit.
    return xxhash.xxh64_intdigest(blob) - (1 << 63)


@dataclass(slots=True)
class LoadResult:
    records: dict[str, LogRecord]
    corrupt: int


class Catalog:
    """Persistent log records, keyed by the log's full path."""

    def __init__(self, store_dir: str, log_dir: str | None, *, read_only: bool = False) -> None:
        """Open (or create) the catalog of ``store_dir`` for the logs of ``log_dir``.

        ``read_only`` opens an existing catalog without writing anything, whatever its
        log directory (for ``apps`` and ``verify``, safe beside a running server).
        """
        self.store_dir = store_dir
        self.path = os.path.join(store_dir, CATALOG_FILE)
        self.read_only = read_only
        self.damage: str | None = None  # why the catalog was found damaged and replaced
        self._lock = threading.RLock()
        # Bumped each time a damaged database is replaced by an empty one: whoever holds
        # the records in memory (the scanner) writes them all again.
        self.generation = 0
        if read_only:
            if not os.path.exists(self.path):
                raise StoreError(f"no catalog in {store_dir}")
            try:
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
                self.meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"cannot open catalog {self.path}: {exc}") from exc
            if self.meta.get("format_version") != str(FORMAT_VERSION):
                raise StoreError(f"catalog {self.path} has format {self.meta.get('format_version')}, this sparkhist reads {FORMAT_VERSION}")
            return
        os.makedirs(store_dir, exist_ok=True)
        self.log_dir = log_dir
        try:
            self._open_writable()
            self._check_version(log_dir)
        except sqlite3.DatabaseError as exc:
            self._replace_damaged(str(exc))
            self._check_version(log_dir)

    def _open_writable(self) -> None:
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self.meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def _replace_damaged(self, reason: str) -> None:
        """Move a damaged database aside and start an empty one: start-up never fails on it.

        The caller rebuilds the records from the snapshots (and the logs).
        """
        try:
            self._db.close()
        except Exception:  # noqa: BLE001 - closing a broken handle may fail too
            pass
        quarantine = os.path.join(self.store_dir, "quarantine")
        os.makedirs(quarantine, exist_ok=True)
        stamp = int(time.time() * 1000)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, os.path.join(quarantine, f"{CATALOG_FILE}{suffix}.{stamp}"))
        log.error("catalog %s is damaged (%s); moved to quarantine/, rebuilding it", self.path, reason,
                  extra={"event": "quarantine"})
        self.damage = reason
        self.generation += 1
        self._open_writable()

    def promote(self, log_dir: str) -> None:
        """A standby became the writer: reopen the catalog for writing."""
        if not self.read_only:
            return
        with self._lock:
            self._db.close()
            self.read_only = False
            try:
                self._open_writable()
            except sqlite3.DatabaseError as exc:
                self._replace_damaged(str(exc))
        self._check_version(log_dir)

    def _check_version(self, log_dir: str | None) -> None:
        meta = self.meta
        version = meta.get("format_version")
        stored_dir = meta.get("log_dir")
        if log_dir is None:
            log_dir = stored_dir or ""
        if version == str(FORMAT_VERSION) and stored_dir == log_dir:
            return
        if version is not None:
            why = f"format version {version} != {FORMAT_VERSION}" if version != str(FORMAT_VERSION) else f"log directory changed from {stored_dir} to {log_dir}"
            log.warning("catalog %s: %s; rebuilding it from the logs", self.path, why)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM logs")
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('log_dir', ?)", (log_dir,))
            self._db.execute("COMMIT")

    def load(self, *, repair: bool = True) -> LoadResult:
        """Every record whose checksum matches; damaged rows are counted (and deleted when repairing)."""
        records: dict[str, LogRecord] = {}
        bad: list[str] = []
        try:
            rows = self._db.execute("SELECT path, record, checksum FROM logs").fetchall()
        except sqlite3.DatabaseError as exc:
            if self.read_only:
                raise StoreError(f"catalog {self.path}: {exc}") from exc
            with self._lock:
                self._replace_damaged(str(exc))
            self._check_version(self.log_dir)
            return LoadResult({}, 0)
        for path, blob, checksum in rows:
            try:
                if _checksum(blob) != checksum:
                    raise ValueError("checksum mismatch")
                record = LogRecord.from_dict(orjson.loads(blob))
                if record.path != path:
                    raise ValueError("path mismatch")
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("catalog record for %s is damaged (%s); the log will be indexed again", path, exc)
                bad.append(path)
                continue
            records[path] = record
        if bad and repair and not self.read_only:
            try:
                self.delete(bad)
            except StoreError as exc:
                log.warning("%s; the damaged rows stay until the next write", exc)
        return LoadResult(records, len(bad))

    def put(self, records: Iterable[LogRecord]) -> None:
        """Write records in one transaction; :class:`StoreError` (e.g. disk full) leaves none written."""
        rows = []
        for record in records:
            blob = orjson.dumps(record.to_dict())
            rows.append((record.path, blob, _checksum(blob)))
        if rows:
            self._transaction("INSERT OR REPLACE INTO logs VALUES (?, ?, ?)", rows)

    def delete(self, paths: Iterable[str]) -> None:
        keys = [(p,) for p in paths]
        if keys:
            self._transaction("DELETE FROM logs WHERE path = ?", keys)

    def _transaction(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(sql, rows)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:  # disk full, locked: transient
                raise StoreError(f"catalog {self.path}: {exc}") from exc
            except sqlite3.DatabaseError as exc:  # malformed, not a database: the file is damaged
                if self.read_only:
                    raise StoreError(f"catalog {self.path}: {exc}") from exc
                self._replace_damaged(str(exc))
                self._check_version(self.log_dir)
                raise StoreError(f"catalog {self.path} was damaged ({exc}) and replaced; its records are written again") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
