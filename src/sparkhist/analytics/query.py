"""Read-only SQL over the analytics tables, with DuckDB.

:class:`Engine` makes one view per table over the table's verified fragments (see
:mod:`sparkhist.analytics.fragments`), in a small DuckDB database of its own (a temporary
file, never in the store), then opens that database **read-only**, with file access
limited to the store's ``analytics/`` directory and the configuration locked. A query
must be one ``SELECT`` (``WITH ... SELECT`` included): anything else is refused before it
runs. A query runs under a time limit (DuckDB's interrupt) and a row limit.

The views are remade when the fragments change (a new or rewritten attempt), so a
long-lived engine (the HTTP endpoint's) answers with what was indexed last.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sparkhist.analytics.fragments import Checked, Fragment, analytics_dir, fragments
from sparkhist.analytics.tables import TABLES

__all__ = ["Engine", "QueryError", "Result"]

#: Filters the rows a query may see, by table: SQL conditions ANDed to each view (the ACL hook).
RowFilter = Callable[[str], str | None]


class QueryError(Exception):
    """A query refused or failed: the message says why, for the person who wrote it."""


@dataclass(frozen=True, slots=True)
class Result:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    damaged: list[Fragment]  # fragments left out (failed their checksum; the writer rebuilds them)


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


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
        self._files: dict[str, list[str]] | None = None
        self._con: Any = None
        self._damaged: list[Fragment] = []

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _views(self, row_filter: RowFilter | None) -> Any:
        import duckdb

        files, damaged = fragments(self.store_dir, self._checked)
        self._damaged = damaged
        if self._con is not None and files == self._files and row_filter is None:
            return self._con
        if self._con is not None:
            self._con.close()
            self._con = None
        self._generation += 1
        path = os.path.join(self._tmp, f"views{self._generation}.duckdb")
        writer = duckdb.connect(path, config={"threads": 1})
        try:
            for table in TABLES:
                paths = files.get(table.name, [])
                if paths:
                    source = f"read_parquet([{', '.join(_quote(p) for p in paths)}])"
                    columns = ", ".join(name for name, _, _ in table.columns)
                    body = f"SELECT {columns} FROM {source}"
                else:
                    body = "SELECT " + ", ".join(f"NULL::{kind} AS {name}" for name, kind, _ in table.columns) + " WHERE false"
                condition = row_filter(table.name) if row_filter is not None else None
                if condition is not None:
                    body = f"SELECT * FROM ({body}) WHERE {condition}"
                writer.execute(f"CREATE VIEW {table.name} AS {body}")
        finally:
            writer.close()
        for name in os.listdir(self._tmp):
            if name != os.path.basename(path) and not name.startswith(os.path.basename(path)):
                os.unlink(os.path.join(self._tmp, name))
        con = duckdb.connect(path, read_only=True, config={"threads": 1})
        root = analytics_dir(self.store_dir)
        con.execute(f"SET allowed_directories = [{_quote(root + os.sep)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        self._con, self._files = con, (files if row_filter is None else None)
        return con

    def run(self, sql: str, row_filter: RowFilter | None = None) -> Result:
        """The answer to ``sql``; :class:`QueryError` when it is refused, fails, runs too
        long or has more than ``max_rows`` rows."""
        import duckdb

        with self._lock:
            con = self._views(row_filter)
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
                cursor = con.execute(sql)
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
