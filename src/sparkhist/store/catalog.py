"""The catalog: one SQLite database (WAL) holding a checksummed record per event log.

It is the only thing needed to serve the application list after a restart. Each row
holds the log's record (what a scan compares the log with) and, for a listed log, its
*listing row* (``store.applications.listing_row``: the filter and order fields and
the list element already rendered), each with its own xxh64 checksum. A restart
reads only the listing rows (:meth:`Catalog.load_listing`) to answer the list; the
records are decoded after (:meth:`Catalog.load`). A row whose checksums do not both
match is dropped on load (and counted), so its log is simply indexed again: a damaged
row costs one re-read, never a wrong answer.

Every change to the listing rows bumps a counter kept in ``meta`` (in the same
transaction), and each database has a random id (a replaced one gets a new id): the
pair names the listing's content, which the pre-rendered list file
(:mod:`sparkhist.store.list_file`) records to tell whether it is still current.

Every transaction that writes records also takes the next *change sequence* number
(``meta.change_seq``): each record row carries the number of the transaction that
last wrote it, and each deleted log leaves a tombstone with its number (``removed``;
tombstones older than ``TOMBSTONE_SEQS`` transactions are pruned, which moves
``meta.removed_floor``). A reader that saw everything up to number ``n`` reads only
the rows above it (:meth:`Catalog.changes_since`): what a serving process follows.
What is not recorded row by row (a rebuild or migration empties or rewrites the
catalog, a damaged database is replaced) gives the catalog a new ``change_epoch``,
and a reader that sees another epoch or database id, a pruned gap or a replaced file
reads the whole catalog again.

One process writes (the scanner's owner); the format version is recorded. A store of
format 1 (records only) gets its listing rows added in place, one of format 2 the
indexed ``app_id`` key of its rows (a request for one application before the whole
listing is loaded finds its rows by it), one of format 3 its change sequence (column,
tombstones, counter); a store of another older version is rebuilt
from the logs; both with a clear log line. A store of a newer format (a newer sparkhist's)
is refused (:class:`StoreTooNew`, exit status 2) and left as it is.
"""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
import struct
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import xxhash

import sparkhist
from sparkhist import __version__, releases
from sparkhist.errors import ConfigError, StoreError
from sparkhist.store.applications import AttemptEntry, ListingRow, listing_row
from sparkhist.store.records import LogRecord

if TYPE_CHECKING:
    from sparkhist.config import LogSource, LogSources
    from sparkhist.events.listing import AttemptListing

log = logging.getLogger("sparkhist.store")

FORMAT_VERSION = 4
#: Versions whose rows are converted in place rather than rebuilt from the logs.
_MIGRATABLE = {"1", "2", "3"}
#: Tombstones of deleted logs are kept for this many transactions (a reader further
#: behind reads the whole catalog again).
TOMBSTONE_SEQS = 10_000
CATALOG_FILE = "catalog.sqlite"


class StoreTooNew(ConfigError):
    """The store was written by a newer sparkhist (a newer catalog format): refused, never
    rebuilt or downgraded under the newer release. A configuration error: exit status 2."""


def _refuse_newer(path: str, version: str | None) -> None:
    if version is not None and version.isdigit() and int(version) > FORMAT_VERSION:
        raise StoreTooNew(f"catalog {path} has format {version}, written by a newer sparkhist; sparkhist {__version__} "
                          f"reads formats up to {FORMAT_VERSION} and leaves it as it is: run the newer sparkhist "
                          f"on this store, or give this one another --store")

# ``listing`` has one row per listed log, written in the same transaction as its
# record, and only when it changed: a scan that only moves a log's read position
# rewrites the (small) record, not the rendered listing.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
    path TEXT PRIMARY KEY,
    record BLOB NOT NULL,
    checksum INTEGER NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS removed (path TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS listing (
    path TEXT PRIMARY KEY,
    head BLOB NOT NULL,
    entry BLOB NOT NULL,
    checksum INTEGER NOT NULL,
    app_id TEXT
);
"""
# ``app_id`` (format 3) is a lookup key only, outside the checksum: a row found by it is
# verified and its decoded id compared, so a damaged key costs a miss, never a wrong row.
_APP_INDEX = "CREATE INDEX IF NOT EXISTS listing_app ON listing(app_id)"
# ``seq`` (format 4): the change sequence number of the transaction that last wrote the row.
_SEQ_INDEXES = ("CREATE INDEX IF NOT EXISTS logs_seq ON logs(seq)",
                "CREATE INDEX IF NOT EXISTS removed_seq ON removed(seq)")
_PUT_LISTING = "INSERT OR REPLACE INTO listing (path, head, entry, checksum, app_id) VALUES (?, ?, ?, ?, ?)"
#: The number of the transaction running (the counter is bumped as its last statement).
_NEXT_SEQ = "(COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'change_seq'), 0) + 1)"
_PUT_LOG = f"INSERT OR REPLACE INTO logs (path, record, checksum, seq) VALUES (?, ?, ?, {_NEXT_SEQ})"
_UNREMOVE = "DELETE FROM removed WHERE path = ?"
_TOMBSTONE = f"INSERT OR REPLACE INTO removed (path, seq) VALUES (?, {_NEXT_SEQ})"
_BUMP_SEQ = f"INSERT OR REPLACE INTO meta VALUES ('change_seq', CAST({_NEXT_SEQ} AS TEXT))"
_PRUNE = (f"DELETE FROM removed WHERE seq <= {_NEXT_SEQ} - {TOMBSTONE_SEQS}",
          f"INSERT OR REPLACE INTO meta VALUES ('removed_floor', CAST(MAX(0, {_NEXT_SEQ} - {TOMBSTONE_SEQS}) AS TEXT))")
_NEW_EPOCH = "INSERT OR REPLACE INTO meta VALUES ('change_epoch', ?)"
_SIGNED = 1 << 63
_xxh64 = xxhash.xxh64_intdigest
#: What a damaged listing row raises when verified and decoded (TypeError: a NULL where bytes belong).
_ROW_DAMAGE = (ValueError, TypeError, struct.error)


def _listing_entry(head: bytes, body: bytes, checksum: int, listing: AttemptListing | None = None) -> AttemptEntry:
    """A listing row verified (both parts under one xxh64) and decoded; raises one of ``_ROW_DAMAGE``.
    ``listing``: the attempt's listing when the caller has it decoded already (from its record)."""
    if _listing_checksum(head, body) != checksum:
        raise ValueError("listing checksum mismatch")
    return AttemptEntry(head, body, listing)


def _wal_bytes(path: str) -> int:
    """Size of the catalog's write-ahead log (0: none)."""
    try:
        return os.path.getsize(path + "-wal")
    except OSError:
        return 0


def _checksum(blob: bytes) -> int:
    # SQLite integers are signed 64-bit.
    return _xxh64(blob) - _SIGNED


def _listing_checksum(head: bytes, entry: bytes) -> int:
    """One xxh64 over both parts of a listing row (the head's digest seeds the entry's)."""
    return _xxh64(entry, _xxh64(head)) - _SIGNED


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Bulk loads allocate ~10 objects per row: collecting meanwhile is quadratic-ish."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(slots=True)
class LoadResult:
    records: dict[str, LogRecord]
    corrupt: int
    entries: list[AttemptEntry] | None = None  # listing entries, when asked for


@dataclass(slots=True)
class ListingResult:
    entries: list[AttemptEntry]
    corrupt: int


@dataclass(frozen=True, slots=True)
class ChangeMark:
    """Where a reader of the catalog is: which database and epoch, and the last change read."""

    catalog_id: str | None
    epoch: str | None
    seq: int


@dataclass(slots=True)
class CatalogChanges:
    """What changed since a :class:`ChangeMark` (:meth:`Catalog.changes_since`).

    ``full``: the change could not be read as a delta (first read, another database or
    epoch, a pruned gap): ``records`` is then every record, and what a reader holds
    beyond them is gone. Otherwise ``records`` are the logs written since the mark and
    ``removed`` the logs deleted since (a changed row found damaged counts as removed).
    """

    mark: ChangeMark
    full: bool
    records: dict[str, LogRecord]
    removed: list[str]
    #: The stored listing rows of the listed ones among ``records``, by path: what an index
    #: takes without rendering them again (rendered for the catalog's ``log_source``).
    entries: dict[str, AttemptEntry]


class Catalog:
    """Persistent log records, keyed by the log's full path."""

    def __init__(self, store_dir: str, log_dir: str | None, *, read_only: bool = False,
                 log_source: LogSource | LogSources | None = None) -> None:
        """Open (or create) the catalog of ``store_dir`` for the logs of ``log_dir``.

        ``read_only`` opens an existing catalog without writing anything, whatever its
        log directory (for ``apps`` and ``verify``, safe beside a running server).
        ``log_source``: the log directory as configured, which the listing rows show
        (``logSourceName``, ``logSourceFullPath``).
        """
        self.store_dir = store_dir
        self.log_source = log_source
        self.path = os.path.join(store_dir, CATALOG_FILE)
        self.read_only = read_only
        self.damage: str | None = None  # why the catalog was found damaged and replaced
        self._lock = threading.RLock()
        self._listed: dict[str, int] = {}  # listing checksums known to be stored, by path
        # Bumped each time a damaged database is replaced by an empty one: whoever holds
        # the records in memory (the scanner) writes them all again.
        self.generation = 0
        #: The listing's identity: this database's id and its count of listing changes.
        self.catalog_id: str | None = None
        self.listing_counter = 0
        self._inode: int | None = None  # of the file a read-only connection reads
        if read_only:
            if not os.path.exists(self.path):
                raise StoreError(f"no catalog in {store_dir}")
            try:
                self._inode = self._file_inode()
                self._db, self.meta = self._open_read_only()
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"cannot open catalog {self.path}: {exc}") from exc
            _refuse_newer(self.path, self.meta.get("format_version"))
            if self.meta.get("format_version") != str(FORMAT_VERSION):
                raise StoreError(f"catalog {self.path} has format {self.meta.get('format_version')}, "
                                 f"this sparkhist reads {FORMAT_VERSION}")
            self._read_identity()
            return
        os.makedirs(store_dir, exist_ok=True)
        self.log_dir = log_dir
        try:
            self._open_writable()
            self._check_version(log_dir)
        except sqlite3.DatabaseError as exc:
            self._replace_damaged(str(exc))
            self._check_version(log_dir)

    def _open_read_only(self) -> tuple[sqlite3.Connection, dict[str, str]]:
        """The catalog opened for reading only, and its ``meta``, wherever the store lies.

        ``mode=ro`` reads a live WAL database beside its writer, but it needs the ``-wal``
        and ``-shm`` files, creating them when absent: in a directory this process cannot
        write (a read-only mount, a copy of a stopped server's store), a catalog closed
        cleanly has neither, and the database file alone is the whole catalog, read with
        ``immutable=1``. A ``-wal`` holding transactions there (the writer was killed) is
        read only with its ``-shm``; without it, the error stands rather than an older catalog.
        """
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.path))
        try:
            return self._connect_for_reading(uri + "?mode=ro")
        except sqlite3.OperationalError:
            if os.access(self.store_dir, os.W_OK):
                raise
            if _wal_bytes(self.path) > 0:
                raise sqlite3.OperationalError(
                    "its write-ahead log holds transactions, which cannot be read in a read-only directory "
                    "without its -shm file (open the store once where it is writable)") from None
        log.debug("catalog %s: directory not writable and no write-ahead log; read as immutable", self.path)
        return self._connect_for_reading(uri + "?immutable=1")

    @staticmethod
    def _connect_for_reading(uri: str) -> tuple[sqlite3.Connection, dict[str, str]]:
        db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        try:
            return db, dict(db.execute("SELECT key, value FROM meta").fetchall())
        except BaseException:
            db.close()
            raise

    def _open_writable(self) -> None:
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._listed = {}  # listing checksums known to be stored, by path
        self.meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if "catalog_id" not in self.meta:  # a new database, or one from before the list file
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('catalog_id', ?)", (uuid.uuid4().hex,))
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('listing_counter', '0')")
                self._db.execute(_NEW_EPOCH, (uuid.uuid4().hex,))
                self._db.execute("COMMIT")
                self.meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            except sqlite3.OperationalError as exc:  # disk full, locked: no id, so no list file until next open
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                log.warning("catalog %s: could not record its id (%s); no stored application list", self.path, exc)
        self._read_identity()

    def _read_identity(self) -> None:
        self.catalog_id = self.meta.get("catalog_id")
        try:
            self.listing_counter = int(self.meta.get("listing_counter", "0"))
        except ValueError:  # damaged: no list file can match it
            self.catalog_id, self.listing_counter = None, 0

    def _bump_sql(self) -> tuple[str, tuple[object, ...]]:
        """The statement recording one more listing change (run inside the change's transaction)."""
        return "INSERT OR REPLACE INTO meta VALUES ('listing_counter', ?)", (str(self.listing_counter + 1),)

    def _bumped(self) -> None:
        self.listing_counter += 1
        self.meta["listing_counter"] = str(self.listing_counter)

    def listing_state(self) -> tuple[str | None, int, dict[str, int]]:
        """``(catalog id, listing counter, listing checksum by path)``, consistent with each other."""
        with self._lock:
            return self.catalog_id, self.listing_counter, dict(self._listed)

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
        self._bring_to_format(log_dir)
        self._db.execute(_APP_INDEX)
        for sql in _SEQ_INDEXES:
            self._db.execute(sql)

    def _bring_to_format(self, log_dir: str | None) -> None:
        """Kept, migrated in place or emptied for a rebuild: this format, this log directory."""
        meta = self.meta
        version = meta.get("format_version")
        stored_dir = meta.get("log_dir")
        if log_dir is None:
            log_dir = stored_dir or ""
        variant = releases.parse_variant()
        stored_variant = meta.get("state_variant")
        if version == str(FORMAT_VERSION) and stored_dir == log_dir and (stored_variant == variant or self.read_only):
            if meta.get("listing_renders") != self._renders() and not self.read_only:
                self._migrate(version, "its listing rows were rendered for another release or log directory name")
            return
        _refuse_newer(self.path, version)
        if "app_id" not in {row[1] for row in self._db.execute("PRAGMA table_info(listing)")}:
            self._db.execute("ALTER TABLE listing ADD COLUMN app_id TEXT")  # a table from before format 3
        if "seq" not in {row[1] for row in self._db.execute("PRAGMA table_info(logs)")}:
            self._db.execute("ALTER TABLE logs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")  # before format 4
        if version in _MIGRATABLE and stored_dir == log_dir and stored_variant == variant and not self.read_only:
            self._migrate(version, f"format version {version} != {FORMAT_VERSION}")
            return
        if version is not None:
            why = (f"format version {version} != {FORMAT_VERSION}" if version != str(FORMAT_VERSION)
                   else f"log directory changed from {stored_dir} to {log_dir}" if stored_dir != log_dir
                   else f"its states were read as {stored_variant or 'legacy-push-read-metrics'}, "
                        f"answering as {sparkhist.SPARK_VERSION} reads them as {variant}")
            log.warning("catalog %s: %s; rebuilding it from the logs", self.path, why)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM logs")
            self._db.execute("DELETE FROM listing")
            self._db.execute("DELETE FROM removed")
            self._db.execute(_NEW_EPOCH, (uuid.uuid4().hex,))
            self._listed.clear()
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('log_dir', ?)", (log_dir,))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('state_variant', ?)", (variant,))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('listing_renders', ?)", (self._renders(),))
            self._db.execute(*self._bump_sql())
            self._db.execute("COMMIT")
            self._bumped()
        meta.update(format_version=str(FORMAT_VERSION), log_dir=log_dir, state_variant=variant,
                    listing_renders=self._renders())

    def _renders(self) -> str:
        """What the listing rows' rendering depends on beyond the records: the release answered
        as and the log directory's name and path (kept in ``meta``; a change re-renders them)."""
        source = list(self.log_source) if self.log_source is not None else None
        return orjson.dumps({"release": sparkhist.SPARK_VERSION, "source": source}).decode()

    def _migrate(self, version: str, why: str) -> None:
        """Render every listing row again from the records, in place: format 1 (records only)
        gets its listing rows, format 2 the ``app_id`` key of each, rows rendered for another
        release or log directory name their new fields; damaged records are dropped."""
        t0 = time.monotonic()
        with self._lock:
            rows = self._db.execute("SELECT path, record, checksum FROM logs").fetchall()
            listing: list[tuple[object, ...]] = []
            bad: list[tuple[str]] = []
            for path, blob, checksum in rows:
                try:
                    record = _decode_record(path, blob, checksum)
                    row = listing_row(record, self.log_source)
                except (ValueError, TypeError, KeyError) as exc:
                    log.warning("catalog record for %s is damaged (%s); the log will be indexed again", path, exc)
                    bad.append((path,))
                    continue
                if row is not None:
                    listing.append((path, *row, _listing_checksum(*row), record.listing.app_id))
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM listing")
                self._listed.clear()
                self._db.executemany(_PUT_LISTING, listing)
                self._db.executemany("DELETE FROM logs WHERE path = ?", bad)
                self._db.execute(_NEW_EPOCH, (uuid.uuid4().hex,))
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('state_variant', ?)", (releases.parse_variant(),))
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('listing_renders', ?)", (self._renders(),))
                self._db.execute(*self._bump_sql())
                self._db.execute("COMMIT")
                self._bumped()
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        self.meta.update(format_version=str(FORMAT_VERSION), state_variant=releases.parse_variant(),
                         listing_renders=self._renders())
        log.warning("catalog %s: %s; migrated in place: listing rows written for %d of "
                    "its %d records (%d damaged ones dropped) in %.2fs", self.path, why,
                    len(listing), len(rows), len(bad), time.monotonic() - t0)

    def _fetch(self, sql: str) -> list[Any] | None:
        """All rows of a query; None when the database is damaged (then replaced, when writable)."""
        try:
            return self._db.execute(sql).fetchall()
        except sqlite3.DatabaseError as exc:
            if self.read_only:
                raise StoreError(f"catalog {self.path}: {exc}") from exc
            with self._lock:
                self._replace_damaged(str(exc))
            self._check_version(self.log_dir)
            return None

    def load_listing(self, *, repair: bool = True) -> ListingResult:
        """The listed logs' entries, from their listing rows only (no record is decoded).

        Every row's checksum is verified; damaged rows are counted (and, with their
        records, deleted when repairing) like in :meth:`load`.
        """
        listed = self._listed
        with _gc_paused():
            rows = self._fetch(  # as BLOB whatever a damaged row's type says: the checksum judges it
                "SELECT rowid, CAST(head AS BLOB), CAST(entry AS BLOB), checksum FROM listing")
            if rows is None:
                return ListingResult([], 0)
            entries: list[AttemptEntry] = []
            append = entries.append
            bad: list[int] = []
            for rowid, head, body, checksum in rows:
                try:
                    entry = _listing_entry(head, body, checksum)
                except _ROW_DAMAGE:
                    bad.append(rowid)
                    continue
                append(entry)
                listed[entry.log_path] = checksum
        if bad:
            log.warning("%d catalog listing rows are damaged; their logs will be indexed again", len(bad))
            if repair and not self.read_only:
                try:
                    self._transaction([f"INSERT OR REPLACE INTO removed (path, seq) SELECT path, {_NEXT_SEQ} FROM listing "
                                       "WHERE rowid = ?",
                                       "DELETE FROM logs WHERE path IN (SELECT path FROM listing WHERE rowid = ?)",
                                       "DELETE FROM listing WHERE rowid = ?"], [(r,) for r in bad], bump=True)
                except StoreError as exc:
                    log.warning("%s; the damaged rows stay until the next write", exc)
        return ListingResult(entries, len(bad))

    def listed_attempts(self, app_id: str) -> list[AttemptEntry]:
        """The listing rows of one application, without loading the others (verified, damaged ones skipped).

        For requests that come before :meth:`load_listing` filled the index. Found by
        the indexed ``app_id`` key, then verified and decoded like in :meth:`load_listing`
        (a row whose key lies is skipped). It reads through a connection of its own
        (read-only), so it never waits for the listing load that runs on the main one.
        """
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"catalog {self.path}: {exc}") from exc
        try:
            rows = db.execute("SELECT CAST(head AS BLOB), CAST(entry AS BLOB), checksum FROM listing "
                              "WHERE app_id = ?", (app_id,)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"catalog {self.path}: {exc}") from exc
        finally:
            db.close()
        found = []
        for head, body, checksum in rows:
            try:
                entry = _listing_entry(head, body, checksum)
            except _ROW_DAMAGE:
                continue  # damaged: the listing load counts and repairs it
            if entry.app_id == app_id:
                found.append(entry)
        return found

    def load(self, *, repair: bool = True, entries: bool = False) -> LoadResult:
        """Every record whose checksums match; damaged rows are counted (and deleted when repairing).

        A listed log's record comes with its listing row, and both must be intact and
        agree. ``entries`` also returns the listed logs' entries (from the same rows).
        """
        records: dict[str, LogRecord] = {}
        listed: list[AttemptEntry] = []
        bad: list[str] = []
        with _gc_paused():
            rows = self._fetch("SELECT path, record, checksum FROM logs")
            listing_rows = (self._fetch("SELECT path, CAST(head AS BLOB), CAST(entry AS BLOB), checksum FROM listing")
                            if rows is not None else None)
            if rows is None or listing_rows is None:
                return LoadResult({}, 0, [] if entries else None)
            by_path = {path: (head, body, checksum) for path, head, body, checksum in listing_rows}
            for path, blob, checksum in rows:
                try:
                    row = by_path.pop(path, None)
                    record, entry = _decode_pair(path, blob, checksum, row)
                    if entry is not None and row is not None:
                        self._listed[path] = row[2]
                        if entries:
                            listed.append(entry)
                except (ValueError, TypeError, KeyError, struct.error) as exc:
                    log.warning("catalog record for %s is damaged (%s); the log will be indexed again", path, exc)
                    bad.append(path)
                    continue
                records[path] = record
            orphans = list(by_path)  # listing rows without a record: left by damage
        if (bad or orphans) and repair and not self.read_only:
            try:
                self.delete(bad + orphans)
            except StoreError as exc:
                log.warning("%s; the damaged rows stay until the next write", exc)
        return LoadResult(records, len(bad), listed if entries else None)

    def put(self, records: Iterable[LogRecord], rendered: Mapping[str, ListingRow] | None = None,
            rendered_for: LogSource | LogSources | None = None) -> None:
        """Write records in one transaction; :class:`StoreError` (e.g. disk full) leaves none written.

        ``rendered``: listing rows the caller already has (the index's), by path, each the row of the
        last record given for its path, rendered for the log source ``rendered_for``; taken when that
        is this catalog's ``log_source``, and the rows of other records rendered here.
        """
        rows = []
        listing = []
        gone = []
        known = self._listed
        source = self.log_source
        if not rendered or rendered_for != source:
            rendered = {}
        for record in records:
            blob = orjson.dumps(record.to_dict())
            rows.append((record.path, blob, _checksum(blob)))
            row = rendered.get(record.path)
            if row is None:
                row = listing_row(record, source)
            if row is None:
                if record.path in known:
                    gone.append((record.path,))
                continue
            checksum = _listing_checksum(*row)
            if known.get(record.path) != checksum:
                listing.append((record.path, *row, checksum, record.listing.app_id))
        if not rows:
            return
        with self._lock:  # the counter and the checksums known change together
            self._transaction([_PUT_LOG, _PUT_LISTING, "DELETE FROM listing WHERE path = ?", _UNREMOVE],
                              rows, listing, gone, [(row[0],) for row in rows], bump=bool(listing or gone))
            for path, _, _, checksum, _ in listing:
                known[path] = checksum
            for (path,) in gone:
                known.pop(path, None)

    def delete(self, paths: Iterable[str]) -> None:
        keys = [(p,) for p in paths]
        if keys:
            with self._lock:
                self._transaction(["DELETE FROM logs WHERE path = ?", "DELETE FROM listing WHERE path = ?", _TOMBSTONE],
                                  keys, bump=True, prune=True)
                for (path,) in keys:
                    self._listed.pop(path, None)

    def _transaction(self, sqls: list[str], *batches: Sequence[tuple[object, ...]], bump: bool = False,
                     prune: bool = False) -> None:
        """Each statement of ``sqls`` run over its batch of rows (the first batch when only one is given),
        as change number ``change_seq + 1``.

        ``bump``: the statements change the listing rows (the listing counter goes up with them).
        ``prune``: tombstones older than ``TOMBSTONE_SEQS`` changes are dropped.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for i, sql in enumerate(sqls):
                        batch = batches[i] if i < len(batches) else batches[0]
                        if batch:
                            self._db.executemany(sql, batch)
                    if prune:
                        for sql in _PRUNE:
                            self._db.execute(sql)
                    if bump:
                        self._db.execute(*self._bump_sql())
                    self._db.execute(_BUMP_SEQ)
                    self._db.execute("COMMIT")
                    if bump:
                        self._bumped()
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

    def changes_since(self, mark: ChangeMark | None) -> CatalogChanges:
        """What a reader at ``mark`` (None: nothing read yet) has not seen, read in one snapshot.

        A delta (the rows written and the tombstones left since ``mark.seq``) when it can be
        trusted; otherwise (first read, another database or epoch, tombstones pruned past
        the mark, the file replaced) every record (:meth:`load` without repair), ``full``.
        """
        with self._lock:
            current = self._file_inode() if self.read_only else None
            if current is not None and current != self._inode:
                log.info("catalog %s was replaced; reading it again", self.path)
                self._db.close()
                self._inode = current  # before opening: a file replaced meanwhile is seen at the next call
                try:
                    self._db, self.meta = self._open_read_only()
                except sqlite3.DatabaseError as exc:
                    self._inode = None  # opened again at the next call
                    raise StoreError(f"catalog {self.path}: {exc}") from exc
                self._read_identity()
            try:
                self._db.execute("BEGIN")
                try:
                    return self._changes_in_snapshot(mark)
                finally:
                    self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"catalog {self.path}: {exc}") from exc

    def _changes_in_snapshot(self, mark: ChangeMark | None) -> CatalogChanges:
        meta = dict(self._db.execute("SELECT key, value FROM meta WHERE key IN "
                                     "('catalog_id', 'change_epoch', 'change_seq', 'removed_floor', 'format_version')"))
        try:
            seq, floor = int(meta.get("change_seq", "0")), int(meta.get("removed_floor", "0"))
        except ValueError:  # a damaged counter: nothing can be trusted but a whole read
            seq, floor, meta["change_epoch"] = -1, 0, None
        now = ChangeMark(meta.get("catalog_id"), meta.get("change_epoch"), seq)
        if meta.get("format_version") != str(FORMAT_VERSION):
            raise StoreError(f"catalog {self.path} has format {meta.get('format_version')}, this sparkhist reads "
                             f"{FORMAT_VERSION}")
        if (mark is None or seq < 0 or (mark.catalog_id, mark.epoch) != (now.catalog_id, now.epoch)
                or mark.seq < floor or mark.seq > seq):
            loaded = self.load(repair=False, entries=True)
            return CatalogChanges(now, True, loaded.records, [], {e.log_path: e for e in loaded.entries or ()})
        records: dict[str, LogRecord] = {}
        entries: dict[str, AttemptEntry] = {}
        removed = [path for (path,) in self._db.execute("SELECT path FROM removed WHERE seq > ?", (mark.seq,))]
        for path, blob, checksum, head, body, row_checksum in self._db.execute(
                "SELECT g.path, g.record, g.checksum, CAST(l.head AS BLOB), CAST(l.entry AS BLOB), l.checksum "
                "FROM logs g LEFT JOIN listing l ON l.path = g.path WHERE g.seq > ?", (mark.seq,)):
            try:
                record, entry = _decode_pair(path, blob, checksum,
                                             None if row_checksum is None else (head, body, row_checksum))
            except (ValueError, TypeError, KeyError, struct.error) as exc:
                log.warning("catalog record for %s is damaged (%s); not listed", path, exc)
                removed.append(path)
                continue
            records[path] = record
            if entry is not None:
                entries[path] = entry
        return CatalogChanges(now, False, records, removed, entries)

    def _file_inode(self) -> int | None:
        """The inode of the database file (a replaced catalog is a new file), None when there is none."""
        try:
            return os.stat(self.path).st_ino
        except OSError:
            return None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _decode_pair(path: str, blob: bytes, checksum: int,
                 row: tuple[bytes, bytes, int] | None) -> tuple[LogRecord, AttemptEntry | None]:
    """A log's record and its listing row ``(head, entry, checksum)`` (None: none stored),
    verified and decoded: both intact, and agreeing (a listed log has a row, an unlisted one
    none, the row names the record's path and app). Raises ValueError, TypeError, KeyError or
    struct.error when not."""
    record = _decode_record(path, blob, checksum)
    if (row is None) != (record.app_id is None):
        raise ValueError("listing row missing" if row is None else "unexpected listing row")
    if row is None:
        return record, None
    entry = _listing_entry(*row, record.listing)
    if entry.log_path != path or entry.app_id != record.app_id:
        raise ValueError("listing row and record disagree")
    return record, entry


def _decode_record(path: str, blob: bytes, checksum: int) -> LogRecord:
    if _checksum(blob) != checksum:
        raise ValueError("checksum mismatch")
    record = LogRecord.from_dict(orjson.loads(blob))
    if record.path != path:
        raise ValueError("path mismatch")
    return record
