"""Pending rows folded into the table files, in bulk, by DuckDB.

One Parquet file per table holds every attempt's rows. :func:`compact` reads the pending
row files, has DuckDB parse their JSON payloads into one table of typed lists (no Python
object per value: :func:`load_pending`), and for each table writes a new generation: the
current file's rows minus those of the pending attempts, plus the pending rows (a
tombstone contributes none).
Each file is written as the store writes everything (temporary file, fsync, rename,
directory fsync; checksum in its name); the older generations and the pending files
that were folded in are removed last, so a crash at any point leaves either the old
tables with the pending files (folded in again next time: the result is the same) or
the new ones.

Rewriting a table costs its whole size, so the loop compacts when the pending attempts
are many compared with the tables (:func:`due`: a tenth of them, at least
:data:`MIN_BATCH`) or old (:data:`MAX_AGE_S`): while thousands of logs are indexed the
total rewritten stays a small multiple of the final size, and queries read the few
pending files directly meanwhile (:mod:`sparkhist.analytics.query`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import xxhash

from sparkhist.analytics import pending
from sparkhist.analytics.layout import (
    KEY_COLUMN,
    STAMP_COLUMN,
    TEMP_SUFFIX,
    current_tables,
    pending_dir,
    table_file_name,
    table_files,
    tables_dir,
)
from sparkhist.analytics.tables import APPLICATIONS, TABLES, Table
from sparkhist.errors import StoreError
from sparkhist.files import fsync_dir, unlink_quietly

log = logging.getLogger("sparkhist.analytics")

MIN_BATCH = 512
MAX_AGE_S = 30.0

_engine: Any = None  # one in-memory DuckDB per process, made on first use
_engine_lock = threading.Lock()


def _connection() -> Any:
    global _engine
    if _engine is None:
        import duckdb  # here: a process that never compacts never loads the engine

        _engine = duckdb.connect(":memory:", config={"threads": 1})
    return _engine


@contextlib.contextmanager
def engine() -> Iterator[Any]:
    """This process's DuckDB connection for writing table files, held by one thread at a time."""
    with _engine_lock:
        yield _connection()


def stored_columns(table: Table) -> tuple[tuple[str, str], ...]:
    """(name, DuckDB type) of a table file: the hidden columns, then the documented ones."""
    hidden = [(KEY_COLUMN, "VARCHAR")] + ([(STAMP_COLUMN, "BIGINT")] if table is APPLICATIONS else [])
    return (*hidden, *((name, kind) for name, kind, _ in table.columns))


def _structure() -> str:
    """The JSON structure (DuckDB's ``from_json``) of a pending payload (:func:`pending.payload`)."""
    body: dict[str, Any] = {KEY_COLUMN: "VARCHAR", STAMP_COLUMN: "BIGINT", "app_id": "VARCHAR", "attempt_id": "VARCHAR"}
    for table in TABLES:
        body[table.name] = {name: [kind] for name, kind, _ in table.columns[2:]}
    return orjson.dumps(body).decode()


STRUCTURE = _structure()


def load_pending(con: Any, relation: str, items: list[pending.Entry]) -> None:
    """Table ``relation`` in ``con``: one row per pending attempt (tombstones have none), each
    table's rows as lists, parsed and typed by DuckDB from the payloads (:func:`pending_select`
    makes rows of them)."""
    payloads = [i.payload.decode() for i in items if i.payload is not None]
    con.execute(f"CREATE OR REPLACE TABLE {relation} AS SELECT unnest(from_json(j, {quote(STRUCTURE)})) "
                f"FROM unnest($1::VARCHAR[]) AS t(j)", [payloads])


def pending_select(table: Table, relation: str) -> str:
    """A SELECT of ``table``'s rows in ``relation`` (:func:`load_pending`) as the table file's columns."""
    hidden = f"r.{KEY_COLUMN}, r.{STAMP_COLUMN}" if table is APPLICATIONS else f"r.{KEY_COLUMN}"
    values = ", ".join(f'unnest(r."{table.name}"."{name}") AS "{name}"' for name, _, _ in table.columns[2:])
    return f"SELECT {hidden}, r.app_id, r.attempt_id, {values} FROM {relation} AS r"


def quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def due(store_dir: str, now: float | None = None) -> bool:
    """Whether the pending rows should be compacted now."""
    try:
        entries = list(os.scandir(pending_dir(store_dir)))
    except FileNotFoundError:
        return False
    files = [e for e in entries if e.name.endswith(pending.SUFFIX)]
    if not files:
        return False
    attempts = _attempts_in_tables(store_dir)
    if sum(pending.attempts_in(e.name) for e in files) >= max(MIN_BATCH, attempts // 10):
        return True
    now = time.time() if now is None else now
    oldest = min(e.stat().st_mtime for e in files)
    return now - oldest >= MAX_AGE_S


_attempts_cache: dict[str, tuple[str, int]] = {}


def _attempts_in_tables(store_dir: str) -> int:
    """Rows of the current ``applications`` file (one per attempt), cached by file."""
    current, _ = current_tables(store_dir)
    file = current.get(APPLICATIONS.name)
    if file is None:
        return 0
    cached = _attempts_cache.get(store_dir)
    if cached is not None and cached[0] == file.path:
        return cached[1]
    with engine() as con:
        row = con.execute(f"SELECT count(*) FROM read_parquet({quote(file.path)})").fetchone()
    count = int(row[0]) if row else 0
    _attempts_cache[store_dir] = (file.path, count)
    return count


@dataclass(slots=True)
class Compacted:
    attempts: int = 0  # attempts folded in (the latest pending entry of each)
    removed: int = 0  # of which tombstones
    seconds: float = 0.0


_compacting = threading.Lock()


def compact(store_dir: str) -> Compacted:
    """Fold every pending file into new table files. Raises :class:`StoreError` when a file
    cannot be written (the pending files stay, the old tables too)."""
    started = time.perf_counter()
    done = Compacted()
    with _compacting:
        scanned = pending.scan(store_dir)
        for path in scanned.damaged:  # the next repair rebuilds their attempts from the snapshots
            unlink_quietly(path)
        items = scanned.entries
        if not items:
            for empty in scanned.files:  # batches of no attempt
                pending.remove_if_unchanged(empty)
            return done
        current, bad = current_tables(store_dir)
        generation = 1 + max((f.generation for f in table_files(store_dir)), default=0)
        directory = tables_dir(store_dir)
        try:
            os.makedirs(directory, exist_ok=True)
            with engine() as con:
                con.execute(f"CREATE OR REPLACE TEMP TABLE compacting AS SELECT unnest($1::VARCHAR[]) AS {KEY_COLUMN}",
                            [[i.key for i in items]])
                try:
                    load_pending(con, "compacting_rows", items)
                    written = [_write_table(con, directory, table, generation, current.get(table.name))
                               for table in TABLES]
                finally:
                    con.execute("DROP TABLE IF EXISTS compacting_rows")
            fsync_dir(directory)
        except OSError as exc:
            raise StoreError(f"cannot write the analytics tables: {exc}") from exc
        except Exception as exc:  # the engine's own errors (duckdb.Error)
            raise StoreError(f"cannot write the analytics tables: {exc}") from exc
        keep = set(written)
        for file in table_files(store_dir):
            if file.path not in keep and file.generation < generation:
                unlink_quietly(file.path)
        for file in bad:
            unlink_quietly(file.path)
        for folded in scanned.files:
            pending.remove_if_unchanged(folded)
        done.attempts = len(items)
        done.removed = sum(1 for i in items if i.payload is None)
        done.seconds = time.perf_counter() - started
    log.info("analytics: %d attempts compacted into the tables (%d removed) in %.2f s",
             done.attempts, done.removed, done.seconds)
    return done


def _write_table(con: Any, directory: str, table: Table, generation: int, old: Any) -> str:
    select = pending_select(table, "compacting_rows")
    names = ", ".join(name for name, _ in stored_columns(table))
    if old is not None:
        select = (f"SELECT {names} FROM read_parquet({quote(old.path)}) "
                  f"WHERE {KEY_COLUMN} NOT IN (SELECT {KEY_COLUMN} FROM compacting) UNION ALL {select}")
    temp = os.path.join(directory, f"{table.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        con.execute(f"COPY ({select}) TO {quote(temp)} (FORMAT parquet, COMPRESSION snappy)")
        with open(temp, "rb+") as f:
            digest = xxhash.xxh64_hexdigest(f.read())
            os.fsync(f.fileno())
        final = os.path.join(directory, table_file_name(table.name, generation, digest))
        os.replace(temp, final)
    except BaseException:
        unlink_quietly(temp)
        raise
    return final

