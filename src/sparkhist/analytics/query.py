"""Read-only SQL over the analytics tables, with DuckDB.

:class:`Engine` makes one view per table in an in-memory DuckDB database of its own: the
table file's rows (verified against its checksum, see :mod:`sparkhist.analytics.layout`)
but those of attempts with pending rows, plus the pending rows
(:mod:`sparkhist.analytics.pending`: what was indexed since the last compaction), so an
answer always has the latest of every attempt. File access is then limited to the
store's ``analytics/`` directory and the configuration locked. A query must be one
``SELECT`` (``WITH ... SELECT`` included): anything else is refused before it runs. A query
runs under a time limit (DuckDB's interrupt) and a row limit.

A query may name only the tables (and its own ``WITH`` names) and a few generating table
functions (:data:`TABLE_FUNCTIONS`): no file reader (``read_parquet`` on a table file would
go around the views), no helper table, no other catalog (:func:`check_relations`, on
DuckDB's own parse of the query).

ACLs: :meth:`Engine.run` takes the keys of the attempts the caller may view (``None``:
all); the views then hold only their rows.

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

import orjson
import xxhash

from sparkhist.analytics import pending
from sparkhist.analytics.compaction import load_pending, pending_select, quote, stored_columns
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
        """One view per table in ``con``'s database: the table file's rows under the pending ones,
        only the ``allowed`` attempts' when given. The helper tables' names start with ``_``:
        a query may not name them (:func:`check_relations`)."""
        items = pending.scan(self.store_dir).entries
        if allowed is not None:
            keep = set(allowed)
            items = [i for i in items if i.key in keep]
        con.execute(f"CREATE TABLE _pending_keys AS SELECT unnest($1::VARCHAR[]) AS {KEY_COLUMN}",
                    [[i.key for i in items]])
        if allowed is not None:
            con.execute(f"CREATE TABLE _allowed_keys AS SELECT unnest($1::VARCHAR[]) AS {KEY_COLUMN}", [list(allowed)])
        load_pending(con, "_pending_rows", items)
        for table in TABLES:
            con.execute(f"CREATE TABLE _pending_{table.name} AS {pending_select(table, '_pending_rows')}")
            stored = ", ".join(name for name, _ in stored_columns(table))
            body = f"SELECT {stored} FROM _pending_{table.name}"
            file = tables.get(table.name)
            if file is not None:
                body = (f"SELECT {stored} FROM read_parquet({quote(file.path)}) WHERE {KEY_COLUMN} NOT IN "
                        f"(SELECT {KEY_COLUMN} FROM _pending_keys) UNION ALL {body}")
            if allowed is not None:
                body = f"SELECT * FROM ({body}) WHERE {KEY_COLUMN} IN (SELECT {KEY_COLUMN} FROM _allowed_keys)"
            columns = ", ".join(name for name, _, _ in table.columns)
            con.execute(f"CREATE VIEW {table.name} AS SELECT {columns} FROM ({body})")
        con.execute("DROP TABLE _pending_rows")

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
        check_relations(con, sql)
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


#: Table functions a query may call: they make rows, they read nothing.
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
_NAMES = frozenset(t.name for t in TABLES)


def _walk(node: Any, found: list[dict[str, Any]], ctes: set[str]) -> None:
    if isinstance(node, dict):
        if node.get("type") in ("BASE_TABLE", "TABLE_FUNCTION"):
            found.append(node)
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map", []):
                if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                    ctes.add(entry["key"].lower())
        for value in node.values():
            _walk(value, found, ctes)
    elif isinstance(node, list):
        for value in node:
            _walk(value, found, ctes)


def check_relations(con: Any, sql: str) -> None:
    """:class:`QueryError` unless every relation ``sql`` reads is a table, one of its own
    ``WITH`` names, or an allowed table function (:data:`TABLE_FUNCTIONS`)."""
    row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    parsed = orjson.loads(row[0]) if row else {"error": True}
    if parsed.get("error"):
        raise QueryError(f"bad query: {parsed.get('error_message', 'cannot be parsed')}")
    found: list[dict[str, Any]] = []
    ctes: set[str] = set()
    _walk(parsed.get("statements", []), found, ctes)
    for node in found:
        if node["type"] == "TABLE_FUNCTION":
            name = str((node.get("function") or {}).get("function_name", "")).lower()
            if name not in TABLE_FUNCTIONS:
                raise QueryError(f"not allowed: the table function {name}(); query the tables "
                                 f"({', '.join(sorted(_NAMES))})")
            continue
        name = str(node.get("table_name", "")).lower()
        qualified = node.get("catalog_name") or node.get("schema_name") not in ("", None, "main")
        if qualified or (name not in _NAMES and name not in ctes):
            raise QueryError(f"unknown table {node.get('table_name')!r}: the tables are {', '.join(sorted(_NAMES))}")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
