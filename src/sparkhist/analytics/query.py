"""Read-only SQL over the analytics tables, with DuckDB.

:class:`Engine` makes one view per table in an in-memory DuckDB database of its own: the
table file's rows (verified against its checksum, see :mod:`sparkhist.analytics.layout`)
but those of attempts with pending rows, plus the pending rows
(:mod:`sparkhist.analytics.pending`: what was indexed since the last compaction), so an
answer always has the latest of every attempt. File access is then limited to the
store's ``analytics/`` directory and the configuration locked. A query must be one
``SELECT`` (``WITH ... SELECT`` included): anything else is refused before it runs. A query
runs under a time limit (DuckDB's interrupt) and a row limit.

ACLs: :meth:`Engine.run` takes the keys of the attempts the caller may view (``None``:
all); the relations then hold only their rows, copied into memory, with no file access
left (reading a table file directly would bypass the filter).

The views are remade when the files change (a new or rewritten attempt, a compaction),
so a long-lived engine (the HTTP endpoint's) answers with what was indexed last.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import xxhash

from sparkhist.analytics import pending
from sparkhist.analytics.compaction import quote, rows_select, stored_columns, stored_rows
from sparkhist.analytics.layout import KEY_COLUMN, Checked, TableFile, analytics_dir, current_tables, pending_dir
from sparkhist.analytics.tables import TABLES

__all__ = ["Engine", "QueryError", "Result"]

#: Databases of views an engine keeps (the unfiltered one and a few users' filtered ones).
KEPT_VIEWS = 8


class QueryError(Exception):
    """A query refused or failed: the message says why, for the person who wrote it."""


@dataclass(frozen=True, slots=True)
class Result:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    damaged: list[TableFile]  # table files left out (failed their checksum; the writer rebuilds them)


def _signature(store_dir: str, tables: dict[str, TableFile]) -> tuple[Any, ...]:
    try:
        entries = sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in os.scandir(pending_dir(store_dir)))
    except FileNotFoundError:
        entries = []
    return tuple(sorted(f.path for f in tables.values())), tuple(entries)


class Engine:
    """Queries over the tables of the store at ``store_dir``; one query at a time per engine."""

    def __init__(self, store_dir: str, *, timeout: float = 10.0, max_rows: int = 10_000) -> None:
        self.store_dir = store_dir
        self.timeout = timeout
        self.max_rows = max_rows
        self._checked = Checked()
        self._lock = threading.Lock()
        #: Databases of views, newest use last: by the digest of the allowed keys (None: unfiltered),
        #: each with the files it was made from and its connection.
        self._made: OrderedDict[str | None, tuple[tuple[Any, ...], Any]] = OrderedDict()
        self._damaged: list[TableFile] = []

    def close(self) -> None:
        with self._lock:
            while self._made:
                self._forget(next(iter(self._made)))

    def _forget(self, slot: str | None) -> None:
        _, con = self._made.pop(slot)
        con.close()

    def _views(self, allowed: Collection[str] | None) -> Any:
        """A read-only connection whose views hold what ``allowed`` may see, made anew when the
        files changed; the last :data:`KEPT_VIEWS` are kept (one per user, with ACLs on)."""
        import duckdb

        tables, damaged = current_tables(self.store_dir, self._checked)
        self._damaged = damaged
        signature = _signature(self.store_dir, tables)
        slot = None if allowed is None else xxhash.xxh64_hexdigest("\n".join(sorted(allowed)).encode())
        held = self._made.get(slot)
        if held is not None and held[0] == signature:
            self._made.move_to_end(slot)
            return held[1]
        if held is not None:
            self._forget(slot)
        con = duckdb.connect(":memory:", config={"threads": 1})
        try:
            self._make_views(con, tables, allowed)
            if allowed is None:  # the views read the table files
                con.execute(f"SET allowed_directories = [{quote(analytics_dir(self.store_dir) + os.sep)}]")
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        self._made[slot] = (signature, con)
        while len(self._made) > KEPT_VIEWS:
            self._forget(next(iter(self._made)))
        return con

    def _make_views(self, con: Any, tables: dict[str, TableFile], allowed: Collection[str] | None) -> None:
        """One relation per table in ``con``'s database: the table file's rows under the pending ones.

        Unfiltered, views over the files (queries may read the store's table files anyway).
        Filtered by ACLs, in-memory tables holding only the allowed attempts' rows, and no file
        access at all afterwards (:meth:`_views`): a query cannot reach other rows by reading
        the files itself.
        """
        items, _ = pending.scan(self.store_dir)
        if allowed is not None:
            keep = set(allowed)
            items = [i for i in items if i.key in keep]
        con.execute(f"CREATE TABLE _pending_keys AS SELECT unnest($1::VARCHAR[]) AS {KEY_COLUMN}",
                    [[i.key for i in items]])
        if allowed is not None:
            con.execute(f"CREATE TABLE _allowed_keys AS SELECT unnest($1::VARCHAR[]) AS {KEY_COLUMN}", [list(allowed)])
        for table in TABLES:
            select, values = rows_select(table, stored_rows(table, items))
            con.execute(f"CREATE TABLE _pending_{table.name} AS {select}", values)
            stored = ", ".join(name for name, _ in stored_columns(table))
            body = f"SELECT {stored} FROM _pending_{table.name}"
            file = tables.get(table.name)
            if file is not None:
                body = (f"SELECT {stored} FROM read_parquet({quote(file.path)}) WHERE {KEY_COLUMN} NOT IN "
                        f"(SELECT {KEY_COLUMN} FROM _pending_keys) UNION ALL {body}")
            columns = ", ".join(name for name, _, _ in table.columns)
            if allowed is None:
                con.execute(f"CREATE VIEW {table.name} AS SELECT {columns} FROM ({body})")
            else:
                con.execute(f"CREATE TABLE {table.name} AS SELECT {columns} FROM ({body}) "
                            f"WHERE {KEY_COLUMN} IN (SELECT {KEY_COLUMN} FROM _allowed_keys)")
        if allowed is not None:
            for helper in ("_pending_keys", "_allowed_keys", *(f"_pending_{t.name}" for t in TABLES)):
                con.execute(f"DROP TABLE {helper}")

    def export(self, directory: str) -> dict[str, int]:
        """Every table as ``<directory>/<table>.parquet`` (its documented columns, every attempt,
        pending rows included), each written to a temporary file then renamed; rows per table."""
        import duckdb

        os.makedirs(directory, exist_ok=True)
        counts: dict[str, int] = {}
        with self._lock:
            tables, self._damaged = current_tables(self.store_dir, self._checked)
            con = duckdb.connect(":memory:", config={"threads": 1})
            try:
                self._make_views(con, tables, None)
                for table in TABLES:
                    target = os.path.join(directory, table.name + ".parquet")
                    temp = target + ".tmp"
                    con.execute(f"COPY {table.name} TO {quote(temp)} (FORMAT parquet, COMPRESSION zstd)")
                    os.replace(temp, target)
                    row = con.execute(f"SELECT count(*) FROM {table.name}").fetchone()
                    counts[table.name] = int(row[0]) if row else 0
            finally:
                con.close()
        return counts

    def run(self, sql: str, allowed: Collection[str] | None = None, params: dict[str, Any] | None = None) -> Result:
        """The answer to ``sql`` (with named ``$parameters``) over the attempts whose keys are
        ``allowed`` (None: all); :class:`QueryError` when it is refused, fails, runs too long
        or has more than ``max_rows`` rows."""
        return self.run_all([(sql, params)], allowed)[0]

    def run_all(self, queries: list[tuple[str, dict[str, Any] | None]],
                allowed: Collection[str] | None = None) -> list[Result]:
        """Several queries over the same views (made once), each as :meth:`run` runs one."""
        with self._lock:
            con = self._views(allowed)
            return [self._one(con, sql, params) for sql, params in queries]

    def _one(self, con: Any, sql: str, params: dict[str, Any] | None) -> Result:
        import duckdb

        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryError(f"bad query: {_first_line(exc)}") from exc
        if len(statements) != 1:
            raise QueryError(f"one statement expected, got {len(statements)}")
        if statements[0].type != duckdb.StatementType.SELECT:
            raise QueryError(f"read-only: only SELECT (or WITH ... SELECT) queries are allowed, "
                             f"not {statements[0].type.name}")
        timer = threading.Timer(self.timeout, con.interrupt)
        timer.start()
        try:
            cursor = con.execute(sql, params) if params else con.execute(sql)
            rows = cursor.fetchmany(self.max_rows + 1)
            described = cursor.description or []
        except duckdb.InterruptException as exc:
            raise QueryError(f"query stopped after the time limit of {self.timeout:g} s") from exc
        except duckdb.Error as exc:
            if not timer.is_alive():
                raise QueryError(f"query stopped after the time limit of {self.timeout:g} s") from exc
            raise QueryError(f"bad query: {_first_line(exc)}") from exc
        finally:
            timer.cancel()
        if len(rows) > self.max_rows:
            raise QueryError(f"more than {self.max_rows} rows: add a LIMIT or aggregate")
        return Result([d[0] for d in described], [str(d[1]) for d in described], rows, self._damaged)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
