"""Issue 19: the tables survive kill -9 and damage; the CLI and the endpoint refuse
writes, long queries and too many rows.

Real logs are indexed into a temporary store (their rows pending, then compacted into
the table files); a real subprocess writing rows and compacting is killed with SIGKILL
at several instants; table and row files are damaged on disk, removed, or left older
than their snapshot.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xxhash
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sparkhist.analytics import batch, compaction, pending, repair
from sparkhist.analytics.layout import key_of, pending_dir, tables_dir
from sparkhist.analytics.query import Engine, QueryError
from sparkhist.api.analytics import analytics_routes
from sparkhist.reader.layout import find_event_log
from sparkhist.scan.indexer import Indexer
from sparkhist.source.factory import open_source
from sparkhist.state.app_state import AppState
from sparkhist.store.snapshots import SnapshotStore
from support.analytics import first_row

LOGS = Path("/work/shared/conformance/spark-4.0.1/eventlogs")
SPARKHIST = str(Path(sys.executable).parent / "sparkhist")
EVERYTHING = ("SELECT (SELECT count(*) FROM stages), (SELECT sum(executor_run_time) FROM stages), "
              "(SELECT count(*) FROM jobs), (SELECT count(*) FROM properties), (SELECT count(*) FROM executors)")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    (tmp_path / "store" / "analytics").mkdir(parents=True)  # the tables on
    source = open_source(str(LOGS))
    indexer = Indexer(source, SnapshotStore(str(tmp_path / "store")), AppState)
    for name in ("local-1795972896863", "local-1795972911639.snappy"):
        indexer.refresh(find_event_log(source, str(LOGS / name)))
    batch.flush(str(tmp_path / "store"))  # as the end of a scan's builds does
    return tmp_path / "store"


def _answer(store: Path) -> tuple[object, ...]:
    return first_row(store, EVERYTHING)


_REWRITER = """
import os, sys
from sparkhist.analytics import compaction, pending
from sparkhist.store.snapshots import SnapshotStore
store = sys.argv[1]
snapshots = SnapshotStore(store)
loaded = [(snapshots.read_file(n), os.stat(os.path.join(snapshots.dir, n)).st_mtime_ns) for n in snapshots.file_names()]
print("ready", flush=True)
while True:
    for snapshot, stamp in loaded:
        pending.write_batch(store, [pending.entry_of(snapshot, stamp)])
    compaction.compact(store)
"""


def _write_again(store: Path, snapshot_file: str) -> None:
    """The rows of the attempt of ``snapshot_file``, made again and written as one batch."""
    snapshots = SnapshotStore(str(store))
    stamp = os.stat(os.path.join(snapshots.dir, snapshot_file)).st_mtime_ns
    pending.write_batch(str(store), [pending.entry_of(snapshots.read_file(snapshot_file), stamp)])


def _files(store: Path, directory: str) -> list[str]:
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def test_rows_are_pending_until_compacted_and_answers_are_the_same_either_way(store: Path) -> None:
    before = _answer(store)
    assert before[0] > 0 and before[2] > 0
    assert len(_files(store, pending_dir(str(store)))) == 1 and _files(store, tables_dir(str(store))) == []  # one batch
    done = compaction.compact(str(store))
    assert done.attempts == 2
    assert _files(store, pending_dir(str(store))) == [] and len(_files(store, tables_dir(str(store)))) == 6
    assert _answer(store) == before
    # one attempt indexed again: its rows pending, the other's from the tables; still the same answer
    snapshots = SnapshotStore(str(store))
    name = snapshots.file_names()[0]
    _write_again(store, name)
    assert len(_files(store, pending_dir(str(store)))) == 1
    assert _answer(store) == before
    compaction.compact(str(store))
    assert _answer(store) == before


def test_a_kill_9_while_writing_leaves_tables_that_answer_as_before(store: Path) -> None:
    before = _answer(store)
    assert before[0] > 0 and before[2] > 0
    for delay in (0.05, 0.13, 0.31, 0.47, 0.8):
        child = subprocess.Popen([sys.executable, "-c", _REWRITER, str(store)], stdout=subprocess.PIPE)
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        assert _answer(store) == before  # readers: the newest tables, and the pending rows over them
        repair.repair(str(store), SnapshotStore(str(store)))
        leftovers = [n for d in (store / "analytics").iterdir() for n in os.listdir(d) if n.endswith(".tmp")]
        assert leftovers == []
        assert _files(store, pending_dir(str(store))) == []  # compacted by the repair
        assert _answer(store) == before


def test_a_damaged_table_file_is_left_out_then_rebuilt_from_the_snapshots(store: Path) -> None:
    before = _answer(store)
    compaction.compact(str(store))
    victim = next(Path(tables_dir(str(store))).glob("stages.*.parquet"))
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    victim.write_bytes(bytes(blob))
    engine = Engine(str(store))
    try:
        result = engine.run("SELECT count(*) FROM stages")
    finally:
        engine.close()
    assert [f.path for f in result.damaged] == [str(victim)]
    assert result.rows[0][0] == 0  # left out, not read
    done = repair.repair(str(store), SnapshotStore(str(store)))
    assert done.damaged == 1 and done.written == 2  # every table rebuilt: the damaged one held every attempt
    assert _answer(store) == before


def test_damaged_rows_a_missing_table_a_stale_attempt_and_a_removed_snapshot_are_repaired(store: Path) -> None:
    before = _answer(store)
    snapshots = SnapshotStore(str(store))
    names = sorted(snapshots.file_names())
    torn = next(Path(pending_dir(str(store))).iterdir())  # the batch of both attempts
    torn.write_bytes(torn.read_bytes()[:-7])  # a write cut short (a disk that lies about fsync)
    done = repair.repair(str(store), snapshots)
    assert done.damaged == 1 and done.written == 2
    assert _answer(store) == before
    next(Path(tables_dir(str(store))).glob("applications.*.parquet")).unlink()
    assert repair.repair(str(store), snapshots).written == 2  # the other tables are dropped and rebuilt too
    assert _answer(store) == before
    snap = os.path.join(snapshots.dir, names[1])
    later = os.stat(snap).st_mtime_ns + 10**9
    os.utime(snap, ns=(later, later))  # the snapshot was saved again after its rows
    assert repair.repair(str(store), snapshots).written == 1
    assert repair.repair(str(store), snapshots).written == 0
    os.unlink(snap)
    assert repair.repair(str(store), snapshots).dropped == 1
    assert _answer(store)[0] < before[0]


def test_rows_pending_in_an_unknown_format_are_made_again_from_the_snapshot(store: Path) -> None:
    before = _answer(store)
    snapshots = SnapshotStore(str(store))
    older = next(Path(pending_dir(str(store))).iterdir())
    older.write_bytes(b"sparkhist-rows 1\n" + older.read_bytes()[len(pending.MAGIC):])  # an upgrade: format 1's magic
    done = repair.repair(str(store), snapshots)
    assert done.damaged == 1 and done.written == 2
    assert _files(store, pending_dir(str(store))) == []
    assert _answer(store) == before


def _v2_file(store: Path, entry: pending.Entry) -> Path:
    """``entry`` as format 2 wrote it (before the batches): one attempt per file, named by its key."""
    body = b"%d\n" % entry.stamp + (entry.payload or b"")
    path = Path(pending_dir(str(store))) / (entry.key + pending.SUFFIX)
    path.write_bytes(pending.MAGIC_V2 + xxhash.xxh64_digest(body) + body)
    return path


def test_rows_pending_in_format_2_are_still_read_and_older_than_every_batch(store: Path) -> None:
    before = _answer(store)
    snapshots = SnapshotStore(str(store))
    names = sorted(snapshots.file_names())
    compaction.compact(str(store))
    entries = [pending.entry_of(snapshots.read_file(n), os.stat(os.path.join(snapshots.dir, n)).st_mtime_ns) for n in names]
    _v2_file(store, pending.tombstone(entries[0].key))  # left by the previous version: both attempts' rows pending
    _v2_file(store, entries[1])
    assert _answer(store)[0] < before[0]  # the tombstone is read: the first attempt is gone
    pending.write_batch(str(store), [entries[0]])  # a batch written since: newer than the format 2 tombstone
    assert _answer(store) == before
    assert compaction.compact(str(store)).attempts == 2
    assert _files(store, pending_dir(str(store))) == []
    assert _answer(store) == before
    _v2_file(store, pending.tombstone(entries[1].key))
    assert compaction.compact(str(store)).removed == 1
    assert repair.repair(str(store), snapshots).written == 1  # the snapshot is there: its rows are made again
    assert _answer(store) == before


def _cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SPARKHIST, "sql", "--store", str(store), *args], capture_output=True, text=True, timeout=120)


def test_cli_answers_a_select_and_refuses_writes_bad_and_long_queries_and_too_many_rows(store: Path) -> None:
    ok = _cli(store, "--format", "csv", "SELECT stage_id, executor_run_time FROM stages ORDER BY 1, 2")
    assert ok.returncode == 0, ok.stderr
    engine = Engine(str(store))
    try:
        expected = engine.run("SELECT stage_id, executor_run_time FROM stages ORDER BY 1, 2").rows
    finally:
        engine.close()
    assert ok.stdout.splitlines() == ["stage_id,executor_run_time", *(f"{a},{b}" for a, b in expected)]
    for query in ("DELETE FROM jobs", "CREATE TABLE x AS SELECT 1", f"COPY jobs TO '{store}/analytics/x.csv'",
                  "SELECT 1; DROP VIEW jobs", "ATTACH 'x.db'", "SET enable_external_access = true"):
        refused = _cli(store, query)
        assert refused.returncode == 2, (query, refused.stdout)
        assert refused.stderr.startswith("sparkhist: ") and len(refused.stderr.splitlines()) == 1
    assert not (store / "analytics" / "x.csv").exists()
    outside = _cli(store, "SELECT * FROM read_text('/etc/hostname')")
    assert outside.returncode == 2 and "not allowed: the table function read_text()" in outside.stderr
    for around in ("SELECT * FROM read_parquet('analytics/**/*.parquet')", "SELECT * FROM _pending_jobs",
                   "SELECT * FROM memory.main.jobs", "SELECT * FROM query('SELECT 1')", "SELECT * FROM duckdb_tables()"):
        refused = _cli(store, around)
        assert refused.returncode == 2 and ("not allowed" in refused.stderr or "unknown table" in refused.stderr), around
    own = _cli(store, "--format", "csv", "WITH s AS (SELECT * FROM stages) SELECT count(*) FROM s, range(2)")
    assert own.returncode == 0, own.stderr
    bad = _cli(store, "SELECT nope FROM jobs")
    assert bad.returncode == 2 and "nope" in bad.stderr
    started = time.monotonic()
    long = _cli(store, "--timeout", "1", "SELECT sum(a.range * b.range) FROM range(200000) a, range(200000) b")
    assert long.returncode == 2 and "time limit" in long.stderr
    assert time.monotonic() - started < 30
    many = _cli(store, "--max-rows", "3", "SELECT * FROM properties")
    assert many.returncode == 2 and "more than 3 rows" in many.stderr


def test_cli_output_is_terminal_safe(store: Path) -> None:
    for fmt in ("table", "json", "csv"):
        out = _cli(store, "--format", fmt, "SELECT 'a' || chr(27) || '[31mb' || chr(8238) AS s")
        assert out.returncode == 0
        assert "\x1b" not in out.stdout and "\u202e" not in out.stdout and "\\x1b[31mb" in out.stdout


def test_endpoint_answers_json_and_refuses_with_400(store: Path) -> None:
    app = Starlette(routes=analytics_routes(str(store), timeout=1.0, max_rows=5))
    with TestClient(app) as client:
        ok = client.get("/analytics/sql", params={"q": "SELECT count(*) AS n FROM jobs"})
        assert ok.status_code == 200
        assert ok.json() == {"columns": ["n"], "types": ["BIGINT"], "rows": [[_answer(store)[2]]]}
        for query, why in (("DELETE FROM jobs", "read-only"), ("SELECT nope FROM jobs", "bad query"),
                           ("SELECT * FROM properties", "more than 5 rows"),
                           ("SELECT sum(a.range * b.range) FROM range(200000) a, range(200000) b", "time limit")):
            refused = client.get("/analytics/sql", params={"q": query})
            assert refused.status_code == 400, query
            assert why in refused.json()["error"]
        assert client.get("/analytics/sql").status_code == 400
    snapshots = SnapshotStore(str(store))
    one = key_of(sorted(snapshots.file_names())[0])
    for allowed, attempts in ((set(), 0), ({one}, 1)):
        guarded = Starlette(routes=analytics_routes(str(store), viewable=lambda _request, keys=allowed: keys))
        with TestClient(guarded) as client:
            for table in ("applications", "jobs", "stages", "executors", "properties"):
                seen = client.get("/analytics/sql", params={"q": f"SELECT count(DISTINCT app_id) FROM {table}"})
                assert seen.json()["rows"] == [[attempts]], table


def test_no_tables_are_written_unless_the_store_keeps_them(tmp_path: Path) -> None:
    source = open_source(str(LOGS))
    indexer = Indexer(source, SnapshotStore(str(tmp_path / "store")), AppState)
    assert indexer.refresh(find_event_log(source, str(LOGS / "local-1795972896863"))).persisted
    assert not (tmp_path / "store" / "analytics").exists()


def test_engine_refuses_two_statements(store: Path) -> None:
    engine = Engine(str(store))
    try:
        with pytest.raises(QueryError, match="one statement"):
            engine.run("SELECT 1; SELECT 2")
    finally:
        engine.close()


def test_export_writes_every_table_as_parquet_that_other_tools_read(store: Path, tmp_path: Path) -> None:
    import duckdb

    compaction.compact(str(store))
    snapshots = SnapshotStore(str(store))
    name = snapshots.file_names()[0]  # one attempt pending again: the export has the latest of each
    _write_again(store, name)
    out = tmp_path / "export"
    done = subprocess.run([SPARKHIST, "export-tables", "--store", str(store), str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    engine = Engine(str(store), max_rows=1_000_000)
    try:
        for table in ("applications", "jobs", "stages", "executors", "sql_executions", "properties"):
            expected = engine.run(f"SELECT * FROM {table} ORDER BY ALL")
            con = duckdb.connect()
            try:
                cursor = con.execute(f"SELECT * FROM read_parquet('{out / (table + '.parquet')}') ORDER BY ALL")
                assert [d[0] for d in cursor.description] == expected.columns
                assert cursor.fetchall() == expected.rows, table
            finally:
                con.close()
            assert f"{table}.parquet\t{len(expected.rows)} rows" in done.stdout
    finally:
        engine.close()
    assert sorted(os.listdir(out)) == sorted(f"{t}.parquet" for t in
                                             ("applications", "jobs", "stages", "executors", "sql_executions", "properties"))
