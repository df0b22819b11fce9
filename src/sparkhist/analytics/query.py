"""Read-only SQL over the analytics tables, with DuckDB.

:class:`Engine` makes one view per table in a small DuckDB database of its own (a
temporary file, never in the store): the table file's rows (verified against its
checksum, see :mod:`sparkhist.analytics.layout`) but those of attempts with pending rows,
plus the pending rows (:mod:`sparkhist.analytics.pending`: what was indexed since the last
compaction), so an answer always has the latest of every attempt. It then opens that
database **read-only**, with file access limited to the store's ``analytics/`` directory
and the configuration locked. A query must be one ``SELECT`` (``WITH ... SELECT``
included): anything else is refused before it runs. A query runs under a time limit
(DuckDB's interrupt) and a row limit.

ACLs: :meth:`Engine.run` takes the keys of the attempts the caller may view (``None``:
all); the views then hold only their rows.

The views are remade when the files change (a new or rewritten attempt, a compaction),
so a long-lived engine (the HTTP endpoint's) answers with what was indexed last.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sparkhist.analytics import pending
from sparkhist.analytics.compaction import quote, rows_select, stored_columns, stored_rows
from sparkhist.analytics.layout import KEY_COLUMN, Checked, TableFile, analytics_dir, current_tables, pending_dir
from sparkhist.analytics.tables import TABLES

__all__ = ["Engine", "QueryError", "Result"]


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
        self._tmp = tempfile.mkdtemp(prefix="sparkhist-sql-")
        self._generation = 0
        self._made_from: tuple[Any, ...] | None = None
        self._con: Any = None
        self._damaged: list[TableFile] = []

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _views(self, allowed: Collection[str] | None) -> Any:
        import duckdb

        tables, damaged = current_tables(self.store_dir, self._checked)
        self._damaged = damaged
        signature = _signature(self.store_dir, tables)
        if self._con is not None and signature == self._made_from and allowed is None:
            return self._con
        if self._con is not None:
            self._con.close()
            self._con = None
        self._generation += 1
        path = os.path.join(self._tmp, f"views{self._generation}.duckdb")
        writer = duckdb.connect(path, config={"threads": 1})
        try:
            self._make_views(writer, tables, allowed)
        finally:
            writer.close()
        for name in os.listdir(self._tmp):
            if name != os.path.basename(path) and not name.startswith(os.path.basename(path)):
                os.unlink(os.path.join(self._tmp, name))
        con = duckdb.connect(path, read_only=True, config={"threads": 1})
        root = analytics_dir(self.store_dir)
        con.execute(f"SET allowed_directories = [{quote(root + os.sep)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        self._con, self._made_from = con, (signature if allowed is None else None)
        return con

    def _make_views(self, writer: Any, tables: dict[str, TableFile], allowed: Collection[str] | None) -> None:
        """One view per table in ``writer``'s database: the table file's rows under the pending ones."""
        items, _ = pending.scan(self.store_dir)
        writer.execute(f"CREATE TABLE pending_keys AS SELECT unnest($1::VARCHAR[]) AS {KEY_COLUMN}",
                       [[i.key for i in items]])
        if allowed is not None:
            writer.execute(f"CREATE TABLE allowed_keys AS SELECT unnest($1::VARCHAR[]) AS {KEY_COLUMN}",
                           [list(allowed)])
        for table in TABLES:
            select, values = rows_select(table, stored_rows(table, items))
            writer.execute(f"CREATE TABLE pending_{table.name} AS {select}", values)
            stored = ", ".join(name for name, _ in stored_columns(table))
            body = f"SELECT {stored} FROM pending_{table.name}"
            file = tables.get(table.name)
            if file is not None:
                body = (f"SELECT {stored} FROM read_parquet({quote(file.path)}) WHERE {KEY_COLUMN} NOT IN "
                        f"(SELECT {KEY_COLUMN} FROM pending_keys) UNION ALL {body}")
            if allowed is not None:
                body = f"SELECT * FROM ({body}) WHERE {KEY_COLUMN} IN (SELECT {KEY_COLUMN} FROM allowed_keys)"
            columns = ", ".join(name for name, _, _ in table.columns)
            writer.execute(f"CREATE VIEW {table.name} AS SELECT {columns} FROM ({body})")

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
